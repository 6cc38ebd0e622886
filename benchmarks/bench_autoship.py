"""The negative option's reads at size: a campaign's auto-ship lines, and the reads that leave
auto-ships and their returns out of members' own buying.

    nice .venv/bin/python -m benchmarks.bench_autoship build --postgres URL --sqlite PATH \\
        [--members 300000] [--lines 3000000] [--campaigns 8] [--shipped 30000] [--revision REV]
    nice .venv/bin/python -m benchmarks.bench_autoship time --postgres URL --sqlite PATH
    nice .venv/bin/python -m benchmarks.bench_autoship migrate --postgres URL --sqlite PATH [--revision REV]

``build`` writes the club into a new PostgreSQL database named by ``URL`` (created with an ICU
``en-US`` collation: a non-C collation, where ``LIKE 'prefix%'`` cannot use a plain b-tree
index) and into the SQLite file, at ``--revision`` (default: the newest). The club:
``--members`` members, 1,000 titles in 20 primary categories, ``--lines`` own order lines over
two years (3 % of them followed by a return), and ``--campaigns`` campaigns that each
auto-shipped ``--shipped`` members (a fifth of them sent it back).

``time`` times, with whatever code is importable (run it from an older checkout for the
"before"), each read once warm (best of ``--repeat``): a campaign's auto-ship members
(``shipped_member_keys``) and lines (``autoship_lines``), the value model's lines
(``read_line_amounts``, all and — when the code has it — ``own_orders``), the newest own line,
the segmentation's RFM (``rfm_aggregates``) and the category units (``category_units``).
``migrate`` brings both to ``--revision``, up or down (and ANALYZEs): the same club with and
without migration 0012's indexes. Never part of the test suite.

Figures: ``docs/benchmarks.md`` (the negative option's reads).
"""

from __future__ import annotations

import argparse
import datetime as dt
import inspect
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from recsys.storage.bulk import bulk_insert
from recsys.storage.db import make_engine, upgrade

START = dt.datetime(2024, 10, 1)
DAYS = 730
CAMPAIGN = 5  # the campaign whose auto-ships are looked up (of 1 … --campaigns)


def _create_postgres(url: str) -> None:
    parsed = make_url(url)
    admin = make_engine(parsed.set(database="postgres").render_as_string(hide_password=False),
                        isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)'))
        connection.execute(text(
            f'CREATE DATABASE "{parsed.database}" TEMPLATE template0 ENCODING \'UTF8\' '
            "LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'"
        ))
    admin.dispose()


def build(engine: Engine, members: int, lines: int, campaigns: int, shipped: int, revision: str) -> None:
    rng = np.random.default_rng(11)
    upgrade(engine, revision)
    with engine.begin() as connection:
        bulk_insert(connection, "categories", ("code", "name", "parent_code", "level"),
                    ((f"C{c:02d}", f"category {c}", None, 1) for c in range(20)))
        bulk_insert(connection, "members", ("id", "member_id", "name", "status", "channel"),
                    ((i, f"M{i:07d}", f"member {i}", "active", "mail") for i in range(1, members + 1)))
        bulk_insert(connection, "titles", ("id", "title_id", "title", "price", "in_stock"),
                    ((i, f"T{i:05d}", f"title {i}", Decimal("28.00"), True) for i in range(1, 1001)))
        bulk_insert(connection, "title_categories", ("title_key", "category_code", "is_primary"),
                    ((i, f"C{i % 20:02d}", True) for i in range(1, 1001)))
        member = rng.integers(1, members + 1, lines)
        title = rng.integers(1, 1001, lines)
        seconds = np.sort(rng.integers(0, DAYS * 86_400, lines))
        cents = rng.integers(900, 9_900, lines)
        returned = rng.random(lines) < 0.03

        def own() -> Iterator[tuple[Any, ...]]:
            for i in range(lines):
                at = START + dt.timedelta(seconds=int(seconds[i]))
                price = Decimal(int(cents[i])) / 100
                yield (f"L{i}", f"O{i}", int(member[i]), int(title[i]), 1, price, at, "web", "order")
                if returned[i]:
                    yield (f"R{i}", f"O{i}", int(member[i]), int(title[i]), -1, price, at + dt.timedelta(days=9),
                           "web", "order")

        def autoships() -> Iterator[tuple[Any, ...]]:
            for campaign in range(1, campaigns + 1):
                day = START + dt.timedelta(days=int(DAYS * campaign / (campaigns + 1)))
                keys = rng.choice(np.arange(1, members + 1), size=shipped, replace=False)
                back = rng.random(shipped) < 0.2
                for key, title_key, sent_back in zip(keys, rng.integers(1, 1001, shipped), back, strict=True):
                    line = f"autoship:{campaign}:{int(key)}"
                    yield (line, line, int(key), int(title_key), 1, Decimal("28.00"), day, "mail", "autoship")
                    if sent_back:
                        yield (f"back:{campaign}:{int(key)}", None, int(key), int(title_key), -1, Decimal("28.00"),
                               day + dt.timedelta(days=12), "mail", "order")

        columns = ("line_id", "order_id", "member_key", "title_key", "quantity", "unit_price", "purchased_at",
                   "channel", "kind")
        bulk_insert(connection, "purchases", columns, own())
        bulk_insert(connection, "purchases", columns, autoships())
    _analyze(engine)


