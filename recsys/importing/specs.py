"""The five import formats: their columns, row parsing, staging table, checks and landing.

Each kind parses a row in Python (types, ranges, enums), stages the good rows in
a temporary table, checks references with set-based SQL (unknown member, title,
category, mapping; a key twice in the file) and lands the rows that passed with
one ``INSERT … SELECT``. The loader (:mod:`.loader`) drives these steps.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    ColumnElement,
    Date,
    DateTime,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    and_,
    exists,
    func,
    literal,
    select,
)

from recsys.importing import fields as f
from recsys.importing.source import Row
from recsys.schema import Category, CategoryMapping, Member, Purchase, Title, TitleCategory

RowTuple = tuple[Any, ...]
CURRENT_YEAR = dt.date.today().year


class RowInvalid(Exception):
    def __init__(self, errors: list[f.FieldError]) -> None:
        super().__init__("; ".join(str(e) for e in errors))
        self.errors = errors


class Fields:
    """Collects every field error of a row instead of stopping at the first."""

    def __init__(self, values: Row) -> None:
        self.values = values
        self.errors: list[f.FieldError] = []

    def __call__(self, parser: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return parser(self.values, *args, **kwargs)
        except f.FieldError as exc:
            self.errors.append(exc)
            return None

    def done(self, row: RowTuple) -> RowTuple:
        if "__extra__" in self.values:
            self.errors.append(f.FieldError("(row)", "more fields than the header has columns"))
        if self.errors:
            raise RowInvalid(self.errors)
        return row


@dataclass(frozen=True)
class Check:
    """Rows of the staging table matching ``condition`` are bad: ``reason(value)`` says why."""

    field: str
    condition: Callable[[Table, Table | None], ColumnElement[bool]]
    value: Callable[[Table], Any]
    reason: Callable[[Any], str]
    on_child: bool = False  # the condition is on the child staging table


@dataclass(frozen=True)
class ImportKind:
    name: str
    required: tuple[str, ...]
    optional: tuple[str, ...]
    key: str  # unique per file and in the target
    stage_columns: Sequence[Column[Any]]
    parse: Callable[[Row], RowTuple]
    present: Callable[[Table], ColumnElement[bool]]  # the staged row's key is already stored
    land: Callable[[Any, Table, Table | None], None]  # (connection, stage, child) -> None
    checks: Sequence[Check] = ()
    child_columns: Sequence[Column[Any]] = ()
    # (line, staged row) -> child rows, read back from the staging table after loading
    children: Callable[[int, dict[str, Any]], list[RowTuple]] | None = None
    prepare: Callable[[Any, Table, Table | None], None] | None = None
    extra_index: Sequence[str] = field(default_factory=tuple)

    @property
    def columns(self) -> tuple[str, ...]:
        return (*self.required, *self.optional)


def make_stage(kind: ImportKind, suffix: str) -> tuple[Table, Table | None]:
    """Temporary staging tables for ``kind``: ``_line`` and ``_bad``/``_new`` flags first."""
    metadata = MetaData()
    stage = Table(
        f"stage_{kind.name.replace('-', '_')}_{suffix}",
        metadata,
        Column("_line", Integer, primary_key=True),
        Column("_bad", Integer, nullable=False, default=0, server_default="0"),
        Column("_new", Integer, nullable=False, default=0, server_default="0"),
        *[Column(c.name, c.type) for c in kind.stage_columns],
        prefixes=["TEMPORARY"],
    )
    child = None
    if kind.child_columns:
        child = Table(
            f"stage_{kind.name.replace('-', '_')}_child_{suffix}",
            metadata,
            Column("_line", Integer, nullable=False, index=True),
            *[Column(c.name, c.type) for c in kind.child_columns],
            prefixes=["TEMPORARY"],
        )
    return stage, child


def _known(target: Any, target_col: Any, stage_col: Any) -> ColumnElement[bool]:
    return exists(select(literal(1)).select_from(target).where(target_col == stage_col))


# --- categories ---------------------------------------------------------------------------

def _parse_category(values: Row) -> RowTuple:
    p = Fields(values)
    return p.done(
        (p(f.required_text, "code", 64), p(f.required_text, "name"), p(f.text, "parent_code", max_len=64))
    )


def _land_categories(connection: Any, stage: Table, _child: Table | None) -> None:
    """Insert new categories parents first; their level follows from the parent's."""
    categories = Category.__table__
    depth = 1
    pending = select(stage).where(stage.c._new == 1)
    inserted: set[str] = set()
    rows = [dict(r._mapping) for r in connection.execute(pending)]
    known_levels = {
        code: level
        for code, level in connection.execute(select(categories.c.code, categories.c.level))
    }
    while rows:
        ready = [r for r in rows if r["parent_code"] is None or r["parent_code"] in known_levels]
        if not ready:
            break  # cycles were reported by the checks
        connection.execute(
            categories.insert(),
            [
                {
                    "code": r["code"],
                    "name": r["name"],
                    "parent_code": r["parent_code"],
                    "level": 1 if r["parent_code"] is None else known_levels[r["parent_code"]] + 1,
                }
                for r in ready
            ],
        )
        for r in ready:
            known_levels[r["code"]] = 1 if r["parent_code"] is None else known_levels[r["parent_code"]] + 1
            inserted.add(r["code"])
        rows = [r for r in rows if r["code"] not in inserted]
        depth += 1


