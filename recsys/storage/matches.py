"""Matchback and the report's outcomes: the ``campaign_matches`` table, and what
contacted members bought.

Both are set-based SQL (``INSERT … SELECT`` with window functions), never Python
loops over order lines, on the contacts of :mod:`recsys.storage.contacts` and the
campaigns of :mod:`recsys.storage.campaigns`. Every function takes a ``Connection``;
the caller owns the transaction.

Matchback (:func:`match_orders`) classifies every order line of a campaign's window
once: **direct** when it carries one of the campaign's key codes (credited to the
member's contact of that treatment, or to the treatment alone when the member was
not sent it: a passed-on catalog), **inferred** when the member had a mailed or web
contact and ordered within ``response_days + late_days`` of its in-home date (one
row per candidate contact; ``late`` past ``response_days``), **unattributed**
otherwise (also a line carrying another campaign's key code). The credit rules are
stored side by side: ``credit_last`` (1 to the candidate with the latest in-home
date, mailed before web, then the lowest contact id), ``credit_fractional`` (1/n
over the n candidates) and ``credit_all`` (1 to each). Lines already classified
are never touched again: re-running adds the lines that arrived since, nothing else.

Days are the club's (``timezone``, ``campaign.timezone``): a window runs from the first
moment of its in-home day there, and ``days_after`` counts the club's days since — an order
placed in Shanghai at 07:00 on the in-home day (23:00 UTC the day before) is in the window.
Order lines are stored in naive UTC, so the bounds are computed here as naive UTC moments.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Date,
    DateTime,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    and_,
    case,
    cast,
    distinct,
    exists,
    func,
    literal,
    null,
    or_,
    select,
)

from recsys.clubtime import club_day_start
from recsys.storage.campaigns import UnknownCampaignError, _as_date, campaign_by_id
from recsys.storage.schema import CampaignContact, CampaignMatch, CampaignTreatment, Purchase, table_of
from recsys.storage.selections import active_order_line

# ------------------------------------------------------------------ dates in SQL


def _day(value: dt.date) -> Any:
    """A date bound as a date: compares right with a timestamp column on both databases."""
    return literal(value, Date())


def _start(connection: Connection, day: dt.date, timezone: str) -> Any:
    """The club day's first moment, bound to compare right with the stored timestamps: on SQLite,
    where they are text of one or another length ('… 10:00:00' or '… 10:00:00.000000'), as its
    shortest text — a date alone at midnight UTC — which sorts at or before every form of it."""
    moment = club_day_start(day, timezone)
    if connection.dialect.name == "postgresql":
        return literal(moment, DateTime())
    if moment.time() == dt.time():
        return _day(moment.date())
    return literal(moment.isoformat(sep=" ", timespec="seconds" if not moment.microsecond else "microseconds"))


def _days_after(connection: Connection, at: Any, start: Any) -> Any:
    """Whole days (rounded down, negative before it) from the moment ``start`` to the timestamp ``at``;
    with ``start`` a day's first moment, the days from that day to the day of ``at``."""
    if connection.dialect.name == "postgresql":
        return cast(func.floor(func.extract("epoch", at - start) / 86400.0), Integer)
    # SQLite: CAST truncates toward zero; shifted by a whole number of days it rounds down
    return cast(func.julianday(at) - func.julianday(start) + 100_000, Integer) - 100_000


def _start_of(connection: Connection, home: Any, days: Iterable[dt.date], timezone: str) -> Any:
    """SQL: the club-day start of the date column ``home``, whose values are among ``days``."""
    midnight = cast(home, DateTime()) if connection.dialect.name == "postgresql" else home  # SQLite: julianday reads a date
    if timezone == "UTC":
        return midnight
    starts = [(home == _day(day), _start(connection, day, timezone)) for day in sorted(set(days))]
    return case(*starts, else_=midnight) if starts else midnight


def in_home_dates(connection: Connection, campaign_id: int, arms: Sequence[str]) -> list[dt.date]:
    """The distinct planned in-home dates of the campaign's contacts in ``arms``."""
    campaign = campaign_by_id(connection, campaign_id)
    assert campaign is not None
    days = connection.scalars(
        select(func.coalesce(CampaignContact.in_home_date, _day(campaign.in_home_date)))
        .where(CampaignContact.campaign_id == campaign_id, CampaignContact.arm.in_(arms))
        .distinct()
    ).all()
    return sorted({_as_date(d) for d in days})


