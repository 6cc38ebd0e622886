"""The segments and catalogs routers on the demo club (dependencies swapped by overrides)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Connection

from api import errors
from api.auth import Principal, require_read
from api.deps import get_connection, get_model, get_settings
from api.routes import catalogs, segments
from catalog.production import render_segment_catalogs
from recsys.settings import Settings
from tests.catalog.conftest import QUARTER, Club

pytestmark = pytest.mark.slow  # renders PDFs (a few seconds each)


@pytest.fixture(scope="module")
def client(club: Club, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = club.settings.model_copy(update={"data_dir": tmp_path_factory.mktemp("api-var")})
    settings.models_dir.mkdir(parents=True)
    with club.engine.connect() as conn:
        render_segment_catalogs(conn, settings, QUARTER, club.plans[:1])
    app = FastAPI()
    errors.install(app)
    app.include_router(segments.router)
    app.include_router(catalogs.router)

    def connection_dep() -> Iterator[Connection]:
        with club.engine.connect() as c:
            yield c

    async def settings_dep() -> Settings:
        return settings

    async def reader() -> Principal:
        return Principal(scope="read", prefix=None)

    async def model() -> object:
        return club.model

    overrides: dict[Callable[..., Any], Callable[..., Any]] = {
        get_connection: connection_dep, get_settings: settings_dep, require_read: reader, get_model: model,
    }
    app.dependency_overrides.update(overrides)
    with TestClient(app) as test_client:
        yield test_client


def test_segments_of_a_quarter(client: TestClient, club: Club) -> None:
    body = client.get("/v1/segments", params={"quarter": QUARTER}).json()
    assert body["count"] == 3 and body["quarter"] == QUARTER
    first = body["data"][0]
    assert first["name"] == club.segmentation.profiles[0].name
    assert first["top_categories"][0]["name"] and sum(first["tier_mix"].values()) == first["size"]
    assert client.get("/v1/segments").json()["quarter"] == QUARTER  # the latest by default
    assert client.get("/v1/segments", params={"quarter": "2019Q1"}).status_code == 404
    assert client.get("/v1/segments", params={"quarter": "2026-4"}).status_code == 422


def test_catalog_plans_and_pdfs(client: TestClient, club: Club) -> None:
    body = client.get(f"/v1/catalogs/{QUARTER}").json()
    assert body["count"] == 3
    assert body["data"][0]["titles"] == len(club.plans[0].title_ids)
    assert body["data"][0]["pdf"] and body["data"][1]["pdf"] is None
    pdf = client.get(f"/v1/catalogs/{QUARTER}/0.pdf")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")
    assert client.get(f"/v1/catalogs/{QUARTER}/1.pdf").status_code == 404


def test_member_edition_is_rendered_on_demand(client: TestClient, club: Club) -> None:
    from recsys.storage import segments as segments_db

    with club.engine.connect() as connection:
        member_id = segments_db.best_members(connection, QUARTER, 1)[0][0]
    response = client.get(f"/v1/members/{member_id}/catalog.pdf", params={"quarter": QUARTER})
    assert response.status_code == 200 and response.content.startswith(b"%PDF")
    assert client.get("/v1/members/NOBODY/catalog.pdf").status_code == 404
