"""Randomized holdouts: the seeded hash, the shares per segment × tier, the universal holdout."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from scipy import stats

from campaign.holdouts import HoldoutRule, assign_holdouts, campaign_seed, uniform_hash


def _ids(n: int, prefix: str = "M") -> list[str]:
    return [f"{prefix}{i:07d}" for i in range(n)]


def _reference_uniform(member_id: str, seed: int) -> float:
    """The documented hash written out with Python integers, one member at a time."""
    mask = (1 << 64) - 1

    def splitmix(x: int) -> int:
        z = (x + 0x9E3779B97F4A7C15) & mask
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
        return z ^ (z >> 31)

    h = 0xCBF29CE484222325
    for byte in member_id.encode("utf-8"):
        h = ((h ^ byte) * 0x100000001B3) & mask
    return (splitmix(h ^ splitmix(seed & mask)) >> 11) / float(1 << 53)


def test_the_vectorised_hash_is_the_documented_one() -> None:
    ids = ["M0000001", "A", "", "会员-0042", "x" * 64, "M0000002"]
    expected = [_reference_uniform(m, 12345) for m in ids]
    assert uniform_hash(ids, 12345).tolist() == expected


def test_the_hash_is_uniform_and_depends_on_the_seed() -> None:
    ids = _ids(200_000)
    u = uniform_hash(ids, 7)
    assert u.min() >= 0.0 and u.max() < 1.0
    assert stats.kstest(u, "uniform").pvalue > 0.001
    v = uniform_hash(ids, 8)
    assert abs(np.corrcoef(u, v)[0, 1]) < 0.01  # another campaign, other arms


def test_campaign_seed_is_stable_and_distinct() -> None:
    expected = int.from_bytes(hashlib.blake2b(b"2026Q4", digest_size=8).digest(), "big") >> 1
    assert campaign_seed("2026Q4") == expected
    assert campaign_seed("2026Q4") != campaign_seed("2027Q1")


def test_each_segment_and_tier_is_held_out_at_its_share() -> None:
    n = 120_000
    rng = np.random.default_rng(3)
    ids = _ids(n)
    segments = rng.integers(0, 4, size=n)
    tiers = rng.choice(["core", "regular", "occasional", "lapsed"], size=n).tolist()
    rule = HoldoutRule(share=0.05, overrides={"*/core": 0.10, "2/*": 0.20, "2/core": 0.30})
    result = assign_holdouts(ids, segments, tiers, rule, seed=campaign_seed("2026Q4"))
    tier_arr = np.asarray(tiers)
    for segment in range(4):
        for tier in ("core", "regular", "occasional", "lapsed"):
            cell = (segments == segment) & (tier_arr == tier)
            share = rule.share_for(segment, tier)
            assert np.all(result.probability[cell] == share)
            check = stats.binomtest(int(result.held[cell].sum()), int(cell.sum()), share)
            assert check.pvalue > 0.001, (segment, tier, result.held[cell].mean(), share)
    assert rule.share_for(2, "core") == 0.30  # most specific wins
    assert rule.share_for(2, "regular") == 0.20
    assert rule.share_for(1, "core") == 0.10
    assert rule.share_for(1, "regular") == 0.05


def test_re_running_gives_the_same_arms_whatever_the_order() -> None:
    ids = _ids(5_000)
    segments = np.arange(5_000) % 4
    tiers = ["regular"] * 5_000
    rule = HoldoutRule(share=0.05)
    first = assign_holdouts(ids, segments, tiers, rule, seed=99)
    order = np.random.default_rng(0).permutation(5_000)
    second = assign_holdouts([ids[i] for i in order], segments[order], [tiers[i] for i in order], rule, seed=99)
    assert np.array_equal(first.held[order], second.held)


def test_the_universal_holdout_persists_across_campaigns() -> None:
    ids = _ids(100_000)
    segments = np.zeros(100_000, dtype=np.int64)
    tiers = ["regular"] * 100_000
    rule = HoldoutRule(share=0.05, universal_share=0.005, universal_seed=20_261)
    q4 = assign_holdouts(ids, segments, tiers, rule, seed=campaign_seed("2026Q4"))
    q1 = assign_holdouts(ids, segments, tiers, rule, seed=campaign_seed("2027Q1"))
    assert np.array_equal(q4.universal, q1.universal)  # the same members, quarter after quarter
    assert q4.universal.any() and np.all(q4.held[q4.universal]) and np.all(q1.held[q1.universal])
    assert stats.binomtest(int(q4.universal.sum()), 100_000, 0.005).pvalue > 0.001
    # the campaign draws differ between quarters
    assert not np.array_equal(q4.held & ~q4.universal, q1.held & ~q1.universal)
    p = 0.005 + 0.995 * 0.05
    assert np.allclose(q4.probability, p)
    assert stats.binomtest(int(q4.held.sum()), 100_000, p).pvalue > 0.001


def test_bad_rules_are_refused() -> None:
    with pytest.raises(ValueError, match="SEGMENT/TIER"):
        HoldoutRule(overrides={"core": 0.1})
    with pytest.raises(ValueError, match="must be in"):
        HoldoutRule(share=1.5)
    with pytest.raises(ValueError, match="equally long"):
        assign_holdouts(["a", "b"], [0], ["core", "core"], HoldoutRule(), seed=1)
    empty = assign_holdouts([], [], [], HoldoutRule(), seed=1)
    assert empty.held.size == 0
