"""The main selection of a campaign: members' replies, and the negative option's auto-ship lines.

Each mailed contact's edition features one title as its main selection (a ``contact_titles``
row with role ``main``, written when the edition renders). A member may decline it before
the reply deadline (``selection_replies``) or order it; under the club's negative option a
member who did neither is sent it and billed: an **auto-ship** order line
(``purchases.kind = 'autoship'``) with the deterministic line id
``autoship:<campaign id>:<member key>``, so that shipping twice writes nothing twice.

A return of an auto-shipped title is an ordinary order line with a negative quantity
(whatever its kind): the member's negative line of the title dated at or after the
auto-ship. :func:`active_order_line` (defined in :mod:`recsys.storage.line_kinds`, importable
from here) is the SQL test the campaign loop uses to leave auto-ship lines and those returns
out of the active orders' effect — and the value model, the RFM and the category affinities
out of members' own buying; :func:`autoship_lines` reads them apart, with their returns, for
the report. A campaign's auto-ship lines are found by their line id's prefix, read as a range
in byte order from an index (``_campaign_autoships``: exact under any collation).

Timestamps (``replied_at``, ``purchased_at``) are stored naive UTC, like every stored
timestamp; turning them into the club's calendar days (the reply deadline is one) is the
caller's: :meth:`recsys.settings.CampaignSettings.club_date`.

Every function takes a ``Connection``; the caller owns the transaction.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import (
    ColumnElement,
    Connection,
    Float,
    FromClause,
    Table,
    and_,
    cast,
    exists,
    func,
    literal,
    select,
)

from recsys.storage.bulk import in_chunks
from recsys.storage.line_kinds import AUTOSHIP, active_order_line, is_autoship
from recsys.storage.purchases import insert_purchase_rows
from recsys.storage.schema import (
    CampaignContact,
    CampaignMatch,
    ContactTitle,
    Member,
    Purchase,
    SelectionReply,
    Title,
    table_of,
)

__all__ = [  # AUTOSHIP and active_order_line are defined in line_kinds and kept importable from here
    "AUTOSHIP",
    "DECLINED",
    "AutoshipLines",
    "AutoshipOrder",
    "MailedSelection",
    "Reply",
    "active_order_line",
    "autoship_line_id",
    "autoship_lines",
    "autoship_matches",
    "mailed_selections",
    "main_title_order_times",
    "main_title_orders",
    "record_decline",
    "replies",
    "shipped_member_keys",
    "write_autoships",
]

DECLINED = "declined"


def autoship_line_id(campaign_id: int, member_key: int) -> str:
    """The one auto-ship line a member can get from a campaign (idempotent writes key on it)."""
    return f"autoship:{campaign_id}:{member_key}"


def _autoship_prefix(campaign_id: int) -> str:
    return f"autoship:{campaign_id}:"


def _campaign_autoships(connection: Connection, purchases: FromClause, campaign_id: int) -> ColumnElement[bool]:
    """SQL, true for the campaign's auto-ship lines of ``purchases`` (the table or an alias): the
    auto-ship kind and a line id starting with ``autoship:<campaign id>:``.

    The prefix is tested as the range ``[prefix, prefix with its last character's successor)`` in
    byte order, which holds exactly the strings that start with it (every line id is ASCII here and
    no character lies between ':' and ';'). Byte order is what SQLite's text comparison is, and what
    ``COLLATE "C"`` gives PostgreSQL whatever the database's collation (under a non-C collation the
    unique index on line_id is in another order, punctuation may even be ignored, and LIKE 'prefix%'
    cannot use it). Both ends are served by an index: SQLite's unique index on line_id, PostgreSQL's
    partial ``ix_purchases_autoship_line_id`` (migration 0012) — no scan of the whole table."""
    prefix = _autoship_prefix(campaign_id)
    past = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    line_id: ColumnElement[str] = purchases.c.line_id
    if connection.dialect.name == "postgresql":
        line_id = line_id.collate("C")
    return and_(is_autoship(purchases), line_id >= prefix, line_id < past)


def _insert_one(connection: Connection, table: Table, row: dict[str, Any]) -> bool:
    """Insert one row unless it conflicts with a stored one; True when inserted."""
    stmt: Any
    if connection.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        stmt = pg_insert(table).values(**row).on_conflict_do_nothing()
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        stmt = sqlite_insert(table).values(**row).on_conflict_do_nothing()
    return bool(connection.execution_options(preserve_rowcount=True).execute(stmt).rowcount == 1)


def _as_date(value: Any) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value)[:10])


def _as_datetime(value: Any) -> dt.datetime:
    return value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))


# ------------------------------------------------------------------ replies


@dataclass(frozen=True)
class Reply:
    member_key: int
    reply: str
    replied_at: dt.datetime
    source: str


def record_decline(
    connection: Connection, campaign_id: int, member_key: int, *, replied_at: dt.datetime, source: str
) -> bool:
    """The member declined the campaign's main selection; True when new (a second decline keeps the first)."""
    return _insert_one(
        connection,
        table_of(SelectionReply),
        {"campaign_id": campaign_id, "member_key": member_key, "reply": DECLINED,
         "replied_at": replied_at, "source": source},
    )


