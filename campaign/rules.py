"""Contact rules and suppression: which member may be sent which edition on an in-home date.

Pure numpy on arrays; nothing here knows the database. A plan sends each member at most
one piece per campaign; the rules decide which of the campaign's options (an edition
kind such as ``catalog``, ``postcard``, ``email``, with its edition code) each member may
get, given what they were sent before (the contact history) and the suppression list:

- **suppression** (:class:`SuppressionList`): an entry blocks a member's pieces of its
  scope (``post`` = catalog and postcard, ``email``, ``all``) on the days it is active,
  ``starts ≤ day < ends`` (no end: for good). Reasons: deceased, moved, do_not_mail,
  do_not_email, bad_address. The member's own status (closed) and a missing postal
  address block too, and are reported the same way.
- **quiet periods** (:class:`QuietPeriod`): no piece of the given kinds has its in-home
  date in ``[start, end]`` (ISO dates, or ``MM-DD`` for every year, wrapping the new year).
- **spacing** (:class:`Spacing`): never edition ``edition`` within ``days`` days after
  ``after`` — a piece matching ``edition`` at day ``d_A`` and one matching ``after`` at
  ``d_B`` break the rule when ``0 ≤ d_A − d_B < days``. A label matches an option's kind
  or its edition code. The planned piece is checked against history in both roles.
- **frequency caps** (:class:`FrequencyCap`): at most ``pieces`` pieces (of ``kinds``, all
  kinds when empty) in any window of ``days`` consecutive days. Checked on every window
  that contains the planned piece, history before and after the in-home date included.

:func:`eligibility` answers for all members × options at once and says, for each blocked
pair, the first rule that blocked it (suppression, then quiet, spacing, caps); counts per
rule come with it. :func:`violations` is the independent check, a plain loop per member
over the plan and the history, that the property-based tests and the policy's own
self-check run: a plan it accepts breaks no rule.

Days are ordinal day numbers (``date.toordinal()``) throughout. (Past 400 lines because
the vectorised check and the plain loop that verifies it sit side by side.)

(Past 400 lines because the rules' definitions and the vectorised check that applies them — eligibility before a plan, violations after — must agree rule by rule; they are kept side by side.)
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = [
    "POSTAL_KINDS",
    "SUPPRESSION_REASONS",
    "SUPPRESSION_SCOPES",
    "ContactHistory",
    "ContactRules",
    "Eligibility",
    "FrequencyCap",
    "MailOption",
    "QuietPeriod",
    "Spacing",
    "SuppressionList",
    "Violation",
    "eligibility",
    "scope_of",
    "violations",
]

POSTAL_KINDS = frozenset({"catalog", "postcard"})
SUPPRESSION_REASONS: tuple[str, ...] = ("deceased", "moved", "do_not_mail", "do_not_email", "bad_address")
SUPPRESSION_SCOPES: tuple[str, ...] = ("post", "email", "all")
DEFAULT_SCOPE = {
    "deceased": "all",
    "moved": "post",
    "do_not_mail": "post",
    "do_not_email": "email",
    "bad_address": "post",
}
NO_END = dt.date.max.toordinal()

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


def scope_of(reason: str) -> str:
    """The default scope of a suppression reason (deceased blocks everything, do_not_email only e-mail)."""
    if reason not in DEFAULT_SCOPE:
        raise ValueError(f"unknown suppression reason {reason!r}: one of {', '.join(SUPPRESSION_REASONS)}")
    return DEFAULT_SCOPE[reason]


def _blocks(scope: str, kind: str) -> bool:
    return scope == "all" or (scope == "post" and kind in POSTAL_KINDS) or (scope == "email" and kind == "email")


@dataclass(frozen=True)
class MailOption:
    """One thing a member may be sent: an edition kind and the edition's code."""

    kind: str
    code: str = ""

    @property
    def label(self) -> str:
        return self.code or self.kind

    def matches(self, label: str) -> bool:
        return label in (self.kind, self.code)


