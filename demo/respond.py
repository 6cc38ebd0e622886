"""A demo club that responds to a mailing, with a known true effect per member.

After a quarter's contacts are written, :func:`simulate_responses` draws what each
mailed and held-out member orders in the response window, with
:func:`campaign.simulate.simulate_mailing` (the response model and its formulas are
documented there): the baseline response depends on the member's segment, value
tier, affinity to the edition's titles and recency; the mailing persuades a share of
non-buyers (the true incremental effect, never negative). The member's features:

- segment: their contact's segment (taken modulo the model's four segment parameters);
- tier: ``core`` → loyal, ``regular`` → regular, ``occasional`` and ``lapsed`` → occasional;
- affinity: the share of the member's units in the two years before the in-home date
  whose primary category falls in the edition's catalog sections (0 without history);
- recency: days since the last order as of the quarter's segmentation (two years when
  never, capped there).

Each responder's orders become order lines dated in the response window (one line
per order, the order's value its price, a title of the edition's plan); a mailed
responder writes the key code on the form for about half their orders. Margin is the
report's flat ``margin_rate``, so the truth and the report measure the same thing.

When the club runs the negative option (``negative_option`` passed, its setting on), the
mailed members also answer their edition's main selection: about :data:`DECLINE_SHARE` of
them decline it before the reply deadline (by card, phone or web); the main selections are
then auto-shipped the day after the deadline (:func:`campaign.negative_option.run_autoship`)
and :data:`RETURN_SHARE` of the auto-ships come back 3–28 days later (an ordinary negative
order line, ``SIM-<campaign>-return-<member key>``). With the setting off none of this happens.

The truth per arm is the average true increment over the arm's members, mailed and
held out together (the population its holdout was drawn from); it is the truth of the
active orders, which the report measures without the auto-ships. Lines are keyed
``SIM-<campaign>-<member>-<n>`` and drawn from a seed fixed by the campaign: running it
again writes nothing new and gives the same truth. Only ever run on a demo club.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection

from campaign.effects import OUTCOMES
from campaign.negative_option import deadline, run_autoship
from campaign.simulate import MemberFeatures, ResponseModel, simulate_mailing, true_effects
from recsys.errors import BookclubError
from recsys.settings import CampaignSettings
from recsys.storage import campaigns as campaigns_db
from recsys.storage import club as club_db
from recsys.storage import contacts as contacts_db
from recsys.storage import purchases as purchases_db
from recsys.storage import selections as selections_db
from recsys.storage import titles as titles_db
from recsys.storage.contacts import ARM_CODES

__all__ = ["TIER_INDEX", "SimulatedResponses", "simulate_responses", "truth_lines"]

TIER_INDEX = {"occasional": 0, "lapsed": 0, "regular": 1, "core": 2}
KEY_CODE_SHARE = 0.5
DECLINE_SHARE = 0.3  # of mailed members with a main selection, under the negative option
RETURN_SHARE = 0.2  # of auto-shipped main selections sent back
REPLY_SOURCES = ("card", "phone", "web")
_CENT = Decimal("0.01")


@dataclass(frozen=True)
class SimulatedResponses:
    """What the simulation wrote and the truth it knows."""

    lines: int  # order lines written by this call (0 when run before)
    responders: int
    truth: dict[int, dict[str, float]]  # treatment id → outcome → true average increment per member
    truth_all: dict[str, float]  # over every mailed and held-out member
    declines: int = 0  # main selections declined (negative option; written by this call)
    autoships: int = 0  # main selections auto-shipped by this call
    autoship_returns: int = 0  # of those, return lines written by this call


def _affinity(
    connection: Connection, member_keys: npt.NDArray[np.int64], segments: npt.NDArray[np.int64],
    sections: Mapping[int, Sequence[str]], in_home: dt.date,
) -> npt.NDArray[np.float64]:
    until = dt.datetime.combine(in_home, dt.time())
    units = purchases_db.primary_category_units(connection, until - dt.timedelta(days=730), until)
    total: dict[int, int] = defaultdict(int)
    by_member: dict[int, list[tuple[str, int]]] = defaultdict(list)
    for key, code, n in units:
        total[key] += n
        by_member[key].append((code, n))
    out = np.zeros(member_keys.size, dtype=np.float64)
    for i, (key, segment) in enumerate(zip(member_keys.tolist(), segments.tolist(), strict=True)):
        prefixes = tuple(sections.get(segment, ()))
        if total[key] > 0 and prefixes:
            inside = sum(n for code, n in by_member[key] if code.startswith(prefixes))
            out[i] = min(1.0, inside / total[key])
    return out


def simulate_responses(
    connection: Connection,
    campaign_ref: str | int,
    *,
    sections: Mapping[int, Sequence[str]],
    plan_titles: Mapping[int, Sequence[str]],
    margin_rate: float,
    seed: int | None = None,
    negative_option: CampaignSettings | None = None,
) -> SimulatedResponses:
    """Draw and write the responses of the campaign's mailed and held-out members (module docstring).

    ``sections``: segment → the category codes of its edition's sections; ``plan_titles``:
    segment → the title ids of its plan (the orders' titles); ``negative_option``: the club's
    campaign settings, for declines, auto-ships and their returns when it runs the negative option.
    """
    if not club_db.is_demo_club(connection):
        raise BookclubError("simulated responses are written only into a generated demo club")
    campaign = campaigns_db.find_campaign(connection, campaign_ref)
    members = contacts_db.contact_members(connection, campaign.id, campaign.quarter)
    n = len(members.member_id)
    if n == 0:
        raise BookclubError(f"campaign {campaign.name} has no mailed or held-out contacts")
    model = ResponseModel(margin_rate=(margin_rate,) * 3)
    features = MemberFeatures(
        segment=np.maximum(members.segment, 0),
        tier=np.asarray([TIER_INDEX.get(t or "", 0) for t in members.tier], dtype=np.int64),
        affinity=_affinity(connection, members.member_key, members.segment, sections, campaign.in_home_date),
        recency_days=np.where(members.recency_days < 0, 730, np.minimum(members.recency_days, 730)).astype(np.float64),
    )
    held = members.arm == ARM_CODES["holdout"]
    rng_seed = (seed if seed is not None else campaign.seed) % (1 << 63)
    mailing = simulate_mailing(features, holdout_share=0.5, holdout=held, seed=rng_seed, model=model)
    effects = true_effects(features, model)

    truth: dict[int, dict[str, float]] = {}
    for treatment_id in np.unique(members.treatment_id).tolist():
        mask = members.treatment_id == treatment_id
        if np.any(mask & ~held) and np.any(mask & held):
            truth[int(treatment_id)] = effects.average(mask)

    # per member: orders and revenue, in contact order
    orders = np.zeros(n, dtype=np.int64)
    revenue = np.zeros(n, dtype=np.float64)
    mailed_index, held_index = np.flatnonzero(~held), np.flatnonzero(held)
    orders[mailed_index] = mailing.mailed.orders.astype(np.int64)
    orders[held_index] = mailing.holdout.orders.astype(np.int64)
    revenue[mailed_index] = mailing.mailed.revenue
    revenue[held_index] = mailing.holdout.revenue

    lines = _lines(connection, campaign, members, orders, revenue, held, plan_titles, rng_seed)
    existing = purchases_db.existing_line_ids(connection, [r["line_id"] for r in lines])
    written = purchases_db.insert_purchase_rows(connection, [r for r in lines if r["line_id"] not in existing])
    declines = autoships = returns = 0
    if negative_option is not None and negative_option.negative_option:
        declines, autoships, returns = _negative_option(connection, campaign, negative_option, rng_seed)
    return SimulatedResponses(
        lines=len(written), responders=int(np.count_nonzero(orders)), truth=truth,
        truth_all=effects.average(), declines=declines, autoships=autoships, autoship_returns=returns,
    )


def _negative_option(
    connection: Connection, campaign: campaigns_db.CampaignRecord, settings: CampaignSettings, seed: int
) -> tuple[int, int, int]:
    """Declines before the deadline, the auto-ships the day after it, and returns of some of them:
    (declines, auto-ships, returns) written by this call."""
    mailed = sorted(
        selections_db.mailed_selections(connection, campaign.id, campaign.in_home_date), key=lambda m: m.member_key
    )
    if not any(m.title_key is not None for m in mailed):
        return 0, 0, 0
    rng = np.random.default_rng([seed, 2])
    declines = 0
    for member in mailed:  # one draw of each per member, whatever happens, so that a re-run draws the same
        declines_it = rng.random() < DECLINE_SHARE
        day = int(rng.integers(0, settings.reply_days + 1))
        hour, source = int(rng.integers(8, 21)), REPLY_SOURCES[int(rng.integers(0, len(REPLY_SOURCES)))]
        if declines_it and member.title_key is not None:
            at = dt.datetime.combine(member.in_home + dt.timedelta(days=day), dt.time(hour))
            declines += selections_db.record_decline(connection, campaign.id, member.member_key,
                                                     replied_at=at, source=source)
    as_of = max(deadline(m.in_home, settings) for m in mailed) + dt.timedelta(days=1)
    shipped = run_autoship(connection, campaign.id, settings, as_of=as_of).written
    lines = selections_db.autoship_lines(connection, campaign.id)
    rng = np.random.default_rng([seed, 3])
    rows: list[dict[str, Any]] = []
    for i in np.argsort(lines.member_key, kind="stable").tolist():
        sent_back = rng.random() < RETURN_SHARE
        after = int(rng.integers(3, 29))
        if not sent_back:
            continue
        line_id = f"SIM-{campaign.name}-return-{int(lines.member_key[i])}"
        unit_price = Decimal(str(lines.value[i] / max(int(lines.units[i]), 1))).quantize(_CENT, rounding=ROUND_HALF_UP)
        rows.append({
            "line_id": line_id, "order_id": line_id, "member_key": int(lines.member_key[i]),
            "title_key": int(lines.title_key[i]), "quantity": -1, "unit_price": unit_price,
            "purchased_at": dt.datetime.combine(lines.shipped_on[i] + dt.timedelta(days=after), dt.time(11)),
            "channel": "mail", "key_code": None,
        })
    existing = purchases_db.existing_line_ids(connection, [r["line_id"] for r in rows])
    returned = purchases_db.insert_purchase_rows(connection, [r for r in rows if r["line_id"] not in existing])
    return declines, shipped, len(returned)


def _lines(
    connection: Connection, campaign: campaigns_db.CampaignRecord, members: contacts_db.ContactMembers,
    orders: npt.NDArray[np.int64], revenue: npt.NDArray[np.float64], held: npt.NDArray[np.bool_],
    plan_titles: Mapping[int, Sequence[str]], seed: int,
) -> list[dict[str, Any]]:
    """One order line per simulated order (the member's revenue split over their orders)."""
    rng = np.random.default_rng([seed, 1])
    codes = {t.id: t.key_code for t in campaigns_db.treatments(connection, campaign.id)}
    wanted = sorted({t for ids in plan_titles.values() for t in ids})
    title_keys = titles_db.title_keys(connection, wanted)
    fallback = sorted(title_keys)
    if not fallback:
        raise BookclubError("the editions' plans name no stored title: plan the quarter first")
    rows: list[dict[str, Any]] = []
    for i in np.flatnonzero(orders).tolist():
        k = int(orders[i])
        member_id = members.member_id[i]
        titles = [t for t in plan_titles.get(int(members.segment[i]), ()) if t in title_keys] or fallback
        total = Decimal(str(revenue[i])).quantize(_CENT, rounding=ROUND_HALF_UP)
        share = (total / k).quantize(_CENT, rounding=ROUND_HALF_UP)
        days = np.sort(rng.integers(0, campaign.response_days, size=k))
        hours = rng.integers(8, 21, size=k)
        picks = rng.integers(0, len(titles), size=k)
        keyed = rng.random(k) < KEY_CODE_SHARE
        for j in range(k):
            price = share if j < k - 1 else total - share * (k - 1)  # the orders add up to the total
            line_id = f"SIM-{campaign.name}-{member_id}-{j + 1}"
            rows.append({
                "line_id": line_id, "order_id": line_id, "member_key": int(members.member_key[i]),
                "title_key": title_keys[titles[int(picks[j])]][0], "quantity": 1, "unit_price": price,
                "purchased_at": dt.datetime.combine(
                    campaign.in_home_date + dt.timedelta(days=int(days[j])), dt.time(int(hours[j]))
                ),
                "channel": "mail",
                "key_code": codes.get(int(members.treatment_id[i])) if not held[i] and keyed[j] else None,
            })
    return rows


def truth_lines(report: Any, simulated: SimulatedResponses) -> tuple[list[str], int, int]:
    """Each arm's estimate and interval beside the simulated truth: (lines, covered, intervals).

    ``report`` is a :class:`campaign.report.CampaignReport`.
    """
    lines: list[str] = []
    covered = total = 0
    for arm in report.arms:
        truth = simulated.truth.get(arm.treatment.id)
        if truth is None:
            continue
        marks = []
        for outcome in OUTCOMES:
            effect = arm.effect.outcome(outcome)
            inside = effect.low <= truth[outcome] <= effect.high
            covered += inside
            total += 1
            scale, unit = (100.0, " pts") if outcome == "response" else (1.0, "")
            marks.append(
                f"{outcome} {effect.incremental * scale:+.3f}{unit} [{effect.low * scale:+.3f}, "
                f"{effect.high * scale:+.3f}] truth {truth[outcome] * scale:+.3f} {'✓' if inside else '✗'}"
            )
        lines.append(f"  {arm.name}: " + "; ".join(marks))
    return lines, covered, total
