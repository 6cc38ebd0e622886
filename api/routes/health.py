"""Liveness, readiness and Prometheus metrics (no API key: for the orchestrator and scraper).

``/readyz`` never shows the database's host, port or URL to an anonymous caller: the
driver's message (which names them) is only given to an admin key. Which active model
failed to load, and why, is said to everyone (file names only, never server paths).
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from api.auth import bearer_scheme, header_scheme, require_admin
from api.deps import HolderDep
from api.errors import scrub
from api.metrics import render
from api.schemas import HealthPublic, ReadinessPublic
from recsys.errors import DatabaseNotReadyError
from recsys.storage.db import check_ready

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=HealthPublic, summary="The process is up")
async def healthz() -> HealthPublic:
    return HealthPublic(status="ok")


async def _admin_asks(request: Request) -> bool:
    """True when the request carries a valid admin key (no key, or any other, is not an error)."""
    try:
        await require_admin(request, await bearer_scheme(request), await header_scheme(request))
    except Exception:  # no key, a read key, a revoked key, or the database down: anonymous
        return False
    return True


@router.get(
    "/readyz",
    response_model=ReadinessPublic,
    responses={503: {"model": ReadinessPublic, "description": "database or model not ready"}},
    summary="Ready to serve: the active model is loaded and the database answers",
)
async def readyz(request: Request, holder: HolderDep) -> JSONResponse:
    """Not ready when the database does not answer, no model is loaded, or the active model
    failed to load (this worker then keeps serving the one it had, and says so). An admin key
    gets the database driver's message too; without one, no host, port or URL is shown."""
    problems: list[str] = []
    database = "ok"
    try:
        await run_in_threadpool(check_ready, request.app.state.engine)
    except DatabaseNotReadyError as exc:
        database = "unavailable"
        first = _first_line(str(exc))
        problems.append(scrub(first) if await _admin_asks(request) else first.split(":")[0])
    active = await run_in_threadpool(holder.registry.active_version)
    model = holder.model
    failure = holder.last_error
    load_failed = failure is not None and active is not None and (model is None or model.version != active)
    if load_failed:
        serving = f"; still serving {model.version}" if model is not None else ""
        problems.append(f"the active model {active} failed to load: {scrub(failure or '')}{serving}")
    elif model is None:
        problems.append("no model loaded: train one and activate it")
    ready = database == "ok" and model is not None and not load_failed
    body = ReadinessPublic(
        status="ready" if ready else "not_ready",
        database=database,
        model_version=model.version if model is not None else None,
        active_version=active,
        detail="; ".join(problems) or None,
    )
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)


def _first_line(text: str) -> str:
    # driver messages can carry the connection string; keep the reason only
    line = text.splitlines()[0] if text else text
    return line.split("(Background")[0][:200]


@router.get(
    "/metrics",
    summary="Prometheus metrics (all workers in multiprocess mode)",
    response_class=Response,
    responses={
        200: {
            "description": "the Prometheus text exposition format",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
    },
)
async def metrics() -> Response:
    payload, content_type = await run_in_threadpool(render)
    return Response(payload, media_type=content_type)
