"""A quarter's mailing decided from the club's own data: who gets which edition, or nothing, and why.

``plan_mailing(connection, settings, quarter, …)``:

1. **The audience** — the members segmented in the quarter, with their value tier,
   segment and R/F/M (``member_segments``), their lifetime value at the quarter's
   start (:func:`campaign.club_value.value_club`: P(alive), expected purchases and value
   over ``mailing.value_horizon_days``) and their affinity to their edition (the share of
   their units in the two years before whose primary category falls in the sections of
   their segment's catalog plan). These are the features (:data:`FEATURES`).
2. **What each edition does** — an uplift model (:mod:`campaign.uplift`) learned from every
   earlier campaign's randomized contacts: mailed against held out, each member's
   orders, revenue and margin in the response window (``campaigns.contact_outcomes``),
   with the features as they were for that campaign's quarter. Only the edition kinds
   of ``mailing.options`` that earlier campaigns mailed *with* a holdout can be learned;
   the others are not offered (the plan says so) — nothing is guessed.
3. **The rules** — the contact rules of ``mailing`` and the suppression list
   (:func:`campaign.rules.eligibility`), the member's status and postal address.
4. **The random holdout** — the same seeded hash of (member id, campaign) as the
   campaign's contacts (:mod:`campaign.holdouts`): held-out members are planned, then
   not mailed.
5. **The decision** — :func:`campaign.policy.decide` on expected incremental margin minus
   the piece's cost (plus ``mailing.lifetime_value_weight`` × the change in lifetime value
   an order brings, from the value model: the member's expected future value after one
   more purchase today minus without it, times the uplift in response), under the budget,
   the cap on pieces and the capacities.

The plan is pure data (:class:`MailingPlan`): counts per edition and per reason, counts
per rule, the expected incremental margin and cost against mailing every eligible member
the catalog, the mail-depth curve, and per member the arm, edition, reason, expected profit
and value (:meth:`MailingPlan.member_arms`, :meth:`MailingPlan.arms`) for whoever writes the
contacts (:func:`campaign.contacts.write_quarter_contacts`). When no earlier campaign mailed
an edition with a random holdout there is nothing to learn from: :class:`NothingToLearnError`.
Value tiers the campaign settings do not mail (``campaign.suppress_tiers``) are blocked like
a suppression.

(Past 400 lines because reading a quarter's inputs — audience, value, randomized history, features — and handing them to the decision is one job whose steps share the audience's row order.)
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection

from campaign.club_value import ClubValue, value_club
from campaign.contact_plan import holdout_rule
from campaign.edition_scores import ModelSource, edition_title_scores
from campaign.holdouts import Assignment, assign_holdouts, campaign_seed
from campaign.mail_depth import DepthCurve, depth_curve
from campaign.policy import Constraints, Decision, decide
from campaign.rules import MailOption, eligibility
from campaign.suppression import rule_inputs, rules_from_settings
from campaign.uplift import STACK_FOLDS, UpliftData, UpliftModel, fit_uplift
from recsys.errors import BookclubError
from recsys.settings import Settings
from recsys.storage import campaigns as campaigns_db
from recsys.storage import contacts as contacts_db
from recsys.storage import mailing as mailing_db
from recsys.storage import matches as matches_db
from recsys.storage import plans as plans_db

__all__ = [
    "FEATURES",
    "SUPPRESSED",
    "MailingPlan",
    "NothingToLearnError",
    "edition_affinity",
    "is_suppression",
    "plan_mailing",
]

TIERS = ("core", "regular", "occasional", "lapsed")
FEATURES = (
    "recency_days", "frequency", "monetary", *(f"tier_{t}" for t in TIERS),
    "p_alive", "expected_purchases", "expected_value", "edition_affinity", "edition_title_score",
)  # fmt: skip
"""The features of a member (plus one per segment, ``segment_S``)."""
MIN_MAILED, MIN_HELD = 50, 20  # an edition kind is learned from at least this many contacts of each arm
SUPPRESSED = ("member closed", "no postal address")


class NothingToLearnError(BookclubError):
    """No earlier campaign mailed an edition with a random holdout: what a piece does is unknown."""


def is_suppression(reason: str | None) -> bool:
    """A reason that makes a contact ``suppressed`` (the suppression list, the member's record, a tier
    not mailed) rather than ``not_mailed`` (a contact rule, the budget, no expected profit)."""
    return reason is not None and (
        reason.startswith("suppressed") or reason in SUPPRESSED or (reason.startswith("tier ") and reason.endswith(
            " is not mailed"))
    )  # fmt: skip


@dataclass(frozen=True, eq=False)
class MemberArms:
    """Per member (the plan's order): arm (mailed / holdout / suppressed / not_mailed), the option
    planned (index into the plan's options, −1 none), reason, and the expected profit — of the
    planned option, else of the best option the rules allow, else of the best option."""

    arm: npt.NDArray[np.str_]
    choice: npt.NDArray[np.int64]
    reason: list[str | None]
    expected_profit: npt.NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class MailingPlan:
    quarter: str
    in_home: dt.date
    options: tuple[str, ...]  # the edition kinds offered (learned)
    not_offered: dict[str, str]  # kind → why not
    member_key: npt.NDArray[np.int64]
    member_id: list[str]
    decision: Decision
    expected_margin: npt.NDArray[np.float64]  # (members, options) incremental margin
    cost: npt.NDArray[np.float64]  # per option
    curve: DepthCurve
    rule_counts: dict[str, dict[str, int]]
    learned_from: dict[str, int]  # campaign name → randomized contacts
    everyone: dict[str, float]  # mailing every eligible member the catalog: pieces, cost, margin, profit
    notes: list[str] = field(default_factory=list)
    profit: npt.NDArray[np.float64] | None = None  # (members, options) what the decision maximised
    allowed: npt.NDArray[np.bool_] | None = None  # (members, options) what the rules allow
    holdout: Assignment | None = None  # the seeded random holdout (the campaign's seed)
    seed: int | None = None
    value: ClubValue | None = None  # the members' value at the quarter's start
    value_rows: npt.NDArray[np.int64] | None = None  # per member: their row in ``value``

    def arms(self) -> MemberArms:
        """Every member's arm, vectorised (what the contacts are written from)."""
        d = self.decision
        n = self.member_key.size
        suppressed = np.fromiter((is_suppression(r) for r in d.reason), dtype=np.bool_, count=n)
        arm = np.where(
            d.mailed, "mailed",
            np.where((d.choice >= 0) & d.held_out, "holdout", np.where(suppressed, "suppressed", "not_mailed")),
        )  # fmt: skip
        profit = self.profit if self.profit is not None else self.expected_margin - self.cost
        allowed = self.allowed if self.allowed is not None else np.ones(profit.shape, dtype=np.bool_)
        rows = np.arange(n)
        best_allowed = np.where(allowed, profit, -np.inf).max(axis=1) if profit.shape[1] else np.full(n, -np.inf)
        best = profit.max(axis=1) if profit.shape[1] else np.zeros(n)
        expected = np.where(
            d.choice >= 0, profit[rows, np.maximum(d.choice, 0)], np.where(np.isfinite(best_allowed), best_allowed, best)
        )  # fmt: skip
        return MemberArms(arm.astype(np.str_), d.choice, list(d.reason), expected.astype(np.float64))

    def member_value(self) -> tuple[npt.NDArray[np.float64], ...] | None:
        """Per member: (P(alive), expected purchases, expected value) over the value horizon, or None."""
        if self.value is None or self.value_rows is None:
            return None
        rows = self.value_rows
        return (
            self.value.probability_alive[rows], self.value.expected_purchases[rows], self.value.expected_value[rows]
        )

    @property
    def planned(self) -> dict[str, float]:
        rows = np.flatnonzero(self.decision.mailed)
        kinds = self.decision.choice[rows]
        margin = float(self.expected_margin[rows, kinds].sum())
        cost = float(self.cost[kinds].sum())
        return {"pieces": float(rows.size), "cost": cost, "margin": margin, "profit": margin - cost}

    def member_arms(self) -> list[tuple[int, str, str | None, str | None]]:
        """Per member: (member key, arm — mailed / holdout / suppressed / not_mailed —, edition kind, reason)."""
        arms = self.arms()
        return [
            (int(key), str(arm), self.options[j] if j >= 0 else None, reason)
            for key, arm, j, reason in zip(
                self.member_key.tolist(), arms.arm.tolist(), arms.choice.tolist(), arms.reason, strict=True
            )
        ]

    def to_json(self) -> dict[str, Any]:
        d = self.decision
        return {
            "quarter": self.quarter, "in_home": self.in_home.isoformat(), "options": list(self.options),
            "not_offered": self.not_offered, "members": int(self.member_key.size),
            "mailed": {k: int(np.count_nonzero(d.mailed & (d.choice == j))) for j, k in enumerate(self.options)},
            "planned_pieces": d.pieces(), "held_out": int(np.count_nonzero(d.held_out & (d.choice >= 0))),
            "reasons": d.reasons(), "rules": self.rule_counts, "planned": self.planned, "everyone": self.everyone,
            "solver": d.solver, "status": d.status, "objective": d.objective, "lp_bound": d.bound, "gap": d.gap,
            "binding": d.info.get("binding", []), "learned_from": self.learned_from,
            "mail_depth": self.curve.to_json(), "notes": self.notes,
        }  # fmt: skip


AFFINITY_DAYS = 730  # the purchase history behind a member's affinity to their edition


def edition_affinity(
    connection: Connection, quarter: str, when: dt.date, segments: mailing_db.SegmentFeatures
) -> npt.NDArray[np.float64]:
    """Per member of ``segments``: the share of their units in the ``AFFINITY_DAYS`` before ``when``
    whose primary category is in (or below) a section of their segment's catalog plan; 0 without
    history or plan. Vectorised: each distinct category is matched against each segment's sections once."""
    out = np.zeros(len(segments), dtype=np.float64)
    sections: dict[int, tuple[str, ...]] = {}
    for row in plans_db.plans_of_quarter(connection, quarter):
        plan = json.loads(row["plan_json"] or "{}")
        sections[int(row["segment"])] = tuple(str(s["code"]) for s in plan.get("sections", []))
    if not sections or not len(segments):
        return out
    until = dt.datetime.combine(when, dt.time())
    units = mailing_db.category_units(connection, until - dt.timedelta(days=AFFINITY_DAYS), until)
    if not len(units):
        return out
    top = max(max(sections), int(segments.segment.max())) + 1
    inside = np.zeros((top, len(units.codes)), dtype=np.bool_)
    for segment, prefixes in sections.items():
        if prefixes:
            inside[segment] = [code.startswith(prefixes) for code in units.codes]
    rows = np.minimum(np.searchsorted(segments.member_key, units.member_key), len(segments) - 1)
    known = segments.member_key[rows] == units.member_key
    rows, codes, weights = rows[known], units.code[known], units.units[known]
    segment_of = segments.segment[rows]
    ok = segment_of >= 0
    hit = np.zeros(rows.size, dtype=np.bool_)
    hit[ok] = inside[segment_of[ok], codes[ok]]
    total = np.bincount(rows, weights=weights, minlength=len(segments))
    within = np.bincount(rows[hit], weights=weights[hit], minlength=len(segments))
    np.divide(within, total, out=out, where=total > 0)
    return np.clip(out, 0.0, 1.0)


def _features(
    segments: mailing_db.SegmentFeatures, value: ClubValue | None, n_segments: int,
    affinity: npt.NDArray[np.float64] | None = None, title_score: npt.NDArray[np.float64] | None = None,
) -> npt.NDArray[np.float64]:  # fmt: skip
    n = len(segments)
    tier = np.array([[t == name for name in TIERS] for t in segments.tier], dtype=np.float64).reshape(n, len(TIERS))
    seg = np.zeros((n, n_segments))
    inside = (segments.segment >= 0) & (segments.segment < n_segments)
    seg[np.flatnonzero(inside), segments.segment[inside]] = 1.0
    recency = np.where(segments.recency_days < 0, 3650.0, segments.recency_days)
    extra = np.zeros((n, 3))
    if value is not None:
        order = np.argsort(value.member_key)
        pos = order[np.searchsorted(value.member_key[order], segments.member_key)]
        extra = np.column_stack([value.probability_alive[pos], value.expected_purchases[pos], value.expected_value[pos]])
    edition = np.zeros(n) if affinity is None else affinity
    liking = np.full(n, 0.5) if title_score is None else title_score  # ½: the middle rank
    return np.column_stack([recency, segments.frequency, segments.monetary, tier, extra, edition, liking, seg])


TITLE_SCORE = FEATURES.index("edition_title_score")


def _title_scores(
    connection: Connection, quarter: str, segments: mailing_db.SegmentFeatures, models: ModelSource | None,
) -> tuple[npt.NDArray[np.float64] | None, str | None]:  # fmt: skip
    """:func:`campaign.edition_scores.edition_title_scores` for ``segments`` (in their order)."""
    if models is None:
        return None, "no model source given"
    audience = contacts_db.quarter_audience(connection, quarter)
    pos = np.minimum(np.searchsorted(audience.member_key, segments.member_key), max(len(audience) - 1, 0))
    if not len(audience) or not np.array_equal(audience.member_key[pos], segments.member_key):
        return None, f"{quarter}'s segmented members are not all on record"
    ids = [audience.member_id[i] for i in pos.tolist()]
    return edition_title_scores(connection, quarter, ids, segments.segment, models)


def _value_rows(value: ClubValue, member_key: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    order = np.argsort(value.member_key)
    return np.asarray(order[np.searchsorted(value.member_key[order], member_key)], dtype=np.int64)


def _value(connection: Connection, when: dt.date, horizon: int, notes: list[str]) -> ClubValue | None:
    try:
        return value_club(connection, dt.datetime.combine(when, dt.time()), horizon)
    except BookclubError as exc:
        notes.append(f"no lifetime value at {when}: {exc}")
        return None


def _history(
    connection: Connection, settings: Settings, quarter: str, options: tuple[str, ...], n_segments: int,
    notes: list[str], models: ModelSource | None = None,
) -> tuple[UpliftData | None, dict[str, int], bool]:  # fmt: skip
    """Earlier campaigns' randomized contacts as uplift data (arm 0 held out, k the k-th option),
    and whether they carry the title-score feature: it is kept only when every campaign's could
    be had (else ½ throughout and a note) — one campaign's at the middle rank would teach nothing true."""
    xs, arms, responded, money = [], [], [], []
    scored = models is not None
    learned: dict[str, int] = {}
    margin_rate = settings.campaign.margin_rate
    for campaign in campaigns_db.campaigns(connection):
        if campaign.quarter is None or campaign.quarter >= quarter:
            continue
        contacts = mailing_db.randomized_contacts(connection, campaign.id)
        segments = mailing_db.segment_features(connection, campaign.quarter)
        if not len(contacts) or not len(segments):
            continue
        outcomes = matches_db.contact_outcomes(connection, campaign.id, settings.campaign.timezone)
        orders = np.zeros(len(contacts))
        revenue = np.zeros(len(contacts))
        if outcomes.contact_id.size:
            order = np.argsort(outcomes.contact_id)
            pos = np.minimum(np.searchsorted(outcomes.contact_id[order], contacts.contact_id), order.size - 1)
            found = outcomes.contact_id[order][pos] == contacts.contact_id
            orders = np.where(found, outcomes.orders[order][pos], 0.0)
            revenue = np.where(found, outcomes.revenue[order][pos], 0.0)
        arm = np.array([0 if h else (options.index(k) + 1 if k in options else -1)
                        for h, k in zip(contacts.held_out, contacts.kind, strict=True)], dtype=np.int64)  # fmt: skip
        seg_rows = np.searchsorted(segments.member_key, contacts.member_key)
        seg_rows = np.minimum(seg_rows, len(segments) - 1)
        known = (segments.member_key[seg_rows] == contacts.member_key) & (arm >= 0)
        if not known.any():
            continue
        value = _value(connection, campaign.in_home_date, settings.mailing.value_horizon_days, notes)
        affinity = edition_affinity(connection, campaign.quarter, campaign.in_home_date, segments)
        title_score = None
        if scored:
            title_score, why = _title_scores(connection, campaign.quarter, segments, models)
            if title_score is None:
                scored = False
                notes.append(f"edition title scores left out (½ for every member): {why}")
        features = _features(segments, value, n_segments, affinity, title_score)[seg_rows[known]]
        xs.append(features)
        arms.append(arm[known])
        responded.append(orders[known] > 0)
        money.append(np.column_stack([orders[known], revenue[known], revenue[known] * margin_rate]))
        learned[campaign.name] = int(known.sum())
    if not xs:
        return None, learned, scored
    if not scored:
        for x in xs:
            x[:, TITLE_SCORE] = 0.5
    names = (*FEATURES, *(f"segment_{s}" for s in range(n_segments)))
    return UpliftData(np.vstack(xs), np.concatenate(arms), np.concatenate(responded), np.vstack(money), options,
                      names), learned, scored  # fmt: skip


def plan_mailing(
    connection: Connection,
    settings: Settings,
    quarter: str,
    quarter_start: dt.date,
    *,
    budget: float | None = None,
    max_pieces: int | None = None,
    in_home: dt.date | None = None,
    models: ModelSource | None = None,
) -> MailingPlan:
    """The quarter's mailing (module doc). Nothing is written. With ``mailing.edition_title_scores``,
    ``models`` (a model version → the prepared model, e.g. :meth:`training.registry.ModelRegistry.model_source`)
    scores each member's edition titles; without either that feature is left out (½ for everybody, and a note)."""
    mailing = settings.mailing
    notes: list[str] = []
    audience = contacts_db.quarter_audience(connection, quarter)
    if not len(audience):
        raise BookclubError(f"no segments for {quarter}: run `bookclub segment --quarter {quarter}` first")
    segments = mailing_db.segment_features(connection, quarter)
    n_segments = max(settings.segments.clusters, int(segments.segment.max()) + 1 if len(segments) else 1)
    all_options = tuple(str(o) for o in mailing.options)
    if not mailing.edition_title_scores:
        models = None
    title_score, why = _title_scores(connection, quarter, segments, models)
    if not mailing.edition_title_scores:
        notes.append("edition title scores not used (mailing.edition_title_scores is off)")
    elif title_score is None:
        notes.append(f"edition title scores left out (½ for every member): {why}")
    data, learned, scored = _history(connection, settings, quarter, all_options, n_segments, notes,
                                     models if title_score is not None else None)  # fmt: skip
    if not scored:
        title_score = None  # an earlier campaign's could not be had: left out of this quarter's too
    not_offered: dict[str, str] = {}
    offered: list[int] = []
    for k, kind in enumerate(all_options):
        mailed = 0 if data is None else int(np.count_nonzero(data.arm == k + 1))
        kept = 0 if data is None else int(np.count_nonzero(data.arm == 0))
        if mailed < MIN_MAILED or kept < MIN_HELD:
            not_offered[kind] = (
                f"no randomized history: earlier campaigns mailed {mailed} {kind} piece(s) against "
                f"{kept} held out (at least {MIN_MAILED} and {MIN_HELD} needed)"
            )
        else:
            offered.append(k)
    if not offered or data is None:
        raise NothingToLearnError(
            "nothing to learn what a piece does from: no earlier campaign mailed an edition with a random holdout "
            "(write and match back a campaign first: `bookclub campaigns contacts`, `bookclub campaigns matchback`)"
        )
    options = tuple(all_options[k] for k in offered)
    keep = np.isin(data.arm, [0, *(k + 1 for k in offered)])
    remap = np.zeros(len(all_options) + 1, dtype=np.int64)
    for new, k in enumerate(offered, start=1):
        remap[k + 1] = new
    train = UpliftData(data.features[keep], remap[data.arm[keep]], data.responded[keep], data.money[keep], options,
                       data.feature_names)  # fmt: skip
    model: UpliftModel = fit_uplift(
        train, learner=mailing.uplift_learner, seed=campaign_seed(quarter) % 2**31, stack_folds=STACK_FOLDS
    )
    # the audience, in the quarter_audience order (by member key), with its features
    order = np.searchsorted(segments.member_key, audience.member_key)
    value = _value(connection, quarter_start, mailing.value_horizon_days, notes)
    affinity = edition_affinity(connection, quarter, quarter_start, segments)
    x = _features(segments, value, n_segments, affinity, title_score)[order]
    predicted = model.predict(x)
    cost = np.array([settings.campaign.costs(k).total for k in options])
    profit = predicted.margin - cost
    if mailing.lifetime_value_weight > 0 and value is not None:
        profit = profit + mailing.lifetime_value_weight * predicted.response * _value_of_an_order(value, audience)[:, None]
    campaign = campaigns_db.campaign_by_name(connection, quarter)
    day = in_home or (campaign.in_home_date if campaign else quarter_start)
    rules = rules_from_settings(mailing)
    history, suppressions = rule_inputs(connection, audience.member_key, day, rules,
                                        exclude_campaign=campaign.id if campaign else None)  # fmt: skip
    mail_options = [MailOption(k) for k in options]
    allowed = eligibility(
        len(audience), mail_options, day, rules, history, suppressions,
        closed=np.array([s == "closed" for s in audience.status]), no_address=~audience.has_address,
    )  # fmt: skip
    blocked_reason = allowed.member_reason()
    if settings.campaign.suppress_tiers:  # value tiers not mailed: blocked like a suppression
        not_mailed = set(settings.campaign.suppress_tiers)
        for i, tier in enumerate(audience.tier):
            if tier in not_mailed:
                if blocked_reason[i] is None:
                    blocked_reason[i] = f"tier {tier} is not mailed"
                allowed.allowed[i, :] = False
    seed = campaign.seed if campaign else campaign_seed(quarter)
    held = assign_holdouts(audience.member_id, audience.segment, audience.tier, holdout_rule(settings.campaign), seed)
    capacity = {k: v for k, v in mailing.capacity.items() if k in options}
    decision = decide(
        profit, cost, allowed.allowed, options,
        Constraints(budget=budget if budget is not None else mailing.budget,
                    max_pieces=max_pieces if max_pieces is not None else mailing.max_pieces, capacity=capacity),
        held_out=held.held, blocked_reason=blocked_reason, solver=mailing.solver,
        milp_max_members=mailing.milp_max_members,
    )  # fmt: skip
    everyone: dict[str, float] = {}
    if "catalog" in options:
        j = options.index("catalog")
        can = allowed.allowed[:, j] & ~held.held
        margin = float(predicted.margin[can, j].sum())
        everyone = {"pieces": float(can.sum()), "cost": float(can.sum() * cost[j]), "margin": margin,
                    "profit": margin - float(can.sum() * cost[j])}  # fmt: skip
    return MailingPlan(
        quarter=quarter, in_home=day, options=options, not_offered=not_offered,
        member_key=audience.member_key, member_id=audience.member_id, decision=decision,
        expected_margin=predicted.margin, cost=cost, curve=depth_curve(profit, allowed.allowed, decision),
        rule_counts=allowed.counts(), learned_from=learned, everyone=everyone,
        notes=[*notes, f"uplift: {model.learner} learner on {len(train):,} randomized contacts, {_stacking_note(model)}"],
        profit=profit, allowed=allowed.allowed, holdout=held, seed=seed, value=value,
        value_rows=None if value is None else _value_rows(value, audience.member_key),
    )  # fmt: skip


def _stacking_note(model: UpliftModel) -> str:
    """What the uplift's cross-fitted stacking did (:func:`campaign.uplift.fit_uplift`)."""
    info = model.info.get("stacking") or {}
    if model.stacking is None:
        return f"not stacked ({info.get('skipped', 'off')})"
    return (
        f"stacked by {info['folds']}-fold cross-fitting (each edition's uplift calibrated on held-out contacts; "
        f"the mean of the {len(model.folds)} fold models predicts)"
    )


def _value_of_an_order(value: ClubValue, audience: contacts_db.Audience) -> npt.NDArray[np.float64]:
    """Per audience member: expected future value after one more purchase today, minus without it."""
    from campaign.value import RfmSummary

    order = np.argsort(value.member_key)
    pos = order[np.searchsorted(value.member_key[order], audience.member_key)]
    s = value.summary
    x, tx, age, m, has = s.frequency[pos], s.recency[pos], s.age[pos], s.monetary[pos], s.has_purchase[pos]
    before = RfmSummary(x, tx, age, m, has, s.cutoff_day)
    after = RfmSummary(
        np.where(has, x + 1, 0), np.where(has, age, 0.0), age, np.where(has, np.maximum(m, 1e-9), m), has,
        s.cutoff_day,
    )  # fmt: skip
    _, v_before = value.model.predict(before, value.horizon_days)
    _, v_after = value.model.predict(after, value.horizon_days)
    return np.asarray(np.maximum(v_after - v_before, 0.0), dtype=np.float64)


def reason_counts(plan: MailingPlan) -> Counter[str]:
    return Counter(r for _k, _a, _e, r in plan.member_arms() if r is not None)
