"""One contract test, run against every recommender."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from recsys.recommenders import RECOMMENDERS, FitContext, Recommender, build_recommender, top_n
from recsys.recommenders.base import FactorsNaNError
from recsys.recommenders.blend import BlendRecommender, mix, not_bought, standardise, standardise_row
from recsys.recommenders.factors import ALSRecommender
from recsys.recommenders.knn import ItemKNNRecommender
from recsys.settings import TrainingSettings

SETTINGS = TrainingSettings(
    factors=4,
    iterations=20,
    regularization=0.01,
    bpr_factors=4,
    bpr_iterations=300,
    bpr_learning_rate=0.05,
    knn_neighbours=10,
)


def two_tastes() -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Members 0-9 read titles 0-4, members 10-19 titles 5-9; title 0 (also bought by
    members 10 and 11) is the overall best-seller.

    Member 0 has bought every taste-A title except title 0, the best-seller among them:
    every sensible recommender puts title 0 first for member 0.
    """
    rows, cols = [], []
    for m in range(20):
        base = 0 if m < 10 else 5
        for t in range(base, base + 5):
            if (m + t) % 3 != 0 or t in (0, 5):
                rows.append(m)
                cols.append(t)
    rows += [10, 11]
    cols += [0, 0]
    matrix = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(20, 10))
    lil = matrix.tolil()
    lil[0, :] = 0
    for t in (1, 2, 3, 4):
        lil[0, t] = 1
    tc = sp.csr_matrix(np.repeat(np.eye(2, dtype=np.float32), 5, axis=0))  # titles × 2 categories
    return sp.csr_matrix(lil, dtype=np.float32), tc


@pytest.fixture(params=sorted(RECOMMENDERS))
def fitted(request: pytest.FixtureRequest) -> Recommender:
    member_titles, tc = two_tastes()
    model = build_recommender(request.param, SETTINGS)
    model.fit(member_titles, FitContext(title_categories=tc, seed=3, threads=1))
    return model


def test_recommends_the_obvious_title_and_never_a_bought_one(fitted: Recommender) -> None:
    member_titles, _ = two_tastes()
    ids, scores = fitted.recommend(np.array([0]), member_titles[[0]], n=3)
    assert ids.shape == (1, 3)
    assert ids[0, 0] == 0
    assert not set(ids[0].tolist()) & {1, 2, 3, 4}
    assert scores[0, 0] >= scores[0, 1] >= scores[0, 2]


def test_items_restricts_the_ranking(fitted: Recommender) -> None:
    member_titles, _ = two_tastes()
    ids, _ = fitted.recommend(np.array([0]), member_titles[[0]], n=5, items=np.array([6, 7]))
    assert set(ids[0][ids[0] >= 0].tolist()) <= {6, 7}


def test_save_load_round_trip(fitted: Recommender, tmp_path: Path) -> None:
    member_titles, _ = two_tastes()
    fitted.save(tmp_path / "m")
    loaded = type(fitted).load(tmp_path / "m")
    idx = np.arange(20)
    np.testing.assert_allclose(
        loaded.score(idx, member_titles), fitted.score(idx, member_titles), rtol=1e-6
    )
    assert loaded.params() == fitted.params()


def test_similar_titles_excludes_itself(fitted: Recommender) -> None:
    ids, _ = fitted.similar_titles(1, n=3)
    assert 1 not in ids.tolist() and len(ids) > 0


def test_wrong_shape_fails_loudly(fitted: Recommender) -> None:
    with pytest.raises(ValueError):
        fitted.recommend(np.array([0]), sp.csr_matrix((1, 3), dtype=np.float32))
    with pytest.raises(ValueError):
        fitted.recommend(np.array([0, 1]), two_tastes()[0][[0]])


def test_fits_are_seeded() -> None:
    member_titles, tc = two_tastes()
    ctx = FitContext(title_categories=tc, seed=7, threads=1)
    a, b = build_recommender("als", SETTINGS), build_recommender("als", SETTINGS)
    a.fit(member_titles, ctx)
    b.fit(member_titles, ctx)
    assert isinstance(a, ALSRecommender) and isinstance(b, ALSRecommender)
    np.testing.assert_array_equal(a.title_factors, b.title_factors)


def test_nan_factors_are_a_distinct_error() -> None:
    model = ALSRecommender()
    with pytest.raises(FactorsNaNError):
        model._store(np.full((2, 2), np.nan), np.zeros((2, 2)))


def test_top_n_masks_and_pads() -> None:
    scores = np.array([[0.1, 0.9, 0.5]], dtype=np.float32)
    liked = sp.csr_matrix(np.array([[0, 1, 0]], dtype=np.float32))
    ids, best = top_n(scores, 3, liked=liked)
    assert ids.tolist() == [[2, 0, -1]]
    assert best[0, 0] == pytest.approx(0.5)


def test_als_refine_warm_starts_from_current_factors() -> None:
    member_titles, tc = two_tastes()
    ctx = FitContext(title_categories=tc, seed=3, threads=1)
    model = build_recommender("als", SETTINGS)
    model.fit(member_titles, ctx)
    assert isinstance(model, ALSRecommender)
    before = model.title_factors.copy()
    model.refine(member_titles, ctx, iterations=1)
    # one more sweep from a converged start moves the factors little
    assert np.abs(model.title_factors - before).max() < 0.5 * np.abs(before).max()
    ids, _ = model.recommend(np.array([0]), member_titles[[0]], n=1)
    assert ids[0, 0] == 0
    with pytest.raises(ValueError):
        model.refine(member_titles[:5], ctx, iterations=1)


