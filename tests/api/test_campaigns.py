"""/v1/campaigns and the key code of POST /v1/purchases, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from recsys.storage import campaigns as campaigns_db
from recsys.storage import contacts as contacts_db
from recsys.storage import members as members_db
from recsys.storage.schema import Purchase
from tests.api.conftest import bearer, with_club

IN_HOME = dt.date(2026, 3, 2)


@pytest.fixture
def club_engine(engine: Engine) -> Engine:
    """The small API club with a campaign: M01–M04 mailed, M05–M06 held out."""
    with_club(engine)
    with engine.begin() as connection:
        campaign = campaigns_db.create_campaign(
            connection, name="2026Q1", quarter="2026Q1", in_home_date=IN_HOME, response_days=30, late_days=0,
            holdout_share=0.3, universal_holdout_share=0.0, seed=1,
        )
        edition = campaigns_db.add_edition(
            connection, campaign.id, code="S0-catalog", name="catalog", kind="catalog", segment=0,
            in_home_date=IN_HOME, costs=(1.0, 0.5, 0.8, 0.0), model_version="v1",
        )
        treatment = campaigns_db.add_treatment(
            connection, campaign.id, name="S0 everyone", edition_id=edition.id, key_code="2026Q1-S0-C"
        )
        keys = members_db.member_keys(connection, ["M01", "M02", "M03", "M04", "M05", "M06"])
        contacts_db.write_contacts(connection, [
            (campaign.id, keys[m], treatment.id, edition.id, "holdout" if m in ("M05", "M06") else "mailed",
             None, 0, "core", 0.3, IN_HOME, Decimal("2.3"), "v1", None, None, dt.datetime(2026, 2, 1))
            for m in sorted(keys)
        ])
    return engine


def _line(n: int, member: str, **over: object) -> dict[str, object]:
    values: dict[str, object] = {
        "line_id": f"K-{n}", "member_id": member, "title_id": "T11",
        "purchased_at": "2026-03-05T12:00:00", "quantity": 1, "unit_price": 50.0,
    }
    values.update(over)
    return values


def test_key_codes_are_stored_and_an_unknown_one_rejects_the_batch(
    client: TestClient, keys: dict[str, str], club_engine: Engine
) -> None:
    admin = bearer(keys["admin"])
    bad = client.post("/v1/purchases", json={"lines": [
        _line(1, "M01", key_code="2026Q1-S0-C"), _line(2, "M02", key_code="NOPE-1"),
    ]}, headers=admin)
    assert bad.status_code == 422, bad.text
    errors = bad.json()["errors"]
    assert [(e["index"], e["field"]) for e in errors] == [(1, "key_code")]
    assert "unknown key code 'NOPE-1'" in errors[0]["reason"]
    good = client.post("/v1/purchases", json={"lines": [
        _line(1, "M01", key_code="2026Q1-S0-C"), _line(2, "M02"), _line(3, "M05"),
    ]}, headers=admin)
    assert good.status_code == 200, good.text
    with club_engine.connect() as connection:
        stored = {line: code for line, code in connection.execute(
            select(Purchase.line_id, Purchase.key_code).where(Purchase.line_id.like("K-%"))
        )}
    assert stored == {"K-1": "2026Q1-S0-C", "K-2": None, "K-3": None}


def test_the_report_is_aggregate_and_open_to_read_keys(
    client: TestClient, keys: dict[str, str], club_engine: Engine
) -> None:
    admin = bearer(keys["admin"])
    posted = client.post("/v1/purchases", json={"lines": [
        _line(1, "M01", key_code="2026Q1-S0-C"), _line(2, "M02", unit_price=30.0), _line(3, "M05", unit_price=20.0),
    ]}, headers=admin)
    assert posted.status_code == 200, posted.text
    listed = client.get("/v1/campaigns")
    assert listed.status_code == 200, listed.text
    [campaign] = listed.json()["data"]
    assert campaign["name"] == "2026Q1" and campaign["contacts"] == {"mailed": 4, "holdout": 2}
    by_id = client.get(f"/v1/campaigns/{campaign['id']}/report")  # the client carries the read key
    by_name = client.get("/v1/campaigns/2026Q1/report")
    assert by_id.status_code == by_name.status_code == 200, by_id.text
    body = by_id.json()
    assert body == by_name.json()
    [arm] = body["arms"]
    assert arm["arm"] == "S0 everyone" and arm["members"] == {"mailed": 4, "holdout": 2}
    assert arm["response"]["mailed"] == pytest.approx(0.5) and arm["response"]["holdout"] == pytest.approx(0.5)
    assert arm["revenue"]["mailed"] == pytest.approx(80 / 4) and arm["revenue"]["holdout"] == pytest.approx(20 / 2)
    assert arm["revenue"]["incremental"] == pytest.approx(10.0)
    for outcome in ("response", "orders", "revenue", "margin"):
        assert {"mailed", "holdout", "incremental", "low", "high"} <= set(arm[outcome])
    assert "M01" not in by_id.text and "张三" not in by_id.text  # no member's data in an aggregate report
    assert client.get("/v1/campaigns/2099Q1/report").status_code == 404
    assert client.get("/v1/campaigns/1/report", headers={"Authorization": ""}).status_code == 401
