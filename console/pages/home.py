"""Log in and out, the overview, the audit log and the vendored static files."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import FileResponse, RedirectResponse
from sqlalchemy import Connection

from catalog.paths import catalog_path, quarter_dir
from catalog.period import Quarter
from console.cache import aggregates_of
from console.health import read_health
from console.models_view import model_summary
from console.session import COOKIE, COOKIE_PATH, StaffSession, console_secret, sign_session
from console.web import (
    STATIC,
    ConsoleRoute,
    NotFound,
    check_same_origin,
    form_of,
    get_connection,
    page,
    require,
    session_of,
    settings_of,
)
from recsys.storage import audit as audit_db
from recsys.storage import console_reads
from recsys.storage import plans as plans_db
from recsys.storage import segments as segments_db
from recsys.storage.apikeys import verify_key
from recsys.storage.imports.title_kind import rejected_outside_labels

router = APIRouter(route_class=ConsoleRoute)
Conn = Annotated[Connection, Depends(get_connection)]

_STATIC_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml", ".txt": "text/plain"}


def current_quarter(today: dt.date | None = None) -> str:
    today = today or dt.date.today()
    return f"{today.year}Q{(today.month - 1) // 3 + 1}"


def _safe_next(target: str | None) -> str:
    """Only a path inside the console: never an open redirect."""
    if target and target.startswith("/ui") and not target.startswith("//") and "\\" not in target:
        return target
    return "/ui/"


@router.get("/static/{name}", include_in_schema=False)
def static_file(name: str) -> Response:
    path = STATIC / name
    if "/" in name or name.startswith(".") or not path.is_file() or path.suffix not in _STATIC_TYPES:
        raise NotFound()
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    return FileResponse(path, media_type=_STATIC_TYPES[path.suffix], headers={"ETag": f'"{digest}"'})


@router.get("/login", include_in_schema=False)
def login_form(request: Request, connection: Conn, next: str | None = None) -> Response:
    return page(request, "login.html", session_of(request, connection), next=_safe_next(next), failed=False)


@router.post("/login", include_in_schema=False)
async def login(request: Request, connection: Conn) -> Response:
    check_same_origin(request)
    form = await form_of(request)
    key = form.get("key", "").strip()
    info = verify_key(connection, key) if key else None
    target = _safe_next(form.get("next"))
    if info is None:
        return page(request, "login.html", None, next=target, failed=True, status=401)
    session = StaffSession(info.prefix, info.scope, info.label, time.time())
    settings = settings_of(request)
    secret = getattr(request.app.state, "console_secret", None) or console_secret(settings)
    request.app.state.console_secret = secret
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        COOKIE, sign_session(secret, session), path=COOKIE_PATH, httponly=True, samesite="lax",
        secure=request.url.scheme == "https", max_age=int(settings.console.session_hours * 3600),
    )
    return response


@router.post("/logout", include_in_schema=False)
def logout(request: Request) -> Response:
    check_same_origin(request)
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(COOKIE, path=COOKIE_PATH, httponly=True, samesite="lax")
    return response


def _pipeline(request: Request, connection: Connection, quarter: str) -> list[tuple[str, bool, str]]:
    """This quarter's steps: (name, done, detail)."""
    settings = settings_of(request)
    segments = segments_db.segments_of_quarter(connection, quarter)
    plans = plans_db.plans_of_quarter(connection, quarter)
    pdfs = [p for p in plans if catalog_path(settings, quarter, int(p["segment"])).exists()]
    members_dir = quarter_dir(settings, quarter) / "members"
    editions = sum(1 for _ in members_dir.glob("*.pdf")) if members_dir.is_dir() else 0
    approvals = audit_db.actions_on(connection, "catalog.approve", f"{quarter}/", limit=50)
    approved = {a.target for a in approvals}
    return [
        ("step_segments", bool(segments), str(len(segments))),
        ("step_plans", bool(plans), f"{len(plans)}/{len(segments)}"),
        ("step_segment_pdfs", bool(plans) and len(pdfs) == len(plans), f"{len(pdfs)}/{len(plans)}"),
        ("step_editions", editions > 0, str(editions)),
        ("step_approved", bool(plans) and len(approved) >= len(plans), f"{len(approved)}/{len(plans)}"),
    ]


