"""Members and their purchases (order lines)."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Column,
    Date,
    DateTime,
    Integer,
    Numeric,
    String,
    Table,
    Text,
    and_,
    func,
    select,
)

from recsys.storage.campaigns import key_code_known
from recsys.storage.imports import fields as f
from recsys.storage.imports.source import Row
from recsys.storage.imports.spec import Check, Fields, ImportKind, RowTuple, known
from recsys.storage.schema import CHANNELS, Member, Purchase, Title, table_of
from recsys.text import has_unstorable

# --- members -------------------------------------------------------------------------------


def _parse_member(values: Row, limits: f.Limits) -> RowTuple:
    p = Fields(values)
    return p.done(
        (
            p(f.required_text, "member_id", 64),
            p(f.required_text, "name"),
            p(f.date, "joined_on", limits),
            p(f.channel),
            p(f.text, "address"),
            p(f.text, "postcode", max_len=32),
            p(f.text, "city"),
            p(f.integer, "birth_year", lo=1800, hi=limits.now.year),
            p(f.status),
        )
    )


MEMBER_COLUMNS = (
    "member_id",
    "name",
    "joined_on",
    "channel",
    "address",
    "postcode",
    "city",
    "birth_year",
    "status",
)


def _land_members(connection: Any, stage: Table, _child: Table | None, fresh: Any) -> int:
    result = connection.execution_options(preserve_rowcount=True).execute(
        table_of(Member).insert().from_select(
            list(MEMBER_COLUMNS),
            select(*(stage.c[c] for c in MEMBER_COLUMNS)).where(fresh).order_by(stage.c._line),
        )
    )
    return int(result.rowcount)


MEMBERS = ImportKind(
    name="members",
    required=("member_id", "name"),
    optional=MEMBER_COLUMNS[2:],
    key="member_id",
    stage_columns=[
        Column("member_id", String(64)),
        Column("name", Text),
        Column("joined_on", Date),
        Column("channel", String(8)),
        Column("address", Text),
        Column("postcode", String(32)),
        Column("city", Text),
        Column("birth_year", Integer),
        Column("status", String(8)),
    ],
    parse=_parse_member,
    present=lambda s: known(table_of(Member), table_of(Member).c.member_id, s.c.member_id),
    land=_land_members,
)


# --- purchases -----------------------------------------------------------------------------

_PRICE = re.compile(r"^\d{1,10}(\.\d{1,2})?$")
_CHANNELS = frozenset(CHANNELS)


def _parse_purchase(values: Row, limits: f.Limits) -> RowTuple:
    """The fast path for well-formed lines; anything unusual goes to the thorough parser."""
    try:
        line_id = values["line_id"].strip()
        member_id = values["member_id"].strip()
        title_id = values["title_id"].strip()
        quantity = int(values["quantity"])
        price = (values.get("unit_price") or "").strip()
        channel = (values.get("channel") or "").strip() or "web"
        order_id = (values.get("order_id") or "").strip()
        key_code = (values.get("key_code") or "").strip()
        if (
            0 < len(line_id) <= 96
            and 0 < len(member_id) <= 64
            and 0 < len(title_id) <= 64
            and quantity != 0
            and -1_000_000 <= quantity <= 1_000_000
            and (not price or _PRICE.match(price))
            and channel in _CHANNELS
            and len(order_id) <= 64
            and len(key_code) <= 32
            and "__extra__" not in values
            and not has_unstorable(line_id + member_id + title_id + order_id + key_code)
        ):
            purchased_at = dt.datetime.fromisoformat(values["purchased_at"].strip())
            if purchased_at.tzinfo is None and limits.earliest <= purchased_at <= limits.latest:
                return (
                    line_id,
                    order_id or _order_of(line_id),
                    member_id,
                    title_id,
                    purchased_at,
                    quantity,
                    Decimal(price) if price else None,
                    channel,
                    key_code or None,
                )
    except (KeyError, ValueError, AttributeError, TypeError):  # e.g. a short row's None
        pass
    return _parse_purchase_thoroughly(values, limits)


def _order_of(line_id: str) -> str:
    return line_id.rpartition("-")[0] or line_id


def _parse_purchase_thoroughly(values: Row, limits: f.Limits) -> RowTuple:
    p = Fields(values)
    quantity = p(f.integer, "quantity", lo=-1_000_000, hi=1_000_000)
    if quantity is None and not any(e.field == "quantity" for e in p.errors):
        p.errors.append(f.FieldError("quantity", "is required"))
    if quantity == 0:
        p.errors.append(f.FieldError("quantity", "is 0 (returns are negative, sales positive)"))
    line_id = p(f.required_text, "line_id", 96)
    order_id = p(f.text, "order_id", max_len=64)
    return p.done(
        (
            line_id,
            order_id if order_id is not None else (_order_of(line_id) if line_id else None),
            p(f.required_text, "member_id", 64),
            p(f.required_text, "title_id", 64),
            p(f.timestamp, "purchased_at", limits),
            quantity,
            p(f.money, "unit_price"),
            p(f.channel, default="web"),
            p(f.text, "key_code", max_len=32),
        )
    )


def _land_purchases(connection: Any, stage: Table, _child: Table | None, fresh: Any) -> int:
    members, titles = table_of(Member), table_of(Title)
    select_rows = (
        select(
            stage.c.line_id,
            stage.c.order_id,
            members.c.id,
            titles.c.id,
            stage.c.quantity,
            func.coalesce(stage.c.unit_price, titles.c.price, 0),
            stage.c.purchased_at,
            stage.c.channel,
            stage.c.key_code,
        )
        .select_from(
            stage.join(members, members.c.member_id == stage.c.member_id).join(
                titles, titles.c.title_id == stage.c.title_id
            )
        )
        .where(fresh)
        .order_by(stage.c._line)
    )
    result = connection.execution_options(preserve_rowcount=True).execute(
        table_of(Purchase).insert().from_select(
            [
                "line_id",
                "order_id",
                "member_key",
                "title_key",
                "quantity",
                "unit_price",
                "purchased_at",
                "channel",
                "key_code",
            ],
            select_rows,
        )
    )
    return int(result.rowcount)


PURCHASES = ImportKind(
    name="purchases",
    required=("line_id", "member_id", "title_id", "purchased_at", "quantity"),
    optional=("unit_price", "channel", "order_id", "key_code"),
    key="line_id",
    stage_columns=[
        Column("line_id", String(96)),
        Column("order_id", String(64)),
        Column("member_id", String(64)),
        Column("title_id", String(64)),
        Column("purchased_at", DateTime),
        Column("quantity", Integer),
        Column("unit_price", Numeric(12, 2)),
        Column("channel", String(8)),
        Column("key_code", String(32)),
    ],
    parse=_parse_purchase,
    present=lambda s: known(table_of(Purchase), table_of(Purchase).c.line_id, s.c.line_id),
    land=_land_purchases,
    extra_index=("member_id", "title_id"),
    checks=[
        Check(
            "member_id",
            lambda s, _c: ~known(table_of(Member), table_of(Member).c.member_id, s.c.member_id),
            lambda s: s.c.member_id,
            lambda v: f"unknown member '{v}' (import the member first)",
        ),
        Check(
            "title_id",
            lambda s, _c: ~known(table_of(Title), table_of(Title).c.title_id, s.c.title_id),
            lambda s: s.c.title_id,
            lambda v: f"unknown title '{v}' (import the title first)",
        ),
        Check(
            "key_code",
            lambda s, _c: and_(s.c.key_code.is_not(None), ~key_code_known(s.c.key_code)),
            lambda s: s.c.key_code,
            lambda v: f"unknown key code '{v}' (on no campaign's order form)",
            clear="key_code",
        ),
    ],
)
