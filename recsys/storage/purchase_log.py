"""The bulk read of order lines for training: purchases, members, titles and their
categories, straight into numpy.

No Python object per line: SQLite hands back each rowid range as one ``group_concat``
text list per column (parsed by numpy, ``purchased_at`` included); PostgreSQL hands back
each id range as one ``bytea`` of fixed-size binary records (``string_agg`` of the types'
send functions), read with a numpy record dtype. An extract of 20 million order lines costs
its arrays (36 bytes a line) and no more.

(Past 400 lines because the two drivers' fast paths sit side by side with the one column
list they share; each is a single function.)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection, Select, func, select

from recsys.errors import TrainingError
from recsys.storage.line_kinds import active_order_line, active_order_sql
from recsys.storage.schema import Member, MemberCategory, Purchase, Title, TitleCategory, table_of

EPOCH = dt.datetime(1970, 1, 1)
_SQLITE_FORMAT = "%Y-%m-%d %H:%M:%S.%f"  # how SQLAlchemy stores a DateTime in SQLite

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

    def subset(self, mask: npt.NDArray[np.bool_] | npt.NDArray[np.int64]) -> PurchaseArrays:
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
class PurchaseLog:
    """Order lines with their ``purchases.id``, ordered by id (what the extract cache keeps)."""

    purchase_id: npt.NDArray[np.int64]
    arrays: PurchaseArrays

    def __len__(self) -> int:
        return len(self.purchase_id)

    def sorted(self) -> PurchaseLog:
        ids = self.purchase_id
        if len(ids) < 2 or bool(np.all(ids[1:] > ids[:-1])):
            return self
        order = np.argsort(ids, kind="stable")
        return PurchaseLog(ids[order], self.arrays.subset(order))

    def max_id(self) -> int:
        return int(self.purchase_id[-1]) if len(self) else 0

    def window(self, start: dt.datetime | None, end: dt.datetime) -> PurchaseArrays:
        """The lines with ``start <= purchased_at < end`` (no copy if that is all of them)."""
        at = self.arrays.purchased_at
        keep = at < to_epoch(end)
        if start is not None:
            keep &= at >= to_epoch(start)
        return self.arrays if bool(keep.all()) else self.arrays.subset(keep)

    @staticmethod
    def concat(first: PurchaseLog, second: PurchaseLog) -> PurchaseLog:
        if len(second) == 0:
            return first
        a, b = first.arrays, second.arrays
        return PurchaseLog(
            np.concatenate([first.purchase_id, second.purchase_id]),
            PurchaseArrays(
                np.concatenate([a.member_key, b.member_key]),
                np.concatenate([a.title_key, b.title_key]),
                np.concatenate([a.quantity, b.quantity]),
                np.concatenate([a.purchased_at, b.purchased_at]),
            ),
        ).sorted()


@dataclass(frozen=True)
class KeyedIds:
    """Surrogate keys and the club's ids (and display names) of members or titles."""

    keys: npt.NDArray[np.int64]
    ids: list[str]
    names: list[str]


def to_epoch(moment: dt.datetime) -> float:
    return (moment - EPOCH).total_seconds()


