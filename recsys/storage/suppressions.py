"""The suppression list: members not to be sent pieces of a scope, with reason, source and dates."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection, and_, select, update

from recsys.storage.bulk import bulk_insert
from recsys.storage.schema import Member, Suppression

__all__ = [
    "SuppressionArrays",
    "SuppressionRecord",
    "add_suppressions",
    "lift_suppression",
    "suppression_arrays",
    "suppressions",
]


@dataclass(frozen=True)
class SuppressionRecord:
    member_id: str
    reason: str
    scope: str
    source: str
    starts_on: dt.date
    ends_on: dt.date | None
    note: str | None
    recorded_at: dt.datetime


@dataclass(frozen=True, eq=False)
class SuppressionArrays:
    """Every entry as columns (member key, reason, scope, first day, end day or None)."""

    member_key: npt.NDArray[np.int64]
    reason: list[str]
    scope: list[str]
    starts_on: list[dt.date]
    ends_on: list[dt.date | None]


def _date(value: object) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))


def add_suppressions(
    connection: Connection,
    rows: Sequence[tuple[int, str, str, str, dt.date, dt.date | None, str | None]],
) -> int:
    """Insert (member_key, reason, scope, source, starts_on, ends_on, note) rows; an entry with
    the same member, reason and first day is already there and is left as it is. Returns the
    number written."""
    if not rows:
        return 0
    keys = sorted({r[0] for r in rows})
    existing: set[tuple[int, str, dt.date]] = set()
    for start in range(0, len(keys), 5000):
        chunk = keys[start : start + 5000]
        stmt = select(Suppression.member_key, Suppression.reason, Suppression.starts_on).where(
            Suppression.member_key.in_(chunk)
        )
        existing.update((int(k), str(r), _date(s)) for k, r, s in connection.execute(stmt))
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    fresh: list[tuple[object, ...]] = []
    for key, reason, scope, source, starts, ends, note in rows:
        if (key, reason, starts) in existing:
            continue
        existing.add((key, reason, starts))
        fresh.append((key, reason, scope, source, starts, ends, note, now))
    columns = ("member_key", "reason", "scope", "source", "starts_on", "ends_on", "note", "recorded_at")
    bulk_insert(connection, Suppression.__tablename__, columns, fresh)
    return len(fresh)


def lift_suppression(connection: Connection, member_key: int, reason: str, on: dt.date) -> int:
    """End the member's open entries of ``reason`` on ``on`` (exclusive); returns how many."""
    stmt = (
        update(Suppression)
        .where(and_(Suppression.member_key == member_key, Suppression.reason == reason))
        .where((Suppression.ends_on.is_(None)) | (Suppression.ends_on > on))
        .where(Suppression.starts_on <= on)
        .values(ends_on=on)
    )
    return int(connection.execute(stmt).rowcount or 0)


def suppressions(connection: Connection, member_keys: Iterable[int] | None = None) -> list[SuppressionRecord]:
    """Entries with their member ids, newest first (of these members, or all)."""
    stmt = (
        select(
            Member.member_id, Suppression.reason, Suppression.scope, Suppression.source, Suppression.starts_on,
            Suppression.ends_on, Suppression.note, Suppression.recorded_at,
        )
        .join(Member, Member.id == Suppression.member_key)
        .order_by(Suppression.starts_on.desc(), Member.member_id)
    )  # fmt: skip
    if member_keys is not None:
        stmt = stmt.where(Suppression.member_key.in_(list(member_keys)))
    return [
        SuppressionRecord(m, r, s, src, _date(a), None if b is None else _date(b), note, at)
        for m, r, s, src, a, b, note, at in connection.execute(stmt)
    ]


def suppression_arrays(connection: Connection) -> SuppressionArrays:
    """Every entry, as columns (the rules check them against the in-home date)."""
    stmt = select(
        Suppression.member_key, Suppression.reason, Suppression.scope, Suppression.starts_on, Suppression.ends_on
    )
    rows = connection.execute(stmt).all()
    return SuppressionArrays(
        member_key=np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows)),
        reason=[r[1] for r in rows],
        scope=[r[2] for r in rows],
        starts_on=[_date(r[3]) for r in rows],
        ends_on=[None if r[4] is None else _date(r[4]) for r in rows],
    )
