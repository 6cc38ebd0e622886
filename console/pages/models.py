"""Models: the registry with metrics and baselines, a metric over versions, activate and roll
back with a required reason (the registry functions the API route and the CLI call)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse
from sqlalchemy import Connection

from catalog.period import Quarter
from catalog.planning import is_new_release
from console.cache import aggregates_of
from console.candidates import loaded
from console.charts import bar_chart, interval_chart, line_chart
from console.models_view import HEADLINE, registry_of, versions
from console.pages.home import current_quarter
from console.session import StaffSession
from console.web import (
    ConsoleRoute,
    NotFound,
    check_same_origin,
    engine_of,
    form_of,
    get_connection,
    page,
    require,
    settings_of,
)
from recsys.storage import audit as audit_db
from recsys.storage import console_reads
from recsys.storage import segments as segments_db
from recsys.storage import titles as titles_db
from training.artifact import read_meta
from training.compare import (
    VersionComparison,
    compare_recommendations,
    metric_differences,
    stored_evaluation,
    stratified_sample,
)

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


VersionQ = Annotated[str | None, Query(max_length=100)]


@router.get("/models/compare", include_in_schema=False)
def compare_page(request: Request, connection: Conn, a: VersionQ = None, b: VersionQ = None) -> Response:
    """Two versions: their stored metrics with intervals, and both versions' recommendations
    for a seeded sample of members per segment and tier (computed in the background)."""
    session = require(request, connection)
    registry = registry_of(request)
    views = versions(registry)
    names = [v.version for v in views if v.status != "damaged"]
    active = registry.active_version()
    if len(names) < 2:
        return page(request, "models_compare.html", session, views=views, a=None, b=None)
    a = a or (active if active in names else names[-2])
    b = b or next((v for v in reversed(names) if v != a), names[-1])
    if a not in names or b not in names:
        raise NotFound()
    meta_a, meta_b = read_meta(registry.versions_dir / a), read_meta(registry.versions_dir / b)
    rows = metric_differences(meta_a, meta_b)
    eval_a, eval_b = stored_evaluation(meta_a), stored_evaluation(meta_b)
    series = [
        (f"{side} · {m.metric}", value, interval[0], interval[1])
        for m in rows
        for side, value, interval in (("A", m.a, m.a_interval), ("B", m.b, m.b_interval))
        if value is not None and interval is not None
    ]
    settings = settings_of(request)
    quarters = segments_db.quarters_with_segments(connection)
    quarter = quarters[-1] if quarters else None
    per_cell, seed, k = settings.console.compare_per_cell, settings.console.sample_seed, settings.training.k
    state = request.app.state

    def compute(conn: Connection) -> VersionComparison:
        members = console_reads.quarter_members(conn, quarter) if quarter else []
        if not members:  # no segments yet: the whole club is one cell
            members = [(m, -1, "-") for m in console_reads.open_member_ids(conn)]
        sample = stratified_sample(members, per_cell, seed)
        period = Quarter.parse(current_quarter())
        days = settings.catalog.new_release_days
        return compare_recommendations(
            conn, loaded(state, registry, conn, a), loaded(state, registry, conn, b), sample, k=k,
            is_new=lambda record: is_new_release(record, period, days), per_cell=per_cell, seed=seed,
        )

    computed = aggregates_of(request).get(("compare", a, b, quarter, per_cell, seed, k), compute)
    overlap: dict[str, Any] | None = None
    if computed is not None:
        c = computed.value
        cell_series = [(_cell_label(x.segment, x.tier), x.overlap) for x in c.cells]
        ids = {t for change in c.changed for t in (*change.a_top, *change.b_top)}
        overlap = {
            "c": c, "at": computed.at, "series": cell_series, "chart": bar_chart(cell_series, title="overlap"),
            "titles": titles_db.title_details(connection, sorted(ids)),
        }
    return page(
        request, "models_compare.html", session, views=views, a=a, b=b, rows=rows, eval_a=eval_a, eval_b=eval_b,
        series=series, chart=interval_chart(series, title="metrics"), quarter=quarter, overlap=overlap,
        pending=computed is None, active=active, per_cell=per_cell,
    )


def _cell_label(segment: int, tier: str) -> str:
    return "all members" if segment < 0 else f"{segment} · {tier}"


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
