"""Known answers for the bootstrap over members (``training.metrics.bootstrap``)."""

from __future__ import annotations

import numpy as np
import pytest

from training.metrics.bootstrap import pooled_means, resample_means


def test_a_constant_metric_has_a_zero_width_interval() -> None:
    boot = resample_means(np.full(50, 0.25), resamples=500, seed=3)
    assert boot.interval(0) == (0.25, 0.25)


def test_two_point_sample_matches_the_exact_bootstrap_distribution() -> None:
    """Values {0, 1}: a resample of two has mean 0, 1/2 or 1 with probability 1/4, 1/2, 1/4;
    so the 2.5 % and 97.5 % quantiles are 0 and 1."""
    boot = resample_means(np.array([0.0, 1.0]), resamples=40_000, seed=11)
    means = boot.means[:, 0]
    assert set(np.unique(means).tolist()) == {0.0, 0.5, 1.0}
    for value, p in ((0.0, 0.25), (0.5, 0.5), (1.0, 0.25)):
        share = float(np.mean(means == value))
        assert abs(share - p) < 4 * np.sqrt(p * (1 - p) / len(means)), (value, share)
    assert boot.interval(0) == (0.0, 1.0)


def test_coverage_on_simulated_normal_samples() -> None:
    """The 95 % interval of the mean of 100 draws from N(0, 1) holds 0 in about 95 % of 400
    samples (binomial sd 1.1 %): an interval of the wrong width (sd instead of se, or half
    the level) lands far outside 0.91–0.985."""
    rng = np.random.default_rng(5)
    hits = 0
    for i in range(400):
        low, high = resample_means(rng.normal(0.0, 1.0, 100), resamples=1000, seed=i).interval(0)
        hits += low <= 0.0 <= high
    assert 0.91 <= hits / 400 <= 0.985


def test_paired_difference_uses_the_same_members() -> None:
    """b = a + 0.02 member by member: the paired difference is exactly 0.02 in every resample,
    while the unpaired intervals of a and b (each about ± 0.04 wide) overlap."""
    a = np.random.default_rng(1).random(200)
    boot = resample_means(np.column_stack([a + 0.02, a]), resamples=1000, seed=2)
    low, high = boot.difference(0, 1)
    assert low == pytest.approx(0.02) and high == pytest.approx(0.02)
    assert boot.interval(0)[0] < boot.interval(1)[1]


def test_members_counted_several_times_are_one_unit() -> None:
    """Member 0 has two values summing 1.0, member 1 one value 0.0: the pooled mean is 1/3,
    and each resample's mean is a ratio of sums (0, 1/3, 1/2 or 2/3 … from the draws)."""
    sums, counts = np.array([1.0, 0.0]), np.array([2.0, 1.0])
    assert pooled_means(sums, counts)[0] == pytest.approx(1 / 3)
    boot = resample_means(sums, counts, resamples=5000, seed=0)
    # draws (0,0) → 2/4, (0,1) → 1/3, (1,1) → 0/2
    assert set(np.round(np.unique(boot.means[:, 0]), 12).tolist()) == {0.0, round(1 / 3, 12), 0.5}


def test_the_same_seed_gives_the_same_interval() -> None:
    values = np.random.default_rng(9).random((300, 4))
    first = resample_means(values, resamples=700, seed=4)
    second = resample_means(values, resamples=700, seed=4, chunk=100)
    assert np.array_equal(first.means, second.means)
    assert not np.array_equal(first.means, resample_means(values, resamples=700, seed=5).means)
