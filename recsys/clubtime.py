"""The club's calendar: its days begin at midnight in the club's time zone (``campaign.timezone``),
while timestamps are stored as naive UTC."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo


def club_day_start(day: dt.date, timezone: str) -> dt.datetime:
    """The first moment of the club's calendar day ``day`` in ``timezone``, as naive UTC (how
    timestamps are stored)."""
    local = dt.datetime.combine(day, dt.time(), tzinfo=ZoneInfo(timezone))
    return local.astimezone(dt.UTC).replace(tzinfo=None)