# ------------------------------------------------------------------ matchback


@dataclass(frozen=True)
class MatchCounts:
    """What one matchback run classified (lines new to this run only)."""

    direct: int
    inferred: int
    unattributed: int
    late: int
    window: tuple[dt.date, dt.date]

    @property
    def lines(self) -> int:
        return self.direct + self.inferred + self.unattributed


def _candidates_table(suffix: str) -> Table:
    return Table(
        f"matchback_candidates_{suffix}",
        MetaData(),
        Column("purchase_id", BigInteger, nullable=False),
        Column("contact_id", BigInteger),
        Column("treatment_id", Integer),
        Column("match", String(12), nullable=False),
        Column("days_after", Integer),
        Column("in_home", Date),
        Column("arm_rank", Integer, nullable=False),
        prefixes=["TEMPORARY"],
    )


def match_orders(connection: Connection, campaign_id: int, timezone: str = "UTC") -> MatchCounts:
    """Classify the order lines of the campaign's window not classified yet (module docstring), on the
    calendar of ``timezone`` (the club's)."""
    import uuid

    campaign = campaign_by_id(connection, campaign_id)
    if campaign is None:
        raise UnknownCampaignError(f"no campaign with id {campaign_id}")
    purchases = table_of(Purchase)
    contacts = table_of(CampaignContact)
    treatments_table = table_of(CampaignTreatment)
    matches = table_of(CampaignMatch)
    span = campaign.response_days + campaign.late_days
    days = in_home_dates(connection, campaign_id, ("mailed", "web")) or [campaign.in_home_date]
    start, end = min([*days, campaign.in_home_date]), max(days) + dt.timedelta(days=span)

    already = exists(
        select(literal(1))
        .select_from(matches)
        .where(matches.c.campaign_id == campaign_id, matches.c.purchase_id == purchases.c.id)
    )
    responders = ("mailed", "web")
    arm_rank = case((contacts.c.arm == "mailed", 0), else_=1)
    candidates = _candidates_table(uuid.uuid4().hex[:8])
    candidates.create(connection)
    try:
        # (a) direct: the line carries one of this campaign's key codes
        home = func.coalesce(contacts.c.in_home_date, _day(campaign.in_home_date))
        connection.execute(
            candidates.insert().from_select(
                ["purchase_id", "contact_id", "treatment_id", "match", "days_after", "in_home", "arm_rank"],
                select(
                    purchases.c.id, contacts.c.id, treatments_table.c.id, literal("direct"),
                    _days_after(connection, purchases.c.purchased_at,
                                _start_of(connection, home, [*days, campaign.in_home_date], timezone)), home,
                    func.coalesce(arm_rank, 2),
                )
                .select_from(purchases)
                .join(
                    treatments_table,
                    and_(
                        treatments_table.c.key_code == purchases.c.key_code,
                        treatments_table.c.campaign_id == campaign_id,
                    ),
                )
                .outerjoin(
                    contacts,
                    and_(
                        contacts.c.campaign_id == campaign_id,
                        contacts.c.member_key == purchases.c.member_key,
                        contacts.c.treatment_id == treatments_table.c.id,
                        contacts.c.arm.in_(responders),
                    ),
                )
                .where(purchases.c.key_code.is_not(None), ~already),
            )
        )
        # (b) inferred: a contacted member ordered within the window after the in-home date
        for day in days:
            connection.execute(
                candidates.insert().from_select(
                    ["purchase_id", "contact_id", "treatment_id", "match", "days_after", "in_home", "arm_rank"],
                    select(
                        purchases.c.id, contacts.c.id, contacts.c.treatment_id, literal("inferred"),
                        _days_after(connection, purchases.c.purchased_at, _start(connection, day, timezone)), _day(day),
                        arm_rank,
                    )
                    .select_from(contacts)
                    .join(purchases, purchases.c.member_key == contacts.c.member_key)
                    .where(
                        contacts.c.campaign_id == campaign_id,
                        contacts.c.arm.in_(responders),
                        func.coalesce(contacts.c.in_home_date, _day(campaign.in_home_date)) == _day(day),
                        purchases.c.purchased_at >= _start(connection, day, timezone),
                        purchases.c.purchased_at < _start(connection, day + dt.timedelta(days=span), timezone),
                        purchases.c.key_code.is_(None),
                        ~already,
                    ),
                )
            )
        ranked = select(
            candidates,
            func.row_number()
            .over(
                partition_by=candidates.c.purchase_id,
                order_by=(candidates.c.in_home.desc(), candidates.c.arm_rank, candidates.c.contact_id),
            )
            .label("rn"),
            func.count().over(partition_by=candidates.c.purchase_id).label("n"),
        ).subquery()
        late = case((ranked.c.days_after >= campaign.response_days, True), else_=False)
        connection.execute(
            matches.insert().from_select(
                [
                    "campaign_id", "purchase_id", "contact_id", "treatment_id", "match", "days_after",
                    "late", "credit_last", "credit_fractional", "credit_all",
                ],
                select(
                    literal(campaign_id), ranked.c.purchase_id, ranked.c.contact_id, ranked.c.treatment_id,
                    ranked.c.match, ranked.c.days_after, late,
                    case((ranked.c.rn == 1, 1.0), else_=0.0),
                    case((ranked.c.match == "direct", 1.0), else_=1.0 / cast(ranked.c.n, Float)),
                    literal(1.0),
                ).where(or_(ranked.c.match == "inferred", ranked.c.rn == 1)),
            )
        )
        # (c) unattributed: every other line of the window
        unattributed = connection.execution_options(preserve_rowcount=True).execute(
            matches.insert().from_select(
                [
                    "campaign_id", "purchase_id", "contact_id", "treatment_id", "match", "days_after",
                    "late", "credit_last", "credit_fractional", "credit_all",
                ],
                select(
                    literal(campaign_id), purchases.c.id, null(), null(), literal("unattributed"),
                    _days_after(connection, purchases.c.purchased_at, _start(connection, campaign.in_home_date, timezone)),
                    literal(False), literal(0.0), literal(0.0), literal(0.0),
                ).where(
                    purchases.c.purchased_at >= _start(connection, start, timezone),
                    purchases.c.purchased_at < _start(connection, end, timezone),
                    ~already,
                ),
            )
        ).rowcount
        counts: dict[str, int] = {
            str(match): int(n)
            for match, n in connection.execute(
                select(candidates.c.match, func.count(distinct(candidates.c.purchase_id))).group_by(candidates.c.match)
            )
        }
        late_lines = connection.execute(
            select(func.count(distinct(candidates.c.purchase_id))).where(
                candidates.c.days_after >= campaign.response_days
            )
        ).scalar_one()
    finally:
        candidates.drop(connection)
    return MatchCounts(
        direct=int(counts.get("direct", 0)),
        inferred=int(counts.get("inferred", 0)),
        unattributed=int(unattributed),
        late=int(late_lines),
        window=(start, end),
    )


