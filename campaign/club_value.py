"""The club's members valued at a cutoff: :mod:`campaign.value` on the stored order lines.

``value_club(connection, cutoff, horizon_days)`` reads every own order line before
``cutoff + horizon_days`` in one numpy pass (:func:`recsys.storage.purchase_log.read_line_amounts`),
puts the members in rows (every stored member, by surrogate key), summarises the history
before the cutoff, fits BG/NBD + Gamma-Gamma and predicts each member's purchases and
value over the horizon. When the stored lines reach the end of the horizon, the forecast
is held against what happened (per member: mean absolute error, against the naive
"same rate as before" baseline) — on the members with a purchase before the cutoff, the
cohort the model describes. Members without one are valued as if acquired at the cutoff
(population-level figures) but kept out of the comparison: their purchases after the
cutoff are acquisitions, not repeat business.

Any history imported through the generic importers works, one title or fifty thousand:
only member, time, quantity and unit price are read.

What the model describes: the member's own buying. Under the club's negative option a member
who neither orders nor declines the quarter's main selection is sent it and billed (an
auto-ship line, ``purchases.kind = 'autoship'``); sending it back is an ordinary negative
line. Neither is a purchase the member chose to make, so both are left out — of the history
before the cutoff (frequency, recency, age, spend), of the actual purchases in the horizon
the forecast is held against, and of the newest line that says whether the horizon is
stored. The test is the campaign report's (:func:`recsys.storage.line_kinds.active_order_line`,
read through :func:`~recsys.storage.purchase_log.read_line_amounts` with ``own_orders``), so
"active orders" mean the same everywhere. Counting them would make every member who lets a
main selection come look like a repeat buyer each quarter: frequency and value inflated by the
club's own shipments, the mailing decision then paying for members' value that is the
negative option's. What auto-ships bring is reported apart (:mod:`campaign.autoship_report`).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection

from campaign.value import (
    MemberValueModel,
    RfmSummary,
    fit_member_value,
    forecast_report,
    naive_rate_forecast,
    purchases_between,
    summarise,
)
from recsys.errors import BookclubError
from recsys.storage import purchase_log

__all__ = ["ClubValue", "member_rows", "value_club"]

SECONDS_PER_DAY = 86_400.0


def _day(moment: dt.datetime) -> float:
    return purchase_log.to_epoch(moment) / SECONDS_PER_DAY


def member_rows(keys: npt.NDArray[np.int64], member_key: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """The row (position in ``keys``) of each ``member_key``; every key must be in ``keys``."""
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    pos = np.searchsorted(sorted_keys, member_key)
    pos = np.minimum(pos, max(len(sorted_keys) - 1, 0))
    if len(member_key) and (len(sorted_keys) == 0 or np.any(sorted_keys[pos] != member_key)):
        raise BookclubError("an order line names a member that is not stored")
    return np.asarray(order[pos], dtype=np.int64)


@dataclass(frozen=True, eq=False)
class ClubValue:
    """Every stored member's value at ``cutoff`` over ``horizon_days`` (one entry per member row)."""

    cutoff: dt.datetime
    horizon_days: int
    member_key: npt.NDArray[np.int64]
    member_id: list[str]
    model: MemberValueModel
    summary: RfmSummary
    probability_alive: npt.NDArray[np.float64]
    expected_purchases: npt.NDArray[np.float64]
    expected_value: npt.NDArray[np.float64]
    baseline_purchases: npt.NDArray[np.float64]
    actual_purchases: npt.NDArray[np.int64] | None  # None: the stored lines end before the horizon does
    actual_value: npt.NDArray[np.float64] | None
    newest_line: dt.datetime | None
    lines_read: int

    @property
    def cohort(self) -> npt.NDArray[np.bool_]:
        """Members with a purchase before the cutoff: the ones the forecast is about."""
        return self.summary.has_purchase

    def to_json(self) -> dict[str, Any]:
        """``model``, ``params``, ``members``, ``horizon_days``, ``predicted_purchases``,
        ``actual_purchases`` (null without data after the horizon), ``mae``, ``baseline_mae``
        and the rest of the fit (intervals, warnings) and value totals.

        ``rmse`` / ``baseline_rmse`` sit beside the mean absolute errors because the model
        predicts each member's *expected* purchases, which minimises squared error; on
        count data with many zeros a forecast of 0 (the baseline's for one-time buyers)
        is favoured by the absolute error without being a better forecast of the mean.
        """
        fit = self.model.to_json()
        cohort = self.cohort
        predicted = float(self.expected_purchases[cohort].sum())
        body: dict[str, Any] = {
            "model": fit["model"],
            "params": fit["params"],
            "intervals": fit["intervals"],
            "cutoff": self.cutoff.date().isoformat(),
            "horizon_days": self.horizon_days,
            "members": int(cohort.sum()),
            "members_without_history": int((~cohort).sum()),
            "lines_read": self.lines_read,
            "predicted_purchases": predicted,
            "predicted_value": float(self.expected_value[cohort].sum()),
            "baseline_predicted_purchases": float(self.baseline_purchases[cohort].sum()),
            "actual_purchases": None,
            "actual_value": None,
            "relative_error": None,
            "mae": None,
            "baseline_mae": None,
            "rmse": None,
            "baseline_rmse": None,
            "newest_line": self.newest_line.isoformat(sep=" ") if self.newest_line else None,
            "converged": fit["converged"],
            "warnings": fit["warnings"],
            "time_unit": fit["time_unit"],
            "population_mean_spend": fit["population_mean_spend"],
        }
        if self.actual_purchases is not None and self.actual_value is not None:
            report = forecast_report(
                self.model, _subset(self.summary, cohort), self.horizon_days, self.actual_purchases[cohort]
            )
            act = self.actual_purchases[cohort].astype(np.float64)
            body.update(
                rmse=float(np.sqrt(np.mean((self.expected_purchases[cohort] - act) ** 2))),
                baseline_rmse=float(np.sqrt(np.mean((self.baseline_purchases[cohort] - act) ** 2))),
                actual_purchases=report.actual_purchases,
                actual_value=float(self.actual_value[cohort].sum()),
                relative_error=None if math.isnan(report.relative_error) else report.relative_error,
                mae=report.mae,
                baseline_mae=report.baseline_mae,
            )
        return body