def _category_parent_unknown(stage: Table, _c: Table | None) -> ColumnElement[bool]:
    other = stage.alias("parent_stage")
    categories = Category.__table__
    return and_(
        stage.c.parent_code.is_not(None),
        ~_known(categories, categories.c.code, stage.c.parent_code),
        ~exists(select(literal(1)).select_from(other).where(other.c.code == stage.c.parent_code)),
    )


CATEGORIES = ImportKind(
    name="categories",
    required=("code", "name"),
    optional=("parent_code",),
    key="code",
    stage_columns=[Column("code", String(64)), Column("name", Text), Column("parent_code", String(64))],
    parse=_parse_category,
    present=lambda s: _known(Category.__table__, Category.__table__.c.code, s.c.code),
    land=_land_categories,
    checks=[
        Check(
            "parent_code",
            _category_parent_unknown,
            lambda s: s.c.parent_code,
            lambda v: f"unknown parent category '{v}' (not in the file nor the database)",
        ),
        Check(
            "parent_code",
            lambda s, _c: s.c.parent_code == s.c.code,
            lambda s: s.c.code,
            lambda v: f"category '{v}' is its own parent",
        ),
    ],
)


# --- category mappings --------------------------------------------------------------------

def _parse_mapping(values: Row) -> RowTuple:
    p = Fields(values)
    return p.done(
        (
            p(f.required_text, "scheme", 64),
            p(f.required_text, "label", 255),
            p(f.required_text, "category_code", 64),
        )
    )


def _mapping_key(stage: Table) -> Any:
    return stage.c.scheme + literal("\x1f") + stage.c.label


def _land_mappings(connection: Any, stage: Table, _child: Table | None) -> None:
    connection.execute(
        CategoryMapping.__table__.insert().from_select(
            ["scheme", "label", "category_code"],
            select(stage.c.scheme, stage.c.label, stage.c.category_code).where(stage.c._new == 1),
        )
    )


CATEGORY_MAPPINGS = ImportKind(
    name="category-mappings",
    required=("scheme", "label", "category_code"),
    optional=(),
    key="mapping_key",
    stage_columns=[
        Column("scheme", String(64)),
        Column("label", String(255)),
        Column("category_code", String(64)),
        Column("mapping_key", String(320)),
    ],
    parse=lambda values: (*(r := _parse_mapping(values)), f"{r[0]}\x1f{r[1]}"),
    present=lambda s: exists(
        select(literal(1)).where(
            CategoryMapping.__table__.c.scheme == s.c.scheme,
            CategoryMapping.__table__.c.label == s.c.label,
        )
    ),
    land=_land_mappings,
    checks=[
        Check(
            "category_code",
            lambda s, _c: ~_known(Category.__table__, Category.__table__.c.code, s.c.category_code),
            lambda s: s.c.category_code,
            lambda v: f"unknown category '{v}' (load the tree first: bookclub categories load-clc)",
        )
    ],
)