def replies(connection: Connection, campaign_id: int) -> dict[int, Reply]:
    """member key → the member's reply to the campaign's main selection."""
    rows = connection.execute(
        select(SelectionReply.member_key, SelectionReply.reply, SelectionReply.replied_at, SelectionReply.source)
        .where(SelectionReply.campaign_id == campaign_id)
    )
    return {int(k): Reply(int(k), str(r), _as_datetime(at), str(s)) for k, r, at, s in rows}


# ------------------------------------------------------------------ what the negative option decides on


@dataclass(frozen=True)
class MailedSelection:
    """A member mailed the campaign's edition: their contact, its in-home date and its main selection."""

    member_key: int
    member_id: str
    member_status: str
    contact_id: int
    in_home: dt.date
    title_key: int | None  # None: the edition recorded no main selection
    price: Decimal | None
    in_stock: bool


def mailed_selections(
    connection: Connection, campaign_id: int, default_in_home: dt.date, *, member_key: int | None = None
) -> list[MailedSelection]:
    """Every member with a mailed contact in the campaign (or only ``member_key``), once: the first
    mailed contact (by id) that has a main selection, else the first mailed contact (then
    ``title_key`` is None)."""
    titles = table_of(Title)
    only = [] if member_key is None else [CampaignContact.member_key == member_key]
    rows = connection.execute(
        select(
            CampaignContact.member_key, Member.member_id, Member.status, CampaignContact.id,
            CampaignContact.in_home_date, ContactTitle.title_key,
            func.coalesce(ContactTitle.price, titles.c.price),  # as printed; rows written before 0011: today's
            titles.c.in_stock,
        )
        .join(Member, Member.id == CampaignContact.member_key)
        .outerjoin(ContactTitle, and_(ContactTitle.contact_id == CampaignContact.id, ContactTitle.role == "main"))
        .outerjoin(titles, titles.c.id == ContactTitle.title_key)
        .where(CampaignContact.campaign_id == campaign_id, CampaignContact.arm == "mailed", *only)
        .order_by(CampaignContact.member_key, CampaignContact.id)
    )
    chosen: dict[int, MailedSelection] = {}
    for key, member_id, status, contact_id, in_home, title_key, price, in_stock in rows:
        known = chosen.get(int(key))
        if known is not None and (known.title_key is not None or title_key is None):
            continue
        chosen[int(key)] = MailedSelection(
            member_key=int(key), member_id=str(member_id), member_status=str(status), contact_id=int(contact_id),
            in_home=default_in_home if in_home is None else _as_date(in_home),
            title_key=None if title_key is None else int(title_key),
            price=None if price is None else Decimal(str(price)), in_stock=bool(in_stock),
        )
    return list(chosen.values())


