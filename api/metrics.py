"""Prometheus metrics and the access log, both keyed by route *template*, never the raw path.

Multi-worker: when ``PROMETHEUS_MULTIPROC_DIR`` is set in the environment
before the workers start (``bookclub serve`` does it), prometheus_client keeps
each worker's values in files there and ``/metrics`` sums them over all
workers, whichever worker answers. Without it, ``/metrics`` shows one process.

Off the request path: a request only appends a tuple to a deque
(:func:`record_request`, :func:`record_recommendation`); a background thread of the
worker (:class:`_Writer`, every ``WRITE_SECONDS``) takes them off in batches, adds
them to the Prometheus counters and histogram (one label lookup per route and status
per batch, not per request; prometheus_client's lock is taken there, not on the
request) and writes the access log lines (each with the time its request ended).
``/metrics`` drains the answering worker's own backlog first, so what it shows of
that worker is complete; another worker's last ``WRITE_SECONDS`` may be missing.

Cold-start share = ``bookclub_recommendations_total{kind="cold_start"}`` /
``sum(bookclub_recommendations_total)``.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

access_log = logging.getLogger("bookclub.api.access")

REQUESTS = Counter("bookclub_http_requests_total", "HTTP requests answered", ["method", "route", "status"])
LATENCY = Histogram(
    "bookclub_http_request_duration_seconds",
    "Time to answer an HTTP request",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
ACTIVE_MODEL = Gauge(
    "bookclub_model_active",
    "1 for the model version a worker serves, 0 for versions it served before",
    ["version"],
    multiprocess_mode="livemax",
)
RECOMMENDATIONS = Counter(
    "bookclub_recommendations_total",
    "Recommendation lists served, by kind (cold_start: the model did not know the member)",
    ["kind"],
)

WRITE_SECONDS = 0.2  # how often a worker's background thread writes its metrics and log lines

# (method, route template, status, seconds taken, wall time at the end); appended on the
# request path (deque.append is atomic), taken off only by _Writer.drain
_answered: deque[tuple[str, str, int, float, float]] = deque()
_recommended: deque[str] = deque()


def record_request(method: str, route: str, status: int, elapsed: float) -> None:
    """An answered request, for the counters, the histogram and the access log."""
    _answered.append((method, route, status, elapsed, time.time()))
    if _writer.idle:
        _writer.start()


def record_recommendation(cold_start: bool) -> None:
    _recommended.append("cold_start" if cold_start else "personalized")


class _Writer:
    """The worker's background thread that empties the deques every ``WRITE_SECONDS``."""

    def __init__(self) -> None:
        self.idle = True
        self._lock = threading.Lock()  # one drain at a time (the thread, /metrics, exit)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._counters: dict[tuple[str, str, str], Any] = {}
        self._histograms: dict[tuple[str, str], Any] = {}
        self._kinds: dict[str, Any] = {}

    def start(self) -> None:
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                self.idle = False
                return
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="metrics-writer", daemon=True)
            self._thread.start()
            self.idle = False

    def stop(self) -> None:
        """End the thread after a last drain (at worker exit)."""
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout=5)
        with self._lock:
            self._thread = None
            self.idle = True
        self.drain()

    def _run(self) -> None:
        while not self._stop.wait(WRITE_SECONDS):
            try:
                self.drain()
            except Exception:  # never let the writer die: the next batch tries again
                logging.getLogger("bookclub.api").exception("writing metrics failed")

    def drain(self) -> None:
        """Everything recorded so far into Prometheus and the access log."""
        with self._lock:
            batch: list[tuple[str, str, int, float, float]] = []
            while True:
                try:
                    batch.append(_answered.popleft())
                except IndexError:
                    break
            kinds: list[str] = []
            while True:
                try:
                    kinds.append(_recommended.popleft())
                except IndexError:
                    break
            self._count(batch, kinds)
            self._log(batch)

    def _count(self, batch: list[tuple[str, str, int, float, float]], kinds: list[str]) -> None:
        totals: dict[tuple[str, str, str], int] = {}
        for method, route, status, elapsed, _end in batch:
            key = (method, route, str(status))
            totals[key] = totals.get(key, 0) + 1
            histogram = self._histograms.get((method, route))
            if histogram is None:
                histogram = self._histograms[(method, route)] = LATENCY.labels(method=method, route=route)
            histogram.observe(elapsed)
        for key, n in totals.items():
            counter = self._counters.get(key)
            if counter is None:
                counter = self._counters[key] = REQUESTS.labels(method=key[0], route=key[1], status=key[2])
            counter.inc(n)
        for kind in set(kinds):
            child = self._kinds.get(kind)
            if child is None:
                child = self._kinds[kind] = RECOMMENDATIONS.labels(kind=kind)
            child.inc(kinds.count(kind))

    @staticmethod
    def _log(batch: list[tuple[str, str, int, float, float]]) -> None:
        if not batch or not access_log.isEnabledFor(logging.INFO):
            return
        for method, route, status, elapsed, end in batch:
            record = access_log.makeRecord(
                access_log.name, logging.INFO, __file__, 0, "%s %s %d %.1fms",
                (method, route, status, elapsed * 1000), None,
            )
            # stamped when the request ended, not when the line is written
            record.relativeCreated -= (record.created - end) * 1000
            record.created, record.msecs = end, (end - int(end)) * 1000
            access_log.handle(record)


_writer = _Writer()


def drain() -> None:
    """Write what this worker recorded so far (metrics and access log lines) now."""
    _writer.drain()


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def render() -> tuple[bytes, str]:
    """The exposition text: every worker's values in multiprocess mode, else this process's
    (this worker's own backlog drained first)."""
    drain()
    if multiprocess_dir():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST


def model_swapped(old: str | None, new: str) -> None:
    if old is not None:
        ACTIVE_MODEL.labels(version=old).set(0)
    ACTIVE_MODEL.labels(version=new).set(1)


def worker_exit() -> None:
    """Write the backlog, stop the writer and drop this worker's live gauges (at shutdown)."""
    _writer.stop()
    if multiprocess_dir():
        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


def _route_template(scope: Scope) -> str:
    route: Any = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "<unmatched>"


class MetricsMiddleware:
    """Counts and times each request by route template; logs method, route, status, duration.

    The access log never carries the query string, headers or path values, so
    API keys and member ids stay out of the logs.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            record_request(scope["method"], _route_template(scope), status, time.perf_counter() - start)