@dataclass(frozen=True)
class FrequencyCap:
    pieces: int
    days: int
    kinds: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if self.pieces < 1 or self.days < 1:
            raise ValueError(f"a frequency cap needs pieces ≥ 1 and days ≥ 1, got {self.pieces}/{self.days}")

    def counts(self, kind: str) -> bool:
        return not self.kinds or kind in self.kinds

    @property
    def name(self) -> str:
        kinds = f" of {'/'.join(sorted(self.kinds))}" if self.kinds else ""
        return f"cap {self.pieces} per {self.days} d{kinds}"


@dataclass(frozen=True)
class QuietPeriod:
    """No in-home date in ``[start, end]``: ISO dates, or ``MM-DD`` for every year."""

    start: str
    end: str
    kinds: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        for value in (self.start, self.end):
            self._parse(value)
        if self.yearly != (len(self.end) == 5):
            raise ValueError(f"quiet period {self.start}..{self.end}: both ends ISO dates or both MM-DD")
        if not self.yearly and self._parse(self.end) < self._parse(self.start):  # type: ignore[operator]
            raise ValueError(f"quiet period {self.start}..{self.end} ends before it starts")

    @property
    def yearly(self) -> bool:
        return len(self.start) == 5

    @staticmethod
    def _parse(value: str) -> dt.date | tuple[int, int]:
        try:
            if len(value) == 5:
                month, day = (int(p) for p in value.split("-"))
                dt.date(2000, month, day)  # valid in a leap year
                return month, day
            return dt.date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"quiet period bound {value!r}: write YYYY-MM-DD or MM-DD") from None

    def contains(self, day: dt.date) -> bool:
        if not self.yearly:
            return dt.date.fromisoformat(self.start) <= day <= dt.date.fromisoformat(self.end)
        here = (day.month, day.day)
        lo, hi = self._parse(self.start), self._parse(self.end)
        assert isinstance(lo, tuple) and isinstance(hi, tuple)
        return lo <= here <= hi if lo <= hi else (here >= lo or here <= hi)

    def applies(self, kind: str) -> bool:
        return not self.kinds or kind in self.kinds

    @property
    def name(self) -> str:
        kinds = f" for {'/'.join(sorted(self.kinds))}" if self.kinds else ""
        return f"quiet {self.start}..{self.end}{kinds}"


@dataclass(frozen=True)
class Spacing:
    """Never ``edition`` within ``days`` days after ``after`` (labels: a kind or an edition code)."""

    edition: str
    after: str
    days: int

    def __post_init__(self) -> None:
        if self.days < 1:
            raise ValueError(f"spacing {self.edition} after {self.after}: days must be ≥ 1")

    @property
    def name(self) -> str:
        return f"no {self.edition} within {self.days} d after {self.after}"


@dataclass(frozen=True)
class ContactRules:
    caps: tuple[FrequencyCap, ...] = ()
    quiet: tuple[QuietPeriod, ...] = ()
    spacing: tuple[Spacing, ...] = ()

    @property
    def names(self) -> list[str]:
        return [
            *(r.name for r in self.quiet), *(r.name for r in self.spacing), *(r.name for r in self.caps)
        ]


@dataclass(frozen=True, eq=False)
class ContactHistory:
    """Pieces sent (or scheduled): member row, in-home day (ordinal), kind and edition code."""

    member: IntArray
    day: IntArray
    kind: Sequence[str]
    code: Sequence[str]

    def __post_init__(self) -> None:
        if not len(self.member) == len(self.day) == len(self.kind) == len(self.code):
            raise ValueError("contact history columns must be equally long")

    @classmethod
    def empty(cls) -> ContactHistory:
        return cls(np.zeros(0, np.int64), np.zeros(0, np.int64), [], [])

    def __len__(self) -> int:
        return len(self.member)


@dataclass(frozen=True, eq=False)
class SuppressionList:
    """Entries: member row, reason, scope, first day and end day (exclusive; ``NO_END`` for good)."""

    member: IntArray
    reason: Sequence[str]
    scope: Sequence[str]
    starts: IntArray
    ends: IntArray

    def __post_init__(self) -> None:
        if not len(self.member) == len(self.reason) == len(self.scope) == len(self.starts) == len(self.ends):
            raise ValueError("suppression list columns must be equally long")
        for s in self.scope:
            if s not in SUPPRESSION_SCOPES:
                raise ValueError(f"unknown suppression scope {s!r}")

    @classmethod
    def empty(cls) -> SuppressionList:
        z = np.zeros(0, np.int64)
        return cls(z, [], [], z.copy(), z.copy())

    def __len__(self) -> int:
        return len(self.member)


