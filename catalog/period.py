"""Quarters as the club names them (``2026Q4``) and the dates they cover."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from recsys.errors import BookclubError

_QUARTER_RE = re.compile(r"^(\d{4})Q([1-4])$")


@dataclass(frozen=True, order=True)
class Quarter:
    year: int
    number: int

    @classmethod
    def parse(cls, text: str) -> Quarter:
        match = _QUARTER_RE.match(text.strip().upper())
        if match is None:
            raise BookclubError(f"not a quarter: {text!r} (write it like 2026Q4)")
        return cls(int(match[1]), int(match[2]))

    def __str__(self) -> str:
        return f"{self.year}Q{self.number}"

    @property
    def start(self) -> dt.date:
        """The first day of the quarter."""
        return dt.date(self.year, 3 * self.number - 2, 1)

    @property
    def end(self) -> dt.date:
        """The first day after the quarter."""
        return self.next().start

    @property
    def start_datetime(self) -> dt.datetime:
        return dt.datetime.combine(self.start, dt.time())

    def previous(self) -> Quarter:
        return Quarter(self.year - 1, 4) if self.number == 1 else Quarter(self.year, self.number - 1)

    def next(self) -> Quarter:
        return Quarter(self.year + 1, 1) if self.number == 4 else Quarter(self.year, self.number + 1)

    @property
    def label(self) -> str:
        """A cover line: ``2026 年第四季度 · Q4 2026``."""
        chinese = "一二三四"[self.number - 1]
        return f"{self.year} 年第{chinese}季度 · Q{self.number} {self.year}"
