"""Aggregates computed once and shown with their time: each worker keeps the last value of
an expensive read (counters, alerts, transition tables) for ``settings.console.aggregate_seconds``
and every page shows when it was computed."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

from fastapi import Request

T = TypeVar("T")


@dataclass(frozen=True)
class Computed(Generic[T]):
    value: T
    at: dt.datetime  # UTC, when it was computed


class Aggregates:
    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._values: dict[Hashable, tuple[float, Computed[object]]] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable, compute: Callable[[], T]) -> Computed[T]:
        hit = self._values.get(key)
        if hit is not None and time.monotonic() - hit[0] < self.ttl:
            return hit[1]  # type: ignore[return-value]
        found = Computed(compute(), dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0))
        with self._lock:
            self._values[key] = (time.monotonic(), found)  # type: ignore[assignment]
        return found

    def forget(self) -> None:
        with self._lock:
            self._values.clear()


def aggregates_of(request: Request) -> Aggregates:
    found: Aggregates | None = getattr(request.app.state, "console_aggregates", None)
    if found is None:
        found = request.app.state.console_aggregates = Aggregates(
            request.app.state.settings.console.aggregate_seconds
        )
    return found
