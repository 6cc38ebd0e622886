"""Liveness, readiness and Prometheus metrics (no API key: for the orchestrator and scraper)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from api.deps import HolderDep
from api.metrics import render
from api.schemas import HealthPublic, ReadinessPublic
from recsys.errors import DatabaseNotReadyError
from recsys.storage.db import check_ready

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=HealthPublic, summary="The process is up")
async def healthz() -> HealthPublic:
    return HealthPublic(status="ok")


@router.get(
    "/readyz",
    response_model=ReadinessPublic,
    responses={503: {"model": ReadinessPublic, "description": "database or model not ready"}},
    summary="Ready to serve: a model is loaded and the database answers",
)
async def readyz(request: Request, holder: HolderDep) -> JSONResponse:
    database = "ok"
    detail: str | None = None
    try:
        await run_in_threadpool(check_ready, request.app.state.engine)
    except DatabaseNotReadyError as exc:
        database, detail = "unavailable", _first_line(str(exc))
    model = holder.model
    if model is None:
        detail = detail or "no model loaded: train one and activate it"
    ready = database == "ok" and model is not None
    body = ReadinessPublic(
        status="ready" if ready else "not_ready",
        database=database,
        model_version=model.version if model is not None else None,
        detail=detail,
    )
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)


def _first_line(text: str) -> str:
    # driver messages can carry the connection string; keep the reason only
    line = text.splitlines()[0] if text else text
    return line.split("(Background")[0][:200]


@router.get("/metrics", summary="Prometheus metrics (all workers in multiprocess mode)")
async def metrics() -> Response:
    payload, content_type = await run_in_threadpool(render)
    return Response(payload, media_type=content_type)
