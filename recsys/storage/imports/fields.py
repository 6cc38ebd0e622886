"""Parsing one field: each parser returns the value or raises :class:`FieldError`."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from recsys.settings import ImportSettings
from recsys.storage.schema import CHANNELS, MEMBER_STATUSES
from recsys.text import unstorable


class FieldError(ValueError):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True)
class Limits:
    """The dates a field may hold, fixed for one import or batch (``now`` is read once).

    ``purchased_at`` and ``joined_on`` lie between ``earliest`` and ``latest`` (now plus a
    small tolerance); ``published_on`` between ``earliest_published`` and
    ``latest_published`` (titles may be announced up to ``published_ahead_days`` ahead).
    """

    now: dt.datetime  # naive UTC, like every stored timestamp
    earliest: dt.datetime
    latest: dt.datetime
    earliest_published: dt.date
    latest_published: dt.date

    @classmethod
    def of(cls, settings: ImportSettings | None = None, now: dt.datetime | None = None) -> Limits:
        settings = settings or ImportSettings()
        now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
        return cls(
            now=now,
            earliest=dt.datetime.combine(settings.earliest_date, dt.time()),
            latest=now + dt.timedelta(hours=settings.future_tolerance_hours),
            earliest_published=settings.earliest_published,
            latest_published=now.date() + dt.timedelta(days=settings.published_ahead_days),
        )

    def check_moment(self, field: str, raw: str, value: dt.datetime) -> None:
        if value < self.earliest:
            raise FieldError(field, f"'{raw}' is before {self.earliest:%Y-%m-%d} (imports.earliest_date)")
        if value > self.latest:
            raise FieldError(
                field,
                f"'{raw}' is in the future (after {self.latest:%Y-%m-%d %H:%M} UTC, "
                "now plus imports.future_tolerance_hours)",
            )

    def check_published(self, field: str, raw: str, value: dt.date) -> None:
        if value < self.earliest_published:
            raise FieldError(
                field, f"'{raw}' is before {self.earliest_published:%Y-%m-%d} (imports.earliest_published)"
            )
        if value > self.latest_published:
            raise FieldError(
                field,
                f"'{raw}' is after {self.latest_published:%Y-%m-%d} "
                "(titles may be announced up to imports.published_ahead_days ahead)",
            )


def text(values: dict[str, str], field: str, *, required: bool = False, max_len: int = 0) -> str | None:
    raw = (values.get(field) or "").strip()
    if not raw:
        if required:
            raise FieldError(field, "is required")
        return None
    if max_len and len(raw) > max_len:
        raise FieldError(field, f"longer than {max_len} characters")
    reason = unstorable(raw)
    if reason is not None:
        raise FieldError(field, reason)
    return raw


def required_text(values: dict[str, str], field: str, max_len: int = 0) -> str:
    value = text(values, field, required=True, max_len=max_len)
    assert value is not None
    return value


def _iso_date(field: str, raw: str) -> dt.date:
    try:
        return dt.date.fromisoformat(raw[:10]) if len(raw) > 10 else dt.date.fromisoformat(raw)
    except ValueError:
        raise FieldError(field, f"'{raw}' is not an ISO date (YYYY-MM-DD)") from None


def date(values: dict[str, str], field: str, limits: Limits) -> dt.date | None:
    """An ISO date between ``limits.earliest`` and ``limits.latest`` (a join date, say)."""
    raw = text(values, field)
    if raw is None:
        return None
    value = _iso_date(field, raw)
    limits.check_moment(field, raw, dt.datetime.combine(value, dt.time()))
    return value


def published(values: dict[str, str], field: str, limits: Limits) -> dt.date | None:
    """A publication date: older bounds than purchases, and announced titles may lie ahead."""
    raw = text(values, field)
    if raw is None:
        return None
    value = _iso_date(field, raw)
    limits.check_published(field, raw, value)
    return value


def timestamp(values: dict[str, str], field: str, limits: Limits) -> dt.datetime:
    """An ISO date or timestamp within ``limits``; aware timestamps are converted to naive UTC."""
    raw = required_text(values, field)
    try:
        value = dt.datetime.fromisoformat(raw)
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
    except (ValueError, OverflowError):  # an offset may push 0001-01-01 or 9999-12-31 out of range
        raise FieldError(
            field, f"'{raw}' is not an ISO date or timestamp (YYYY-MM-DD[ HH:MM[:SS]])"
        ) from None
    limits.check_moment(field, raw, value)
    return value


_WHOLE = re.compile(r"([+-]?[0-9]+)(?:\.0*)?", re.ASCII)


def integer(values: dict[str, str], field: str, *, lo: int | None = None, hi: int | None = None) -> int | None:
    raw = text(values, field)
    if raw is None:
        return None
    # ASCII digits with an optional sign, and a zero fraction as spreadsheets export it ("5.0");
    # int() alone would also take "1_0", " ٥" or "²", and float() "1e3"
    match = _WHOLE.fullmatch(raw)
    if match is None:
        raise FieldError(field, f"'{raw}' is not a whole number")
    if len(match.group(1).lstrip("+-").lstrip("0")) > 18:  # int() refuses past 4,300 digits
        raise FieldError(field, f"'{raw[:24]}…' is too large a number")
    value = int(match.group(1))
    if lo is not None and value < lo:
        raise FieldError(field, f"{value} is below {lo}")
    if hi is not None and value > hi:
        raise FieldError(field, f"{value} is above {hi}")
    return value


def money(values: dict[str, str], field: str) -> Decimal | None:
    raw = text(values, field)
    if raw is None:
        return None
    try:
        value = Decimal(raw.replace(",", "")) if raw.count(",") and "." in raw else Decimal(raw)
    except InvalidOperation:
        raise FieldError(field, f"'{raw}' is not a number") from None
    if not value.is_finite():
        raise FieldError(field, f"'{raw}' is not a finite number")
    if value < 0:
        raise FieldError(field, f"{raw} is negative")
    # numeric(12, 2): checked after rounding to cents (9999999999.995 rounds to 1e10)
    if value >= Decimal("1e10") or (value := value.quantize(Decimal("0.01"))) >= Decimal("1e10"):
        raise FieldError(field, f"{raw} is too large")
    return value


_TRUE = {"1", "true", "yes", "y", "t"}
_FALSE = {"0", "false", "no", "n", "f"}


def boolean(values: dict[str, str], field: str, default: bool) -> bool:
    raw = text(values, field)
    if raw is None:
        return default
    lowered = raw.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise FieldError(field, f"'{raw}' is not true/false (1/0, yes/no)")


def choice(values: dict[str, str], field: str, allowed: tuple[str, ...], default: str | None) -> str | None:
    raw = text(values, field)
    if raw is None:
        return default
    lowered = raw.lower()
    if lowered not in allowed:
        raise FieldError(field, f"'{raw}' is not one of {', '.join(allowed)}")
    return lowered


def channel(values: dict[str, str], field: str = "channel", default: str | None = None) -> str | None:
    return choice(values, field, CHANNELS, default)


def status(values: dict[str, str], field: str = "status") -> str:
    value = choice(values, field, MEMBER_STATUSES, "active")
    assert value is not None
    return value
