"""Catalogs: each segment's plan (fill against quotas, new titles, titles gone out of stock since
planning), the proof viewer stepping through member editions with page images (pdftoppm) beside
the main selection and picks they show, proof marks, and approval for print (admin, with name and time)."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, RedirectResponse
from sqlalchemy import Connection

from catalog.paths import (
    catalog_path,
    complete_edition,
    complete_pdf,
    edition_path,
    quarter_dir,
    read_sidecar,
)
from catalog.plan import CatalogPlan
from console.cache import Computed, aggregates_of
from console.charts import bar_chart
from console.pages.home import current_quarter
from console.preflight import FLAGS, PagesCheck, PicksCheck, Preflight, edition_pages, preflight
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
from recsys.settings import Settings
from recsys.storage import audit as audit_db
from recsys.storage import campaigns as campaigns_db
from recsys.storage import console_reads
from recsys.storage import members as members_db
from recsys.storage import plans as plans_db
from recsys.storage import segments as segments_db
from recsys.storage import shown_titles as shown_db
from recsys.storage import titles as titles_db
from recsys.storage.titles import TitleRecord
from training.compare import simple_sample

router = APIRouter(route_class=ConsoleRoute)
Conn = Annotated[Connection, Depends(get_connection)]
QUARTER = r"^\d{4}Q[1-4]$"
TIERS = ("core", "regular", "occasional", "lapsed")
PROOF_DPI = 60


def section_label(code: str, name: str) -> str:
    """A section as people read it: the plan's names often carry their code already."""
    return name if name.startswith(code) else f"{code} {name}"


def _plans(connection: Connection, quarter: str) -> list[CatalogPlan]:
    return [CatalogPlan.from_json(r["plan_json"]) for r in plans_db.plans_of_quarter(connection, quarter)]


def _audit(request: Request, session: StaffSession, action: str, target: str, reason: str, detail: dict[str, Any]) -> None:
    with engine_of(request).begin() as connection:
        audit_db.record_action(
            connection, actor_prefix=session.prefix, actor_label=session.label, role=session.scope,
            action=action, target=target, reason=reason, detail=detail,
        )


@router.get("/catalogs", include_in_schema=False)
def catalogs_page(
    request: Request, connection: Conn, quarter: Annotated[str | None, Query(pattern=QUARTER)] = None
) -> Response:
    session = require(request, connection)
    quarter = quarter or current_quarter()
    plans = _plans(connection, quarter)
    settings = settings_of(request)
    stock = titles_db.title_details(connection, sorted({t for p in plans for t in p.title_ids}))
    approvals = {a.target: a for a in reversed(audit_db.actions_on(connection, "catalog.approve", f"{quarter}/"))}
    checks = _preflights(request, connection, quarter, plans)
    views = []
    for plan in plans:
        entries = [e for s in plan.sections for e in s.entries]
        series = [(section_label(s.code, s.name), float(len(s.entries))) for s in plan.sections]
        views.append({
            "plan": plan,
            "titles": len(entries),
            "new": sum(e.is_new for e in entries),
            "gone": [t for t in plan.title_ids if t in stock and not stock[t].in_stock],
            "pdf": catalog_path(settings, quarter, plan.segment).exists(),
            "approval": approvals.get(f"{quarter}/{plan.segment}"),
            "series": series,
            "chart": bar_chart(series, title=f"segment {plan.segment}"),
            "labels": [section_label(s.code, s.name) for s in plan.sections],
            "preflight": checks[plan.segment],
        })
    return page(
        request, "catalogs.html", session, quarter=quarter, views=views, editions=len(_editions(request, quarter)),
        flags=FLAGS, pending=any(v["preflight"] is None for v in views),
    )


def _checks(
    settings: Settings, quarter: str, plan: CatalogPlan, model: Any, stock: Mapping[str, TitleRecord]
) -> dict[str, Any]:
    """The preflight's picks check (with the model the API serves) and page check (against the
    segment catalog's pages, when it is rendered)."""
    out: dict[str, Any] = {}
    if model is not None:
        titles = {t: stock[t] for t in plan.title_ids if t in stock}
        # an edition prints the main selection and the picks (catalog.member_edition.edition_selections)
        out["picks"] = PicksCheck(model, plan, titles, settings.catalog.picks_per_member + 1)
    body = read_sidecar(catalog_path(settings, quarter, plan.segment))
    if body is not None and isinstance(body.get("pages"), int):
        out["pages"] = PagesCheck(partial(edition_path, settings, quarter), int(body["pages"]), settings.console.personal_pages)
    return out


