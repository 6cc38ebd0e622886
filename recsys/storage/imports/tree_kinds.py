"""The category tree and the mappings of outside labels onto it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    Column,
    ColumnElement,
    Integer,
    String,
    Table,
    Text,
    and_,
    exists,
    literal,
    select,
)

from recsys.errors import BookclubError
from recsys.storage.imports import fields as f
from recsys.storage.imports.source import Row
from recsys.storage.imports.spec import Check, Fields, ImportKind, RowTuple, known
from recsys.storage.schema import Category, CategoryMapping, table_of

# --- categories ---------------------------------------------------------------------------


def _parse_category(values: Row, _limits: f.Limits) -> RowTuple:
    p = Fields(values)
    return p.done(
        (p(f.required_text, "code", 64), p(f.required_text, "name"), p(f.text, "parent_code", max_len=64), 0)
    )


def _mark_unplaced(connection: Any, stage: Table, _child: Table | None) -> None:
    """Flag staged categories whose parent chain never reaches a root or a stored category:
    a cycle, or a parent that is unknown or cannot be placed itself."""
    stored = set(connection.scalars(select(table_of(Category).c.code)))
    parents: dict[str, str | None] = {}
    for code, parent in connection.execute(
        select(stage.c.code, stage.c.parent_code).order_by(stage.c._line)
    ):
        parents.setdefault(code, parent)
    placed: dict[str, bool] = {}
    for code in parents:
        chain: list[str] = []
        current: str | None = code
        while current is not None and current not in placed and current not in stored:
            if current in chain or current not in parents:
                break  # a cycle, or a parent neither staged nor stored
            chain.append(current)
            current = parents[current]
        ok = current is None or current in stored or placed.get(current, False)
        for node in chain:
            placed[node] = ok
    unplaced = [code for code, ok in placed.items() if not ok]
    for start in range(0, len(unplaced), 500):
        connection.execute(
            stage.update().where(stage.c.code.in_(unplaced[start : start + 500])).values(unplaced=1)
        )


def _land_categories(connection: Any, stage: Table, _child: Table | None, fresh: Any) -> int:
    """Insert new categories parents first; their level follows from the parent's."""
    categories = table_of(Category)
    pending = select(stage).where(fresh)
    inserted: set[str] = set()
    rows = [dict(r._mapping) for r in connection.execute(pending)]
    known_levels = {
        code: level for code, level in connection.execute(select(categories.c.code, categories.c.level))
    }
    while rows:
        ready = [r for r in rows if r["parent_code"] is None or r["parent_code"] in known_levels]
        if not ready:  # the checks reject cycles and orphans before landing
            raise BookclubError(f"categories {sorted(r['code'] for r in rows)[:5]} cannot be placed in the tree")
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
    return len(inserted)


def _category_parent_unknown(stage: Table, _c: Table | None) -> ColumnElement[bool]:
    other = stage.alias("parent_stage")
    categories = table_of(Category)
    return and_(
        stage.c.parent_code.is_not(None),
        ~known(categories, categories.c.code, stage.c.parent_code),
        ~exists(select(literal(1)).select_from(other).where(other.c.code == stage.c.parent_code)),
    )


CATEGORIES = ImportKind(
    name="categories",
    required=("code", "name"),
    optional=("parent_code",),
    key="code",
    stage_columns=[
        Column("code", String(64)),
        Column("name", Text),
        Column("parent_code", String(64)),
        Column("unplaced", Integer),
    ],
    parse=_parse_category,
    prepare=_mark_unplaced,
    present=lambda s: known(table_of(Category), table_of(Category).c.code, s.c.code),
    land=_land_categories,
    mark_new=True,
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
        Check(
            "parent_code",
            lambda s, _c: s.c.unplaced == 1,
            lambda s: s.c.parent_code,
            lambda v: f"parent '{v}' does not reach the tree: a cycle, or a parent rejected on its own line",
        ),
    ],
)


# --- category mappings --------------------------------------------------------------------


def _parse_mapping(values: Row, _limits: f.Limits | None = None) -> RowTuple:
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


def _land_mappings(connection: Any, stage: Table, _child: Table | None, fresh: Any) -> int:
    result = connection.execution_options(preserve_rowcount=True).execute(
        table_of(CategoryMapping).insert().from_select(
            ["scheme", "label", "category_code"],
            select(stage.c.scheme, stage.c.label, stage.c.category_code).where(fresh),
        )
    )
    return int(result.rowcount)


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
    parse=lambda values, _limits: (*(r := _parse_mapping(values)), f"{r[0]}\x1f{r[1]}"),
    present=lambda s: exists(
        select(literal(1)).where(
            table_of(CategoryMapping).c.scheme == s.c.scheme,
            table_of(CategoryMapping).c.label == s.c.label,
        )
    ),
    land=_land_mappings,
    checks=[
        Check(
            "category_code",
            lambda s, _c: ~known(table_of(Category), table_of(Category).c.code, s.c.category_code),
            lambda s: s.c.category_code,
            lambda v: f"unknown category '{v}' (load the tree first: bookclub categories load-clc)",
        )
    ],
)
