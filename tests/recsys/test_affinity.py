from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recsys.affinity import CategoryIndex, build_affinity, place_titles, title_category_matrix
from recsys.storage.categories import CategoryNode

TREE = {
    "I": CategoryNode("I", "文学", None, 1),
    "I24": CategoryNode("I24", "小说", "I", 2),
    "I22": CategoryNode("I22", "诗歌", "I", 2),
    "K": CategoryNode("K", "历史", None, 1),
}


def _index() -> CategoryIndex:
    return CategoryIndex.build(TREE, ["I24", "I22", "K"])


def test_title_weight_carried_to_ancestors() -> None:
    index = _index()
    assert index.codes == ["I", "I22", "I24", "K"]
    tc = title_category_matrix([(0, "I24"), (1, "I24"), (1, "K")], 2, index)
    assert tc.toarray().tolist() == [[1, 0, 1, 0], [0.5, 0, 0.5, 0.5]]


def test_smoothed_share_known_answer() -> None:
    index = _index()
    tc = title_category_matrix([(0, "I24"), (1, "K")], 2, index)
    member_titles = sp.csr_matrix(np.array([[3.0, 1.0], [0.0, 4.0]], dtype=np.float32))
    profile = build_affinity(member_titles, tc, prior=2.0)
    # global: I24 3/8, K 5/8. member 0: I24 (3 + 2·3/8) / (4 + 2) = 0.625
    shares = profile.shares(0)
    assert shares[index.position()["I24"]] == pytest.approx((3 + 2 * 3 / 8) / 6)
    assert shares[index.position()["I"]] == pytest.approx((3 + 2 * 3 / 8) / 6)
    assert shares[index.position()["K"]] == pytest.approx((1 + 2 * 5 / 8) / 6)
    # level 1 shares of a member sum to 1
    level1 = [index.position()[c] for c in ("I", "K")]
    assert sum(shares[c] for c in level1) == pytest.approx(1.0)
    dense = profile.dense_rows(np.array([1]))
    assert dense[0, index.position()["I24"]] == pytest.approx(2 * 3 / 8 / 6)


def test_declared_categories_count_for_cold_members() -> None:
    index = _index()
    tc = title_category_matrix([(0, "I24")], 1, index)
    member_titles = sp.csr_matrix((2, 1), dtype=np.float32)
    pos = index.position()
    profile = build_affinity(
        member_titles,
        tc,
        declared=[(1, pos["K"])],
        declared_weight=2.0,
        prior=1.0,
        declared_paths={pos["K"]: [pos["K"]]},
    )
    assert profile.shares(1)[pos["K"]] == pytest.approx((2 + 1.0) / 3)
    assert profile.shares(0) == {}


def test_cold_title_placed_in_deepest_category_with_enough_sales() -> None:
    index = _index()
    pairs = [(0, "I24"), (1, "I24"), (2, "I22"), (3, "I24"), (4, "I22")]
    tc = title_category_matrix(pairs, 5, index)
    warm = np.array([True, True, True, False, False])
    cold = np.array([3, 4], dtype=np.int64)
    placement = place_titles(tc, index.levels, warm, cold, min_titles=2)
    pos = index.position()
    # I24 has two warm titles: title 3 goes there; I22 has one: title 4 backs off to I
    assert placement.category.tolist() == [pos["I24"], pos["I"]]
    vectors = np.array([[1, 0], [3, 0], [0, 6], [9, 9], [9, 9]], dtype=np.float32)
    filled = placement.fill_vectors(vectors)
    assert filled[3].tolist() == [2, 0]
    assert filled[4].tolist() == [pytest.approx(4 / 3), 2]
    scores = placement.fill_scores(vectors.T.copy())  # 2 "members" × 5 titles
    assert scores[:, 3].tolist() == [2, 0]