class _Columns:
    """Growing column buffers for order lines (ids, keys, quantity, epoch seconds)."""

    def __init__(self, capacity: int) -> None:
        capacity = max(capacity, 1)
        # np.empty: pages never written are never resident, so a generous hint costs no RSS
        self.purchase_id = np.empty(capacity, dtype=np.int64)
        self.member_key = np.empty(capacity, dtype=np.int64)
        self.title_key = np.empty(capacity, dtype=np.int64)
        self.quantity = np.empty(capacity, dtype=np.float32)
        self.purchased_at = np.empty(capacity, dtype=np.float64)
        self.size = 0

    def _grow(self, need: int) -> None:
        size = max(need, 2 * len(self.purchase_id))
        for name in ("purchase_id", "member_key", "title_key", "quantity", "purchased_at"):
            old = getattr(self, name)
            grown = np.empty(size, dtype=old.dtype)
            grown[: self.size] = old[: self.size]
            setattr(self, name, grown)

    def extend(
        self,
        purchase_id: npt.ArrayLike,
        member_key: npt.ArrayLike,
        title_key: npt.ArrayLike,
        quantity: npt.ArrayLike,
        purchased_at: npt.ArrayLike,
    ) -> int:
        n = len(np.asarray(purchase_id))
        need = self.size + n
        if need > len(self.purchase_id):
            self._grow(need)
        block = slice(self.size, need)
        self.purchase_id[block] = purchase_id
        self.member_key[block] = member_key
        self.title_key[block] = title_key
        self.quantity[block] = quantity
        self.purchased_at[block] = purchased_at
        self.size = need
        return n

    def log(self) -> PurchaseLog:
        n = self.size
        log = PurchaseLog(
            self.purchase_id[:n],
            PurchaseArrays(
                self.member_key[:n],
                self.title_key[:n],
                self.quantity[:n],
                self.purchased_at[:n],
            ),
        )
        return log.sorted()


def purchase_id_bounds(connection: Connection) -> tuple[int, int]:
    """(lowest, highest) ``purchases.id``; (1, 0) for no purchases."""
    # two statements: SQLite answers min() or max() alone from the key, both together by a scan
    low = connection.execute(select(func.min(Purchase.id))).scalar_one_or_none()
    high = connection.execute(select(func.max(Purchase.id))).scalar_one_or_none()
    return (int(low), int(high)) if low is not None and high is not None else (1, 0)


def _sqlite_window(start: dt.datetime | None, end: dt.datetime | None) -> tuple[str, list[str]]:
    """A coarse text filter, a day wider than the window: stored text may lack the
    fraction or use a "T"; the exact cut is made on the parsed times."""
    # "+purchased_at": a rowid range scan, never the purchased_at index (whose random table
    # lookups cost 2-3x a straight scan when the window is most of the table)
    sql, params = "", []
    if start is not None:
        sql += " AND +purchased_at >= ?"
        params.append((start - dt.timedelta(days=1)).strftime(_SQLITE_FORMAT))
    if end is not None:
        sql += " AND +purchased_at < ?"
        params.append((end + dt.timedelta(days=1)).strftime(_SQLITE_FORMAT))
    return sql, params


def _read_sqlite(
    connection: Connection,
    after_id: int,
    upto_id: int,
    start: dt.datetime | None,
    end: dt.datetime | None,
    batch_rows: int,
    on_batch: Progress | None,
) -> PurchaseLog:
    """Rowid ranges of ``batch_rows``; each comes back as one text list per column.

    ``group_concat`` builds the lists inside SQLite and numpy parses them, so no
    Python object is made per line; ``purchased_at`` is parsed from its stored
    text by numpy (``julianday()`` per row cost more than the whole fetch).
    """
    window, window_params = _sqlite_window(start, end)
    sql = (
        "SELECT group_concat(id), group_concat(member_key), group_concat(title_key), "
        "group_concat(quantity), group_concat(purchased_at) FROM purchases "
        f"WHERE id > ? AND id <= ?{window}"
    )
    raw: Any = connection.connection.driver_connection
    columns = _Columns(upto_id - after_id)
    cursor = raw.cursor()
    try:
        for low in range(after_id, upto_id, batch_rows):
            row = cursor.execute(sql, [low, min(low + batch_rows, upto_id), *window_params])
            ids, members, titles, quantities, times = row.fetchone()
            if ids is None:
                continue
            parsed = (
                np.fromstring(ids, dtype=np.int64, sep=","),
                np.fromstring(members, dtype=np.int64, sep=","),
                np.fromstring(titles, dtype=np.int64, sep=","),
                np.fromstring(quantities, dtype=np.float32, sep=","),
                np.array(times.split(","), dtype="datetime64[us]").astype(np.int64) / 1e6,
            )
            if len({len(column) for column in parsed}) != 1:
                raise TrainingError("purchases: a column came back with a missing value")
            at = parsed[4]
            keep = np.ones(len(at), dtype=bool)
            if start is not None:
                keep &= at >= to_epoch(start)
            if end is not None:
                keep &= at < to_epoch(end)
            n = columns.extend(*(parsed if keep.all() else (column[keep] for column in parsed)))
            if on_batch is not None:
                on_batch(n)
    finally:
        cursor.close()
    return columns.log()


