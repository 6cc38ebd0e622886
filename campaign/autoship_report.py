"""Auto-ship order lines (the negative option) reported apart from active orders.

The report's per-arm effects count active orders only: ``contact_outcomes`` leaves auto-ship
lines and their returns out. This section says what the auto-ships did on their own:

- how many main selections were shipped, to how many members, for how much (billed, returned,
  net) and the **return rate**: returned auto-ship units over units shipped, with its Wilson
  interval;
- their **effect against the holdout**: held-out members get no edition, so no main selection
  and no auto-ship — their auto-ship outcome is zero by design. The auto-ship effect per piece
  is therefore all of the mailed members' net auto-ship revenue, and its interval reflects only
  how it spreads over the mailed members. That does not make it all profit the club would
  otherwise lack: a member who would have bought the title, or some other title, without the
  negative option shows up as a *lower active effect*, not as a lower auto-ship figure. The
  whole mailing under the negative option is judged by **active + auto-ship** against the
  holdout (still a randomized comparison: the holdout saw neither), given beside it.

Money is net of returns to date (a return is a negative line of the member and title at or
after the shipment; ``selections.autoship_lines``), margin is ``margin_rate`` × net revenue.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection

from campaign.effects import ArmEffect, Interval, OutcomeArrays, arm_effect, wilson_interval
from recsys.settings import CampaignSettings
from recsys.storage import selections as selections_db
from recsys.storage.contacts import ContactArrays

__all__ = ["AutoshipSection", "autoship_lines_text", "autoship_section"]

HOLDOUT_NOTE = (
    "held-out members get no edition and so no auto-ship: against the holdout every net auto-ship "
    "sale counts as incremental; what the negative option displaces shows in the active effect, and "
    "active + auto-ship against the holdout is the mailing's whole effect"
)


@dataclass(frozen=True)
class AutoshipSection:
    """A campaign's auto-ship lines, their returns and their effect against the holdout."""

    enabled: bool  # the negative option setting when the report ran
    lines: int
    members: int
    units: int
    billed: float  # shipped units × price
    returned_units: int
    returned_value: float
    return_rate: Interval | None  # returned units / units shipped; None when nothing shipped
    mailed_members: int  # mailed members in the compared arms
    matched_lines: int  # auto-ship lines and returns among the matchback's lines
    matched_value: float
    effect: ArmEffect | None  # auto-ship alone, mailed vs holdout (zero by design)
    total: ArmEffect | None  # active + auto-ship, mailed vs holdout
    note: str

    @property
    def net_revenue(self) -> float:
        return self.billed - self.returned_value

    def to_json(self) -> dict[str, Any]:
        return {
            "enabled": self.enabled,
            "lines": self.lines,
            "members": self.members,
            "units": self.units,
            "revenue": self.billed,
            "returned_units": self.returned_units,
            "returned_value": self.returned_value,
            "net_revenue": self.net_revenue,
            "return_rate": None if self.return_rate is None else {
                "estimate": self.return_rate.estimate, "low": self.return_rate.low, "high": self.return_rate.high,
                "method": self.return_rate.method,
            },
            "mailed_members": self.mailed_members,
            "share_of_mailed": self.members / self.mailed_members if self.mailed_members else None,
            "matchback": {"lines": self.matched_lines, "revenue": self.matched_value},
            "effect": None if self.effect is None else self.effect.to_json(),
            "active_plus_autoship": None if self.total is None else self.total.to_json(),
            "holdout_note": self.note,
        }


