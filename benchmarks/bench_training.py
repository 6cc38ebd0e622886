"""Whole retrain vs implicit's bare ALS ``fit`` on the same matrix, in one run.

    .venv/bin/python benchmarks/bench_training.py [--members 100000 --titles 20000
        --purchases 2000000] [--data-dir /tmp/bookclub-bench] [--database-url URL]
        [--no-evaluate] [--new-lines 2000] [--runs cold,warm]

The demo club (``demo.generate``) is generated into ``DATA_DIR/bookclub.db`` (or
``--database-url``) on the first run for a size and reused afterwards. Timed:

- cold retrain: ``training.pipeline.run_training`` — extract → matrix → fit →
  evaluate (last quarter, ALS + popularity) → save → promote — with no extract
  cache (it is deleted first; the run writes it);
- warm retrain: ``--new-lines`` order lines (copies of the newest, about a
  day's trade) are appended, then the same retrain, which reads only them
  beside the cache; the copies are deleted at the end;
- reference: ``implicit.cpu.als.AlternatingLeastSquares.fit`` with the same
  factors, regularization, alpha, iterations and threads on the same
  confidence matrix.

Prints the times, the ratios (target ≤ 1.3) and peak RSS. Not part of the tests.
"""

from __future__ import annotations

import argparse
import datetime as dt
import resource
import time
from pathlib import Path

from implicit.cpu.als import AlternatingLeastSquares
from sqlalchemy import Engine, text
from threadpoolctl import threadpool_limits

from recsys.settings import Settings, TrainingSettings
from recsys.storage.categories import clc_file
from recsys.storage.db import make_engine, upgrade
from training.extract_cache import ExtractCache
from training.pipeline import TrainResult, run_training

BENCH_SUFFIX = "-bench-new"


def ensure_data(settings: Settings, members: int, titles: int, purchases: int) -> None:
    from demo.generate import DemoSpec
    from demo.load import load_demo
    from recsys.storage.club import has_club_data

    engine = make_engine(settings.db_url)
    upgrade(engine)
    remove_appended(engine)  # left by an interrupted run
    with engine.connect() as connection:
        if has_club_data(connection):
            return
    started = time.perf_counter()
    spec = DemoSpec(
        members=members, titles=titles, years=3, purchases=purchases, end_date=dt.date(2026, 6, 30)
    )
    summary = load_demo(engine, spec, clc_file(settings.shared_data_dir / "clc", False))
    print(f"demo club written in {time.perf_counter() - started:.0f}s: {summary.counts}")


def append_lines(engine: Engine, n: int) -> None:
    """Copy the ``n`` newest order lines under new line ids (the warm run's new trade)."""
    columns = "order_id, member_key, title_key, quantity, unit_price, purchased_at, channel"
    with engine.begin() as connection:
        connection.execute(
            text(
                f"INSERT INTO purchases (line_id, {columns}) "
                f"SELECT line_id || '{BENCH_SUFFIX}', {columns} FROM purchases "
                "WHERE id > (SELECT max(id) FROM purchases) - :n"
            ),
            {"n": n},
        )


def remove_appended(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(
            text("DELETE FROM purchases WHERE line_id LIKE :pattern"), {"pattern": f"%{BENCH_SUFFIX}"}
        )


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
    parser.add_argument("--database-url", default=None, help="default: SQLite in the data dir")
    parser.add_argument("--new-lines", type=int, default=2000, help="appended before the warm run")
    parser.add_argument("--runs", default="cold,warm", help="cold, warm or both")
    args = parser.parse_args()
    data_dir = args.data_dir or Path(f"/tmp/bookclub-bench-{args.members}-{args.titles}-{args.purchases}")
    settings = Settings(
        data_dir=data_dir,
        database_url=args.database_url,
        shared_data_dir=Path(__file__).resolve().parents[2] / "shared" / "data",
        training=TrainingSettings(threads=args.threads),
    )
    ensure_data(settings, args.members, args.titles, args.purchases)
    engine = make_engine(settings.db_url)
    runs = args.runs.split(",")
    ExtractCache(settings.models_dir / "extract_cache").clear()

    cpu: dict[str, float] = {}

    def retrain(label: str) -> tuple[float, TrainResult]:
        started, started_cpu = time.perf_counter(), time.process_time()
        result = run_training(engine, settings, with_evaluation=not args.no_evaluate, promote="force")
        seconds = time.perf_counter() - started
        cpu[label] = time.process_time() - started_cpu
        steps = ", ".join(f"{k} {v:.2f}s" for k, v in result.timings.items())
        cache = result.extract_cache
        served = (
            f"; cache {cache.state}, {cache.cached_rows:,} cached + {cache.new_rows:,} read" if cache else ""
        )
        print(
            f"{label} retrain ({'with' if not args.no_evaluate else 'without'} evaluation): "
            f"{seconds:.2f}s [{steps}{served}]; peak RSS so far {peak_rss_mib():.0f} MiB",
            flush=True,
        )
        return seconds, result

    timed: dict[str, float] = {}
    result: TrainResult | None = None
    try:
        if "cold" in runs:
            timed["cold"], result = retrain("cold")
        if "warm" in runs:
            if "cold" not in runs:
                retrain("priming (fills the cache)")
            append_lines(engine, args.new_lines)
            timed["warm"], result = retrain("warm")
    finally:
        remove_appended(engine)
    assert result is not None
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
        started, started_cpu = time.perf_counter(), time.process_time()
        bare.fit(matrix, show_progress=False)
        reference = time.perf_counter() - started
        reference_cpu = time.process_time() - started_cpu

    snap = result.training.snapshot
    print(
        f"data ({engine.dialect.name}): {snap.purchase_rows:,} order lines in the window, "
        f"{matrix.shape[0]:,} members × {matrix.shape[1]:,} titles, {matrix.nnz:,} non-zeros"
    )
    print(f"implicit ALS fit alone ({ts.iterations} iterations, {ts.factors} factors): {reference:.2f}s")
    for label, seconds in timed.items():
        print(
            f"ratio {label} retrain / bare fit: {seconds / reference:.2f} wall (target <= 1.3), "
            f"{cpu[label] / reference_cpu:.2f} CPU time ({cpu[label]:.1f}s / {reference_cpu:.1f}s: "
            "fairer when other work shares the cores)"
        )
    print(f"peak RSS: {rss_retrain:.0f} MiB after the retrains, {peak_rss_mib():.0f} MiB at the end")
    if result.evaluation:
        als = result.evaluation.results[ts.model]
        pop = result.evaluation.results["popularity"]
        print(
            f"holdout: als ndcg@20 {als['ndcg@20']:.4f} recall@20 {als['recall@20']:.4f}; "
            f"popularity ndcg@20 {pop['ndcg@20']:.4f} recall@20 {pop['recall@20']:.4f}"
        )


if __name__ == "__main__":
    main()
