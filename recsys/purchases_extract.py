"""The SQL that training reads: purchases, members, titles and their categories.

The only place training SQL lives. Purchases stream from the database in
batches (the driver's ``fetchmany``; a server-side cursor on PostgreSQL)
straight into numpy arrays — integer keys, quantity, time as epoch seconds
computed by the database — never one ORM object or Row per line, so an extract
of 20 million order lines costs a few hundred MB of arrays and no more.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import ColumnElement, Connection, Float, Select, cast, extract, func, select

from recsys.schema import Member, MemberCategory, Purchase, Title, TitleCategory

EPOCH = dt.datetime(1970, 1, 1)
_JULIAN_UNIX_EPOCH = 2440587.5

Progress = Callable[[int], None]


@dataclass(frozen=True)
class PurchaseArrays:
    """Order lines as parallel arrays: one entry per line."""

    member_key: npt.NDArray[np.int64]
    title_key: npt.NDArray[np.int64]
    quantity: npt.NDArray[np.float32]
    purchased_at: npt.NDArray[np.float64]  # epoch seconds, naive UTC

    def __len__(self) -> int:
        return len(self.member_key)

    def subset(self, mask: npt.NDArray[np.bool_]) -> PurchaseArrays:
        return PurchaseArrays(
            self.member_key[mask],
            self.title_key[mask],
            self.quantity[mask],
            self.purchased_at[mask],
        )

    def newest(self) -> dt.datetime | None:
        if len(self) == 0:
            return None
        return EPOCH + dt.timedelta(seconds=float(self.purchased_at.max()))


@dataclass(frozen=True)
class KeyedIds:
    """Surrogate keys and the club's ids (and display names) of members or titles."""

    keys: npt.NDArray[np.int64]
    ids: list[str]
    names: list[str]


def to_epoch(moment: dt.datetime) -> float:
    return (moment - EPOCH).total_seconds()


def _epoch_seconds(connection: Connection) -> ColumnElement[float]:
    if connection.dialect.name == "sqlite":
        return (func.julianday(Purchase.purchased_at) - _JULIAN_UNIX_EPOCH) * 86400.0
    return cast(extract("epoch", Purchase.purchased_at), Float)


class _Growing:
    """A float64 column buffer that doubles when full."""

    def __init__(self, width: int, capacity: int) -> None:
        self.data = np.empty((max(capacity, 1), width), dtype=np.float64)
        self.size = 0

    def extend(self, block: npt.NDArray[np.float64]) -> None:
        need = self.size + len(block)
        if need > len(self.data):
            grown = np.empty((max(need, 2 * len(self.data)), self.data.shape[1]), dtype=np.float64)
            grown[: self.size] = self.data[: self.size]
            self.data = grown
        self.data[self.size : need] = block
        self.size = need

    def view(self) -> npt.NDArray[np.float64]:
        return self.data[: self.size]


def _driver_batches(
    connection: Connection, stmt: Select[Any, Any, Any, Any], batch_rows: int
) -> Iterator[npt.NDArray[np.float64]]:
    """Run ``stmt`` on the driver's own cursor and yield float64 blocks of ``batch_rows`` rows.

    SQLAlchemy compiles the statement and converts the parameters; the rows
    (plain numbers) then go from the driver's ``fetchmany`` straight into numpy,
    with no Row object per line. PostgreSQL uses a server-side (named) cursor.
    """
    dialect = connection.dialect
    compiled = stmt.compile(dialect=dialect)
    processors: dict[str, Any] = dict(compiled._bind_processors)
    values = compiled.construct_params()
    for name, process in processors.items():
        if name in values and values[name] is not None:
            values[name] = process(values[name])
    params: Any = (
        [values[name] for name in compiled.positiontup or ()] if compiled.positional else values
    )
    raw: Any = connection.connection.driver_connection
    postgres = dialect.name == "postgresql"
    cursor = raw.cursor(name="bookclub_extract") if postgres else raw.cursor()
    try:
        if postgres:
            cursor.itersize = batch_rows
        cursor.execute(str(compiled), params)
        while rows := cursor.fetchmany(batch_rows):
            yield np.array(rows, dtype=np.float64).reshape(-1, 4)
    finally:
        cursor.close()