@dataclass(frozen=True, eq=False)
class Eligibility:
    """Per member × option: allowed, or the reason (an index into ``reasons``) that blocked it."""

    options: tuple[MailOption, ...]
    allowed: BoolArray  # (members, options)
    blocked_by: npt.NDArray[np.int16]  # (members, options): -1 allowed, else an index into reasons
    reasons: list[str]

    def member_reason(self) -> list[str | None]:
        """Per member: None if some option is allowed, else the reason that blocked their first option."""
        any_allowed: BoolArray = np.asarray(self.allowed.any(axis=1), dtype=np.bool_)
        first = self.blocked_by[:, 0] if self.blocked_by.shape[1] else np.full(len(any_allowed), -1, np.int16)
        return [None if ok else self.reasons[int(r)] for ok, r in zip(any_allowed, first, strict=True)]

    def counts(self) -> dict[str, dict[str, int]]:
        """Per reason: member × option pairs it blocked, and members it left with no option."""
        out: dict[str, dict[str, int]] = {}
        pairs = Counter(int(r) for r in self.blocked_by.ravel() if r >= 0)
        nothing = Counter(r for r in self.member_reason() if r is not None)
        for i, name in enumerate(self.reasons):
            if pairs[i] or nothing[name]:
                out[name] = {"pairs": pairs[i], "members": nothing[name]}
        return out


def _block(blocked_by: npt.NDArray[np.int16], rows: BoolArray, column: int, reason: int) -> None:
    """Record ``reason`` where ``rows`` are blocked in ``column`` and nothing blocked them yet."""
    target = blocked_by[:, column]
    target[rows & (target < 0)] = reason


def eligibility(
    n_members: int,
    options: Sequence[MailOption],
    in_home: dt.date,
    rules: ContactRules,
    history: ContactHistory,
    suppressions: SuppressionList,
    *,
    closed: BoolArray | None = None,
    no_address: BoolArray | None = None,
) -> Eligibility:
    """Which options each member may get on ``in_home`` (module doc), vectorised over members."""
    options = tuple(options)
    day = in_home.toordinal()
    reasons: list[str] = []
    index: dict[str, int] = {}

    def reason(name: str) -> int:
        if name not in index:
            index[name] = len(reasons)
            reasons.append(name)
        return index[name]

    blocked = np.full((n_members, len(options)), -1, dtype=np.int16)
    every = np.ones(n_members, dtype=np.bool_)
    # the member's own record
    for mask, name, postal_only in ((closed, "member closed", False), (no_address, "no postal address", True)):
        if mask is None:
            continue
        for j, option in enumerate(options):
            if not postal_only or option.kind in POSTAL_KINDS:
                _block(blocked, np.asarray(mask, dtype=np.bool_), j, reason(name))
    # suppression entries active on the in-home day
    active = (suppressions.starts <= day) & (day < suppressions.ends)
    for e in (int(i) for i in np.flatnonzero(active)):
        m, scope = int(suppressions.member[e]), suppressions.scope[e]
        for j, option in enumerate(options):
            if _blocks(scope, option.kind) and blocked[m, j] < 0:
                blocked[m, j] = reason(f"suppressed: {suppressions.reason[e]}")
    # quiet periods: the same for every member
    for period in rules.quiet:
        if period.contains(in_home):
            for j, option in enumerate(options):
                if period.applies(option.kind):
                    _block(blocked, every, j, reason(period.name))
    kinds = np.asarray(history.kind, dtype=np.str_)
    codes = np.asarray(history.code, dtype=np.str_)
    hday = np.asarray(history.day, dtype=np.int64)
    hmember = np.asarray(history.member, dtype=np.int64)
    # spacing, both ways: history B before the planned A, and history A after a planned B
    for rule in rules.spacing:
        is_b = (kinds == rule.after) | (codes == rule.after)
        is_a = (kinds == rule.edition) | (codes == rule.edition)
        b_close = np.zeros(n_members, dtype=np.bool_)
        b_close[hmember[is_b & (day - hday >= 0) & (day - hday < rule.days)]] = True
        a_close = np.zeros(n_members, dtype=np.bool_)
        a_close[hmember[is_a & (hday - day >= 0) & (hday - day < rule.days)]] = True
        for j, option in enumerate(options):
            rows = (b_close if option.matches(rule.edition) else np.zeros(n_members, np.bool_)) | (
                a_close if option.matches(rule.after) else np.zeros(n_members, np.bool_)
            )
            if rows.any():
                _block(blocked, rows, j, reason(rule.name))
    # caps: pieces counted in the window before the in-home date; members with pieces on or
    # after it (scheduled ahead) get the exact sliding-window check
    for cap in rules.caps:
        counted = np.isin(kinds, sorted(cap.kinds)) if cap.kinds else np.ones(len(history), dtype=np.bool_)
        past = counted & (hday <= day) & (hday > day - cap.days)
        before = np.bincount(hmember[past], minlength=n_members)
        over = before + 1 > cap.pieces
        ahead_members = np.unique(hmember[counted & (hday >= day) & (hday < day + cap.days)])
        for m in ahead_members:
            days = hday[counted & (hmember == m)]
            over[m] = _window_max(days, day, cap.days) > cap.pieces
        for j, option in enumerate(options):
            if cap.counts(option.kind):
                _block(blocked, over, j, reason(cap.name))
    return Eligibility(options, blocked < 0, blocked, reasons)


