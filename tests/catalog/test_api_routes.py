"""The segments and catalogs routers on the demo club (dependencies swapped by overrides)."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pypdf import PdfReader
from sqlalchemy import Connection, Engine

from api import errors
from api.auth import KeyVerifier, Principal, require_editions, require_read
from api.deps import get_connection, get_engine, get_model, get_settings
from api.routes import catalogs, segments
from catalog.paths import catalog_path, edition_path
from catalog.production import render_segment_catalogs
from recsys.files import is_temp
from recsys.settings import Settings
from recsys.storage import segments as segments_db
from recsys.storage.apikeys import create_key
from tests.catalog.conftest import QUARTER, Club
from tests.disk import fill_disk_under

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

    async def printer() -> Principal:
        return Principal(scope="editions", prefix="printer")

    async def model() -> object:
        return club.model

    async def engine_dep() -> Engine:
        return club.engine

    overrides: dict[Callable[..., Any], Callable[..., Any]] = {
        get_connection: connection_dep, get_settings: settings_dep, require_read: reader, get_model: model,
        require_editions: printer, get_engine: engine_dep,
    }
    app.dependency_overrides.update(overrides)
    app.state.settings = settings
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
    response = client.get(f"/v1/catalogs/{QUARTER}")
    body = response.json()
    assert body["count"] == 3
    assert body["data"][0]["titles"] == len(club.plans[0].title_ids)
    # the PDF's URL on this server, never the server's file path
    assert body["data"][0]["pdf"] == f"/v1/catalogs/{QUARTER}/0.pdf" and body["data"][1]["pdf"] is None
    data_dir = str(client.app.state.settings.data_dir)  # type: ignore[attr-defined]
    assert data_dir not in response.text and str(Path(data_dir).resolve()) not in response.text
    pdf = client.get(body["data"][0]["pdf"])
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF") and int(pdf.headers["content-length"]) == len(pdf.content)
    assert 'filename="2026Q4-segment-0.pdf"' in pdf.headers["content-disposition"]
    assert client.get(f"/v1/catalogs/{QUARTER}/1.pdf").status_code == 404


def test_a_cut_short_segment_pdf_is_not_served(client: TestClient) -> None:
    settings: Settings = client.app.state.settings  # type: ignore[attr-defined]
    path = catalog_path(settings, QUARTER, 0)
    whole = path.read_bytes()
    try:
        path.write_bytes(whole[: len(whole) // 3])  # what a crash or a full disk left
        response = client.get(f"/v1/catalogs/{QUARTER}/0.pdf")
        assert response.status_code == 404 and response.json()["error"] == "not_found"
        assert client.get(f"/v1/catalogs/{QUARTER}").json()["data"][0]["pdf"] is None
    finally:
        path.write_bytes(whole)
    assert client.get(f"/v1/catalogs/{QUARTER}/0.pdf").content == whole


def test_member_edition_is_rendered_on_demand(client: TestClient, club: Club) -> None:
    from recsys.storage import segments as segments_db

    with club.engine.connect() as connection:
        member_id = segments_db.best_members(connection, QUARTER, 1)[0][0]
    response = client.get(f"/v1/members/{member_id}/catalog.pdf", params={"quarter": QUARTER})
    assert response.status_code == 200 and response.content.startswith(b"%PDF")
    assert len(PdfReader(io.BytesIO(response.content)).pages) > 2
    assert client.get("/v1/members/NOBODY/catalog.pdf").status_code == 404


# ---- with real keys: who may read a member's edition -------------------------------------


def _app(club: Club, settings: Settings) -> FastAPI:
    """The catalogs router with the real key checks and the club's database."""
    app = FastAPI()
    errors.install(app)
    app.include_router(catalogs.router)
    app.state.settings = settings
    app.state.engine = club.engine
    app.state.keys = KeyVerifier(club.engine, 0)

    async def model() -> object:
        return club.model

    app.dependency_overrides[get_model] = model
    return app


def _settings(club: Club, data_dir: Path, **api: Any) -> Settings:
    settings = club.settings.model_copy(update={"data_dir": data_dir})
    return settings.model_copy(update={"api": settings.api.model_copy(update=api)})


@pytest.fixture(scope="module")
def scoped_keys(club: Club) -> dict[str, str]:
    with club.engine.begin() as connection:
        return {scope: create_key(connection, scope, "catalog tests")[0] for scope in ("read", "editions", "admin")}


