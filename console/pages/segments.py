"""Segments: a quarter's profiles, movement between two quarters, a segment's members and its
mailing list (CSV; members with an incomplete address left out and counted)."""

from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import StreamingResponse
from sqlalchemy import Connection

from catalog.segments import SegmentProfile
from console.cache import aggregates_of
from console.charts import bar_chart
from console.web import (
    ConsoleRoute,
    CrossSite,
    NotFound,
    engine_of,
    get_connection,
    is_fragment,
    page,
    require,
)
from recsys.storage import audit as audit_db
from recsys.storage import console_reads
from recsys.storage import segments as segments_db

router = APIRouter(route_class=ConsoleRoute)
Conn = Annotated[Connection, Depends(get_connection)]
QuarterQ = Annotated[str | None, Query(pattern=r"^\d{4}Q[1-4]$")]

MAILING_COLUMNS = ("member_id", "name", "address", "postcode", "city", "tier")


def _profile(text: str) -> SegmentProfile | None:
    """The stored profile, or None when it is not one (written by an older version)."""
    try:
        return SegmentProfile.from_json(text)
    except (ValueError, KeyError, TypeError):
        return None


@router.get("/segments", include_in_schema=False)
def segments_page(request: Request, connection: Conn, quarter: QuarterQ = None, compare: QuarterQ = None) -> Response:
    session = require(request, connection)
    quarters = segments_db.quarters_with_segments(connection)
    if not quarters:
        return page(request, "segments.html", session, quarters=[], quarter=None, profiles=[], transitions=None)
    quarter = quarter if quarter in quarters else quarters[-1]
    rows = segments_db.segments_of_quarter(connection, quarter)
    profiles = [(row, _profile(row["profile_json"])) for row in rows]
    earlier = [q for q in quarters if q < quarter]
    compare = compare if compare in quarters and compare != quarter else (earlier[-1] if earlier else None)
    transitions = None
    if compare is not None:
        before, after = compare, quarter
        computed = aggregates_of(request).get(
            ("transitions", before, after), lambda c: console_reads.segment_transitions(c, before, after)
        )
        names_after = {r["segment"]: r["name"] for r in rows}
        names_before = {r["segment"]: r["name"] for r in segments_db.segments_of_quarter(connection, before)}
        transitions = {
            "from": before, "to": after, "at": computed.at if computed else None,
            "cells": computed.value if computed else None,
            "rows": sorted(names_before.items()), "cols": sorted(names_after.items()),
        }
    series = [(f"{row['segment']} {row['name']}", float(row["size"])) for row in rows]
    return page(
        request, "segments.html", session, quarters=quarters, quarter=quarter, profiles=profiles,
        transitions=transitions, compare=compare, series=series, chart=bar_chart(series, title="size"),
    )


@router.get("/segments/{quarter}/{segment}", include_in_schema=False)
def segment_members(
    request: Request,
    connection: Conn,
    quarter: str,
    segment: int,
    after: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    session = require(request, connection)
    row = next((r for r in segments_db.segments_of_quarter(connection, quarter) if r["segment"] == segment), None)
    if row is None:
        raise NotFound()
    found = console_reads.segment_members_page(connection, quarter, segment, after=after, limit=50)
    more = found[-1].member_id if len(found) == 50 else None
    exports = audit_db.actions_on(connection, "segment.mailing_export", f"{quarter}/{segment}", limit=1)
    template = "segment_members_rows.html" if is_fragment(request) else "segment_members.html"
    return page(
        request, template, session, quarter=quarter, segment=segment, name=row["name"], size=row["size"],
        found=found, more=more, last_export=exports[0] if exports else None,
    )


@router.get("/segments/{quarter}/{segment}/mailing.csv", include_in_schema=False)
def mailing_list(request: Request, connection: Conn, quarter: str, segment: int) -> Response:
    """The CSV is spooled (memory, then disk past 8 MiB) so the count of members left out can go
    in the ``X-Left-Out`` header; members are read in keyset batches."""
    session = require(request, connection, "editions")  # names and addresses
    if request.headers.get("Sec-Fetch-Site") == "cross-site":  # an export is recorded: not from another site
        raise CrossSite()
    if not any(r["segment"] == segment for r in segments_db.segments_of_quarter(connection, quarter)):
        raise NotFound()
    spool = tempfile.SpooledTemporaryFile(max_size=8 << 20, mode="w+b")  # noqa: SIM115 - closed by the stream
    text = io.TextIOWrapper(spool, encoding="utf-8", newline="")
    writer = csv.writer(text)
    writer.writerow(MAILING_COLUMNS)
    written = left_out = 0
    for row in console_reads.mailing_rows(connection, quarter, segment):
        if not row.complete:
            left_out += 1
            continue
        writer.writerow((row.member_id, row.name, row.address, row.postcode, row.city, row.tier))
        written += 1
    text.flush()
    text.detach()
    spool.seek(0)
    with engine_of(request).begin() as writing:
        audit_db.record_action(
            writing, actor_prefix=session.prefix, actor_label=session.label, role=session.scope,
            action="segment.mailing_export", target=f"{quarter}/{segment}", reason="mailing list export",
            detail={"written": str(written), "left_out": str(left_out)},
        )

    def chunks() -> Iterator[bytes]:
        try:
            while block := spool.read(64 << 10):
                yield block
        finally:
            spool.close()

    filename = f"mailing-{quarter}-segment-{segment}.csv"
    return StreamingResponse(
        chunks(), media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "X-Written": str(written), "X-Left-Out": str(left_out),
        },
    )