@dataclass(frozen=True)
class MatchTotals:
    """Stored matchback of a campaign: lines and revenue by class, credited revenue per treatment."""

    lines: dict[str, int]  # match kind → distinct order lines
    revenue: dict[str, float]  # match kind → revenue of those lines
    late_lines: int
    credited: dict[int | None, dict[str, float]]  # treatment id → {"last", "fractional", "all"} revenue


def match_totals(connection: Connection, campaign_id: int) -> MatchTotals:
    """The campaign's matched active orders (auto-ship lines and their returns are read apart:
    ``selections.autoship_matches``)."""
    matches = table_of(CampaignMatch)
    purchases = table_of(Purchase)
    value = cast(purchases.c.quantity * purchases.c.unit_price, Float)
    per_line = (
        select(
            matches.c.match,
            matches.c.purchase_id,
            func.max(value).label("value"),
            func.max(case((matches.c.late, 1), else_=0)).label("late"),
        )
        .join(purchases, purchases.c.id == matches.c.purchase_id)
        .where(matches.c.campaign_id == campaign_id, active_order_line(purchases))
        .group_by(matches.c.match, matches.c.purchase_id)
        .subquery()
    )
    lines: dict[str, int] = {}
    revenue: dict[str, float] = {}
    late_lines = 0
    for match, n, total, late in connection.execute(
        select(per_line.c.match, func.count(), func.coalesce(func.sum(per_line.c.value), 0.0), func.sum(per_line.c.late))
        .group_by(per_line.c.match)
    ):
        lines[str(match)] = int(n)
        revenue[str(match)] = float(total)
        late_lines += int(late or 0)
    credited: dict[int | None, dict[str, float]] = {}
    for treatment_id, last, fractional, every in connection.execute(
        select(
            matches.c.treatment_id,
            func.sum(matches.c.credit_last * value),
            func.sum(matches.c.credit_fractional * value),
            func.sum(matches.c.credit_all * value),
        )
        .join(purchases, purchases.c.id == matches.c.purchase_id)
        .where(matches.c.campaign_id == campaign_id, matches.c.match != "unattributed", active_order_line(purchases))
        .group_by(matches.c.treatment_id)
    ):
        credited[treatment_id] = {
            "last": float(last or 0.0), "fractional": float(fractional or 0.0), "all": float(every or 0.0)
        }
    return MatchTotals(lines, revenue, late_lines, credited)


