"""Aggregates computed once, off the request path, and shown with their time.

An expensive read (the overview's counters and data alerts, a segment transition table) is
computed in a background thread on its own connection; a page shows the last value with the
time it was computed, and "being computed" until the first one is there. A value older than
``settings.console.aggregate_seconds`` is still shown while its successor is computed. No page
request waits for a scan of purchases or members.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

from fastapi import Request
from sqlalchemy import Connection, Engine

from recsys.errors import BookclubError

T = TypeVar("T")
RETRY_SECONDS = 30.0  # a failed computation is tried again on a page view after this long
log = logging.getLogger("bookclub.console")


@dataclass(frozen=True)
class Computed(Generic[T]):
    value: T
    at: dt.datetime  # UTC, when it was computed


class Aggregates:
    def __init__(self, engine: Engine, ttl: float) -> None:
        self.engine = engine
        self.ttl = ttl
        self._values: dict[Hashable, tuple[float, Computed[object]]] = {}
        self._running: dict[Hashable, threading.Thread] = {}
        self._failed: dict[Hashable, tuple[float, str]] = {}  # the last failure, shown on the page
        self._lock = threading.Lock()

    def get(self, key: Hashable, compute: Callable[[Connection], T], ttl: float | None = None) -> Computed[T] | None:
        """The last value of ``key`` (None before the first is computed); starts computing a
        new one in the background when there is none or it is older than the ttl (``ttl``:
        this value's own, for one that takes minutes to compute)."""
        life = self.ttl if ttl is None else ttl
        with self._lock:
            hit = self._values.get(key)
            now = time.monotonic()
            stale = hit is None or now - hit[0] >= life
            failed = self._failed.get(key)
            if failed is not None and now - failed[0] < RETRY_SECONDS:
                stale = False  # failed a moment ago: not again on every poll
            if stale and key not in self._running:
                thread = threading.Thread(target=self._compute, args=(key, compute), name="console-aggregate", daemon=True)
                self._running[key] = thread
                thread.start()
        return None if hit is None else hit[1]  # type: ignore[return-value]

    def _compute(self, key: Hashable, compute: Callable[[Connection], object]) -> None:
        try:
            with self.engine.connect() as connection:
                value = compute(connection)
            found = Computed(value, dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0))
            with self._lock:
                self._values[key] = (time.monotonic(), found)
                self._failed.pop(key, None)
        except Exception as exc:  # keep the old value; a page view after RETRY_SECONDS tries again
            log.exception("computing the console aggregate %r failed", key)
            with self._lock:
                said = str(exc) if isinstance(exc, BookclubError) else f"{type(exc).__name__}: {exc}"
                self._failed[key] = (time.monotonic(), said)  # a BookclubError says what to do: as it is
        finally:
            with self._lock:
                self._running.pop(key, None)

    def failure(self, key: Hashable) -> str | None:
        """Why the last computation of ``key`` failed (None when it did not)."""
        with self._lock:
            found = self._failed.get(key)
        return None if found is None else found[1]

    def join(self, timeout: float | None = None) -> None:
        """Wait for the computations under way (tests, benchmarks)."""
        with self._lock:
            running = list(self._running.values())
        for thread in running:
            thread.join(timeout)


def aggregates_of(request: Request) -> Aggregates:
    found: Aggregates | None = getattr(request.app.state, "console_aggregates", None)
    if found is None:
        found = request.app.state.console_aggregates = Aggregates(
            request.app.state.engine, request.app.state.settings.console.aggregate_seconds
        )
    return found
