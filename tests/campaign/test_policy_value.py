"""Policy value on a randomized test: IPW and DR by hand, unbiased on simulated tests, DR's lower variance,
cross-fitting that never sees a member's own outcome, paired comparisons."""

from __future__ import annotations

import numpy as np
import pytest

from campaign.policy_value import (
    bootstrap_weights,
    compare,
    cross_fitted_outcomes,
    deterministic,
    policy_scores,
)


def test_ipw_and_dr_by_hand() -> None:
    arm = np.array([0, 1, 1, 0])
    y = np.array([1.0, 3.0, 0.0, 2.0])
    p = np.array([0.5, 0.5])
    send_one = deterministic(np.array([1, 1, 1, 1]), 2)
    # IPW: members who got arm 1 count y / 0.5, the others 0
    assert policy_scores(arm, y, p, send_one).tolist() == [0.0, 6.0, 0.0, 0.0]
    m = np.array([[1.0, 2.0]] * 4)
    # DR: m_1 + 1{A=1}(y − m_1)/0.5 → 2, 2 + 2, 2 − 4, 2
    assert policy_scores(arm, y, p, send_one, m).tolist() == [2.0, 4.0, -2.0, 2.0]
    half = np.full((4, 2), 0.5)  # a stochastic policy: the average of the two arms' scores
    both = 0.5 * (policy_scores(arm, y, p, deterministic(np.zeros(4, dtype=np.int64), 2), m)
                  + policy_scores(arm, y, p, send_one, m))  # fmt: skip
    assert policy_scores(arm, y, p, half, m) == pytest.approx(both)
    with pytest.raises(ValueError, match="sum to 1"):
        policy_scores(arm, y, p, np.full((4, 2), 0.3))
    with pytest.raises(ValueError, match="arms must be"):
        deterministic(np.array([0, 2]), 2)


def _test(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A randomized test with a known truth: y = base(x) + arm·effect(x) + noise, arms 0/1/2 at 40/30/30 %."""
    x = rng.normal(size=(n, 2))
    arm = rng.choice(3, size=n, p=[0.4, 0.3, 0.3])
    truth = np.column_stack([3.0 + 2.0 * x[:, 0], 3.5 + 2.0 * x[:, 0] + x[:, 1], 3.2 + 2.0 * x[:, 0] - x[:, 1]])
    y = truth[np.arange(n), arm] + rng.normal(0.0, 0.5, n)
    return x, arm, y, truth


def test_both_estimators_are_unbiased_and_dr_has_the_smaller_variance() -> None:
    rng = np.random.default_rng(0)
    p = np.array([0.4, 0.3, 0.3])
    ipw, dr, true = [], [], []
    for _rep in range(30):
        x, arm, y, truth = _test(rng, 3000)
        send = np.where(x[:, 1] > 0, 1, 2)  # the better arm for each member
        policy = deterministic(send, 3)
        true.append(truth[np.arange(send.size), send].mean())
        m = cross_fitted_outcomes(x, arm, y, 3, folds=3, seed=_rep)
        ipw.append(policy_scores(arm, y, p, policy).mean())
        dr.append(policy_scores(arm, y, p, policy, m).mean())
    err_ipw, err_dr = np.asarray(ipw) - true, np.asarray(dr) - true
    assert abs(err_ipw.mean()) < 3 * err_ipw.std() / np.sqrt(30)
    assert abs(err_dr.mean()) < 0.03  # cross-fitted: no own-outcome bias
    assert err_dr.std() < 0.5 * err_ipw.std()  # y is predictable here: DR takes that out


def test_cross_fitting_never_uses_a_members_own_outcome() -> None:
    rng = np.random.default_rng(1)
    x, arm, y, _truth = _test(rng, 1200)
    y = np.maximum(y, 0.0)
    m = cross_fitted_outcomes(x, arm, y, 3, folds=4, seed=5)
    changed = y.copy()
    changed[7] = 1e4  # only member 7's outcome changes
    m2 = cross_fitted_outcomes(x, arm, changed, 3, folds=4, seed=5)
    assert m2[7] == pytest.approx(m[7])
    assert not np.allclose(m2, m)  # the other folds' models did see it
    with pytest.raises(ValueError, match="folds"):
        cross_fitted_outcomes(x, arm, y, 3, folds=1)


def test_paired_comparison_interval() -> None:
    rng = np.random.default_rng(2)
    theirs = rng.normal(1.0, 1.0, 20_000)
    ours = theirs + 0.1 + rng.normal(0.0, 0.1, theirs.size)  # 10 % better, paired
    c = compare("rival", ours, theirs, 0, bootstrap_weights(theirs.size, 400, 3))
    assert c.gain == pytest.approx(0.1, abs=0.01) and c.low < c.gain < c.high
    assert c.low > 0.08 and c.high < 0.12  # paired: the shared noise cancels
    assert c.difference_low < c.difference < c.difference_high