# one big-endian record per line, built by PostgreSQL's own send functions;
# timestamp_send is microseconds since 2000-01-01 (no numeric extract(epoch) per row)
_PG_RECORD = np.dtype(
    [("id", ">i8"), ("member_key", ">i4"), ("title_key", ">i4"), ("quantity", ">i4"),
     ("purchased_at", ">i8")]
)  # fmt: skip
_PG_EPOCH_2000 = 946_684_800.0


def _read_postgres(
    connection: Connection,
    after_id: int,
    upto_id: int,
    start: dt.datetime | None,
    end: dt.datetime | None,
    batch_rows: int,
    on_batch: Progress | None,
) -> PurchaseLog:
    """Id ranges of ``batch_rows``; each comes back as one bytea of fixed-size binary records.

    ``COPY … TO STDOUT`` would send one message per line, and the driver's
    per-message cost was most of the time; ``string_agg`` of the send functions
    makes one value per range, read with a numpy record dtype.
    """
    sql = (
        "SELECT string_agg(int8send(id) || int4send(member_key) || int4send(title_key)"
        " || int4send(quantity) || timestamp_send(purchased_at), ''::bytea)"
        " FROM purchases WHERE id > %s AND id <= %s"
    )
    # "+ interval '0'": an id range scan, never a walk of the whole purchased_at index per range
    window: list[Any] = []
    if start is not None:
        sql += " AND purchased_at + interval '0' >= %s"
        window.append(start)
    if end is not None:
        sql += " AND purchased_at + interval '0' < %s"
        window.append(end)
    columns = _Columns(upto_id - after_id)
    raw: Any = connection.connection.driver_connection
    with raw.cursor(binary=True) as cursor:
        for low in range(after_id, upto_id, batch_rows):
            cursor.execute(sql, [low, min(low + batch_rows, upto_id), *window])
            (data,) = cursor.fetchone()
            if data is None:
                continue
            block = np.frombuffer(data, dtype=_PG_RECORD)
            n = columns.extend(
                block["id"],
                block["member_key"],
                block["title_key"],
                block["quantity"],
                block["purchased_at"] / 1e6 + _PG_EPOCH_2000,
            )
            if on_batch is not None:
                on_batch(n)
    return columns.log()


def read_purchase_log(
    connection: Connection,
    *,
    after_id: int = 0,
    upto_id: int | None = None,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    batch_rows: int = 200_000,
    on_batch: Progress | None = None,
) -> PurchaseLog:
    """Order lines with ``after_id < id <= upto_id`` (default: the newest) and
    ``start <= purchased_at < end`` (either None: unbounded), ordered by id."""
    low, high = purchase_id_bounds(connection)
    after_id = max(after_id, low - 1)
    upto_id = high if upto_id is None else min(upto_id, high)
    if upto_id <= after_id:
        return _Columns(0).log()
    read = _read_postgres if connection.dialect.name == "postgresql" else _read_sqlite
    return read(connection, after_id, upto_id, start, end, batch_rows, on_batch)


def purchase_id_stats(connection: Connection, upto_id: int) -> tuple[int, int]:
    """(count, sum of ids) of the order lines with ``id <= upto_id``: a cheap fingerprint."""
    stmt = select(func.count(), func.coalesce(func.sum(Purchase.id), 0)).where(Purchase.id <= upto_id)
    count, total = connection.execute(stmt).one()
    return int(count), int(total)


def read_purchases_by_id(connection: Connection, ids: npt.NDArray[np.int64]) -> PurchaseLog:
    """The order lines with these ids (those that still exist), ordered by id."""
    columns = _Columns(len(ids))
    stmt = select(
        Purchase.id, Purchase.member_key, Purchase.title_key, Purchase.quantity,
        Purchase.purchased_at,
    ).where(Purchase.id.in_([int(i) for i in ids]))  # fmt: skip
    rows = connection.execute(stmt).all()
    if rows:
        columns.extend(
            [r[0] for r in rows],
            [r[1] for r in rows],
            [r[2] for r in rows],
            [r[3] for r in rows],
            [to_epoch(r[4]) for r in rows],
        )
    return columns.log()


