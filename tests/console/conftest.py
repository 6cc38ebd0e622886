"""Console fixtures: the API's small club and trained models, a staff key per role, and a
client that logs in through the login form (as a browser does)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import Engine

from api.app import create_app
from recsys.settings import Settings
from recsys.storage.apikeys import create_key
from tests.api.conftest import api_settings, club_engine, registry, trained_models, versions  # noqa: F401 - fixtures

BASE = "http://testserver"
SAME_ORIGIN = {"Origin": BASE, "Sec-Fetch-Site": "same-origin"}


@pytest.fixture
def staff_keys(club_engine: Engine) -> dict[str, str]:  # noqa: F811
    with club_engine.begin() as connection:
        return {scope: create_key(connection, scope, f"{scope} staff")[0] for scope in ("read", "editions", "admin")}


@pytest.fixture
def console_app(api_settings: Settings, club_engine: Engine) -> FastAPI:  # noqa: F811
    return create_app(api_settings, engine=club_engine)


def login(client: TestClient, key: str) -> str:
    """Log in through the form; return the session cookie's value (and leave the jar empty)."""
    response = client.post("/ui/login", data={"key": key, "next": "/ui/"}, headers=SAME_ORIGIN, follow_redirects=False)
    assert response.status_code == 303, response.text
    value = response.cookies["bk_console"]
    client.cookies.clear()
    return value


class Staff:
    """One client, a session cookie per role: ``staff.get("admin", "/ui/models")``."""

    def __init__(self, client: TestClient, cookies: dict[str, str]) -> None:
        self.client, self.cookies = client, cookies

    def _headers(self, role: str, headers: dict[str, str] | None) -> dict[str, str]:
        return {"Cookie": f"bk_console={self.cookies[role]}", **(headers or {})}

    def get(self, role: str, path: str, headers: dict[str, str] | None = None, **kwargs: object) -> Response:
        return self.client.get(path, headers=self._headers(role, headers), follow_redirects=False, **kwargs)  # type: ignore[arg-type]

    def post(self, role: str, path: str, data: dict[str, str], headers: dict[str, str] | None = None) -> Response:
        return self.client.post(
            path, data=data, headers=self._headers(role, SAME_ORIGIN if headers is None else headers),
            follow_redirects=False,
        )


@pytest.fixture
def client(console_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(console_app, base_url=BASE, raise_server_exceptions=True) as test_client:
        yield test_client


@pytest.fixture
def staff(client: TestClient, staff_keys: dict[str, str]) -> Staff:
    return Staff(client, {scope: login(client, key) for scope, key in staff_keys.items()})