def main_title_order_times(
    connection: Connection, campaign_id: int, until: dt.datetime
) -> dict[int, list[dt.datetime]]:
    """member key → when the member ordered their main selection of the campaign (own orders with a
    positive quantity, before ``until``; naive UTC, as stored), sorted."""
    purchases = table_of(Purchase)
    rows = connection.execute(
        select(ContactTitle.member_key, purchases.c.purchased_at)
        .select_from(ContactTitle)
        .join(
            purchases,
            and_(purchases.c.member_key == ContactTitle.member_key, purchases.c.title_key == ContactTitle.title_key),
        )
        .where(
            ContactTitle.campaign_id == campaign_id,
            ContactTitle.role == "main",
            purchases.c.quantity > 0,
            ~is_autoship(purchases),
            purchases.c.purchased_at < until,
        )
    )
    out: dict[int, list[dt.datetime]] = defaultdict(list)
    for key, at in rows:
        out[int(key)].append(_as_datetime(at))
    return {k: sorted(times) for k, times in out.items()}


def main_title_orders(connection: Connection, campaign_id: int, until: dt.date) -> dict[int, list[dt.date]]:
    """member key → the UTC days the member ordered their main selection of the campaign (own orders
    with a positive quantity, before ``until`` 00:00 UTC), sorted. The negative option reads
    :func:`main_title_order_times` and takes the club's days of them."""
    moment = dt.datetime.combine(until, dt.time())
    return {
        k: [at.date() for at in times] for k, times in main_title_order_times(connection, campaign_id, moment).items()
    }


def shipped_member_keys(connection: Connection, campaign_id: int) -> set[int]:
    """Members already sent the campaign's main selection under the negative option."""
    purchases = table_of(Purchase)
    rows = connection.scalars(
        select(purchases.c.member_key).where(_campaign_autoships(connection, purchases, campaign_id))
    )
    return {int(k) for k in rows}


@dataclass(frozen=True)
class AutoshipOrder:
    """One auto-ship to write: the member's main selection, one unit at its price."""

    member_key: int
    title_key: int
    unit_price: Decimal
    shipped_on: dt.date


def write_autoships(connection: Connection, campaign_id: int, orders: Sequence[AutoshipOrder]) -> int:
    """Write the auto-ship order lines; a member already shipped by this campaign is skipped (same
    line id). Returns how many lines this call wrote."""
    rows = [
        {
            "line_id": autoship_line_id(campaign_id, o.member_key),
            "order_id": autoship_line_id(campaign_id, o.member_key),
            "member_key": o.member_key, "title_key": o.title_key, "quantity": 1, "unit_price": o.unit_price,
            "purchased_at": dt.datetime.combine(o.shipped_on, dt.time()), "channel": "mail",
            "key_code": None, "kind": AUTOSHIP,
        }
        for o in orders
    ]
    return len(insert_purchase_rows(connection, rows))


# ------------------------------------------------------------------ active orders and auto-ships apart


@dataclass(frozen=True)
class AutoshipLines:
    """A campaign's auto-ship lines with their returns to date, one entry per line.

    ``contact_id`` is the mailed contact whose main selection was shipped (-1 when none is
    recorded any more); ``returned_units`` is capped at the units shipped; money is net of nothing
    (``value`` the shipped units × price, ``returned_value`` the returns' value, positive)."""

    purchase_id: npt.NDArray[np.int64]
    member_key: npt.NDArray[np.int64]
    title_key: npt.NDArray[np.int64]
    contact_id: npt.NDArray[np.int64]
    shipped_on: list[dt.date]
    units: npt.NDArray[np.int64]
    value: npt.NDArray[np.float64]
    returned_units: npt.NDArray[np.int64]
    returned_value: npt.NDArray[np.float64]

    def __len__(self) -> int:
        return int(self.purchase_id.size)


