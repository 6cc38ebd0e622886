"""GET /v1/members/{id}: the profile, and personal data by scope."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.api.conftest import bearer, with_club


@pytest.fixture
def club_engine(engine: Engine) -> Engine:
    """This module runs on SQLite and PostgreSQL."""
    return with_club(engine)


def test_profile_with_read_key_has_no_personal_data(client: TestClient) -> None:
    r = client.get("/v1/members/M01")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["member_id"] == "M01"
    assert body["value_tier"] == "core"  # latest quarter 2026Q1, not 2025Q4's 'regular'
    assert body["segment"] == {"quarter": "2026Q1", "segment": 1, "name": "当代小说读者"}
    assert body["top_categories"][0]["code"] == "I247"
    assert body["top_categories"][0]["units"] == 5
    assert body["declared_categories"] == ["I247"]
    counts = body["purchases"]
    assert counts["lines"] == 6 and counts["orders"] == 6 and counts["units_bought"] == 6
    assert counts["units_returned"] == 0
    assert counts["spent"] == 28 + 26 + 98 + 59 + 45 + 22
    assert body["personal"] is None
    assert "张三" not in r.text and "路" not in r.text


def test_profile_with_admin_key_has_name_and_address(client: TestClient, keys: dict[str, str]) -> None:
    body = client.get("/v1/members/M01", headers=bearer(keys["admin"])).json()
    assert body["personal"]["name"] == "张三"
    assert body["personal"]["address"] == "张三路 1 号"


def test_profile_of_member_without_history_or_segment(client: TestClient) -> None:
    body = client.get("/v1/members/M06").json()
    assert body["value_tier"] is None and body["segment"] is None
    assert body["top_categories"] == []
    assert body["purchases"]["lines"] == 0 and body["purchases"]["last_purchase_at"] is None


def test_segment_comes_from_the_latest_quarter_only(client: TestClient) -> None:
    body = client.get("/v1/members/M03").json()  # in 2025Q4, not in 2026Q1
    assert body["value_tier"] is None and body["segment"] is None


def test_returns_are_counted(client: TestClient) -> None:
    counts = client.get("/v1/members/M02").json()["purchases"]
    assert counts["units_returned"] == 1 and counts["units_bought"] == 6


def test_unknown_member_profile_is_404(client: TestClient) -> None:
    r = client.get("/v1/members/M404")
    assert r.status_code == 404 and "M404" in r.json()["message"]
