"""Every member's edition, fanned out over Dask distributed.

At ~5 editions/s per core, 1.5 million members take ~40 hours on one 2-core
machine; the work is embarrassingly parallel, so it runs on an existing
distributed engine (Dask distributed) rather than a home-made one:

* **batches** — the members are grouped by segment and cut into
  ``settings.catalog.members_per_batch``-sized batches (one laid-out document
  each, see :mod:`catalog.member_edition`); one Dask task per batch.
* **cluster** — a :class:`~distributed.LocalCluster` (worker processes, one
  thread each; ``catalog.dask_workers``, 0 = one per core) by default, or the
  scheduler at ``catalog.dask_scheduler`` / ``--scheduler`` (``tcp://host:8786``).
* **what a worker needs** — the job (settings, quarter, pinned model version,
  plans, and the bytes of each segment's body PDF) is scattered to the workers
  once; each worker process opens its own engine from ``settings.db_url``,
  loads the model from the registry and parses each body once, and reuses them
  for all its tasks of that job.

For a real cluster (workers on other machines):

* the database must be PostgreSQL — a SQLite file is only reachable on this
  machine, and :func:`render_all_editions` refuses that combination;
* ``data_dir`` (the model registry ``data_dir/models``, covers, and the output
  folder ``data_dir/catalogs/QUARTER/members``) must be on storage every
  worker mounts at the same absolute path (NFS, a shared volume): workers
  read the model from it and write the editions to it;
* every worker runs the same bookclub version and fonts as the client, one
  process per core with one thread each (WeasyPrint layout holds the GIL and a
  worker's renderer is not shared between threads)::

      dask scheduler                                   # on one machine
      dask worker tcp://HOST:8786 --nworkers 2 --nthreads 1   # on each 2-core machine
      bookclub catalogs render --quarter 2026Q4 --all-members --scheduler tcp://HOST:8786

What a worker writes, per batch: the editions, and what each shows its member's mailed
contact (main selection and picks, ``contact_titles``) — committed in a transaction of its own
after the PDFs and before their sidecars (:func:`catalog.member_pages.merge_editions`), so a
batch that dies half-way leaves no usable edition without its rows and no rows for an edition
that was not written; the retry renders the batch again and replaces its rows. The titles a
worker chooses rotate out what the members were shown in their last editions
(``mailing.rotation_editions``), read from the same table.

A batch that fails is retried once; if it fails again its member ids and the
reason are reported in :attr:`FanoutResult.failures`, never dropped silently.

(Past 400 lines because the client side (batches, submission window, retries) and the worker side (state, the task) of one Dask job share its Job and result types and are read together.)
"""

from __future__ import annotations

import itertools
import logging
import os
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, make_url

from catalog.member_edition import mailed_edition_members
from catalog.member_pages import stamp_sheet
from catalog.paths import quarter_dir
from catalog.pdfmerge import BodyTemplate
from catalog.plan import CatalogPlan
from catalog.production import (
    PLACEMENT_FIELDS,
    Batch,
    make_batches,
    render_member_batch,
    render_segment_catalogs,
    renderer_for,
    segment_pdf_bytes,
    titles_by_id,
)
from catalog.render import Renderer, freeze_long_lived
from recsys.errors import BookclubError, ConfigurationError
from recsys.files import remove_stale_temps
from recsys.settings import Settings
from recsys.storage import segments as segments_db
from recsys.storage.titles import TitleRecord

log = logging.getLogger(__name__)

Progress = Callable[[int], None]



def _no_progress(_n: int) -> None:
    return None


@dataclass(frozen=True)
class BatchResult:
    batch: Batch
    paths: dict[str, str]  # member_id → edition path, as the worker wrote it
    pages: int  # personal pages laid out
    seconds: float
    worker: str
    cpu_seconds: float = 0.0  # the worker process's CPU time in the task (load-independent)


@dataclass(frozen=True)
class BatchFailure:
    batch: Batch
    reason: str
    attempts: int

    @property
    def member_ids(self) -> tuple[str, ...]:
        return self.batch.member_ids