@pytest.fixture(scope="module")
def members(club: Club) -> list[str]:
    with club.engine.connect() as connection:
        return [m for m, _ in segments_db.best_members(connection, QUARTER, 1)]


def _get(client: TestClient, member_id: str, key: str | None) -> Any:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return client.get(f"/v1/members/{member_id}/catalog.pdf", params={"quarter": QUARTER}, headers=headers)


def test_an_edition_needs_an_editions_or_admin_key_even_in_open_demo(
    club: Club, tmp_path: Path, scoped_keys: dict[str, str], members: list[str]
) -> None:
    for open_demo in (False, True):
        settings = _settings(club, tmp_path / "var", open_demo=open_demo)
        with TestClient(_app(club, settings)) as client:
            anonymous = _get(client, members[0], None)
            assert anonymous.status_code == 401 and anonymous.json()["error"] == "unauthorized"
            reader = _get(client, members[0], scoped_keys["read"])
            assert reader.status_code == 403 and "editions or admin" in reader.json()["message"]
            assert b"%PDF" not in reader.content
            # the segment catalog (no personal data) stays readable with a read key
            assert client.get(f"/v1/catalogs/{QUARTER}", headers={"Authorization": f"Bearer {scoped_keys['read']}"}).status_code == 200
    assert not (tmp_path / "var" / "catalogs").exists()  # nothing was rendered for them
    with TestClient(_app(club, _settings(club, tmp_path / "var"))) as client:
        for scope in ("editions", "admin"):
            response = _get(client, members[0], scoped_keys[scope])
            assert response.status_code == 200 and response.content.startswith(b"%PDF"), response.text


def test_on_demand_renders_are_rate_limited_per_key(
    club: Club, tmp_path: Path, scoped_keys: dict[str, str], members: list[str]
) -> None:
    settings = _settings(club, tmp_path / "var", render_burst=1, render_rate_per_minute=0.5)
    with TestClient(_app(club, settings)) as client:
        assert _get(client, members[0], scoped_keys["editions"]).status_code == 200
        # served from disk: no render, no token
        assert _get(client, members[0], scoped_keys["editions"]).status_code == 200
        limited = _get(client, members[1], scoped_keys["editions"])
        assert limited.status_code == 429 and limited.json()["error"] == "too_many_requests"
        assert int(limited.headers["Retry-After"]) > 0
        assert not edition_path(settings, QUARTER, members[1]).exists()
        # another key has a bucket of its own
        assert _get(client, members[1], scoped_keys["admin"]).status_code == 200


def test_a_full_disk_is_507_and_leaves_nothing(
    club: Club, tmp_path: Path, scoped_keys: dict[str, str], members: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _settings(club, tmp_path / "var")
    catalogs_dir = settings.catalogs_dir
    with TestClient(_app(club, settings)) as client:
        with monkeypatch.context() as patch:
            fill_disk_under(catalogs_dir, patch)
            response = _get(client, members[0], scoped_keys["editions"])
        assert response.status_code == 507, response.text
        body = response.json()
        assert body["error"] == "insufficient_storage" and "disk is full" in body["message"]
        assert str(tmp_path) not in response.text
        left = [p for p in catalogs_dir.rglob("*") if p.is_file() and p.suffix != ".lock"]
        assert left == [], left  # no PDF, no sidecar, no temporary file
        again = _get(client, members[0], scoped_keys["editions"])
        assert again.status_code == 200 and len(PdfReader(io.BytesIO(again.content)).pages) > 2
    assert not [p for p in catalogs_dir.rglob("*") if is_temp(p)]


def test_a_missing_font_is_503_naming_it(
    club: Club, tmp_path: Path, scoped_keys: dict[str, str], members: list[str]
) -> None:
    settings = _settings(club, tmp_path / "var")
    settings = settings.model_copy(
        update={"catalog": settings.catalog.model_copy(update={"member_font": "Missing Hei"})}
    )
    with TestClient(_app(club, settings)) as client:
        response = _get(client, members[0], scoped_keys["editions"])
    assert response.status_code == 503 and response.json()["error"] == "font_unavailable"
    assert "Missing Hei" in response.json()["message"] and "fonts-" in response.json()["message"]
    assert not edition_path(settings, QUARTER, members[0]).exists()
