"""A small synthetic club and quick training settings for the training tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine

from recsys.settings import Settings, TrainingSettings
from tests.training.synthetic import Club, make_club

FAST = {
    "factors": 16,
    "iterations": 10,
    "bpr_factors": 16,
    "bpr_iterations": 30,
    "knn_neighbours": 20,
    "threads": 1,
}


@pytest.fixture
def fast_settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "var", training=TrainingSettings(**FAST))


@pytest.fixture
def club(sqlite_engine: Engine) -> Club:
    return make_club(sqlite_engine)
