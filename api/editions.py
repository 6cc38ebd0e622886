"""Limits on on-demand member editions: each render costs a fraction of a CPU second and a
megabyte of disk, so a key cannot have them made without bound.

- **Queue** (per worker): at most ``render_concurrency + render_queue`` edition requests
  that need a render are in flight; beyond that, 503 with ``Retry-After``.
- **Concurrency** (per worker): ``render_concurrency`` renders at once; the rest wait their
  turn (up to ``render_wait_seconds``, then 503 with ``Retry-After``).
- **Rate** (per key, over every worker of the machine): a token bucket of ``render_burst``
  renders refilled at ``render_rate_per_minute``, kept in a small file per key under
  ``DATA_DIR/run/render-rate`` behind a file lock; beyond it, 429 with ``Retry-After``.

Only an actual render counts: an edition served from disk, or one another request was
already rendering, costs nothing.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fastapi import HTTPException, Request

from recsys.files import atomic_write_text, file_lock
from recsys.settings import ApiSettings, Settings


class RenderGate:
    def __init__(self, settings: ApiSettings, state_dir: Path) -> None:
        self.settings = settings
        self.state_dir = state_dir
        self._slots = threading.BoundedSemaphore(settings.render_concurrency)
        self._lock = threading.Lock()
        self._in_flight = 0

    @property
    def capacity(self) -> int:
        return self.settings.render_concurrency + self.settings.render_queue

    @contextmanager
    def admitted(self) -> Iterator[None]:
        """A place in this worker's queue for a request that may need a render, or 503."""
        with self._lock:
            if self._in_flight >= self.capacity:
                raise HTTPException(
                    503,
                    f"{self._in_flight} member editions are being rendered or waiting: try again shortly",
                    headers={"Retry-After": str(self._retry_after())},
                )
            self._in_flight += 1
        try:
            yield
        finally:
            with self._lock:
                self._in_flight -= 1

    @contextmanager
    def rendering(self, key: str) -> Iterator[None]:
        """Around one render: a token from ``key``'s bucket (429), then a render slot (503)."""
        self.take(key)
        if not self._slots.acquire(timeout=self.settings.render_wait_seconds):
            raise HTTPException(
                503, "the edition renderer is busy: try again shortly",
                headers={"Retry-After": str(self._retry_after())},
            )
        try:
            yield
        finally:
            self._slots.release()

    def _retry_after(self) -> int:
        return max(1, math.ceil(60.0 / self.settings.render_rate_per_minute))

    def take(self, key: str, now: float | None = None) -> None:
        """One render from ``key``'s bucket, shared by every worker through a locked file."""
        rate = self.settings.render_rate_per_minute / 60.0
        burst = float(self.settings.render_burst)
        name = "".join(c if c.isalnum() else "_" for c in key) or "_"
        path = self.state_dir / f"{name}.json"
        with file_lock(self.state_dir / f"{name}.lock"):
            now = time.time() if now is None else now
            try:
                state = json.loads(path.read_text(encoding="utf-8"))
                tokens, at = float(state["tokens"]), float(state["at"])
            except (OSError, ValueError, KeyError, TypeError):
                tokens, at = burst, now
            tokens = min(burst, tokens + max(0.0, now - at) * rate)
            if tokens < 1.0:
                wait = math.ceil((1.0 - tokens) / rate)
                raise HTTPException(
                    429,
                    f"too many member editions rendered for this key: at most "
                    f"{self.settings.render_rate_per_minute:g} a minute (bursts of "
                    f"{self.settings.render_burst}); retry in {wait} s",
                    headers={"Retry-After": str(wait)},
                )
            atomic_write_text(path, json.dumps({"tokens": tokens - 1.0, "at": now}))


_gates_lock = threading.Lock()


def render_gate(request: Request, settings: Settings) -> RenderGate:
    """This worker's gate (made on first use)."""
    state = request.app.state
    gate: RenderGate | None = getattr(state, "render_gate", None)
    if gate is None:
        with _gates_lock:
            gate = getattr(state, "render_gate", None)
            if gate is None:
                gate = RenderGate(settings.api, settings.data_dir / "run" / "render-rate")
                state.render_gate = gate
    return gate
