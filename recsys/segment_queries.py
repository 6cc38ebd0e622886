"""The SQL behind segmentation and catalogs: the only place it lives.

RFM aggregates per member, the quarter's titles, members for editions, and
storing / reading ``member_segments``, ``segments`` and ``catalog_plans``.
Functions take a ``Connection``; the caller owns the transaction.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection, Float, and_, case, cast, delete, func, insert, or_, select, update

from recsys.bulk import bulk_insert
from recsys.schema import (
    CatalogPlanRecord,
    Member,
    MemberCategory,
    MemberSegment,
    Purchase,
    Segment,
    Title,
    TitleCategory,
)


@dataclass(frozen=True)
class RfmAggregates:
    """Per member (rows in ``member_ids`` order): days since the last purchase (-1 = never),
    orders and net spend in the window."""

    member_ids: list[str]
    recency_days: npt.NDArray[np.int64]
    frequency: npt.NDArray[np.int64]
    monetary: npt.NDArray[np.float64]


def rfm_aggregates(connection: Connection, as_of: dt.datetime, since: dt.datetime) -> RfmAggregates:
    """RFM inputs for every member not closed, from purchases before ``as_of``.

    Recency looks at all history; frequency (distinct orders with a positive line)
    and monetary value (quantity × price, returns subtracted) at ``[since, as_of)``.
    """
    in_window = Purchase.purchased_at >= since
    order_key = func.coalesce(Purchase.order_id, Purchase.line_id)
    stmt = (
        select(
            Member.member_id,
            func.max(Purchase.purchased_at),
            func.count(func.distinct(case((and_(in_window, Purchase.quantity > 0), order_key)))),
            func.coalesce(
                func.sum(
                    case(
                        (in_window, cast(Purchase.quantity * Purchase.unit_price, Float)),
                        else_=0.0,
                    )
                ),
                0.0,
            ),
        )
        .select_from(Member)
        .outerjoin(
            Purchase, and_(Purchase.member_key == Member.id, Purchase.purchased_at < as_of)
        )
        .where(Member.status != "closed")
        .group_by(Member.id, Member.member_id)
        .order_by(Member.member_id)
    )
    member_ids: list[str] = []
    recency: list[int] = []
    frequency: list[int] = []
    monetary: list[float] = []
    for member_id, last, orders, spend in connection.execute(stmt):
        member_ids.append(member_id)
        if isinstance(last, str):  # SQLite returns MAX() of a DateTime as text
            last = dt.datetime.fromisoformat(last)
        recency.append(-1 if last is None else max(0, (as_of - last).days))
        frequency.append(int(orders or 0))
        monetary.append(float(spend or 0.0))
    return RfmAggregates(
        member_ids,
        np.asarray(recency, dtype=np.int64),
        np.asarray(frequency, dtype=np.int64),
        np.asarray(monetary, dtype=np.float64),
    )


def declared_categories(
    connection: Connection, member_ids: Sequence[str] | None = None
) -> dict[str, list[str]]:
    """member_id → the category codes the member declared as favourites (all members, or some)."""
    stmt = select(Member.member_id, MemberCategory.category_code).join(
        MemberCategory, MemberCategory.member_key == Member.id
    )
    out: dict[str, list[str]] = defaultdict(list)
    chunks = [None] if member_ids is None else [
        list(member_ids[i : i + 900]) for i in range(0, len(member_ids), 900)
    ]
    for chunk in chunks:
        query = stmt if chunk is None else stmt.where(Member.member_id.in_(chunk))
        for member_id, code in connection.execute(query):
            out[member_id].append(code)
    return dict(out)


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


def store_segmentation(
    connection: Connection,
    quarter: str,
    rows: Sequence[MemberSegmentRow],
    segments: Sequence[tuple[int, str, int, str, str | None]],
) -> None:
    """Replace ``quarter``'s member_segments and segments.

    ``segments`` rows are (segment, name, size, profile_json, model_version).
    """
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
    bulk_insert(
        connection,
        Segment.__tablename__,
        ("quarter", "segment", "name", "size", "profile_json", "model_version"),
        ((quarter, *row) for row in segments),
    )


def update_segment_profile(
    connection: Connection, quarter: str, segment: int, profile_json: str
) -> None:
    connection.execute(
        update(Segment)
        .where(and_(Segment.quarter == quarter, Segment.segment == segment))
        .values(profile_json=profile_json)
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


def members_of_segment(connection: Connection, quarter: str, segment: int) -> list[str]:
    stmt = (
        select(Member.member_id)
        .join(MemberSegment, MemberSegment.member_key == Member.id)
        .where(MemberSegment.quarter == quarter, MemberSegment.segment == segment)
        .order_by(Member.member_id)
    )
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


@dataclass(frozen=True)
class TitleRow:
    title_id: str
    title: str
    author: str | None
    publisher: str | None
    language: str | None
    price: float | None
    published_on: dt.date | None
    in_stock: bool
    blurb: str | None
    cover: str | None
    primary_category: str | None
    categories: tuple[str, ...]


def titles_for_quarter(connection: Connection, until: dt.date) -> list[TitleRow]:
    """Every title published before ``until`` (or undated), with its category codes."""
    cats: dict[int, list[tuple[str, bool]]] = defaultdict(list)
    for key, code, primary in connection.execute(
        select(TitleCategory.title_key, TitleCategory.category_code, TitleCategory.is_primary)
    ):
        cats[key].append((code, bool(primary)))
    stmt = (
        select(
            Title.id, Title.title_id, Title.title, Title.author, Title.publisher, Title.language,
            Title.price, Title.published_on, Title.in_stock, Title.blurb, Title.cover,
        )
        .where(or_(Title.published_on.is_(None), Title.published_on < until))
        .order_by(Title.title_id)
    )
    rows: list[TitleRow] = []
    for key, tid, title, author, publisher, language, price, published, stock, blurb, cover in (
        connection.execute(stmt)
    ):
        codes = sorted(cats.get(key, []), key=lambda c: (not c[1], c[0]))
        rows.append(
            TitleRow(
                tid, title, author, publisher, language,
                None if price is None else float(price), published, bool(stock), blurb, cover,
                codes[0][0] if codes else None, tuple(c for c, _ in codes),
            )
        )
    return rows


@dataclass(frozen=True)
class MemberRow:
    member_id: str
    name: str
    address: str | None
    postcode: str | None
    city: str | None
    joined_on: dt.date | None


def members_by_id(connection: Connection, member_ids: Sequence[str]) -> dict[str, MemberRow]:
    out: dict[str, MemberRow] = {}
    for start in range(0, len(member_ids), 900):
        chunk = list(member_ids[start : start + 900])
        stmt = select(
            Member.member_id, Member.name, Member.address, Member.postcode, Member.city,
            Member.joined_on,
        ).where(Member.member_id.in_(chunk))
        for row in connection.execute(stmt):
            out[row[0]] = MemberRow(*row)
    return out


def bought_titles(connection: Connection, member_ids: Sequence[str]) -> dict[str, set[str]]:
    """member_id → title_ids bought (net of returns)."""
    out: dict[str, set[str]] = defaultdict(set)
    for start in range(0, len(member_ids), 900):
        chunk = list(member_ids[start : start + 900])
        stmt = (
            select(Member.member_id, Title.title_id)
            .select_from(Purchase)
            .join(Member, Member.id == Purchase.member_key)
            .join(Title, Title.id == Purchase.title_key)
            .where(Member.member_id.in_(chunk))
            .group_by(Member.member_id, Title.title_id)
            .having(func.sum(Purchase.quantity) > 0)
        )
        for member_id, title_id in connection.execute(stmt):
            out[member_id].add(title_id)
    return dict(out)


def store_plan(
    connection: Connection,
    quarter: str,
    segment: int,
    model_version: str,
    settings_hash: str,
    plan_json: str,
) -> None:
    connection.execute(
        delete(CatalogPlanRecord).where(
            CatalogPlanRecord.quarter == quarter, CatalogPlanRecord.segment == segment
        )
    )
    connection.execute(
        insert(CatalogPlanRecord).values(
            quarter=quarter, segment=segment, model_version=model_version,
            settings_hash=settings_hash, plan_json=plan_json,
            created_at=dt.datetime.now(dt.UTC).replace(tzinfo=None),
        )
    )


def plans_of_quarter(connection: Connection, quarter: str) -> list[dict[str, Any]]:
    """Stored plans: segment, model_version, settings_hash, plan_json, created_at."""
    stmt = (
        select(
            CatalogPlanRecord.segment, CatalogPlanRecord.model_version,
            CatalogPlanRecord.settings_hash, CatalogPlanRecord.plan_json,
            CatalogPlanRecord.created_at,
        )
        .where(CatalogPlanRecord.quarter == quarter)
        .order_by(CatalogPlanRecord.segment)
    )
    return [dict(row._mapping) for row in connection.execute(stmt)]
