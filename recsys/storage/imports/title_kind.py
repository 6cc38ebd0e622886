"""Titles and their categories (codes, or ``scheme:label`` pairs resolved through the mappings)."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    Integer,
    Numeric,
    String,
    Table,
    Text,
    func,
    select,
)

from recsys.storage.imports import fields as f
from recsys.storage.imports.source import Row
from recsys.storage.imports.spec import Check, Fields, ImportKind, RowTuple, known
from recsys.storage.schema import Category, CategoryMapping, Title, TitleCategory, table_of

# --- titles --------------------------------------------------------------------------------

TITLE_COLUMNS = (
    "title_id",
    "title",
    "author",
    "publisher",
    "language",
    "price",
    "published_on",
    "in_stock",
    "blurb",
    "cover",
)


def _parse_title(values: Row, limits: f.Limits) -> RowTuple:
    p = Fields(values)
    return p.done(
        (
            p(f.required_text, "title_id", 64),
            p(f.required_text, "title"),
            p(f.text, "author"),
            p(f.text, "publisher"),
            p(f.text, "language", max_len=16),
            p(f.money, "price"),
            p(f.published, "published_on", limits),
            p(f.boolean, "in_stock", True),
            p(f.text, "blurb"),
            p(f.text, "cover"),
            p(f.text, "categories"),
        )
    )


def category_refs(raw: str) -> list[tuple[str | None, str | None, str | None]]:
    """A ``categories`` field: ``;``-separated codes or ``scheme:label`` pairs, the first primary,
    as (code, scheme, label) with either the code or the scheme and label set."""
    out: list[tuple[str | None, str | None, str | None]] = []
    for item in (p.strip() for p in raw.split(";") if p.strip()):
        scheme, sep, label = item.partition(":")
        out.append((None, scheme.strip(), label.strip()) if sep else (item, None, None))
    return out


def _title_categories(line: int, staged: dict[str, Any]) -> list[RowTuple]:
    """``categories``: ``;``-separated codes or ``scheme:label`` pairs; the first is primary."""
    title_id = staged["title_id"]
    return [
        (line, title_id, position, code, scheme, label, None)
        for position, (code, scheme, label) in enumerate(category_refs(staged.get("categories") or ""))
    ]


def rejected_outside_labels(path: Path) -> Counter[tuple[str, str]]:
    """(scheme, label) → rejected rows of the rejects file at ``path`` whose ``categories`` name it
    (a titles rejects file; any other file has no such column and gives nothing)."""
    found: Counter[tuple[str, str]] = Counter()
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            if "categories" not in (row.get("field") or "").split(";"):
                continue
            found.update({(s, lb) for _c, s, lb in category_refs(row.get("categories") or "") if s and lb})
    return found


def _land_titles(connection: Any, stage: Table, child: Table | None, fresh: Any) -> int:
    titles = table_of(Title)
    result = connection.execution_options(preserve_rowcount=True).execute(
        titles.insert().from_select(
            list(TITLE_COLUMNS),
            select(*(stage.c[c] for c in TITLE_COLUMNS)).where(fresh).order_by(stage.c._line),
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
        table_of(TitleCategory).insert().from_select(
            ["title_key", "category_code", "is_primary"],
            select(first.c.title_key, first.c.category_code, first.c.position == 0),
        )
    )
    return int(result.rowcount)


def _resolve_title_categories(connection: Any, _stage: Table, child: Table | None) -> None:
    """Codes resolve to themselves when known; ``scheme:label`` through category_mappings."""
    assert child is not None
    categories, mappings = table_of(Category), table_of(CategoryMapping)
    connection.execute(
        child.update()
        .where(child.c.code.is_not(None), known(categories, categories.c.code, child.c.code))
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
        "author",
        "publisher",
        "language",
        "price",
        "published_on",
        "in_stock",
        "categories",
        "blurb",
        "cover",
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
    present=lambda s: known(table_of(Title), table_of(Title).c.title_id, s.c.title_id),
    land=_land_titles,
    mark_new=True,
    child_columns=[
        Column("title_id", String(64)),
        Column("position", Integer),
        Column("code", String(64)),
        Column("scheme", String(64)),
        Column("label", String(255)),
        Column("resolved", String(64)),
    ],
    children=_title_categories,
    prepare=_resolve_title_categories,
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
