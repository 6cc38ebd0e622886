from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest
from sqlalchemy import Engine

from recsys.settings import Settings, TrainingSettings
from recsys.storage.bulk import bulk_insert
from tests.training.synthetic import Club, add_unrelated_rows, make_club
from training.dataset import read_catalogue
from training.evaluate import evaluate
from training.evaluation_report import EvaluationReport
from training.split import Split

METRICS = {"precision@20", "recall@20", "ndcg@20", "map@20", "hitrate@20"}
KINDS = {"als", "bpr", "popularity", "category_popularity", "item_knn", "blend"}


def run(engine: Engine, settings: TrainingSettings, cutoff: dt.datetime, **kw: object) -> EvaluationReport:
    with engine.connect() as connection:
        return evaluate(connection, read_catalogue(connection), settings, cutoff, **kw)  # type: ignore[arg-type]


def test_time_split_scores_every_recommender(engine: Engine, fast_settings: Settings) -> None:
    club = make_club(engine, members=120)
    out = run(engine, fast_settings.training, club.cutoff).to_json()
    assert {"cutoff", "k", "results", "new_titles"} <= set(out)  # the keys users rely on stay
    assert {"members", "intervals", "differences", "served", "cold"} <= set(out)
    assert "folds" not in out
    assert set(out["results"]) == KINDS
    for metrics in out["results"].values():
        assert set(metrics) == METRICS | {"coverage@20"}
        assert all(0.0 <= v <= 1.0 for v in metrics.values())
    results = out["results"]
    # members read one sub-class: taste-aware models beat plain best-sellers
    assert results["als"]["ndcg@20"] > results["popularity"]["ndcg@20"]
    assert results["category_popularity"]["recall@20"] > results["popularity"]["recall@20"]
    assert results["popularity"]["coverage@20"] < results["als"]["coverage@20"]
    assert out["members"]["warm"] > 50 and out["served"] == "als"
    assert out["new_titles"]["als"]["recall@20"] is not None


def test_every_mean_has_an_interval_and_a_paired_difference(sqlite_engine: Engine, fast_settings: Settings) -> None:
    club = make_club(sqlite_engine, members=160)
    out = run(sqlite_engine, fast_settings.training, club.cutoff, kinds=["als", "popularity", "item_knn"]).to_json()
    assert out["bootstrap"]["resamples"] == 2000 and out["bootstrap"]["level"] == 0.95
    for kind, metrics in out["results"].items():
        for metric in METRICS:
            low, high = out["intervals"][kind][metric]
            assert low <= metrics[metric] <= high, (kind, metric)
            assert high > low  # 100+ members who do not all score alike
        low, high = out["intervals"][kind]["new_titles_recall@20"]
        assert low <= out["new_titles"][kind]["recall@20"] <= high
    ndcg = {kind: m["ndcg@20"] for kind, m in out["results"].items()}
    best = max(ndcg, key=lambda kind: ndcg[kind])
    runner_up = max((k for k in ndcg if k != best), key=lambda kind: ndcg[kind])
    for kind, diff in out["differences"].items():
        # each against the best *other* recommender by nDCG, on every metric
        assert diff["against"] == (runner_up if kind == best else best)
        for metric in METRICS:
            d = diff[metric]
            other = out["results"][diff["against"]][metric]
            assert d["mean"] == pytest.approx(out["results"][kind][metric] - other)
            assert d["low"] <= d["mean"] <= d["high"]
    # popularity ignores taste: significantly worse than ALS on this club
    assert out["differences"]["popularity"]["ndcg@20"]["high"] < 0
    assert set(out["versus_popularity"]) == {"als", "item_knn"}
    versus = out["versus_popularity"]["item_knn"]["recall@20"]
    assert versus["mean"] == pytest.approx(
        out["results"]["item_knn"]["recall@20"] - out["results"]["popularity"]["recall@20"]
    )
    assert 0 < versus["low"] <= versus["mean"] <= versus["high"]


def test_rows_added_later_change_nothing(engine: Engine, fast_settings: Settings) -> None:
    """Members who never bought, titles that never sold, and lines dated after the test
    period, all with ids sorting first: the same numbers to the last digit. ALS, item-kNN
    and the top-k run on every core; BPR is single-threaded during evaluation."""
    club = make_club(engine, members=120, cold_members=20)
    ts = fast_settings.training.model_copy(update={"threads": 0})
    before = run(engine, ts, club.cutoff).to_json()
    add_unrelated_rows(engine, club.cutoff + dt.timedelta(days=ts.holdout_days + 1))
    after = run(engine, ts, club.cutoff).to_json()
    assert json.dumps(after, sort_keys=True) == json.dumps(before, sort_keys=True)
    assert before["cold"]["members"] == 20