@router.post("/catalogs/{quarter}/{segment}/approve", include_in_schema=False)
async def approve(request: Request, connection: Conn, quarter: str, segment: int) -> Response:
    check_same_origin(request)
    session = require(request, connection, "admin")
    form = await form_of(request)
    reason = form.get("reason", "").strip()
    plan = next((p for p in _plans(connection, quarter) if p.segment == segment), None)
    if plan is None:
        raise NotFound()
    if reason:
        _audit(request, session, "catalog.approve", f"{quarter}/{segment}", reason,
               {"model_version": plan.model_version, "settings_hash": plan.settings_hash, "titles": len(plan.title_ids)})
    return RedirectResponse(f"/ui/catalogs?quarter={quarter}", status_code=303)


def _editions(request: Request, quarter: str) -> list[str]:
    """Member ids with a rendered edition this quarter, sorted."""
    folder = quarter_dir(settings_of(request), quarter) / "members"
    if not folder.is_dir():
        return []
    return sorted(p.stem for p in folder.glob("*.pdf"))


PROOF_FILTERS = ("segment", "tier", "flag", "sample", "seed")


def _preflights(
    request: Request, connection: Connection, quarter: str, plans: list[CatalogPlan]
) -> dict[int, Computed[Preflight] | None]:
    """Each plan's preflight (computed in the background, as on the catalogs page)."""
    holder = getattr(request.app.state, "holder", None)
    model = holder.model if holder is not None else None
    settings = settings_of(request)
    stock = titles_db.title_details(connection, sorted({t for p in plans for t in p.title_ids}))
    aggregates = aggregates_of(request)
    return {
        plan.segment: aggregates.get(
            ("preflight", quarter, plan.segment, model.version if model is not None else None),
            partial(preflight, quarter=quarter, segment=plan.segment, **_checks(settings, quarter, plan, model, stock)),
            ttl=settings.console.preflight_seconds,
        )
        for plan in plans
    }


