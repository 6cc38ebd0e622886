from __future__ import annotations

import math

import numpy as np
import pytest

from training.metrics import (
    average_ranking_metrics,
    catalog_coverage,
    hit_rate_at_k,
    map_at_k,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
)


def test_one_member_known_values() -> None:
    ranked, relevant = [5, 1, 7, 2], {1, 2, 9}
    assert precision_at_k(ranked, relevant, 4) == pytest.approx(2 / 4)
    assert recall_at_k(ranked, relevant, 4) == pytest.approx(2 / 3)
    assert recall_at_k(ranked, relevant, 1) == 0.0
    dcg = 1 / math.log2(3) + 1 / math.log2(5)
    ideal = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert ndcg_at_k(ranked, relevant, 4) == pytest.approx(dcg / ideal)
    assert map_at_k(ranked, relevant, 4) == pytest.approx((1 / 2 + 2 / 4) / 3)
    assert hit_rate_at_k(ranked, relevant, 4) == 1.0
    assert hit_rate_at_k(ranked, relevant, 1) == 0.0


def test_perfect_ranking_scores_one() -> None:
    assert ndcg_at_k([3, 4], {3, 4}, 2) == pytest.approx(1.0)
    assert map_at_k([3, 4], {3, 4}, 2) == pytest.approx(1.0)


def test_average_skips_members_without_relevant_titles() -> None:
    means = average_ranking_metrics([[1, 2], [3, 4], [5]], [{1}, {9}, set()], k=2)
    assert means["recall@2"] == pytest.approx(0.5)
    assert means["hitrate@2"] == pytest.approx(0.5)
    assert set(means) == {"precision@2", "recall@2", "ndcg@2", "map@2", "hitrate@2"}


def test_coverage_ignores_padding() -> None:
    assert catalog_coverage(np.array([[0, 1, -1], [1, 2, -1]]), 10) == pytest.approx(0.3)
