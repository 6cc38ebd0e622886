"""Every member's edition over Dask distributed: a local cluster of 2 worker processes."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader
from sqlalchemy import Engine, select

from catalog.fanout import (
    Batch,
    FanoutResult,
    check_placement,
    dask_client,
    make_batches,
    prepare_job,
    render_all_editions,
    run_batches,
)
from catalog.planning import plan_quarter
from catalog.segments import segment_quarter
from demo.generate import DemoSpec
from demo.load import load_demo
from recsys.errors import ConfigurationError, UnknownMemberError
from recsys.settings import Settings
from recsys.storage import segments as segments_db
from recsys.storage.schema import Member
from tests.catalog.conftest import QUARTER, Club, mail_everyone
from tests.conftest import shared_data

BOGUS = "NO-SUCH-MEMBER"


def test_batches_are_per_segment_and_sized() -> None:
    labels = {"a": 0, "b": 1, "c": 0, "d": 0, "e": 1}
    batches = make_batches(labels, ["a", "b", "c", "d", "e"], 2)
    assert [(b.segment, b.member_ids) for b in batches] == [
        (0, ("a", "c")), (0, ("d",)), (1, ("b", "e")),
    ]
    assert [b.index for b in batches] == [0, 1, 2]
    with pytest.raises(UnknownMemberError, match="'zz'"):
        make_batches(labels, ["a", "zz"], 2)


def test_every_batch_runs_when_there_are_more_batches_than_the_window(monkeypatch: pytest.MonkeyPatch) -> None:
    """More batches than ``in_flight``: each is submitted once and lands (the first window was
    taken with ``zip(pending, range(window))``, which drew one batch too many and dropped it —
    20 editions missing of a 2,000-member sample at full size, none reported failed)."""
    from types import SimpleNamespace

    from distributed import Client

    from catalog import fanout
    from catalog.production import Batch

    def render(job: Any, batch: Batch) -> fanout.BatchResult:  # stands in for the worker's render
        paths = {m: f"/editions/{m}.pdf" for m in batch.member_ids}
        return fanout.BatchResult(batch, paths, 2, 0.0, "w", cpu_seconds=1.0 + batch.index)

    monkeypatch.setattr(fanout, "render_batch", render)
    batches = [Batch(i, i % 2, (f"M{2 * i}", f"M{2 * i + 1}")) for i in range(7)]  # two segments
    with Client(processes=False, n_workers=1, threads_per_worker=1, dashboard_address=":0") as client:
        result = fanout.run_batches(client, SimpleNamespace(job_id="t"), batches, in_flight=3)  # type: ignore[arg-type]
    assert result.batches == 7 and result.retried == 0
    assert set(result.editions) == {f"M{i}" for i in range(14)} and not result.failures
    # the steady cost leaves out the worker's first batch of each segment (the model, the sheet):
    # whichever batch of a segment finished first, 5 of the 7 batches remain
    assert result.steady_editions == 10 and result.cpu_seconds == sum(1.0 + i for i in range(7))
    assert result.steady_cpu_seconds < result.cpu_seconds - 2


def test_a_remote_scheduler_with_sqlite_is_refused(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    with pytest.raises(ConfigurationError, match="PostgreSQL"):
        check_placement(settings, "tcp://elsewhere:8786")
    check_placement(settings, "")  # a local cluster is fine
    check_placement(Settings(data_dir=tmp_path, database_url="postgresql://db/club"), "tcp://elsewhere:8786")


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    with dask_client(workers=2) as c:
        assert len(c.nthreads()) == 2 and set(c.nthreads().values()) == {1}
        yield c


def _profiling(dask_worker: Any) -> bool:
    return "profile" in dask_worker.periodic_callbacks


@pytest.mark.slow
def test_workers_run_without_the_statistical_profiler(client: Any) -> None:
    """Dask's profiler walked every running task's stack every 10 ms: ~10 % of an edition's CPU."""
    assert client.run(_profiling) and not any(client.run(_profiling).values())
    from distributed import LocalCluster

    # a cluster started elsewhere, with the profiler on: the job's client stops it on connecting
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:  # type: ignore[no-untyped-call]
        with dask_client(cluster.scheduler_address) as remote:
            assert not any(remote.run(_profiling).values())
        from distributed import Client

        with Client(cluster) as plain:  # type: ignore[no-untyped-call]
            assert not any(plain.run(_profiling).values())  # stopped for good, not only for the job


def _first_page(path: Path) -> str:
    """Page 1's text: pdftotext (fast, poppler) if installed, else pypdf."""
    if shutil.which("pdftotext"):
        run = ["pdftotext", "-f", "1", "-l", "1", str(path), "-"]
        return subprocess.run(run, capture_output=True, text=True, check=True).stdout
    return PdfReader(path).pages[0].extract_text() or ""


