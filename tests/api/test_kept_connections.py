"""api/recommending.py: a compute thread keeps its database connection between requests."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, event
from sqlalchemy.exc import DBAPIError

from api.app import create_app
from recsys.settings import Settings
from recsys.storage import members as members_db
from tests.api.conftest import bearer, with_club

PATH = "/v1/members/M01/recommendations"


@pytest.fixture
def club_engine(engine: Engine) -> Engine:
    """This module runs on SQLite and PostgreSQL."""
    return with_club(engine)


def test_a_compute_thread_keeps_one_connection_from_request_to_request(
    app: FastAPI, club_engine: Engine, keys: dict[str, str]
) -> None:
    pool_events: list[str] = []

    def checkout(*_args: object) -> None:
        pool_events.append("out")

    def checkin(*_args: object) -> None:
        pool_events.append("in")

    event.listen(club_engine.pool, "checkout", checkout)
    event.listen(club_engine.pool, "checkin", checkin)
    try:
        with TestClient(app) as client:
            client.headers.update(bearer(keys["read"]))
            assert client.get(PATH).status_code == 200  # the key checked, the connection kept
            pool_events.clear()
            for limit in (3, 5, 7):
                r = client.get(PATH, params={"limit": limit})
                assert r.status_code == 200 and r.json()["count"] == limit
            assert client.get("/v1/members/NOPE/recommendations").status_code == 404
            assert pool_events == []  # no checkout (nor pre-ping, nor reset) per request
        assert pool_events == ["in"]  # given back when the worker stops
    finally:
        event.remove(club_engine.pool, "checkout", checkout)
        event.remove(club_engine.pool, "checkin", checkin)


def test_a_kept_connection_the_database_dropped_is_replaced_once(
    api_settings: Settings, club_engine: Engine, keys: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # the member's snapshot: the request's first read, in the reader thread or the compute job
    snapshot = members_db.member_snapshot
    drops = {"left": 1}

    def dropped(connection: Connection, *args: Any, **kwargs: Any) -> Any:
        if drops["left"]:
            drops["left"] -= 1
            connection.invalidate()  # as SQLAlchemy does when the server has gone
            raise DBAPIError("SELECT …", {}, OSError("server closed the connection"), connection_invalidated=True)
        return snapshot(connection, *args, **kwargs)

    monkeypatch.setattr(members_db, "member_snapshot", dropped)
    with TestClient(create_app(api_settings, engine=club_engine), raise_server_exceptions=False) as client:
        client.headers.update(bearer(keys["read"]))
        assert client.get(PATH).status_code == 200
        drops["left"] = 1
        assert client.get(PATH).status_code == 200 and drops["left"] == 0  # answered on a new one
        drops["left"] = 2  # dropped again right away: not tried a third time
        assert client.get(PATH).status_code == 503  # the app's answer to a database error
        assert client.get(PATH).status_code == 200
