"""The suppression list and contact rules as the database and settings hold them.

- :func:`read_suppression_file` — a CSV of entries (``member_id,reason,source`` ·
  ``starts_on,ends_on,scope,note``), checked row by row (file, line, field, reason);
  :func:`add_suppression_entries` writes them (an entry already there is left alone).
- :func:`rules_from_settings` — the declarative rules of ``settings.mailing``.
- :func:`rule_inputs` — the contact history and the suppression list of an audience
  (members by row), ready for :func:`campaign.rules.eligibility`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection

from campaign.rules import (
    NO_END,
    SUPPRESSION_REASONS,
    SUPPRESSION_SCOPES,
    ContactHistory,
    ContactRules,
    FrequencyCap,
    QuietPeriod,
    Spacing,
    SuppressionList,
    scope_of,
)
from recsys.errors import BookclubError
from recsys.settings import MailingSettings
from recsys.storage import mailing as mailing_db
from recsys.storage import suppressions as suppressions_db
from recsys.storage.imports.source import read_csv
from recsys.storage.members import member_keys
from recsys.text import unstorable

__all__ = [
    "SuppressionEntry",
    "add_suppression_entries",
    "read_suppression_file",
    "rule_inputs",
    "rules_from_settings",
]

REQUIRED = ("member_id", "reason", "source")
OPTIONAL = ("starts_on", "ends_on", "scope", "note")


@dataclass(frozen=True)
class SuppressionEntry:
    member_id: str
    reason: str
    source: str
    starts_on: dt.date
    ends_on: dt.date | None = None
    scope: str | None = None  # None: the reason's default
    note: str | None = None

    def __post_init__(self) -> None:
        if self.reason not in SUPPRESSION_REASONS:
            raise ValueError(f"reason {self.reason!r} is not one of {', '.join(SUPPRESSION_REASONS)}")
        if self.scope is not None and self.scope not in SUPPRESSION_SCOPES:
            raise ValueError(f"scope {self.scope!r} is not one of {', '.join(SUPPRESSION_SCOPES)}")
        if not self.source.strip():
            raise ValueError("source is empty: say where the entry comes from")
        if self.ends_on is not None and self.ends_on <= self.starts_on:
            raise ValueError(f"ends_on {self.ends_on} is not after starts_on {self.starts_on}")


def read_suppression_file(path: Path, today: dt.date) -> list[SuppressionEntry]:
    """Entries of a CSV file (UTF-8, optionally gzip'd); every bad row is reported, none written."""
    errors: list[str] = []
    entries: list[SuppressionEntry] = []
    # the importers' reader: a broken quote, non-UTF-8 bytes or a truncated gzip is one error
    # naming the line (it used to swallow rows, or end in a traceback)
    source = read_csv(path)
    header = source.header
    if missing := [c for c in REQUIRED if c not in header]:
        source.close()
        raise BookclubError(f"{path}: missing column(s) {', '.join(missing)}")
    if unknown := [c for c in header if c not in (*REQUIRED, *OPTIONAL)]:
        source.close()
        raise BookclubError(f"{path}: unknown column(s) {', '.join(unknown)}")
    for row in source.rows():
        try:
            for field, value in row.values.items():
                reason = unstorable(value)
                if reason is not None:  # PostgreSQL cannot store it: a 500-like crash at the insert
                    raise ValueError(f"{field} {reason}")
            entries.append(_entry(row.values, today))
        except ValueError as exc:
            errors.append(f"{path}:{row.line}: {exc}")
    if errors:
        shown = "\n  ".join(errors[:20])
        raise BookclubError(f"{len(errors)} bad row(s), nothing written:\n  {shown}")
    return entries


def _entry(row: dict[str, str], today: dt.date) -> SuppressionEntry:
    def date(field: str) -> dt.date | None:
        value = (row.get(field) or "").strip()
        if not value:
            return None
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{field} {value!r} is not a date (YYYY-MM-DD)") from None

    member_id = (row.get("member_id") or "").strip()
    if not member_id:
        raise ValueError("member_id is empty")
    return SuppressionEntry(
        member_id=member_id,
        reason=(row.get("reason") or "").strip(),
        source=(row.get("source") or "").strip(),
        starts_on=date("starts_on") or today,
        ends_on=date("ends_on"),
        scope=(row.get("scope") or "").strip() or None,
        note=(row.get("note") or "").strip() or None,
    )


def add_suppression_entries(connection: Connection, entries: list[SuppressionEntry]) -> int:
    """Write the entries (unknown member ids are an error naming them); returns how many were new."""
    keys = member_keys(connection, sorted({e.member_id for e in entries}))
    if unknown := sorted({e.member_id for e in entries} - set(keys)):
        raise BookclubError(f"unknown member id(s): {', '.join(unknown[:10])}")
    return suppressions_db.add_suppressions(
        connection,
        [
            (keys[e.member_id], e.reason, e.scope or scope_of(e.reason), e.source, e.starts_on, e.ends_on, e.note)
            for e in entries
        ],
    )


def rules_from_settings(settings: MailingSettings) -> ContactRules:
    try:
        return ContactRules(
            caps=tuple(FrequencyCap(c.pieces, c.days, frozenset(c.kinds)) for c in settings.frequency_caps),
            quiet=tuple(QuietPeriod(q.start, q.end, frozenset(q.kinds)) for q in settings.quiet_periods),
            spacing=tuple(Spacing(s.edition, s.after, s.days) for s in settings.spacing),
        )
    except ValueError as exc:
        raise BookclubError(f"mailing rules: {exc}") from None


def rule_inputs(
    connection: Connection,
    member_key: npt.NDArray[np.int64],
    in_home: dt.date,
    rules: ContactRules,
    *,
    exclude_campaign: int | None = None,
) -> tuple[ContactHistory, SuppressionList]:
    """The pieces sent to these members around ``in_home`` (as far back and ahead as a rule
    looks) and their suppression entries, with members as rows of ``member_key``."""
    reach = max([1, *(c.days for c in rules.caps), *(s.days for s in rules.spacing)])
    pieces = mailing_db.sent_pieces(
        connection, in_home - dt.timedelta(days=reach), in_home + dt.timedelta(days=reach),
        exclude_campaign=exclude_campaign,
    )  # fmt: skip
    order = np.argsort(member_key, kind="stable")
    sorted_keys = member_key[order]

    def rows(keys: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.int64]]:
        if not len(sorted_keys):
            return np.zeros(len(keys), dtype=np.bool_), np.zeros(0, dtype=np.int64)
        pos = np.minimum(np.searchsorted(sorted_keys, keys), len(sorted_keys) - 1)
        found = sorted_keys[pos] == keys
        return found, order[pos[found]].astype(np.int64)

    found, history_rows = rows(pieces.member_key)
    keep = np.flatnonzero(found)
    history = ContactHistory(
        history_rows, pieces.day[keep], [pieces.kind[i] for i in keep], [pieces.code[i] for i in keep]
    )
    entries = suppressions_db.suppression_arrays(connection)
    found, entry_rows = rows(entries.member_key)
    keep = np.flatnonzero(found)
    suppressions = SuppressionList(
        entry_rows,
        [entries.reason[i] for i in keep],
        [entries.scope[i] for i in keep],
        np.array([entries.starts_on[i].toordinal() for i in keep], dtype=np.int64),
        np.array(
            [NO_END if entries.ends_on[i] is None else entries.ends_on[i].toordinal() for i in keep],  # type: ignore[union-attr]
            dtype=np.int64,
        ),
    )
    return history, suppressions
