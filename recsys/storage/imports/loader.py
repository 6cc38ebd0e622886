"""Driving one import: parse and stage, check, then land the good rows or nothing.

The caller owns the transaction. :func:`import_rows` raises
:class:`~recsys.errors.ImportRejectedError` when the file has bad rows and
``skip_invalid`` is off; the caller's rollback then leaves every table as it was.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Index, and_, exists, func, literal, select

from recsys.errors import ImportRejectedError
from recsys.settings import ImportSettings
from recsys.storage.bulk import bulk_insert
from recsys.storage.club import analyze_club
from recsys.storage.imports.fields import Limits
from recsys.storage.imports.report import ImportSummary, RejectsWriter, RowError
from recsys.storage.imports.source import RowSource
from recsys.storage.imports.spec import Check, ImportKind, RowInvalid, RowTuple, make_stage
from recsys.storage.schema import ImportRun, table_of

Progress = Callable[[int], None]


@dataclass(frozen=True)
class ImportOptions:
    skip_invalid: bool = False
    rejects_path: Path | None = None
    batch_size: int = 50_000
    max_reported_errors: int = 20
    # the dates a row may hold (default: ImportSettings' bounds around the moment of the call)
    limits: Limits = field(default_factory=Limits.of)

    @classmethod
    def from_settings(cls, settings: ImportSettings, **options: Any) -> ImportOptions:
        return cls(
            batch_size=settings.batch_size,
            max_reported_errors=settings.max_reported_errors,
            limits=Limits.of(settings),
            **options,
        )


class _ErrorLog:
    """Every bad row goes to the rejects file; the first few are kept for display."""

    def __init__(self, summary: ImportSummary, rejects: RejectsWriter, keep: int) -> None:
        self.summary = summary
        self.rejects = rejects
        self.keep = keep
        self.bad_lines = 0
        self.flagged: set[int] = set()  # lines rejected by a check in SQL: counted once

    def add(self, line: int, errors: list[RowError], values: dict[str, str]) -> None:
        self.bad_lines += 1
        self.rejects.write(line, errors, values)
        if len(self.summary.errors) < self.keep:
            self.summary.errors.extend(errors[: self.keep - len(self.summary.errors)])

    def clear(self, line: int, errors: list[RowError], values: dict[str, str]) -> None:
        """A row that lands with a bad optional field cleared: in the rejects file all the same."""
        self.summary.cleared += 1
        self.rejects.write(line, errors, values)
        if len(self.summary.errors) < self.keep:
            self.summary.errors.extend(errors[: self.keep - len(self.summary.errors)])


def _stage_rows(
    kind: ImportKind, source: RowSource, summary: ImportSummary, log: _ErrorLog,
    progress: Progress | None, limits: Limits,
) -> Iterator[RowTuple]:
    for row in source.rows:
        summary.read += 1
        if progress is not None and summary.read % 10_000 == 0:
            progress(10_000)
        try:
            parsed = kind.parse(row.values, limits)
        except RowInvalid as exc:
            errors = [RowError(source.name, row.line, e.field, e.reason) for e in exc.errors]
            log.add(row.line, errors, row.values)
            continue
        yield (row.line, 0, 0, *parsed)
    if progress is not None:
        progress(summary.read % 10_000)


def _stage_children(connection: Connection, kind: ImportKind, stage: Any, child: Any, batch: int) -> None:
    """Read staged rows back page by page and stage their child rows (title categories)."""
    assert kind.children is not None
    last = 0
    child_columns = [c.name for c in child.columns]
    while True:
        page = connection.execute(
            select(stage).where(stage.c._line > last).order_by(stage.c._line).limit(batch)
        ).mappings().all()
        if not page:
            return
        rows = [c for r in page for c in kind.children(r["_line"], dict(r))]
        bulk_insert(connection, child.name, child_columns, rows, batch_size=batch)
        last = page[-1]["_line"]


def _duplicate_check(kind: ImportKind) -> Check:
    def condition(stage: Any, _child: Any) -> Any:
        earlier = stage.alias("earlier")
        return exists(
            select(literal(1)).where(
                earlier.c[kind.key] == stage.c[kind.key], earlier.c._line < stage.c._line
            )
        )

    def value(stage: Any) -> Any:
        earlier = stage.alias("first")
        return (
            stage.c[kind.key],
            select(func.min(earlier.c._line))
            .where(earlier.c[kind.key] == stage.c[kind.key])
            .scalar_subquery(),
        )

    key = kind.key if kind.key != "mapping_key" else "scheme,label"
    return Check(
        kind.key if kind.key != "mapping_key" else "label",
        condition,
        value,
        lambda v: f"duplicate {key} '{str(v[0]).replace(chr(31), ',')}' (first on line {v[1]})",
    )


def _run_check(
    connection: Connection, check: Check, stage: Any, child: Any, source: RowSource, log: _ErrorLog,
    skip_invalid: bool = False,
) -> None:
    table = child if check.on_child else stage
    clearing = check.clear is not None and skip_invalid and not check.on_child
    condition = check.condition(stage, child)
    value = check.value(table)
    values = value if isinstance(value, tuple) else (value,)
    source_columns = [c for c in source.columns if c in stage.c]
    shown = [stage.c[c] for c in source_columns]
    query = select(table.c._line, *values).where(condition).order_by(table.c._line)
    if check.on_child:
        query = query.add_columns(*shown).join_from(child, stage, stage.c._line == child.c._line)
    else:
        query = query.add_columns(*shown)
    n = len(values)
    seen: set[int] = set()
    for row in connection.execute(query):
        line = row[0]
        raw = row[1 : 1 + n]
        reason = check.reason(raw if n > 1 else raw[0])
        if line in seen or line in log.flagged:  # one reason per line is enough to reject it
            continue
        seen.add(line)
        staged = {c: "" if v is None else str(v) for c, v in zip(source_columns, row[1 + n :], strict=True)}
        if clearing:
            log.clear(line, [RowError(source.name, line, check.field, f"{reason}; landed without it")], staged)
            continue
        log.flagged.add(line)
        log.add(line, [RowError(source.name, line, check.field, reason)], staged)
    if not seen:
        return
    if clearing:
        connection.execute(stage.update().where(condition).values({check.clear: None}))
        return
    if check.on_child:
        flagged = exists(select(literal(1)).select_from(child).where(and_(child.c._line == stage.c._line, condition)))
        connection.execute(stage.update().where(flagged).values(_bad=1))
    else:
        connection.execute(stage.update().where(condition).values(_bad=1))


def _count(connection: Connection, stage: Any, *where: Any) -> int:
    return int(connection.execute(select(func.count()).select_from(stage).where(*where)).scalar_one())


ANALYZE_AFTER_ROWS = 50_000
"""An import landing this many rows gathers the club tables' statistics on PostgreSQL
(:func:`recsys.storage.club.analyze_club`; seconds, where a planner without them read a
batch of editions' order lines by a sequential scan of every line)."""


def import_rows(
    connection: Connection,
    kind: ImportKind,
    source: RowSource,
    options: ImportOptions,
    *,
    progress: Progress | None = None,
    summary: ImportSummary | None = None,
) -> ImportSummary:
    """Import ``source`` as ``kind`` inside the caller's transaction; see the module docstring.

    An adapter that skips rows of its own (counted with ``summary.skip``) passes its summary in.
    """
    summary = summary or ImportSummary(kind.name, source.name)
    rejects = RejectsWriter(options.rejects_path, source.columns)
    log = _ErrorLog(summary, rejects, options.max_reported_errors)
    stage, child = make_stage(kind, uuid.uuid4().hex[:8])
    try:
        stage.create(connection)
        columns = [c.name for c in stage.columns]
        bulk_insert(
            connection, stage.name, columns,
            _stage_rows(kind, source, summary, log, progress, options.limits), batch_size=options.batch_size,
        )
        if connection.dialect.name == "postgresql":
            # hash joins need no index, but the planner needs row counts of a fresh temp table
            connection.exec_driver_sql(f"ANALYZE {stage.name}")
        else:
            for name in (kind.key, *kind.extra_index):
                Index(f"ix_{stage.name}_{name}", stage.c[name]).create(connection)
        if child is not None:
            child.create(connection)
            _stage_children(connection, kind, stage, child, options.batch_size)
        if kind.prepare is not None:
            kind.prepare(connection, stage, child)
        for check in (_duplicate_check(kind), *kind.checks):
            _run_check(connection, check, stage, child, source, log, options.skip_invalid)
        rejects.commit()  # every check has run: the rejects file is complete
        summary.errors.sort(key=lambda e: e.line)
        summary.rejected = log.bad_lines
        summary.rejects_path = options.rejects_path if log.bad_lines or summary.cleared else None
        if log.bad_lines and not options.skip_invalid:
            first = "; ".join(str(e) for e in summary.errors[:3])
            where = f" (all in {options.rejects_path})" if options.rejects_path else ""
            raise ImportRejectedError(
                f"{source.name}: {log.bad_lines} bad row(s), nothing was written{where}. {first}"
            )
        valid = _count(connection, stage, stage.c._bad == 0)
        if kind.mark_new:
            connection.execute(
                stage.update().where(stage.c._bad == 0, ~kind.present(stage)).values(_new=1)
            )
            fresh: Any = stage.c._new == 1
        else:
            fresh = and_(stage.c._bad == 0, ~kind.present(stage))
        summary.inserted = kind.land(connection, stage, child, fresh)
        summary.already_present = valid - summary.inserted
        if summary.inserted >= ANALYZE_AFTER_ROWS:
            analyze_club(connection)  # PostgreSQL: the planner's statistics before anything reads them
        summary.landed = True
        _record(connection, summary)
    finally:
        rejects.close()
    if child is not None:
        child.drop(connection)
    stage.drop(connection)
    return summary


def _record(connection: Connection, summary: ImportSummary) -> None:
    connection.execute(
        table_of(ImportRun).insert().values(
            kind=summary.kind,
            source=summary.source,
            started_at=dt.datetime.now(dt.UTC).replace(tzinfo=None),
            read=summary.read,
            inserted=summary.inserted,
            already_present=summary.already_present,
            rejected=summary.rejected,
            skipped=summary.skipped,
        )
    )
