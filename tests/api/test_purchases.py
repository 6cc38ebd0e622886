"""POST /v1/purchases: validated like the file importer, all or nothing, idempotent."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from recsys.storage.schema import Purchase
from tests.api.conftest import bearer, with_club


@pytest.fixture
def club_engine(engine: Engine) -> Engine:
    """This module runs on SQLite and PostgreSQL."""
    return with_club(engine)


def line(n: int, **over: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "line_id": f"W-{n}",
        "member_id": "M06",
        "title_id": "T11",
        "purchased_at": "2026-03-01T12:00:00",
        "quantity": 1,
        "unit_price": 139.0,
        "channel": "web",
        "order_id": "W",
    }
    values.update(over)
    return values


def count(engine: Engine) -> int:
    with engine.connect() as c:
        return int(c.scalar(select(func.count()).select_from(Purchase)) or 0)


def test_batch_inserts_then_is_idempotent(
    client: TestClient, keys: dict[str, str], club_engine: Engine
) -> None:
    admin = bearer(keys["admin"])
    before = count(club_engine)
    batch = {"lines": [line(1), line(2, title_id="T12", unit_price=None, channel=None)]}
    r = client.post("/v1/purchases", json=batch, headers=admin)
    assert r.status_code == 200, r.text
    assert r.json() == {"received": 2, "inserted": 2, "already_present": 0, "already_present_line_ids": []}
    assert count(club_engine) == before + 2
    with club_engine.connect() as c:
        price, channel = c.execute(
            select(Purchase.unit_price, Purchase.channel).where(Purchase.line_id == "W-2")
        ).one()
    assert float(price) == 128.0 and channel == "web"  # importer defaults: list price, web
    again = client.post("/v1/purchases", json={"lines": [line(1), line(3)]}, headers=admin)
    assert again.json() == {
        "received": 2,
        "inserted": 1,
        "already_present": 1,
        "already_present_line_ids": ["W-1"],
    }


def test_any_bad_line_rejects_the_batch_listing_every_fault(
    client: TestClient, keys: dict[str, str], club_engine: Engine
) -> None:
    before = count(club_engine)
    batch = {
        "lines": [
            line(1),
            line(2, quantity=0),
            line(3, member_id="M999", purchased_at="yesterday"),
            line(4, channel="pigeon", title_id="T404"),
            line(1),
        ]
    }
    r = client.post("/v1/purchases", json=batch, headers=bearer(keys["admin"]))
    assert r.status_code == 422, r.text
    body = r.json()
    faults = {(e["index"], e["field"]) for e in body["errors"]}
    assert faults == {
        (1, "quantity"),
        (2, "member_id"),
        (2, "purchased_at"),
        (3, "channel"),
        (3, "title_id"),
        (4, "line_id"),
    }
    assert all(e["reason"] for e in body["errors"])
    assert "nothing was written" in body["message"]
    assert count(club_engine) == before


def test_schema_errors_name_index_and_field(client: TestClient, keys: dict[str, str]) -> None:
    r = client.post(
        "/v1/purchases", json={"lines": [line(1), {"line_id": "x"}]}, headers=bearer(keys["admin"])
    )
    assert r.status_code == 422
    fields = {(e["index"], e["field"]) for e in r.json()["errors"]}
    assert (1, "member_id") in fields and (1, "quantity") in fields


def test_empty_or_oversized_batch_is_422(client: TestClient, keys: dict[str, str]) -> None:
    admin = bearer(keys["admin"])
    assert client.post("/v1/purchases", json={"lines": []}, headers=admin).status_code == 422
    big = {"lines": [line(n) for n in range(5001)]}
    r = client.post("/v1/purchases", json=big, headers=admin)
    assert r.status_code == 422 and "at most 5000" in r.json()["message"]


def test_posting_needs_an_admin_key(client: TestClient) -> None:
    r = client.post("/v1/purchases", json={"lines": [line(1)]})  # client's default: read key
    assert r.status_code == 403


def test_new_purchases_count_at_once_without_retrain(client: TestClient, keys: dict[str, str]) -> None:
    before = client.get("/v1/members/M06/recommendations", params={"limit": 20}).json()
    assert before["cold_start"] is True
    assert "T11" in {t["title_id"] for t in before["data"]}
    r = client.post("/v1/purchases", json={"lines": [line(1)]}, headers=bearer(keys["admin"]))
    assert r.status_code == 200
    after = client.get("/v1/members/M06/recommendations", params={"limit": 20}).json()
    assert after["cold_start"] is False  # folded in from purchases newer than trained_until
    assert "T11" not in {t["title_id"] for t in after["data"]}
    assert after["data"][0]["reason_kind"] == "history"


def test_dates_out_of_bounds_are_422_naming_index_and_field(
    client: TestClient, keys: dict[str, str], club_engine: Engine
) -> None:
    before = count(club_engine)
    batch = {
        "lines": [
            line(1),
            line(2, purchased_at="9999-12-31"),
            line(3, purchased_at="2099-01-01T00:00:00"),
            line(4, purchased_at="1850-06-01"),
            line(5, purchased_at="9999-12-31T23:00:00-05:00"),
        ]
    }
    r = client.post("/v1/purchases", json=batch, headers=bearer(keys["admin"]))
    assert r.status_code == 422, r.text
    errors = r.json()["errors"]
    assert {(e["index"], e["field"]) for e in errors} == {(i, "purchased_at") for i in (1, 2, 3, 4)}
    reasons = {e["index"]: e["reason"] for e in errors}
    assert "in the future" in reasons[1] and "in the future" in reasons[2]
    assert "before 1900-01-01" in reasons[3]
    assert count(club_engine) == before


def test_text_no_database_can_hold_is_422_on_both_databases(
    client: TestClient, keys: dict[str, str], club_engine: Engine
) -> None:
    """A NUL made PostgreSQL fail with a 500 (and SQLite store it); a lone surrogate made both
    drivers fail. Now each is a fault of its line and field, and nothing is looked up or written."""
    before = count(club_engine)
    batch = {
        "lines": [
            line(1, line_id="W-\u00001"),
            line(2, member_id="M0\u00006"),
            line(3, title_id="T1\u00001"),
            line(4, order_id="W\u0000"),
            line(5, member_id="M06\ud800"),
            line(6, key_code="K\u0000"),
        ]
    }
    body = json.dumps(batch)  # ASCII JSON: the surrogate travels as the escape \ud800
    headers = {**bearer(keys["admin"]), "Content-Type": "application/json"}
    r = client.post("/v1/purchases", content=body, headers=headers)
    assert r.status_code == 422, r.text
    faults = {(e["index"], e["field"]) for e in r.json()["errors"]}
    assert faults == {(0, "line_id"), (1, "member_id"), (2, "title_id"), (3, "order_id"), (4, "member_id"),
                      (5, "key_code")}
    assert all("NUL" in e["reason"] or "surrogate" in e["reason"] for e in r.json()["errors"])
    assert count(club_engine) == before