def read_purchases(
    connection: Connection,
    start: dt.datetime | None,
    end: dt.datetime,
    *,
    batch_rows: int = 200_000,
    on_batch: Progress | None = None,
) -> PurchaseArrays:
    """Order lines with ``start <= purchased_at < end`` (``start`` None: from the beginning)."""
    log = read_purchase_log(connection, start=start, end=end, batch_rows=batch_rows, on_batch=on_batch)
    return log.arrays


def titles_sold_before(connection: Connection, moment: dt.datetime) -> npt.NDArray[np.int64]:
    """Keys of titles with at least one order line before ``moment``."""
    # no DISTINCT in SQL: it would make SQLite walk the title index over the whole table
    # instead of the purchased_at range; the (usually short) range is deduplicated here
    stmt = select(Purchase.title_key).where(Purchase.purchased_at < moment)
    keys = np.array(connection.execute(stmt).scalars().all(), dtype=np.int64)
    return np.unique(keys)


def newest_purchase(connection: Connection, *, own_orders: bool = False) -> dt.datetime | None:
    """The newest line's time; with ``own_orders`` the newest of the members' own orders (auto-ship
    lines and their returns left out: ``line_kinds.active_order_line``)."""
    if own_orders:
        # newest first on the purchased_at index, stopping at the first own order (max() with a
        # WHERE would read every line on SQLite)
        purchases = table_of(Purchase)
        value = connection.execute(
            select(purchases.c.purchased_at)
            .where(active_order_line(purchases, per_line=True))
            .order_by(purchases.c.purchased_at.desc())
            .limit(1)
        ).scalar_one_or_none()
    else:
        value = connection.execute(select(func.max(Purchase.purchased_at))).scalar_one_or_none()
    if isinstance(value, str):  # SQLite hands back text for an aggregate
        return dt.datetime.fromisoformat(value)
    return value


def _driver_rows(connection: Connection, stmt: Select[*tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """A parameterless select on the driver's cursor: plain tuples, no Row per line."""
    raw: Any = connection.connection.driver_connection
    cursor = raw.cursor()
    try:
        cursor.execute(str(stmt.compile(dialect=connection.dialect)))
        rows: list[tuple[Any, ...]] = cursor.fetchall()  # tuples from both sqlite3 and psycopg
        return rows
    finally:
        cursor.close()


def read_members(connection: Connection, *, names: bool = False) -> KeyedIds:
    """Members' keys and ids (and names only if asked: training does not use them)."""
    columns = (Member.id, Member.member_id, Member.name) if names else (Member.id, Member.member_id)
    rows = _driver_rows(connection, select(*columns))
    return KeyedIds(
        keys=np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows)),
        ids=[r[1] for r in rows],
        names=[r[2] for r in rows] if names else [],
    )


def read_titles(connection: Connection) -> KeyedIds:
    rows = _driver_rows(connection, select(Title.id, Title.title_id, Title.title))
    return KeyedIds(
        keys=np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows)),
        ids=[r[1] for r in rows],
        names=[r[2] for r in rows],
    )


def read_title_categories(connection: Connection) -> list[tuple[int, str, bool]]:
    """(title_key, category_code, is_primary) for every mapping."""
    stmt = select(TitleCategory.title_key, TitleCategory.category_code, TitleCategory.is_primary)
    return [(int(k), str(c), bool(p)) for k, c, p in _driver_rows(connection, stmt)]


def read_member_categories(connection: Connection) -> list[tuple[int, str]]:
    """(member_key, category_code) for every declared favourite."""
    return _driver_rows(connection, select(MemberCategory.member_key, MemberCategory.category_code))