def _settings(club: Club) -> Settings:
    # bigger documents than the club's 4, so the test stays short
    catalog = club.settings.catalog.model_copy(update={"members_per_batch": 25})
    return club.settings.model_copy(update={"catalog": catalog})


@pytest.mark.slow
def test_every_member_gets_an_edition(club: Club, client: Any, tmp_path: Path) -> None:
    started: list[tuple[int, int]] = []
    done: list[int] = []
    result = render_all_editions(
        club.engine, _settings(club), QUARTER, club.plans, out_dir=tmp_path, client=client,
        on_start=lambda m, b: started.append((m, b)), on_done=done.append,
    )
    with club.engine.connect() as connection:
        everyone = {m for (m,) in connection.execute(select(Member.member_id))}
        members = set(segments_db.member_segment_labels(connection, QUARTER))
    assert members <= everyone and len(members) == club.segmentation.members
    assert not result.failures and result.retried == 0
    assert set(result.editions) == members
    assert started == [(len(members), result.batches)] and sum(done) == len(members)
    assert result.batches >= len(club.plans)
    assert len(result.per_worker) == 2, result.per_worker  # both processes did work
    for member_id, path in result.editions.items():
        assert path == tmp_path / "members" / f"{member_id}.pdf" and path.exists()
    with ThreadPoolExecutor(4) as pool:
        first_pages = dict(zip(result.editions, pool.map(_first_page, result.editions.values()), strict=True))
    assert [m for m, text in first_pages.items() if m not in text] == []


@pytest.mark.slow
def test_a_failing_batch_is_retried_then_reported_while_the_others_land(
    club: Club, client: Any, tmp_path: Path
) -> None:
    settings = _settings(club)
    with club.engine.connect() as connection:
        labels = segments_db.member_segment_labels(connection, QUARTER)
        chosen = [m for p in club.plans for m in segments_db.members_of_segment(connection, QUARTER, p.segment)[:6]]
        batches = make_batches(labels, chosen, 4)
        bad = Batch(len(batches), batches[0].segment, (chosen[0], BOGUS))
        batches.append(bad)
        job = prepare_job(connection, settings, QUARTER, club.plans, model_version=club.model.version,
                          out_dir=tmp_path)
    result: FanoutResult = run_batches(client, job, batches)
    assert set(result.editions) == set(chosen)  # chosen[0] also landed, from its good batch
    assert result.retried == 1
    [failure] = result.failures
    assert failure.batch == bad and failure.attempts == 2
    assert failure.member_ids == (chosen[0], BOGUS)
    assert "UnknownMemberError" in failure.reason and BOGUS in failure.reason
    assert not (tmp_path / "members" / f"{BOGUS}.pdf").exists()


def test_cli_refuses_a_remote_scheduler_on_sqlite(club: Club, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from bookclub_cli.main import app

    monkeypatch.setenv("BOOKCLUB_DATA_DIR", str(club.settings.data_dir))
    runner = CliRunner()
    result = runner.invoke(
        app, ["catalogs", "render", "--quarter", QUARTER, "--all-members", "--scheduler", "tcp://elsewhere:8786"]
    )
    assert result.exit_code == 1 and "PostgreSQL" in result.output, result.output
    result = runner.invoke(app, ["catalogs", "render", "--quarter", QUARTER, "--workers", "2"])
    assert result.exit_code == 1 and "--all-members" in result.output, result.output


@pytest.mark.slow
@pytest.mark.postgres
def test_workers_behind_a_scheduler_address_read_postgresql(
    club: Club, client: Any, postgres_engine: Engine, tmp_path: Path
) -> None:
    """The real-cluster path: a Client on a scheduler address, workers opening PostgreSQL."""
    spec = DemoSpec(members=300, titles=160, years=2, seed=5, end_date=dt.date(2026, 11, 20))
    load_demo(postgres_engine, spec, shared_data("clc", "clc_level1_2.csv"))
    with postgres_engine.begin() as connection:
        segment_quarter(connection, club.model, club.settings.segments, QUARTER)
    with postgres_engine.begin() as connection:
        plans = plan_quarter(connection, club.model, club.settings, QUARTER)
    with postgres_engine.begin() as connection:
        mail_everyone(connection, club.settings, QUARTER)
    url = postgres_engine.url.render_as_string(hide_password=False)
    settings = _settings(club).model_copy(update={"database_url": url})
    with postgres_engine.connect() as connection:
        chosen = [m for p in plans for m in segments_db.members_of_segment(connection, QUARTER, p.segment)[:5]]
    result = render_all_editions(
        postgres_engine, settings, QUARTER, plans, chosen, scheduler=client.scheduler.address,
        out_dir=tmp_path,
    )
    assert not result.failures and set(result.editions) == set(chosen)
    assert all(m in _first_page(p) for m, p in result.editions.items())
