"""Member 360: search, and the stable deep link ``/ui/members/{member_id}`` a call-centre system
can open — profile, tier and segment by quarter, favourite categories, purchase history (keyset
paging, returns marked), recommendations with the API's filters on the one serving path
(:func:`recsys.serving.recommend`, exactly as ``GET /v1/members/{id}/recommendations``),
where a given title would rank for the member, and what the latest campaign planned for them
with their value then (the stored contact ``GET /v1/members/{id}`` reads too).

With ``HX-Request`` (an htmx swap) the page answers only the part named by ``HX-Target``
(``recs``, ``history``, ``results``); without it, or on a history restore, the whole page.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy import Connection

from catalog.paths import edition_path
from console.candidates import candidate
from console.charts import bar_chart
from console.models_view import registry_of, versions
from console.pages.home import current_quarter
from console.web import ConsoleRoute, NotFound, get_connection, is_fragment, page, require, settings_of
from recsys import serving
from recsys.errors import UnknownCategoryError, UnknownMemberError
from recsys.serving import MemberRecommendations, RecommendationQuery
from recsys.storage import campaigns as campaigns_db
from recsys.storage import console_reads
from recsys.storage import contacts as contacts_db
from recsys.storage import members as members_db
from recsys.storage import purchases as purchases_db

router = APIRouter(route_class=ConsoleRoute)
Conn = Annotated[Connection, Depends(get_connection)]

RANK_DEPTH = 500  # "where would title X rank": searched this deep
HISTORY_PAGE = 20
CONTACT_CAMPAIGNS = 4  # contact history: the member's contacts in the newest campaigns


@router.get("/members", include_in_schema=False)
def search(
    request: Request,
    connection: Conn,
    q: Annotated[str, Query(max_length=64)] = "",
    after: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    session = require(request, connection)
    found = members_db.search_members(connection, q, after=after, limit=25) if q or after else []
    more = found[-1].member_id if len(found) == 25 else None
    template = "members_results.html" if is_fragment(request) else "members.html"
    return page(request, template, session, q=q, found=found, more=more)


def _before(value: str | None) -> tuple[dt.datetime, int] | None:
    if not value or "~" not in value:
        return None
    at, _sep, line = value.rpartition("~")
    try:
        return dt.datetime.fromisoformat(at), int(line)
    except ValueError:
        return None


@dataclass(frozen=True)
class RecsView:
    result: MemberRecommendations | None
    model_version: str | None
    error: str | None


def served_model(request: Request) -> tuple[Any, Any]:
    """(model, shelf) the way the API's route takes them: one read of the holder."""
    holder = request.app.state.holder
    model, prepared = holder.serving()
    current = getattr(prepared, "current", None)
    return model, current() if current is not None else None


def recommendations(
    request: Request, connection: Connection, member_id: str, query: RecommendationQuery
) -> RecsView:
    try:
        model, shelf = served_model(request)
    except Exception as exc:  # no model loaded: say so on the page
        return RecsView(None, None, str(exc))
    try:
        result = serving.recommend(connection, model, member_id, query, shelf=shelf)
    except UnknownCategoryError as exc:
        return RecsView(None, model.version, str(exc))
    return RecsView(result, model.version, None)


def _rank(
    request: Request, connection: Connection, member_id: str, title_id: str, query: RecommendationQuery
) -> dict[str, Any]:
    deep = RecommendationQuery(
        limit=RANK_DEPTH, category=query.category, include_purchased=query.include_purchased,
        in_stock_only=query.in_stock_only,
    )
    view = recommendations(request, connection, member_id, deep)
    out: dict[str, Any] = {
        "title_id": title_id, "rank": None, "reason": None, "reason_zh": None, "depth": RANK_DEPTH, "error": None,
    }
    if view.result is None:
        out["error"] = view.error
        return out
    for i, (rec, record) in enumerate(view.result.items, start=1):
        if rec.title_id == title_id:
            out.update(rank=i, reason=rec.reason, reason_zh=rec.reason_zh, title=record.title, score=rec.score)
            break
    return out