@router.get("/", include_in_schema=False)
def overview(request: Request, connection: Conn) -> Response:
    session = require(request, connection)
    quarter = current_quarter()
    summary = model_summary(request)
    trained_until = summary.trained_until if summary else None
    cache = aggregates_of(request)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    start = Quarter.parse(quarter).start
    counters = cache.get(
        ("counters", quarter),
        lambda c: console_reads.club_counters(c, dt.datetime.now(dt.UTC).replace(tzinfo=None), start),
    )
    alerts = cache.get(("alerts", trained_until), lambda c: console_reads.data_alerts(c, trained_until))
    data_dir = Path(settings_of(request).data_dir)
    unmapped = cache.get(("unmapped", str(data_dir)), lambda c: unmapped_labels(c, data_dir))
    rows: list[dict[str, Any]] = []
    if unmapped is not None and unmapped.value.labels:
        u = unmapped.value
        rows.append({
            "key": "alert_unmapped_labels", "count": len(u.labels), "action": "act_unmapped_labels",
            "link": "/ui/data", "examples": [f"{s}:{lb} ({n})" for (s, lb), n in u.labels.most_common(5)],
        })
    if alerts is not None:
        a = alerts.value
        for key, n, action, link in (
            ("alert_no_category", a.titles_without_category, "act_no_category", "/ui/titles"),
            ("alert_never_sold", a.titles_never_sold, "act_never_sold", "/ui/titles"),
            ("alert_no_purchases", a.members_without_purchases, "act_no_purchases", "/ui/members"),
            ("alert_rejects", a.imports_with_rejects, "act_rejects", "/ui/data"),
            ("alert_after_model", a.lines_after_model or 0, "act_after_model", "/ui/models"),
        ):
            if n:
                rows.append({"key": key, "count": n, "action": action, "link": link})
    holder = getattr(request.app.state, "holder", None)
    serving = holder.model.version if holder is not None and holder.model is not None else None
    return page(
        request, "overview.html", session, counters=counters, alerts=rows,
        alerts_at=alerts.at if alerts and unmapped else None, model=summary, quarter=quarter,
        pipeline=_pipeline(request, connection, quarter), serving=serving, now=now, health=read_health(),
    )


@dataclass(frozen=True)
class UnmappedLabels:
    labels: Counter[tuple[str, str]]  # (scheme, label) → rejected rows naming it
    files: int  # rejects files read


def unmapped_labels(connection: Connection, data_dir: Path) -> UnmappedLabels:
    """Outside labels (``scheme:label``) in the rejected rows of the rejects files that still
    have no category mapping (a mapping added since, and the label is no longer listed)."""
    found: Counter[tuple[str, str]] = Counter()
    files = 0
    for path in reject_files(data_dir):
        try:
            found.update(rejected_outside_labels(path))
        except (OSError, UnicodeDecodeError, csv.Error):  # not a rejects file we can read: skip it
            continue
        files += 1
    mapped = console_reads.mapped_labels(connection, list(found))
    return UnmappedLabels(Counter({k: n for k, n in found.items() if k not in mapped}), files)


@router.get("/audit", include_in_schema=False)
def audit_log(
    request: Request, connection: Conn, before: Annotated[int | None, Query(ge=1)] = None
) -> Response:
    session = require(request, connection)
    entries = audit_db.recent_actions(connection, before_id=before, limit=50)
    more = entries[-1].id if len(entries) == 50 else None
    return page(request, "audit.html", session, entries=entries, more=more)


def reject_files(data_dir: Path) -> list[Path]:
    folder = data_dir / "rejects"
    if not folder.is_dir():
        return []
    return sorted((p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")), reverse=True)[:200]


@router.get("/data", include_in_schema=False)
def data_page(
    request: Request, connection: Conn, before: Annotated[int | None, Query(ge=1)] = None
) -> Response:
    session = require(request, connection)
    runs = console_reads.import_runs_page(connection, before_id=before, limit=50)
    more = runs[-1].id if len(runs) == 50 else None
    files = reject_files(Path(settings_of(request).data_dir))
    return page(request, "data.html", session, runs=runs, more=more, files=[f.name for f in files])


@router.get("/data/rejects/{name}", include_in_schema=False)
def reject_file(request: Request, connection: Conn, name: str) -> Response:
    require(request, connection, "editions")  # rejected rows may hold names and addresses
    found = {p.name: p for p in reject_files(Path(settings_of(request).data_dir))}
    if name not in found:
        raise NotFound()
    return FileResponse(found[name], media_type="text/csv", filename=name)