def match_classes(connection: Connection, campaign_id: int) -> dict[str, str]:
    """line_id → its class in the campaign (direct / inferred / unattributed); for checks and tests."""
    matches = table_of(CampaignMatch)
    rows = connection.execute(
        select(Purchase.line_id, matches.c.match)
        .join(Purchase, Purchase.id == matches.c.purchase_id)
        .where(matches.c.campaign_id == campaign_id)
        .distinct()
    )
    return {line_id: match for line_id, match in rows}


# ------------------------------------------------------------------ outcomes for the report


@dataclass(frozen=True)
class ContactOutcomes:
    """Per contact with any order line in its response window: orders and net revenue."""

    contact_id: npt.NDArray[np.int64]
    orders: npt.NDArray[np.float64]
    revenue: npt.NDArray[np.float64]


def contact_outcomes(connection: Connection, campaign_id: int, timezone: str = "UTC") -> ContactOutcomes:
    """What each mailed or held-out member bought in ``[in-home, in-home + response_days)``, days of
    the club's ``timezone``.

    Every line of the member counts, attributed or not: the comparison with the
    holdout, not the matchback, says what the mailing caused. Orders are distinct
    orders with a positive line; revenue is net of returns. Active orders only: auto-ship
    lines (the negative option) and their returns are left out (``selections.active_order_line``).
    """
    campaign = campaign_by_id(connection, campaign_id)
    assert campaign is not None
    contacts = table_of(CampaignContact)
    purchases = table_of(Purchase)
    order_key = func.coalesce(purchases.c.order_id, purchases.c.line_id)
    ids: list[int] = []
    orders: list[float] = []
    revenue: list[float] = []
    for day in in_home_dates(connection, campaign_id, ("mailed", "holdout")):
        stmt = (
            select(
                contacts.c.id,
                func.count(distinct(case((purchases.c.quantity > 0, order_key)))),
                func.sum(cast(purchases.c.quantity * purchases.c.unit_price, Float)),
            )
            .select_from(contacts)
            .join(purchases, purchases.c.member_key == contacts.c.member_key)
            .where(
                contacts.c.campaign_id == campaign_id,
                contacts.c.arm.in_(("mailed", "holdout")),
                func.coalesce(contacts.c.in_home_date, _day(campaign.in_home_date)) == _day(day),
                purchases.c.purchased_at >= _start(connection, day, timezone),
                purchases.c.purchased_at < _start(connection, day + dt.timedelta(days=campaign.response_days), timezone),
                active_order_line(purchases),
            )
            .group_by(contacts.c.id)
        )
        for contact_id, n, total in connection.execute(stmt):
            ids.append(int(contact_id))
            orders.append(float(n))
            revenue.append(float(total or 0.0))
    return ContactOutcomes(
        np.asarray(ids, dtype=np.int64), np.asarray(orders, dtype=np.float64), np.asarray(revenue, dtype=np.float64)
    )