def test_cold_members_are_scored_through_the_cold_start_path(
    sqlite_engine: Engine, fast_settings: Settings
) -> None:
    """60 members who declared their taste and buy only after the cutoff: the served model's
    cold start (declared categories) ranks their titles significantly better (nDCG) than
    plain popularity."""
    club = make_club(sqlite_engine, members=120, cold_members=60)
    out = run(sqlite_engine, fast_settings.training, club.cutoff, kinds=["als", "popularity"]).to_json()
    cold = out["cold"]
    assert cold["members"] == out["members"]["cold"] == 60
    assert set(cold["results"]) == {"cold_start", "popularity"}
    diff = cold["differences"]["cold_start"]
    assert diff["against"] == "popularity"
    assert diff["ndcg@20"]["low"] > 0, diff
    for arm in ("cold_start", "popularity"):
        low, high = cold["intervals"][arm]["ndcg@20"]
        assert low <= cold["results"][arm]["ndcg@20"] <= high


def test_repurchase_only_members_are_counted(sqlite_engine: Engine, fast_settings: Settings) -> None:
    club = make_club(sqlite_engine, members=80)
    with sqlite_engine.connect() as connection:
        top = int(connection.exec_driver_sql("SELECT MAX(id) FROM purchases").scalar_one())
    member, title = 500, 1  # a new member who bought title 1 before the cutoff and again after
    with sqlite_engine.begin() as connection:
        bulk_insert(connection, "members", ["id", "member_id", "name", "status"], [(member, "R1", "r", "active")])
        bulk_insert(
            connection,
            "purchases",
            ["id", "line_id", "member_key", "title_key", "quantity", "unit_price", "purchased_at", "channel"],
            [
                (top + 1, "R-1", member, title, 1, 30.0, club.cutoff - dt.timedelta(days=30), "web"),
                (top + 2, "R-2", member, title, 1, 30.0, club.cutoff + dt.timedelta(days=3), "web"),
            ],
        )
    report = run(sqlite_engine, fast_settings.training, club.cutoff, kinds=["popularity"])
    assert report.members["repurchase_only"] >= 1
    assert "R1" not in report.scores[0].member_ids and "R1" not in report.scores[0].cold_ids


def test_new_title_recall_is_null_without_new_titles(sqlite_engine: Engine, fast_settings: Settings) -> None:
    club = make_club(sqlite_engine, members=100, titles_per_leaf=4, new_titles=0)
    report = run(sqlite_engine, fast_settings.training, club.cutoff, kinds=["popularity"])
    assert report.details["new_title_members"] == 0
    assert report.to_json()["new_titles"]["popularity"] == {"recall@20": None}


def test_folds_roll_the_origin_back_from_the_cutoff(sqlite_engine: Engine, fast_settings: Settings) -> None:
    club = make_club(sqlite_engine, members=120)
    ts = fast_settings.training
    report = run(sqlite_engine, ts, club.cutoff, kinds=["als", "popularity"], folds=3)
    out = report.to_json()
    folds = out["folds"]
    assert len(folds) == 3
    step = dt.timedelta(days=ts.holdout_days)
    for i, fold in enumerate(folds):
        start = club.cutoff - step * (3 - i)
        assert fold["cutoff"] == start.date().isoformat() and fold["end"] == (start + step).date().isoformat()
        newest = dt.datetime.fromisoformat(fold["details"]["train"]["newest_purchase"])
        assert newest < start  # each fold fitted only on what came before it
        assert set(fold["intervals"]["als"]) >= METRICS
    assert out["members"]["warm"] == sum(f["members"]["warm"] for f in folds)
    # pooled = the mean over every (member, fold) value
    scored = [len(s.member_ids) for s in report.scores]
    for kind in ("als", "popularity"):
        for metric in METRICS:
            weighted = sum(n * f["results"][kind][metric] for n, f in zip(scored, folds, strict=True))
            assert out["results"][kind][metric] == pytest.approx(weighted / sum(scored))


def test_new_titles_rank_by_category(club: Club, sqlite_engine: Engine, fast_settings: Settings) -> None:
    """12 new titles in 4 sub-classes; members buy new titles in their own sub-class, so
    placing a new title by its category must beat chance (3 of 12 in the top 3)."""
    report = run(sqlite_engine, fast_settings.training, club.cutoff, k=3, kinds=["als", "category_popularity"])
    assert report.details["new_title_candidates"] >= 12  # + any backlist title never sold
    for kind in ("als", "category_popularity"):
        assert report.new_titles[kind]["recall@3"] > 0.6, kind  # type: ignore[operator]


