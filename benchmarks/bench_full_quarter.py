"""The full-size quarter in production shape, stage by stage, through the real CLI (issue 13).

    flock /tmp/bench.lock .venv/bin/python -m benchmarks.bench_full_quarter \\
        --backend postgres --backend sqlite --editions 2000

Each stage is a subprocess of the ``bookclub`` command (the member editions: a sample fanned
out on a local Dask cluster through ``catalog.fanout.render_all_editions``, as
``bookclub catalogs render --all-members`` does for every mailed member):

    demo-data (1.5M members × 50k titles × 20M order lines) → train --evaluate → segment →
    catalogs plan → campaigns plan → campaigns contacts → catalogs render (the segment
    catalogs) → member editions (a sample)

For every stage it prints wall time, CPU time (``RUSAGE_CHILDREN`` before/after: the stage's
processes and everything they waited for), peak memory of the stage's process tree (RSS summed
over the tree, sampled every 0.25 s by psutil, and the largest single process), on PostgreSQL
the server's own memory (PSS summed over the database's backends, autovacuum and parallel
workers) and CPU, and the load average over the stage (the machine may be shared). Where it
makes sense a reference is measured in the same run, the same way: a raw copy of the same
order lines into an unindexed table (demo-data), a raw read of the order lines (train,
segment), a raw copy of the 1.5M member rows into an unindexed table (contacts).

PostgreSQL: the database ``--pg-db`` on ``--pg-url`` is dropped and created at the start and
kept at the end (its URL and data folder go to ``/tmp/full-quarter-ready.txt``). SQLite: the
file ``bookclub.db`` in the data folder. Data folders: ``/tmp/full-pg``, ``/tmp/full-sqlite``.
Not part of the tests.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
BOOKCLUB = [sys.executable, "-c", "import sys; from bookclub_cli.main import app; sys.argv[0] = 'bookclub'; app()"]
SELF = [sys.executable, "-m", "benchmarks.bench_full_quarter"]
READY = Path("/tmp/full-quarter-ready.txt")
MiB = 1024 * 1024
KEEP_EDITIONS = 20  # of the sample's edition files; the rest are removed once counted


@dataclass
class StageResult:
    stage: str
    wall: float
    cpu: float
    peak_tree_mib: float
    peak_process_mib: float
    pg_pss_mib: float | None
    pg_cpu: float | None
    load_mean: float
    load_max: float
    status: int
    note: str = ""
    reference: dict[str, float] = field(default_factory=dict)


class Sampler:
    """Polls the process tree of one child (and PostgreSQL's backends of one database)."""

    def __init__(self, pid: int, pg_db: str | None) -> None:
        self.pid = pid
        self.pg_db = pg_db
        self.peak_tree = 0
        self.peak_process = 0
        self.peak_pg = 0
        self.pg_cpu: dict[int, float] = {}
        self.loads: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _tree(self) -> None:
        try:
            root = psutil.Process(self.pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            return
        total = 0
        for p in procs:
            try:
                rss = p.memory_info().rss
            except psutil.Error:
                continue
            total += rss
            self.peak_process = max(self.peak_process, rss)
        self.peak_tree = max(self.peak_tree, total)

    def _pg(self) -> None:
        total = 0
        for p in psutil.process_iter(["name", "cmdline"]):
            try:
                if p.info["name"] != "postgres":
                    continue
                cmd = " ".join(p.info["cmdline"] or [])
                if f" {self.pg_db} " not in f"{cmd} " and "parallel worker" not in cmd:
                    continue
                total += p.memory_full_info().pss
                times = p.cpu_times()
                self.pg_cpu[p.pid] = times.user + times.system
            except psutil.Error:
                continue
        self.peak_pg = max(self.peak_pg, total)

    def _run(self) -> None:
        tick = 0
        while not self._stop.is_set():
            self._tree()
            if self.pg_db and tick % 4 == 0:
                self._pg()
            if tick % 20 == 0:
                self.loads.append(os.getloadavg()[0])
            tick += 1
            self._stop.wait(0.25)
        self.loads.append(os.getloadavg()[0])


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _pg_cpu_now(db: str) -> dict[int, float]:
    out: dict[int, float] = {}
    for p in psutil.process_iter(["name", "cmdline"]):
        try:
            cmd = " ".join(p.info["cmdline"] or [])
            if p.info["name"] == "postgres" and (f" {db} " in f"{cmd} " or "parallel worker" in cmd):
                t = p.cpu_times()
                out[p.pid] = t.user + t.system
        except psutil.Error:
            continue
    return out


def run_stage(name: str, argv: list[str], env: dict[str, str], log: Path, pg_db: str | None) -> StageResult:
    print(f"[{time.strftime('%H:%M:%S')}] {name}: {' '.join(argv[3:] if argv[:3] == BOOKCLUB else argv)}", flush=True)
    before_pg = _pg_cpu_now(pg_db) if pg_db else {}
    cpu0 = _children_cpu()
    clock = time.perf_counter()
    with log.open("w") as out:
        child = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        with Sampler(child.pid, pg_db) as sampler:
            status = child.wait()
    wall = time.perf_counter() - clock
    cpu = _children_cpu() - cpu0
    pg_cpu = None
    if pg_db:
        pg_cpu = sum(v - before_pg.get(pid, 0.0) for pid, v in sampler.pg_cpu.items())
    loads = sampler.loads or [os.getloadavg()[0]]
    result = StageResult(
        stage=name, wall=wall, cpu=cpu, peak_tree_mib=sampler.peak_tree / MiB,
        peak_process_mib=sampler.peak_process / MiB,
        pg_pss_mib=sampler.peak_pg / MiB if pg_db else None, pg_cpu=pg_cpu,
        load_mean=sum(loads) / len(loads), load_max=max(loads), status=status,
    )  # fmt: skip
    tail = log.read_text(errors="replace").strip().splitlines()[-12:]
    print("    " + "\n    ".join(tail), flush=True)
    print(f"    → {_line(result)}", flush=True)
    if status != 0:
        print(f"    FAILED with status {status}: see {log}", flush=True)
    return result


def _line(r: StageResult) -> str:
    pg = f", PostgreSQL {r.pg_pss_mib:,.0f} MiB PSS / {r.pg_cpu:,.1f} s CPU" if r.pg_pss_mib is not None else ""
    return (f"{r.wall:,.1f} s wall, {r.cpu:,.1f} s CPU, peak {r.peak_tree_mib:,.0f} MiB tree / "
            f"{r.peak_process_mib:,.0f} MiB largest process{pg}, load {r.load_mean:.1f} (max {r.load_max:.1f})")


# --- references, each run as ``python -m benchmarks.bench_full_quarter --reference KIND URL`` ---

LINE_COLUMNS = "member_key, title_key, quantity, unit_price, purchased_at"


def _reference(kind: str, url: str) -> None:
    if url.startswith("sqlite"):
        _reference_sqlite(kind, url.split("///", 1)[1])
    else:
        _reference_postgres(kind, url)


def _reference_postgres(kind: str, url: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as read, psycopg.connect(url, autocommit=True) as write:
        if kind == "read-lines":  # the order lines out of the database, nothing done with them
            n = 0
            with read.cursor().copy(f"COPY (SELECT {LINE_COLUMNS} FROM purchases) TO STDOUT (FORMAT BINARY)") as cp:
                for block in cp:
                    n += len(block)
            print(f"read {n / MiB:,.0f} MiB of order lines")
            return
        table, source = {"copy-lines": ("ref_lines", "purchases"), "copy-members": ("ref_members", "members")}[kind]
        write.execute(f"DROP TABLE IF EXISTS {table}")
        write.execute(f"CREATE UNLOGGED TABLE {table} (LIKE {source})")
        with (
            read.cursor().copy(f"COPY {source} TO STDOUT (FORMAT BINARY)") as out,
            write.cursor().copy(f"COPY {table} FROM STDIN (FORMAT BINARY)") as into,
        ):
            for block in out:
                into.write(block)
        rows = write.execute(f"SELECT count(*) FROM {table}").fetchone()
        write.execute(f"DROP TABLE {table}")
        print(f"copied {rows[0] if rows else 0:,} rows of {source}")


def _reference_sqlite(kind: str, path: str) -> None:
    import sqlite3

    connection = sqlite3.connect(path)
    if kind == "read-lines":
        cursor = connection.execute(f"SELECT {LINE_COLUMNS} FROM purchases")
        n = 0
        while rows := cursor.fetchmany(100_000):
            n += len(rows)
        print(f"read {n:,} order lines")
        return
    table, source = {"copy-lines": ("ref_lines", "purchases"), "copy-members": ("ref_members", "members")}[kind]
    ref = Path(path).with_name("reference.db")
    ref.unlink(missing_ok=True)
    connection.execute(f"ATTACH DATABASE '{ref}' AS ref")
    connection.execute("PRAGMA ref.journal_mode=OFF")
    connection.execute(f"CREATE TABLE ref.{table} AS SELECT * FROM main.{source}")
    connection.commit()
    rows = connection.execute(f"SELECT count(*) FROM ref.{table}").fetchone()
    connection.execute("DETACH DATABASE ref")
    ref.unlink()
    print(f"copied {rows[0]:,} rows of {source}")


def _editions_run(quarter: str, n: int, workers: int) -> None:
    """``n`` mailed members' editions (every k-th of the quarter's mailed members, so every
    segment is in the sample) through ``catalog.fanout.render_all_editions`` on a local Dask
    cluster: what ``bookclub catalogs render --all-members`` does, for a sample."""
    from catalog.fanout import render_all_editions
    from catalog.member_edition import mailed_edition_members
    from catalog.paths import sidecar_path
    from catalog.planning import stored_plans
    from recsys.settings import Settings
    from recsys.storage.db import engine_from_settings

    settings = Settings()
    engine = engine_from_settings(settings)
    clock = time.perf_counter()
    with engine.connect() as connection:
        plans = stored_plans(connection, quarter)
        mailed = mailed_edition_members(connection, settings, quarter)
    step = max(len(mailed) // n, 1)
    sample = list(mailed[::step][:n])
    print(f"{len(mailed):,} mailed members with their own edition; a sample of {len(sample):,} "
          f"(every {step:,}th), read in {time.perf_counter() - clock:.1f} s")
    result = render_all_editions(engine, settings, quarter, plans, sample, workers=workers)
    done = max(len(result.editions), 1)
    print(f"{len(result.editions):,} editions in {result.seconds:.1f} s on {result.workers} workers, "
          f"{result.batches:,} batches, {len(result.failures)} failed, {result.retried} retried; "
          f"task time {result.task_seconds / done * 1000:.0f} ms an edition")
    print(f"RATE {result.rate:.3f} editions/s, {result.cpu_seconds / done * 1000:.1f} ms CPU an edition")
    if result.steady_editions:  # without each worker's first batch of a segment (model, stamp sheet)
        print(f"STEADY {result.steady_cpu_seconds / result.steady_editions * 1000:.1f} ms CPU an edition "
              f"over {result.steady_editions:,} editions (each worker's first batch of a segment left out)")
    # each edition carries its segment's body (~1.4 MB): a 20,000 sample is ~28 GB, which filled
    # the disk once; the first KEEP_EDITIONS stay for a person to look at
    removed = 0
    for _member, path in sorted(result.editions.items())[KEEP_EDITIONS:]:
        for file in (path, sidecar_path(path)):
            if file.exists():
                removed += file.stat().st_size
                file.unlink()
    print(f"kept {min(KEEP_EDITIONS, len(result.editions))} editions to look at; removed the rest "
          f"({removed / 2**30:.1f} GiB)")
    if result.failures:
        raise SystemExit(f"{len(result.failures)} batches failed: {result.failures[0].reason}")


# --- the run ---


def _pg_admin(base: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(base, autocommit=True) as connection:
        connection.execute(sql)


def run_backend(backend: str, args: argparse.Namespace) -> list[StageResult]:
    data_dir = Path(f"{args.data_prefix}-{'pg' if backend == 'postgres' else 'sqlite'}")
    if data_dir.exists() and not args.resume:
        shutil.rmtree(data_dir)
    logs = data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    (data_dir / "tmp").mkdir(exist_ok=True)
    pg_db = None
    if backend == "postgres":
        pg_db = args.pg_db
        base = args.pg_url.rsplit("/", 1)[0]
        if not args.resume:
            _pg_admin(f"{base}/postgres", f"DROP DATABASE IF EXISTS {pg_db} WITH (FORCE)")
            _pg_admin(f"{base}/postgres", f"CREATE DATABASE {pg_db}")
        url = f"{base}/{pg_db}"
    else:
        url = f"sqlite:///{data_dir / 'bookclub.db'}"
    env = dict(os.environ)
    env.update(
        BOOKCLUB_DATA_DIR=str(data_dir), BOOKCLUB_DATABASE_URL=url,
        BOOKCLUB_SHARED_DATA_DIR=os.environ.get("BOOKCLUB_SHARED_DATA_DIR", str(ROOT.parent / "shared" / "data")),
        TMPDIR=str(data_dir / "tmp"), PYTHONPATH=str(ROOT),
    )  # fmt: skip
    q = args.quarter
    bc = BOOKCLUB
    stages: list[tuple[str, list[str], str | None]] = [
        ("demo-data", [*bc, "demo-data", "--members", str(args.members), "--titles", str(args.titles),
                       "--purchases", str(args.purchases), "--years", "3", "--seed", "42",
                       "--end-date", args.end_date], "copy-lines"),
        ("train --evaluate", [*bc, "train", "--evaluate"], "read-lines"),
        ("segment", [*bc, "segment", "--quarter", q], None),
        ("catalogs plan", [*bc, "catalogs", "plan", "--quarter", q], None),
        ("campaigns plan", [*bc, "campaigns", "plan", "--quarter", q], None),
        ("campaigns contacts", [*bc, "campaigns", "contacts", "--quarter", q], "copy-members"),
        ("catalogs render (segment catalogs)", [*bc, "catalogs", "render", "--quarter", q], None),
    ]  # fmt: skip
    if args.editions:
        stages.append((
            f"member editions ({args.editions:,}, Dask, {args.workers} workers)",
            [*SELF, "--editions-run", q, str(args.editions), str(args.workers)],
            None,
        ))  # fmt: skip
    results: list[StageResult] = []
    for i, (name, argv, reference) in enumerate(stages):
        if args.skip and any(name.startswith(s) for s in args.skip):
            continue
        result = run_stage(name, argv, env, logs / f"{i:02d}-{name.split()[0]}.log", pg_db)
        results.append(result)
        if result.status != 0:
            break
        if reference and not args.no_reference:
            ref = run_stage(f"  reference: {reference}", [*SELF, "--reference", reference, url], env,
                            logs / f"{i:02d}-reference-{reference}.log", pg_db)  # fmt: skip
            result.reference = {"wall": ref.wall, "cpu": ref.cpu, "peak_tree_mib": ref.peak_tree_mib}
            if pg_db:
                result.reference["pg_cpu"] = ref.pg_cpu or 0.0
        if name.startswith("member editions"):
            text = (logs / f"{i:02d}-member.log").read_text(errors="replace")
            if rate := re.search(r"RATE ([\d.]+) editions/s, ([\d.]+) ms CPU", text):
                per_s = float(rate.group(1))
                result.note = (f"{per_s:.2f} editions/s, {float(rate.group(2)):.0f} ms CPU each in the tasks; "
                               f"{args.members:,} members at this rate: {args.members / per_s / 3600:.1f} h")  # fmt: skip
            if steady := re.search(r"STEADY ([\d.]+) ms CPU", text):
                ms = float(steady.group(1))  # the steady cost, on every core of this machine
                result.note += (f"; steady {ms:.0f} ms CPU an edition ({1000 / ms:.1f}/s a core; "
                                f"{args.members:,} on ten such machines: {args.members * ms / 1000 / (10 * (os.cpu_count() or 1)) / 3600:.2f} h)")
        (data_dir / "results.json").write_text(json.dumps([asdict(r) for r in results], indent=1))
    if backend == "postgres" and args.ready:
        READY.write_text(
            f"# full-size quarter ({args.members:,} members, {args.titles:,} titles, {args.purchases:,} lines), "
            f"quarter {q}, written {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC by benchmarks/bench_full_quarter.py\n"
            f"BOOKCLUB_DATABASE_URL={url}\nBOOKCLUB_DATA_DIR={data_dir}\n"
        )
    return results


def _table(by_backend: dict[str, list[StageResult]]) -> None:
    print("\nstage | " + " | ".join(f"{b}: wall / CPU / peak tree (largest) / load" for b in by_backend))
    names: list[str] = []
    for results in by_backend.values():
        names += [r.stage for r in results if r.stage not in names]
    total: dict[str, float] = {}
    for name in names:
        cells = []
        for backend, results in by_backend.items():
            r = next((x for x in results if x.stage == name), None)
            if r is None:
                cells.append("—")
                continue
            if not name.startswith("member editions"):
                total[backend] = total.get(backend, 0.0) + r.wall
            pg = f", server {r.pg_pss_mib:,.0f} MiB / {r.pg_cpu:,.0f} s" if r.pg_pss_mib is not None else ""
            ref = (f"; reference {r.reference['wall']:,.1f} s ({r.reference['cpu']:,.1f} s CPU), "
                   f"ratio {r.wall / r.reference['wall']:.2f}" if r.reference else "")  # fmt: skip
            cells.append(f"{r.wall:,.1f} s / {r.cpu:,.1f} s / {r.peak_tree_mib:,.0f} ({r.peak_process_mib:,.0f}) MiB"
                         f"{pg} / {r.load_mean:.1f}{ref}{' ' + r.note if r.note else ''}")
        print(f"{name} | " + " | ".join(cells))
    for backend, seconds in total.items():
        print(f"{backend}: everything but the member editions {seconds / 60:.1f} min (target ≤ 60 min)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference", nargs=2, metavar=("KIND", "URL"), help=argparse.SUPPRESS)
    parser.add_argument("--editions-run", nargs=3, metavar=("QUARTER", "N", "WORKERS"), help=argparse.SUPPRESS)
    parser.add_argument("--backend", action="append", choices=["postgres", "sqlite"])
    parser.add_argument("--members", type=int, default=1_500_000)
    parser.add_argument("--titles", type=int, default=50_000)
    parser.add_argument("--purchases", type=int, default=20_000_000)
    parser.add_argument("--end-date", default="2026-11-22")
    parser.add_argument("--quarter", default="2026Q4")
    parser.add_argument("--editions", type=int, default=2000, help="member editions in the Dask sample (0: none)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/postgres",
                        help="a PostgreSQL server (the database part is replaced by --pg-db)")
    parser.add_argument("--pg-db", default="full_quarter", help="dropped and created at the start, kept at the end")
    parser.add_argument("--data-prefix", default="/tmp/full", help="data folders PREFIX-pg and PREFIX-sqlite")
    parser.add_argument("--resume", action="store_true",
                        help="keep the database and data folder (with --skip: run the later stages again)")
    parser.add_argument("--no-ready", dest="ready", action="store_false",
                        help=f"do not write {READY} (for small trial runs)")
    parser.add_argument("--no-reference", action="store_true")
    parser.add_argument("--skip", action="append", help="skip stages whose name starts with this")
    args = parser.parse_args()
    if args.reference:
        _reference(*args.reference)
        return
    if args.editions_run:
        quarter, n, workers = args.editions_run
        _editions_run(quarter, int(n), int(workers))
        return
    backends = args.backend or ["postgres", "sqlite"]
    print(f"full-size quarter: {args.members:,} members, {args.titles:,} titles, {args.purchases:,} order lines; "
          f"{os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB; load {os.getloadavg()[0]:.1f}")  # fmt: skip
    by_backend: dict[str, list[StageResult]] = {}
    for backend in backends:
        by_backend[backend] = run_backend(backend, args)
        _table(by_backend)


if __name__ == "__main__":
    main()
