"""API fixtures: the small club in the database, a model source, keys and a client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.app import create_app
from api.model_holder import ModelSource
from recsys.apikeys import create_key
from recsys.settings import Settings
from tests.api import club
from tests.api.doubles import FakeModel, FakeRegistry


@pytest.fixture
def club_engine(engine: Engine) -> Engine:
    with engine.begin() as connection:
        club.insert_club(connection)
    return engine


@pytest.fixture
def api_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"api": settings.api.model_copy(update={"model_poll_seconds": 0.05})})


@pytest.fixture
def registry(tmp_path: Path) -> ModelSource:
    models = [FakeModel("v1"), FakeModel("v2", flip=True)]
    return FakeRegistry(tmp_path / "models", models, active="v1")


@pytest.fixture
def keys(club_engine: Engine) -> dict[str, str]:
    with club_engine.begin() as connection:
        admin, _ = create_key(connection, "admin", "tests")
        read, _ = create_key(connection, "read", "tests")
    return {"admin": admin, "read": read}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def app(api_settings: Settings, club_engine: Engine, registry: ModelSource) -> FastAPI:
    return create_app(api_settings, engine=club_engine, registry=registry)


@pytest.fixture
def client(app: FastAPI, keys: dict[str, str]) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as test_client:
        test_client.headers.update(bearer(keys["read"]))
        yield test_client
