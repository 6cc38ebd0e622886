"""The value of a mailing policy on a randomized test, and paired comparisons of two policies.

A randomized test sent arm ``a`` (0 = nothing, 1…K = an edition) to each member with a known
probability ``p_a`` (the arm's share); ``y`` is what each member did. A policy says, per member,
the probability of sending each arm (a deterministic policy: one 1 per row). Two estimators of
the policy's mean outcome per member, both unbiased because the propensities are known:

- **IPW** (inverse-propensity weighting): ``Γ_a = 1{A = a}·y / p_a``;
- **DR / AIPW** (doubly robust, augmented IPW): ``Γ_a = m_a(x) + 1{A = a}·(y − m_a(x)) / p_a``
  with ``m_a`` an outcome model. With known propensities it is unbiased for *any* ``m`` fitted
  without the member's own outcome; a good ``m`` takes the predictable part of ``y`` out of the
  weighted term and so lowers the variance. :func:`cross_fitted_outcomes` fits ``m`` by
  cross-fitting (each member's ``m`` from models fitted on the other folds).

The policy's value is the mean over members of ``Σ_a π(a | x)·Γ_a``; per-member scores are
returned so that two policies are compared **paired** (:func:`compare`: a Poisson bootstrap of
the members, the policies held fixed; the interval is on the difference and on the relative gain).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from threadpoolctl import threadpool_limits

__all__ = [
    "Comparison",
    "bootstrap_weights",
    "compare",
    "cross_fitted_outcomes",
    "deterministic",
    "policy_scores",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Comparison:
    """The policy against another: their totals and the policy's relative gain with its interval."""

    name: str
    profit: float
    pieces: int
    gain: float  # (policy − this) / |this|
    low: float
    high: float
    difference: float  # policy − this
    difference_low: float
    difference_high: float

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def bootstrap_weights(n: int, resamples: int, seed: int) -> npt.NDArray[np.float32]:
    """Poisson(1) bootstrap weights, (resamples, n)."""
    return np.random.default_rng(seed).poisson(1.0, size=(resamples, n)).astype(np.float32)


def compare(
    name: str, ours: FloatArray, theirs: FloatArray, pieces: int, weights: npt.NDArray[np.float32]
) -> Comparison:
    """Paired comparison of per-member contributions ``ours`` and ``theirs`` (95 % percentile intervals)."""
    if ours.shape != theirs.shape or weights.shape[1] != ours.size:
        raise ValueError("ours, theirs and the bootstrap weights must cover the same members")
    a = weights @ ours.astype(np.float32)
    b = weights @ theirs.astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        gain = (a - b) / np.abs(b)
    total_ours, total_theirs = float(ours.sum()), float(theirs.sum())
    return Comparison(
        name=name,
        profit=total_theirs,
        pieces=pieces,
        gain=(total_ours - total_theirs) / abs(total_theirs) if total_theirs else float("inf"),
        low=float(np.percentile(gain, 2.5)),
        high=float(np.percentile(gain, 97.5)),
        difference=total_ours - total_theirs,
        difference_low=float(np.percentile(a - b, 2.5)),
        difference_high=float(np.percentile(a - b, 97.5)),
    )


def deterministic(send: IntArray, arms: int) -> FloatArray:
    """A deterministic policy (the arm per member) as (n, arms) probabilities."""
    send = np.asarray(send, dtype=np.int64)
    if send.size and (send.min() < 0 or send.max() >= arms):
        raise ValueError(f"arms must be 0 … {arms - 1}")
    out = np.zeros((send.size, arms))
    out[np.arange(send.size), send] = 1.0
    return out


def policy_scores(
    arm: IntArray,
    outcome: FloatArray,
    propensity: FloatArray,
    policy: FloatArray,
    expected: FloatArray | None = None,
) -> FloatArray:
    """Each member's contribution to the policy's value (module doc): IPW if ``expected`` is None,
    else DR with ``expected[i, a] = m_a(x_i)``. ``policy`` is (n, arms) probabilities."""
    n, arms = policy.shape
    if arm.shape != (n,) or outcome.shape != (n,) or propensity.shape != (arms,):
        raise ValueError("arm, outcome (n,), policy (n, arms) and propensity (arms,) must agree")
    if np.any(propensity <= 0) or not np.allclose(policy.sum(axis=1), 1.0):
        raise ValueError("propensities must be positive and each member's policy must sum to 1")
    m = np.zeros((n, arms)) if expected is None else expected
    if m.shape != (n, arms):
        raise ValueError("expected outcomes must be (n, arms)")
    rows = np.arange(n)
    correction = (outcome - m[rows, arm]) / propensity[arm]
    scores: FloatArray = (policy * m).sum(axis=1) + policy[rows, arm] * correction
    return scores


def _folds(n: int, folds: int, seed: int) -> IntArray:
    fold: IntArray = np.random.default_rng(seed).permutation(np.arange(n) % folds).astype(np.int64)
    return fold


def cross_fitted_outcomes(
    features: FloatArray, arm: IntArray, outcome: FloatArray, arms: int, *, folds: int = 5, seed: int = 0
) -> FloatArray:
    """``m_a(x) = P(y > 0 | x, a) · E[y | y > 0, x]`` for every member and arm, cross-fitted.

    Per fold: a shallow gradient-boosted classifier of ``y > 0`` per arm (on the other folds'
    members of that arm) and one regressor of ``y`` on the other folds' members with ``y > 0``
    (all arms: an e-mail changes whether a customer buys more than what a buyer spends). For a
    0/1 outcome the regressor is the constant 1. One thread (see :func:`campaign.uplift.fit_uplift`).
    """
    n = arm.size
    if features.shape[0] != n or outcome.shape != (n,) or folds < 2:
        raise ValueError("features (n, p), arm and outcome (n,) must agree, and folds ≥ 2")
    fold = _folds(n, folds, seed)
    positive = outcome > 0
    out = np.empty((n, arms))
    with threadpool_limits(limits=1):
        for f in range(folds):
            train, test = fold != f, fold == f
            x_test = features[test]
            buyers = train & positive
            if buyers.sum() >= 40 and np.ptp(outcome[buyers]) > 0:
                value = HistGradientBoostingRegressor(
                    max_iter=100, learning_rate=0.05, max_depth=2, min_samples_leaf=20, random_state=seed + f
                ).fit(features[buyers], outcome[buyers]).predict(x_test)  # fmt: skip
                value = np.maximum(value, 0.0)
            else:
                value = np.full(x_test.shape[0], float(outcome[buyers].mean()) if buyers.any() else 0.0)
            for a in range(arms):
                mine = train & (arm == a)
                y = positive[mine]
                if y.sum() < 5 or y.all():
                    p = np.full(x_test.shape[0], float(y.mean()) if y.size else 0.0)
                else:
                    clf = HistGradientBoostingClassifier(
                        max_iter=100, learning_rate=0.05, max_depth=2, min_samples_leaf=100,
                        l2_regularization=1.0, random_state=seed + 10 * f + a,
                    ).fit(features[mine], y)  # fmt: skip
                    p = clf.predict_proba(x_test)[:, 1]
                out[test, a] = p * value
    return out
