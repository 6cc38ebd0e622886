"""Member segments and segment profiles per quarter."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Connection,
    and_,
    delete,
    func,
    select,
)

from recsys.storage.bulk import bulk_insert
from recsys.storage.schema import (
    Member,
    MemberSegment,
    Purchase,
    Segment,
    Title,
)


@dataclass(frozen=True)
class SegmentRecord:
    quarter: str
    tier: str
    segment: int
    segment_name: str | None


def latest_segment(connection: Connection, key: int) -> SegmentRecord | None:
    """The member's tier and segment in the latest quarter segmented, if the member is in it."""
    latest = select(func.max(MemberSegment.quarter)).scalar_subquery()
    row = connection.execute(
        select(MemberSegment.quarter, MemberSegment.tier, MemberSegment.segment, Segment.name)
        .outerjoin(
            Segment,
            and_(Segment.quarter == MemberSegment.quarter, Segment.segment == MemberSegment.segment),
        )
        .where(MemberSegment.member_key == key, MemberSegment.quarter == latest)
    ).one_or_none()
    return None if row is None else SegmentRecord(*row)


def best_members(connection: Connection, quarter: str, per_segment: int) -> list[tuple[str, int]]:
    """(member_id, segment): each segment's ``per_segment`` biggest spenders not lapsed."""
    stmt = (
        select(Member.member_id, MemberSegment.segment, MemberSegment.monetary)
        .join(Member, Member.id == MemberSegment.member_key)
        .where(MemberSegment.quarter == quarter, MemberSegment.tier != "lapsed")
        .order_by(MemberSegment.segment, MemberSegment.monetary.desc(), Member.member_id)
    )
    taken: dict[int, int] = defaultdict(int)
    out: list[tuple[str, int]] = []
    for member_id, segment, _money in connection.execute(stmt):
        if taken[int(segment)] < per_segment:
            taken[int(segment)] += 1
            out.append((member_id, int(segment)))
    return out


def member_segment_labels(connection: Connection, quarter: str) -> dict[str, int]:
    """member_id → segment stored for ``quarter`` (empty when none)."""
    stmt = (
        select(Member.member_id, MemberSegment.segment)
        .join(Member, Member.id == MemberSegment.member_key)
        .where(MemberSegment.quarter == quarter)
    )
    return {member_id: int(segment) for member_id, segment in connection.execute(stmt)}


@dataclass(frozen=True)
class MemberSegmentRow:
    member_id: str
    tier: str
    segment: int
    recency_days: int | None
    frequency: int
    monetary: float


def store_member_segments(connection: Connection, quarter: str, rows: Sequence[MemberSegmentRow]) -> None:
    """Replace ``quarter``'s member_segments (and its segment profiles, written next by
    :func:`store_segment_profiles`)."""
    connection.execute(delete(MemberSegment).where(MemberSegment.quarter == quarter))
    connection.execute(delete(Segment).where(Segment.quarter == quarter))
    keys = {m: k for m, k in connection.execute(select(Member.member_id, Member.id))}
    bulk_insert(
        connection,
        MemberSegment.__tablename__,
        ("quarter", "member_key", "tier", "segment", "recency_days", "frequency", "monetary"),
        (
            (quarter, keys[r.member_id], r.tier, r.segment, r.recency_days, r.frequency, r.monetary)
            for r in rows
        ),
    )


def store_segment_profiles(
    connection: Connection, quarter: str, segments: Sequence[tuple[int, str, int, str, str | None]]
) -> None:
    """Write ``quarter``'s segment profiles: rows of (segment, name, size, profile_json, model_version)."""
    connection.execute(delete(Segment).where(Segment.quarter == quarter))
    bulk_insert(
        connection,
        Segment.__tablename__,
        ("quarter", "segment", "name", "size", "profile_json", "model_version"),
        ((quarter, *row) for row in segments),
    )


def typical_titles(
    connection: Connection, quarter: str, since: dt.datetime, until: dt.datetime, limit: int
) -> dict[int, list[tuple[str, str, int]]]:
    """segment → its members' most bought titles in ``[since, until)``: (title_id, title, copies)."""
    copies = func.sum(Purchase.quantity).label("copies")
    stmt = (
        select(MemberSegment.segment, Title.title_id, Title.title, copies)
        .select_from(Purchase)
        .join(
            MemberSegment,
            and_(MemberSegment.member_key == Purchase.member_key, MemberSegment.quarter == quarter),
        )
        .join(Title, Title.id == Purchase.title_key)
        .where(Purchase.purchased_at >= since, Purchase.purchased_at < until)
        .group_by(MemberSegment.segment, Title.title_id, Title.title)
        .having(func.sum(Purchase.quantity) > 0)
    )
    ranked: dict[int, list[tuple[str, str, int]]] = defaultdict(list)
    for segment, title_id, title, total in connection.execute(stmt):
        ranked[int(segment)].append((title_id, title, int(total)))
    return {s: sorted(v, key=lambda r: (-r[2], r[0]))[:limit] for s, v in ranked.items()}


def segments_of_quarter(connection: Connection, quarter: str) -> list[dict[str, Any]]:
    """Stored segments of ``quarter``: segment, name, size, profile_json, model_version."""
    stmt = (
        select(Segment.segment, Segment.name, Segment.size, Segment.profile_json, Segment.model_version)
        .where(Segment.quarter == quarter)
        .order_by(Segment.segment)
    )
    return [dict(row._mapping) for row in connection.execute(stmt)]


def quarters_with_segments(connection: Connection) -> list[str]:
    stmt = select(Segment.quarter).distinct().order_by(Segment.quarter)
    return [q for (q,) in connection.execute(stmt)]


def members_of_segment(connection: Connection, quarter: str, segment: int, limit: int | None = None) -> list[str]:
    """The segment's member ids in order (the first ``limit`` of them when given)."""
    stmt = (
        select(Member.member_id)
        .join(MemberSegment, MemberSegment.member_key == Member.id)
        .where(MemberSegment.quarter == quarter, MemberSegment.segment == segment)
        .order_by(Member.member_id)
    )
    if limit is not None:
        stmt = stmt.limit(limit)
    return [m for (m,) in connection.execute(stmt)]


def member_segment(connection: Connection, quarter: str, member_id: str) -> tuple[str, int] | None:
    """(tier, segment) of ``member_id`` in ``quarter``, or None."""
    stmt = (
        select(MemberSegment.tier, MemberSegment.segment)
        .join(Member, Member.id == MemberSegment.member_key)
        .where(MemberSegment.quarter == quarter, Member.member_id == member_id)
    )
    row = connection.execute(stmt).first()
    return None if row is None else (str(row[0]), int(row[1]))
