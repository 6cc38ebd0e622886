from __future__ import annotations

import pytest
from sqlalchemy import Engine

from recsys.settings import Settings
from tests.training.synthetic import Club, make_club
from training.dataset import read_catalogue
from training.evaluate import evaluate


def test_time_split_scores_every_recommender(engine: Engine, fast_settings: Settings) -> None:
    club = make_club(engine, members=120)
    with engine.connect() as connection:
        report = evaluate(connection, read_catalogue(connection), fast_settings.training, club.cutoff)
    out = report.to_json()
    assert set(out) == {"cutoff", "k", "results", "new_titles"}
    assert set(out["results"]) == {"als", "bpr", "popularity", "category_popularity", "item_knn"}
    for metrics in out["results"].values():
        assert set(metrics) == {
            "precision@20",
            "recall@20",
            "ndcg@20",
            "map@20",
            "hitrate@20",
            "coverage@20",
        }
        assert all(0.0 <= v <= 1.0 for v in metrics.values())
    results = out["results"]
    # members read one sub-class: taste-aware models beat plain best-sellers
    assert results["als"]["ndcg@20"] > results["popularity"]["ndcg@20"]
    assert results["category_popularity"]["recall@20"] > results["popularity"]["recall@20"]
    assert results["popularity"]["coverage@20"] < results["als"]["coverage@20"]
    assert report.details["new_title_members"] > 0
    assert report.details["train"]["purchase_rows"] > 0


def test_new_titles_rank_by_category(club: Club, sqlite_engine: Engine, fast_settings: Settings) -> None:
    """12 new titles in 4 sub-classes; members buy new titles in their own sub-class, so
    placing a new title by its category must beat chance (3 of 12 in the top 3)."""
    with sqlite_engine.connect() as connection:
        report = evaluate(
            connection,
            read_catalogue(connection),
            fast_settings.training,
            club.cutoff,
            k=3,
            kinds=["als", "category_popularity"],
        )
    assert report.details["new_title_candidates"] >= 12  # + any backlist title never sold
    for kind in ("als", "category_popularity"):
        assert report.new_titles[kind]["recall@3"] > 0.6, kind


def test_empty_window_is_a_clear_error(sqlite_engine: Engine, fast_settings: Settings) -> None:
    import datetime as dt

    from recsys.errors import TrainingError

    make_club(sqlite_engine, members=10)
    with sqlite_engine.connect() as connection, pytest.raises(TrainingError, match="no purchases"):
        evaluate(connection, read_catalogue(connection), fast_settings.training, dt.datetime(1990, 1, 1))


@pytest.mark.parametrize("kind", ["als", "popularity", "category_popularity"])
def test_fast_ranking_matches_dense_top_n(
    club: Club, sqlite_engine: Engine, fast_settings: Settings, kind: str
) -> None:
    """The factor and shared-score shortcuts rank exactly as dense scores + ``top_n`` do."""
    import numpy as np

    from recsys.recommenders import FitContext, build_recommender, top_n
    from training.dataset import build_training_set, extract_window
    from training.evaluate import _Ranker, build_holdout, cold_placement

    ts = fast_settings.training
    with sqlite_engine.connect() as connection:
        catalogue = read_catalogue(connection)
        start, purchases = extract_window(connection, club.cutoff, ts)
        train = build_training_set(catalogue, purchases, window_start=start, cutoff=club.cutoff, settings=ts)
        holdout = build_holdout(connection, train, club.cutoff, ts.holdout_days)
    recommender = build_recommender(kind, ts)
    recommender.fit(train.member_titles, FitContext(catalogue.title_categories, seed=1, threads=1))
    placement = cold_placement(train, ts.cold_start_min_titles)
    idx = np.array(sorted(holdout.truth), dtype=np.int64)
    rows = train.member_titles[idx]
    new_rows = np.array([i for i, m in enumerate(idx.tolist()) if m in holdout.new_truth], dtype=np.int64)
    assert len(new_rows) and len(placement.cold_idx)
    ids, new_ids = _Ranker(recommender, placement, holdout.new_candidates, 5, 1).rank(idx, rows, new_rows)
    scores = placement.fill_scores(recommender.score(idx, rows))
    want, _ = top_n(scores, 5, liked=rows)
    pos, _ = top_n(scores[np.ix_(new_rows, holdout.new_candidates)], 5)
    want_new = np.where(pos >= 0, holdout.new_candidates[np.maximum(pos, 0)], -1)
    # the same scores at every rank (titles placed in one category tie exactly, so their
    # order among themselves is free), none of them already bought
    got_scores = np.take_along_axis(scores, np.maximum(ids, 0), axis=1)
    want_scores = np.take_along_axis(scores, np.maximum(want, 0), axis=1)
    assert np.allclose(got_scores, want_scores, rtol=1e-5, atol=1e-6)
    assert np.array_equal(ids < 0, want < 0)
    bought = rows.toarray() != 0
    assert not np.take_along_axis(bought, np.maximum(ids, 0), axis=1)[ids >= 0].any()
    among = scores[new_rows]
    got_new = np.take_along_axis(among, np.maximum(new_ids, 0), axis=1)
    want_new_scores = np.take_along_axis(among, np.maximum(want_new, 0), axis=1)
    assert np.allclose(got_new, want_new_scores, rtol=1e-5, atol=1e-6)
    assert np.array_equal(new_ids < 0, want_new < 0)
