"""``bookclub evaluate --folds 4`` against a single-period evaluation, and ``bookclub tune``
against its budget, in one run.

    .venv/bin/python benchmarks/bench_evaluate.py [--members 5000 --titles 1500
        --purchases 120000] [--data-dir DIR] [--folds 4] [--budget 1.0] [--seeds 3] [--tune-folds 3]

The demo club (``demo.generate``, as ``bench_training.py`` makes it) is generated on
the first run for a size and reused. Timed, on the same data and settings:

- reference: ``training.evaluate.evaluate`` of every recommender on the one quarter
  after the cutoff (intervals and cold members included);
- ``folds``: the same with ``folds`` consecutive quarters ending at the cutoff
  (target: at most ``folds`` × the reference);
- ``tune``: ``training.tuning.tune`` with ``--budget`` minutes on ``--tune-folds`` validation
  quarters and ``--seeds`` fits per point, the command's defaults (target: elapsed ≤ budget,
  plus the last point's overrun).

Prints wall and CPU times and the ratios. Not part of the tests.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from pathlib import Path

from benchmarks.bench_training import ensure_data, peak_rss_mib
from recsys.settings import Settings, TrainingSettings
from recsys.storage.db import make_engine
from recsys.storage.purchase_log import newest_purchase
from training.dataset import read_catalogue
from training.evaluate import evaluate
from training.tuning import tune


def timed(what: str, run):  # type: ignore[no-untyped-def]
    wall, cpu = time.perf_counter(), time.process_time()
    result = run()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"{what}: {wall:.1f} s wall, {cpu:.1f} s CPU")
    return result, wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--members", type=int, default=5_000)
    parser.add_argument("--titles", type=int, default=1_500)
    parser.add_argument("--purchases", type=int, default=120_000)
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--folds", type=int, default=4)
    parser.add_argument("--budget", type=float, default=1.0, help="minutes for tune")
    parser.add_argument("--seeds", type=int, default=3, help="tune's fits per point (the command's default)")
    parser.add_argument("--tune-folds", type=int, default=3, help="tune's validation folds (the command's default)")
    args = parser.parse_args()
    data_dir = args.data_dir or Path(f"/tmp/bookclub-bench-{args.members}-{args.titles}-{args.purchases}")
    settings = Settings(
        data_dir=data_dir,
        shared_data_dir=Path(__file__).resolve().parents[2] / "shared" / "data",
        training=TrainingSettings(),
    )
    ensure_data(settings, args.members, args.titles, args.purchases)
    engine = make_engine(settings.db_url)
    with engine.connect() as connection:
        newest = newest_purchase(connection)
        catalogue = read_catalogue(connection)
    assert newest is not None
    ts = settings.training
    cutoff = newest - dt.timedelta(days=ts.holdout_days)  # one quarter after it is in the data
    with engine.connect() as connection:
        one, ref_wall, ref_cpu = timed("single quarter", lambda: evaluate(connection, catalogue, ts, cutoff))
        many, wall, cpu = timed(
            f"{args.folds} folds", lambda: evaluate(connection, catalogue, ts, cutoff, folds=args.folds)
        )
    print(
        f"members scored: single {one.members}, folds {many.members}; "
        f"ratio folds/single: {wall / ref_wall:.2f} wall, {cpu / ref_cpu:.2f} CPU (target ≤ {args.folds})"
    )
    result, tune_wall, _ = timed(
        f"tune --budget {args.budget}",
        lambda: tune(engine, settings, cutoff, folds=args.tune_folds, seeds=args.seeds, budget_minutes=args.budget),
    )
    print(
        f"tune: {len(result.trials)} points, {result.record['stopped']}; elapsed / budget "
        f"{tune_wall / (args.budget * 60):.2f} (the first round always completes); served {result.record['served']}"
    )
    print(f"peak RSS {peak_rss_mib():.0f} MiB")


if __name__ == "__main__":
    main()
