"""Titles: search; a title's record, monthly sales, similar titles (the model the API serves)
and the sections of this quarter's catalogs it appears in."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy import Connection

from campaign.effects import wilson_interval
from catalog.plan import CatalogPlan
from console.cache import aggregates_of
from console.charts import line_chart
from console.pages.catalogs import section_label
from console.pages.home import current_quarter
from console.pages.members import served_model
from console.web import ConsoleRoute, get_connection, is_fragment, page, require, settings_of
from recsys.errors import UnknownTitleError
from recsys.storage import console_reads
from recsys.storage import plans as plans_db
from recsys.storage import titles as titles_db
from training.compare import Reach, simple_sample, top_k_reach

router = APIRouter(route_class=ConsoleRoute)
Conn = Annotated[Connection, Depends(get_connection)]


@router.get("/titles", include_in_schema=False)
def search(
    request: Request,
    connection: Conn,
    q: Annotated[str, Query(max_length=64)] = "",
    after: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    session = require(request, connection)
    found = console_reads.search_titles(connection, q, after=after, limit=25)
    more = found[-1].title_id if len(found) == 25 else None
    template = "titles_results.html" if is_fragment(request) else "titles.html"
    return page(request, template, session, q=q, found=found, more=more)


def _months(now: dt.datetime, n: int = 12) -> list[str]:
    year, month = now.year, now.month
    out = []
    for _ in range(n):
        out.append(f"{year:04d}-{month:02d}")
        month -= 1
        if month == 0:
            year, month = year - 1, 12
    return list(reversed(out))


@router.get("/titles/{title_id}", include_in_schema=False)
def title_page(request: Request, connection: Conn, title_id: str) -> Response:
    session = require(request, connection)
    record = titles_db.title_details(connection, [title_id]).get(title_id)
    if record is None:
        raise UnknownTitleError(title_id)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    months = _months(now)
    start = dt.datetime.fromisoformat(months[0] + "-01")
    sold = console_reads.monthly_units(connection, title_id, start)
    series = [(m, float(sold.get(m, 0))) for m in months]
    similar: list[tuple[Any, float]] = []
    holder = getattr(request.app.state, "holder", None)
    if holder is not None and holder.model is not None:
        scored = holder.model.similar_titles(title_id, limit=10)
        details = titles_db.title_details(connection, [t for t, _ in scored])
        similar = [(details[t], s) for t, s in scored if t in details]
    quarter = current_quarter()
    placements = []
    for row in plans_db.plans_of_quarter(connection, quarter):
        plan = CatalogPlan.from_json(row["plan_json"])
        for section in plan.sections:
            if any(e.title_id == title_id for e in section.entries):
                placements.append((plan.segment, plan.segment_name, section_label(section.code, section.name)))
    return page(
        request, "title.html", session, record=record, series=series, chart=line_chart(series, title="units"),
        similar=similar, placements=placements, quarter=quarter, reach=_reach(request, title_id),
    )


def _reach(request: Request, title_id: str) -> dict[str, Any] | None:
    """In how many members' top k the title is: a seeded sample of the club's members answered by
    the model the API serves (computed once per model in the background, for every title),
    extrapolated to the members the sample was drawn from, with a 95 % Wilson interval."""
    try:
        model, shelf = served_model(request)
    except Exception:  # no model loaded: nothing to say
        return None
    settings = settings_of(request)
    size, seed, k = settings.console.reach_members, settings.console.sample_seed, settings.training.k

    def compute(connection: Connection) -> tuple[Reach, int]:
        ids = console_reads.open_member_ids(connection)
        return top_k_reach(connection, (model, shelf), simple_sample(ids, size, seed), k=k), len(ids)

    computed = aggregates_of(request).get(("reach", model.version, size, seed, k), compute)
    if computed is None:
        return {"pending": True, "k": k, "version": model.version}
    reach, population = computed.value
    hits = reach.counts.get(title_id, 0)
    whole = reach.members >= population  # every member answered: a count, not an estimate
    interval = wilson_interval(hits, reach.members) if reach.members and not whole else None
    return {
        "pending": False, "k": k, "version": model.version, "at": computed.at, "hits": hits, "sampled": reach.members,
        "population": population, "share": reach.share(title_id), "interval": interval,
        "estimate": round(reach.share(title_id) * population),
        "low": round(interval.low * population) if interval else hits,
        "high": round(interval.high * population) if interval else hits, "whole": whole,
    }