def autoship_lines(connection: Connection, campaign_id: int) -> AutoshipLines:
    """The campaign's auto-ship lines, the contact each came from, and their returns to date."""
    purchases = table_of(Purchase)
    shipped = purchases.alias("shipped")
    returns = purchases.alias("returned")
    own = purchases.alias("own_line")
    lines = (
        select(shipped.c.id, shipped.c.member_key, shipped.c.title_key, shipped.c.quantity, shipped.c.unit_price,
               shipped.c.purchased_at)
        .where(_campaign_autoships(connection, shipped, campaign_id))
        .subquery()
    )
    rows = connection.execute(
        select(
            lines.c.id, lines.c.member_key, lines.c.purchased_at, lines.c.quantity, lines.c.title_key,
            cast(lines.c.quantity * lines.c.unit_price, Float),
            func.coalesce(func.sum(-returns.c.quantity), 0),
            func.coalesce(func.sum(cast(-returns.c.quantity * returns.c.unit_price, Float)), 0.0),
        )
        .select_from(lines)
        .outerjoin(
            returns,
            and_(
                returns.c.member_key == lines.c.member_key,
                returns.c.title_key == lines.c.title_key,
                returns.c.quantity < 0,
                returns.c.purchased_at >= lines.c.purchased_at,
                ~exists(select(literal(1)).select_from(own).where(  # not the return of their own later order
                    own.c.member_key == lines.c.member_key, own.c.title_key == lines.c.title_key,
                    own.c.quantity > 0, ~is_autoship(own),
                    own.c.purchased_at > lines.c.purchased_at, own.c.purchased_at <= returns.c.purchased_at,
                )),
            ),
        )
        .group_by(lines.c.id, lines.c.member_key, lines.c.purchased_at, lines.c.quantity, lines.c.title_key,
                  lines.c.unit_price)
        .order_by(lines.c.id)
    ).all()
    contact_of = _main_contacts(connection, campaign_id, [int(r[1]) for r in rows])
    n = len(rows)
    units = np.fromiter((int(r[3]) for r in rows), dtype=np.int64, count=n)
    value = np.fromiter((float(r[5] or 0.0) for r in rows), dtype=np.float64, count=n)
    returned = np.fromiter((int(r[6] or 0) for r in rows), dtype=np.int64, count=n)
    returned_value = np.fromiter((float(r[7] or 0.0) for r in rows), dtype=np.float64, count=n)
    capped = np.minimum(returned, units)
    # a member who returned more units than were shipped returned something else too: count the shipment's value
    with np.errstate(invalid="ignore", divide="ignore"):
        returned_value = np.where(returned > units, returned_value * capped / np.maximum(returned, 1), returned_value)
    return AutoshipLines(
        purchase_id=np.fromiter((int(r[0]) for r in rows), dtype=np.int64, count=n),
        member_key=np.fromiter((int(r[1]) for r in rows), dtype=np.int64, count=n),
        title_key=np.fromiter((int(r[4]) for r in rows), dtype=np.int64, count=n),
        contact_id=np.fromiter((contact_of.get(int(r[1]), -1) for r in rows), dtype=np.int64, count=n),
        shipped_on=[_as_datetime(r[2]).date() for r in rows],
        units=units,
        value=value,
        returned_units=capped,
        returned_value=returned_value,
    )


def _main_contacts(connection: Connection, campaign_id: int, member_keys: Iterable[int]) -> dict[int, int]:
    """member key → the first mailed contact of the campaign with a main selection."""
    out: dict[int, int] = {}
    for chunk in in_chunks(sorted(set(member_keys))):
        rows = connection.execute(
            select(ContactTitle.member_key, func.min(ContactTitle.contact_id))
            .join(CampaignContact, CampaignContact.id == ContactTitle.contact_id)
            .where(
                ContactTitle.campaign_id == campaign_id,
                ContactTitle.role == "main",
                CampaignContact.arm == "mailed",
                ContactTitle.member_key.in_(chunk),
            )
            .group_by(ContactTitle.member_key)
        )
        out.update({int(k): int(c) for k, c in rows})
    return out


def autoship_matches(connection: Connection, campaign_id: int) -> tuple[int, float]:
    """Auto-ship lines and their returns among the campaign's matched lines: (lines, net value);
    the matchback totals of the report leave them out."""
    matches = table_of(CampaignMatch)
    purchases = table_of(Purchase)
    row = connection.execute(
        select(func.count(func.distinct(purchases.c.id)), func.sum(cast(purchases.c.quantity * purchases.c.unit_price, Float)))
        .where(
            purchases.c.id.in_(select(matches.c.purchase_id).where(matches.c.campaign_id == campaign_id)),
            ~active_order_line(purchases),
        )
    ).one()
    return int(row[0] or 0), float(row[1] or 0.0)
