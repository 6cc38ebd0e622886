"""Bulk writes at the driver's best speed: PostgreSQL COPY, SQLite executemany.

Both run inside the caller's transaction (the SQLAlchemy ``Connection``), so a
failure later in the same transaction takes the rows back out.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterable, Sequence
from decimal import Decimal
from itertools import islice
from typing import Any, TypeVar

from sqlalchemy import Connection

T = TypeVar("T")

# The raw sqlite3 driver, used for speed below, stores these the way SQLAlchemy reads them back.
sqlite3.register_adapter(Decimal, str)
sqlite3.register_adapter(dt.datetime, lambda v: v.isoformat(" "))
sqlite3.register_adapter(dt.date, lambda v: v.isoformat())


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def bulk_insert(
    connection: Connection,
    table: str,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    batch_size: int = 50_000,
) -> int:
    """Append ``rows`` (tuples in ``columns`` order) to ``table``; return how many were written.

    ``rows`` is consumed lazily, ``batch_size`` rows at a time, so memory stays
    flat however long the iterable is. Constraint violations raise as usual.
    """
    raw = connection.connection.driver_connection
    cols = ", ".join(_quote(c) for c in columns)
    written = 0
    iterator = iter(rows)
    if connection.dialect.name == "postgresql":
        with raw.cursor() as cursor, cursor.copy(f"COPY {_quote(table)} ({cols}) FROM STDIN") as copy:  # type: ignore[union-attr]
            for row in iterator:
                copy.write_row(row)
                written += 1
        return written
    placeholders = ", ".join("?" for _ in columns)
    sql = f"INSERT INTO {_quote(table)} ({cols}) VALUES ({placeholders})"
    cursor = raw.cursor()  # type: ignore[union-attr]
    try:
        while batch := list(islice(iterator, batch_size)):
            cursor.executemany(sql, batch)
            written += len(batch)
    finally:
        cursor.close()
    return written


def insert_ignoring_conflicts(connection: Connection, table: Any, rows: list[dict[str, Any]]) -> int:
    """Insert ``rows`` into ``table``, skipping keys already there; return rows inserted."""
    if not rows:
        return 0
    if connection.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        stmt: Any = pg_insert(table).on_conflict_do_nothing()
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        stmt = sqlite_insert(table).on_conflict_do_nothing()
    result = connection.execute(stmt, rows)
    return int(result.rowcount or 0)


IN_CHUNK = 900  # ids per ``IN (…)``: below SQLite's bound-parameter limit


def in_chunks(values: Sequence[T]) -> Iterable[Sequence[T]]:
    """``values`` in slices of :data:`IN_CHUNK`, for ``column.in_(chunk)`` queries."""
    for start in range(0, len(values), IN_CHUNK):
        yield values[start : start + IN_CHUNK]
