"""The SQL the API needs, and only here: members, their purchases, titles, categories.

Every function takes a SQLAlchemy ``Connection``; the caller owns the
transaction. Queries on one member go through ``ix_purchases_member_key_purchased_at``
so they stay cheap however many order lines the club holds.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Connection,
    DateTime,
    Integer,
    String,
    and_,
    bindparam,
    case,
    cast,
    func,
    null,
    select,
    union_all,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from recsys.schema import (
    Category,
    Member,
    MemberCategory,
    MemberSegment,
    Purchase,
    Segment,
    Title,
    TitleCategory,
)

_IN_CHUNK = 900  # below SQLite's bound-parameter limit
_INSERT_CHUNK = 100  # rows per multi-row INSERT (8 parameters each)


@dataclass(frozen=True)
class MemberRecord:
    key: int
    member_id: str
    name: str
    joined_on: dt.date | None
    channel: str | None
    address: str | None
    postcode: str | None
    city: str | None
    birth_year: int | None
    status: str


@dataclass(frozen=True)
class PurchasedLine:
    title_id: str
    quantity: int
    purchased_at: dt.datetime


@dataclass(frozen=True)
class TitleRecord:
    title_id: str
    title: str
    author: str | None
    price: Decimal | None
    in_stock: bool
    categories: tuple[str, ...]  # primary first


@dataclass(frozen=True)
class SegmentRecord:
    quarter: str
    tier: str
    segment: int
    segment_name: str | None


@dataclass(frozen=True)
class PurchaseSummary:
    lines: int
    orders: int
    units_bought: int
    units_returned: int
    spent: Decimal
    first_purchase_at: dt.datetime | None
    last_purchase_at: dt.datetime | None


@dataclass(frozen=True)
class CategoryCount:
    code: str
    name: str
    units: int


def _chunks(values: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(values), _IN_CHUNK):
        yield values[start : start + _IN_CHUNK]


def find_member(connection: Connection, member_id: str) -> MemberRecord | None:
    row = connection.execute(
        select(
            Member.id.label("key"),
            Member.member_id,
            Member.name,
            Member.joined_on,
            Member.channel,
            Member.address,
            Member.postcode,
            Member.city,
            Member.birth_year,
            Member.status,
        ).where(Member.member_id == member_id)
    ).one_or_none()
    return None if row is None else MemberRecord(**row._mapping)


def member_with_purchases(connection: Connection, member_id: str) -> tuple[int, list[PurchasedLine]] | None:
    """(member key, order lines oldest first) in one round trip; None for an unknown member."""
    rows = connection.execute(
        select(Member.id, Title.title_id, Purchase.quantity, Purchase.purchased_at)
        .select_from(Member)
        .outerjoin(Purchase, Purchase.member_key == Member.id)
        .outerjoin(Title, Title.id == Purchase.title_key)
        .where(Member.member_id == member_id)
        .order_by(Purchase.purchased_at)
    ).all()
    if not rows:
        return None
    lines = [PurchasedLine(t, q, at) for _k, t, q, at in rows if t is not None]
    return int(rows[0][0]), lines


@dataclass(frozen=True)
class SnapshotLine:
    title_id: str
    quantity: int
    recent: bool  # purchased after the ``since`` the snapshot was asked with


@dataclass(frozen=True)
class MemberSnapshot:
    """What a recommendation needs from the database about one member."""

    key: int
    lines: list[SnapshotLine]  # every order line, in no particular order
    declared: list[str]  # declared favourite categories, sorted


_MEMBER_ID = bindparam("member_id", type_=String)
_SINCE = bindparam("since", type_=DateTime)
# one statement, built once: the member's lines (index on purchases.member_key) and
# declared categories, as one UNION ALL so a request costs one round trip; "recent"
# is compared in SQL, so no timestamp is parsed in Python
_SNAPSHOT = union_all(
    select(
        Member.id.label("key"),
        Title.title_id,
        Purchase.quantity,
        case((Purchase.purchased_at > _SINCE, 1), else_=0).label("recent"),
        cast(null(), String).label("code"),
    )
    .select_from(Member)
    .outerjoin(Purchase, Purchase.member_key == Member.id)
    .outerjoin(Title, Title.id == Purchase.title_key)
    .where(Member.member_id == _MEMBER_ID),
    select(
        MemberCategory.member_key,
        cast(null(), String),
        cast(null(), Integer),
        cast(null(), Integer),
        MemberCategory.category_code,
    )
    .join(Member, Member.id == MemberCategory.member_key)
    .where(Member.member_id == _MEMBER_ID),
)


def member_snapshot(connection: Connection, member_id: str, since: dt.datetime) -> MemberSnapshot | None:
    """Key, order lines (recent: after ``since``) and declared categories of a member in one
    query; None if the member is unknown."""
    rows = connection.execute(_SNAPSHOT, {"member_id": member_id, "since": since}).all()
    if not rows:
        return None
    lines = [SnapshotLine(t, q, bool(r)) for _k, t, q, r, _code in rows if t is not None]
    declared = sorted(code for *_rest, code in rows if code is not None)
    return MemberSnapshot(int(rows[0][0]), lines, declared)


def declared_categories(connection: Connection, key: int) -> list[str]:
    return list(
        connection.scalars(
            select(MemberCategory.category_code)
            .where(MemberCategory.member_key == key)
            .order_by(MemberCategory.category_code)
        )
    )


def title_details(connection: Connection, title_ids: Collection[str]) -> dict[str, TitleRecord]:
    """Details of the titles among ``title_ids`` that exist (primary category first)."""
    wanted = list(dict.fromkeys(title_ids))
    found: dict[str, tuple[Any, ...]] = {}
    codes: dict[str, list[str]] = {}
    for chunk in _chunks(wanted):
        rows = connection.execute(
            select(
                Title.title_id,
                Title.title,
                Title.author,
                Title.price,
                Title.in_stock,
                TitleCategory.category_code,
            )
            .outerjoin(TitleCategory, TitleCategory.title_key == Title.id)
            .where(Title.title_id.in_(chunk))
            .order_by(TitleCategory.is_primary.desc(), TitleCategory.category_code)
        )
        for title_id, title, author, price, in_stock, code in rows:
            if title_id not in found:
                found[title_id] = (title, author, price, bool(in_stock))
                codes[title_id] = []
            if code is not None:
                codes[title_id].append(code)
    return {t: TitleRecord(t, row[0], row[1], row[2], row[3], tuple(codes[t])) for t, row in found.items()}


def all_title_details(connection: Connection) -> dict[str, TitleRecord]:
    """Every title's display record (primary category first): what a worker caches."""
    found: dict[str, tuple[Any, ...]] = {}
    codes: dict[str, list[str]] = {}
    rows = connection.execute(
        select(Title.title_id, Title.title, Title.author, Title.price, Title.in_stock)
    )
    for title_id, title, author, price, in_stock in rows:
        found[title_id] = (title, author, price, bool(in_stock))
        codes[title_id] = []
    for title_id, code in connection.execute(
        select(Title.title_id, TitleCategory.category_code)
        .join(TitleCategory, TitleCategory.title_key == Title.id)
        .order_by(Title.title_id, TitleCategory.is_primary.desc(), TitleCategory.category_code)
    ):
        if title_id in codes:
            codes[title_id].append(code)
    return {t: TitleRecord(t, row[0], row[1], row[2], row[3], tuple(codes[t])) for t, row in found.items()}