@dataclass
class FanoutResult:
    editions: dict[str, Path]
    failures: list[BatchFailure]
    batches: int
    retried: int  # batches that failed once and were resubmitted
    workers: int
    seconds: float
    task_seconds: float = 0.0  # sum of the tasks' own render times (wall clock)
    cpu_seconds: float = 0.0  # sum of the tasks' CPU times
    per_worker: dict[str, int] = field(default_factory=dict)
    # the tasks after each worker's first of a segment (which also loads the model and lays out
    # the segment's stamp sheet, paid once per worker and segment): the steady cost an edition
    steady_editions: int = 0
    steady_cpu_seconds: float = 0.0

    @property
    def failed_members(self) -> list[str]:
        return [m for f in self.failures for m in f.member_ids]

    @property
    def rate(self) -> float:
        return len(self.editions) / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class Job:
    """What every task of one run shares; scattered to the workers once."""

    job_id: str
    settings: Settings
    quarter: str
    model_version: str
    out_dir: str
    plans: Mapping[int, CatalogPlan]
    bodies: Mapping[int, bytes]  # segment → the rendered segment catalog


def placement_free(settings: Settings) -> Settings:
    """``settings`` with the Dask placement fields at their defaults (they are not design)."""
    defaults = type(settings.catalog)()
    catalog = settings.catalog.model_copy(
        update={name: getattr(defaults, name) for name in PLACEMENT_FIELDS}
    )
    return settings.model_copy(update={"catalog": catalog})


def absolute(settings: Settings) -> Settings:
    """Paths made absolute, so that a worker process (or machine) sees the same files."""
    return settings.model_copy(
        update={"data_dir": settings.data_dir.resolve(), "database_url": settings.db_url}
    )


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def check_placement(settings: Settings, scheduler: str) -> None:
    """A remote scheduler's workers cannot open this machine's SQLite file."""
    if scheduler and is_sqlite(settings.db_url):
        raise ConfigurationError(
            f"the Dask scheduler {scheduler} runs workers that cannot open the SQLite file "
            f"{make_url(settings.db_url).database}: a cluster of machines needs PostgreSQL "
            "(BOOKCLUB_DATABASE_URL=postgresql://...) and data_dir on shared storage; "
            "without a scheduler address the editions render on a local cluster"
        )


# ---- on the worker ---------------------------------------------------------


@dataclass
class _WorkerState:
    job_id: str
    engine: Engine
    model: Any
    renderer: Renderer
    titles: dict[str, TitleRecord]
    bodies: dict[int, BodyTemplate] = field(default_factory=dict)


_state: _WorkerState | None = None


def _worker_state(job: Job) -> _WorkerState:
    """This process's engine, model, renderer and titles for ``job``, built on its first task."""
    global _state
    if _state is not None and _state.job_id == job.job_id:
        return _state
    if _state is not None:
        _state.engine.dispose()
        _state = None
    from recsys.storage.db import engine_from_settings
    from training.registry import ModelRegistry

    engine = engine_from_settings(job.settings)
    with engine.connect() as connection:
        model = ModelRegistry(job.settings.models_dir).load_prepared(connection, job.model_version)
        titles = titles_by_id(connection, job.quarter)
    _state = _WorkerState(job.job_id, engine, model, renderer_for(job.settings), titles)
    freeze_long_lived()  # engine, model, titles, fonts: out of the collector's sight
    return _state


def warm_worker(job: Job) -> int:
    """Build this worker's state for ``job`` and each segment's stamp sheet (what its first
    batch of each segment would otherwise do); the number of sheets. ``client.run`` it on
    every worker before timing (benchmarks/bench_fanout.py)."""
    state = _worker_state(job)
    for plan in job.plans.values():
        stamp_sheet(plan, state.titles, job.settings.catalog, state.renderer, job.settings.data_dir / "covers")
    freeze_long_lived()
    return len(job.plans)


def render_batch(job: Job, batch: Batch) -> BatchResult:
    """The Dask task: one batch of editions, written under ``job.out_dir/members``."""
    start, cpu = time.perf_counter(), time.process_time()
    state = _worker_state(job)
    body = state.bodies.get(batch.segment)
    if body is None:
        body = state.bodies[batch.segment] = BodyTemplate(job.bodies[batch.segment])
    with state.engine.connect() as connection:
        paths, pages = render_member_batch(
            connection, state.model, job.settings, job.quarter, job.plans[batch.segment],
            state.titles, body, state.renderer, list(batch.member_ids), Path(job.out_dir),
        )
    worker = f"{os.uname().nodename}:{os.getpid()}"
    return BatchResult(
        batch, {m: str(p) for m, p in paths.items()}, pages,
        time.perf_counter() - start, worker, time.process_time() - cpu,
    )