def _migrate(engine: Engine, revision: str) -> None:
    from alembic import command
    from alembic.config import Config

    from recsys.storage.db import MIGRATIONS_DIR, current_revision

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["engine"] = engine
    if revision != "head" and (current_revision(engine) or "") > revision:  # revisions are numbered
        command.downgrade(config, revision)
    else:
        command.upgrade(config, revision)


def _analyze(engine: Engine) -> None:
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("ANALYZE"))


def _best(work: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = work()
        best = min(best, time.perf_counter() - t0)
    return best, result


def time_reads(engine: Engine, repeat: int) -> None:
    from recsys.storage import mailing, purchase_log, purchases, selections

    own = "own_orders" in inspect.signature(purchase_log.read_line_amounts).parameters
    as_of = START + dt.timedelta(days=DAYS)
    since = as_of - dt.timedelta(days=365)
    reads: list[tuple[str, Callable[[Any], Any], Callable[[Any], int]]] = [
        ("shipped_member_keys", lambda c: selections.shipped_member_keys(c, CAMPAIGN), len),
        ("autoship_lines", lambda c: selections.autoship_lines(c, CAMPAIGN), len),
        ("read_line_amounts (every line)", lambda c: purchase_log.read_line_amounts(c), len),
    ]
    if own:
        reads += [
            ("read_line_amounts (own orders)", lambda c: purchase_log.read_line_amounts(c, own_orders=True), len),
            ("newest_purchase (own orders)", lambda c: purchase_log.newest_purchase(c, own_orders=True), lambda r: 1),
        ]
    reads += [
        ("rfm_aggregates (365 days)", lambda c: purchases.rfm_aggregates(c, as_of, since),
         lambda r: int(r.frequency.sum())),
        ("category_units (730 days)", lambda c: mailing.category_units(c, as_of - dt.timedelta(days=730), as_of),
         lambda r: int(r.units.sum())),
    ]
    with engine.connect() as connection:
        for name, read, size in reads:
            if name.startswith(("read_line", "rfm", "category")):
                wall, result = _best(lambda read=read: read(connection), 1)  # type: ignore[misc]
            else:
                wall, result = _best(lambda read=read: read(connection), repeat)  # type: ignore[misc]
            print(f"  {name:<34} {wall * 1000:>10.1f} ms   ({size(result):,})", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=("build", "time", "migrate"))
    parser.add_argument("--postgres", help="a database URL; build drops and creates that database")
    parser.add_argument("--sqlite", type=Path, help="a SQLite file")
    parser.add_argument("--members", type=int, default=300_000)
    parser.add_argument("--lines", type=int, default=3_000_000)
    parser.add_argument("--campaigns", type=int, default=8)
    parser.add_argument("--shipped", type=int, default=30_000)
    parser.add_argument("--revision", default="head")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    targets: list[tuple[str, str]] = []
    if args.postgres:
        targets.append(("postgresql", args.postgres))
    if args.sqlite:
        targets.append(("sqlite", f"sqlite:///{args.sqlite.resolve()}"))
    for name, url in targets:
        if args.action == "build" and name == "postgresql":
            _create_postgres(url)
        if args.action == "build" and name == "sqlite" and args.sqlite.exists():
            args.sqlite.unlink()
        engine = make_engine(url)
        try:
            t0 = time.perf_counter()
            if args.action == "build":
                build(engine, args.members, args.lines, args.campaigns, args.shipped, args.revision)
                print(f"{name}: built at {args.revision} in {time.perf_counter() - t0:.0f} s", flush=True)
            elif args.action == "migrate":
                _migrate(engine, args.revision)
                _analyze(engine)
                print(f"{name}: at {args.revision} in {time.perf_counter() - t0:.1f} s", flush=True)
            else:
                print(f"{name}:", flush=True)
                time_reads(engine, args.repeat)
        finally:
            engine.dispose()


if __name__ == "__main__":
    main()