def _subset(summary: RfmSummary, mask: npt.NDArray[np.bool_]) -> RfmSummary:
    return RfmSummary(
        frequency=summary.frequency[mask],
        recency=summary.recency[mask],
        age=summary.age[mask],
        monetary=summary.monetary[mask],
        has_purchase=summary.has_purchase[mask],
        cutoff_day=summary.cutoff_day,
    )


def value_club(connection: Connection, cutoff: dt.datetime, horizon_days: int = 90) -> ClubValue:
    """Fit the value model on the members' own order lines before ``cutoff`` and predict ``horizon_days``
    ahead (module doc: auto-ship lines and their returns are not the member's buying).

    Raises BookclubError when there are no order lines before the cutoff or no member made
    a repeat purchase (the model is then not identified).
    """
    if horizon_days < 1:
        raise BookclubError(f"the horizon must be at least one day, got {horizon_days}")
    end = cutoff + dt.timedelta(days=horizon_days)
    members = purchase_log.read_members(connection)
    # the member's own buying: auto-ships and their returns left out (module doc)
    lines = purchase_log.read_line_amounts(connection, end=end, own_orders=True)
    newest = purchase_log.newest_purchase(connection, own_orders=True)
    n = len(members.keys)
    if n == 0 or newest is None:
        raise BookclubError("no order lines stored: import purchases first")
    days = lines.purchased_at / SECONDS_PER_DAY
    cutoff_day = _day(cutoff)
    if not np.any(days < cutoff_day):
        raise BookclubError(f"no order line before the cutoff {cutoff.date()}: choose a later cutoff")
    rows = member_rows(members.keys, lines.member_key)
    summary = summarise(rows, days, lines.amount, n, cutoff_day)
    try:
        model = fit_member_value(summary)
    except ValueError as exc:
        raise BookclubError(f"the value model cannot be fitted at {cutoff.date()}: {exc}") from None
    purchases, value = model.predict(summary, float(horizon_days))
    actual: npt.NDArray[np.int64] | None = None
    actual_value: npt.NDArray[np.float64] | None = None
    # the comparison needs the whole horizon stored: a line on or after its last day
    if newest is not None and _day(newest) >= _day(end) - 1.0:
        actual, actual_value = purchases_between(rows, days, lines.amount, n, cutoff_day, _day(end))
    return ClubValue(
        cutoff=cutoff,
        horizon_days=horizon_days,
        member_key=members.keys,
        member_id=members.ids,
        model=model,
        summary=summary,
        probability_alive=model.probability_alive(summary),
        expected_purchases=purchases,
        expected_value=value,
        baseline_purchases=naive_rate_forecast(summary, float(horizon_days)),
        actual_purchases=actual,
        actual_value=actual_value,
        newest_line=newest,
        lines_read=len(lines),
    )
