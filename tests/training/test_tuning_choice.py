"""``training.tuning.choose`` on hand-made validation scores with known answers.

Each case builds per-member values whose means and paired differences are fixed by
construction (a constant shift is a significant difference; independent noise with a
standard deviation 50× the shift is not), checks that premise on the trials the rule
filled in, then asserts the choice. Every case but the last two is one the earlier rule
("the simplest point whose paired difference to the best reaches 0") got wrong.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from training.tuning import PRACTICAL_MARGIN, Point, Trial, choose

MEMBERS = 600
RNG_SEED = 7


def base_values(mean: float) -> npt.NDArray[np.float64]:
    """Per-member values in [0, 1) with exactly ``mean`` as their mean."""
    values = np.random.default_rng(RNG_SEED).uniform(0.0, 2.0 * mean, MEMBERS)
    return np.clip(values - values.mean() + mean, 0.0, None)


def noisy(values: npt.NDArray[np.float64], shift: float, sd: float, seed: int) -> npt.NDArray[np.float64]:
    """``values`` plus independent noise of standard deviation ``sd`` whose mean is exactly ``shift``."""
    noise = np.random.default_rng(seed).normal(0.0, sd, len(values))
    return values + noise - noise.mean() + shift


def trial(kind: str, values: npt.NDArray[np.float64], **params: Any) -> Trial:
    ids = [f"m{i:04d}" for i in range(len(values))]
    return Trial(Point(kind, tuple(sorted(params.items()))), ids, np.asarray(values, dtype=np.float64), 0.0)


def run(trials: list[Trial]) -> tuple[Trial, Trial, dict[str, Trial]]:
    return choose(trials, resamples=2000, seed=0)


def reaches_zero(t: Trial) -> bool:
    return t.difference["low"] <= 0.0 <= t.difference["high"]


def test_between_two_learnt_recommenders_the_better_mean_is_served() -> None:
    """Online Retail's validation: item-kNN 0.0003 behind ALS, not significantly."""
    knn_values = base_values(0.116)
    knn = trial("item_knn", knn_values, knn_neighbours=50)
    als = trial("als", noisy(knn_values, 0.0003, 0.03, 1), factors=64)
    chosen, best, per_kind = run([knn, als])
    assert best is als and reaches_zero(knn)  # the old rule served item-kNN here
    assert chosen is als
    assert per_kind == {"item_knn": knn, "als": als}


def test_a_baseline_far_behind_is_not_served_though_the_interval_reaches_zero() -> None:
    """Shakespeare and Company's validation: popularity 10 % behind the best, few members."""
    pop_values = base_values(0.034)
    popularity = trial("popularity", pop_values)
    als = trial("als", noisy(pop_values, 0.0034, 0.2, 2), factors=32)
    chosen, best, _ = run([popularity, als])
    assert best is als and reaches_zero(popularity)  # the old rule served popularity
    assert chosen is als


def test_category_popularity_is_as_simple_as_popularity() -> None:
    """Both baselines within the margin of the best: the one with the higher mean."""
    pop_values = base_values(0.100)
    popularity = trial("popularity", pop_values)
    category = trial("category_popularity", noisy(pop_values, 0.0004, 0.05, 3), category_prior_weight=5.0)
    als = trial("als", noisy(pop_values, 0.0008, 0.05, 4), factors=32)
    chosen, best, _ = run([popularity, category, als])
    assert best is als and reaches_zero(popularity) and reaches_zero(category)
    assert chosen is category  # the old rule served popularity


def test_a_point_significantly_worse_than_any_other_is_never_preferred() -> None:
    """Popularity trails ALS by a constant 0.0005 (significant), is within the margin of
    item-kNN (the best) and not significantly behind it: item-kNN is served."""
    als_values = base_values(0.2005)
    als = trial("als", als_values, factors=32)
    popularity = trial("popularity", als_values - 0.0005)
    knn = trial("item_knn", noisy(als_values, 0.0005, 0.05, 5), knn_neighbours=100)
    chosen, best, _ = run([popularity, als, knn])
    assert best is knn and reaches_zero(popularity)
    assert popularity.mean >= best.mean * (1.0 - PRACTICAL_MARGIN)
    assert chosen is knn  # the old rule served popularity


def test_within_a_recommender_the_larger_model_wins_beyond_the_margin() -> None:
    small_values = base_values(0.100)
    small = trial("als", small_values, factors=16)
    large = trial("als", noisy(small_values, 0.004, 0.1, 6), factors=64)
    chosen, best, per_kind = run([small, large])
    assert best is large and reaches_zero(small)  # 4 % behind, not significantly
    assert chosen is large and per_kind["als"] is large  # the old rule served 16 factors


def test_a_baseline_within_the_margin_and_not_worse_is_served() -> None:
    pop_values = base_values(0.100)
    popularity = trial("popularity", pop_values)
    als = trial("als", noisy(pop_values, 0.0005, 0.05, 8), factors=32)
    chosen, best, _ = run([als, popularity])
    assert best is als and reaches_zero(popularity)
    assert chosen is popularity


def test_the_smaller_model_within_the_margin_is_served() -> None:
    small_values = base_values(0.100)
    small = trial("item_knn", small_values, knn_neighbours=20)
    large = trial("item_knn", noisy(small_values, 0.0005, 0.05, 9), knn_neighbours=400)
    bpr = trial("bpr", small_values - 0.02, bpr_factors=32)
    chosen, best, per_kind = run([large, bpr, small])
    assert best is large and chosen is small and per_kind["bpr"] is bpr
    assert bpr.difference["high"] < 0.0


def test_the_blend_is_one_more_learnt_recommender() -> None:
    """The blend ahead of ALS and item-kNN by 2 % (not significantly): the better mean among
    learnt recommenders is served, whatever it mixes; a baseline within the margin still wins."""
    knn_values = base_values(0.100)
    knn = trial("item_knn", knn_values, knn_neighbours=20)
    als = trial("als", noisy(knn_values, -0.001, 0.05, 10), factors=64)
    blend = trial("blend", noisy(knn_values, 0.002, 0.05, 11), blend_weight=0.5, factors=64, knn_neighbours=20)
    chosen, best, per_kind = run([knn, als, blend])
    assert best is blend and reaches_zero(knn) and reaches_zero(als)
    assert knn.mean < best.mean * (1.0 - PRACTICAL_MARGIN)
    assert chosen is blend and per_kind["blend"] is blend
    popularity = trial("popularity", noisy(knn_values, 0.0015, 0.05, 12))
    chosen, best, _ = run([knn, als, blend, popularity])
    assert best is blend and reaches_zero(popularity) and chosen is popularity
