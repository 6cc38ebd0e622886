"""Whole retrain vs implicit's bare ALS ``fit`` on the same matrix, in one run.

    .venv/bin/python benchmarks/bench_training.py [--members 100000 --titles 20000
        --purchases 2000000] [--data-dir /tmp/bookclub-bench] [--no-evaluate]

The demo club (``recsys.demo``) is generated into ``DATA_DIR/bookclub.db`` on
the first run for a size and reused afterwards. Timed:

- retrain: ``training.pipeline.run_training`` — extract → matrix → fit →
  evaluate (last quarter, ALS + popularity) → save → promote;
- reference: ``implicit.cpu.als.AlternatingLeastSquares.fit`` with the same
  factors, regularization, alpha, iterations and threads on the same
  confidence matrix.

Prints both times, the ratio (target ≤ 1.3) and peak RSS. Not part of the tests.
"""

from __future__ import annotations

import argparse
import datetime as dt
import resource
import time
from pathlib import Path

from implicit.cpu.als import AlternatingLeastSquares
from threadpoolctl import threadpool_limits

from recsys.categories import clc_file
from recsys.db import make_engine, upgrade
from recsys.settings import Settings, TrainingSettings
from training.pipeline import run_training


def ensure_data(settings: Settings, members: int, titles: int, purchases: int) -> None:
    from recsys.demo import DemoSpec
    from recsys.demo_load import has_club_data, load_demo

    engine = make_engine(settings.db_url)
    upgrade(engine)
    with engine.connect() as connection:
        if has_club_data(connection):
            return
    started = time.perf_counter()
    spec = DemoSpec(
        members=members, titles=titles, years=3, purchases=purchases, end_date=dt.date(2026, 6, 30)
    )
    summary = load_demo(engine, spec, clc_file(settings.shared_data_dir / "clc", False))
    print(f"demo club written in {time.perf_counter() - started:.0f}s: {summary.counts}")


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--titles", type=int, default=20_000)
    parser.add_argument("--purchases", type=int, default=2_000_000)
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--no-evaluate", action="store_true")
    args = parser.parse_args()
    data_dir = args.data_dir or Path(
        f"/tmp/bookclub-bench-{args.members}-{args.titles}-{args.purchases}"
    )
    settings = Settings(
        data_dir=data_dir,
        shared_data_dir=Path(__file__).resolve().parents[2] / "shared" / "data",
        training=TrainingSettings(threads=args.threads),
    )
    ensure_data(settings, args.members, args.titles, args.purchases)
    engine = make_engine(settings.db_url)

    started = time.perf_counter()
    result = run_training(engine, settings, with_evaluation=not args.no_evaluate, promote="force")
    retrain = time.perf_counter() - started
    rss_retrain = peak_rss_mib()

    ts = settings.training
    matrix = result.training.member_titles
    with threadpool_limits(1, "blas"):
        bare = AlternatingLeastSquares(
            factors=ts.factors,
            regularization=ts.regularization,
            alpha=ts.alpha,
            iterations=ts.iterations,
            random_state=ts.seed,
            num_threads=ts.threads,
            calculate_training_loss=False,
        )
        started = time.perf_counter()
        bare.fit(matrix, show_progress=False)
        reference = time.perf_counter() - started

    snap = result.training.snapshot
    print(
        f"data: {snap.purchase_rows:,} order lines in the window, "
        f"{matrix.shape[0]:,} members × {matrix.shape[1]:,} titles, {matrix.nnz:,} non-zeros"
    )
    steps = ", ".join(f"{k} {v:.2f}s" for k, v in result.timings.items())
    print(
        f"retrain ({'with' if not args.no_evaluate else 'without'} evaluation): "
        f"{retrain:.2f}s [{steps}]"
    )
    print(
        f"implicit ALS fit alone ({ts.iterations} iterations, {ts.factors} factors): "
        f"{reference:.2f}s"
    )
    print(f"ratio retrain / bare fit: {retrain / reference:.2f} (target <= 1.3)")
    print(f"peak RSS: {rss_retrain:.0f} MiB after retrain, {peak_rss_mib():.0f} MiB at the end")
    if result.evaluation:
        als = result.evaluation.results[ts.model]
        pop = result.evaluation.results["popularity"]
        print(
            f"holdout: als ndcg@20 {als['ndcg@20']:.4f} recall@20 {als['recall@20']:.4f}; "
            f"popularity ndcg@20 {pop['ndcg@20']:.4f} recall@20 {pop['recall@20']:.4f}"
        )


if __name__ == "__main__":
    main()
