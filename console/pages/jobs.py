"""Jobs: train a model or render every member's edition, started by an admin with a reason (in the
audit log), run in a process of their own by the functions the CLI calls (``console.jobs``); the
page lists every job with its progress and result, and polls while one runs."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse
from sqlalchemy import Connection

from console import jobs
from console.pages.home import current_quarter
from console.web import (
    ConsoleRoute,
    check_same_origin,
    engine_of,
    form_of,
    get_connection,
    page,
    require,
    settings_of,
)
from recsys.storage import audit as audit_db
from recsys.storage import jobs as jobs_db
from recsys.storage.jobs import JobRecord

router = APIRouter(route_class=ConsoleRoute)
Conn = Annotated[Connection, Depends(get_connection)]
PAGE = 50


@router.get("/jobs", include_in_schema=False)
def jobs_page(
    request: Request,
    connection: Conn,
    before: Annotated[int | None, Query(ge=1)] = None,
    error: Annotated[str | None, Query(max_length=300)] = None,
) -> Response:
    session = require(request, connection)
    found = jobs_db.jobs_page(connection, before_id=before, limit=PAGE)
    lost = {j.id for j in found if jobs.is_lost(j)}
    running = any(j.status in jobs_db.OPEN and j.id not in lost for j in found)
    return page(
        request, "jobs.html", session, jobs=found, lost=lost, running=running,
        more=found[-1].id if len(found) == PAGE else None, quarter=current_quarter(), error=error,
        promote=jobs.PROMOTE, before=before,
    )


@router.post("/jobs", include_in_schema=False)
async def start_job(request: Request, connection: Conn) -> Response:
    check_same_origin(request)
    session = require(request, connection, "admin")
    form = await form_of(request)
    kind, reason = form.get("kind", ""), form.get("reason", "").strip()
    if not reason:
        return RedirectResponse("/ui/jobs?error=reason", status_code=303)
    params = {"evaluate": form.get("evaluate") == "1", "promote": form.get("promote", "auto")} if kind == "train" else {
        "quarter": form.get("quarter", "").strip()
    }
    engine = engine_of(request)

    def audit(writing: Connection, job: JobRecord) -> None:
        audit_db.record_action(
            writing, actor_prefix=session.prefix, actor_label=session.label, role=session.scope,
            action="job.start", target=f"{kind} #{job.id}", reason=reason, detail=job.params,
        )

    try:
        job = await run_in_threadpool(
            jobs.start, engine, settings_of(request), kind, params, actor_prefix=session.prefix,
            actor_label=session.label, record=audit,
        )  # fmt: skip
    except jobs.JobRefused as exc:
        return RedirectResponse("/ui/jobs?" + urlencode({"error": str(exc)}), status_code=303)
    return RedirectResponse(f"/ui/jobs#job-{job.id}", status_code=303)
