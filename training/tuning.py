"""Hyper-parameter search for ALS on a validation period that ends before the test period.

``python -m training.tuning --cutoff 2011-06-01 [--k 20]`` trains on the window
before the validation cutoff, scores each grid point on the following
``holdout_days``, and prints every point tried (JSON lines) and the best by the
primary metric. Purchases are extracted once; each weighting is built once.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from recsys.settings import Settings, TrainingSettings
from recsys.storage.db import engine_from_settings
from recsys.storage.purchase_log import read_purchase_log, titles_sold_before, to_epoch
from training.dataset import read_catalogue, window_start
from training.evaluate import EvaluationReport, evaluate_split
from training.split import time_split

DEFAULT_GRID: dict[str, list[Any]] = {
    "weighting": ["bm25", "none"],
    "half_life_days": [None, 180.0],
    "factors": [32, 64, 128],
    "regularization": [0.05, 1.0],
    "alpha": [1.0, 5.0, 20.0],
    "iterations": [15],
}
MATRIX_KEYS = ("weighting", "half_life_days", "recency_decay", "bm25_k1", "bm25_b")


@dataclass(frozen=True)
class Trial:
    params: dict[str, Any]
    metrics: dict[str, float]


def grid_points(grid: dict[str, list[Any]]) -> Iterator[dict[str, Any]]:
    keys = list(grid)
    for values in itertools.product(*(grid[k] for k in keys)):
        yield dict(zip(keys, values, strict=True))


def tune(
    settings: Settings, cutoff: dt.datetime, grid: dict[str, list[Any]], k: int = 20
) -> list[Trial]:
    """Score ALS at every grid point on the period after ``cutoff``; matrices built once each."""
    engine = engine_from_settings(settings)
    trials: list[Trial] = []
    base = settings.training
    start = window_start(cutoff, base)
    end = cutoff + dt.timedelta(days=base.holdout_days)
    with engine.connect() as connection:
        catalogue = read_catalogue(connection)
        lines = read_purchase_log(connection, start=start, end=end, batch_rows=base.extract_batch_rows).arrays
        sold = np.union1d(titles_sold_before(connection, start), lines.title_key[lines.purchased_at < to_epoch(cutoff)])
    points = sorted(grid_points(grid), key=lambda p: json.dumps([p.get(m) for m in MATRIX_KEYS]))
    cache: dict[str, Any] = {}
    for point in points:
        ts = TrainingSettings(**{**base.model_dump(), **point})
        if "half_life_days" in point and point["half_life_days"] is None:
            ts = ts.model_copy(update={"recency_decay": False})
        matrix_key = json.dumps([getattr(ts, m) for m in MATRIX_KEYS])
        if matrix_key not in cache:
            cache.clear()
            cache[matrix_key] = time_split(
                catalogue, lines, window_start=start, cutoff=cutoff, end=end, sold_before=sold, settings=ts,
                with_affinity=False,
            )
        scores = evaluate_split(cache[matrix_key], ts, ["als"], k=k, cold=False)
        report = EvaluationReport.of([scores], k, served="als", primary=ts.primary_metric, seed=ts.seed)
        metrics: dict[str, float] = dict(report.results["als"])
        metrics.update({f"new_titles_{m}": v for m, v in report.new_titles["als"].items() if v is not None})
        trials.append(Trial(point, metrics))
        print(json.dumps({"params": point, "metrics": metrics}), flush=True)
    return trials


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cutoff", required=True, help="validation cutoff (YYYY-MM-DD)")
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--grid", help="JSON object of lists, overriding the default grid")
    args = parser.parse_args(argv)
    grid = json.loads(args.grid) if args.grid else DEFAULT_GRID
    settings = Settings()
    trials = tune(settings, dt.datetime.fromisoformat(args.cutoff), grid, args.k)
    primary = f"ndcg@{args.k}"
    best = max(trials, key=lambda t: (t.metrics[primary], t.metrics[f"recall@{args.k}"]))
    print(json.dumps({"best": best.params, "metrics": best.metrics}))


if __name__ == "__main__":
    main()
