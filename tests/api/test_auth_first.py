"""The key is checked before anything else a route depends on (a database connection, the
model, the body): a caller without a key learns nothing and costs nothing but the check."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from recsys.settings import Settings
from recsys.storage.db import make_engine

ROUTES = [
    "/v1/segments",
    "/v1/catalogs/2026Q1",
    "/v1/catalogs/2026Q1/0.pdf",
    "/v1/campaigns",
    "/v1/members/M01/catalog.pdf",
    "/v1/members/M01",
    "/v1/members/M01/recommendations",
    "/v1/titles/T01/similar",
    "/v1/categories/I247/popular",
    "/v1/models",
]


@pytest.fixture
def down_client(settings: Settings) -> Iterator[TestClient]:
    """No database (nothing answers on port 1) and no model (an empty models folder)."""
    down = make_engine("postgresql://nobody@127.0.0.1:1/none", connect_args={"connect_timeout": 1})
    with TestClient(create_app(settings, engine=down), raise_server_exceptions=False) as client:
        yield client
    down.dispose()


def test_no_key_is_401_before_database_or_model(down_client: TestClient) -> None:
    documented = set(down_client.get("/openapi.json").json()["paths"])
    wrong = {}
    for route in ROUTES:
        r = down_client.get(route)
        if r.status_code != 401 or r.json()["error"] != "unauthorized":
            wrong[route] = (r.status_code, r.text[:120])
    assert not wrong, wrong
    assert len(documented) >= len(ROUTES)
