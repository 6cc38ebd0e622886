"""Reads only the staff console asks for, across table families: the overview's counters and
data alerts, title search, a title's monthly sales, segment transitions, a segment's members and
mailing list, import runs. Every list is keyset-paged; the counters are aggregates the console
computes once and shows with their time (``console.cache``), never per page view.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, exists, func, or_, select

from recsys.storage.bulk import in_chunks
from recsys.storage.schema import (
    CategoryMapping,
    ImportRun,
    Member,
    MemberSegment,
    Purchase,
    Segment,
    Title,
    TitleCategory,
)


def _as_datetime(value: Any) -> dt.datetime | None:
    if isinstance(value, str):  # SQLite returns aggregates of a DateTime as text
        return dt.datetime.fromisoformat(value)
    return value  # type: ignore[no-any-return]


@dataclass(frozen=True)
class ClubCounters:
    members_active_12m: int  # distinct members with an order line in the last 365 days
    titles_in_stock: int
    new_titles_quarter: int  # published since the quarter began
    lines_7d: int
    lines_30d: int
    newest_purchase: dt.datetime | None


def club_counters(connection: Connection, now: dt.datetime, quarter_start: dt.date) -> ClubCounters:
    """The overview's counters (computed off the request path, ``console.cache``): ranges of the
    indexes on purchased_at and published_on, and an index probe per member."""
    year_ago = now - dt.timedelta(days=365)
    # one probe of the (member_key, purchased_at) index per member: 26x faster than a
    # COUNT(DISTINCT member_key) over a year of lines on a 100k club (0.15 s against 4 s)
    active = connection.scalar(
        select(func.count(Member.id)).where(
            exists().where(Purchase.member_key == Member.id, Purchase.purchased_at >= year_ago)
        )
    )
    in_stock = connection.scalar(select(func.count(Title.id)).where(Title.in_stock.is_(True)))
    new = connection.scalar(select(func.count(Title.id)).where(Title.published_on >= quarter_start))
    lines_7 = connection.scalar(
        select(func.count(Purchase.id)).where(Purchase.purchased_at >= now - dt.timedelta(days=7))
    )
    lines_30 = connection.scalar(
        select(func.count(Purchase.id)).where(Purchase.purchased_at >= now - dt.timedelta(days=30))
    )
    newest = _as_datetime(connection.scalar(select(func.max(Purchase.purchased_at))))
    return ClubCounters(
        int(active or 0), int(in_stock or 0), int(new or 0), int(lines_7 or 0), int(lines_30 or 0), newest
    )


@dataclass(frozen=True)
class DataAlerts:
    titles_without_category: int
    titles_never_sold: int
    members_without_purchases: int
    imports_with_rejects: int
    lines_after_model: int | None  # order lines newer than the active model's trained_until


def data_alerts(connection: Connection, trained_until: dt.datetime | None) -> DataAlerts:
    """Counts behind the overview's data alerts (anti-joins on indexed keys)."""
    no_category = connection.scalar(
        select(func.count(Title.id)).where(~exists().where(TitleCategory.title_key == Title.id))
    )
    never_sold = connection.scalar(
        select(func.count(Title.id)).where(~exists().where(Purchase.title_key == Title.id))
    )
    no_purchase = connection.scalar(
        select(func.count(Member.id)).where(~exists().where(Purchase.member_key == Member.id))
    )
    rejects = connection.scalar(select(func.count(ImportRun.id)).where(ImportRun.rejected > 0))
    after = None
    if trained_until is not None:
        after = int(
            connection.scalar(select(func.count(Purchase.id)).where(Purchase.purchased_at > trained_until)) or 0
        )
    return DataAlerts(int(no_category or 0), int(never_sold or 0), int(no_purchase or 0), int(rejects or 0), after)


@dataclass(frozen=True)
class TitleRow:
    title_id: str
    title: str
    author: str | None
    price: float | None
    in_stock: bool
    published_on: dt.date | None


def search_titles(
    connection: Connection, text: str, *, after: str | None = None, limit: int = 25
) -> list[TitleRow]:
    """Titles whose id, title or author starts with ``text``, by title id, keyset-paged."""
    pattern = text.strip()
    stmt = (
        select(Title.title_id, Title.title, Title.author, Title.price, Title.in_stock, Title.published_on)
        .order_by(Title.title_id)
        .limit(limit)
    )
    if pattern:
        stmt = stmt.where(
            or_(
                Title.title_id.startswith(pattern, autoescape=True),
                Title.title.startswith(pattern, autoescape=True),
                Title.author.startswith(pattern, autoescape=True),
            )
        )
    if after is not None:
        stmt = stmt.where(Title.title_id > after)
    return [
        TitleRow(t, name, author, None if price is None else float(price), bool(stock), published)
        for t, name, author, price, stock, published in connection.execute(stmt)
    ]


def monthly_units(connection: Connection, title_id: str, since: dt.datetime) -> dict[str, int]:
    """'YYYY-MM' → net units of ``title_id`` sold since ``since`` (index on purchases.title_key)."""
    out: dict[str, int] = {}
    stmt = (
        select(Purchase.purchased_at, Purchase.quantity)
        .join(Title, Title.id == Purchase.title_key)
        .where(Title.title_id == title_id, Purchase.purchased_at >= since)
    )
    for at, quantity in connection.execute(stmt):
        month = _as_datetime(at)
        assert month is not None
        key = f"{month.year:04d}-{month.month:02d}"
        out[key] = out.get(key, 0) + int(quantity)
    return out


