"""The model a worker serves, and how a newly activated one replaces it without a restart.

Each worker holds one reference to a loaded model. A background thread looks at
the registry's ``active_pointer`` every ``model_poll_seconds``; when the file
changed (mtime, inode or size), it loads the new active model *beside* the
current one, feeds it the titles added to the database since training, and
swaps the reference. A request takes the reference once, at its start, and uses
that model to the end, so an in-flight request is never cut over half way.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from recsys.errors import BookclubError
from recsys.serving import ServableModel

log = logging.getLogger("bookclub.api.models")


class ModelUnavailableError(BookclubError):
    """No model is loaded in this worker (none trained or activated yet)."""


class ServingModel(ServableModel, Protocol):
    """The part of ``recsys.model.trained.TrainedModel`` the API uses: what the serving path
    needs (:class:`recsys.serving.ServableModel`) plus similar titles and category charts."""

    def similar_titles(self, title_id: str, limit: int = 20) -> list[tuple[str, float]]: ...
    def popular_in_category(self, code: str, limit: int = 20) -> list[tuple[str, float]]: ...


class ModelSource(Protocol):
    """The part of ``training.registry.ModelRegistry`` the API uses."""

    def list(self) -> Sequence[Any]: ...
    def active_version(self) -> str | None: ...
    def activate(self, version: str) -> None: ...
    def load(self, version: str | None = None) -> Any: ...
    @property
    def active_pointer(self) -> Path: ...


class Serving(NamedTuple):
    """A model and what ``prepare`` returned for it (e.g. cached title data), or None."""

    model: ServingModel
    prepared: object


PREPARE_RETRY_SECONDS = 30.0
Stamp = tuple[int, int, int] | None
Prepare = Callable[[ServingModel], object]
OnSwap = Callable[[str | None, str], None]


def _stamp(path: Path) -> Stamp:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_mtime_ns, st.st_ino, st.st_size)


class ModelHolder:
    """One worker's model reference, refreshed from the registry."""

    def __init__(
        self,
        registry: ModelSource,
        *,
        prepare: Prepare | None = None,
        on_swap: OnSwap | None = None,
        poll_seconds: float = 2.0,
    ) -> None:
        self.registry = registry
        self._prepare = prepare
        self._on_swap = on_swap
        self.poll_seconds = poll_seconds
        self._serving: Serving | None = None
        self._stamp: Stamp = None
        self._checked = False
        self._complete = True  # False: the served model missed its preparation (new titles)
        self._retry_at = 0.0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error: str | None = None

    @property
    def model(self) -> ServingModel | None:
        serving = self._serving
        return serving.model if serving is not None else None

    def current(self) -> ServingModel:
        """The model to serve this request with (one read of the reference)."""
        return self.serving().model

    def serving(self) -> Serving:
        """The model and its prepared data, together (one read of the reference)."""
        serving = self._serving
        if serving is None:
            raise ModelUnavailableError(
                "no model is loaded: train one (`bookclub train`) and activate it"
                + ("; the last load failed (see the server log)" if self.last_error else "")
            )
        return serving

    def refresh(self, *, force: bool = False) -> bool:
        """Load the active model if the pointer changed; True when the reference was swapped."""
        with self._lock:
            stamp = _stamp(self.registry.active_pointer)
            unchanged = self._checked and stamp == self._stamp and not force
            if unchanged and (self._complete or time.monotonic() < self._retry_at):
                return False
            version = self.registry.active_version()
            current = self.model
            same = current is not None and current.version == version
            if version is None or (same and self._complete):
                self._stamp, self._checked = stamp, True
                return False
            try:
                model: ServingModel = self.registry.load(version)
            except Exception as exc:  # keep serving the old model; retry at the next poll
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.error("loading model %s failed: %s", version, self.last_error)
                return False
            complete = True
            prepared: object = None
            if self._prepare is not None:
                try:
                    prepared = self._prepare(model)
                except Exception as exc:  # serve it anyway; load and prepare again later
                    complete = False
                    self._retry_at = time.monotonic() + PREPARE_RETRY_SECONDS
                    log.warning(
                        "model %s loaded but not prepared (%s): retrying", version, type(exc).__name__
                    )
                    if same:
                        return False
            self._serving = Serving(model, prepared)
            self._stamp, self._checked, self._complete = stamp, True, complete
            self.last_error = None
        log.info("serving model %s (was %s)", version, current.version if current else None)
        if self._on_swap is not None and not same:
            self._on_swap(current.version if current else None, version)
        return True

    def _poll(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.refresh()
            except Exception:  # never let the poller die
                log.exception("model refresh failed")

    def start(self) -> None:
        """Load the active model now (if any) and start polling for a new one."""
        try:
            self.refresh()
        except Exception as exc:
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.error("no model loaded at start: %s", self.last_error)
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._poll, name="model-poller", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None


if TYPE_CHECKING:  # mypy checks that the real classes keep the contract the API codes against
    from recsys.model.trained import TrainedModel
    from training.registry import ModelRegistry

    def _model_conforms(model: TrainedModel) -> ServingModel:
        return model

    def _registry_conforms(registry: ModelRegistry) -> ModelSource:
        return registry
