"""A NUL in an id, a code or any text parameter is a 422 naming it, on SQLite and PostgreSQL
alike (issue 9, finding 7: PostgreSQL answered 500 on six routes, SQLite looked it up — or
stored it). Every string path and query parameter of the API is listed here; the OpenAPI
document says the same (a ``pattern`` without NUL on each)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from recsys.text import NO_NUL_PATTERN
from tests.api.conftest import bearer, with_club


@pytest.fixture
def club_engine(engine: Engine) -> Engine:
    """This module runs on SQLite and PostgreSQL."""
    return with_club(engine)


NUL = "%00"
# (method, url, where, field): every string parameter of every route
CASES = [
    ("GET", f"/v1/members/M{NUL}1/recommendations", "path", "member_id"),
    ("GET", f"/v1/members/M01/recommendations?category=I2{NUL}47", "query", "category"),
    ("GET", f"/v1/members/M{NUL}1", "path", "member_id"),
    ("GET", f"/v1/titles/T{NUL}1/similar", "path", "title_id"),
    ("GET", f"/v1/categories/I2{NUL}47/popular", "path", "code"),
    ("GET", f"/v1/segments?quarter=2026Q1{NUL}", "query", "quarter"),
    ("GET", f"/v1/catalogs/2026Q1{NUL}", "path", "quarter"),
    ("GET", f"/v1/members/M{NUL}1/catalog.pdf", "path", "member_id"),
    ("GET", f"/v1/members/M01/catalog.pdf?quarter=2026Q1{NUL}", "query", "quarter"),
    ("GET", f"/v1/campaigns/hill{NUL}strom/report", "path", "campaign_id"),
    ("POST", f"/v1/models/v{NUL}1/activate", "path", "version"),
]


@pytest.mark.parametrize(("method", "url", "where", "field"), CASES, ids=[c[1] for c in CASES])
def test_a_nul_in_a_parameter_is_422_naming_it(
    client: TestClient, keys: dict[str, str], method: str, url: str, where: str, field: str
) -> None:
    r = client.request(method, url, headers=bearer(keys["admin"]))
    assert r.status_code == 422, r.text
    errors: list[dict[str, Any]] = r.json()["errors"]
    assert [(e["location"], e["field"]) for e in errors] == [(where, field)]


def test_every_string_parameter_is_documented_without_nul(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    seen = set()
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            for param in operation.get("parameters", []):
                alternatives = param["schema"].get("anyOf", [param["schema"]])
                strings = [a for a in alternatives if a.get("type") == "string"]
                if not strings or param["in"] == "header":
                    continue
                seen.add((method.upper(), path, param["name"]))
                assert all(s.get("pattern") for s in strings), (method, path, param["name"])
                if "pattern" in strings[0] and strings[0]["pattern"] != NO_NUL_PATTERN:
                    assert "Q[1-4]" in strings[0]["pattern"]  # quarters: a stricter pattern
    assert len(seen) >= len(CASES) - 1
