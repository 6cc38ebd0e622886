"""RFM tiers and the 80/20 check on small datasets with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from catalog.rfm import pareto_check, quantile_scores, score_tiers


def test_quantile_scores_rank_higher_values_higher_and_share_ties() -> None:
    scores = quantile_scores(np.array([10.0, 20.0, 30.0, 40.0, 50.0]), bins=5)
    assert scores.tolist() == [1, 2, 3, 4, 5]
    tied = quantile_scores(np.array([1.0, 1.0, 5.0, 5.0]), bins=2)
    assert tied[0] == tied[1] and tied[2] == tied[3] and tied[2] > tied[0]


def test_tiers_on_a_known_club() -> None:
    # five active members from best to worst, one who stopped buying, one who never bought
    recency = np.array([3, 10, 40, 90, 200, 500, -1])
    frequency = np.array([20, 12, 6, 2, 1, 9, 0])
    monetary = np.array([3000.0, 1500.0, 600.0, 120.0, 40.0, 2000.0, 0.0])
    result = score_tiers(recency, frequency, monetary, bins=5, lapsed_after_days=365)
    assert result.tiers == ["core", "core", "regular", "occasional", "occasional", "lapsed", "lapsed"]
    assert result.r_score.tolist()[:5] == [5, 4, 3, 2, 1]
    assert result.m_score[5] == 0 and result.f_score[6] == 0  # lapsed members are not scored


def test_tiers_refuse_misaligned_arrays() -> None:
    with pytest.raises(ValueError, match="one row per member"):
        score_tiers(np.array([1, 2]), np.array([1]), np.array([1.0, 2.0]))


def test_pareto_check_on_a_known_distribution() -> None:
    # 10 buyers: the top two (20%) spend 800 of 1000; five members never bought
    spend = np.array([500.0, 300.0] + [25.0] * 8 + [0.0] * 5)
    check = pareto_check(spend)
    assert check.buyers == 10 and check.members == 15
    assert check.top_share_of_buyers == pytest.approx(0.8)
    # top 20% of 15 members = 3 members: 500 + 300 + 25
    assert check.top_share_of_members == pytest.approx(0.825)
    assert check.revenue == pytest.approx(1000.0)


def test_pareto_check_of_nobody_is_zero() -> None:
    assert pareto_check(np.zeros(4)).top_share_of_buyers == 0.0
