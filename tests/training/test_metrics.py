"""Known answers for the one ranking-metrics implementation (``training.metrics.ranking``).

Every expected value below is written out from the definitions in the module
docstring, not computed by the code under test.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from recsys.recommenders import top_n
from training.metrics import (
    average_ranking_metrics,
    catalog_coverage,
    hit_rate_at_k,
    map_at_k,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
)
from training.metrics.ranking import hit_matrix, member_metrics


def d(rank: int) -> float:
    """The discount of a hit at ``rank`` (1-based)."""
    return 1 / math.log2(rank + 1)


def test_one_member_known_values() -> None:
    ranked, relevant = [5, 1, 7, 2], {1, 2, 9}
    assert precision_at_k(ranked, relevant, 4) == pytest.approx(2 / 4)
    assert recall_at_k(ranked, relevant, 4) == pytest.approx(2 / 3)
    assert recall_at_k(ranked, relevant, 1) == 0.0
    assert ndcg_at_k(ranked, relevant, 4) == pytest.approx((d(2) + d(4)) / (d(1) + d(2) + d(3)))
    assert map_at_k(ranked, relevant, 4) == pytest.approx((1 / 2 + 2 / 4) / 3)
    assert hit_rate_at_k(ranked, relevant, 4) == 1.0
    assert hit_rate_at_k(ranked, relevant, 1) == 0.0


def test_ties_are_ranked_by_lower_title_index_and_scored_so() -> None:
    """Titles 1, 2, 3 and 5 tie at 0.5; with k = 4 the lower indices 1, 2, 3 take places 2–4
    and title 5 (relevant) is left out: one hit, at place 4."""
    scores = np.array([[0.9, 0.5, 0.5, 0.5, 0.1, 0.5]], dtype=np.float32)
    ids, _ = top_n(scores, 4)
    assert ids.tolist() == [[0, 1, 2, 3]]
    relevant = {3, 5}
    ranked = ids[0].tolist()
    assert precision_at_k(ranked, relevant, 4) == pytest.approx(1 / 4)
    assert recall_at_k(ranked, relevant, 4) == pytest.approx(1 / 2)
    assert ndcg_at_k(ranked, relevant, 4) == pytest.approx(d(4) / (d(1) + d(2)))
    assert map_at_k(ranked, relevant, 4) == pytest.approx((1 / 4) / 2)
    assert hit_rate_at_k(ranked, relevant, 4) == 1.0
    # the same ties at the k-th place in a whole batch, and a bought title masked out
    batch = np.array([[0.5, 0.5, 0.5, 0.5], [0.2, 0.5, 0.5, 0.9]], dtype=np.float32)
    ids, _ = top_n(batch, 2)
    assert ids.tolist() == [[0, 1], [3, 1]]


def test_fewer_relevant_titles_than_k() -> None:
    """One relevant title found first: nDCG and MAP are 1 (the ideal is one hit), precision 1/k."""
    ranked = [4, 8, 6, 2, 0]
    assert ndcg_at_k(ranked, {4}, 5) == pytest.approx(1.0)
    assert map_at_k(ranked, {4}, 5) == pytest.approx(1.0)
    assert precision_at_k(ranked, {4}, 5) == pytest.approx(1 / 5)
    assert recall_at_k(ranked, {4}, 5) == pytest.approx(1.0)
    # found second instead: nDCG = d(2) / d(1), MAP = (1/2) / 1
    assert ndcg_at_k(ranked, {8}, 5) == pytest.approx(d(2))
    assert map_at_k(ranked, {8}, 5) == pytest.approx(0.5)
    # two relevant, both found at 3 and 5 of k = 5
    assert ndcg_at_k(ranked, {6, 0}, 5) == pytest.approx((d(3) + d(5)) / (d(1) + d(2)))
    assert map_at_k(ranked, {6, 0}, 5) == pytest.approx((1 / 3 + 2 / 5) / 2)


def test_more_relevant_titles_than_k() -> None:
    """Six relevant, k = 4, all four places hit: nDCG, MAP, precision 1; recall 4/6."""
    ranked, relevant = [0, 1, 2, 3], {0, 1, 2, 3, 4, 5}
    assert ndcg_at_k(ranked, relevant, 4) == pytest.approx(1.0)
    assert map_at_k(ranked, relevant, 4) == pytest.approx(1.0)
    assert precision_at_k(ranked, relevant, 4) == pytest.approx(1.0)
    assert recall_at_k(ranked, relevant, 4) == pytest.approx(4 / 6)


def test_empty_history_and_empty_ranking() -> None:
    """No relevant title: no value (nan per member; averages skip the member). Nothing ranked
    (a recommender with no candidates): every metric 0 for a member who did buy."""
    per = member_metrics(np.zeros((2, 3), dtype=bool), np.array([0, 2]), 3)
    for name, values in per.items():
        assert math.isnan(values[0]), name
        assert values[1] == 0.0, name
    assert ndcg_at_k([], {1}, 3) == 0.0 and map_at_k([], {1}, 3) == 0.0
    assert precision_at_k([1], set(), 3) == 0.0
    means = average_ranking_metrics([[1, 2], [3, 4], [5]], [{1}, {9}, set()], k=2)
    assert means["recall@2"] == pytest.approx(0.5)
    assert means["hitrate@2"] == pytest.approx(0.5)
    assert means["ndcg@2"] == pytest.approx(0.5)
    assert means["map@2"] == pytest.approx(0.5)
    assert means["precision@2"] == pytest.approx((1 / 2 + 0) / 2)
    assert set(means) == {"precision@2", "recall@2", "ndcg@2", "map@2", "hitrate@2"}
    assert average_ranking_metrics([], [], k=2) == dict.fromkeys(means, 0.0)


def test_batch_values_equal_the_hand_computed_ones() -> None:
    """The evaluation's entry point (hits matrix, padded rankings) gives the values above."""
    ranked = np.array([[5, 1, 7, 2], [0, 1, 2, 3], [4, -1, -1, -1]])
    relevant = [{1, 2, 9}, {3, 5}, {4}]
    per = member_metrics(hit_matrix(ranked, relevant, 4), np.array([3, 2, 1]), 4)
    assert per["ndcg"] == pytest.approx(
        [(d(2) + d(4)) / (d(1) + d(2) + d(3)), d(4) / (d(1) + d(2)), 1.0]
    )
    assert per["map"] == pytest.approx([(1 / 2 + 2 / 4) / 3, 1 / 8, 1.0])
    assert per["precision"] == pytest.approx([2 / 4, 1 / 4, 1 / 4])
    assert per["recall"] == pytest.approx([2 / 3, 1 / 2, 1.0])
    assert per["hitrate"].tolist() == [1.0, 1.0, 1.0]


def test_perfect_ranking_scores_one() -> None:
    assert ndcg_at_k([3, 4], {3, 4}, 2) == pytest.approx(1.0)
    assert map_at_k([3, 4], {3, 4}, 2) == pytest.approx(1.0)


def test_coverage_ignores_padding() -> None:
    assert catalog_coverage(np.array([[0, 1, -1], [1, 2, -1]]), 10) == pytest.approx(0.3)
