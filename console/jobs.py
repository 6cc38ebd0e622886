"""Long jobs started from the console, run by the functions the CLI calls, in a process of their own.

- ``train``: :func:`training.pipeline.run_training` (``bookclub train [--evaluate] [--promote …]``);
  a promoted model is picked up by every API worker, which polls the registry.
- ``render_editions``: :func:`catalog.fanout.render_all_editions` over the quarter's stored plans
  (``bookclub catalogs render --quarter Q --all-members``), on a local Dask cluster or the
  configured scheduler.

:func:`start` records the job (``recsys.storage.jobs``) and starts ``python -m console.job_runner``
in a new session, handing it the job's id and the server's settings on its standard input
(never on the command line: the database URL may hold a password). The child marks the job
running with its host and pid, writes its progress at most twice a second, and finishes it
done with its result or failed with the error. A job whose process died without a word
(killed, out of memory) is shown as lost: its pid is gone on this host.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine

from recsys.errors import BookclubError
from recsys.files import pid_alive
from recsys.settings import Settings
from recsys.storage import jobs as jobs_db
from recsys.storage.jobs import JobRecord

KINDS = ("train", "render_editions")
PROMOTE = ("auto", "never", "force")
QUEUED_SECONDS = 120.0  # a job still queued after this never started: lost
_ROOT = Path(__file__).resolve().parents[1]  # the folder holding the console package


class JobRefused(BookclubError):
    """The job cannot be started (one of its kind runs already, a parameter is wrong)."""


def check_params(kind: str, params: dict[str, Any]) -> dict[str, Any]:
    """The parameters a job of ``kind`` takes, checked; :class:`JobRefused` otherwise."""
    if kind == "train":
        promote = params.get("promote", "auto")
        if promote not in PROMOTE:
            raise JobRefused(f"promote must be one of {', '.join(PROMOTE)}")
        return {"evaluate": bool(params.get("evaluate")), "promote": promote}
    if kind == "render_editions":
        from catalog.period import Quarter

        try:
            quarter = str(Quarter.parse(str(params.get("quarter", ""))))
        except (ValueError, BookclubError):
            raise JobRefused(f"{params.get('quarter')!r} is not a quarter (e.g. 2026Q4)") from None
        return {"quarter": quarter}
    raise JobRefused(f"unknown job {kind!r}")


def start(
    engine: Engine, settings: Settings, kind: str, params: dict[str, Any], *, actor_prefix: str,
    actor_label: str | None, record: Callable[[Connection, JobRecord], object] | None = None,
) -> JobRecord:  # fmt: skip
    """Record a job and start its process; :class:`JobRefused` when one of its kind is open.
    ``record(connection, job)`` runs in the transaction that records the job (the audit entry)."""
    params = check_params(kind, params)
    with engine.begin() as connection:
        running = [j for j in jobs_db.open_jobs(connection, kind) if not is_lost(j)]
        if running:
            raise JobRefused(f"job #{running[0].id} ({kind}) has not finished yet")
        job = jobs_db.create_job(connection, kind=kind, params=params, actor_prefix=actor_prefix, actor_label=actor_label)
        if record is not None:
            record(connection, job)
    payload = json.dumps(
        {
            "job": job.id,
            "settings": settings.model_copy(
                update={
                    "database_url": engine.url.render_as_string(hide_password=False),
                    "console": settings.console.model_copy(update={"secret": ""}),
                }
            ).model_dump(mode="json"),
        }
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, (str(_ROOT), os.environ.get("PYTHONPATH"))))}
    process = subprocess.Popen(
        [sys.executable, "-m", "console.job_runner"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, cwd=_ROOT, env=env, start_new_session=True,
    )  # fmt: skip
    assert process.stdin is not None
    process.stdin.write(payload.encode())
    process.stdin.close()
    threading.Thread(target=process.wait, name=f"console-job-{job.id}", daemon=True).start()  # no zombie
    return job


def _alive(pid: int) -> bool:
    if not pid_alive(pid):
        return False
    with contextlib.suppress(OSError):  # a recycled pid is some other program
        return b"console.job_runner" in Path(f"/proc/{pid}/cmdline").read_bytes()
    return True


def is_lost(job: JobRecord, now: float | None = None) -> bool:
    """An open job whose process is gone from this host, or that never started."""
    if job.status == "running":
        return job.host == socket.gethostname() and job.pid is not None and not _alive(job.pid)
    if job.status == "queued":
        created = job.created_at.replace(tzinfo=dt.UTC).timestamp()  # stored as naive UTC
        return (time.time() if now is None else now) - created > QUEUED_SECONDS
    return False
