"""The simulated club that responds to a mailing, and the coverage of arm_effect's intervals."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from campaign.effects import OUTCOMES, arm_effect
from campaign.simulate import (
    MemberFeatures,
    ResponseModel,
    simulate_mailing,
    simulated_members,
    true_effects,
)


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def test_true_effects_follow_the_documented_formulas() -> None:
    features = MemberFeatures(
        segment=np.array([1, 6]),  # 6 is segment 2 (modulo four)
        tier=np.array([2, 0]),
        affinity=np.array([0.8, 0.1]),
        recency_days=np.array([30.0, 400.0]),
    )
    model = ResponseModel()
    truth = true_effects(features, model)
    for i, (seg, tier, a, r) in enumerate([(1, 2, 0.8, 30.0), (2, 0, 0.1, 400.0)]):
        baseline = _sigmoid(
            model.intercept
            + model.segment_baseline[seg]
            + model.tier_baseline[tier]
            + model.affinity_baseline * (a - 0.5)
            - model.recency_baseline * math.log1p(r / 90.0)
        )
        persuasion = (
            model.persuasion
            * model.segment_lift[seg]
            * model.tier_lift[tier]
            * (model.affinity_lift[0] + model.affinity_lift[1] * a)
            * math.exp(-r / model.recency_decay_days)
        )
        tau = (1.0 - baseline) * persuasion
        orders = 1.0 + model.extra_orders[tier]
        value = model.order_value[tier] * (0.8 + 0.5 * a)
        assert truth.baseline_response[i] == pytest.approx(baseline, rel=1e-12)
        assert truth.incremental_response[i] == pytest.approx(tau, rel=1e-12)
        assert truth.incremental_orders[i] == pytest.approx(tau * orders, rel=1e-12)
        assert truth.incremental_revenue[i] == pytest.approx(tau * orders * value, rel=1e-12)
        assert truth.incremental_margin[i] == pytest.approx(tau * orders * value * model.margin_rate[tier])
    # Loyal, recent, high-affinity members respond more anyway; the model's effect is positive.
    assert truth.baseline_response[0] > truth.baseline_response[1]
    assert np.all(truth.incremental_response > 0)


def test_features_are_validated() -> None:
    good = {"segment": [0, 1], "tier": [0, 2], "affinity": [0.2, 0.9], "recency_days": [3.0, 90.0]}
    MemberFeatures(**{k: np.array(v) for k, v in good.items()})
    for field, bad in (("affinity", [0.2, 1.5]), ("recency_days", [-1.0, 2.0]), ("tier", [0, -1])):
        values = {k: np.array(v) for k, v in good.items()} | {field: np.array(bad)}
        with pytest.raises(ValueError, match=field):
            MemberFeatures(**values)
    with pytest.raises(ValueError, match="tier"):
        true_effects(MemberFeatures(np.array([0]), np.array([3]), np.array([0.5]), np.array([1.0])))


def test_a_mailing_is_reproducible_and_holds_out_the_share_asked_for() -> None:
    features = simulated_members(5000, seed=1)
    first = simulate_mailing(features, holdout_share=0.05, seed=2)
    again = simulate_mailing(features, holdout_share=0.05, seed=2)
    other = simulate_mailing(features, holdout_share=0.05, seed=3)
    assert first.holdout.members == 250 and first.mailed.members == 4750
    assert np.array_equal(first.mailed_mask, again.mailed_mask)
    assert np.array_equal(first.mailed.revenue, again.mailed.revenue)
    assert not np.array_equal(first.mailed_mask, other.mailed_mask)
    for arm in (first.mailed, first.holdout):
        assert np.array_equal(arm.orders > 0, arm.responded)
        assert np.all((arm.revenue > 0) == arm.responded)
    # A given holdout mask is used as is.
    mask = np.zeros(5000, dtype=bool)
    mask[:1000] = True
    fixed = simulate_mailing(features, holdout_share=0.5, seed=2, holdout=mask)
    assert fixed.holdout.members == 1000 and np.array_equal(fixed.mailed_mask, ~mask)


def test_simulated_outcomes_have_the_expected_means() -> None:
    """Law of large numbers on a big club: each arm's means match the model's expectations."""
    features = simulated_members(200_000, seed=7)
    sim = simulate_mailing(features, holdout_share=0.5, seed=8)
    truth = sim.effects
    mailed, held = sim.mailed_mask, ~sim.mailed_mask
    margin_per_responder = truth.revenue_per_responder * truth.margin_rate
    for mask, arm, probability in (
        (mailed, sim.mailed, truth.mailed_response),
        (held, sim.holdout, truth.baseline_response),
    ):
        expected = {
            "response": probability[mask],
            "orders": (probability * truth.orders_per_responder)[mask],
            "revenue": (probability * truth.revenue_per_responder)[mask],
            "margin": (probability * margin_per_responder)[mask],
        }
        observed = {
            "response": arm.responded.astype(float),
            "orders": arm.orders,
            "revenue": arm.revenue,
            "margin": arm.margin,
        }
        for name in OUTCOMES:
            standard_error = observed[name].std() / math.sqrt(observed[name].size)
            assert abs(observed[name].mean() - expected[name].mean()) < 4 * standard_error, name
    # Sensible magnitudes for a book club: a few per cent respond anyway, mailing adds a few more.
    assert 0.03 < truth.baseline_response.mean() < 0.12
    assert 0.02 < sim.true_effect["response"] < 0.10
    assert sim.true_effect["revenue"] > 0 and sim.true_effect["margin"] < sim.true_effect["revenue"]


@pytest.mark.slow
def test_intervals_cover_the_true_effect_and_estimates_are_unbiased() -> None:
    """1,000 small clubs (4,000 members, 30 % held out), each with its own seed.

    The estimand is the true average increment over the members the mailing was
    meant for; the 95 % intervals of arm_effect must cover it at least 93 % of the
    time (and not be so wide that they cover it nearly always), and the estimates
    must average to the truth within two standard errors.
    """
    replications, members, holdout_share = 1000, 4000, 0.3
    started = time.perf_counter()
    covered = {name: 0 for name in OUTCOMES}
    covered_mailed = {name: 0 for name in OUTCOMES}
    errors: dict[str, list[float]] = {name: [] for name in OUTCOMES}
    for seed in range(replications):
        features = simulated_members(members, seed=seed)
        sim = simulate_mailing(features, holdout_share=holdout_share, seed=1_000_000 + seed)
        effect = arm_effect(sim.mailed, sim.holdout, cost_per_piece=0.8, seed=seed, resamples=1000)
        for name in OUTCOMES:
            outcome = effect.outcome(name)
            truth = sim.true_effect[name]
            covered[name] += outcome.low <= truth <= outcome.high
            covered_mailed[name] += outcome.low <= sim.true_effect_on_mailed[name] <= outcome.high
            errors[name].append(outcome.incremental - truth)
        assert effect.revenue.method.startswith("bootstrap")
    elapsed = time.perf_counter() - started

    print(
        f"\ncoverage over {replications} clubs of {members} members, {holdout_share:.0%} held out ({elapsed:.1f} s)"
    )
    print(f"{'outcome':<10}{'coverage':>9}{'(mailed)':>10}{'mean error':>13}{'std error':>12}{'z':>7}")
    for name in OUTCOMES:
        error = np.array(errors[name])
        standard_error = error.std(ddof=1) / math.sqrt(replications)
        print(
            f"{name:<10}{covered[name] / replications:>9.3f}{covered_mailed[name] / replications:>10.3f}"
            f"{error.mean():>13.5f}{standard_error:>12.5f}{error.mean() / standard_error:>7.2f}"
        )
    for name in OUTCOMES:
        coverage = covered[name] / replications
        assert 0.93 <= coverage <= 0.985, f"{name}: coverage {coverage:.3f}"
        error = np.array(errors[name])
        assert abs(error.mean()) <= 2 * error.std(ddof=1) / math.sqrt(replications), f"{name}: biased"
