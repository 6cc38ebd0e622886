"""What each contact's edition showed the member (``contact_titles``): written with the edition,
read by rotation (a member's last editions) and by the negative option (the ``main`` title).

The contract of a row: one per title a contact's edition showed; ``role`` ``main`` (the
quarter's selection, exactly one per contact that has rows, ``position`` 0) or ``pick``
(``position`` 1, 2, … in page order); ``campaign_id`` and ``member_key`` copied from the
contact. A contact's rows are replaced as a whole when its edition is rendered again
(:func:`replace_shown_titles`). No foreign keys (a quarter writes ~20M rows at full size):
the writer looks the keys up.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, and_, delete, func, or_, select

from recsys.errors import BookclubError
from recsys.storage.bulk import bulk_insert, in_chunks
from recsys.storage.members import member_keys
from recsys.storage.schema import (
    SHOWN_ROLES,
    Campaign,
    CampaignContact,
    ContactTitle,
    Member,
    Title,
    table_of,
)

_COLUMNS = ("contact_id", "campaign_id", "member_key", "title_key", "role", "position", "price")


@dataclass(frozen=True)
class EditionContact:
    """The contact a member's edition is rendered for: the keys its rows carry and the
    in-home date its reply deadline counts from."""

    member_id: str
    contact_id: int
    campaign_id: int
    member_key: int
    in_home_date: dt.date
    file: str | None  # the piece mailed, under the catalogs folder: the member's edition, or a segment's


@dataclass(frozen=True)
class ShownTitle:
    contact_id: int
    campaign_id: int
    member_key: int
    title_id: str
    role: str  # 'main' | 'pick'
    position: int
    price: Decimal | None = None  # the price the page printed (the negative option bills the main's)


def edition_contacts(
    connection: Connection, campaign_id: int, member_ids: Sequence[str], arm: str = "mailed"
) -> dict[str, EditionContact]:
    """member_id → the member's first contact in ``arm`` of the campaign (by contact id), with
    its in-home date (the campaign's when the contact has none); members without one are left
    out."""
    in_home = func.coalesce(CampaignContact.in_home_date, Campaign.in_home_date)
    out: dict[str, EditionContact] = {}
    for chunk in in_chunks(list(dict.fromkeys(member_ids))):
        keys = list(member_keys(connection, chunk).values())  # by key: the (member key, campaign) index
        if not keys:
            continue
        rows = connection.execute(
            select(Member.member_id, CampaignContact.id, CampaignContact.member_key, in_home, CampaignContact.file)
            .join(Member, Member.id == CampaignContact.member_key)
            .join(Campaign, Campaign.id == CampaignContact.campaign_id)
            .where(
                CampaignContact.campaign_id == campaign_id, CampaignContact.arm == arm,
                CampaignContact.member_key.in_(keys),
            )
            .order_by(CampaignContact.id)
        )
        for member_id, contact_id, member_key, day, file in rows:
            if member_id not in out:
                out[member_id] = EditionContact(
                    member_id, int(contact_id), campaign_id, int(member_key), _as_date(day), file
                )
    return out


def replace_shown_titles(connection: Connection, contact_ids: Collection[int], rows: Sequence[ShownTitle]) -> int:
    """The titles ``contact_ids``' editions show now: their earlier rows deleted, ``rows``
    written (bulk); the number written. Every row's contact must be among ``contact_ids``, each
    contact with rows has exactly one ``main`` and no title twice. In the caller's transaction."""
    ids = set(contact_ids)
    _check(rows, ids)
    for chunk in in_chunks(sorted(ids)):
        connection.execute(delete(ContactTitle).where(ContactTitle.contact_id.in_(chunk)))
    if not rows:
        return 0
    keys = _title_keys(connection, {r.title_id for r in rows})
    if missing := sorted({r.title_id for r in rows} - set(keys)):
        raise BookclubError(f"contact_titles: unknown title(s) {', '.join(missing[:5])}")
    return bulk_insert(
        connection, ContactTitle.__tablename__, _COLUMNS,
        ((r.contact_id, r.campaign_id, r.member_key, keys[r.title_id], r.role, r.position, r.price) for r in rows),
    )


def _check(rows: Sequence[ShownTitle], contact_ids: set[int]) -> None:
    mains: dict[int, int] = defaultdict(int)
    seen: set[tuple[int, str]] = set()
    for r in rows:
        where = f"contact_titles row for contact {r.contact_id}, title {r.title_id}"
        if r.contact_id not in contact_ids:
            raise ValueError(f"{where}: the contact is not among those replaced")
        if r.role not in SHOWN_ROLES:
            raise ValueError(f"{where}: role {r.role!r} is not one of {', '.join(SHOWN_ROLES)}")
        if (r.contact_id, r.title_id) in seen:
            raise ValueError(f"{where}: the title is shown twice")
        seen.add((r.contact_id, r.title_id))
        mains[r.contact_id] += r.role == "main"
    contacts = {r.contact_id for r in rows}
    if bad := sorted(c for c in contacts if mains[c] != 1):
        raise ValueError(f"contact_titles: contact {bad[0]} has {mains[bad[0]]} main titles (exactly one)")


def _title_keys(connection: Connection, title_ids: Collection[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for chunk in in_chunks(sorted(title_ids)):
        for key, title_id in connection.execute(select(Title.id, Title.title_id).where(Title.title_id.in_(chunk))):
            out[title_id] = int(key)
    return out


def recent_shown_titles(
    connection: Connection, member_ids: Sequence[str], editions: int, *, before_campaign_id: int | None = None
) -> dict[str, frozenset[str]]:
    """member_id → every title shown to the member (main and picks) in their last ``editions``
    editions: the campaigns in which they were shown titles, latest first by the campaign's
    in-home date (then id). With ``before_campaign_id`` only campaigns before that one count
    (in-home date earlier, or the same and a smaller id): the campaign being rendered never
    rotates out its own titles. Members shown nothing are left out. One query per chunk of
    members (the member_key, campaign_id index)."""
    if editions <= 0 or not member_ids:
        return {}
    ct, cp = table_of(ContactTitle), table_of(Campaign)
    where: list[Any] = []
    if before_campaign_id is not None:
        current = select(Campaign.in_home_date).where(Campaign.id == before_campaign_id).scalar_subquery()
        where.append(
            or_(cp.c.in_home_date < current, and_(cp.c.in_home_date == current, cp.c.id < before_campaign_id))
        )
    out: dict[str, set[str]] = defaultdict(set)
    for chunk in in_chunks(list(dict.fromkeys(member_ids))):
        rank = (
            func.dense_rank()
            .over(partition_by=ct.c.member_key, order_by=(cp.c.in_home_date.desc(), cp.c.id.desc()))
            .label("edition")
        )
        shown = (
            select(Member.member_id, Title.title_id, rank)
            .select_from(ct)
            .join(cp, cp.c.id == ct.c.campaign_id)
            .join(Member, Member.id == ct.c.member_key)
            .join(Title, Title.id == ct.c.title_key)
            .where(Member.member_id.in_(chunk), *where)
            .subquery()
        )
        for member_id, title_id in connection.execute(
            select(shown.c.member_id, shown.c.title_id).where(shown.c.edition <= editions)
        ):
            out[member_id].add(title_id)
    return {m: frozenset(t) for m, t in out.items()}


def shown_titles(
    connection: Connection, campaign_id: int, member_ids: Sequence[str] | None = None
) -> dict[str, list[ShownTitle]]:
    """member_id → what the campaign's editions showed the member, main first then the picks in
    page order (every member with rows, or only ``member_ids``)."""
    stmt = (
        select(
            Member.member_id, ContactTitle.contact_id, ContactTitle.campaign_id, ContactTitle.member_key,
            Title.title_id, ContactTitle.role, ContactTitle.position, ContactTitle.price,
        )
        .join(Member, Member.id == ContactTitle.member_key)
        .join(Title, Title.id == ContactTitle.title_key)
        .where(ContactTitle.campaign_id == campaign_id)
        .order_by(ContactTitle.contact_id, ContactTitle.position)
    )
    out: dict[str, list[ShownTitle]] = defaultdict(list)
    chunks = [None] if member_ids is None else list(in_chunks(list(member_ids)))
    for chunk in chunks:
        query = stmt if chunk is None else stmt.where(Member.member_id.in_(chunk))
        for member_id, contact_id, campaign, member_key, title_id, role, position, price in connection.execute(query):
            out[member_id].append(ShownTitle(
                int(contact_id), int(campaign), int(member_key), title_id, role, int(position),
                None if price is None else Decimal(str(price)),
            ))  # fmt: skip
    return dict(out)


def _as_date(value: Any) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value)[:10])