def _window_max(days: IntArray, day: int, width: int) -> int:
    """Most pieces in a ``width``-day window [s, s + width) containing ``day``, the planned piece included."""
    best = 0
    for start in range(day - width + 1, day + 1):
        best = max(best, int(np.count_nonzero((days >= start) & (days < start + width))) + 1)
    return best


@dataclass(frozen=True)
class Violation:
    member: int
    rule: str


def violations(
    chosen: Sequence[int],
    options: Sequence[MailOption],
    in_home: dt.date,
    rules: ContactRules,
    history: ContactHistory,
    suppressions: SuppressionList,
    *,
    closed: Sequence[bool] | None = None,
    no_address: Sequence[bool] | None = None,
) -> list[Violation]:
    """Every rule a plan breaks: ``chosen[i]`` is member i's option index, or -1 for nothing.

    A plain loop per member, written apart from :func:`eligibility` so that each checks the
    other.
    """
    day = in_home.toordinal()
    pieces: dict[int, list[tuple[int, str, str]]] = {}
    for m, d, k, c in zip(history.member, history.day, history.kind, history.code, strict=True):
        pieces.setdefault(int(m), []).append((int(d), k, c))
    entries: dict[int, list[tuple[str, str, int, int]]] = {}
    for m, r, s, a, b in zip(
        suppressions.member, suppressions.reason, suppressions.scope, suppressions.starts, suppressions.ends,
        strict=True,
    ):
        entries.setdefault(int(m), []).append((r, s, int(a), int(b)))
    found: list[Violation] = []
    for member, j in enumerate(chosen):
        if j < 0:
            continue
        option = options[j]
        if closed is not None and closed[member]:
            found.append(Violation(member, "member closed"))
        if no_address is not None and no_address[member] and option.kind in POSTAL_KINDS:
            found.append(Violation(member, "no postal address"))
        for r, s, a, b in entries.get(member, []):
            if a <= day < b and _blocks(s, option.kind):
                found.append(Violation(member, f"suppressed: {r}"))
        for period in rules.quiet:
            if period.applies(option.kind) and period.contains(in_home):
                found.append(Violation(member, period.name))
        mine = pieces.get(member, [])
        for rule in rules.spacing:
            for d, k, c in mine:
                if option.matches(rule.edition) and rule.after in (k, c) and 0 <= day - d < rule.days:
                    found.append(Violation(member, rule.name))
                if option.matches(rule.after) and rule.edition in (k, c) and 0 <= d - day < rule.days:
                    found.append(Violation(member, rule.name))
        for cap in rules.caps:
            if not cap.counts(option.kind):
                continue
            days = sorted([d for d, k, _c in mine if cap.counts(k)] + [day])
            for start in range(day - cap.days + 1, day + 1):
                if sum(1 for d in days if start <= d < start + cap.days) > cap.pieces:
                    found.append(Violation(member, cap.name))
                    break
    return found

