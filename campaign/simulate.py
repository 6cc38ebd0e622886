"""A simulated club that responds to a mailing with a known true effect per member.

The response model (all per member ``i``; ``segment`` is taken modulo the number of
segment parameters, ``tier`` must be one of the tiers below)::

    baseline response   b_i = sigmoid(β0 + β_seg[s] + β_tier[t] + β_aff·(a_i − ½) − β_rec·log1p(r_i / 90))
    persuasion          u_i = min(u_max, u0 · λ_seg[s] · λ_tier[t] · (a0 + a1·a_i) · exp(−r_i / r_decay))
    mailed response     p_i = b_i + (1 − b_i)·u_i           (mailing persuades a share u_i of non-buyers)
    true incremental    τ_i = p_i − b_i = (1 − b_i)·u_i     (≥ 0; the mailing never puts a member off)

where ``a_i`` is the member's affinity to the edition's titles (in [0, 1]) and
``r_i`` days since the last order. A responder places ``1 + Poisson(extra_orders[t])``
orders, each worth ``order_value[t]·(0.8 + 0.5·a_i)·LogNormal(−σ²/2, σ²)`` (mean
``order_value[t]·(0.8 + 0.5·a_i)``), with margin ``margin_rate[t]`` of the revenue.
Mailing changes whether a member responds, not what a responder buys, so the true
expected increments per member are::

    orders   τ_i · (1 + extra_orders[t])
    revenue  τ_i · (1 + extra_orders[t]) · order_value[t] · (0.8 + 0.5·a_i)
    margin   revenue increment · margin_rate[t]

The estimand a mailed-against-holdout comparison estimates is the average of these
over the members the edition was meant for (mailed and held out together: the
population the holdout was drawn from at random), :attr:`SimulatedMailing.true_effect`.
The average over the members actually mailed, :attr:`SimulatedMailing.true_effect_on_mailed`,
has the same expectation over the random holdout and is kept for comparison.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from campaign.effects import OUTCOMES, OutcomeArrays

__all__ = [
    "MemberFeatures",
    "ResponseModel",
    "SimulatedMailing",
    "TrueEffects",
    "simulate_mailing",
    "simulated_members",
    "true_effects",
]


@dataclass(frozen=True, eq=False)
class MemberFeatures:
    """What the response model knows of each member, one entry per member."""

    segment: NDArray[np.int64]
    tier: NDArray[np.int64]
    affinity: NDArray[np.float64]
    recency_days: NDArray[np.float64]

    def __post_init__(self) -> None:
        segment = np.asarray(self.segment)
        tier = np.asarray(self.tier)
        affinity = np.asarray(self.affinity, dtype=np.float64)
        recency = np.asarray(self.recency_days, dtype=np.float64)
        sizes = {segment.size, tier.size, affinity.size, recency.size}
        if len(sizes) != 1 or any(a.ndim != 1 for a in (segment, tier, affinity, recency)):
            raise ValueError("member features must be 1-D arrays of one length")
        for name, values in (("segment", segment), ("tier", tier)):
            if values.size and (not np.all(values == np.round(values)) or values.min() < 0):
                raise ValueError(f"{name} must be non-negative whole numbers")
        if np.any(~np.isfinite(affinity)) or np.any((affinity < 0) | (affinity > 1)):
            raise ValueError("affinity must be in [0, 1]")
        if np.any(~np.isfinite(recency)) or np.any(recency < 0):
            raise ValueError("recency_days must be non-negative")
        object.__setattr__(self, "segment", segment.astype(np.int64))
        object.__setattr__(self, "tier", tier.astype(np.int64))
        object.__setattr__(self, "affinity", affinity)
        object.__setattr__(self, "recency_days", recency)

    @property
    def members(self) -> int:
        return int(self.segment.size)


def simulated_members(
    n_members: int, *, seed: int | np.random.Generator, segments: int = 4
) -> MemberFeatures:
    """Believable member features: uniform segments, tiers 0/1/2 in 50/35/15 %,
    affinity Beta(2, 3), recency exponential with mean 120 days capped at two years."""
    if n_members < 0 or segments < 1:
        raise ValueError("n_members must be ≥ 0 and segments ≥ 1")
    rng = np.random.default_rng(seed)
    return MemberFeatures(
        segment=rng.integers(0, segments, size=n_members),
        tier=rng.choice(3, size=n_members, p=[0.50, 0.35, 0.15]),
        affinity=rng.beta(2.0, 3.0, size=n_members),
        recency_days=np.minimum(rng.exponential(120.0, size=n_members), 730.0),
    )


@dataclass(frozen=True)
class ResponseModel:
    """The parameters of the formulas in the module docstring (tiers: occasional, regular, loyal)."""

    intercept: float = -2.6
    segment_baseline: tuple[float, ...] = (-0.2, 0.1, 0.3, -0.4)
    tier_baseline: tuple[float, ...] = (-0.6, 0.0, 0.5)
    affinity_baseline: float = 1.4
    recency_baseline: float = 0.5
    persuasion: float = 0.10
    persuasion_max: float = 0.6
    segment_lift: tuple[float, ...] = (1.0, 1.3, 0.8, 0.6)
    tier_lift: tuple[float, ...] = (1.2, 1.0, 0.7)
    affinity_lift: tuple[float, float] = (0.25, 1.5)
    recency_decay_days: float = 540.0
    extra_orders: tuple[float, ...] = (0.2, 0.4, 0.7)
    order_value: tuple[float, ...] = (18.0, 24.0, 32.0)
    order_value_sigma: float = 0.6
    margin_rate: tuple[float, ...] = (0.42, 0.38, 0.33)

    def __post_init__(self) -> None:
        tiers = {
            len(self.tier_baseline),
            len(self.tier_lift),
            len(self.extra_orders),
            len(self.order_value),
            len(self.margin_rate),
        }
        if len(tiers) != 1:
            raise ValueError("every per-tier parameter needs one value per tier")
        if len(self.segment_baseline) != len(self.segment_lift) or not self.segment_lift:
            raise ValueError("segment_baseline and segment_lift need one value per segment")

    @property
    def tiers(self) -> int:
        return len(self.tier_baseline)


@dataclass(frozen=True, eq=False)
class TrueEffects:
    """The true, expected outcomes per member without and with the mailing."""

    baseline_response: NDArray[np.float64]
    mailed_response: NDArray[np.float64]
    orders_per_responder: NDArray[np.float64]
    revenue_per_responder: NDArray[np.float64]
    margin_rate: NDArray[np.float64]

    @property
    def incremental_response(self) -> NDArray[np.float64]:
        return self.mailed_response - self.baseline_response

    @property
    def incremental_orders(self) -> NDArray[np.float64]:
        return self.incremental_response * self.orders_per_responder

    @property
    def incremental_revenue(self) -> NDArray[np.float64]:
        return self.incremental_response * self.revenue_per_responder

    @property
    def incremental_margin(self) -> NDArray[np.float64]:
        return self.incremental_revenue * self.margin_rate

    def average(self, members: NDArray[np.bool_] | None = None) -> dict[str, float]:
        """The true average incremental effect per outcome over ``members`` (a mask; all if None)."""
        mask = np.ones(self.baseline_response.size, dtype=np.bool_) if members is None else members
        if not np.any(mask):
            raise ValueError("no members to average over")
        per_member = {
            "response": self.incremental_response,
            "orders": self.incremental_orders,
            "revenue": self.incremental_revenue,
            "margin": self.incremental_margin,
        }
        return {name: float(per_member[name][mask].mean()) for name in OUTCOMES}


def _sigmoid(x: NDArray[np.float64]) -> NDArray[np.float64]:
    return 1.0 / (1.0 + np.exp(-x))


def true_effects(features: MemberFeatures, model: ResponseModel | None = None) -> TrueEffects:
    """The deterministic part of the response model (module docstring) for each member."""
    model = model or ResponseModel()
    if features.members and int(features.tier.max()) >= model.tiers:
        raise ValueError(f"tier must be below {model.tiers} for this response model")
    seg = features.segment % len(model.segment_lift)
    tier = features.tier
    a, r = features.affinity, features.recency_days
    logit = (
        model.intercept
        + np.asarray(model.segment_baseline)[seg]
        + np.asarray(model.tier_baseline)[tier]
        + model.affinity_baseline * (a - 0.5)
        - model.recency_baseline * np.log1p(r / 90.0)
    )
    baseline = _sigmoid(logit)
    persuasion = (
        model.persuasion
        * np.asarray(model.segment_lift)[seg]
        * np.asarray(model.tier_lift)[tier]
        * (model.affinity_lift[0] + model.affinity_lift[1] * a)
        * np.exp(-r / model.recency_decay_days)
    )
    persuasion = np.clip(persuasion, 0.0, model.persuasion_max)
    orders_per_responder = 1.0 + np.asarray(model.extra_orders)[tier]
    order_value = np.asarray(model.order_value)[tier] * (0.8 + 0.5 * a)
    return TrueEffects(
        baseline_response=baseline,
        mailed_response=baseline + (1.0 - baseline) * persuasion,
        orders_per_responder=orders_per_responder,
        revenue_per_responder=orders_per_responder * order_value,
        margin_rate=np.asarray(model.margin_rate)[tier].astype(np.float64),
    )


@dataclass(frozen=True, eq=False)
class SimulatedMailing:
    """One mailing of a simulated club: who was mailed, what everyone did, and the truth."""

    mailed_mask: NDArray[np.bool_]
    mailed: OutcomeArrays
    holdout: OutcomeArrays
    effects: TrueEffects
    true_effect: dict[str, float]
    """Average true increment per outcome over all members (mailed and held out): the estimand."""
    true_effect_on_mailed: dict[str, float]
    """The same over the mailed members only."""


def _holdout_mask(n: int, holdout_share: float, rng: np.random.Generator) -> NDArray[np.bool_]:
    """Exactly round(share·n) members held out, chosen uniformly at random."""
    held = np.zeros(n, dtype=np.bool_)
    held[rng.permutation(n)[: round(holdout_share * n)]] = True
    return held


def simulate_mailing(
    features: MemberFeatures,
    *,
    holdout_share: float,
    seed: int | np.random.Generator,
    model: ResponseModel | None = None,
    holdout: ArrayLike | None = None,
) -> SimulatedMailing:
    """Mail every member except a random holdout and draw what each member does.

    The holdout is ``round(holdout_share · n)`` members drawn uniformly at random
    from ``seed`` (or the given boolean ``holdout`` mask, then ``holdout_share`` is
    ignored). Responses are Bernoulli(p_i) for the mailed and Bernoulli(b_i) for the
    held out; orders, revenue and margin follow the module docstring. Same features
    and seed, same mailing.
    """
    model = model or ResponseModel()
    n = features.members
    rng = np.random.default_rng(seed)
    if holdout is None:
        if not 0.0 < holdout_share < 1.0:
            raise ValueError(f"holdout_share must be between 0 and 1, got {holdout_share}")
        held = _holdout_mask(n, holdout_share, rng)
    else:
        held = np.asarray(holdout, dtype=np.bool_)
        if held.shape != (n,):
            raise ValueError("holdout must be one true/false per member")
    mailed_mask = ~held
    if not np.any(held) or not np.any(mailed_mask):
        raise ValueError("both the mailed arm and the holdout need members")

    effects = true_effects(features, model)
    probability = np.where(mailed_mask, effects.mailed_response, effects.baseline_response)
    responded = rng.random(n) < probability
    extra = rng.poisson(np.asarray(model.extra_orders)[features.tier])
    orders = np.where(responded, 1 + extra, 0).astype(np.float64)
    sigma = model.order_value_sigma
    order_mean = np.asarray(model.order_value)[features.tier] * (0.8 + 0.5 * features.affinity)
    buyer = np.repeat(np.arange(n), orders.astype(np.int64))
    values = order_mean[buyer] * rng.lognormal(-sigma * sigma / 2.0, sigma, size=buyer.size)
    revenue = np.bincount(buyer, weights=values, minlength=n).astype(np.float64)
    margin = revenue * effects.margin_rate

    def arm(mask: NDArray[np.bool_]) -> OutcomeArrays:
        return OutcomeArrays(responded[mask], orders[mask], revenue[mask], margin[mask])

    truth = effects.average()
    on_mailed = effects.average(mailed_mask)
    return SimulatedMailing(
        mailed_mask=mailed_mask,
        mailed=arm(mailed_mask),
        holdout=arm(held),
        effects=effects,
        true_effect=truth,
        true_effect_on_mailed=on_mailed,
    )