def autoship_section(
    connection: Connection,
    campaign_id: int,
    arrays: ContactArrays,
    active_orders: npt.NDArray[np.float64],
    active_revenue: npt.NDArray[np.float64],
    treated: npt.NDArray[np.bool_],
    controls: npt.NDArray[np.bool_] | None,
    settings: CampaignSettings,
) -> AutoshipSection | None:
    """The section for campaign ``campaign_id``; None when nothing was shipped and the club does
    not run the negative option. ``arrays``, ``active_orders`` and ``active_revenue`` are the
    report's contacts and their active outcomes; ``treated`` / ``controls`` mark the mailed and
    holdout contacts compared (``controls`` None when the arms cannot be pooled)."""
    lines = selections_db.autoship_lines(connection, campaign_id)
    if not len(lines) and not settings.negative_option:
        return None
    units = int(lines.units.sum())
    returned = int(lines.returned_units.sum())
    matched_lines, matched_value = selections_db.autoship_matches(connection, campaign_id)

    # per contact of the report: auto-ship orders and net revenue (contacts outside the arrays are not compared)
    autoship_orders = np.zeros(arrays.contact_id.size, dtype=np.float64)
    autoship_revenue = np.zeros(arrays.contact_id.size, dtype=np.float64)
    where = np.searchsorted(arrays.contact_id, lines.contact_id)
    inside = where < arrays.contact_id.size
    inside[inside] = arrays.contact_id[where[inside]] == lines.contact_id[inside]
    np.add.at(autoship_orders, where[inside], 1.0)
    np.add.at(autoship_revenue, where[inside], lines.value[inside] - lines.returned_value[inside])

    effect = total = None
    if controls is not None and treated.any() and controls.any():
        margin = settings.margin_rate

        def outcome(mask: npt.NDArray[np.bool_], orders: npt.NDArray[np.float64],
                    revenue: npt.NDArray[np.float64]) -> OutcomeArrays:
            return OutcomeArrays(orders[mask] > 0, orders[mask], revenue[mask], revenue[mask] * margin)

        effect = arm_effect(
            outcome(treated, autoship_orders, autoship_revenue), outcome(controls, autoship_orders, autoship_revenue),
            cost_per_piece=0.0, seed=settings.report_seed * 1009 + 991, resamples=settings.resamples,
            arm="auto-ship", confidence=settings.confidence,
        )
        both_orders, both_revenue = active_orders + autoship_orders, active_revenue + autoship_revenue
        total = arm_effect(
            outcome(treated, both_orders, both_revenue), outcome(controls, both_orders, both_revenue),
            cost_per_piece=float(arrays.cost[treated].mean()), seed=settings.report_seed * 1009 + 993,
            resamples=settings.resamples, arm="active + auto-ship", confidence=settings.confidence,
        )
    note = HOLDOUT_NOTE if controls is not None else (
        HOLDOUT_NOTE + " (not measured here: the arms' holdout shares differ, so they are not pooled)"
    )
    return AutoshipSection(
        enabled=settings.negative_option,
        lines=len(lines),
        members=int(np.unique(lines.member_key).size),
        units=units,
        billed=float(lines.value.sum()),
        returned_units=returned,
        returned_value=float(lines.returned_value.sum()),
        return_rate=wilson_interval(returned, units, settings.confidence) if units > 0 else None,
        mailed_members=int(treated.sum()),
        matched_lines=matched_lines,
        matched_value=matched_value,
        effect=effect,
        total=total,
        note=note,
    )


def _per_piece(effect: ArmEffect, outcome: str) -> str:
    o = effect.outcome(outcome)
    return f"{o.incremental:+.2f} [{o.low:+.2f}, {o.high:+.2f}]"


def autoship_lines_text(section: AutoshipSection) -> list[str]:
    """The section as report lines."""
    state = "on" if section.enabled else "off"
    if not section.lines:
        return [f"auto-ship (negative option {state}): nothing shipped yet"]
    share = f" ({section.members / section.mailed_members:.1%} of {section.mailed_members:,} mailed)" \
        if section.mailed_members else ""
    out = [
        f"auto-ship (negative option {state}), apart from the active orders above:",
        f"  {section.lines:,} main selection(s) shipped to {section.members:,} member(s){share}: "
        f"{section.billed:,.2f} billed, {section.returned_units:,} of {section.units:,} unit(s) returned "
        f"({section.returned_value:,.2f}), net {section.net_revenue:,.2f}",
    ]
    if section.return_rate is not None:
        r = section.return_rate
        out.append(f"  return rate {r.estimate:.1%} [{r.low:.1%}, {r.high:.1%}] of units shipped")
    if section.effect is not None:
        e = section.effect
        out.append(
            f"  effect vs holdout: net auto-ship revenue {_per_piece(e, 'revenue')}, margin "
            f"{_per_piece(e, 'margin')} per piece ({e.mailed_members:,} mailed, {e.holdout_members:,} held out)"
        )
    if section.total is not None:
        t = section.total
        net = t.net_profit_per_piece
        out.append(
            f"  active + auto-ship vs holdout: revenue {_per_piece(t, 'revenue')}, margin {_per_piece(t, 'margin')} "
            f"per piece; net profit {net.estimate:+.2f} [{net.low:+.2f}, {net.high:+.2f}] after the piece's cost"
        )
    out.append(f"  note: {section.note}")
    if section.matched_lines:
        out.append(
            f"  matchback: {section.matched_lines:,} auto-ship line(s) and returns ({section.matched_value:,.0f}) "
            "left out of the matchback figures"
        )
    return out
