"""Demo data: generation and load time, peak memory, and our load against the raw driver.

    .venv/bin/python benchmarks/bench_demo_data.py                 # 100k members, 2M lines, SQLite
    .venv/bin/python benchmarks/bench_demo_data.py --postgres URL  # and PostgreSQL (or
                                                                   # BOOKCLUB_TEST_POSTGRES_URL)
    .venv/bin/python benchmarks/bench_demo_data.py --full          # 1.5M members, 50k titles, 20M

Each backend runs in a child process so its peak RSS is its own. The reference is
the raw driver writing the same purchase rows into a fresh schema in the same run:
``sqlite3`` ``executemany`` in one transaction, psycopg ``COPY``. Not part of the tests.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import Engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from demo.generate import (  # noqa: E402
    DemoSpec,
    club_categories,
    generate_members,
    generate_titles,
    purchase_chunks,
)
from demo.load import _PURCHASE_COLUMNS, _purchase_rows, load_demo  # noqa: E402
from recsys.storage.db import make_engine, upgrade  # noqa: E402

CLC = Path(os.environ.get("BOOKCLUB_SHARED_DATA_DIR", ROOT.parent / "shared" / "data"))
END = dt.date(2026, 11, 22)


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _spec(args: argparse.Namespace) -> DemoSpec:
    return DemoSpec(
        members=args.members, titles=args.titles, years=3, seed=1, end_date=END,
        purchases=args.purchases,
    )  # fmt: skip


def _generate_only(spec: DemoSpec, codes: set[str]) -> tuple[float, int]:
    started = time.perf_counter()
    titles = generate_titles(spec, club_categories(codes))
    members = generate_members(spec, titles)
    lines = sum(len(chunk.order_no) for chunk in purchase_chunks(spec, titles, members))
    return time.perf_counter() - started, lines


def _raw_reference(engine: Engine, spec: DemoSpec) -> float:
    """Seconds for the bare driver to write the same purchase rows (after their parents)."""
    from sqlalchemy import select

    from recsys.storage.schema import Category

    with engine.connect() as connection:
        codes = set(connection.scalars(select(Category.code)))
    titles = generate_titles(spec, club_categories(codes))
    members = generate_members(spec, titles)
    chunks = purchase_chunks(spec, titles, members)
    cols = ", ".join(_PURCHASE_COLUMNS)
    seconds = 0.0
    raw: Any = engine.raw_connection().driver_connection
    if engine.dialect.name == "sqlite":
        cursor = raw.cursor()
        cursor.execute("PRAGMA foreign_keys=OFF")
        sql = f"INSERT INTO purchases ({cols}) VALUES ({', '.join('?' * len(_PURCHASE_COLUMNS))})"
        cursor.execute("BEGIN")
        for chunk in chunks:
            rows = list(_purchase_rows(chunk))
            started = time.perf_counter()
            cursor.executemany(sql, rows)
            seconds += time.perf_counter() - started
        started = time.perf_counter()
        raw.commit()
        seconds += time.perf_counter() - started
    else:
        with raw.cursor() as cursor:
            cursor.execute("SET session_replication_role = replica")  # no FK checks: no parents
            for chunk in chunks:
                rows = list(_purchase_rows(chunk))
                started = time.perf_counter()
                with cursor.copy(f"COPY purchases ({cols}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
                seconds += time.perf_counter() - started
        started = time.perf_counter()
        raw.commit()
        seconds += time.perf_counter() - started
    return seconds


def run_one(backend: str, url: str, args: argparse.Namespace) -> dict[str, Any]:
    """In this process: generate only, then our full load, then the raw reference."""
    spec = _spec(args)
    clc = CLC / "clc" / "clc_level1_2.csv"
    engine = make_engine(url)
    upgrade(engine)
    from recsys.storage.categories import read_clc

    gen_seconds, lines = _generate_only(spec, {n.code for n in read_clc(clc)})
    gen_peak = _peak_mib()
    summary = load_demo(engine, spec, clc, replace=True)
    load_peak = _peak_mib()
    engine.dispose()
    ref_engine = make_engine(args.ref_url)
    upgrade(ref_engine)
    with ref_engine.begin() as connection:
        from recsys.storage.categories import ensure_categories

        ensure_categories(connection, clc)
    ref_seconds = _raw_reference(ref_engine, spec)
    ref_engine.dispose()
    rows = sum(summary.counts.values())
    return {
        "backend": backend, "lines": lines, "rows": rows, "generate_s": gen_seconds,
        "load_s": summary.seconds, "rows_per_s": rows / summary.seconds,
        "lines_per_s": summary.counts["purchases"] / summary.seconds,
        "raw_purchases_s": ref_seconds,
        "raw_lines_per_s": summary.counts["purchases"] / ref_seconds,
        "peak_generate_mib": gen_peak, "peak_load_mib": load_peak,
        "top20_share": summary.top20_revenue_share,
    }  # fmt: skip


def _child(backend: str, url: str, ref_url: str, args: argparse.Namespace) -> dict[str, Any]:
    command = [
        sys.executable, __file__, "--child", backend, "--url", url, "--ref-url", ref_url,
        "--members", str(args.members), "--titles", str(args.titles),
        "--purchases", str(args.purchases),
    ]  # fmt: skip
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _postgres_databases(base: str) -> tuple[str, str, Engine]:
    admin = make_engine(base, isolation_level="AUTOCOMMIT")
    names = [f"bench_demo_{uuid.uuid4().hex[:8]}" for _ in range(2)]
    with admin.connect() as connection:
        for name in names:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    urls = [make_url(base).set(database=n).render_as_string(hide_password=False) for n in names]
    return urls[0], urls[1], admin


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--full", action="store_true", help="1.5M members, 50k titles, 20M lines")
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--titles", type=int, default=10_000)
    parser.add_argument("--purchases", type=int, default=2_000_000)
    parser.add_argument(
        "--postgres",
        default=os.environ.get("BOOKCLUB_TEST_POSTGRES_URL"),
        help="PostgreSQL server URL (default: BOOKCLUB_TEST_POSTGRES_URL)",
    )
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--ref-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.full:
        args.members, args.titles, args.purchases = 1_500_000, 50_000, 20_000_000
    if args.child:
        print(json.dumps(run_one(args.child, args.url, args)))
        return
    print(f"demo data: {args.members:,} members, {args.titles:,} titles, ~{args.purchases:,} lines")
    results = []
    if not args.no_sqlite:
        with tempfile.TemporaryDirectory() as tmp:
            ours, ref = f"sqlite:///{tmp}/ours.db", f"sqlite:///{tmp}/raw.db"
            results.append(_child("sqlite", ours, ref, args))
    if args.postgres:
        ours, ref, admin = _postgres_databases(args.postgres)
        try:
            results.append(_child("postgresql", ours, ref, args))
        finally:
            with admin.connect() as connection:
                for url in (ours, ref):
                    name = make_url(url).database
                    connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
    for r in results:
        print(
            f"{r['backend']:>10}: generate {r['generate_s']:6.1f} s ({r['lines']:,} lines) | "
            f"load {r['load_s']:6.1f} s, {r['rows_per_s']:,.0f} rows/s, "
            f"{r['lines_per_s']:,.0f} lines/s | raw driver {r['raw_lines_per_s']:,.0f} lines/s "
            f"→ raw/ours lines/s {r['raw_lines_per_s'] / r['lines_per_s']:.2f} | "
            f"peak RSS {r['peak_load_mib']:,.0f} MiB "
            f"(generation alone {r['peak_generate_mib']:,.0f})"
            f" | top 20 % = {r['top20_share']:.0%} of revenue"
        )


if __name__ == "__main__":
    main()
