"""Models: the registry with metrics and baselines, a metric over versions, activate and roll
back with a required reason (the registry functions the API route and the CLI call)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse
from sqlalchemy import Connection

from console.charts import line_chart
from console.models_view import HEADLINE, registry_of, versions
from console.session import StaffSession
from console.web import (
    ConsoleRoute,
    check_same_origin,
    engine_of,
    form_of,
    get_connection,
    page,
    require,
)
from recsys.storage import audit as audit_db

router = APIRouter(route_class=ConsoleRoute)
Conn = Annotated[Connection, Depends(get_connection)]


@router.get("/models", include_in_schema=False)
def models_page(request: Request, connection: Conn, metric: str = "ndcg@20", error: str | None = None) -> Response:
    session = require(request, connection)
    registry = registry_of(request)
    views = versions(registry)
    names = sorted({m for v in views for m in v.metrics}) or list(HEADLINE)
    metric = metric if metric in names else (names[0] if names else "ndcg@20")
    series = [(v.version, float(v.metrics[metric])) for v in views if metric in v.metrics]
    cutoffs = {v.cutoff for v in views if metric in v.metrics and v.cutoff}
    holder = getattr(request.app.state, "holder", None)
    serving = holder.model.version if holder is not None and holder.model is not None else None
    return page(
        request, "models.html", session, views=list(reversed(views)), metric=metric, metrics=names,
        series=series, chart=line_chart(series, title=metric), mixed_cutoffs=len(cutoffs) > 1,
        active=registry.active_version(), serving=serving, headline=HEADLINE, error=error,
    )


def _audit(request: Request, session: StaffSession, action: str, target: str, reason: str, detail: dict[str, str | None]) -> None:
    with engine_of(request).begin() as connection:
        audit_db.record_action(
            connection, actor_prefix=session.prefix, actor_label=session.label, role=session.scope,
            action=action, target=target, reason=reason, detail=detail,
        )


async def _refresh(request: Request) -> None:
    holder = getattr(request.app.state, "holder", None)
    if holder is not None:
        await run_in_threadpool(holder.refresh)


@router.post("/models/activate", include_in_schema=False)
async def activate(request: Request, connection: Conn) -> Response:
    check_same_origin(request)
    session = require(request, connection, "admin")
    form = await form_of(request)
    version, reason = form.get("version", "").strip(), form.get("reason", "").strip()
    if not reason or not version:
        return RedirectResponse("/ui/models?error=reason", status_code=303)
    registry = registry_of(request)
    before = registry.active_version()
    await run_in_threadpool(registry.activate, version)  # ModelNotFoundError → 404 page
    await _refresh(request)
    _audit(request, session, "model.activate", version, reason, {"from": before, "to": version})
    return RedirectResponse("/ui/models", status_code=303)


@router.post("/models/rollback", include_in_schema=False)
async def rollback(request: Request, connection: Conn) -> Response:
    check_same_origin(request)
    session = require(request, connection, "admin")
    form = await form_of(request)
    reason = form.get("reason", "").strip()
    if not reason:
        return RedirectResponse("/ui/models?error=reason", status_code=303)
    registry = registry_of(request)
    before = registry.active_version()
    target = await run_in_threadpool(registry.rollback)
    await _refresh(request)
    _audit(request, session, "model.rollback", target, reason, {"from": before, "to": target})
    return RedirectResponse("/ui/models", status_code=303)
