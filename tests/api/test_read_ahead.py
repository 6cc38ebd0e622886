"""api/recommending.py: on a database server a member's snapshot is read in the worker's reader
thread, the rest in the compute thread (api/compute.py) — the same answers as the one-job path
(SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api import recommending
from api.recommending import TitleShelf, read_snapshot, recommendations_from_snapshot, recommendations_json
from recsys.errors import UnknownMemberError
from recsys.serving import RecommendationQuery
from tests.api.conftest import bearer, with_club

QUERIES = [
    RecommendationQuery(limit=20),
    RecommendationQuery(limit=3),
    RecommendationQuery(limit=10, category="I2"),
    RecommendationQuery(limit=10, category="TP", include_purchased=True),
    RecommendationQuery(limit=20, in_stock_only=False),
]


@pytest.fixture
def club_engine(engine: Engine) -> Engine:
    """This module runs on SQLite and PostgreSQL."""
    return with_club(engine)


def test_the_two_halves_answer_as_the_one_job(app: FastAPI, club_engine: Engine) -> None:
    with TestClient(app):
        model, shelf = app.state.holder.serving()
        assert isinstance(shelf, TitleShelf)
        for member in ("M01", "M02", "M03", "M04", "M05", "M06"):
            snapshot = read_snapshot(club_engine, model, member)
            for query in QUERIES:
                whole = recommendations_json(club_engine, model, member, query, shelf=shelf)
                halves = recommendations_from_snapshot(
                    club_engine, model, member, snapshot, query, shelf.current()
                )
                assert halves == whole, (member, query)
        with pytest.raises(UnknownMemberError) as split:
            read_snapshot(club_engine, model, "NOPE")
        with pytest.raises(UnknownMemberError) as one:
            recommendations_json(club_engine, model, "NOPE", QUERIES[0], shelf=shelf)
        assert str(split.value) == str(one.value)


def test_on_a_database_server_served_requests_read_in_the_reader_thread(
    app: FastAPI, club_engine: Engine, keys: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL: the snapshot in the reader thread. SQLite: no reader thread, one job."""
    readers: list[str] = []
    read = recommending.read_snapshot

    def traced(*args: Any) -> Any:
        readers.append(threading.current_thread().name)
        return read(*args)

    monkeypatch.setattr(recommending, "read_snapshot", traced)
    with TestClient(app) as client:
        client.headers.update(bearer(keys["read"]))
        for params in ({"limit": 5}, {"category": "I2"}):
            assert client.get("/v1/members/M01/recommendations", params=params).status_code == 200
        assert client.get("/v1/members/NOPE/recommendations").status_code == 404
        # a category the club's tree lacks: the one job, which looks it up (a 404 naming it)
        r = client.get("/v1/members/M01/recommendations", params={"category": "ZZ9"})
        assert r.status_code == 404 and "ZZ9" in r.text
    if club_engine.dialect.name == "sqlite":
        assert app.state.compute.readers is None and readers == []
    else:
        assert readers == ["compute-reads-0"] * 3
