"""Members and their declared favourite categories: one record type (:class:`MemberRecord`),
one ``declared_categories``; a member's snapshot for a recommendation in one query."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from sqlalchemy import (
    Connection,
    DateTime,
    Integer,
    String,
    bindparam,
    case,
    cast,
    null,
    select,
    union_all,
)

from recsys.storage.bulk import in_chunks
from recsys.storage.db import DriverQuery
from recsys.storage.schema import (
    Member,
    MemberCategory,
    Purchase,
    Title,
)


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


_MEMBER_COLUMNS = (
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
)


def find_member(connection: Connection, member_id: str) -> MemberRecord | None:
    row = connection.execute(select(*_MEMBER_COLUMNS).where(Member.member_id == member_id)).one_or_none()
    return None if row is None else MemberRecord(**row._mapping)


def members_by_id(connection: Connection, member_ids: Sequence[str]) -> dict[str, MemberRecord]:
    """The records of the members among ``member_ids`` that exist."""
    out: dict[str, MemberRecord] = {}
    for chunk in in_chunks(list(dict.fromkeys(member_ids))):
        for row in connection.execute(select(*_MEMBER_COLUMNS).where(Member.member_id.in_(chunk))):
            out[row.member_id] = MemberRecord(**row._mapping)
    return out


def member_keys(connection: Connection, member_ids: Collection[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for chunk in in_chunks(list(dict.fromkeys(member_ids))):
        for member_id, key in connection.execute(
            select(Member.member_id, Member.id).where(Member.member_id.in_(chunk))
        ):
            found[member_id] = key
    return found


def declared_categories(
    connection: Connection, member_ids: Sequence[str] | None = None
) -> dict[str, list[str]]:
    """member_id → the category codes the member declared as favourites (all members, or some)."""
    stmt = select(Member.member_id, MemberCategory.category_code).join(
        MemberCategory, MemberCategory.member_key == Member.id
    )
    out: dict[str, list[str]] = defaultdict(list)
    chunks: Iterable[Sequence[str] | None] = [None] if member_ids is None else in_chunks(member_ids)
    for chunk in chunks:
        query = stmt if chunk is None else stmt.where(Member.member_id.in_(chunk))
        for member_id, code in connection.execute(query.order_by(Member.member_id, MemberCategory.category_code)):
            out[member_id].append(code)
    return dict(out)


class SnapshotLine(NamedTuple):
    """One order line (a tuple: read for every line of a member on every request)."""

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
# is compared in SQL, so no timestamp is parsed in Python. On the API's kept PostgreSQL
# connections it goes straight to psycopg, prepared (DriverQuery)
_SNAPSHOT = DriverQuery(
    union_all(
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
)


def member_snapshot(connection: Connection, member_id: str, since: dt.datetime) -> MemberSnapshot | None:
    """Key, order lines (recent: after ``since``) and declared categories of a member in one
    query; None if the member is unknown."""
    rows = _SNAPSHOT.all(connection, {"member_id": member_id, "since": since})
    if not rows:
        return None
    lines = [SnapshotLine(t, q, bool(r)) for _k, t, q, r, _code in rows if t is not None]
    declared = sorted(code for *_rest, code in rows if code is not None)
    return MemberSnapshot(int(rows[0][0]), lines, declared)


def member_snapshots(
    connection: Connection, member_ids: Sequence[str], since: dt.datetime
) -> dict[str, MemberSnapshot]:
    """:func:`member_snapshot` for many members (a batch of editions) in two queries per chunk;
    unknown ids are left out."""
    out: dict[str, MemberSnapshot] = {}
    for chunk in in_chunks(list(dict.fromkeys(member_ids))):
        keys = dict(
            connection.execute(select(Member.member_id, Member.id).where(Member.member_id.in_(chunk))).all()
        )
        lines: dict[str, list[SnapshotLine]] = {m: [] for m in keys}
        for member_id, title_id, quantity, recent in connection.execute(
            select(
                Member.member_id,
                Title.title_id,
                Purchase.quantity,
                case((Purchase.purchased_at > since, 1), else_=0),
            )
            .select_from(Purchase)
            .join(Member, Member.id == Purchase.member_key)
            .join(Title, Title.id == Purchase.title_key)
            .where(Member.member_id.in_(chunk))
        ):
            lines[member_id].append(SnapshotLine(title_id, quantity, bool(recent)))
        declared = declared_categories(connection, list(keys))
        for member_id, key in keys.items():
            out[member_id] = MemberSnapshot(int(key), lines[member_id], sorted(declared.get(member_id, [])))
    return out


def search_members(
    connection: Connection, text: str, *, after: str | None = None, limit: int = 20
) -> list[MemberRecord]:
    """Members whose id, name or postcode starts with ``text``, by member id, keyset-paged
    (``after``: the last member id of the previous page). Prefix matches only: no scan of
    every name for a substring."""
    pattern = text.strip()
    stmt = select(*_MEMBER_COLUMNS).order_by(Member.member_id).limit(limit)
    if pattern:
        stmt = stmt.where(
            Member.member_id.startswith(pattern, autoescape=True)
            | Member.name.startswith(pattern, autoescape=True)
            | Member.postcode.startswith(pattern, autoescape=True)
        )
    if after is not None:
        stmt = stmt.where(Member.member_id > after)
    return [MemberRecord(**row._mapping) for row in connection.execute(stmt)]