def count_purchases(connection: Connection, start: dt.datetime | None, end: dt.datetime) -> int:
    stmt = select(func.count()).select_from(Purchase).where(Purchase.purchased_at < end)
    if start is not None:
        stmt = stmt.where(Purchase.purchased_at >= start)
    return int(connection.execute(stmt).scalar_one())


def read_purchases(
    connection: Connection,
    start: dt.datetime | None,
    end: dt.datetime,
    *,
    batch_rows: int = 200_000,
    expected_rows: int | None = None,
    on_batch: Progress | None = None,
) -> PurchaseArrays:
    """Order lines with ``start <= purchased_at < end`` (``start`` None: from the beginning)."""
    stmt = select(
        Purchase.member_key, Purchase.title_key, Purchase.quantity, _epoch_seconds(connection)
    ).where(Purchase.purchased_at < end)
    if start is not None:
        stmt = stmt.where(Purchase.purchased_at >= start)
    buffer = _Growing(4, expected_rows or batch_rows)
    for block in _driver_batches(connection, stmt, batch_rows):
        buffer.extend(block)
        if on_batch is not None:
            on_batch(len(block))
    rows = buffer.view()
    return PurchaseArrays(
        member_key=rows[:, 0].astype(np.int64),
        title_key=rows[:, 1].astype(np.int64),
        quantity=rows[:, 2].astype(np.float32),
        purchased_at=np.ascontiguousarray(rows[:, 3]),
    )


def titles_sold_before(connection: Connection, moment: dt.datetime) -> npt.NDArray[np.int64]:
    """Keys of titles with at least one order line before ``moment``."""
    # no DISTINCT in SQL: it would make SQLite walk the title index over the whole table
    # instead of the purchased_at range; the (usually short) range is deduplicated here
    stmt = select(Purchase.title_key).where(Purchase.purchased_at < moment)
    keys = np.array(connection.execute(stmt).scalars().all(), dtype=np.int64)
    return np.unique(keys)


def newest_purchase(connection: Connection) -> dt.datetime | None:
    value = connection.execute(select(func.max(Purchase.purchased_at))).scalar_one_or_none()
    if isinstance(value, str):  # SQLite hands back text for an aggregate
        return dt.datetime.fromisoformat(value)
    return value


def read_members(connection: Connection) -> KeyedIds:
    rows = connection.execute(select(Member.id, Member.member_id, Member.name)).all()
    return KeyedIds(
        keys=np.array([r[0] for r in rows], dtype=np.int64),
        ids=[r[1] for r in rows],
        names=[r[2] for r in rows],
    )


def read_titles(connection: Connection) -> KeyedIds:
    rows = connection.execute(select(Title.id, Title.title_id, Title.title)).all()
    return KeyedIds(
        keys=np.array([r[0] for r in rows], dtype=np.int64),
        ids=[r[1] for r in rows],
        names=[r[2] for r in rows],
    )


def read_title_categories(connection: Connection) -> list[tuple[int, str, bool]]:
    """(title_key, category_code, is_primary) for every mapping."""
    stmt = select(TitleCategory.title_key, TitleCategory.category_code, TitleCategory.is_primary)
    return [(int(k), str(c), bool(p)) for k, c, p in connection.execute(stmt)]


def read_member_categories(connection: Connection) -> list[tuple[int, str]]:
    """(member_key, category_code) for every declared favourite."""
    stmt = select(MemberCategory.member_key, MemberCategory.category_code)
    return [(int(k), str(c)) for k, c in connection.execute(stmt)]
