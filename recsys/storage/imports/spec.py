"""How an import format is described: columns, row parsing, staging tables, checks, landing.

Each kind parses a row in Python (types, ranges, enums), stages the good rows in
a temporary table, checks references with set-based SQL (unknown member, title,
category, mapping; a key twice in the file) and lands the rows that passed with
one ``INSERT … SELECT``. The loader (:mod:`.loader`) drives these steps.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    Column,
    ColumnElement,
    Integer,
    MetaData,
    Table,
    exists,
    literal,
    select,
)

from recsys.storage.imports import fields as f
from recsys.storage.imports.source import Row

RowTuple = tuple[Any, ...]


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
    # With --skip-invalid, clear this optional column and land the row (the rejects file
    # still says why) instead of leaving the row out.
    clear: str | None = None


@dataclass(frozen=True)
class ImportKind:
    name: str
    required: tuple[str, ...]
    optional: tuple[str, ...]
    key: str  # unique per file and in the target
    stage_columns: Sequence[Column[Any]]
    parse: Callable[[Row, f.Limits], RowTuple]  # a row's values → its staged tuple, or RowInvalid
    present: Callable[[Table], ColumnElement[bool]]  # the staged row's key is already stored
    # (connection, stage, child, fresh) -> rows inserted; ``fresh`` selects the staged rows to land
    land: Callable[[Any, Table, Table | None, ColumnElement[bool]], int]
    checks: Sequence[Check] = ()
    child_columns: Sequence[Column[Any]] = ()
    # (line, staged row) -> child rows, read back from the staging table after loading
    children: Callable[[int, dict[str, Any]], list[RowTuple]] | None = None
    prepare: Callable[[Any, Table, Table | None], None] | None = None
    extra_index: Sequence[str] = field(default_factory=tuple)
    mark_new: bool = False  # flag the rows to land in ``_new`` first (when landing takes several steps)

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


def known(target: Any, target_col: Any, stage_col: Any) -> ColumnElement[bool]:
    return exists(select(literal(1)).select_from(target).where(target_col == stage_col))
