"""Import rate of purchase lines against the raw driver's best on the same rows, same run.

    .venv/bin/python -m benchmarks.bench_import --rows 1000000 [--postgres URL]

Reference: sqlite3 ``executemany`` in one transaction / psycopg ``COPY`` of the
already-resolved rows (integer keys, typed values) straight into ``purchases``.
Ours: ``bookclub import purchases`` on a CSV of the same rows — parsing,
validation, staging, reference checks and landing included. Target: ≥ 0.5.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from recsys.storage.bulk import bulk_insert
from recsys.storage.db import make_engine, upgrade
from recsys.storage.imports import KINDS, ImportOptions, csv_source, import_rows

COLUMNS = ["line_id", "order_id", "member_key", "title_key", "quantity", "unit_price", "purchased_at", "channel"]
CHANNELS = ("mail", "phone", "sms", "email", "web", "shop")


def make_rows(n: int, members: int, titles: int, seed: int = 1) -> list[tuple[Any, ...]]:
    rng = np.random.default_rng(seed)
    member = rng.integers(1, members + 1, n)
    title = rng.integers(1, titles + 1, n)
    quantity = np.where(rng.random(n) < 0.03, -1, rng.integers(1, 4, n))
    cents = rng.integers(1500, 19800, n)
    seconds = rng.integers(0, 3 * 365 * 86400, n)
    start = dt.datetime(2023, 1, 1)
    return [
        (f"O{i // 3}-{i % 3 + 1}", f"O{i // 3}", int(member[i]), int(title[i]), int(quantity[i]),
         Decimal(int(cents[i])) / 100, start + dt.timedelta(seconds=int(seconds[i])), CHANNELS[i % 6])
        for i in range(n)
    ]


def prepare(engine: Engine, members: int, titles: int) -> None:
    upgrade(engine)
    with engine.begin() as connection:
        bulk_insert(connection, "members", ["member_id", "name", "status"],
                    ((f"M{i}", f"member {i}", "active") for i in range(1, members + 1)))
        bulk_insert(connection, "titles", ["title_id", "title", "in_stock"],
                    ((f"T{i}", f"title {i}", True) for i in range(1, titles + 1)))


def write_csv(path: Path, rows: list[tuple[Any, ...]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["line_id", "member_id", "title_id", "purchased_at", "quantity", "unit_price",
                         "channel", "order_id"])
        for r in rows:
            writer.writerow([r[0], f"M{r[2]}", f"T{r[3]}", r[6].isoformat(" "), r[4], r[5], r[7], r[1]])


def raw_load(engine: Engine, rows: list[tuple[Any, ...]]) -> float:
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        start = time.perf_counter()
        if engine.dialect.name == "postgresql":
            with cursor.copy(f"COPY purchases ({', '.join(COLUMNS)}) FROM STDIN") as copy:  # type: ignore[attr-defined]
                for r in rows:
                    copy.write_row(r)
        else:
            placeholders = ", ".join("?" for _ in COLUMNS)
            cursor.executemany(f"INSERT INTO purchases ({', '.join(COLUMNS)}) VALUES ({placeholders})", rows)
        raw.commit()
        return time.perf_counter() - start
    finally:
        raw.close()


def our_load(engine: Engine, path: Path) -> float:
    spec = KINDS["purchases"]
    start = time.perf_counter()
    with engine.begin() as connection:
        summary = import_rows(connection, spec, csv_source(path, spec.required, spec.optional), ImportOptions())
    elapsed = time.perf_counter() - start
    assert summary.inserted == summary.read, summary
    return elapsed


def fresh(kind: str, workdir: Path, pg_url: str | None) -> tuple[Engine, Any]:
    if kind == "sqlite":
        path = workdir / f"{uuid.uuid4().hex}.db"
        return make_engine(f"sqlite:///{path}"), None
    assert pg_url
    name = f"bench_{uuid.uuid4().hex[:10]}"
    admin = make_engine(pg_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    return make_engine(make_url(pg_url).set(database=name).render_as_string(hide_password=False)), (admin, name)


def drop(engine: Engine, handle: Any) -> None:
    engine.dispose()
    if handle:
        admin, name = handle
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _anon_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) / 1024
    return 0.0


def measure_import_memory(url: str, path: str) -> None:
    """(Run in a fresh process.) Import ``path``, sampling anonymous RSS; print peak and end."""
    peak = [_anon_mib()]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.02):
            peak[0] = max(peak[0], _anon_mib())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    our_load(make_engine(url), Path(path))
    done.set()
    sampler.join()
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{max(peak[0], _anon_mib()):.0f} {maxrss:.0f}")


def peak_rss_of_import(rows: int, members: int, titles: int, workdir: Path) -> tuple[float, float]:
    """Peak anonymous RSS and peak total RSS (MiB) of a fresh process that only imports a
    ``rows``-line file into SQLite. The difference is the database file mapped by SQLite's
    mmap: shared, reclaimable page cache, not memory the import holds."""
    path = workdir / f"purchases-{rows}.csv"
    write_csv(path, make_rows(rows, members, titles))
    engine, _ = fresh("sqlite", workdir, None)
    prepare(engine, members, titles)
    engine.dispose()
    code = (
        "from benchmarks.bench_import import measure_import_memory; "
        f"measure_import_memory({str(engine.url)!r}, {str(path)!r})"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    anon, total = (float(v) for v in out.stdout.split()[-2:])
    return anon, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--titles", type=int, default=20_000)
    parser.add_argument("--postgres", default=os.environ.get("BOOKCLUB_TEST_POSTGRES_URL"))
    parser.add_argument("--memory", action="store_true",
                        help="only: peak RSS of importing 100k, 400k and --rows lines (flat = streaming)")
    args = parser.parse_args()
    if args.memory:
        with tempfile.TemporaryDirectory() as tmp:
            for n in sorted({100_000, 400_000, args.rows}):
                anon, total = peak_rss_of_import(n, args.members, args.titles, Path(tmp))
                print(f"import of {n:>9,} lines: peak anonymous RSS {anon:,.0f} MiB "
                      f"(peak RSS with the mmap'd database file {total:,.0f} MiB)")
        return
    rows = make_rows(args.rows, args.members, args.titles)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        path = workdir / "purchases.csv"
        write_csv(path, rows)
        for kind in ["sqlite"] + (["postgresql"] if args.postgres else []):
            times = {}
            for label in ("raw", "ours"):
                engine, handle = fresh(kind, workdir, args.postgres)
                try:
                    prepare(engine, args.members, args.titles)
                    times[label] = raw_load(engine, rows) if label == "raw" else our_load(engine, path)
                finally:
                    drop(engine, handle)
            ratio = times["raw"] / times["ours"]
            print(f"{kind:10s} {args.rows:,} lines: raw driver {args.rows / times['raw']:,.0f} rows/s "
                  f"({times['raw']:.1f} s), bookclub import {args.rows / times['ours']:,.0f} rows/s "
                  f"({times['ours']:.1f} s): ratio {ratio:.2f} (target >= 0.5)")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB (includes the in-memory reference rows)")


if __name__ == "__main__":
    main()
