"""Member editions through real uvicorn (``bookclub serve --workers 2``): eight parallel first
requests for each of five members. Every answer is the complete edition, the same bytes for
each member, and each edition is rendered once (the key may render only five)."""

from __future__ import annotations

import io
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from pypdf import PdfReader

from catalog.paths import complete_edition, edition_path
from recsys.settings import Settings
from recsys.storage import segments as segments_db
from recsys.storage.apikeys import create_key
from recsys.storage.db import make_engine
from tests.api.test_serve import free_port, wait_ready
from tests.catalog.conftest import QUARTER, Club

ROOT = Path(__file__).resolve().parents[2]
MEMBERS, PARALLEL = 5, 8


def _copy_club(club: Club, data_dir: Path) -> None:
    """The club's database (an online backup) and model registry, in a data folder of its own."""
    data_dir.mkdir(parents=True)
    source = sqlite3.connect(club.settings.data_dir / "bookclub.db")
    target = sqlite3.connect(data_dir / "bookclub.db")
    with target:
        source.backup(target)
    source.close()
    target.close()
    shutil.copytree(club.settings.models_dir, data_dir / "models")


@pytest.mark.slow
def test_parallel_first_requests_get_one_complete_edition(club: Club, tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    _copy_club(club, data_dir)
    engine = make_engine(f"sqlite:///{data_dir / 'bookclub.db'}")
    with engine.begin() as connection:
        key, _ = create_key(connection, "editions", "parallel test")
        members: list[str] = []
        for plan in club.plans:  # members of every segment
            members += segments_db.members_of_segment(connection, QUARTER, plan.segment)[:2]
    engine.dispose()
    members = members[:MEMBERS]
    assert len(members) == MEMBERS

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BOOKCLUB_", "PROMETHEUS_"))}
    catalog = club.settings.catalog
    env.update(
        BOOKCLUB_DATA_DIR=str(data_dir),
        BOOKCLUB_CATALOG__TITLES_PER_CATALOG=str(catalog.titles_per_catalog),
        BOOKCLUB_CATALOG__MEMBERS_PER_BATCH=str(catalog.members_per_batch),
        BOOKCLUB_CATALOG__PICKS_PER_MEMBER=str(catalog.picks_per_member),
        BOOKCLUB_API__RENDER_QUEUE=str(MEMBERS * PARALLEL),
        BOOKCLUB_API__RENDER_WAIT_SECONDS="600",
        # one render per member and no more: a second render of any member would be a 429
        BOOKCLUB_API__RENDER_BURST=str(MEMBERS),
        BOOKCLUB_API__RENDER_RATE_PER_MINUTE="0.001",
    )
    log = (tmp_path / "serve.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "bookclub_cli.main", "serve", "--port", str(port), "--workers", "2"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, time.monotonic() + 60)

        def fetch(member_id: str) -> httpx.Response:
            return httpx.get(
                f"{base}/v1/members/{member_id}/catalog.pdf", params={"quarter": QUARTER},
                headers={"Authorization": f"Bearer {key}"}, timeout=600,
            )

        with ThreadPoolExecutor(MEMBERS * PARALLEL) as pool:
            order = [m for m in members for _ in range(PARALLEL)]
            answers = list(zip(order, pool.map(fetch, order), strict=True))
    finally:
        os.killpg(server.pid, signal.SIGINT)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()
    output = (tmp_path / "serve.log").read_text()
    assert "shorter than Content-Length" not in output
    settings = Settings(data_dir=data_dir)
    for member_id in members:
        bodies = {r.content for m, r in answers if m == member_id}
        statuses = [r.status_code for m, r in answers if m == member_id]
        assert statuses == [200] * PARALLEL, (member_id, statuses, output[-2000:])
        assert len(bodies) == 1, f"{member_id}: {len(bodies)} different answers"
        (body,) = bodies
        for m, r in answers:
            if m == member_id:
                assert int(r.headers["content-length"]) == len(r.content)
        reader = PdfReader(io.BytesIO(body))
        assert len(reader.pages) > 2 and member_id in (reader.pages[0].extract_text() or "")
        on_disk = complete_edition(edition_path(settings, QUARTER, member_id))
        assert on_disk is not None and on_disk.data == body