@router.get("/catalogs/{quarter}/proofs", include_in_schema=False)
def proofs(
    request: Request,
    connection: Conn,
    quarter: Annotated[str, PathParam(pattern=QUARTER)],
    member: Annotated[str | None, Query(max_length=64)] = None,
    segment: int | None = None,
    tier: Annotated[str | None, Query(max_length=16)] = None,
    flag: Annotated[str | None, Query(max_length=32)] = None,
    sample: Annotated[int | None, Query(ge=1, le=200)] = None,
    seed: Annotated[int | None, Query(ge=0)] = None,
) -> Response:
    """Step through the member editions on disk: all, or those of a segment, a value tier, a
    preflight flag, or a seeded random sample of ``sample`` per segment."""
    session = require(request, connection, "editions")  # editions carry names and addresses
    tier, flag = tier or None, flag or None
    seed = settings_of(request).console.sample_seed if seed is None else seed
    filters = {"segment": segment, "tier": tier, "flag": flag, "sample": sample, "seed": seed if sample else None}
    query = urlencode({k: v for k, v in filters.items() if v is not None})
    ids = _editions(request, quarter)
    plans = _plans(connection, quarter)
    # every member's (segment, tier) this quarter: read once in the background, not per page view
    computed = aggregates_of(request).get(
        ("quarter_members", quarter), lambda c: {m: (s, t) for m, s, t in console_reads.quarter_members(c, quarter)}
    )
    labels: dict[str, tuple[int, str]] = computed.value if computed is not None else {}
    pending = computed is None and (segment is not None or bool(tier) or bool(sample))
    if pending:
        ids = []
    if segment is not None:
        ids = [m for m in ids if m in labels and labels[m][0] == segment]
    if tier:
        ids = [m for m in ids if m in labels and labels[m][1] == tier]
    if flag:
        if flag not in FLAGS:
            raise NotFound()
        found = _preflights(request, connection, quarter, [p for p in plans if segment is None or p.segment == segment])
        pending = pending or any(v is None for v in found.values())
        flagged = {m for v in found.values() if v is not None for m in v.value.flagged.get(flag, ())}
        ids = [m for m in ids if m in flagged]
    if sample:
        by_segment: dict[int, list[str]] = {}
        for m in ids:
            by_segment.setdefault(labels[m][0] if m in labels else -1, []).append(m)
        ids = sorted(m for s, group in by_segment.items() for m in simple_sample(group, sample, seed + s))
    context: dict[str, Any] = {
        "quarter": quarter, "segment": segment, "tier": tier, "flag": flag, "sample": sample, "seed": seed,
        "filters_q": query, "flags": FLAGS, "tiers": TIERS, "segments": [(p.segment, p.segment_name) for p in plans],
        "pending": pending,
        "another_q": urlencode({**{k: v for k, v in filters.items() if v is not None}, "seed": seed + 1}) if sample else "",
    }
    if not ids:
        return page(request, "proofs.html", session, member=None, ids=[], **context)
    current = member if member in ids else ids[0]
    i = ids.index(current)
    record = members_db.find_member(connection, current)
    pdf = edition_path(settings_of(request), quarter, current)
    pages = edition_pages(pdf) or 0
    picks = _picks(request, connection, quarter, current)
    marks = audit_db.actions_on(connection, "proof.mark", f"{quarter}/{current}", limit=20)
    return page(
        request, "proofs.html", session, member=record, ids=ids, index=i,
        previous=ids[i - 1] if i > 0 else None, next=ids[i + 1] if i + 1 < len(ids) else None,
        pages=list(range(1, min(pages, 4) + 1)), total_pages=pages, picks=picks, marks=marks,
        label=labels.get(current), **context,
    )


@dataclass(frozen=True)
class ProofPick:
    """A title the member's edition shows: the main selection (本季推荐) or a pick."""

    title_id: str
    title: TitleRecord | None  # None: no longer in the titles table
    reason: str  # empty when read from what the edition recorded (the reasons are not kept)
    main: bool


@dataclass(frozen=True)
class ProofPicks:
    """What the member's edition shows, main selection first; ``source`` ``recorded`` (the
    ``contact_titles`` of the member's mailed contact, written with the edition), ``computed``
    (:func:`catalog.member_edition.edition_selections` now, with the model served) or None
    (neither: no rows recorded and no plan or model)."""

    picks: list[ProofPick]
    source: str | None


def _picks(request: Request, connection: Connection, quarter: str, member_id: str) -> ProofPicks:
    """What the member's edition shows: what was recorded for the member's mailed contact in the
    quarter's campaign when it was rendered; else what the renderer would lay out now
    (:func:`catalog.member_edition.edition_selections`, the function it calls, with the model
    served: the same unless purchases or stock changed since the edition was rendered)."""
    from catalog.member_edition import edition_selections

    campaign = campaigns_db.campaign_by_name(connection, quarter)
    if campaign is not None:
        contact = shown_db.edition_contacts(connection, campaign.id, [member_id]).get(member_id)
        rows = sorted(
            (
                r for r in shown_db.shown_titles(connection, campaign.id, [member_id]).get(member_id, [])
                if contact is not None and r.contact_id == contact.contact_id and r.role in ("main", "pick")
            ),
            key=lambda r: (r.role != "main", r.position),
        )
        if rows:
            recorded = titles_db.title_details(connection, [r.title_id for r in rows])
            return ProofPicks(
                [ProofPick(r.title_id, recorded.get(r.title_id), "", r.role == "main") for r in rows], "recorded"
            )
    found = segments_db.member_segment(connection, quarter, member_id)
    plan = next((p for p in _plans(connection, quarter) if found and p.segment == found[1]), None)
    holder = getattr(request.app.state, "holder", None)
    if plan is None or holder is None or holder.model is None:
        return ProofPicks([], None)
    settings = settings_of(request)
    titles = titles_db.title_details(connection, plan.title_ids)
    selection = edition_selections(
        connection, holder.model, plan, titles, [member_id], settings.catalog.picks_per_member, settings.mailing,
        campaign_id=campaign.id if campaign is not None else None,
    )[member_id]
    mains = [selection.main] if selection.main is not None else []
    return ProofPicks(
        [ProofPick(t, titles.get(t), reason, True) for t, reason in mains]
        + [ProofPick(t, titles.get(t), reason, False) for t, reason in selection.picks],
        "computed",
    )


