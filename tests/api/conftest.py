"""API fixtures: the small club in the database, really trained models, keys and a client.

Two model versions are trained once per session (implicit ALS, training/pipeline)
on the club *without* its newest title T99, so T99 is a new release the API must
feed to the model. Each test gets its own copy of the registry.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.app import create_app
from recsys.settings import Settings
from recsys.storage.apikeys import create_key
from recsys.storage.db import make_engine, upgrade
from tests.api import club
from training.pipeline import run_training
from training.registry import ModelRegistry


def train_settings(data_dir: Path, *, factors: int, seed: int) -> Settings:
    settings = Settings(data_dir=data_dir)
    training = settings.training.model_copy(
        update={"factors": factors, "seed": seed, "iterations": 8, "threads": 1}
    )
    return settings.model_copy(update={"training": training})


@pytest.fixture(scope="session")
def trained_models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """A models dir with two versions trained on the club; returns (dir, [old, new])."""
    root = tmp_path_factory.mktemp("trained")
    engine = make_engine(f"sqlite:///{root / 'club.db'}")
    upgrade(engine)
    with engine.begin() as connection:
        club.insert_club(connection, with_new_title=False)
    versions = []
    for factors, seed in ((4, 1), (8, 2)):
        settings = train_settings(root / "var", factors=factors, seed=seed)
        result = run_training(engine, settings, promote="force")
        versions.append(result.info.version)
    engine.dispose()
    return root / "var" / "models", versions


@pytest.fixture
def versions(trained_models: tuple[Path, list[str]]) -> list[str]:
    return trained_models[1]


def with_club(engine: Engine) -> Engine:
    with engine.begin() as connection:
        club.insert_club(connection)
    return engine


@pytest.fixture
def club_engine(sqlite_engine: Engine) -> Engine:
    """SQLite by default; modules that exercise SQL override it with the two-backend ``engine``."""
    return with_club(sqlite_engine)


@pytest.fixture
def api_settings(settings: Settings, trained_models: tuple[Path, list[str]]) -> Settings:
    """Settings whose models_dir holds a copy of the trained registry, the older version active."""
    shutil.copytree(trained_models[0], settings.models_dir)
    ModelRegistry(settings.models_dir).activate(trained_models[1][0])
    return settings.model_copy(update={"api": settings.api.model_copy(update={"model_poll_seconds": 0.05})})


@pytest.fixture
def registry(api_settings: Settings) -> ModelRegistry:
    return ModelRegistry(api_settings.models_dir)


@pytest.fixture
def keys(club_engine: Engine) -> dict[str, str]:
    with club_engine.begin() as connection:
        admin, _ = create_key(connection, "admin", "tests")
        read, _ = create_key(connection, "read", "tests")
    return {"admin": admin, "read": read}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def app(api_settings: Settings, club_engine: Engine) -> FastAPI:
    return create_app(api_settings, engine=club_engine)


@pytest.fixture
def client(app: FastAPI, keys: dict[str, str]) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as test_client:
        test_client.headers.update(bearer(keys["read"]))
        yield test_client
