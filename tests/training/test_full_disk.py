"""A full disk while training writes its small files (the ACTIVE pointer, registry.json, the
purchases extract cache): the old file stays, no temporary file is left, the error says so."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine

from recsys.errors import DiskFullError
from recsys.files import is_temp
from tests.disk import fill_disk_under
from tests.training.test_extract_cache import _lines, _parents
from tests.training.test_registry import _publish, template  # noqa: F401 - the fixture
from training.extract_cache import ExtractCache
from training.registry import ModelRegistry


def test_activation_on_a_full_disk_keeps_the_active_model(
    tmp_path: Path, template: Path, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    registry = ModelRegistry(tmp_path / "models")
    _publish(registry, template, "v1", {}, promote="force")
    _publish(registry, template, "v2", {}, promote="never")
    state = registry.state_file.read_text()
    with monkeypatch.context() as patch:
        fill_disk_under(tmp_path / "models", patch, room=3)
        with pytest.raises(DiskFullError, match="no space left"):
            registry.activate("v2")
    assert registry.active_version() == "v1" and registry.state_file.read_text() == state
    assert not [p.name for p in registry.models_dir.iterdir() if is_temp(p)]
    registry.activate("v2")
    assert registry.active_version() == "v2"


def test_a_cache_that_cannot_be_written_leaves_the_old_one(
    sqlite_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _parents(sqlite_engine)
    _lines(sqlite_engine, 1, 50)
    cache = ExtractCache(tmp_path / "cache")
    with sqlite_engine.connect() as connection:
        cache.read(connection)
    before = cache.path.read_bytes()
    _lines(sqlite_engine, 51, 50)
    with monkeypatch.context() as patch, sqlite_engine.connect() as connection:
        fill_disk_under(tmp_path / "cache", patch, room=100)
        with pytest.raises(DiskFullError):
            cache.read(connection)
    assert cache.path.read_bytes() == before
    assert [p.name for p in cache.directory.iterdir()] == [cache.path.name]
    with sqlite_engine.connect() as connection:
        log, report = cache.read(connection)
    assert report.state == "warm" and len(log) == 100