@router.post("/catalogs/{quarter}/proofs/{member_id}/mark", include_in_schema=False)
async def mark_proof(request: Request, connection: Conn, quarter: str, member_id: str) -> Response:
    check_same_origin(request)
    session = require(request, connection, "editions")
    form = await form_of(request)
    ok = form.get("ok") == "1"
    note = form.get("note", "").strip()
    if member_id not in _editions(request, quarter):
        raise NotFound()
    _audit(request, session, "proof.mark", f"{quarter}/{member_id}", note or ("ok" if ok else "not ok"), {"ok": ok})
    kept = {k: v[0] for k, v in parse_qs(form.get("filters", "")).items() if k in PROOF_FILTERS}
    return RedirectResponse(
        f"/ui/catalogs/{quarter}/proofs?" + urlencode({"member": member_id, **kept}), status_code=303
    )


def _png(pdf: Path, number: int, cache: Path) -> Path:
    """Page ``number`` of ``pdf`` as a PNG, rendered once by pdftoppm (written under a
    temporary name of this call's own and renamed, so a half-written image is never served
    and two requests for the same page at once — threads of one process — do not write or
    rename one temporary file)."""
    stamp = int(pdf.stat().st_mtime)
    out = cache / f"{pdf.stem}-{stamp}-{number}.png"
    if out.exists():
        return out
    cache.mkdir(parents=True, exist_ok=True)
    tool = shutil.which("pdftoppm")
    if tool is None:
        raise NotFound()
    base = cache / f".{pdf.stem}-{number}.{os.getpid()}.{secrets.token_hex(4)}"
    subprocess.run(
        [tool, "-png", "-r", str(PROOF_DPI), "-f", str(number), "-l", str(number), "-singlefile", str(pdf), str(base)],
        check=True, capture_output=True, timeout=60,
    )
    os.replace(base.with_suffix(base.suffix + ".png"), out)
    return out


@router.get("/catalogs/{quarter}/proofs/{member_id}/page/{number}.png", include_in_schema=False)
async def proof_page(request: Request, connection: Conn, quarter: str, member_id: str, number: int) -> Response:
    require(request, connection, "editions")
    if member_id not in _editions(request, quarter):
        raise NotFound()
    pdf = edition_path(settings_of(request), quarter, member_id)
    if complete_edition(pdf) is None or not 1 <= number <= (edition_pages(pdf) or 0):
        raise NotFound()  # cut short or never finished: no proof of a broken file
    cache = Path(settings_of(request).data_dir) / "console_cache" / "proofs" / quarter
    png = await run_in_threadpool(_png, pdf, number, cache)
    return FileResponse(png, media_type="image/png")


@router.get("/catalogs/{quarter}/proofs/{member_id}.pdf", include_in_schema=False)
def proof_pdf(request: Request, connection: Conn, quarter: str, member_id: str) -> Response:
    require(request, connection, "editions")
    if member_id not in _editions(request, quarter):
        raise NotFound()
    # only a complete edition (size and SHA-256 as recorded), and the very bytes checked
    pdf = complete_edition(edition_path(settings_of(request), quarter, member_id))
    if pdf is None:
        raise NotFound()
    return Response(pdf.data, media_type="application/pdf")


@router.get("/catalogs/{quarter}/segment-{segment}.pdf", include_in_schema=False)
def segment_pdf(request: Request, connection: Conn, quarter: str, segment: int) -> Response:
    require(request, connection)
    pdf = complete_pdf(catalog_path(settings_of(request), quarter, segment))
    if pdf is None:
        raise NotFound()
    return Response(pdf.data, media_type="application/pdf")
