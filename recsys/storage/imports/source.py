"""Reading CSV and gzip'd CSV one row at a time, with the line each row starts on.

Every file the importers read goes through :func:`read_csv` (the club's formats through
:func:`csv_source`, the public data sets' adapters directly), so that every fault of the
file itself is one :class:`~recsys.errors.BookclubError` naming the file and the line:

- broken quoting — a quoted field that never closes (it would swallow the rest of the
  file), or text after a closing quote — is reported at the line where the quote opened;
- a field longer than :data:`MAX_FIELD` characters (an unmatched quote, usually);
- bytes that are not UTF-8 (a byte order mark is fine), at the line they are on;
- a gzip file that is truncated or corrupt.

The file is then rejected whole: nothing of it is written.
"""

from __future__ import annotations

import csv
import gzip
import io
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recsys.errors import BookclubError

Row = dict[str, str]
MAX_FIELD = csv.field_size_limit()  # characters; the csv module's limit (131,072)


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


class CsvFormatError(BookclubError):
    """The file itself is broken (quoting, encoding, compression): nothing of it is imported."""


def _is_gzip(path: Path) -> bool:
    with path.open("rb") as probe:
        return probe.read(2) == b"\x1f\x8b"


def _open_text(path: Path) -> io.TextIOBase:
    """Text with a BOM dropped, lines split as the csv module counts them (``newline=""``)."""
    if _is_gzip(path):
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8-sig", newline="")
    return path.open("r", encoding="utf-8-sig", newline="")


def _open_bytes(path: Path) -> io.BufferedIOBase:
    return gzip.open(path, "rb") if _is_gzip(path) else path.open("rb")


# --- what went wrong, and where ------------------------------------------------------------


def _column(header: Sequence[str], index: int) -> str:
    return header[index] if index < len(header) else f"field {index + 1}"


def _diagnose(path: Path, start: int, header: Sequence[str]) -> tuple[int, str, str] | None:
    """Read the record that starts on line ``start`` character by character:
    (line, column, reason) of the first fault in its quoting or size, or None."""
    START, PLAIN, QUOTED, CLOSED = range(4)
    state, index, size, opened, line = START, 0, 0, start, start
    handle = _open_text(path)
    try:
        for _ in range(start - 1):
            if not handle.readline():
                return None
        for text in handle:
            for ch in text:
                if state == QUOTED:
                    if ch == '"':
                        state = CLOSED
                    else:
                        size += 1
                        if size > MAX_FIELD and line == opened:
                            return (line, _column(header, index), f"longer than {MAX_FIELD:,} characters")
                        if size > MAX_FIELD:
                            return (opened, _column(header, index),
                                    f"a quoted field opens here and runs past {MAX_FIELD:,} characters "
                                    f"(to line {line}): an unmatched quote (\")?")
                    continue
                if state == CLOSED and ch == '"':  # a doubled quote inside the field
                    state, size = QUOTED, size + 1
                    continue
                if state == CLOSED and ch not in ",\r\n":
                    if line > opened:
                        return (opened, _column(header, index),
                                f"a quoted field opens here and closes on line {line} followed by "
                                f"text: an unmatched quote (\") on line {opened}?")
                    return (line, _column(header, index),
                            "text after the closing quote of a quoted field "
                            '(a quote inside a quoted field is written twice: "")')
                if ch in "\r\n":
                    return None  # the record ends here without a fault
                if ch == ",":
                    state, index, size = START, index + 1, 0
                elif state == START and ch == '"':
                    state, opened, size = QUOTED, line, 0
                else:
                    state, size = PLAIN, size + 1
                    if size > MAX_FIELD:
                        return (line, _column(header, index), f"longer than {MAX_FIELD:,} characters")
            line += 1
    finally:
        handle.close()
    if state == QUOTED:
        return (opened, _column(header, index),
                "a quoted field opens here and never closes (an unmatched quote, \"): "
                "the rest of the file would be read as this one field")
    return None


def _malformed(path: Path, name: str, start: int, header: Sequence[str], exc: csv.Error) -> CsvFormatError:
    found = _diagnose(path, start, header)
    if found is None:
        return CsvFormatError(f"{name}:{start}: malformed CSV: {exc}; nothing was imported")
    line, column, reason = found
    return CsvFormatError(f"{name}:{line}: {column}: {reason}; nothing was imported")


