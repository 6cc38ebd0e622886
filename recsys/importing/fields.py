"""Parsing one field: each parser returns the value or raises :class:`FieldError`."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation

from recsys.storage.schema import CHANNELS, MEMBER_STATUSES


class FieldError(ValueError):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def text(values: dict[str, str], field: str, *, required: bool = False, max_len: int = 0) -> str | None:
    raw = (values.get(field) or "").strip()
    if not raw:
        if required:
            raise FieldError(field, "is required")
        return None
    if max_len and len(raw) > max_len:
        raise FieldError(field, f"longer than {max_len} characters")
    return raw


def required_text(values: dict[str, str], field: str, max_len: int = 0) -> str:
    value = text(values, field, required=True, max_len=max_len)
    assert value is not None
    return value


def date(values: dict[str, str], field: str) -> dt.date | None:
    raw = text(values, field)
    if raw is None:
        return None
    try:
        return dt.date.fromisoformat(raw[:10]) if len(raw) > 10 else dt.date.fromisoformat(raw)
    except ValueError:
        raise FieldError(field, f"'{raw}' is not an ISO date (YYYY-MM-DD)") from None


def timestamp(values: dict[str, str], field: str) -> dt.datetime:
    """An ISO date or timestamp; aware timestamps are converted to naive UTC."""
    raw = required_text(values, field)
    try:
        value = dt.datetime.fromisoformat(raw)
    except ValueError:
        raise FieldError(
            field, f"'{raw}' is not an ISO date or timestamp (YYYY-MM-DD[ HH:MM[:SS]])"
        ) from None
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def integer(values: dict[str, str], field: str, *, lo: int | None = None, hi: int | None = None) -> int | None:
    raw = text(values, field)
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        try:
            as_float = float(raw)
        except ValueError:
            raise FieldError(field, f"'{raw}' is not a whole number") from None
        if not as_float.is_integer():
            raise FieldError(field, f"'{raw}' is not a whole number") from None
        value = int(as_float)
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
    if value >= Decimal("1e10"):
        raise FieldError(field, f"{raw} is too large")
    return value.quantize(Decimal("0.01"))


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
