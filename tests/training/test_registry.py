from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from sqlalchemy import Engine

from recsys.errors import ModelNotFoundError
from recsys.settings import Settings
from tests.training.synthetic import Club
from training import pipeline
from training.pipeline import run_training
from training.registry import ModelRegistry

ROOT = Path(__file__).resolve().parents[2]


def _meta_writer(metrics: dict[str, float]):  # type: ignore[no-untyped-def]
    def write(directory: Path) -> None:
        directory.mkdir(parents=True)
        (directory / "meta.json").write_text(
            json.dumps({"version": directory.name, "metrics": metrics, "created_at": "x"})
        )

    return write


def test_promotion_respects_tolerance(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    first = registry.publish(
        _meta_writer({"ndcg@20": 0.30}),
        metrics={"ndcg@20": 0.30},
        primary="ndcg@20",
        tolerance=0.05,
        version="v1",
    )
    assert first.status == "active" and registry.active_version() == "v1"
    close = registry.publish(
        _meta_writer({"ndcg@20": 0.29}),
        metrics={"ndcg@20": 0.29},
        primary="ndcg@20",
        tolerance=0.05,
        version="v2",
    )
    assert close.status == "active"  # 0.29 ≥ 0.30 × 0.95
    worse = registry.publish(
        _meta_writer({"ndcg@20": 0.20}),
        metrics={"ndcg@20": 0.20},
        primary="ndcg@20",
        tolerance=0.05,
        version="v3",
    )
    assert worse.status == "candidate" and "below active" in worse.reason
    assert registry.active_version() == "v2"
    never = registry.publish(
        _meta_writer({"ndcg@20": 0.9}),
        metrics={"ndcg@20": 0.9},
        primary="ndcg@20",
        tolerance=0.05,
        promote="never",
        version="v4",
    )
    assert never.status == "candidate"
    statuses = {i.version: i.status for i in registry.list()}
    assert statuses == {"v1": "retired", "v2": "active", "v3": "candidate", "v4": "candidate"}


def test_activate_and_rollback(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    for v in ("v1", "v2"):
        registry.publish(
            _meta_writer({}), metrics={}, primary="ndcg@20", tolerance=0, promote="force", version=v
        )
    registry.publish(
        _meta_writer({}), metrics={}, primary="ndcg@20", tolerance=0, promote="never", version="v3"
    )
    before = registry.active_pointer.stat().st_mtime_ns
    registry.activate("v3")
    assert registry.active_version() == "v3"
    assert registry.active_pointer.stat().st_mtime_ns >= before
    assert registry.rollback() == "v2"
    assert registry.rollback() == "v1"
    with pytest.raises(ModelNotFoundError):
        registry.rollback()
    with pytest.raises(ModelNotFoundError):
        registry.activate("nope")


def test_exception_midway_leaves_active_model(
    club: Club, sqlite_engine: Engine, fast_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast_settings.database_url = str(sqlite_engine.url)
    first = run_training(sqlite_engine, fast_settings)
    registry = ModelRegistry(fast_settings.models_dir)
    assert registry.active_version() == first.info.version
    real_write = pipeline.write_parts  # type: ignore[attr-defined]

    def crash_after_factors(parts, directory, meta):  # type: ignore[no-untyped-def]
        directory.mkdir(parents=True)
        import numpy as np

        np.save(directory / "member_factors.npy", parts.member_factors)
        raise OSError("disk full")

    monkeypatch.setattr(pipeline, "write_parts", crash_after_factors)
    with pytest.raises(OSError, match="disk full"):
        run_training(sqlite_engine, fast_settings, promote="force")
    assert registry.active_version() == first.info.version
    assert [i.version for i in registry.list()] == [first.info.version]
    assert not any((fast_settings.models_dir / "partial").iterdir())
    monkeypatch.setattr(pipeline, "write_parts", real_write)
    model = registry.load()
    assert model.version == first.info.version and model.knows_member("M00001")


def test_sigkill_midway_leaves_active_model(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    registry.publish(
        _meta_writer({"ndcg@20": 0.3}),
        metrics={"ndcg@20": 0.3},
        primary="ndcg@20",
        tolerance=0.0,
        version="v1",
    )
    script = textwrap.dedent(f"""
        import json, sys, time
        from pathlib import Path
        from training.registry import ModelRegistry
        def write(d):
            d.mkdir(parents=True)
            (d / "member_factors.npy").write_bytes(b"x" * 4096)
            print("half written", flush=True)
            time.sleep(60)
            (d / "meta.json").write_text("{{}}")
        ModelRegistry(Path({str(tmp_path)!r})).publish(
            write, metrics={{"ndcg@20": 0.9}}, primary="ndcg@20", tolerance=0.0,
            promote="force", version="v2")
    """)
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "half written"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert registry.active_version() == "v1"
    assert [i.version for i in registry.list()] == ["v1"]
    assert any((tmp_path / "partial").iterdir())  # the debris is in partial/, not versions/
    registry.publish(
        _meta_writer({}),
        metrics={},
        primary="ndcg@20",
        tolerance=0.0,
        promote="never",
        version="v3",
    )
    assert not any((tmp_path / "partial").iterdir())  # cleaned by the next run
