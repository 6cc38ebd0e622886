"""What an import tells: every bad row with its file, line, field and reason, and the counts."""

from __future__ import annotations

import csv
import errno
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from recsys.errors import DiskFullError
from recsys.files import AtomicFile


@dataclass(frozen=True)
class RowError:
    source: str
    line: int
    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: {self.field}: {self.reason}"


@dataclass
class ImportSummary:
    """Counts that always add up: read = inserted + already_present + rejected + skipped."""

    kind: str
    source: str
    read: int = 0
    inserted: int = 0
    already_present: int = 0
    rejected: int = 0
    skipped: int = 0
    cleared: int = 0  # rows landed with a bad optional field cleared (in the rejects file with why)
    skipped_reasons: dict[str, int] = field(default_factory=dict)
    errors: list[RowError] = field(default_factory=list)  # the first few, for display
    rejects_path: Path | None = None
    landed: bool = False
    children: list[ImportSummary] = field(default_factory=list)

    def skip(self, reason: str, count: int = 1) -> None:
        self.read += count
        self.skipped += count
        self.skipped_reasons[reason] = self.skipped_reasons.get(reason, 0) + count

    def adds_up(self) -> bool:
        return self.read == self.inserted + self.already_present + self.rejected + self.skipped

    def as_dict(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "source": self.source,
            "read": self.read,
            "inserted": self.inserted,
            "already_present": self.already_present,
            "rejected": self.rejected,
            "skipped": self.skipped,
            "cleared": self.cleared,
            "skipped_reasons": dict(self.skipped_reasons),
            "landed": self.landed,
            "rejects_path": str(self.rejects_path) if self.rejects_path else None,
        }


class RejectsWriter:
    """The rejects file: one line per bad row, its line number, field(s), reason(s) and values.

    Written under a temporary name (:mod:`recsys.files`) and renamed into place by
    :meth:`commit` once every check has run, so the file at ``path`` always lists every bad
    row; an import that fails or is killed before that leaves no rejects file at all.
    """

    def __init__(self, path: Path | None, columns: Sequence[str]) -> None:
        self.path = path
        self.columns = list(columns)
        self._file: AtomicFile | None = None
        self._writer: csv.writer | None = None  # type: ignore[valid-type]

    def write(self, line: int, errors: Sequence[RowError], values: dict[str, str]) -> None:
        if self.path is None:
            return
        try:
            if self._writer is None:
                self._file = AtomicFile(self.path, "w", encoding="utf-8", newline="")
                self._writer = csv.writer(self._file.handle)
                self._writer.writerow(["line", "field", "reason", *self.columns])
            self._writer.writerow(
                [
                    line,
                    ";".join(e.field for e in errors),
                    "; ".join(e.reason for e in errors),
                    *(values.get(c, "") for c in self.columns),
                ]
            )
        except OSError as exc:  # a write into the open file names no file: say which one
            if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
                raise DiskFullError(self.path, os.strerror(exc.errno)) from exc
            if exc.filename is None and exc.errno is not None:
                raise OSError(exc.errno, exc.strerror, str(self.path)) from exc
            raise

    def commit(self) -> None:
        """Every bad row is written: the file appears at ``path``, complete."""
        if self._file is not None:
            self._file.commit()

    def close(self) -> None:
        """Done: a file not committed (the import failed before its checks ended) is removed."""
        if self._file is not None:
            self._file.discard()
            self._file = None
            self._writer = None
