"""Page times of the staff console on an existing club (e.g. a 100k-member demo quarter).

    BOOKCLUB_DATA_DIR=/tmp/c100k .venv/bin/bookclub quarter --members 100000 --titles 5000 --no-serve
    BOOKCLUB_DATA_DIR=/tmp/c100k .venv/bin/python -m benchmarks.bench_console [--repeat 5]

In process (the app through ``TestClient``: no network, the same route code), logged in
with a fresh admin key. For every page: the first request (aggregates such as the overview's
counters and the segment transition table are then computed in the background, timed
separately, and kept for ``console.aggregate_seconds``), then the median and worst of ``--repeat`` more, and the
number of SQL statements the last one issued. Prints a Markdown table. Not a test.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import event

from api.app import create_app
from recsys.settings import Settings
from recsys.storage import campaigns as campaigns_db
from recsys.storage import console_reads
from recsys.storage import members as members_db
from recsys.storage import segments as segments_db
from recsys.storage.apikeys import create_key, revoke_key
from recsys.storage.db import engine_from_settings
from training.registry import ModelRegistry


def _pages(settings: Settings) -> list[str]:
    engine = engine_from_settings(settings)
    with engine.connect() as connection:
        member = members_db.search_members(connection, "M", limit=1)[0].member_id
        title = console_reads.search_titles(connection, "", limit=1)[0].title_id
        quarters = segments_db.quarters_with_segments(connection)
        campaign = next(iter(campaigns_db.campaigns(connection)), None)
    engine.dispose()
    quarter = quarters[-1] if quarters else "2026Q4"
    versions = [i.version for i in ModelRegistry(settings.models_dir).list() if i.status != "damaged"]
    compare = [f"/ui/models/compare?a={versions[-2]}&b={versions[-1]}"] if len(versions) > 1 else []
    return [
        "/ui/",
        "/ui/members?q=M00001",
        f"/ui/members/{member}",
        f"/ui/members/{member}?f=1&include_purchased=true&in_stock_only=true",
        f"/ui/members/{member}?rank={title}",
        "/ui/titles?q=",
        f"/ui/titles/{title}",
        f"/ui/segments?quarter={quarter}",
        f"/ui/segments/{quarter}/0",
        f"/ui/catalogs?quarter={quarter}",
        f"/ui/catalogs/{quarter}/proofs",
        f"/ui/catalogs/{quarter}/proofs?tier=core",
        f"/ui/catalogs/{quarter}/proofs?sample=2",
        f"/ui/catalogs/{quarter}/proofs?flag=few_picks",
        "/ui/models",
        *compare,
        "/ui/campaigns",
        *([f"/ui/campaigns/{campaign.id}"] if campaign else []),
        "/ui/jobs",
        "/ui/data",
        "/ui/audit",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    settings = Settings.model_validate({})
    engine = engine_from_settings(settings)
    with engine.begin() as connection:
        key, info = create_key(connection, "admin", "bench_console")
    statements: list[str] = []

    def count(*_args: Any) -> None:
        statements.append("x")

    app = create_app(settings, engine=engine)
    rows = []
    with TestClient(app, base_url="http://bench") as client:
        origin = {"Origin": "http://bench"}
        assert client.post("/ui/login", data={"key": key}, headers=origin, follow_redirects=False).status_code == 303
        event.listen(engine, "before_cursor_execute", count)
        for path in _pages(settings):
            clock = time.perf_counter()
            status = client.get(path).status_code
            first = time.perf_counter() - clock
            clock = time.perf_counter()
            aggregates = getattr(app.state, "console_aggregates", None)
            if aggregates is not None:
                aggregates.join()
            background = time.perf_counter() - clock
            times = []
            for _ in range(args.repeat):
                statements.clear()
                clock = time.perf_counter()
                client.get(path)
                times.append(time.perf_counter() - clock)
            rows.append((path, status, first, background, statistics.median(times), max(times), len(statements)))
    with engine.begin() as connection:
        revoke_key(connection, info.prefix)
    engine.dispose()
    print(f"club: {settings.db_url}")
    print("| page | status | first (ms) | then in the background (ms) | median (ms) | worst (ms) | SQL statements |")
    print("|---|---|---|---|---|---|---|")
    for path, status, first, background, median, worst, n in rows:
        print(
            f"| `{path}` | {status} | {first * 1000:.0f} | {background * 1000:.0f} | {median * 1000:.0f} "
            f"| {worst * 1000:.0f} | {n} |"
        )


if __name__ == "__main__":
    main()