def test_bpr_is_deterministic_when_asked_even_with_threads() -> None:
    """implicit 0.7's BPR samples on every thread with its own generator (results differ run
    to run); ``deterministic`` (evaluation, tuning) fits on one thread: the same factors."""
    rng = np.random.default_rng(0)
    member_titles = sp.random(300, 80, density=0.08, format="csr", dtype=np.float32, random_state=rng)
    member_titles.data[:] = 1.0
    ctx = FitContext(seed=5, threads=2, deterministic=True)
    runs = []
    for _ in range(3):
        model = build_recommender("bpr", SETTINGS)
        model.fit(member_titles, ctx)
        runs.append(np.asarray(model.title_factors).copy())
    np.testing.assert_array_equal(runs[0], runs[1])
    np.testing.assert_array_equal(runs[0], runs[2])


def test_top_n_ties_take_the_lower_index_at_the_cut() -> None:
    """Eight titles tie for the last two places: the two lowest indices get them, in every row."""
    scores = np.tile(np.array([[0.3] * 8 + [0.9]], dtype=np.float32), (3, 1))
    ids, _ = top_n(scores, 3)
    assert ids.tolist() == [[8, 0, 1]] * 3


def test_the_blend_standardises_over_the_titles_not_bought() -> None:
    """A known answer: title 0 is bought, so it sets neither scale. ALS over titles 1-3 is
    1, 2, 3 (mean 2, standard deviation √(2/3)), item-kNN 0, 0, 3 (mean 1, deviation √2)."""
    als = np.array([[10.0, 1.0, 2.0, 3.0]], dtype=np.float32)
    knn = np.array([[5.0, 0.0, 0.0, 3.0]], dtype=np.float32)
    candidates = np.array([[False, True, True, True]])
    z_als = (np.array([1.0, 2.0, 3.0]) - 2.0) / np.sqrt(2.0 / 3.0)
    z_knn = (np.array([0.0, 0.0, 3.0]) - 1.0) / np.sqrt(2.0)
    np.testing.assert_allclose(standardise(als, candidates)[0, 1:], z_als, rtol=1e-6)
    # the served model's one-member form, from sums, is the same
    np.testing.assert_allclose(standardise_row(als[0], np.array([0])), standardise(als, candidates)[0], rtol=1e-6)
    np.testing.assert_allclose(standardise_row(knn[0], np.array([0])), standardise(knn, candidates)[0], rtol=1e-6)
    np.testing.assert_allclose(mix(als, knn, candidates, 0.25)[0, 1:], 0.25 * z_als + 0.75 * z_knn, rtol=1e-6)
    assert mix(als, knn, candidates, 0.25)[0, 1:].tolist() == pytest.approx([-0.8365, -0.5303, 1.3669], abs=1e-4)
    # a row whose candidates all score alike: 0, the other component alone orders the titles
    flat = np.array([[7.0, 2.0, 2.0, 2.0]], dtype=np.float32)
    assert standardise(flat, candidates)[0, 1:].tolist() == [0.0, 0.0, 0.0]
    assert standardise_row(flat[0], np.array([0])).tolist() == [0.0] * 4
    assert not_bought(sp.csr_matrix(np.array([[1.0, 0.0, 0.0, 2.0]]))).tolist() == [[False, True, True, False]]


def test_the_blend_at_its_ends_is_each_component() -> None:
    """Weight 1 ranks as ALS, weight 0 as item-kNN (the same fits), every member."""
    rng = np.random.default_rng(3)
    member_titles = sp.random(60, 40, density=0.12, format="csr", dtype=np.float32, random_state=rng)
    member_titles.data[:] = rng.uniform(0.5, 3.0, member_titles.nnz).astype(np.float32)
    context = FitContext(seed=5, threads=1)
    als, knn = build_recommender("als", SETTINGS), build_recommender("item_knn", SETTINGS)
    assert isinstance(als, ALSRecommender) and isinstance(knn, ItemKNNRecommender)
    als.fit(member_titles, context)
    knn.fit(member_titles, context)
    members = np.arange(60)
    for weight, alone in ((1.0, als), (0.0, knn)):
        blend = BlendRecommender(weight, als.params(), knn.params())
        blend.use_fitted(als, knn)
        blend.fit(member_titles, context)  # takes the fitted components as they are
        ids, _ = blend.recommend(members, member_titles, n=10)
        expected, _ = alone.recommend(members, member_titles, n=10)
        np.testing.assert_array_equal(ids, expected)
    half = BlendRecommender(0.5, als.params(), knn.params())
    half.fit(member_titles, context)  # fits its own components: the same, seeded
    np.testing.assert_allclose(
        half.score(members, member_titles),
        mix(als.score(members, member_titles), knn.score(members, member_titles), not_bought(member_titles), 0.5),
        rtol=1e-5, atol=1e-5,
    )  # fmt: skip
    with pytest.raises(ValueError):
        BlendRecommender(1.5)
    with pytest.raises(ValueError):
        BlendRecommender(0.5, {"factors": 8}).use_fitted(als)
