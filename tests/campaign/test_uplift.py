"""Uplift learners on the simulated club (the truth known) and the Qini measure."""

from __future__ import annotations

import numpy as np
import pytest

from campaign.mailing_sim import make_world
from campaign.uplift import MONEY, UpliftData, fit_uplift, qini

COSTS = {"catalog": 2.50, "postcard": 0.45, "email": 0.002}


def test_qini_by_hand_and_against_random() -> None:
    # four members: treated responders score highest; the control responder lowest
    score = np.array([4.0, 3.0, 2.0, 1.0])
    treated = np.array([True, False, True, False])
    outcome = np.array([1.0, 0.0, 0.0, 1.0])
    result = qini(score, treated, outcome, points=4)
    # top 1: 1 treated responder, no control → 1 × 4/2 = 2; top 2: 1 − 0·1/1 = 1 → 2;
    # top 3: 1 − 0 = 1 → 2; all: 1 − 1·2/2 = 0 → 0
    assert result.gain == pytest.approx((2.0, 2.0, 2.0, 0.0))
    assert result.total_gain == 0.0 and np.isnan(result.qini)
    rng = np.random.default_rng(0)
    n = 40_000
    tau = rng.uniform(0, 0.2, n)
    t = rng.random(n) < 0.5
    y = (rng.random(n) < 0.1 + t * tau).astype(float)
    good, noise = qini(tau, t, y), qini(rng.random(n), t, y)
    assert good.qini > 0.15 and abs(noise.qini) < 0.08
    assert good.auuc > 0.6 and good.uplift[0] > good.uplift[-1]
    with pytest.raises(ValueError):
        qini(tau, np.ones(n, dtype=bool), y)


@pytest.fixture(scope="module")
def learned() -> tuple:  # type: ignore[type-arg]
    world = make_world(24_000, COSTS, seed=21)
    data = world.randomized([0.25, 0.25, 0.25, 0.25], seed=3)
    fit, back = data.split(0.3, seed=1)
    test = make_world(20_000, COSTS, seed=22)
    return world, fit, back, test


@pytest.mark.parametrize("learner", ["x", "two-model"])
def test_learners_find_who_the_catalog_moves(learned: tuple, learner: str) -> None:  # type: ignore[type-arg]
    _world, fit, back, test = learned
    model = fit_uplift(fit, learner=learner, seed=2)  # type: ignore[arg-type]
    x, names = test.features()
    assert model.feature_names == names and model.arm_names == ("catalog", "postcard", "email")
    pred = model.predict(x)
    truth = test.true_margin()
    # the catalog's effect is the largest and best learned: ranked and sized like the truth
    assert np.corrcoef(pred.margin[:, 0], truth[:, 0])[0, 1] > 0.5
    assert pred.response[:, 0].mean() == pytest.approx(test.true_response()[:, 0].mean(), rel=0.25)
    assert pred.revenue[:, 0].mean() > pred.revenue[:, 1].mean() > pred.revenue[:, 2].mean()
    # on held-back members the catalog ranking beats random targeting (response: Qini 0.17 and
    # 0.15; margin, far noisier: 0.13 and 0.05, for the X-learner and the two models)
    mine = (back.arm == 0) | (back.arm == 1)
    held = model.predict(back.features[mine])
    assert qini(held.response[:, 0], back.arm[mine] == 1, back.responded[mine].astype(float)).qini > 0.08
    assert qini(held.margin[:, 0], back.arm[mine] == 1, back.money[mine, 2]).qini > 0.0


def test_uplift_data_checks() -> None:
    x = np.zeros((3, 2))
    with pytest.raises(ValueError, match="money"):
        UpliftData(x, np.array([0, 1, 1]), np.zeros(3, bool), np.zeros((3, 2)), ("a",))
    with pytest.raises(ValueError, match="arms"):
        UpliftData(x, np.array([0, 1, 2]), np.zeros(3, bool), np.zeros((3, len(MONEY))), ("a",))
    with pytest.raises(ValueError, match="unknown learner"):
        fit_uplift(UpliftData(x, np.array([0, 1, 1]), np.zeros(3, bool), np.zeros((3, 3)), ("a",)), learner="s")  # type: ignore[arg-type]


def test_stacking_calibrates_honestly(learned: tuple) -> None:  # type: ignore[type-arg]
    _world, fit, _back, test = learned
    raw = fit_uplift(fit, seed=2)
    stacked = fit_uplift(fit, seed=2, stack_folds=3)
    assert raw.stacking is None and stacked.stacking is not None
    weights = stacked.stacking
    assert weights.shape == (3, 4) and np.all(weights[:, 1:] >= 0.0)
    assert set(stacked.info["stacking"]) == {"folds", "predicts", "catalog", "postcard", "email"}
    assert stacked.info["members"] == len(fit) and sum(stacked.info["arms"].values()) + stacked.info["control"] == len(fit)
    x, _names = test.features()
    before, after = raw.predict(x), stacked.predict(x, rates=True)
    truth = test.true_margin()
    # no refit on all the contacts: the stacked model predicts with the mean of its three fold
    # models (the predictors the weights were estimated on) — with the identity, their raw uplift
    assert len(stacked.folds) == 3 and all(f.stacking is None and not f.folds for f in stacked.folds)
    folds = [f.predict(x, rates=True) for f in stacked.folds]
    stacked.stacking = np.column_stack([np.zeros(3), np.eye(3)])
    identity = stacked.predict(x)
    assert np.allclose(identity.response, np.mean([f.response for f in folds], axis=0))
    value = np.mean([f.margin / f.response for f in folds], axis=0)
    assert np.allclose(identity.margin, identity.response * value)
    assert after.baseline_response is not None and after.mailed_response is not None
    assert np.allclose(after.baseline_response, np.mean([f.baseline_response for f in folds], axis=0))
    assert np.allclose(after.mailed_response, np.mean([f.mailed_response for f in folds], axis=0))
    assert not np.allclose(identity.response, before.response)
    # stacked: sized like the truth; the catalog's ranking kept; the postcard's and the e-mail's own
    # rankings, which 2,800 held-out pieces a fold cannot bear out here, shrunk towards their mean
    # (the raw ones vary as much as the truth or three times more, with a correlation near 0)
    for j in range(3):
        assert after.response[:, j].mean() == pytest.approx(test.true_response()[:, j].mean(), abs=0.01)
    assert np.corrcoef(after.response[:, 0], test.true_response()[:, 0])[0, 1] > 0.5
    for j in (1, 2):
        assert np.std(after.margin[:, j]) < np.std(before.margin[:, j])
        assert np.std(after.margin[:, j]) < np.std(truth[:, j])


def test_stacking_needs_enough_members() -> None:
    world = make_world(600, COSTS, seed=5)
    data = world.randomized([0.25, 0.25, 0.25, 0.25], seed=1)
    model = fit_uplift(data, seed=0, stack_folds=3)
    assert model.stacking is None and not model.folds and "skipped" in model.info["stacking"]
    with pytest.raises(ValueError, match="stack_folds"):
        fit_uplift(data, stack_folds=1)