@router.get("/members/{member_id}", include_in_schema=False)
def member_page(
    request: Request,
    connection: Conn,
    member_id: str,
    category: Annotated[str | None, Query(max_length=64)] = None,
    include_purchased: bool = False,
    in_stock_only: Annotated[bool | None, Query()] = None,
    f: int = 0,  # 1: the filter form was sent (an unticked box is then False)
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
    rank: Annotated[str | None, Query(max_length=64)] = None,
    before: Annotated[str | None, Query(max_length=64)] = None,
    candidate: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    session = require(request, connection)
    stock_only = bool(in_stock_only) if f else (True if in_stock_only is None else in_stock_only)
    query = RecommendationQuery(
        limit=limit, category=category or None, include_purchased=include_purchased, in_stock_only=stock_only
    )
    filters = {"category": category or "", "include_purchased": include_purchased, "in_stock_only": stock_only, "limit": limit}
    target = request.headers.get("HX-Target") if is_fragment(request) else None
    member = members_db.find_member(connection, member_id)
    if member is None:
        raise UnknownMemberError(member_id)
    if target == "recs":
        recs = recommendations(request, connection, member_id, query)
        return page(request, "member_recs.html", session, member=member, recs=recs, filters=filters)
    lines = purchases_db.member_lines_page(connection, member.key, before=_before(before), limit=HISTORY_PAGE)
    more = f"{lines[-1].purchased_at.isoformat()}~{lines[-1].id}" if len(lines) == HISTORY_PAGE else None
    if target == "history":
        return page(request, "member_history.html", session, member=member, lines=lines, more=more)
    history = console_reads.member_segment_history(connection, member.key)
    summary = purchases_db.purchase_summary(connection, member.key)
    top = purchases_db.top_categories(connection, member.key, 8)
    declared = members_db.declared_categories(connection, [member.member_id]).get(member.member_id, [])
    recs = recommendations(request, connection, member_id, query)
    ranked = _rank(request, connection, member_id, rank.strip(), query) if rank and rank.strip() else None
    side = _side_by_side(request, connection, member_id, query, candidate) if session.is_admin else None
    contacts = [
        (campaign, contact)
        for campaign in campaigns_db.campaigns(connection)[:CONTACT_CAMPAIGNS]  # newest first
        for contact in contacts_db.member_contacts(connection, campaign.id, [member_id]).get(member_id, [])
    ]
    # what the latest campaign planned for the member and their value then: the stored contact the
    # API's GET /v1/members/{id} reads too (api.profile.member_mailing), never recomputed
    plan = contacts_db.member_plan(connection, member.key)
    quarter = current_quarter()
    edition = edition_path(settings_of(request), quarter, member_id)
    series = [(f"{c.code} {c.name}", float(c.units)) for c in top]
    return page(
        request, "member.html", session, member=member, history=history, summary=summary, top=top,
        declared=declared, recs=recs, filters=filters, lines=lines, more=more, ranked=ranked, rank=rank or "",
        chart=bar_chart(series, title="categories"), series=series, quarter=quarter,
        edition=edition.exists(), side=side, contacts=contacts, plan=plan,
        horizon_days=settings_of(request).mailing.value_horizon_days,
        versions=[v for v in versions(registry_of(request)) if v.version != (recs.model_version or "")]
        if session.is_admin else [],
    )


def _side_by_side(
    request: Request, connection: Connection, member_id: str, query: RecommendationQuery, version: str | None
) -> dict[str, Any] | None:
    """The candidate ``version``'s titles for the member beside the active model's (same query)."""
    if not version:
        return None
    model, shelf = candidate(request, connection, version)
    result = serving.recommend(connection, model, member_id, query, shelf=shelf)
    active = recommendations(request, connection, member_id, query)
    active_ids = [rec.title_id for rec, _record in active.result.items] if active.result else []
    candidate_ids = [rec.title_id for rec, _record in result.items]
    return {
        "version": model.version, "items": result.items, "active_ids": set(active_ids),
        "overlap": len(set(active_ids) & set(candidate_ids)), "n": len(candidate_ids),
    }


def require_member(connection: Connection, member_id: str) -> None:
    if members_db.find_member(connection, member_id) is None:
        raise NotFound()
