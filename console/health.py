"""Service health on the overview, read from the Prometheus metrics the API keeps (``api.metrics``),
in process: the registry ``/metrics`` exposes — every worker's values summed when
``PROMETHEUS_MULTIPROC_DIR`` is set (``bookclub serve``), this process's otherwise.

Counts since the workers started: requests and server errors per route, the mean answer time
and the share answered within 0.25 s (a histogram bucket: exact, no interpolation), the share
of recommendation lists that were cold starts, and the model version each worker serves.
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass, field

from prometheus_client import REGISTRY, CollectorRegistry, multiprocess
from prometheus_client.registry import Collector

REQUESTS = "bookclub_http_requests"
LATENCY = "bookclub_http_request_duration_seconds"
ACTIVE_MODEL = "bookclub_model_active"
RECOMMENDATIONS = "bookclub_recommendations"
FAST = "0.25"  # seconds: the bucket reported as "answered within"
TOP_ROUTES = 10


@dataclass(frozen=True)
class RouteHealth:
    route: str
    requests: int
    server_errors: int  # 5xx
    client_errors: int  # 4xx
    seconds: float  # total answer time
    fast: int  # answered within FAST seconds

    @property
    def mean_ms(self) -> float:
        return 1000 * self.seconds / self.requests if self.requests else 0.0

    @property
    def fast_share(self) -> float:
        return self.fast / self.requests if self.requests else 0.0


@dataclass
class Health:
    multiprocess: bool
    started: float | None  # this process's start (epoch seconds); None in multiprocess mode
    routes: list[RouteHealth] = field(default_factory=list)  # busiest first
    requests: int = 0
    server_errors: int = 0
    recommendations: dict[str, int] = field(default_factory=dict)  # kind → lists served
    versions: list[str] = field(default_factory=list)  # model versions a worker serves now

    @property
    def cold_start_share(self) -> float | None:
        total = sum(self.recommendations.values())
        return self.recommendations.get("cold_start", 0) / total if total else None

    @property
    def error_share(self) -> float:
        return self.server_errors / self.requests if self.requests else 0.0


def _registry() -> Collector | CollectorRegistry:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return registry
    return REGISTRY


def read_health() -> Health:
    """The metrics as the overview shows them (see the module docstring)."""
    multi = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
    health = Health(multiprocess=multi, started=None)
    per_route: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for family in _registry().collect():
        for sample in family.samples:
            labels = sample.labels
            if family.name == REQUESTS and sample.name.endswith("_total"):
                route, status = labels.get("route", ""), labels.get("status", "")
                per_route[route]["requests"] += sample.value
                if status.startswith("5"):
                    per_route[route]["server"] += sample.value
                elif status.startswith("4"):
                    per_route[route]["client"] += sample.value
            elif family.name == LATENCY:
                route = labels.get("route", "")
                if sample.name.endswith("_sum"):
                    per_route[route]["seconds"] += sample.value
                elif sample.name.endswith("_bucket") and labels.get("le") == FAST:
                    per_route[route]["fast"] += sample.value
            elif family.name == RECOMMENDATIONS and sample.name.endswith("_total"):
                kind = labels.get("kind", "")
                health.recommendations[kind] = health.recommendations.get(kind, 0) + int(sample.value)
            elif family.name == ACTIVE_MODEL and sample.value >= 1:
                health.versions.append(labels.get("version", ""))
            elif family.name == "process_start_time_seconds" and not multi:
                health.started = sample.value
    routes = [
        RouteHealth(route, int(v["requests"]), int(v["server"]), int(v["client"]), v["seconds"], int(v["fast"]))
        for route, v in per_route.items()
        if v["requests"]
    ]
    routes.sort(key=lambda r: (-r.requests, r.route))
    health.routes = routes[:TOP_ROUTES]
    health.requests = sum(r.requests for r in routes)
    health.server_errors = sum(r.server_errors for r in routes)
    health.versions = sorted(set(health.versions))
    return health