def category_codes(connection: Connection) -> set[str]:
    return set(connection.scalars(select(Category.code)))


def title_exists(connection: Connection, title_id: str) -> bool:
    return connection.scalar(select(Title.id).where(Title.title_id == title_id)) is not None


def category_name(connection: Connection, code: str) -> str | None:
    return connection.scalar(select(Category.name).where(Category.code == code))


def all_title_categories(connection: Connection) -> list[tuple[str, list[str]]]:
    """Every title with its category codes (primary first): what a freshly loaded model is fed."""
    by_title: dict[str, list[str]] = {}
    for title_id in connection.scalars(select(Title.title_id)):
        by_title[title_id] = []
    for title_id, code in connection.execute(
        select(Title.title_id, TitleCategory.category_code)
        .join(TitleCategory, TitleCategory.title_key == Title.id)
        .order_by(Title.title_id, TitleCategory.is_primary.desc(), TitleCategory.category_code)
    ):
        by_title[title_id].append(code)
    return list(by_title.items())


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


def purchase_summary(connection: Connection, key: int) -> PurchaseSummary:
    row = connection.execute(
        select(
            func.count(Purchase.id),
            func.count(func.distinct(Purchase.order_id)),
            func.coalesce(func.sum(Purchase.quantity).filter(Purchase.quantity > 0), 0),
            func.coalesce(-func.sum(Purchase.quantity).filter(Purchase.quantity < 0), 0),
            func.coalesce(func.sum(Purchase.quantity * Purchase.unit_price), 0),
            func.min(Purchase.purchased_at),
            func.max(Purchase.purchased_at),
        ).where(Purchase.member_key == key)
    ).one()
    return PurchaseSummary(
        lines=int(row[0]),
        orders=int(row[1]),
        units_bought=int(row[2]),
        units_returned=int(row[3]),
        spent=Decimal(str(row[4])).quantize(Decimal("0.01")),
        first_purchase_at=row[5],
        last_purchase_at=row[6],
    )


