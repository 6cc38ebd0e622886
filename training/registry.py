"""The model registry under ``settings.models_dir``: versions, promotion, activation, rollback.

Layout::

    models/
      versions/<version>/   complete artifacts (``meta.json`` written last)
      partial/<version>.<pid>/   a run in progress; renamed into versions/ when complete
      registry.json         statuses, reasons and the activation history
      ACTIVE                the active version, rewritten atomically; API workers poll its mtime

Every write goes to a temporary file or directory first and is renamed into
place, so a run killed at any point leaves the active model as it was.

Nothing becomes active unverified: :meth:`ModelRegistry.activate`, :meth:`rollback`
and the promotion in :meth:`publish` check the artifact's checksums and load it
(:func:`training.artifact.verify_artifact`) before ``ACTIVE`` changes. And
``ACTIVE`` only ever names a recorded version: an activation writes the version's
record to ``registry.json`` first, then ``ACTIVE``, then the statuses and history
(readers take "active" from ``ACTIVE``), so ``kill -9`` between any two writes
leaves either the old model active, or the new one active *and* recorded.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import re
import shutil
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import Connection

from recsys.errors import BookclubError, ModelNotFoundError
from recsys.files import atomic_write_text, fsync_dir, pid_alive
from recsys.model.trained import TrainedModel
from recsys.serving import prepare_model_from_db
from training.artifact import ModelCorruptError, check_files, read_meta, read_model, verify_artifact

Promote = Literal["auto", "never", "force"]
_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")  # a folder name under versions/, no more


class RegistryUnreadableError(BookclubError):
    """registry.json cannot be read: nothing is changed until it is restored or moved away."""


@dataclass(frozen=True)
class ModelInfo:
    version: str
    created_at: str
    status: str  # 'active' | 'candidate' | 'retired' | 'damaged' (meta.json unreadable)
    metrics: dict[str, float]
    reason: str
    trained_until: str | None = None


def _write_atomic(path: Path, text: str) -> None:
    """Temporary name, fsync, rename, folder fsync; a failed write leaves the old file and no
    temporary one (:mod:`recsys.files`)."""
    atomic_write_text(path, text)


def _files_stamp(directory: Path) -> object:
    try:
        return sorted((p.name, st.st_size, st.st_mtime_ns) for p in directory.iterdir() if (st := p.stat()))
    except FileNotFoundError:
        return None


class ModelRegistry:
    def __init__(self, models_dir: Path) -> None:
        self.models_dir = models_dir
        self.versions_dir = models_dir / "versions"
        self.partial_dir = models_dir / "partial"
        self.state_file = models_dir / "registry.json"
        self.last_check: str | None = None  # how the last activated version was verified
        # versions load() refused, by the files' (name, size, mtime) then: an API worker polls
        # the active version every few seconds and must not hash a damaged model each time
        self._refused: dict[str, tuple[object, ModelCorruptError]] = {}

    @property
    def active_pointer(self) -> Path:
        return self.models_dir / "ACTIVE"

    # ---- state -------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict[str, Any]]:
        """The registry state under an exclusive lock; saved atomically on clean exit."""
        self.models_dir.mkdir(parents=True, exist_ok=True)
        with (self.models_dir / ".lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            state = self._state()
            yield state
            _write_atomic(self.state_file, json.dumps(state, indent=2))

    def _state(self) -> dict[str, Any]:
        if not self.state_file.exists():
            return {"models": {}, "history": []}
        try:
            state = json.loads(self.state_file.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise RegistryUnreadableError(
                f"{self.state_file.name} in the models folder is unreadable ({exc}): restore it, "
                "or move it away to start a new history (the model versions are kept)"
            ) from None
        if not (
            isinstance(state, dict)
            and isinstance(state.get("models"), dict)
            and isinstance(state.get("history"), list)
        ):
            raise RegistryUnreadableError(
                f"{self.state_file.name} in the models folder is not a bookclub registry: restore it, "
                "or move it away to start a new history (the model versions are kept)"
            )
        return state

    def active_version(self) -> str | None:
        try:
            return self.active_pointer.read_text(encoding="utf-8").strip() or None
        except FileNotFoundError:
            return None

    def list(self) -> list[ModelInfo]:
        """Every complete version, oldest first."""
        state = self._state()["models"]
        active = self.active_version()
        infos = []
        if not self.versions_dir.exists():
            return []
        for path in sorted(self.versions_dir.iterdir()):
            try:
                meta = read_meta(path)
            except ModelNotFoundError:
                continue
            except ModelCorruptError as exc:
                infos.append(ModelInfo(path.name, "", "damaged", {}, f"{exc.file}: {exc.reason}"))
                continue
            entry = state.get(path.name)
            status = "active" if path.name == active else (entry or {}).get("status", "candidate")
            if status == "active" and path.name != active:
                status = "retired"
            reason = str((entry or {}).get("reason", ""))
            if entry is None:
                reason = "not registered: the run that wrote it stopped before registering it"
            elif entry.get("pending") and path.name != active:
                reason += " (the activation was interrupted before it took effect)"
            infos.append(
                ModelInfo(
                    version=path.name,
                    created_at=str(meta.get("created_at", "")),
                    status=status,
                    metrics=dict(meta.get("metrics") or {}),
                    reason=reason,
                    trained_until=meta.get("trained_until"),
                )
            )
        infos.sort(key=lambda i: (i.created_at, i.version))
        return infos

    def _require(self, version: str) -> Path:
        if not _VERSION.fullmatch(version) or version in (".", ".."):
            raise ModelNotFoundError(f"no model version {version!r} (see `bookclub models list`)")
        path = self.versions_dir / version
        if not (path / "meta.json").exists():
            raise ModelNotFoundError(f"no model version {version!r} (see `bookclub models list`)")
        return path

    def load(self, version: str | None = None) -> TrainedModel:
        """The model ``version`` (None: the active one), its files checked against their
        checksums first (a file damaged after activation is refused, naming it)."""
        version = version or self.active_version()
        if version is None:
            raise ModelNotFoundError("no active model: run `bookclub train`")
        path = self._require(version)
        stamp = _files_stamp(path)
        refused = self._refused.get(version)
        if refused is not None and refused[0] == stamp:  # unchanged since: do not hash it again
            raise refused[1].with_traceback(None)
        try:
            check_files(path)
            return read_model(path)
        except ModelCorruptError as exc:
            self._refused[version] = (stamp, exc)
            raise

    def load_prepared(self, connection: Connection, version: str | None = None) -> TrainedModel:
        """:meth:`load`, then taught every title of the club (:func:`recsys.serving.prepare_model`):
        the model every face serves, so a title added after training can be recommended."""
        model = self.load(version)
        prepare_model_from_db(connection, model)
        return model

    def model_source(
        self, connection: Connection, loaded: TrainedModel | None = None
    ) -> Callable[[str], TrainedModel]:
        """version → :meth:`load_prepared` (each version loaded once; ``loaded``, a prepared model the
        caller holds, is not loaded again): what the mailing plan scores each quarter's edition
        titles with (:data:`campaign.edition_scores.ModelSource`)."""
        cache: dict[str, TrainedModel] = {} if loaded is None else {loaded.version: loaded}

        def source(version: str) -> TrainedModel:
            if version not in cache:
                cache[version] = self.load_prepared(connection, version)
            return cache[version]

        return source

    # ---- activation --------------------------------------------------------
    def _save(self, state: dict[str, Any]) -> None:
        _write_atomic(self.state_file, json.dumps(state, indent=2))

    def _activate(self, state: dict[str, Any], version: str, reason: str, push: bool) -> None:
        """Three atomic writes, in this order, so that ``ACTIVE`` never names an unrecorded
        version: (1) the version's record, (2) ``ACTIVE``, (3) statuses and history."""
        models = state.setdefault("models", {})
        entry = models.setdefault(version, {"status": "candidate"})
        entry.update(reason=reason, pending="activation")
        self._save(state)  # (1)
        previous = self.active_version()
        _write_atomic(self.active_pointer, version + "\n")  # (2)
        if previous and previous != version:
            models.setdefault(previous, {})["status"] = "retired"
        models[version] = {"status": "active", "reason": reason}
        if push and (not state["history"] or state["history"][-1] != version):
            state["history"].append(version)
        self._save(state)  # (3)

    def verify(self, version: str) -> str:
        """Check ``version``'s files and load it (:func:`training.artifact.verify_artifact`);
        return how it was checked, or raise :class:`ModelCorruptError` naming the broken file."""
        return verify_artifact(self._require(version))

    def activate(self, version: str) -> None:
        """Verify ``version`` and make it the active model (``last_check`` says how it was
        verified)."""
        self.last_check = self.verify(version)
        with self._locked() as state:
            self._activate(state, version, "activated by hand", push=True)

    def rollback(self) -> str:
        """Re-activate the version active before the current one (verified first); return it."""
        with self._locked() as state:
            history: list[str] = state["history"]
            current = self.active_version()
            while history and history[-1] == current:
                history.pop()
            while history and not (self.versions_dir / history[-1]).exists():
                history.pop()
            if not history:
                raise ModelNotFoundError("no earlier active model to roll back to")
            target = history[-1]
            self.last_check = self.verify(target)
            self._activate(state, target, f"rollback from {current}", push=False)
            if current:
                state["models"].setdefault(current, {})["reason"] = f"rolled back to {target}"
            return target

    # ---- publishing --------------------------------------------------------
    def _clean_partials(self) -> None:
        if not self.partial_dir.exists():
            return
        for path in self.partial_dir.iterdir():
            pid = path.name.rsplit(".", 1)[-1]
            if not (pid.isascii() and pid.isdigit()) or not pid_alive(int(pid)):
                shutil.rmtree(path, ignore_errors=True)

    def new_version(self, now: dt.datetime | None = None) -> str:
        now = now or dt.datetime.now(dt.UTC)
        base = now.strftime("%Y%m%dT%H%M%SZ")
        version, n = base, 1
        while (self.versions_dir / version).exists():
            n += 1
            version = f"{base}-{n}"
        return version

    def decide(
        self,
        metrics: dict[str, float],
        primary: str,
        tolerance: float,
        promote: Promote,
        gate: Mapping[str, Any] | None = None,
    ) -> tuple[bool, str]:
        """Whether a model with ``metrics`` should become active, and why.

        ``gate``: the paired bootstrap difference, new minus the active configuration, on the
        same evaluation (``training.pipeline``): ``{"metric", "mean", "low", "high", …}``.
        With it the new model is refused only when it is significantly worse (``high`` < 0);
        without it, the recorded metrics are compared with ``tolerance``.
        """
        if promote == "force":
            return True, "promoted by --promote force"
        if promote == "never":
            return False, "kept as candidate (--promote never)"
        active = self.active_version()
        if active is None:
            return True, "first model"
        if gate is not None:
            said = (
                f"{gate['metric']} minus the active configuration ({active}) on the same split: "
                f"{gate['mean']:+.4f} [{gate['low']:+.4f}, {gate['high']:+.4f}]"
            )
            if float(gate["high"]) >= 0.0:
                return True, said + ", not significantly worse"
            return False, said + ", significantly worse"
        try:
            current = read_meta(self.versions_dir / active).get("metrics") or {}
        except (ModelNotFoundError, ModelCorruptError) as exc:
            return True, f"the active model {active} cannot be read ({exc})"
        if primary not in metrics:
            return False, f"not evaluated on {primary}: run with --evaluate or --promote force"
        if primary not in current:
            return True, f"active model {active} has no {primary}"
        new, old = float(metrics[primary]), float(current[primary])
        floor = old * (1.0 - tolerance)
        if new >= floor:
            return True, f"{primary} {new:.4f} vs active {old:.4f} (floor {floor:.4f})"
        return False, f"{primary} {new:.4f} below active {old:.4f} beyond tolerance {tolerance:.0%}"

    def publish(
        self,
        write: Callable[[Path], None],
        *,
        metrics: dict[str, float],
        primary: str,
        tolerance: float,
        promote: Promote = "auto",
        version: str | None = None,
        gate: Mapping[str, Any] | None = None,
    ) -> ModelInfo:
        """Write a new version through ``write(tmp_dir)``, rename it in, promote it or not
        (:meth:`decide`); the ``gate`` interval is recorded with the version."""
        self.partial_dir.mkdir(parents=True, exist_ok=True)
        self.versions_dir.mkdir(parents=True, exist_ok=True)
        self._clean_partials()
        version = version or self.new_version()
        tmp = self.partial_dir / f"{version}.{os.getpid()}"
        try:
            write(tmp)
            verify_artifact(tmp, version)  # complete and loadable, or raise naming the broken file
            os.replace(tmp, self.versions_dir / version)
            fsync_dir(self.versions_dir)  # the rename itself survives a power cut
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        with self._locked() as state:
            ok, reason = self.decide(metrics, primary, tolerance, promote, gate)
            if ok:
                self._activate(state, version, reason, push=True)
            else:
                state["models"][version] = {"status": "candidate", "reason": reason}
            if gate is not None:
                state["models"][version]["gate"] = dict(gate)
        return next(i for i in self.list() if i.version == version)