@dataclass(frozen=True)
class LineAmounts:
    """Order lines as (member, time, net amount) arrays: what a lifetime-value model reads."""

    member_key: npt.NDArray[np.int64]
    purchased_at: npt.NDArray[np.float64]  # epoch seconds, naive UTC
    amount: npt.NDArray[np.float64]  # quantity × unit price (negative for a return)

    def __len__(self) -> int:
        return len(self.member_key)


def read_line_amounts(
    connection: Connection, *, end: dt.datetime | None = None, batch_rows: int = 200_000, own_orders: bool = False
) -> LineAmounts:
    """Every order line before ``end`` (None: all) as member key, time and net amount; with
    ``own_orders`` only the members' own orders: auto-ship lines (the negative option) and their
    returns left out (``line_kinds.active_order_line``, the same SQL test as the campaign report's).

    The same id-range reads as :func:`read_purchase_log` (one text list per column on
    SQLite, one bytea of binary records on PostgreSQL): no Python object per line.
    """
    own = f" AND {active_order_sql(connection)}" if own_orders else ""
    low, high = purchase_id_bounds(connection)
    members: list[npt.NDArray[np.int64]] = []
    times: list[npt.NDArray[np.float64]] = []
    amounts: list[npt.NDArray[np.float64]] = []
    raw: Any = connection.connection.driver_connection
    if connection.dialect.name == "postgresql":
        sql = (
            "SELECT string_agg(int4send(member_key) || float8send((quantity * unit_price)::float8)"
            " || timestamp_send(purchased_at), ''::bytea) FROM purchases WHERE id >= %s AND id < %s" + own
        )
        params: list[Any] = []
        if end is not None:
            sql += " AND purchased_at + interval '0' < %s"
            params.append(end)
        record = np.dtype([("member_key", ">i4"), ("amount", ">f8"), ("purchased_at", ">i8")])
        with raw.cursor(binary=True) as cursor:
            jit = None
            if own_orders:
                # the return test is costed as if it ran for every line (it runs for the negative ones):
                # JIT would compile each range's statement again (0.4 s each); off for these reads, then
                # as it was (local to the caller's transaction: an error rolls it back with the rest)
                cursor.execute("SELECT current_setting('jit')")
                jit = cursor.fetchone()[0]
                cursor.execute("SELECT set_config('jit', 'off', true)")
            for start in range(low, high + 1, batch_rows):
                cursor.execute(sql, [start, start + batch_rows, *params])
                (data,) = cursor.fetchone()
                if data is None:
                    continue
                block = np.frombuffer(data, dtype=record)
                members.append(block["member_key"].astype(np.int64))
                amounts.append(block["amount"].astype(np.float64))
                times.append(block["purchased_at"] / 1e6 + _PG_EPOCH_2000)
            if jit is not None:
                cursor.execute("SELECT set_config('jit', %s, true)", [jit])
    else:
        window, window_params = _sqlite_window(None, end)
        sql = (
            "SELECT group_concat(member_key), group_concat(quantity * unit_price), group_concat(purchased_at)"
            f" FROM purchases WHERE id >= ? AND id < ?{window}{own}"
        )
        cursor = raw.cursor()
        try:
            for start in range(low, high + 1, batch_rows):
                keys, values, stamps = cursor.execute(sql, [start, start + batch_rows, *window_params]).fetchone()
                if keys is None:
                    continue
                at = np.array(stamps.split(","), dtype="datetime64[us]").astype(np.int64) / 1e6
                key_block = np.fromstring(keys, dtype=np.int64, sep=",")
                amount_block = np.fromstring(values, dtype=np.float64, sep=",")
                if not len(key_block) == len(amount_block) == len(at):
                    raise TrainingError("purchases: a column came back with a missing value")
                keep = at < to_epoch(end) if end is not None else np.ones(len(at), dtype=bool)
                members.append(key_block[keep])
                amounts.append(amount_block[keep])
                times.append(at[keep])
        finally:
            cursor.close()
    if not members:
        return LineAmounts(np.zeros(0, np.int64), np.zeros(0, np.float64), np.zeros(0, np.float64))
    return LineAmounts(np.concatenate(members), np.concatenate(times), np.concatenate(amounts))