# --- members -------------------------------------------------------------------------------

def _parse_member(values: Row) -> RowTuple:
    p = Fields(values)
    return p.done(
        (
            p(f.required_text, "member_id", 64),
            p(f.required_text, "name"),
            p(f.date, "joined_on"),
            p(f.channel),
            p(f.text, "address"),
            p(f.text, "postcode", max_len=32),
            p(f.text, "city"),
            p(f.integer, "birth_year", lo=1800, hi=CURRENT_YEAR),
            p(f.status),
        )
    )


MEMBER_COLUMNS = ("member_id", "name", "joined_on", "channel", "address", "postcode", "city", "birth_year", "status")


def _land_members(connection: Any, stage: Table, _child: Table | None) -> None:
    connection.execute(
        Member.__table__.insert().from_select(
            list(MEMBER_COLUMNS),
            select(*(stage.c[c] for c in MEMBER_COLUMNS)).where(stage.c._new == 1).order_by(stage.c._line),
        )
    )


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
    present=lambda s: _known(Member.__table__, Member.__table__.c.member_id, s.c.member_id),
    land=_land_members,
)


# --- titles --------------------------------------------------------------------------------

TITLE_COLUMNS = (
    "title_id", "title", "author", "publisher", "language", "price",
    "published_on", "in_stock", "blurb", "cover",
)


def _parse_title(values: Row) -> RowTuple:
    p = Fields(values)
    return p.done(
        (
            p(f.required_text, "title_id", 64),
            p(f.required_text, "title"),
            p(f.text, "author"),
            p(f.text, "publisher"),
            p(f.text, "language", max_len=16),
            p(f.money, "price"),
            p(f.date, "published_on"),
            p(f.boolean, "in_stock", True),
            p(f.text, "blurb"),
            p(f.text, "cover"),
            p(f.text, "categories"),
        )
    )


def _title_categories(line: int, staged: dict[str, Any]) -> list[RowTuple]:
    """``categories``: ``;``-separated codes or ``scheme:label`` pairs; the first is primary."""
    raw = staged.get("categories") or ""
    title_id = staged["title_id"]
    out: list[RowTuple] = []
    for position, item in enumerate(p.strip() for p in raw.split(";") if p.strip()):
        scheme, sep, label = item.partition(":")
        if sep:
            out.append((line, title_id, position, None, scheme.strip(), label.strip(), None))
        else:
            out.append((line, title_id, position, item, None, None, None))
    return out


def _land_titles(connection: Any, stage: Table, child: Table | None) -> None:
    titles = Title.__table__
    connection.execute(
        titles.insert().from_select(
            list(TITLE_COLUMNS),
            select(*(stage.c[c] for c in TITLE_COLUMNS)).where(stage.c._new == 1).order_by(stage.c._line),
        )
    )
    assert child is not None
    first = (
        select(
            titles.c.id.label("title_key"),
            child.c.resolved.label("category_code"),
            func.min(child.c.position).label("position"),
        )
        .select_from(
            child.join(stage, stage.c._line == child.c._line).join(
                titles, titles.c.title_id == stage.c.title_id
            )
        )
        .where(stage.c._new == 1)
        .group_by(titles.c.id, child.c.resolved)
        .subquery()
    )
    connection.execute(
        TitleCategory.__table__.insert().from_select(
            ["title_key", "category_code", "is_primary"],
            select(first.c.title_key, first.c.category_code, first.c.position == 0),
        )
    )


def _resolve_title_categories(connection: Any, child: Table) -> None:
    """Codes resolve to themselves when known; ``scheme:label`` through category_mappings."""
    categories, mappings = Category.__table__, CategoryMapping.__table__
    connection.execute(
        child.update()
        .where(child.c.code.is_not(None), _known(categories, categories.c.code, child.c.code))
        .values(resolved=child.c.code)
    )
    connection.execute(
        child.update()
        .where(child.c.scheme.is_not(None))
        .values(
            resolved=select(mappings.c.category_code)
            .where(mappings.c.scheme == child.c.scheme, mappings.c.label == child.c.label)
            .scalar_subquery()
        )
    )


