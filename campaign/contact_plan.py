"""Who gets what in a quarter's campaign: an arm and a reason per segmented member, pure data.

The arms are ``mailed``, ``holdout``, ``suppressed`` and ``not_mailed``; nothing is written here
(:func:`campaign.contacts.write_quarter_contacts` writes a contact per member from the plan).

**From the mailing decision** (:func:`plan_contacts_from_mailing`, given the plan of
:func:`campaign.mailing_plan.plan_mailing`) —

- ``mailed`` the edition kind the decision chose; ``holdout`` when the seeded hash
  (:mod:`campaign.holdouts`, the campaign's seed) holds out a member the decision would have
  mailed: they keep the edition they would have had, so that each edition's mailed members are
  compared with a random holdout of the same population;
- ``suppressed`` (the suppression list, a closed member, no postal address, a value tier
  not mailed) or ``not_mailed`` (a contact rule, the budget, the cap on pieces, a
  capacity, or no expected profit), with the reason code.

**Everyone eligible** (:func:`plan_contacts`) —

- ``suppressed`` (with the reason) when the member is closed, has no postal address, is
  in a value tier the settings do not mail, or is on the suppression list for the edition's
  kind on the in-home date; ``not_mailed`` when a contact rule (frequency cap, quiet
  period, spacing) blocks the piece; neither is randomised;
- ``holdout`` when the seeded hash puts the member in the random holdout of their
  segment × tier (``reason`` says ``universal`` or ``random``): nothing is rendered or sent;
- ``mailed`` otherwise.

Either way the mailed catalogs are personalised (:attr:`ContactPlan.personal`: the member's own
edition): all of them, or the ``personal`` best spenders among them, one segment after another.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from campaign.holdouts import Assignment, HoldoutRule, assign_holdouts
from recsys.errors import BookclubError
from recsys.settings import CampaignSettings
from recsys.storage.contacts import Audience

if TYPE_CHECKING:
    from campaign.mailing_plan import MailingPlan

__all__ = ["ContactPlan", "holdout_rule", "plan_contacts", "plan_contacts_from_mailing"]


PRINT_KINDS = frozenset({"catalog", "postcard"})


def holdout_rule(settings: CampaignSettings) -> HoldoutRule:
    return HoldoutRule(
        share=settings.holdout_share,
        overrides=dict(settings.holdout_shares),
        universal_share=settings.universal_holdout_share,
        universal_seed=settings.universal_holdout_seed,
    )


@dataclass(frozen=True, eq=False)
class ContactPlan:
    """Who gets what, one entry per member of the audience (pure data, nothing written)."""

    audience: Audience
    arm: list[str]  # mailed / holdout / suppressed / not_mailed
    reason: list[str | None]
    assignment: Assignment
    personal: npt.NDArray[np.bool_]  # mailed with their own member edition

    def counts(self) -> dict[tuple[int, str], int]:
        """(segment, arm) → members."""
        return dict(Counter(zip((int(s) for s in self.audience.segment), self.arm, strict=True)))

    def suppressed_reasons(self) -> dict[str, int]:
        return dict(Counter(r for a, r in zip(self.arm, self.reason, strict=True) if a == "suppressed" and r))

    def not_mailed_reasons(self) -> dict[str, int]:
        return dict(Counter(r for a, r in zip(self.arm, self.reason, strict=True) if a == "not_mailed" and r))


def _personal_mask(audience: Audience, mailed: npt.NDArray[np.bool_], personal: int | None) -> npt.NDArray[np.bool_]:
    """All mailed members, or the ``personal`` best spenders among them, one segment after another."""
    if personal is None:
        return mailed.copy()
    chosen = np.zeros(len(audience), dtype=np.bool_)
    if personal <= 0:
        return chosen
    order = np.lexsort((audience.member_key, -audience.monetary))  # best spend first
    rank_in_segment: Counter[int] = Counter()
    ranked: list[tuple[int, int, int]] = []
    for i in order:
        if mailed[i]:
            segment = int(audience.segment[i])
            ranked.append((rank_in_segment[segment], segment, int(i)))
            rank_in_segment[segment] += 1
    for _rank, _segment, i in sorted(ranked)[:personal]:
        chosen[i] = True
    return chosen


def plan_contacts(
    audience: Audience,
    settings: CampaignSettings,
    seed: int,
    *,
    kind: str = "catalog",
    personal: int | None = None,
    blocked: Sequence[str | None] | None = None,
) -> ContactPlan:
    """Suppress, then hold out at random, then mail the rest (module docstring). ``blocked[i]``:
    the suppression entry (``suppressed: …``) or contact rule that keeps member i from the piece."""
    n = len(audience)
    status = np.asarray(audience.status, dtype=object)
    tiers = np.asarray(audience.tier, dtype=object)
    reason = np.full(n, None, dtype=object)
    closed = status == "closed"
    no_address = ~closed & ~audience.has_address if kind in PRINT_KINDS else np.zeros(n, dtype=np.bool_)
    reason[closed] = "member closed"
    reason[no_address] = "no postal address"
    for tier in settings.suppress_tiers:  # a handful of tiers: one mask each
        this = (tiers == tier) & (reason == None)  # noqa: E711 (elementwise on an object array)
        reason[this] = f"tier {tier} is not mailed"
    suppressed = reason != None  # noqa: E711
    ruled = np.zeros(n, dtype=np.bool_)
    if blocked is not None:
        if len(blocked) != n:
            raise ValueError(f"blocked has {len(blocked)} entries for {n} members")
        by_rule = np.asarray(blocked, dtype=object)
        listed = np.fromiter((b is not None and b.startswith("suppressed") for b in blocked), dtype=np.bool_, count=n)
        ruled = (by_rule != None) & ~listed & ~suppressed  # noqa: E711
        listed &= ~suppressed
        reason[listed] = by_rule[listed]
        reason[ruled] = by_rule[ruled]
        suppressed = suppressed | listed
    assignment = assign_holdouts(
        audience.member_id, audience.segment, audience.tier, holdout_rule(settings), seed
    )
    held = assignment.held & ~suppressed & ~ruled
    arms = np.where(suppressed, "suppressed", np.where(ruled, "not_mailed", np.where(held, "holdout", "mailed")))
    reason[held] = ["universal" if u else "random" for u in assignment.universal[held].tolist()]
    mailed = ~suppressed & ~ruled & ~held
    arm: list[str] = arms.tolist()
    return ContactPlan(audience, arm, reason.tolist(), assignment, _personal_mask(audience, mailed, personal))


def plan_contacts_from_mailing(
    plan: MailingPlan, audience: Audience, seed: int, personal: int | None
) -> tuple[ContactPlan, npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """The contact plan of a decision: (plan, chosen option per member or −1, expected profit)."""
    if not np.array_equal(plan.member_key, audience.member_key):
        raise BookclubError(f"the mailing plan of {plan.quarter} is not of the quarter's segmented members: plan again")
    if plan.seed != seed or plan.holdout is None:
        raise BookclubError(f"the mailing plan of {plan.quarter} was drawn with another holdout seed: plan again")
    arms = plan.arms()
    reason = list(arms.reason)
    universal = plan.holdout.universal
    for i in np.flatnonzero(arms.arm == "holdout").tolist():
        reason[i] = "universal" if universal[i] else "random"
    catalog = plan.options.index("catalog") if "catalog" in plan.options else -2
    mailed_catalog = (arms.arm == "mailed") & (arms.choice == catalog)
    contact_plan = ContactPlan(
        audience, arms.arm.tolist(), reason, plan.holdout, _personal_mask(audience, mailed_catalog, personal)
    )
    return contact_plan, arms.choice, arms.expected_profit