def top_categories(connection: Connection, key: int, limit: int) -> list[CategoryCount]:
    """The primary categories of the titles a member bought most (net units)."""
    units = func.sum(Purchase.quantity).label("units")
    rows = connection.execute(
        select(Category.code, Category.name, units)
        .select_from(Purchase)
        .join(
            TitleCategory,
            and_(TitleCategory.title_key == Purchase.title_key, TitleCategory.is_primary),
        )
        .join(Category, Category.code == TitleCategory.category_code)
        .where(Purchase.member_key == key)
        .group_by(Category.code, Category.name)
        .having(func.sum(Purchase.quantity) > 0)
        .order_by(units.desc(), Category.code)
        .limit(limit)
    )
    return [CategoryCount(code, name, int(n)) for code, name, n in rows]


def member_keys(connection: Connection, member_ids: Collection[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for chunk in _chunks(list(dict.fromkeys(member_ids))):
        for member_id, key in connection.execute(
            select(Member.member_id, Member.id).where(Member.member_id.in_(chunk))
        ):
            found[member_id] = key
    return found


def title_keys(connection: Connection, title_ids: Collection[str]) -> dict[str, tuple[int, Decimal | None]]:
    """``title_id`` → (key, list price) for the ids that exist."""
    found: dict[str, tuple[int, Decimal | None]] = {}
    for chunk in _chunks(list(dict.fromkeys(title_ids))):
        for title_id, key, price in connection.execute(
            select(Title.title_id, Title.id, Title.price).where(Title.title_id.in_(chunk))
        ):
            found[title_id] = (key, price)
    return found


def existing_line_ids(connection: Connection, line_ids: Collection[str]) -> set[str]:
    found: set[str] = set()
    for chunk in _chunks(list(dict.fromkeys(line_ids))):
        found.update(connection.scalars(select(Purchase.line_id).where(Purchase.line_id.in_(chunk))))
    return found


def insert_purchase_rows(connection: Connection, rows: list[dict[str, Any]]) -> set[str]:
    """Insert order lines (``purchases`` columns), skipping line ids already stored.

    Returns the line ids this call inserted (a concurrent writer's lines are not among them).
    """
    inserted: set[str] = set()
    returned = Purchase.line_id
    for start in range(0, len(rows), _INSERT_CHUNK):
        chunk = rows[start : start + _INSERT_CHUNK]
        stmt: Any
        if connection.dialect.name == "postgresql":
            stmt = pg_insert(Purchase).values(chunk).on_conflict_do_nothing(index_elements=["line_id"])
        else:
            stmt = sqlite_insert(Purchase).values(chunk).on_conflict_do_nothing(index_elements=["line_id"])
        inserted.update(connection.scalars(stmt.returning(returned)))
    return inserted