def _not_utf8(path: Path, name: str, exc: UnicodeDecodeError) -> CsvFormatError:
    """The line and column of the first byte that is not UTF-8 (the decoder reads ahead)."""
    handle = _open_bytes(path)
    try:
        for number, raw in enumerate(handle, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as bad:
                byte = raw[bad.start : bad.start + 1].hex()
                return CsvFormatError(
                    f"{name}:{number}: byte 0x{byte} at column {bad.start + 1} is not UTF-8 "
                    f"(a Latin-1 or Windows export?): convert the file, e.g. "
                    f"`iconv -f latin1 -t utf-8 FILE > FILE.utf8`; nothing was imported"
                )
    except (EOFError, OSError, zlib.error):
        pass
    finally:
        handle.close()
    return CsvFormatError(f"{name}: not UTF-8 text ({exc.reason}); convert it to UTF-8; nothing was imported")


def _bad_gzip(name: str, line: int, exc: Exception) -> CsvFormatError:
    if isinstance(exc, EOFError):
        what = "is truncated: it ends before its end marker"
    else:
        what = f"is corrupt ({exc})"
    where = f", after line {line}" if line else ""
    return CsvFormatError(f"{name}: the gzip file {what}{where}: copy or download it again; nothing was imported")


# --- reading -------------------------------------------------------------------------------


@dataclass
class CsvFile:
    """A CSV file's header and its rows; iterate ``rows()`` once."""

    path: Path
    name: str
    header: list[str]
    _handle: io.TextIOBase
    _reader: Any  # the csv module's reader (its line_num counts the lines read)
    _line: int  # the line the next record starts on

    def rows(self) -> Iterator[SourceRow]:
        """Rows as dicts by header column, with the line each starts on; blank lines skipped.
        A row with more fields than the header keeps the surplus in ``__extra__``."""
        header = self.header
        reader = self._reader
        start = self._line
        try:
            while True:
                try:
                    fields = next(reader)
                except StopIteration:
                    return
                except csv.Error as exc:
                    raise _malformed(self.path, self.name, start, header, exc) from None
                if fields:
                    values: Row = dict(zip(header, fields, strict=False))
                    if len(fields) > len(header):
                        values["__extra__"] = ",".join(fields[len(header) :])
                    yield SourceRow(start, values)
                start = reader.line_num + 1
        except UnicodeDecodeError as exc:
            raise _not_utf8(self.path, self.name, exc) from None
        except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
            raise _bad_gzip(self.name, reader.line_num, exc) from None
        finally:
            self._handle.close()

    def close(self) -> None:
        self._handle.close()


def read_csv(path: Path, name: str | None = None) -> CsvFile:
    """Open ``path`` (CSV, optionally gzip'd, UTF-8 with or without a BOM) and read its header."""
    name = name or str(path)
    if not path.exists():
        raise BookclubError(f"{path}: no such file")
    if path.is_dir():
        raise BookclubError(f"{path}: is a folder, not a CSV file")
    handle = _open_text(path)
    reader = csv.reader(handle, strict=True)
    try:
        try:
            first = next(reader, [])
        except csv.Error as exc:
            raise _malformed(path, name, 1, [], exc) from None
        except UnicodeDecodeError as exc:
            raise _not_utf8(path, name, exc) from None
        except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
            raise _bad_gzip(name, 0, exc) from None
    except BaseException:
        handle.close()
        raise
    return CsvFile(path, name, [h.strip() for h in first], handle, reader, reader.line_num + 1)


def csv_source(path: Path, required: Sequence[str], optional: Sequence[str]) -> RowSource:
    """Open ``path`` (CSV, optionally gzip'd) and check its header against the columns."""
    source = read_csv(path)
    header = source.header

    def refuse(message: str) -> BookclubError:
        source.close()
        return BookclubError(message)

    if not header:
        raise refuse(f"{path}:1: empty file, expected a header with {', '.join(required)}")
    repeated = sorted({c for c in header if header.count(c) > 1})
    if repeated:
        raise refuse(f"{path}:1: header: column(s) {', '.join(repeated)} appear more than once")
    missing = [c for c in required if c not in header]
    unknown = [c for c in header if c not in required and c not in optional]
    if missing or unknown:
        parts = []
        if missing:
            parts.append(f"missing required column(s) {', '.join(missing)}")
        if unknown:
            parts.append(f"unknown column(s) {', '.join(unknown)}")
        expected = ",".join([*required, *optional])
        raise refuse(f"{path}:1: header: {'; '.join(parts)} (expected {expected})")
    return RowSource(str(path), source.rows(), header)
