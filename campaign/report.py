"""The effect of each edition: mailed members against their random holdout, with intervals.

For every treated arm (a treatment with mailed contacts) the report compares its
mailed members with the held-out members of the same randomisation — the arm's own
holdout contacts, or the holdout arm it names as its control (Hillstrom's
``No E-Mail``) — over the response window after the in-home date:

- per member: responders, orders, revenue (net of returns) and margin
  (``margin_rate`` × revenue: titles carry no cost of goods), every order line of the
  member counting whether matchback attributed it or not;
- the incremental response rate, orders, revenue and margin per piece with 95 %
  intervals (:func:`campaign.effects.arm_effect`: Newcombe for the rate, bootstrap
  for money), the share of the mailed members' revenue that would have come anyway,
  and the net profit per piece after the edition's cost;
- beside it, what matchback credited to the arm under each rule (last, fractional,
  all): the figure a response-counting system would report.

Active orders only: auto-ship lines of the negative option and their returns are left out
of every figure above and reported apart (:mod:`campaign.autoship_report`: count, revenue,
return rate, and their effect against the holdout, who get no auto-ship).

At the top, the sample-ratio check of every arm (and of all arms together when the
campaign states their intended shares): a campaign whose arms are the wrong sizes
says so before any effect. The same report groups the arms by the model version and
edition that were live. Nothing is written: re-running gives the same report
(bootstrap seeds are fixed by ``report_seed`` and the arm). The report is data here, with its
JSON (``to_json``); as text on the terminal it is :mod:`campaign.report_text`.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection

from campaign.autoship_report import AutoshipSection, autoship_section
from campaign.effects import (
    ArmEffect,
    OutcomeArrays,
    SampleRatio,
    arm_effect,
    sample_ratio_check,
)
from recsys.settings import CampaignSettings
from recsys.storage import campaigns as campaigns_db
from recsys.storage import contacts as contacts_db
from recsys.storage import matches as matches_db
from recsys.storage.campaigns import CampaignRecord, EditionRecord, TreatmentRecord
from recsys.storage.contacts import ARM_CODES, ContactArrays

__all__ = ["ArmReport", "CampaignReport", "campaign_report"]

MAILED, HOLDOUT = ARM_CODES["mailed"], ARM_CODES["holdout"]


@dataclass(frozen=True)
class ArmReport:
    """One treated arm against its holdout, with what it is and what matchback said of it."""

    effect: ArmEffect
    treatment: TreatmentRecord
    control: TreatmentRecord
    edition: EditionRecord | None
    segment: int | None
    holdout_share: float | None  # the intended P(held out); None when unknown
    credited: dict[str, float]  # matchback's revenue credited to the arm: last / fractional / all
    revenue_total_mailed: float
    stratum: str | None = None  # set when the arm is split by holdout share

    @property
    def name(self) -> str:
        return self.effect.arm

    def to_json(self) -> dict[str, Any]:
        payload = self.effect.to_json()
        incremental_total = self.effect.revenue.incremental * self.effect.mailed_members
        payload.update(
            {
                "treatment_id": self.treatment.id,
                "holdout_arm": self.control.name,
                "key_code": self.treatment.key_code,
                "segment": self.segment,
                "edition": None if self.edition is None else self.edition.code,
                "kind": None if self.edition is None else self.edition.kind,
                "model_version": None if self.edition is None else self.edition.model_version,
                "pieces": self.effect.mailed_members,
                "holdout_share": self.holdout_share,
                "revenue_mailed_total": self.revenue_total_mailed,
                "revenue_incremental_total": incremental_total,
                "matchback_credited": self.credited,
                "stratum": self.stratum,
            }
        )
        return payload


@dataclass
class CampaignReport:
    campaign: CampaignRecord
    arms: list[ArmReport]
    sample_ratio: list[tuple[str, SampleRatio]]
    contacts: dict[str, int]
    suppressed: dict[str, int]
    editions: list[EditionRecord]
    model_versions: list[tuple[str, list[str], ArmEffect | None]]
    total: ArmEffect | None
    matchback: matches_db.MatchTotals
    margin_rate: float
    warnings: list[str] = field(default_factory=list)
    autoship: AutoshipSection | None = None  # None: nothing shipped and the negative option is off

    @property
    def mismatch(self) -> bool:
        return any(check.mismatch for _name, check in self.sample_ratio)

    def to_json(self) -> dict[str, Any]:
        c = self.campaign
        return {
            "campaign": {
                "id": c.id,
                "name": c.name,
                "quarter": c.quarter,
                "in_home_date": c.in_home_date.isoformat(),
                "response_days": c.response_days,
                "late_days": c.late_days,
                "holdout_share": c.holdout_share,
                "universal_holdout_share": c.universal_holdout_share,
            },
            "sample_ratio": {
                "mismatch": self.mismatch,
                "checks": [{"arm": name, **check.to_json()} for name, check in self.sample_ratio],
            },
            "warnings": list(self.warnings),
            "margin_rate": self.margin_rate,
            "contacts": {"arms": dict(self.contacts), "suppressed": dict(self.suppressed)},
            "arms": [arm.to_json() for arm in self.arms],
            "total": None if self.total is None else self.total.to_json(),
            "editions": [
                {
                    "code": e.code,
                    "name": e.name,
                    "kind": e.kind,
                    "segment": e.segment,
                    "in_home_date": e.in_home_date.isoformat(),
                    "cost_per_piece": float(e.cost_per_piece),
                    "costs": {
                        "print": float(e.print_cost),
                        "paper": float(e.paper_cost),
                        "postage": float(e.postage_cost),
                        "other": float(e.other_cost),
                    },
                    "model_version": e.model_version,
                    "plan_id": e.plan_id,
                    "plan_hash": e.plan_hash,
                    "file": e.file,
                }
                for e in self.editions
            ],
            "model_versions": [
                {"model_version": version, "arms": names, "effect": None if effect is None else effect.to_json()}
                for version, names, effect in self.model_versions
            ],
            "matchback": {
                "lines": dict(self.matchback.lines),
                "revenue": dict(self.matchback.revenue),
                "late_lines": self.matchback.late_lines,
            },
            "autoship": None if self.autoship is None else self.autoship.to_json(),
        }


def _outcomes(arrays: ContactArrays, outcomes: matches_db.ContactOutcomes, margin_rate: float) -> tuple[
    npt.NDArray[np.float64], npt.NDArray[np.float64]
]:
    """Orders and revenue per contact of ``arrays`` (zeros for contacts who bought nothing)."""
    orders = np.zeros(arrays.contact_id.size, dtype=np.float64)
    revenue = np.zeros(arrays.contact_id.size, dtype=np.float64)
    if outcomes.contact_id.size:
        where = np.searchsorted(arrays.contact_id, outcomes.contact_id)
        orders[where] = outcomes.orders
        revenue[where] = outcomes.revenue
    return orders, revenue


def _arrays(mask: npt.NDArray[np.bool_], orders: npt.NDArray[np.float64], revenue: npt.NDArray[np.float64],
            margin_rate: float) -> OutcomeArrays:
    return OutcomeArrays(orders[mask] > 0, orders[mask], revenue[mask], revenue[mask] * margin_rate)


def campaign_report(connection: Connection, ref: str | int, settings: CampaignSettings) -> CampaignReport:
    """The report of campaign ``ref`` (name or id): see the module docstring."""
    campaign = campaigns_db.find_campaign(connection, ref)
    all_treatments = campaigns_db.treatments(connection, campaign.id)
    by_id = {t.id: t for t in all_treatments}
    editions = campaigns_db.editions(connection, campaign.id)
    edition_of = {e.id: e for e in editions}
    arrays = contacts_db.contact_arrays(connection, campaign.id)
    outcomes = matches_db.contact_outcomes(connection, campaign.id, settings.timezone)
    orders, revenue = _outcomes(arrays, outcomes, settings.margin_rate)
    totals = matches_db.match_totals(connection, campaign.id)
    mailed = arrays.arm == MAILED
    held = arrays.arm == HOLDOUT
    warnings: list[str] = []
    arms: list[ArmReport] = []
    checks: list[tuple[str, SampleRatio]] = []

    for index, treatment in enumerate(all_treatments):
        in_arm = mailed & (arrays.treatment_id == treatment.id)
        if not in_arm.any():
            continue
        control = by_id.get(treatment.control_id or treatment.id, treatment)
        in_control = held & (arrays.treatment_id == control.id)
        # an arm whose members had different holdout shares is compared within each share
        shares = np.unique(arrays.holdout_share[in_arm | in_control])
        known = shares[~np.isnan(shares)]
        strata: list[tuple[str | None, npt.NDArray[np.bool_], float | None]] = []
        if known.size <= 1:
            share: float | None = float(known[0]) if known.size == 1 else None
            if share is None and treatment.share and control.share and control is not treatment:
                share = control.share / (control.share + treatment.share)
            strata.append((None, np.ones(arrays.contact_id.size, dtype=np.bool_), share))
        else:
            for value in known:
                strata.append((f"holdout {value:.2%}", arrays.holdout_share == value, float(value)))
        segments = np.unique(arrays.segment[in_arm])
        segment = int(segments[0]) if segments.size == 1 and segments[0] >= 0 else None
        edition = edition_of.get(treatment.edition_id) if treatment.edition_id is not None else None
        for stratum, where, share in strata:
            m, h = in_arm & where, in_control & where
            name = treatment.name if stratum is None else f"{treatment.name} · {stratum}"
            if not h.any():
                warnings.append(f"{name}: no holdout members to compare with; no effect can be measured")
                continue
            effect = arm_effect(
                _arrays(m, orders, revenue, settings.margin_rate),
                _arrays(h, orders, revenue, settings.margin_rate),
                cost_per_piece=float(arrays.cost[m].mean()),
                seed=settings.report_seed * 1009 + index,
                resamples=settings.resamples,
                arm=name,
                expected_holdout_share=share,
                confidence=settings.confidence,
            )
            if effect.sample_ratio is not None:
                checks.append((name, effect.sample_ratio))
            arms.append(
                ArmReport(
                    effect=effect, treatment=treatment, control=control, edition=edition, segment=segment,
                    holdout_share=share, credited=totals.credited.get(treatment.id, {"last": 0.0, "fractional": 0.0, "all": 0.0}),
                    revenue_total_mailed=float(revenue[m].sum()), stratum=stratum,
                )
            )

    # all arms at once, when the campaign states each arm's intended share (imported tests)
    stated = [t for t in all_treatments if t.share is not None]
    if len(stated) >= 2:
        observed = [int(((mailed | held) & (arrays.treatment_id == t.id)).sum()) for t in stated]
        if all(n > 0 for n in observed):
            checks.append(("all arms", sample_ratio_check(observed, [float(t.share or 0) for t in stated])))
    for name, check in checks:
        if check.mismatch:
            warnings.insert(
                0,
                f"SAMPLE RATIO MISMATCH in {name}: arms of {list(check.observed)} where "
                f"{[round(e) for e in check.expected]} were expected (p = {check.p_value:.2g}); "
                "the comparison is suspect",
            )

    total = None
    if len(arms) > 1 and all(a.stratum is None for a in arms):
        total = _pooled(arms, arrays, orders, revenue, settings, "all arms")
    model_versions = []
    grouped: dict[str, list[ArmReport]] = defaultdict(list)
    for arm in arms:
        version = arm.edition.model_version if arm.edition and arm.edition.model_version else "(none)"
        grouped[version].append(arm)
    for version, members in sorted(grouped.items()):
        pooled = _pooled(members, arrays, orders, revenue, settings, f"model {version}") if len(grouped) > 1 else None
        model_versions.append((version, [a.name for a in members], pooled))

    treated, controls = _compared(arms, arrays)
    autoship = autoship_section(connection, campaign.id, arrays, orders, revenue, treated, controls, settings)

    return CampaignReport(
        campaign=campaign,
        arms=arms,
        sample_ratio=checks,
        contacts=contacts_db.contact_counts(connection, campaign.id),
        suppressed=contacts_db.suppression_reasons(connection, campaign.id),
        editions=editions,
        model_versions=model_versions,
        total=total,
        matchback=totals,
        margin_rate=settings.margin_rate,
        warnings=warnings,
        autoship=autoship,
    )


def _compared(arms: list[ArmReport], arrays: ContactArrays) -> tuple[
    npt.NDArray[np.bool_], npt.NDArray[np.bool_] | None
]:
    """The mailed contacts of every reported arm, and their holdouts when the arms can be pooled
    (one holdout share; otherwise None)."""
    treated = np.isin(arrays.treatment_id, [a.treatment.id for a in arms]) & (arrays.arm == MAILED)
    if len({a.holdout_share for a in arms}) != 1:
        return treated, None
    return treated, np.isin(arrays.treatment_id, list({a.control.id for a in arms})) & (arrays.arm == HOLDOUT)


def _pooled(
    arms: list[ArmReport],
    arrays: ContactArrays,
    orders: npt.NDArray[np.float64],
    revenue: npt.NDArray[np.float64],
    settings: CampaignSettings,
    name: str,
) -> ArmEffect | None:
    """Several arms' mailed members against their holdouts together (each holdout counted once);
    only when every arm had the same holdout share, otherwise pooling would be biased."""
    shares = {a.holdout_share for a in arms}
    if len(shares) != 1:
        return None
    treated = np.isin(arrays.treatment_id, [a.treatment.id for a in arms]) & (arrays.arm == MAILED)
    controls = np.isin(arrays.treatment_id, list({a.control.id for a in arms})) & (arrays.arm == HOLDOUT)
    if not treated.any() or not controls.any():
        return None
    return arm_effect(
        _arrays(treated, orders, revenue, settings.margin_rate),
        _arrays(controls, orders, revenue, settings.margin_rate),
        cost_per_piece=float(arrays.cost[treated].mean()),
        seed=settings.report_seed * 1009 + 997,
        resamples=settings.resamples,
        arm=name,
        confidence=settings.confidence,
    )
