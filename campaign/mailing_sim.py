"""A simulated club with several kinds of edition, each with a known true effect per member.

Built on :mod:`campaign.simulate`: the same members (segment, tier, affinity to the
edition's titles, recency) and the same response model, with one
:class:`~campaign.simulate.ResponseModel` per edition kind that differs in how strongly
it persuades (``persuasion``; a full catalog more than a postcard, a postcard more than
an e-mail). Costs per piece come from the caller (the club's settings). What is known
here and nowhere else is the truth: every member's expected incremental margin for every
kind (:meth:`MailingWorld.true_margin`), against which a mailing decision's profit is
scored exactly (:meth:`MailingWorld.profit`) — no sampling noise in the score.

:meth:`MailingWorld.randomized` draws a randomized test (each member held out or sent a
kind at random, with the responses, orders, revenue and margin the response model
gives) as :class:`~campaign.uplift.UpliftData`: what an uplift model learns from.
:meth:`MailingWorld.features` is the feature matrix a learner sees — the member's
segment, tier, affinity and recency, plus RFM-like figures drawn around them (frequency
and monetary value, as a club's records would hold), none of it the truth itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt

from campaign.simulate import MemberFeatures, ResponseModel, TrueEffects, simulated_members, true_effects
from campaign.uplift import MONEY, UpliftData

__all__ = ["CLUB_RESPONSE", "KIND_PERSUASION", "MailingWorld", "make_world"]

KIND_PERSUASION: dict[str, float] = {"catalog": 0.16, "postcard": 0.065, "email": 0.022}
"""The simulated editions' strength: the response model's ``persuasion`` per kind."""

CLUB_RESPONSE = replace(
    ResponseModel(),
    intercept=-1.3,
    tier_baseline=(-0.6, 0.0, 0.8),
    tier_lift=(1.3, 1.0, 0.5),
    segment_lift=(1.0, 1.3, 0.7, 0.9),
    recency_decay_days=1500.0,
    order_value=(30.0, 42.0, 60.0),
)
"""The book club the decision is evaluated on: 13 % of members order in a quarter unmailed,
and a catalog adds 11.5 points, so about half of a mailed member's orders would have come
anyway (mail/holdout tests at catalog retailers find 50–85 %); loyal members, the likeliest
to order unmailed, are the least moved by a piece (the "sure things" response selection
pays for), and an order from a catalog is a few books (30 / 42 / 60 by tier)."""

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class MailingWorld:
    members: MemberFeatures
    kinds: tuple[str, ...]
    costs: FloatArray  # per kind
    models: tuple[ResponseModel, ...]  # per kind
    frequency: FloatArray  # orders in the last two years (the club's records)
    monetary: FloatArray  # mean order value in the records
    effects: tuple[TrueEffects, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "effects", tuple(true_effects(self.members, m) for m in self.models))

    @property
    def n(self) -> int:
        return self.members.members

    def true_margin(self) -> FloatArray:
        """(members, kinds): the expected incremental margin of sending each kind."""
        return np.column_stack([e.incremental_margin for e in self.effects])

    def true_response(self) -> FloatArray:
        return np.column_stack([e.incremental_response for e in self.effects])

    def profit(self, choice: npt.NDArray[np.int64]) -> FloatArray:
        """Each member's true expected incremental profit (margin − cost) under ``choice``
        (the kind's index, −1 for nothing)."""
        margin = self.true_margin()
        rows = np.flatnonzero(choice >= 0)
        out = np.zeros(self.n)
        out[rows] = margin[rows, choice[rows]] - self.costs[choice[rows]]
        return out

    def features(self) -> tuple[FloatArray, tuple[str, ...]]:
        """The learner's view: segment one-hot, tier, affinity, recency, frequency, monetary."""
        m = self.members
        segments = int(m.segment.max()) + 1 if m.members else 1
        onehot = np.eye(max(segments, 4))[m.segment][:, : max(segments, 4)]
        x = np.column_stack([
            onehot, m.tier.astype(np.float64), m.affinity, m.recency_days, self.frequency, self.monetary,
        ])  # fmt: skip
        names = (*(f"segment_{s}" for s in range(onehot.shape[1])), "tier", "affinity", "recency_days",
                 "frequency", "monetary")  # fmt: skip
        return x, names

    def draw(self, arm: npt.NDArray[np.int64], seed: int) -> tuple[npt.NDArray[np.bool_], FloatArray]:
        """What members do when ``arm`` (0 = nothing, k = kind k − 1) is sent: responded, money (orders, revenue, margin)."""
        rng = np.random.default_rng(seed)
        base = self.effects[0].baseline_response
        p = base.copy()
        for k, e in enumerate(self.effects):
            sent = arm == k + 1
            p[sent] = e.mailed_response[sent]
        responded = rng.random(self.n) < p
        model = self.models[0]  # orders and order values do not depend on the kind (module doc)
        tier = self.members.tier
        orders = np.where(responded, 1 + rng.poisson(np.asarray(model.extra_orders)[tier]), 0).astype(np.float64)
        sigma = model.order_value_sigma
        order_mean = np.asarray(model.order_value)[tier] * (0.8 + 0.5 * self.members.affinity)
        buyer = np.repeat(np.arange(self.n), orders.astype(np.int64))
        values = order_mean[buyer] * rng.lognormal(-sigma * sigma / 2.0, sigma, size=buyer.size)
        revenue = np.bincount(buyer, weights=values, minlength=self.n)
        margin = revenue * self.effects[0].margin_rate
        return responded, np.column_stack([orders, revenue, margin])

    def randomized(self, shares: Sequence[float], seed: int) -> UpliftData:
        """A randomized test: arm 0 (held out) and each kind with the given shares (summing to 1)."""
        if len(shares) != len(self.kinds) + 1 or not np.isclose(sum(shares), 1.0):
            raise ValueError("one share for the holdout and one per kind, summing to 1")
        rng = np.random.default_rng(seed)
        arm = rng.choice(len(shares), size=self.n, p=np.asarray(shares))
        responded, money = self.draw(arm, seed + 1)
        x, names = self.features()
        assert money.shape[1] == len(MONEY)
        return UpliftData(x, arm.astype(np.int64), responded, money, self.kinds, names)


def make_world(
    n_members: int,
    costs: Mapping[str, float],
    *,
    seed: int,
    persuasion: Mapping[str, float] | None = None,
    model: ResponseModel | None = None,
) -> MailingWorld:
    """``n_members`` simulated members and one response model per kind of ``costs``."""
    strength = dict(KIND_PERSUASION, **(persuasion or {}))
    kinds = tuple(costs)
    base = model or CLUB_RESPONSE
    members = simulated_members(n_members, seed=seed)
    rng = np.random.default_rng(seed + 7)
    # the club's records: order counts and values that follow the tier and recency, with noise
    tier_rate = np.array([1.5, 4.0, 9.0])[members.tier]
    frequency = rng.poisson(tier_rate * np.exp(-members.recency_days / 400.0)).astype(np.float64)
    monetary = np.asarray(base.order_value)[members.tier] * rng.lognormal(0.0, 0.3, n_members)
    return MailingWorld(
        members=members,
        kinds=kinds,
        costs=np.array([costs[k] for k in kinds], dtype=np.float64),
        models=tuple(replace(base, persuasion=strength[k]) for k in kinds),
        frequency=frequency,
        monetary=monetary,
    )
