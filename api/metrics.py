"""Prometheus metrics and the access log, both keyed by route *template*, never the raw path.

Multi-worker: when ``PROMETHEUS_MULTIPROC_DIR`` is set in the environment
before the workers start (``bookclub serve`` does it), prometheus_client keeps
each worker's values in files there and ``/metrics`` sums them over all
workers, whichever worker answers. Without it, ``/metrics`` shows one process.

Cold-start share = ``bookclub_recommendations_total{kind="cold_start"}`` /
``sum(bookclub_recommendations_total)``.
"""

from __future__ import annotations

import logging
import os
import time
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


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def render() -> tuple[bytes, str]:
    """The exposition text: every worker's values in multiprocess mode, else this process's."""
    if multiprocess_dir():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST


def model_swapped(old: str | None, new: str) -> None:
    if old is not None:
        ACTIVE_MODEL.labels(version=old).set(0)
    ACTIVE_MODEL.labels(version=new).set(1)


def record_recommendation(cold_start: bool) -> None:
    RECOMMENDATIONS.labels(kind="cold_start" if cold_start else "personalized").inc()


def worker_exit() -> None:
    """Drop this worker's live gauges (call at shutdown)."""
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
            elapsed = time.perf_counter() - start
            route = _route_template(scope)
            method = scope["method"]
            REQUESTS.labels(method=method, route=route, status=str(status)).inc()
            LATENCY.labels(method=method, route=route).observe(elapsed)
            access_log.info("%s %s %d %.1fms", method, route, status, elapsed * 1000)
