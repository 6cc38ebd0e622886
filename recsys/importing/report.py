"""What an import tells: every bad row with its file, line, field and reason, and the counts."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path


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
    """The rejects file: one line per bad row, its line number, field(s), reason(s) and values."""

    def __init__(self, path: Path | None, columns: Sequence[str]) -> None:
        self.path = path
        self.columns = list(columns)
        self._handle: io.TextIOBase | None = None
        self._writer: csv.writer | None = None  # type: ignore[valid-type]

    def write(self, line: int, errors: Sequence[RowError], values: dict[str, str]) -> None:
        if self.path is None:
            return
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = self.path.open("w", encoding="utf-8", newline="")
            self._writer = csv.writer(self._handle)
            self._writer.writerow(["line", "field", "reason", *self.columns])
        self._writer.writerow(
            [
                line,
                ";".join(e.field for e in errors),
                "; ".join(e.reason for e in errors),
                *(values.get(c, "") for c in self.columns),
            ]
        )

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
            self._writer = None