def _unresolved_reason(value: Any) -> str:
    code, scheme, label = value
    if code is not None:
        return f"unknown category code '{code}'"
    return (
        f"label '{label}' of scheme '{scheme}' has no category mapping "
        "(add it with bookclub import category-mappings)"
    )


TITLES = ImportKind(
    name="titles",
    required=("title_id", "title"),
    optional=(
        "author", "publisher", "language", "price", "published_on", "in_stock",
        "categories", "blurb", "cover",
    ),
    key="title_id",
    stage_columns=[
        Column("title_id", String(64)),
        Column("title", Text),
        Column("author", Text),
        Column("publisher", Text),
        Column("language", String(16)),
        Column("price", Numeric(12, 2)),
        Column("published_on", Date),
        Column("in_stock", Boolean),
        Column("blurb", Text),
        Column("cover", Text),
        Column("categories", Text),
    ],
    parse=_parse_title,
    present=lambda s: _known(Title.__table__, Title.__table__.c.title_id, s.c.title_id),
    land=_land_titles,
    child_columns=[
        Column("title_id", String(64)),
        Column("position", Integer),
        Column("code", String(64)),
        Column("scheme", String(64)),
        Column("label", String(255)),
        Column("resolved", String(64)),
    ],
    children=_title_categories,
    prepare=lambda connection, _stage, child: _resolve_title_categories(connection, child),
    checks=[
        Check(
            "categories",
            lambda _s, c: c.c.resolved.is_(None),  # type: ignore[union-attr]
            lambda c: (c.c.code, c.c.scheme, c.c.label),
            _unresolved_reason,
            on_child=True,
        )
    ],
)


# --- purchases -----------------------------------------------------------------------------

def _parse_purchase(values: Row) -> RowTuple:
    p = Fields(values)
    quantity = p(f.integer, "quantity", lo=-1_000_000, hi=1_000_000)
    if quantity == 0:
        p.errors.append(f.FieldError("quantity", "is 0 (returns are negative, sales positive)"))
    line_id = p(f.required_text, "line_id", 96)
    order_id = p(f.text, "order_id", max_len=64)
    return p.done(
        (
            line_id,
            order_id if order_id is not None else (line_id.rpartition("-")[0] or line_id if line_id else None),
            p(f.required_text, "member_id", 64),
            p(f.required_text, "title_id", 64),
            p(f.timestamp, "purchased_at"),
            quantity,
            p(f.money, "unit_price"),
            p(f.channel, default="web"),
        )
    )


def _land_purchases(connection: Any, stage: Table, _child: Table | None) -> None:
    members, titles = Member.__table__, Title.__table__
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
        )
        .select_from(
            stage.join(members, members.c.member_id == stage.c.member_id).join(
                titles, titles.c.title_id == stage.c.title_id
            )
        )
        .where(stage.c._new == 1)
        .order_by(stage.c._line)
    )
    connection.execute(
        Purchase.__table__.insert().from_select(
            ["line_id", "order_id", "member_key", "title_key", "quantity", "unit_price",
             "purchased_at", "channel"],
            select_rows,
        )
    )


PURCHASES = ImportKind(
    name="purchases",
    required=("line_id", "member_id", "title_id", "purchased_at", "quantity"),
    optional=("unit_price", "channel", "order_id"),
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
    ],
    parse=_parse_purchase,
    present=lambda s: _known(Purchase.__table__, Purchase.__table__.c.line_id, s.c.line_id),
    land=_land_purchases,
    extra_index=("member_id", "title_id"),
    checks=[
        Check(
            "member_id",
            lambda s, _c: ~_known(Member.__table__, Member.__table__.c.member_id, s.c.member_id),
            lambda s: s.c.member_id,
            lambda v: f"unknown member '{v}' (import the member first)",
        ),
        Check(
            "title_id",
            lambda s, _c: ~_known(Title.__table__, Title.__table__.c.title_id, s.c.title_id),
            lambda s: s.c.title_id,
            lambda v: f"unknown title '{v}' (import the title first)",
        ),
    ],
)

KINDS: dict[str, ImportKind] = {
    k.name: k for k in (CATEGORIES, CATEGORY_MAPPINGS, MEMBERS, TITLES, PURCHASES)
}
