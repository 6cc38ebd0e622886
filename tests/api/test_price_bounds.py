"""A price that rounds to 1e10 (numeric(12, 2) overflow) is a field error, not a 500 on PostgreSQL.

Found by probing the documented ``unit_price`` maximum (tests/api/test_openapi_schema.py).
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.api.conftest import bearer, with_club


@pytest.fixture
def club_engine(engine: Engine) -> Engine:
    """This module runs on SQLite and PostgreSQL."""
    return with_club(engine)


def _post(client: TestClient, key: str, line_id: str, price: float | str) -> tuple[int, dict[str, object]]:
    line = {
        "line_id": line_id,
        "member_id": "M01",
        "title_id": "T01",
        "purchased_at": "2026-01-05T10:00:00",
        "quantity": 1,
        "unit_price": price,
    }
    r = client.post("/v1/purchases", json={"lines": [line]}, headers=bearer(key))
    return r.status_code, r.json()


@pytest.mark.parametrize("price", [9999999999.996, "9999999999.995", "9999999999.999"])
def test_a_price_rounding_past_numeric_12_2_is_a_field_error(
    client: TestClient, keys: dict[str, str], price: float | str
) -> None:
    status, body = _post(client, keys["admin"], "B-1", price)
    assert status == 422, body
    assert [(e["field"], e["reason"]) for e in body["errors"]] == [("unit_price", f"{price} is too large")]  # type: ignore[union-attr, index]


def test_the_largest_price_lands(client: TestClient, keys: dict[str, str]) -> None:
    status, body = _post(client, keys["admin"], "B-2", "9999999999.99")
    assert status == 200 and body["inserted"] == 1, body
    status, body = _post(client, keys["admin"], "B-3", 9999999999.994)
    assert status == 200 and body["inserted"] == 1, body