def segment_transitions(connection: Connection, before: str, after: str) -> dict[tuple[int, int], int]:
    """(segment in ``before``, segment in ``after``) → members, for members segmented in both."""
    a, b = MemberSegment.__table__.alias("a"), MemberSegment.__table__.alias("b")
    stmt = (
        select(a.c.segment, b.c.segment, func.count())
        .select_from(a)
        .join(b, and_(b.c.member_key == a.c.member_key, b.c.quarter == after))
        .where(a.c.quarter == before)
        .group_by(a.c.segment, b.c.segment)
    )
    return {(int(x), int(y)): int(n) for x, y, n in connection.execute(stmt)}


@dataclass(frozen=True)
class SegmentMemberRow:
    member_id: str
    tier: str
    recency_days: int | None
    frequency: int
    monetary: float


def segment_members_page(
    connection: Connection, quarter: str, segment: int, *, after: str | None = None, limit: int = 50
) -> list[SegmentMemberRow]:
    """A segment's members by member id, keyset-paged."""
    stmt = (
        select(
            Member.member_id, MemberSegment.tier, MemberSegment.recency_days,
            MemberSegment.frequency, MemberSegment.monetary,
        )
        .join(Member, Member.id == MemberSegment.member_key)
        .where(MemberSegment.quarter == quarter, MemberSegment.segment == segment)
        .order_by(Member.member_id)
        .limit(limit)
    )
    if after is not None:
        stmt = stmt.where(Member.member_id > after)
    return [SegmentMemberRow(m, t, r, int(f), float(v)) for m, t, r, f, v in connection.execute(stmt)]


@dataclass(frozen=True)
class MailingRow:
    member_id: str
    name: str
    address: str | None
    postcode: str | None
    city: str | None
    tier: str

    @property
    def complete(self) -> bool:
        return all((v or "").strip() for v in (self.name, self.address, self.postcode, self.city))


def mailing_rows(
    connection: Connection, quarter: str, segment: int, batch: int = 5000
) -> Iterator[MailingRow]:
    """A segment's members with their addresses, by member id, read in keyset batches of
    ``batch`` (an export of a million rows never holds them all)."""
    after: str | None = None
    while True:
        stmt = (
            select(Member.member_id, Member.name, Member.address, Member.postcode, Member.city, MemberSegment.tier)
            .join(Member, Member.id == MemberSegment.member_key)
            .where(MemberSegment.quarter == quarter, MemberSegment.segment == segment, Member.status != "closed")
            .order_by(Member.member_id)
            .limit(batch)
        )
        if after is not None:
            stmt = stmt.where(Member.member_id > after)
        rows = [MailingRow(*row) for row in connection.execute(stmt)]
        yield from rows
        if len(rows) < batch:
            return
        after = rows[-1].member_id


@dataclass(frozen=True)
class ImportRunRow:
    id: int
    kind: str
    source: str
    started_at: dt.datetime
    read: int
    inserted: int
    already_present: int
    rejected: int
    skipped: int


def import_runs_page(connection: Connection, *, before_id: int | None = None, limit: int = 50) -> list[ImportRunRow]:
    """Import runs, newest first, keyset-paged on id."""
    stmt = select(
        ImportRun.id, ImportRun.kind, ImportRun.source, ImportRun.started_at, ImportRun.read,
        ImportRun.inserted, ImportRun.already_present, ImportRun.rejected, ImportRun.skipped,
    ).order_by(ImportRun.id.desc()).limit(limit)
    if before_id is not None:
        stmt = stmt.where(ImportRun.id < before_id)
    return [ImportRunRow(*row) for row in connection.execute(stmt)]


@dataclass(frozen=True)
class MemberQuarter:
    quarter: str
    tier: str
    segment: int
    segment_name: str | None
    recency_days: int | None
    frequency: int
    monetary: float


def member_segment_history(connection: Connection, key: int, quarters: int = 8) -> list[MemberQuarter]:
    """The member's tier, segment and R/F/M in the last ``quarters`` quarters segmented, newest first."""
    stmt = (
        select(
            MemberSegment.quarter, MemberSegment.tier, MemberSegment.segment, Segment.name,
            MemberSegment.recency_days, MemberSegment.frequency, MemberSegment.monetary,
        )
        .outerjoin(Segment, and_(Segment.quarter == MemberSegment.quarter, Segment.segment == MemberSegment.segment))
        .where(MemberSegment.member_key == key)
        .order_by(MemberSegment.quarter.desc())
        .limit(quarters)
    )
    return [
        MemberQuarter(q, t, int(s), n, r, int(f), float(m)) for q, t, s, n, r, f, m in connection.execute(stmt)
    ]


def quarter_members(connection: Connection, quarter: str) -> list[tuple[str, int, str]]:
    """(member_id, segment, tier) of every member segmented in ``quarter`` and not closed — what a
    seeded sample per segment and tier is drawn from (off the request path)."""
    stmt = (
        select(Member.member_id, MemberSegment.segment, MemberSegment.tier)
        .join(Member, Member.id == MemberSegment.member_key)
        .where(MemberSegment.quarter == quarter, Member.status != "closed")
    )
    return [(m, int(s), str(t)) for m, s, t in connection.execute(stmt)]


def open_member_ids(connection: Connection) -> list[str]:
    """Every member id not closed (a sample is drawn from them, off the request path)."""
    return list(connection.scalars(select(Member.member_id).where(Member.status != "closed")))


def mapped_labels(connection: Connection, pairs: Collection[tuple[str, str]]) -> set[tuple[str, str]]:
    """The (scheme, label) pairs of ``pairs`` that category_mappings maps onto a category."""
    wanted = set(pairs)
    found: set[tuple[str, str]] = set()
    for chunk in in_chunks(sorted({label for _scheme, label in wanted})):
        stmt = select(CategoryMapping.scheme, CategoryMapping.label).where(CategoryMapping.label.in_(chunk))
        found.update((s, lb) for s, lb in connection.execute(stmt) if (s, lb) in wanted)
    return found