# ---- on the client ---------------------------------------------------------


@contextmanager
def dask_client(
    scheduler: str = "", workers: int = 0, *, quiet: bool = True
) -> Iterator[Any]:
    """A Client on the scheduler at ``scheduler``, or on a new local cluster of
    ``workers`` processes (0 = one per core) with one thread each."""
    import dask
    from distributed import Client, LocalCluster

    if scheduler:
        with Client(scheduler) as client:  # type: ignore[no-untyped-call]
            client.run(stop_profiler)
            yield client
        return
    with (
        dask.config.set({"distributed.worker.profile.enabled": False}),  # see stop_profiler
        LocalCluster(  # type: ignore[no-untyped-call]
            n_workers=workers or _cores(), threads_per_worker=1, processes=True, dashboard_address=None,
            silence_logs=logging.ERROR if quiet else logging.WARNING,
        ) as cluster,
        Client(cluster) as client,  # type: ignore[no-untyped-call]
    ):
        yield client


def stop_profiler(dask_worker: Any) -> int:
    """Stop a Dask worker's statistical profiler (``client.run`` it on every worker); the number
    of its callbacks stopped. Every 10 ms it walks the stack of the running task — a layout's
    stack is deep — and took ~10 % of a worker's CPU an edition (docs/benchmarks.md, "The Dask
    worker's profiler"); what it gathers is shown only on a dashboard. Local clusters start
    their workers without it; this reaches the workers of a cluster started elsewhere."""
    stopped = 0
    for name in ("profile", "profile-cycle"):
        callback = dask_worker.periodic_callbacks.pop(name, None)
        if callback is not None:
            callback.stop()
            stopped += 1
    return stopped


def _cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def run_batches(
    client: Any,
    job: Job,
    batches: Sequence[Batch],
    *,
    on_done: Progress = _no_progress,
    in_flight: int | None = None,
) -> FanoutResult:
    """Submit one task per batch (at most ``in_flight`` at a time, so the scheduler
    holds a window, not 75,000 tasks), retry a failed batch once, gather the rest."""
    from distributed import as_completed

    start = time.perf_counter()
    threads = sum(client.nthreads().values()) or 1
    window = in_flight or max(64, 8 * threads)
    shared = client.scatter(job, broadcast=True, hash=False)
    pending = iter(batches)
    attempts: dict[int, int] = {}
    first_reason: dict[int, str] = {}
    of_key: dict[str, Batch] = {}

    def submit(batch: Batch) -> Any:
        attempts[batch.index] = attempts.get(batch.index, 0) + 1
        key = f"edition-batch-{job.job_id}-{batch.index}-{attempts[batch.index]}"
        of_key[key] = batch
        return client.submit(render_batch, shared, batch, key=key, pure=False)

    # the first window (islice: zip(pending, range(window)) took one batch more from pending
    # than it submitted, and that batch was never run — one batch lost whenever there were more
    # batches than the window: 20 of a 2,000-edition sample at 1.5M members)
    running = as_completed([submit(b) for b in itertools.islice(pending, window)])  # type: ignore[no-untyped-call]
    editions: dict[str, Path] = {}
    failures: list[BatchFailure] = []
    per_worker: dict[str, int] = defaultdict(int)
    retried = 0
    done: set[int] = set()
    task_seconds = cpu_seconds = steady_cpu = 0.0
    steady = 0
    started: set[tuple[str, int]] = set()  # (worker, segment) with a first batch done
    for future in running:
        batch = of_key.pop(future.key)
        if future.status == "finished":
            result: BatchResult = future.result()
            done.add(batch.index)
            editions.update({m: Path(p) for m, p in result.paths.items()})
            per_worker[result.worker] += len(result.paths)
            task_seconds += result.seconds
            cpu_seconds += result.cpu_seconds
            if (result.worker, batch.segment) in started:
                steady += len(result.paths)
                steady_cpu += result.cpu_seconds
            started.add((result.worker, batch.segment))
            on_done(len(result.paths))
        else:
            try:
                exc = future.exception()
                reason = _reason(exc)
            except Exception as error:  # cancelled, lost scheduler
                reason = _reason(error)
            if attempts[batch.index] < 2:
                first_reason[batch.index] = reason
                retried += 1
                log.warning("batch %d (segment %d) failed, retrying: %s", batch.index, batch.segment, reason)
                running.add(submit(batch))  # type: ignore[no-untyped-call]
            else:
                if first_reason.get(batch.index, reason) != reason:
                    reason = f"{reason} (first attempt: {first_reason[batch.index]})"
                failures.append(BatchFailure(batch, reason, attempts[batch.index]))
                on_done(len(batch.member_ids))
        future.release()
        nxt = next(pending, None)
        if nxt is not None:
            running.add(submit(nxt))  # type: ignore[no-untyped-call]
    if lost := {b.index for b in batches} - done - {f.batch.index for f in failures}:
        raise RuntimeError(f"{len(lost)} batch(es) neither finished nor failed, e.g. {min(lost)}: a bug in run_batches")
    return FanoutResult(
        editions, sorted(failures, key=lambda f: f.batch.index), len(batches), retried,
        len(client.nthreads()), time.perf_counter() - start, task_seconds, cpu_seconds, dict(per_worker),
        steady, steady_cpu,
    )


