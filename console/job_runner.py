"""The process of one console job (``python -m console.job_runner``, started by
:func:`console.jobs.start`): {"job": id, "settings": {...}} on standard input; the job's row
marked running with this host and pid, its progress written at most every
``PROGRESS_SECONDS``, then done with its result or failed with the error."""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine

from recsys.errors import BookclubError
from recsys.settings import Settings
from recsys.storage import jobs as jobs_db

PROGRESS_SECONDS = 0.5


class _Progress:
    """Writes (step, done, total) to the job's row, at most every PROGRESS_SECONDS."""

    def __init__(self, engine: Engine, job_id: int) -> None:
        self.engine, self.job_id = engine, job_id
        self.last = 0.0
        self.step, self.done = "", 0
        self.total: int | None = None
        self._lock = threading.Lock()

    def __call__(self, step: str, done: int, total: int | None, *, force: bool = False) -> None:
        with self._lock:
            self.step, self.done, self.total = step, done, total
            now = time.monotonic()
            if not force and now - self.last < PROGRESS_SECONDS:
                return
            self.last = now
        with self.engine.begin() as connection:
            jobs_db.record_progress(connection, self.job_id, step=step, done=done, total=total)

    def flush(self) -> None:
        self(self.step, self.done, self.total, force=True)


def _train(engine: Engine, settings: Settings, params: dict[str, Any], progress: _Progress) -> dict[str, Any]:
    from training.pipeline import run_training

    result = run_training(
        engine, settings, with_evaluation=params["evaluate"], promote=params["promote"],
        on_step=lambda what, done, total: progress(what, done, total),
    )  # fmt: skip
    snap = result.training.snapshot
    return {
        "version": result.info.version, "status": result.info.status, "reason": result.info.reason,
        "order_lines": snap.purchase_rows, "members": snap.members_with_purchases,
        "titles": snap.titles_with_purchases, "metrics": dict(result.info.metrics),
        "timings": result.timings, "warnings": list(result.warnings),
    }  # fmt: skip


def _render(engine: Engine, settings: Settings, params: dict[str, Any], progress: _Progress) -> dict[str, Any]:
    from catalog.fanout import render_all_editions
    from catalog.planning import stored_plans

    quarter = params["quarter"]
    with engine.connect() as connection:
        plans = stored_plans(connection, quarter)
    if not plans:
        raise BookclubError(f"no catalog plans for {quarter}: run `bookclub catalogs plan --quarter {quarter}`")
    catalogs = [0]
    members = {"done": 0, "total": 0}

    def on_catalog(n: int) -> None:
        catalogs[0] += n
        progress("segment catalogs", catalogs[0], len(plans))

    def on_start(n_members: int, n_batches: int) -> None:
        members["total"] = n_members
        progress(f"member editions ({n_batches:,} batches)", 0, n_members, force=True)

    def on_done(n: int) -> None:
        members["done"] += n
        progress(progress.step, members["done"], members["total"] or None)

    result = render_all_editions(
        engine, settings, quarter, plans, on_catalog=on_catalog, on_start=on_start, on_done=on_done,
    )  # fmt: skip
    summary = {
        "quarter": quarter, "editions": len(result.editions), "seconds": round(result.seconds, 1),
        "per_second": round(result.rate, 2), "workers": result.workers, "batches": result.batches,
        "retried": result.retried, "failed_members": len(result.failed_members),
    }  # fmt: skip
    if result.failures:
        first = result.failures[0]
        raise BookclubError(
            f"{len(result.failed_members):,} member editions in {len(result.failures)} batches were not rendered "
            f"(first: batch {first.batch.index}, {first.reason}); {summary['editions']:,} were — re-run them with "
            "`bookclub catalogs render --members`"
        )
    return summary


RUNNERS: dict[str, Callable[[Engine, Settings, dict[str, Any], _Progress], dict[str, Any]]] = {
    "train": _train,
    "render_editions": _render,
}


def run(engine: Engine, settings: Settings, job_id: int) -> int:
    """Run job ``job_id`` in this process; the exit status (0 done, 1 failed, 2 not started)."""
    with engine.begin() as connection:
        job = jobs_db.job(connection, job_id)
        if job is None or not jobs_db.start_job(connection, job_id, host=socket.gethostname(), pid=os.getpid()):
            return 2
    progress = _Progress(engine, job_id)
    try:
        result = RUNNERS[job.kind](engine, settings, job.params, progress)
    except BaseException as exc:  # every ending is recorded (KeyboardInterrupt re-raised below)
        message = str(exc) if isinstance(exc, BookclubError) else "".join(traceback.format_exception_only(exc)).strip()
        with engine.begin() as connection:
            jobs_db.finish_job(connection, job_id, error=message or type(exc).__name__)
        if not isinstance(exc, Exception):
            raise
        return 1
    progress.flush()
    with engine.begin() as connection:
        jobs_db.finish_job(connection, job_id, result=result)
    return 0


def main() -> None:
    """``python -m console.job_runner``: {"job": id, "settings": {...}} on standard input."""
    from recsys.storage.db import engine_from_settings

    payload = json.loads(sys.stdin.read())
    settings = Settings.model_validate(payload["settings"])
    engine = engine_from_settings(settings)
    try:
        code = run(engine, settings, int(payload["job"]))
    finally:
        engine.dispose()
    sys.exit(code)


if __name__ == "__main__":
    main()
