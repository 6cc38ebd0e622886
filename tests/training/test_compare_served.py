"""``training.compare.served_against_each``: the served recommender minus every other one,
paired, on per-member values with known answers."""

from __future__ import annotations

import datetime as dt

import numpy as np
import numpy.typing as npt

from training.compare import served_against_each
from training.evaluation_report import EvaluationReport, FoldScores, Scores
from training.metrics.ranking import NAMES

MEMBERS = 400


def scores(values: npt.NDArray[np.float64]) -> Scores:
    return Scores({name: values for name in NAMES}, np.zeros(0), 0.5)


def report(served: str, columns: dict[str, npt.NDArray[np.float64]]) -> EvaluationReport:
    fold = FoldScores(
        cutoff=dt.datetime(2026, 1, 1), end=dt.datetime(2026, 4, 1),
        member_ids=[f"m{i:03d}" for i in range(MEMBERS)], new_member_ids=[],
        scores={name: scores(values) for name, values in columns.items()},
        cold_ids=[], cold={}, members={"warm": MEMBERS, "cold": 0, "repurchase_only": 0}, details={},
    )  # fmt: skip
    return EvaluationReport.of([fold], 20, served=served, primary="ndcg@20", seed=0, resamples=1000)


def test_served_minus_each_other_with_what_it_allows_saying() -> None:
    rng = np.random.default_rng(3)
    base = rng.uniform(0.0, 0.4, MEMBERS)
    served = base + 0.05  # a constant lead over popularity: significant
    als = served + 0.01  # a constant lead over the served one: the served one is significantly worse
    noise = rng.normal(0.0, 0.2, MEMBERS)
    knn = served + noise - noise.mean()  # the same mean, independent noise: not significant
    result = served_against_each(report("item_knn", {"popularity": base, "item_knn": served, "als": als, "bpr": knn}))
    against = result["against"]
    assert set(against) == {"popularity", "als", "bpr"}
    for metric in (f"{name}@20" for name in NAMES):
        assert abs(against["popularity"][metric]["mean"] - 0.05) < 1e-12
        assert abs(against["als"][metric]["low"] + 0.01) < 1e-12 and abs(against["als"][metric]["high"] + 0.01) < 1e-12
        bpr = against["bpr"][metric]
        assert abs(bpr["mean"]) < 1e-12 and bpr["low"] < 0.0 < bpr["high"]
    assert result["worse_than"] == {"als": [f"{name}@20" for name in NAMES]}
    assert result["better_than_popularity"] == [f"{name}@20" for name in NAMES]


def test_nothing_to_compare_without_the_served_recommender() -> None:
    values = np.linspace(0.0, 1.0, MEMBERS)
    result = served_against_each(report("als", {"popularity": values, "item_knn": values}))
    assert result == {"against": {}, "worse_than": {}, "better_than_popularity": []}