def prepare_job(
    connection: Connection,
    settings: Settings,
    quarter: str,
    plans: Sequence[CatalogPlan],
    *,
    model_version: str,
    out_dir: Path | None = None,
    force: bool = False,
    on_catalog: Progress = _no_progress,
) -> Job:
    """Render (or reuse) the segment catalogs here, once, and pack what the tasks share."""
    settings = absolute(placement_free(settings))
    out = (out_dir or quarter_dir(settings, quarter)).resolve()
    bodies = render_segment_catalogs(
        connection, settings, quarter, plans, force=force, out_dir=out, on_done=on_catalog
    )
    remove_stale_temps(out / "members")  # left by writers killed in an earlier run
    return Job(
        uuid.uuid4().hex[:12], settings, quarter, model_version, str(out),
        {p.segment: p for p in plans}, {s: segment_pdf_bytes(path) for s, path in bodies.items()},
    )


def render_all_editions(
    engine: Engine,
    settings: Settings,
    quarter: str,
    plans: Sequence[CatalogPlan],
    member_ids: Sequence[str] | None = None,
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    out_dir: Path | None = None,
    force: bool = False,
    client: Any = None,
    on_catalog: Progress = _no_progress,
    on_start: Callable[[int, int], None] | None = None,
    on_done: Progress = _no_progress,
) -> FanoutResult:
    """An edition for each of ``member_ids`` (None: every member of the ``plans``' segments mailed
    their own edition by the quarter's campaign),
    one Dask task per batch — on ``client`` if given, else on the scheduler
    (``scheduler`` or ``settings.catalog.dask_scheduler``) or a local cluster.

    ``on_start(members, batches)`` is called once the batches are known."""
    from training.registry import ModelRegistry

    if scheduler is None:
        scheduler = settings.catalog.dask_scheduler
    if workers is None:
        workers = settings.catalog.dask_workers
    if client is None:
        check_placement(settings, scheduler)
    version = ModelRegistry(settings.models_dir).active_version()
    if version is None:
        raise BookclubError("no active model: run `bookclub train`")
    by_segment = {p.segment: p for p in plans}
    with engine.connect() as connection:
        labels = segments_db.member_segment_labels(connection, quarter)
        if member_ids is None:  # the print stream: every member mailed their own edition
            member_ids = [
                m for m in mailed_edition_members(connection, settings, quarter) if labels.get(m) in by_segment
            ]
        batches = make_batches(labels, member_ids, settings.catalog.members_per_batch)
        if missing := sorted({b.segment for b in batches} - set(by_segment)):
            raise BookclubError(
                f"no catalog plan for segment {missing[0]} of {quarter}: run `bookclub catalogs plan`"
            )
        job = prepare_job(
            connection, settings, quarter, plans, model_version=version, out_dir=out_dir,
            force=force, on_catalog=on_catalog,
        )
    if on_start is not None:
        on_start(len(member_ids), len(batches))
    if client is not None:
        return run_batches(client, job, batches, on_done=on_done)
    with dask_client(scheduler, workers) as own:
        return run_batches(own, job, batches, on_done=on_done)
