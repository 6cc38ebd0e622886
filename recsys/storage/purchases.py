"""Order lines: one member's lines and summary, RFM aggregates over every member, titles
bought, and writing lines posted through the API. (The bulk read of order lines into numpy
for training is ``purchase_log``.)

The RFM aggregates and the category units describe members' own buying: auto-ship lines (the
negative option) and their returns are left out (:func:`recsys.storage.line_kinds.active_order_line`).
A member's history, summary, top categories and titles bought show every line, auto-ships
included: they are what the member has."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import (
    Connection,
    Float,
    and_,
    case,
    cast,
    func,
    select,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from recsys.storage.bulk import in_chunks
from recsys.storage.line_kinds import AUTOSHIP, active_order_line
from recsys.storage.schema import (
    Category,
    Member,
    Purchase,
    Title,
    TitleCategory,
    table_of,
)

_INSERT_CHUNK = 100  # rows per multi-row INSERT (8 parameters each)


@dataclass(frozen=True)
class PurchaseSummary:
    """Every line of a member (auto-ships and their returns included), and the auto-ship part apart."""

    lines: int
    orders: int
    units_bought: int
    units_returned: int
    spent: Decimal
    first_purchase_at: dt.datetime | None
    last_purchase_at: dt.datetime | None
    autoship_lines: int = 0  # the negative option's shipments and their returns
    autoship_units: int = 0  # units sent unasked
    autoship_units_returned: int = 0  # of those, sent back
    autoship_spent: Decimal = Decimal("0.00")  # billed for them, net of the returns


@dataclass(frozen=True)
class CategoryCount:
    code: str
    name: str
    units: int


def purchase_summary(connection: Connection, key: int) -> PurchaseSummary:
    purchases = table_of(Purchase)
    shipped = ~active_order_line(purchases)  # an auto-ship or the return of one
    row = connection.execute(
        select(
            func.count(Purchase.id),
            func.count(func.distinct(Purchase.order_id)),
            func.coalesce(func.sum(Purchase.quantity).filter(Purchase.quantity > 0), 0),
            func.coalesce(-func.sum(Purchase.quantity).filter(Purchase.quantity < 0), 0),
            func.coalesce(func.sum(Purchase.quantity * Purchase.unit_price), 0),
            func.min(Purchase.purchased_at),
            func.max(Purchase.purchased_at),
            func.count(Purchase.id).filter(shipped),
            func.coalesce(func.sum(Purchase.quantity).filter(shipped, Purchase.quantity > 0), 0),
            func.coalesce(-func.sum(Purchase.quantity).filter(shipped, Purchase.quantity < 0), 0),
            func.coalesce(func.sum(Purchase.quantity * Purchase.unit_price).filter(shipped), 0),
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
        autoship_lines=int(row[7]),
        autoship_units=int(row[8]),
        autoship_units_returned=int(row[9]),
        autoship_spent=Decimal(str(row[10])).quantize(Decimal("0.01")),
    )


def top_categories(connection: Connection, key: int, limit: int) -> list[CategoryCount]:
    """The primary categories of the titles a member bought most (net units of their own orders: an
    auto-shipped title says what the club chose, not what the member likes)."""
    units = func.sum(Purchase.quantity).label("units")
    rows = connection.execute(
        select(Category.code, Category.name, units)
        .select_from(Purchase)
        .join(
            TitleCategory,
            and_(TitleCategory.title_key == Purchase.title_key, TitleCategory.is_primary),
        )
        .join(Category, Category.code == TitleCategory.category_code)
        .where(Purchase.member_key == key, active_order_line(table_of(Purchase)))
        .group_by(Category.code, Category.name)
        .having(func.sum(Purchase.quantity) > 0)
        .order_by(units.desc(), Category.code)
        .limit(limit)
    )
    return [CategoryCount(code, name, int(n)) for code, name, n in rows]


def bought_titles(connection: Connection, member_ids: Sequence[str]) -> dict[str, set[str]]:
    """member_id → title_ids bought (net of returns)."""
    out: dict[str, set[str]] = defaultdict(set)
    for chunk in in_chunks(list(member_ids)):
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
    The member's own orders only: an auto-ship (the negative option sends it unasked) and its
    return are left out (``line_kinds.active_order_line``), so a member who only kept or sent
    back main selections is not made recent, frequent or valuable by them.
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
            Purchase,
            and_(Purchase.member_key == Member.id, Purchase.purchased_at < as_of, active_order_line(table_of(Purchase))),
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


def existing_line_ids(connection: Connection, line_ids: Collection[str]) -> set[str]:
    found: set[str] = set()
    for chunk in in_chunks(list(dict.fromkeys(line_ids))):
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


@dataclass(frozen=True)
class HistoryLine:
    """An order line as the member's history shows it (returns have a negative quantity)."""

    id: int
    line_id: str
    order_id: str | None
    title_id: str
    title: str
    quantity: int
    unit_price: Decimal
    purchased_at: dt.datetime
    channel: str
    kind: str  # line_kinds.ORDER or AUTOSHIP

    @property
    def autoship(self) -> bool:
        """Sent under the negative option, not ordered by the member."""
        return self.kind == AUTOSHIP


def member_lines_page(
    connection: Connection, key: int, *, before: tuple[dt.datetime, int] | None = None, limit: int = 20
) -> list[HistoryLine]:
    """A member's order lines, newest first, keyset-paged on (purchased_at, id): ``before`` is
    the last line of the previous page. Reads the index on (member_key, purchased_at)."""
    stmt = (
        select(
            Purchase.id, Purchase.line_id, Purchase.order_id, Title.title_id, Title.title,
            Purchase.quantity, Purchase.unit_price, Purchase.purchased_at, Purchase.channel, Purchase.kind,
        )
        .join(Title, Title.id == Purchase.title_key)
        .where(Purchase.member_key == key)
        .order_by(Purchase.purchased_at.desc(), Purchase.id.desc())
        .limit(limit)
    )
    if before is not None:
        at, line = before
        stmt = stmt.where(
            (Purchase.purchased_at < at) | (and_(Purchase.purchased_at == at, Purchase.id < line))
        )
    return [HistoryLine(**row._asdict()) for row in connection.execute(stmt)]


def primary_category_units(
    connection: Connection, since: dt.datetime, until: dt.datetime
) -> list[tuple[int, str, int]]:
    """(member key, primary category code, net units) of the member's own order lines in ``[since, until)``
    (auto-ships and their returns left out: ``line_kinds.active_order_line``)."""
    units = func.sum(Purchase.quantity)
    stmt = (
        select(Purchase.member_key, TitleCategory.category_code, units)
        .join(TitleCategory, and_(TitleCategory.title_key == Purchase.title_key, TitleCategory.is_primary))
        .where(Purchase.purchased_at >= since, Purchase.purchased_at < until, active_order_line(table_of(Purchase)))
        .group_by(Purchase.member_key, TitleCategory.category_code)
        .having(units > 0)
    )
    return [(int(k), str(c), int(n)) for k, c, n in connection.execute(stmt)]
