"""The campaign loop at size: contacts + holdouts, matchback, the report — each against a
plain reference measured on the same data in the same run.

    nice .venv/bin/python -m benchmarks.bench_campaign --members 1500000 --lines 1000000 \\
        [--history 1000000] [--postgres URL] [--skip-sqlite]

The club: ``--members`` members segmented into 4 segments × 4 tiers (one edition each),
``--history`` order lines before the in-home date and ``--lines`` in the response
window (a tenth of the mailed responders' lines carry the key code).

- **contacts**: :func:`campaign.contacts.write_quarter_contacts` — audience read, the
  seeded hash of every member id, suppression, one contact row per member written in
  bulk — against the driver writing the same number of contact rows, already made
  (``recsys.storage.bulk``: executemany / COPY).
- **matchback**: :func:`recsys.storage.matches.match_orders` — every line of the
  window classified, credits computed, rows written — against a plain SQL join of the
  same lines with the same contacts written to a table (``INSERT … SELECT … JOIN``).
- **report**: :func:`campaign.report.campaign_report` against a plain ``GROUP BY`` of
  the window's lines per contact (the outcome query alone, no statistics).

Ratios are ours / reference (wall clock); CPU seconds of this process are shown beside
(the database server's CPU is not in them for PostgreSQL). Never part of the test suite.
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from campaign.contacts import PrintFiles, write_quarter_contacts
from campaign.report import campaign_report
from recsys.settings import CampaignSettings
from recsys.storage import campaigns as campaigns_db
from recsys.storage import contacts as contacts_db
from recsys.storage import matches as matches_db
from recsys.storage import plans as plans_db
from recsys.storage import segments as segments_db
from recsys.storage.bulk import bulk_insert
from recsys.storage.db import make_engine, upgrade

QUARTER = "2026Q4"
IN_HOME = dt.date(2026, 10, 5)
TIERS = ("core", "regular", "occasional", "lapsed")
SETTINGS = CampaignSettings(resamples=2000)
FILES = PrintFiles(member=lambda m: f"{QUARTER}/members/{m}.pdf", segment=lambda s: f"{QUARTER}/segment-{s}.pdf")


def timed(work: Callable[[], Any]) -> tuple[float, float, Any]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = work()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def build(engine: Engine, members: int, history: int, seed: int = 7) -> None:
    """Members, segments, plans, titles and the history lines (before the in-home date)."""
    rng = np.random.default_rng(seed)
    upgrade(engine)
    with engine.begin() as connection:
        bulk_insert(connection, "members", ("id", "member_id", "name", "address", "status", "channel"),
                    ((i, f"M{i:07d}", f"member {i}", f"{i} Book Street", "active", "mail") for i in range(1, members + 1)))
        bulk_insert(connection, "titles", ("id", "title_id", "title", "price", "in_stock"),
                    ((i, f"T{i:05d}", f"title {i}", Decimal("28.00"), True) for i in range(1, 1001)))
        segment = rng.integers(0, 4, members)
        tier = rng.integers(0, 4, members)
        bulk_insert(connection, "member_segments",
                    ("quarter", "member_key", "tier", "segment", "recency_days", "frequency", "monetary"),
                    ((QUARTER, i + 1, TIERS[tier[i]], int(segment[i]), 30, 2, 50.0) for i in range(members)))
        segments_db.store_segment_profiles(
            connection, QUARTER, [(s, f"segment {s}", int((segment == s).sum()), "{}", "bench") for s in range(4)]
        )
        for s in range(4):
            plans_db.store_plan(connection, QUARTER, s, "bench", f"hash{s}", "{}")
        _lines(connection, "H", history, members, rng, IN_HOME - dt.timedelta(days=700), 690, None)
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("ANALYZE"))


def _lines(connection: Any, prefix: str, n: int, members: int, rng: np.random.Generator,
           start: dt.date, days: int, codes: list[str] | None, member_keys: np.ndarray | None = None) -> None:
    keys = member_keys if member_keys is not None else rng.integers(1, members + 1, n)
    title = rng.integers(1, 1001, n)
    seconds = rng.integers(0, days * 86_400, n)
    cents = rng.integers(900, 9_900, n)
    keyed = rng.random(n) < 0.1 if codes else np.zeros(n, dtype=np.bool_)
    code_of = rng.integers(0, len(codes), n) if codes else np.zeros(n, dtype=np.int64)
    base = dt.datetime.combine(start, dt.time())

    def rows() -> Iterator[tuple[Any, ...]]:
        for i in range(n):
            line = f"{prefix}{i}"
            yield (line, line, int(keys[i]), int(title[i]), 1, Decimal(int(cents[i])) / 100,
                   base + dt.timedelta(seconds=int(seconds[i])), "mail",
                   codes[int(code_of[i])] if codes and keyed[i] else None)

    bulk_insert(connection, "purchases",
                ("line_id", "order_id", "member_key", "title_key", "quantity", "unit_price", "purchased_at",
                 "channel", "key_code"), rows())


def bench(engine: Engine, label: str, members: int, lines: int, history: int) -> dict[str, float]:
    print(f"\n{label}: {members:,} members × 4 editions, {lines:,} lines in the window, {history:,} before it")
    t0 = time.perf_counter()
    build(engine, members, history)
    print(f"  club built in {time.perf_counter() - t0:.0f} s")
    out: dict[str, float] = {}

    # contacts + holdout assignment
    def contacts() -> int:
        with engine.begin() as connection:
            return write_quarter_contacts(
                connection, SETTINGS, QUARTER, dt.date(2026, 10, 1), files=FILES, in_home=IN_HOME, personal=0
            ).written

    wall, cpu, written = timed(contacts)
    now = dt.datetime(2026, 9, 1)
    cost = Decimal("2.5")

    def rows() -> Iterator[tuple[Any, ...]]:  # the same number of contact rows, already decided
        for i in range(1, members + 1):
            yield (999_999, i, 1, 1, "mailed", None, 0, "core", 0.05, IN_HOME, cost, "v", 1, "f", now)

    with engine.begin() as connection:  # a campaign of its own for the reference rows
        connection.execute(text(
            "INSERT INTO campaigns (id, name, in_home_date, response_days, late_days, holdout_share, "
            "universal_holdout_share, seed, created_at) VALUES (999999, 'reference', :d, 90, 0, 0.05, 0, 1, :t)"
        ), {"d": IN_HOME, "t": now})
    ref_wall, ref_cpu, _ = timed(lambda: _write_reference(engine, rows()))
    out["contacts"] = wall
    print(f"  contacts + holdouts: {written:,} rows in {wall:.1f} s ({cpu:.1f} s CPU); raw bulk write of the "
          f"same rows {ref_wall:.1f} s ({ref_cpu:.1f} s CPU) — ratio {wall / ref_wall:.2f}")
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM campaign_contacts WHERE campaign_id = 999999"))
        campaign = campaigns_db.campaign_by_name(connection, QUARTER)
        assert campaign is not None
        codes = [t.key_code for t in campaigns_db.treatments(connection, campaign.id) if t.key_code]
        mailed = np.asarray(connection.execute(text(
            "SELECT member_key FROM campaign_contacts WHERE campaign_id = :c"), {"c": campaign.id}).scalars().all())
    rng = np.random.default_rng(11)
    with engine.begin() as connection:  # the window's lines: contacted members, a few strangers' none
        _lines(connection, "W", lines, members, rng, IN_HOME, 90, codes, rng.choice(mailed, size=lines))
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("ANALYZE"))

    # matchback against a plain join written to a table
    def matchback() -> matches_db.MatchCounts:
        with engine.begin() as connection:
            return matches_db.match_orders(connection, campaign.id)

    def plain_join() -> int:
        name = f"bench_join_{uuid.uuid4().hex[:6]}"
        with engine.begin() as connection:
            connection.execute(text(
                f"CREATE TABLE {name} AS SELECT p.id AS purchase_id, c.id AS contact_id "
                "FROM campaign_contacts c JOIN purchases p ON p.member_key = c.member_key "
                "AND p.purchased_at >= :s AND p.purchased_at < :e "
                "WHERE c.campaign_id = :c AND c.arm IN ('mailed', 'web')"
            ), {"s": IN_HOME, "e": IN_HOME + dt.timedelta(days=120), "c": campaign.id})
            n = int(connection.execute(text(f"SELECT count(*) FROM {name}")).scalar_one())
            connection.execute(text(f"DROP TABLE {name}"))
        return n

    ref_wall, ref_cpu, joined = timed(plain_join)
    wall, cpu, counts = timed(matchback)
    again, _cpu, repeat = timed(matchback)
    out["matchback"] = wall
    print(f"  matchback: {counts.lines:,} lines (direct {counts.direct:,}, inferred {counts.inferred:,}, "
          f"unattributed {counts.unattributed:,}) in {wall:.1f} s ({cpu:.1f} s CPU); plain join of the same "
          f"{joined:,} pairs into a table {ref_wall:.1f} s — ratio {wall / ref_wall:.2f}; "
          f"re-run {again:.1f} s, {repeat.lines} new lines")

    # the report against the outcome query alone
    def plain_outcomes() -> int:
        with engine.connect() as connection:
            return len(connection.execute(text(
                "SELECT c.id, count(DISTINCT p.order_id), sum(p.quantity * p.unit_price) "
                "FROM campaign_contacts c JOIN purchases p ON p.member_key = c.member_key "
                "AND p.purchased_at >= :s AND p.purchased_at < :e "
                "WHERE c.campaign_id = :c AND c.arm IN ('mailed', 'holdout') GROUP BY c.id"
            ), {"s": IN_HOME, "e": IN_HOME + dt.timedelta(days=90), "c": campaign.id}).all())

    def report() -> Any:
        with engine.connect() as connection:
            return campaign_report(connection, QUARTER, SETTINGS)

    ref_wall, _ref_cpu, buyers = timed(plain_outcomes)
    wall, cpu, result = timed(report)
    out["report"] = wall
    methods = sorted({a.effect.revenue.method for a in result.arms})
    print(f"  report: {len(result.arms)} arms ({', '.join(methods)} for money), SRM "
          f"{'MISMATCH' if result.mismatch else 'ok'}, in {wall:.1f} s ({cpu:.1f} s CPU); the outcome "
          f"GROUP BY alone ({buyers:,} buying contacts) {ref_wall:.1f} s — ratio {wall / ref_wall:.2f}")
    return out


def _write_reference(engine: Engine, rows: Iterator[tuple[Any, ...]]) -> None:
    with engine.begin() as connection:
        bulk_insert(connection, "campaign_contacts", contacts_db.CONTACT_COLUMNS, rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=1_500_000)
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--history", type=int, default=1_000_000)
    parser.add_argument("--postgres", help="a PostgreSQL server URL (a database is created and dropped)")
    parser.add_argument("--skip-sqlite", action="store_true")
    args = parser.parse_args()
    if not args.skip_sqlite:
        with tempfile.TemporaryDirectory(prefix="bench-campaign-") as folder:
            engine = make_engine(f"sqlite:///{Path(folder) / 'bench.db'}")
            bench(engine, "SQLite", args.members, args.lines, args.history)
            engine.dispose()
    if args.postgres:
        admin = make_engine(args.postgres, isolation_level="AUTOCOMMIT")
        name = f"bench_campaign_{uuid.uuid4().hex[:8]}"
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            engine = make_engine(make_url(args.postgres).set(database=name).render_as_string(hide_password=False))
            bench(engine, "PostgreSQL", args.members, args.lines, args.history)
            engine.dispose()
        finally:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


if __name__ == "__main__":
    main()
