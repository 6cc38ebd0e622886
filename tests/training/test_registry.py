from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from recsys.errors import ModelNotFoundError
from recsys.settings import Settings, TrainingSettings
from recsys.storage.db import make_engine, upgrade
from tests.training.synthetic import Club, make_club
from training import pipeline
from training.artifact import META, ModelCorruptError, read_model, write_parts
from training.pipeline import run_training
from training.registry import ModelRegistry, RegistryUnreadableError

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One really trained (tiny) model directory; test artifacts are written from its parts."""
    root = tmp_path_factory.mktemp("template")
    engine = make_engine(f"sqlite:///{root / 'club.db'}")
    upgrade(engine)
    make_club(engine, members=40, titles_per_leaf=6, lines_per_member=8)
    settings = Settings(data_dir=root / "var", training=TrainingSettings(factors=4, iterations=2, threads=1))
    result = run_training(engine, settings, promote="force")
    engine.dispose()
    return ModelRegistry(settings.models_dir).versions_dir / result.info.version


def artifact_writer(template: Path, version: str, metrics: dict[str, float]) -> Callable[[Path], None]:
    """``write(directory)`` writing a complete, loadable model (the template's arrays) as ``version``."""

    def write(directory: Path) -> None:
        meta = json.loads((template / META).read_text())
        meta.update(version=version, metrics=metrics, created_at="2026-01-01T00:00:00")
        write_parts(read_model(template).parts, directory, meta)

    return write


def _publish(
    registry: ModelRegistry, template: Path, version: str, metrics: dict[str, float], **kwargs: object
):  # type: ignore[no-untyped-def]
    options: dict[str, object] = {"primary": "ndcg@20", "tolerance": 0.05, **kwargs}
    return registry.publish(
        artifact_writer(template, version, metrics), metrics=metrics, version=version, **options  # type: ignore[arg-type]
    )


def test_promotion_respects_tolerance(tmp_path: Path, template: Path) -> None:
    registry = ModelRegistry(tmp_path)
    first = _publish(registry, template, "v1", {"ndcg@20": 0.30})
    assert first.status == "active" and registry.active_version() == "v1"
    close = _publish(registry, template, "v2", {"ndcg@20": 0.29})
    assert close.status == "active"  # 0.29 ≥ 0.30 × 0.95
    worse = _publish(registry, template, "v3", {"ndcg@20": 0.20})
    assert worse.status == "candidate" and "below active" in worse.reason
    assert registry.active_version() == "v2"
    never = _publish(registry, template, "v4", {"ndcg@20": 0.9}, promote="never")
    assert never.status == "candidate"
    statuses = {i.version: i.status for i in registry.list()}
    assert statuses == {"v1": "retired", "v2": "active", "v3": "candidate", "v4": "candidate"}


def test_activate_and_rollback(tmp_path: Path, template: Path) -> None:
    registry = ModelRegistry(tmp_path)
    for v in ("v1", "v2"):
        _publish(registry, template, v, {}, promote="force")
    _publish(registry, template, "v3", {}, promote="never")
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


def test_sigkill_midway_leaves_active_model(tmp_path: Path, template: Path) -> None:
    registry = ModelRegistry(tmp_path)
    _publish(registry, template, "v1", {"ndcg@20": 0.3}, tolerance=0.0)
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
    _publish(registry, template, "v3", {}, promote="never")
    assert not any((tmp_path / "partial").iterdir())  # cleaned by the next run


def _kill_after_write(tmp_path: Path, template: Path, nth: int) -> list[str]:
    """Publish and promote v2 in a subprocess that stops after its ``nth`` write of ACTIVE or
    registry.json; kill -9 it there. The lines it printed (one per write) are returned."""
    script = textwrap.dedent(f"""
        import time
        from pathlib import Path
        import training.registry as registry_module
        from tests.training.test_registry import artifact_writer
        real, writes = registry_module._write_atomic, []
        def spy(path, text):
            real(path, text)
            writes.append(path.name)
            print("wrote", len(writes), path.name, flush=True)
            if len(writes) == {nth}:
                time.sleep(120)
        registry_module._write_atomic = spy
        registry_module.ModelRegistry(Path({str(tmp_path)!r})).publish(
            artifact_writer(Path({str(template)!r}), "v2", {{"ndcg@20": 0.9}}),
            metrics={{"ndcg@20": 0.9}}, primary="ndcg@20", tolerance=0.0, promote="force", version="v2")
        print("done", flush=True)
    """)
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None
    lines: list[str] = []
    while (line := proc.stdout.readline().strip()) and line != "done":
        lines.append(line)
        if line.startswith(f"wrote {nth} "):
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    return lines


@pytest.mark.slow
@pytest.mark.parametrize("nth", [1, 2, 3])
def test_sigkill_at_each_activation_write_keeps_active_recorded(
    tmp_path: Path, template: Path, nth: int
) -> None:
    """The training kill window: ACTIVE naming the killed run's model while registry.json has
    no record of it. A kill -9 after any write of the promotion leaves the old model active,
    or the new one active *and* recorded, listed, loadable and rolled back correctly."""
    registry = ModelRegistry(tmp_path)
    _publish(registry, template, "v1", {"ndcg@20": 0.3}, tolerance=0.0)
    lines = _kill_after_write(tmp_path, template, nth)
    assert len(lines) == nth, lines  # it really stopped at that write
    active = registry.active_version()
    recorded = json.loads(registry.state_file.read_text())["models"]
    assert active in recorded, (lines, active, recorded)
    listed = {i.version: i.status for i in registry.list()}
    assert [v for v, status in listed.items() if status == "active"] == [active]
    assert registry.load().version == active
    if active == "v2":
        assert registry.rollback() == "v1"
    else:
        assert listed["v2"] == "candidate"
        with pytest.raises(ModelNotFoundError):
            registry.rollback()  # v2 never became active: nothing to roll back from v1


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _flip(path: Path) -> None:
    """Change one byte inside the array data (the size stays; only a checksum can tell)."""
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF
    path.write_bytes(bytes(data))


DAMAGES: dict[str, tuple[str, Callable[[Path], object]]] = {
    "truncated npy": ("member_factors.npy", _truncate),
    "flipped bytes": ("title_factors.npy", _flip),
    "emptied npz": ("title_categories.npz", lambda p: p.write_bytes(b"")),
    "missing file": ("popularity.npy", lambda p: p.unlink()),
    "garbage meta": (META, lambda p: p.write_bytes(b"{\x00\xff")),
}


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_a_damaged_model_is_not_activated(tmp_path: Path, template: Path, damage: str) -> None:
    registry = ModelRegistry(tmp_path)
    _publish(registry, template, "v1", {}, promote="force")
    _publish(registry, template, "v2", {}, promote="never")
    name, harm = DAMAGES[damage]
    harm(registry.versions_dir / "v2" / name)
    pointer = registry.active_pointer.read_bytes()
    with pytest.raises(ModelCorruptError) as caught:
        registry.activate("v2")
    assert caught.value.file == name and "v2" in str(caught.value) and name in str(caught.value)
    assert str(tmp_path) not in str(caught.value)  # the file's name, not a server path
    assert registry.active_pointer.read_bytes() == pointer and registry.active_version() == "v1"
    assert registry.load().version == "v1"


def test_rollback_to_a_damaged_model_is_refused(tmp_path: Path, template: Path) -> None:
    registry = ModelRegistry(tmp_path)
    _publish(registry, template, "v1", {}, promote="force")
    _publish(registry, template, "v2", {}, promote="force")
    _flip(registry.versions_dir / "v1" / "member_factors.npy")
    with pytest.raises(ModelCorruptError, match=r"member_factors\.npy"):
        registry.rollback()
    assert registry.active_version() == "v2"


def test_a_damaged_artifact_is_never_published(tmp_path: Path, template: Path) -> None:
    """The promotion after training verifies the written artifact before it is renamed in."""
    registry = ModelRegistry(tmp_path)
    _publish(registry, template, "v1", {}, promote="force")
    good = artifact_writer(template, "v2", {})

    def write_then_break(directory: Path) -> None:
        good(directory)
        _flip(directory / "member_titles.data.npy")

    with pytest.raises(ModelCorruptError, match=r"model v2 is damaged: member_titles.data.npy"):
        registry.publish(write_then_break, metrics={}, primary="ndcg@20", tolerance=0, promote="force", version="v2")
    assert registry.active_version() == "v1"
    assert [i.version for i in registry.list()] == ["v1"]
    assert not any(registry.partial_dir.iterdir())


def _without_checksums(directory: Path) -> None:
    meta = json.loads((directory / META).read_text())
    del meta["files"]
    (directory / META).write_text(json.dumps(meta))


def test_older_artifacts_without_checksums_are_verified_by_loading(tmp_path: Path, template: Path) -> None:
    registry = ModelRegistry(tmp_path)
    for version in ("v1", "v2", "v3"):
        _publish(registry, template, version, {}, promote="force" if version == "v1" else "never")
        _without_checksums(registry.versions_dir / version)
    registry.activate("v2")
    assert registry.active_version() == "v2"
    assert registry.last_check is not None and "before checksums" in registry.last_check
    _truncate(registry.versions_dir / "v3" / "member_factors.npy")
    with pytest.raises(ModelCorruptError, match=r"v3 is damaged: member_factors\.npy"):
        registry.activate("v3")
    assert registry.active_version() == "v2"


def test_cli_models_activate_names_the_broken_file(
    tmp_path: Path, template: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bookclub_cli.main import app

    settings = Settings(data_dir=tmp_path / "var")
    registry = ModelRegistry(settings.models_dir)
    _publish(registry, template, "v1", {}, promote="force")
    _publish(registry, template, "v2", {}, promote="never")
    _publish(registry, template, "v3", {}, promote="never")
    _truncate(registry.versions_dir / "v2" / "member_factors.npy")
    monkeypatch.setenv("BOOKCLUB_DATA_DIR", str(settings.data_dir))
    runner = CliRunner()
    refused = runner.invoke(app, ["models", "activate", "v2"])
    assert refused.exit_code == 1, refused.output
    assert "member_factors.npy" in refused.output and "damaged" in refused.output
    assert "Traceback" not in refused.output and registry.active_version() == "v1"
    accepted = runner.invoke(app, ["models", "activate", "v3"])
    assert accepted.exit_code == 0, accepted.output
    assert "sha256" in accepted.output and registry.active_version() == "v3"


def test_an_unreadable_registry_is_one_clear_error(
    tmp_path: Path, template: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bookclub_cli.main import app

    settings = Settings(data_dir=tmp_path / "var")
    registry = ModelRegistry(settings.models_dir)
    _publish(registry, template, "v1", {}, promote="force")
    _publish(registry, template, "v2", {}, promote="never")
    registry.state_file.write_bytes(b'{"models": {"v1": ')  # a disk error, a hand edit
    with pytest.raises(RegistryUnreadableError, match=r"registry\.json .* unreadable"):
        registry.list()
    with pytest.raises(RegistryUnreadableError):
        registry.activate("v2")
    assert registry.active_version() == "v1"
    monkeypatch.setenv("BOOKCLUB_DATA_DIR", str(settings.data_dir))
    for command in (["models", "list"], ["models", "activate", "v2"], ["models", "rollback"]):
        result = CliRunner().invoke(app, command)
        assert result.exit_code == 1 and "registry.json" in result.output, (command, result.output)
        assert "Traceback" not in result.output and str(tmp_path) not in result.output


@pytest.mark.parametrize("version", ["..", ".", "../versions/v1", "v1/../v1", "/etc", ""])
def test_a_version_is_a_folder_name_and_nothing_else(tmp_path: Path, template: Path, version: str) -> None:
    registry = ModelRegistry(tmp_path / "models")
    _publish(registry, template, "v1", {}, promote="force")
    with pytest.raises(ModelNotFoundError):
        registry.activate(version)
    assert registry.active_version() == "v1"


def test_a_refused_model_is_not_hashed_again_until_its_files_change(
    tmp_path: Path, template: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """API workers retry the active model every poll: a damaged one is refused from memory
    until a file changes (then checked again, and loaded once repaired)."""
    import training.registry as registry_module

    registry = ModelRegistry(tmp_path)
    _publish(registry, template, "v1", {}, promote="force")
    path = registry.versions_dir / "v1" / "title_factors.npy"
    good = path.read_bytes()
    _flip(path)
    checks: list[Path] = []
    real = registry_module.check_files

    def counting(directory: Path) -> bool:
        checks.append(directory)
        return real(directory)

    monkeypatch.setattr(registry_module, "check_files", counting)
    for _ in range(3):
        with pytest.raises(ModelCorruptError, match=r"title_factors\.npy"):
            registry.load()
    assert len(checks) == 1
    path.write_bytes(good)  # repaired: a new mtime (at least a clock tick later, in real life)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert registry.load().version == "v1" and len(checks) == 2


def test_odd_debris_in_partial_is_cleaned_not_a_crash(tmp_path: Path, template: Path) -> None:
    registry = ModelRegistry(tmp_path)
    (tmp_path / "partial" / "v9.²").mkdir(parents=True)  # '²'.isdigit() is true, int('²') fails
    _publish(registry, template, "v1", {}, promote="force")
    assert not any((tmp_path / "partial").iterdir()) and registry.active_version() == "v1"
