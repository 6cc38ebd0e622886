"""Reading CSV and gzip'd CSV one row at a time, with the line each row starts on."""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from recsys.errors import BookclubError

Row = dict[str, str]


@dataclass(frozen=True)
class SourceRow:
    line: int  # the line of the file this row starts on (1 = header)
    values: Row


@dataclass
class RowSource:
    """Rows from a named source; ``name`` is what error messages call the file."""

    name: str
    rows: Iterator[SourceRow]
    columns: Sequence[str]


def _open_text(path: Path) -> io.TextIOBase:
    with path.open("rb") as probe:
        magic = probe.read(2)
    if magic == b"\x1f\x8b":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8-sig", newline="")
    return path.open("r", encoding="utf-8-sig", newline="")


def _rows(handle: io.TextIOBase, reader: csv.DictReader[str], name: str) -> Iterator[SourceRow]:
    """Rows with the line each starts on; blank lines are skipped but counted."""
    header = list(reader.fieldnames or [])
    records = reader.reader  # the plain reader under the DictReader: it sees blank lines
    try:
        start = records.line_num + 1
        for fields in records:
            if not fields:
                start = records.line_num + 1
                continue
            values: dict[str, str] = dict(zip(header, fields, strict=False))
            if len(fields) > len(header):  # more fields than the header
                values["__extra__"] = ",".join(fields[len(header) :])
            yield SourceRow(start, values)
            start = records.line_num + 1
    except csv.Error as exc:
        raise BookclubError(f"{name}:{records.line_num}: malformed CSV: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise BookclubError(f"{name}: not UTF-8 text near line {records.line_num}: {exc}") from exc
    finally:
        handle.close()


def csv_source(path: Path, required: Sequence[str], optional: Sequence[str]) -> RowSource:
    """Open ``path`` (CSV, optionally gzip'd) and check its header against the columns."""
    if not path.exists():
        raise BookclubError(f"{path}: no such file")
    handle = _open_text(path)
    reader = csv.DictReader(handle)
    try:
        header = [h.strip() for h in (reader.fieldnames or [])]
    except UnicodeDecodeError as exc:
        handle.close()
        raise BookclubError(f"{path}: not UTF-8 text: {exc}") from exc
    reader.fieldnames = header
    if not header:
        handle.close()
        raise BookclubError(f"{path}:1: empty file, expected a header with {', '.join(required)}")
    repeated = sorted({c for c in header if header.count(c) > 1})
    if repeated:
        handle.close()
        raise BookclubError(f"{path}:1: header: column(s) {', '.join(repeated)} appear more than once")
    missing = [c for c in required if c not in header]
    unknown = [c for c in header if c not in required and c not in optional]
    if missing or unknown:
        handle.close()
        parts = []
        if missing:
            parts.append(f"missing required column(s) {', '.join(missing)}")
        if unknown:
            parts.append(f"unknown column(s) {', '.join(unknown)}")
        expected = ",".join([*required, *optional])
        raise BookclubError(f"{path}:1: header: {'; '.join(parts)} (expected {expected})")
    return RowSource(str(path), _rows(handle, reader, str(path)), header)