def test_empty_window_is_a_clear_error(sqlite_engine: Engine, fast_settings: Settings) -> None:
    from recsys.errors import TrainingError

    make_club(sqlite_engine, members=10)
    with pytest.raises(TrainingError, match="no purchases"):
        run(sqlite_engine, fast_settings.training, dt.datetime(1990, 1, 1))


def _club_split(club: Club, engine: Engine, ts: TrainingSettings) -> Split:
    """The club's time split at its cutoff, as ``evaluate`` builds it."""
    from recsys.storage.purchase_log import read_purchases, titles_sold_before
    from training.dataset import window_start
    from training.split import time_split

    start = window_start(club.cutoff, ts)
    end = club.cutoff + dt.timedelta(days=ts.holdout_days)
    with engine.connect() as connection:
        catalogue = read_catalogue(connection)
        lines = read_purchases(connection, start, end)
        sold = titles_sold_before(connection, club.cutoff)
    return time_split(catalogue, lines, window_start=start, cutoff=club.cutoff, end=end, sold_before=sold, settings=ts)


@pytest.mark.parametrize("kind", ["als", "popularity", "category_popularity"])
def test_fast_ranking_matches_dense_top_n(
    club: Club, sqlite_engine: Engine, fast_settings: Settings, kind: str
) -> None:
    """The factor and shared-score shortcuts rank exactly as dense scores + ``top_n`` do."""
    from recsys.recommenders import FitContext, build_recommender, top_n
    from training.ranker import Ranker
    from training.served import cold_placement

    ts = fast_settings.training
    split = _club_split(club, sqlite_engine, ts)
    train, holdout = split.train, split.holdout
    recommender = build_recommender(kind, ts)
    recommender.fit(train.member_titles, FitContext(train.catalogue.title_categories, seed=1, threads=1))
    placement = cold_placement(train, ts.cold_start_min_titles)
    idx = np.array(sorted(holdout.truth), dtype=np.int64)
    rows = train.member_titles[idx]
    new_rows = np.array([i for i, m in enumerate(idx.tolist()) if m in holdout.new_truth], dtype=np.int64)
    assert len(new_rows) and len(placement.cold_idx)
    ids, new_ids = Ranker(recommender, placement, holdout.new_candidates, 5, 1).rank(idx, rows, new_rows)
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
    if kind != "als":  # no implicit heap here: ties ordered by title index, exactly as top_n
        assert np.array_equal(ids, want)


def test_the_blend_ranks_as_each_component_at_its_ends(club: Club, sqlite_engine: Engine, fast_settings: Settings) -> None:
    """The evaluation ranks a blend of weight 1 as ALS and of weight 0 as item-kNN, titles
    without sales placed in both (the blend standardises after placing them)."""
    from recsys.recommenders import BlendRecommender, FitContext, build_recommender
    from training.ranker import Ranker
    from training.served import cold_placement

    ts = fast_settings.training
    split = _club_split(club, sqlite_engine, ts)
    train, holdout = split.train, split.holdout
    context = FitContext(train.catalogue.title_categories, seed=1, threads=1)
    placement = cold_placement(train, ts.cold_start_min_titles)
    idx = np.array(sorted(holdout.truth), dtype=np.int64)
    rows = train.member_titles[idx]
    new_rows = np.array([i for i, m in enumerate(idx.tolist()) if m in holdout.new_truth], dtype=np.int64)
    assert len(new_rows) and len(placement.cold_idx)
    ranked = {}
    for kind in ("als", "item_knn"):
        recommender = build_recommender(kind, ts)
        recommender.fit(train.member_titles, context)
        ranked[kind] = recommender
    for weight, kind in ((1.0, "als"), (0.0, "item_knn")):
        blend = BlendRecommender(weight, ranked["als"].params(), ranked["item_knn"].params())
        blend.use_fitted(ranked["als"], ranked["item_knn"])  # type: ignore[arg-type]
        got = Ranker(blend, placement, holdout.new_candidates, 10, 1).rank(idx, rows, new_rows)
        want = Ranker(ranked[kind], placement, holdout.new_candidates, 10, 1).rank(idx, rows, new_rows)
        # the same titles at every rank, up to the order of exact ties (titles placed in one
        # category score alike): compare the component's own scores at each rank
        scores = placement.fill_scores(ranked[kind].score(idx, rows))
        for mine, theirs, among in ((got[0], want[0], scores), (got[1], want[1], scores[new_rows])):
            assert np.array_equal(mine < 0, theirs < 0)
            at = np.take_along_axis(among, np.maximum(mine, 0), axis=1)
            assert np.allclose(at, np.take_along_axis(among, np.maximum(theirs, 0), axis=1), rtol=1e-4, atol=1e-5)
