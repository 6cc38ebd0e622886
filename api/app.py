"""The FastAPI application: ``create_app(settings)`` wires settings, database, model and routes.

Served by ``bookclub serve`` as ``uvicorn api.app:create_app --factory``: each
worker calls ``create_app()`` with settings from the environment, opens its own
engine and loads the active model (memory-mapped, so workers share its pages).
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi.telemetry import TelemetryConfig
from sqlalchemy import Engine
from threadpoolctl import threadpool_limits

import console
from api import errors, metrics
from api.auth import KeyVerifier, require_read
from api.body_guard import BodyGuard, Refused, refused_handler
from api.compute import ComputePool
from api.fastpath import RecommendationsFastPath
from api.model_holder import ModelHolder, ModelSource
from api.recommending import feed_new_titles, hold_connections, release_connections
from api.routes import (
    campaigns,
    catalogs,
    categories,
    health,
    members,
    models,
    purchases,
    segments,
    titles,
)
from recsys.settings import Settings
from recsys.storage.db import engine_from_settings

API_VERSION = "1.0.0"
NO_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}

DESCRIPTION = """
Recommendations for the book club's members, over the trained implicit-ALS model.

**Auth**: send an API key as `Authorization: Bearer <key>` or `X-API-Key: <key>`
(`bookclub apikeys create --scope read|editions|admin`). Read routes accept any key;
members' names and addresses (a profile's `personal`, member editions) need an editions
or admin key, also in open demo mode; admin routes (activate a model, post purchases) need
admin.

**Errors** are JSON `{error, message, errors}`; `errors` names each bad field
(and, for a batch, the line index).

Every model-backed answer carries the serving model's version in `model_version`
and in the `X-Model-Version` header.
"""

TAGS: list[dict[str, Any]] = [
    {"name": "members", "description": "a member's recommendations and profile"},
    {"name": "titles", "description": "similar titles"},
    {"name": "categories", "description": "popular titles per category"},
    {"name": "purchases", "description": "order lines posted as they happen"},
    {"name": "segments", "description": "a quarter's reading-preference segments"},
    {"name": "catalogs", "description": "quarterly catalog plans and their PDFs"},
    {"name": "models", "description": "trained models and the active one"},
    {"name": "health", "description": "liveness, readiness, metrics"},
]


def _document_settings(app: FastAPI, settings: Settings) -> None:
    """Make the OpenAPI document state this server's configured limits (it is the truth):
    ``limit``'s maximum and default, and the most lines a purchase batch may carry."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        schema = generate()
        api = settings.api
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                for param in operation.get("parameters", []):
                    if param.get("in") == "query" and param.get("name") == "limit":
                        for alternative in param["schema"].get("anyOf", [param["schema"]]):
                            if alternative.get("type") == "integer":
                                alternative["maximum"] = api.max_limit
                        param["description"] = (
                            f"how many titles (default {api.default_limit}, at most {api.max_limit})"
                        )
        batch = schema.get("components", {}).get("schemas", {}).get("PurchaseBatchCreate")
        if batch is not None:
            batch["properties"]["lines"]["maxItems"] = api.max_batch_lines
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _registry(settings: Settings) -> ModelSource:
    from training.registry import ModelRegistry

    registry: ModelSource = ModelRegistry(settings.models_dir)
    return registry


def create_app(
    settings: Settings | None = None,
    *,
    engine: Engine | None = None,
    registry: ModelSource | None = None,
) -> FastAPI:
    """The app; ``settings`` default to the environment (``BOOKCLUB_…``), as in factory mode."""
    settings = settings if settings is not None else Settings.model_validate({})
    owns_engine = engine is None
    engine = engine if engine is not None else engine_from_settings(settings)
    registry = registry if registry is not None else _registry(settings)
    holder = ModelHolder(
        registry,
        prepare=partial(feed_new_titles, engine),
        on_swap=metrics.model_swapped,
        poll_seconds=settings.api.model_poll_seconds,
    )
    # numpy/Python work holds the GIL: one thread beats several fighting for it (api/compute.py).
    # On a database server, a reader thread fetches the next request's snapshot meanwhile; SQLite
    # reads in process without waiting for anyone, and there the hand-off cost more CPU than it
    # saved (100k members, in turns: 1.21 -> 1.29 ms a request with 2 workers). Each thread keeps
    # its database connection from request to request (api/recommending.py)
    compute = ComputePool(
        settings.api.compute_threads,
        on_start=hold_connections,
        on_exit=release_connections,
        readers=0 if engine.dialect.name == "sqlite" else 1,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # one BLAS thread per request thread: with 2 cores and a threadpool of 40,
        # multi-threaded BLAS calls only fight each other
        blas = threadpool_limits(1, "blas")
        await run_in_threadpool(holder.start)
        # what start-up built (the model, the title cache, the imports: ~260,000 objects) lives
        # as long as the worker: out of the collector's sight, so that a full collection does not
        # walk it again — one took ~150 ms, every minute or so under load, stalling the worker
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            blas.restore_original_limits()
            holder.stop()
            compute.close()
            metrics.worker_exit()
            if owns_engine:
                engine.dispose()

    app = FastAPI(
        title="bookclub recommendations",
        version=API_VERSION,
        description=DESCRIPTION,
        openapi_tags=TAGS,
        lifespan=lifespan,
        # FastAPI's native OpenTelemetry stays off: the app keeps its own Prometheus metrics and
        # access log (api/metrics.py), and with it on, every request asked the OpenTelemetry
        # API for its global providers (environment lookups) before anything else
        telemetry=NO_TELEMETRY,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.holder = holder
    app.state.keys = KeyVerifier(engine, settings.api.key_cache_seconds)
    app.state.compute = compute
    errors.install(app)
    # a body is received only after the route's key check passed, and only up to the limit
    app.add_exception_handler(Refused, refused_handler)
    app.add_middleware(BodyGuard, max_bytes=settings.api.max_body_bytes)
    app.add_middleware(metrics.MetricsMiddleware)
    # outermost of ours: the hot route answered without the layers above (api/fastpath.py);
    # anything it does not read as plainly valid goes on through them unchanged
    app.add_middleware(RecommendationsFastPath)
    _document_settings(app, settings)
    routers = (members, titles, categories, purchases, segments, catalogs, campaigns, models)
    for module in routers:
        # a key (any scope; none in open demo) is checked before a route's own dependencies
        # (a database connection, the model): the route's own key dependency then checks scope
        app.include_router(module.router, dependencies=[Depends(require_read)])
    app.include_router(health.router)  # no key: for the orchestrator and the scraper
    app.include_router(console.router)  # the staff console's pages under /ui
    return app
