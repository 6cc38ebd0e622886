"""Catalog files on disk: complete or absent. A writer killed with SIGKILL at the write, a
full disk mid-write, a truncated or empty file left by an older run: nothing broken is
reused or served, and the next render works."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader

from catalog.paths import complete_edition, complete_pdf, sidecar_path
from catalog.production import member_edition, render_member_editions, render_segment_catalogs
from recsys.errors import DiskFullError
from recsys.files import is_temp
from recsys.storage import plans as plans_db
from recsys.storage import segments as segments_db
from tests.catalog.conftest import QUARTER, Club
from tests.disk import fill_disk_under

pytestmark = pytest.mark.slow  # renders PDFs

ROOT = Path(__file__).resolve().parents[2]

# The child renders segment 0's catalog into OUT and stops dead (waits forever, to be killed)
# at MOMENT: "open" = the first file opened for writing there (a .pdf or its temporary file),
# "rename" = the moment a file is renamed over segment-0.pdf. Audit hooks see what any
# implementation does, in-place write or temporary file.
CHILD = textwrap.dedent(
    """
    import os, sys, threading
    from pathlib import Path
    out, marker, moment, data_dir = Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]

    def stop_here():
        with open(marker, "w"):
            pass
        threading.Event().wait()

    def hook(event, args):
        if moment == "open" and event == "open":
            path, mode, flags = args
            name = os.fspath(path) if isinstance(path, (str, bytes, os.PathLike)) else ""
            name = name.decode() if isinstance(name, bytes) else name
            writing = (mode is not None and any(c in mode for c in "wxa")) or (
                mode is None and isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR))
            if writing and name.startswith(str(out)) and name.endswith((".pdf", ".tmp")):
                stop_here()
        if moment == "rename" and event == "os.rename" and os.fspath(args[1]).endswith("segment-0.pdf"):
            stop_here()

    from catalog.planning import stored_plans
    from catalog.production import render_segment_catalogs
    from recsys.storage.db import make_engine
    from tests.catalog.conftest import QUARTER, club_settings

    settings = club_settings(Path(data_dir))
    engine = make_engine(settings.db_url)
    with engine.connect() as connection:
        plans = [p for p in stored_plans(connection, QUARTER) if p.segment == 0]
        sys.addaudithook(hook)
        render_segment_catalogs(connection, settings, QUARTER, plans, out_dir=out)
    """
)


def _kill_at(moment: str, club: Club, out: Path, tmp_path: Path) -> None:
    marker = tmp_path / f"{moment}.reached"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(out), str(marker), moment, str(club.settings.data_dir)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 120  # a guard against a hung child, not a timing assertion
        while not marker.exists() and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marker.exists(), f"the child never reached {moment!r}: {child.communicate()[0]!r}"
        os.kill(child.pid, signal.SIGKILL)
        child.wait(30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        if child.stdout is not None:
            child.stdout.close()


@pytest.mark.parametrize("moment", ["open", "rename"])
def test_kill_9_while_writing_a_segment_catalog(club: Club, tmp_path: Path, moment: str) -> None:
    out = tmp_path / "catalogs"
    _kill_at(moment, club, out, tmp_path)
    final = out / "segment-0.pdf"
    assert not final.exists(), f"{final.stat().st_size} bytes at the final name after kill -9"
    assert not sidecar_path(final).exists()
    # the next render works, leaves no temporary file, and the members of the segment get editions
    with club.engine.connect() as connection:
        render_segment_catalogs(connection, club.settings, QUARTER, club.plans[:1], out_dir=out)
        member_id = segments_db.members_of_segment(connection, QUARTER, 0)[0]
        editions = render_member_editions(
            connection, club.model, club.settings, QUARTER, club.plans, [member_id], out_dir=out
        )
    pdf = complete_pdf(final)
    assert pdf is not None and len(PdfReader(io.BytesIO(pdf.data)).pages) > 2
    assert not [p.name for p in out.iterdir() if is_temp(p)]
    assert complete_edition(editions[member_id]) is not None


def test_an_empty_or_cut_short_catalog_is_rendered_again(club: Club, tmp_path: Path) -> None:
    with club.engine.connect() as connection:
        path = render_segment_catalogs(connection, club.settings, QUARTER, club.plans[:1], out_dir=tmp_path)[0]
        whole = path.read_bytes()
        for broken in (b"", whole[: len(whole) // 2]):
            path.write_bytes(broken)  # what an older run or another program left
            assert complete_pdf(path) is None
            render_segment_catalogs(connection, club.settings, QUARTER, club.plans[:1], out_dir=tmp_path)
            again = complete_pdf(path)
            assert again is not None and len(again.data) > len(broken)
        # a sidecar of the old format (plan digest only) next to a 0-byte file: not trusted
        digest = json.loads(sidecar_path(path).read_text())["digest"]
        path.write_bytes(b"")
        sidecar_path(path).write_text(json.dumps({"digest": digest, "pages": 3, "segment": 0}))
        render_segment_catalogs(connection, club.settings, QUARTER, club.plans[:1], out_dir=tmp_path)
    assert complete_pdf(path) is not None


def test_a_cut_short_edition_is_never_served(club: Club, tmp_path: Path) -> None:
    settings = club.settings.model_copy(update={"data_dir": tmp_path / "var"})
    with club.engine.connect() as connection:
        member_id = segments_db.members_of_segment(connection, QUARTER, 1)[0]

    def plans(connection: Any) -> Any:
        from catalog.plan import CatalogPlan

        return [CatalogPlan.from_json(r["plan_json"]) for r in plans_db.plans_of_quarter(connection, QUARTER)]

    first = member_edition(club.engine.connect, club.model, settings, QUARTER, plans, member_id)
    path = tmp_path / "var" / "catalogs" / QUARTER / "members" / f"{member_id}.pdf"
    path.write_bytes(first.data[:1000])
    assert complete_edition(path) is None
    again = member_edition(club.engine.connect, club.model, settings, QUARTER, plans, member_id)
    assert len(again.data) > 1000 and PdfReader(io.BytesIO(again.data)).pages
    # a segment catalog rendered anew (another design) makes the editions merged with the old stale
    redesigned = settings.model_copy(
        update={"catalog": settings.catalog.model_copy(update={"club_name": "另一个书友会"})}
    )
    with club.engine.connect() as connection:
        render_segment_catalogs(connection, redesigned, QUARTER, [p for p in club.plans if p.segment == 1])
    assert complete_edition(path) is None


def test_a_full_disk_mid_write_leaves_nothing_and_says_so(
    club: Club, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as patch:
        fill_disk_under(tmp_path, patch)
        with club.engine.connect() as connection, pytest.raises(DiskFullError, match="no space left"):
            render_segment_catalogs(connection, club.settings, QUARTER, club.plans[:1], out_dir=tmp_path)
    assert [p.name for p in tmp_path.iterdir() if p.is_file()] == []  # no PDF, sidecar or temp
    with club.engine.connect() as connection:
        path = render_segment_catalogs(connection, club.settings, QUARTER, club.plans[:1], out_dir=tmp_path)[0]
    assert complete_pdf(path) is not None
