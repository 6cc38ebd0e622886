"""The recommendations body is written by hand from cached title JSON: it must be exactly a
``RecommendationsPublic`` (the schema the OpenAPI document announces)."""

from __future__ import annotations

import json
import time
from typing import Any

from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, update

from api.recommending import TitleShelf
from api.schemas import RecommendationsPublic
from recsys.model.parts import Recommendation
from recsys.serving import MemberRecommendations, _dumps, recommendations_json, title_json
from recsys.storage.schema import Title
from recsys.storage.titles import TitleRecord


def test_bodies_are_recommendations_public(client: TestClient) -> None:
    for member, params in [
        ("M01", {"limit": 5}),
        ("M02", {"limit": 20, "in_stock_only": "false"}),
        ("M04", {"category": "I2"}),
        ("M05", {}),
        ("M06", {"limit": 3}),
    ]:
        r = client.get(f"/v1/members/{member}/recommendations", params=params)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "application/json"
        raw: dict[str, Any] = json.loads(r.content)
        parsed = RecommendationsPublic.model_validate_json(r.content)
        assert parsed.model_dump(mode="json") == raw
        assert raw["count"] == len(raw["data"]) > 0


def test_title_json_is_the_public_title_and_text_stays_readable() -> None:
    record = TitleRecord("T1", '《红楼梦》 "quoted"', None, None, False, ("I24", "I2"))
    fragment = title_json(record) + b',"score":' + _dumps(0.5) + b"}"
    assert json.loads(fragment) == {
        "title_id": "T1",
        "title": '《红楼梦》 "quoted"',
        "author": None,
        "price": None,
        "categories": ["I24", "I2"],
        "in_stock": False,
        "score": 0.5,
    }
    assert "红楼梦".encode() in fragment


def test_stock_changes_reach_the_worker_cache_after_its_ttl(client: TestClient, club_engine: Engine) -> None:
    shelf = client.app.state.holder.serving().prepared  # type: ignore[attr-defined]
    assert isinstance(shelf, TitleShelf)

    def ids() -> set[str]:
        body = client.get("/v1/members/M02/recommendations", params={"limit": 20}).json()
        return {t["title_id"] for t in body["data"]}

    assert "T05" not in ids()  # out of stock
    with club_engine.begin() as connection:
        connection.execute(update(Title).where(Title.title_id == "T05").values(in_stock=True))
    shelf.ttl = 0.0
    deadline = time.monotonic() + 10
    while shelf.current().details["T05"].in_stock is False and time.monotonic() < deadline:
        time.sleep(0.02)
    assert "T05" in ids()


TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=12)


@settings(max_examples=200, deadline=None)
@given(
    member=TEXT,
    version=TEXT,
    items=st.lists(
        st.tuples(TEXT, st.floats(allow_subnormal=True), TEXT, TEXT, st.lists(TEXT, max_size=3), st.booleans()),
        max_size=4,
    ),
    cold_start=st.booleans(),
)
def test_the_body_is_byte_for_byte_what_json_dumps_writes(
    member: str,
    version: str,
    items: list[tuple[str, float, str, str, list[str], bool]],
    cold_start: bool,
) -> None:
    recs = [
        (Recommendation(f"T{i}", score, reason, kind, tuple(because)), TitleRecord(f"T{i}", name, None, 9.5, stock, ("I2",)))
        for i, (name, score, reason, kind, because, stock) in enumerate(items)
    ]
    body = recommendations_json(MemberRecommendations(member, cold_start, recs), version, None)
    expected = {
        "member_id": member,
        "model_version": version,
        "cold_start": cold_start,
        "data": [
            {
                "title_id": record.title_id,
                "title": record.title,
                "author": record.author,
                "price": record.price,
                "categories": list(record.categories),
                "in_stock": record.in_stock,
                "score": rec.score,
                "reason": rec.reason,
                "reason_kind": rec.reason_kind,
                "because": list(rec.because),
            }
            for rec, record in recs
        ],
        "count": len(recs),
    }
    assert body == json.dumps(expected, ensure_ascii=False, separators=(",", ":")).encode()

