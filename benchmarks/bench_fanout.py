"""Fan-out benchmark: member editions per second over Dask distributed, 1 vs N local workers.

Builds a demo club in a temporary folder (demo data → ALS model → segments → plans, default
catalog settings: 120 titles a catalog, 20 members a document), or uses the configured one
(``--configured``: ``BOOKCLUB_DATA_DIR`` with a trained model and a planned ``--quarter``).
For each worker count it starts a fresh ``LocalCluster`` (processes, 1 thread each), runs a
warm-up of one batch per worker (imports, engine, model, fonts — paid once per worker per
run — and each segment's stamp sheet, :func:`catalog.fanout.warm_worker`), then times
``--members`` editions through :func:`catalog.fanout.run_batches` (``as_completed`` over one task per batch). Prints editions/s, the speed-up, the machine's
load average during each run (the machine may be shared: the load says how much of the
2 cores the workers had), and the projected time for 1.5 million members on N machines of
this size, assuming machines scale linearly (each task is seconds of CPU against three small
queries, and the scheduler's cost per task is ~1 ms).

    python benchmarks/bench_fanout.py [--members 200] [--workers 1 2] [--club-members 1500]
    python benchmarks/bench_fanout.py --configured --quarter 2026Q4
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import tempfile
import time
from functools import partial
from pathlib import Path

from campaign.contacts import PrintFiles, write_quarter_contacts
from catalog.fanout import Batch, dask_client, make_batches, prepare_job, run_batches, warm_worker
from catalog.paths import catalog_file, edition_file
from catalog.planning import plan_quarter, stored_plans
from catalog.segments import segment_quarter
from demo.generate import DemoSpec
from demo.load import load_demo
from recsys.settings import CampaignSettings, SegmentSettings, Settings, TrainingSettings
from recsys.storage import segments as segments_db
from recsys.storage.db import engine_from_settings, upgrade
from training.pipeline import run_training
from training.registry import ModelRegistry

MEMBERS_AT_SCALE = 1_500_000
DEMO_QUARTER = "2026Q4"


def build_club(data_dir: Path, members: int) -> Settings:
    settings = Settings(
        data_dir=data_dir,
        training=TrainingSettings(factors=32, iterations=10),
        segments=SegmentSettings(clusters=4),
    )
    engine = engine_from_settings(settings)
    upgrade(engine)
    clc = settings.shared_data_dir / "clc" / "clc_level1_2.csv"
    spec = DemoSpec(members=members, titles=1500, years=2, seed=11, end_date=dt.date(2026, 11, 20))
    load_demo(engine, spec, clc)
    run_training(engine, settings, promote="force")
    model = ModelRegistry(settings.models_dir).load()
    with engine.begin() as connection:
        segment_quarter(connection, model, settings.segments, DEMO_QUARTER)
    with engine.begin() as connection:
        plan_quarter(connection, model, settings, DEMO_QUARTER)
    with engine.begin() as connection:  # the campaign's contacts: editions are rendered for mailed members
        files = PrintFiles(member=partial(edition_file, DEMO_QUARTER), segment=partial(catalog_file, DEMO_QUARTER))
        everyone = CampaignSettings(holdout_share=1e-12, universal_holdout_share=0.0)
        write_quarter_contacts(connection, everyone, DEMO_QUARTER, dt.date(2026, 10, 1), files=files)
    engine.dispose()
    return settings


def spread(batches: list[Batch], n: int) -> list[Batch]:
    """``n`` batches taken round-robin over the segments, so every body is in the sample."""
    by_segment: dict[int, list[Batch]] = {}
    for b in batches:
        by_segment.setdefault(b.segment, []).append(b)
    out: list[Batch] = []
    while len(out) < n and any(by_segment.values()):
        for queue in by_segment.values():
            if queue and len(out) < n:
                out.append(queue.pop(0))
    return out


def _projection(label: str, rate: float) -> None:
    cells = []
    for machines in (1, 2, 4, 8, 16, 32):
        hours = MEMBERS_AT_SCALE / (rate * machines) / 3600
        cells.append(f"{machines}: {hours:.1f} h")
    print(f"  {label}\n    machines " + ", ".join(cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configured", action="store_true", help="use BOOKCLUB_DATA_DIR, not a demo club")
    parser.add_argument("--quarter", default=DEMO_QUARTER)
    parser.add_argument("--club-members", type=int, default=1500, help="demo club size")
    parser.add_argument("--members", type=int, default=200, help="editions timed per worker count")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()

    if args.configured:
        settings = Settings()
    else:
        root = Path(tempfile.mkdtemp(prefix="bench-fanout-"))
        clock = time.perf_counter()
        settings = build_club(root / "var", args.club_members)
        print(f"demo club of {args.club_members:,} members built in {time.perf_counter() - clock:.0f} s ({root})")
    cfg = settings.catalog
    engine = engine_from_settings(settings)
    version = ModelRegistry(settings.models_dir).active_version()
    assert version is not None, "no active model"
    out = Path(tempfile.mkdtemp(prefix="bench-fanout-out-"))
    with engine.connect() as connection:
        plans = stored_plans(connection, args.quarter)
        if not plans:
            raise SystemExit(f"no plans for {args.quarter}")
        labels = segments_db.member_segment_labels(connection, args.quarter)
        batches = make_batches(labels, sorted(labels), cfg.members_per_batch)
        job = prepare_job(connection, settings, args.quarter, plans, model_version=version, out_dir=out)
    size = cfg.members_per_batch
    timed_n = -(-args.members // size)
    titles = max(len(p.title_ids) for p in plans)
    print(f"fan-out: {len(labels):,} members in {len(plans)} segments, {size} members a batch, "
          f"catalogs up to {titles} titles, font {cfg.member_font}; {os.cpu_count()} cores")
    rates: dict[int, float] = {}
    cpu: dict[int, float] = {}
    for workers in args.workers:
        sample = spread(list(batches), timed_n + workers)
        warm, timed = sample[:workers], sample[workers:]
        with dask_client(workers=workers) as client:
            run_batches(client, job, warm)
            client.run(warm_worker, job)  # every segment's stamp sheet, once per worker (as at scale)
            load_before = os.getloadavg()[0]
            result = run_batches(client, job, timed)
            load_after = os.getloadavg()[0]
        if result.failures:
            raise SystemExit(f"{len(result.failures)} batches failed: {result.failures[0].reason}")
        rates[workers] = result.rate
        n = max(len(result.editions), 1)
        cpu[workers] = result.cpu_seconds / n
        print(f"  {workers} worker(s): {len(result.editions)} editions in {result.seconds:.1f} s = "
              f"{result.rate:.2f} editions/s ({result.task_seconds / n * 1000:.0f} ms of task time, "
              f"{cpu[workers] * 1000:.0f} ms CPU each); load average {load_before:.1f} → "
              f"{load_after:.1f} on {os.cpu_count()} cores")
    base = args.workers[0]
    for workers in args.workers[1:]:
        print(f"  speed-up {base}→{workers} workers: {rates[workers] / rates[base]:.2f}× "
              f"(ideal {workers / base:.0f}× on idle cores)")
    best = max(rates, key=lambda w: rates[w])
    rate = rates[best]
    cores = os.cpu_count() or 1
    idle = cores / min(cpu.values())  # every core busy with one worker, nothing else running
    print("Fan-out: 1.5M members on N machines of this size, assuming machines scale linearly")
    _projection(f"as measured, {rate:.2f} editions/s a machine ({best} workers, shared machine)", rate)
    _projection(f"idle machine, {idle:.2f} editions/s ({cores} workers × 1 / CPU s per edition)", idle)
    engine.dispose()
    shutil.rmtree(out, ignore_errors=True)  # the editions (~1 MB each)
    if not args.configured:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
