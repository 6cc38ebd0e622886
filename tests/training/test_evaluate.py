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
        report = evaluate(
            connection, read_catalogue(connection), fast_settings.training, club.cutoff
        )
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


def test_new_titles_rank_by_category(
    club: Club, sqlite_engine: Engine, fast_settings: Settings
) -> None:
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
        evaluate(
            connection, read_catalogue(connection), fast_settings.training, dt.datetime(1990, 1, 1)
        )
