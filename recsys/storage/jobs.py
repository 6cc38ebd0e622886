"""Long jobs started from the staff console: one record type, written by the console when a job is
asked for and by the job's own process as it runs (progress, result, error)."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, insert, select, update

from recsys.storage.schema import Job

OPEN = ("queued", "running")


@dataclass(frozen=True)
class JobRecord:
    id: int
    kind: str
    params: dict[str, Any]
    status: str
    actor_prefix: str
    actor_label: str | None
    created_at: dt.datetime
    started_at: dt.datetime | None
    updated_at: dt.datetime | None
    finished_at: dt.datetime | None
    host: str | None
    pid: int | None
    step: str | None
    done: int
    total: int | None
    result: dict[str, Any] | None
    error: str | None

    @property
    def fraction(self) -> float | None:
        """Share of the current step done, when its total is known."""
        return None if not self.total else min(1.0, self.done / self.total)


_COLUMNS = (
    Job.id, Job.kind, Job.params, Job.status, Job.actor_prefix, Job.actor_label, Job.created_at,
    Job.started_at, Job.updated_at, Job.finished_at, Job.host, Job.pid, Job.step, Job.done, Job.total,
    Job.result, Job.error,
)


def _record(row: Any) -> JobRecord:
    return JobRecord(
        int(row.id), row.kind, json.loads(row.params or "{}"), row.status, row.actor_prefix, row.actor_label,
        row.created_at, row.started_at, row.updated_at, row.finished_at, row.host, row.pid, row.step,
        int(row.done or 0), None if row.total is None else int(row.total),
        json.loads(row.result) if row.result else None, row.error,
    )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)


def create_job(
    connection: Connection, *, kind: str, params: dict[str, Any], actor_prefix: str, actor_label: str | None
) -> JobRecord:
    """A queued job (inside the caller's transaction)."""
    job_id = connection.execute(
        insert(Job)
        .values(
            kind=kind, params=json.dumps(params, ensure_ascii=False, sort_keys=True), status="queued",
            actor_prefix=actor_prefix, actor_label=actor_label, created_at=_now(), done=0,
        )
        .returning(Job.id)
    ).scalar_one()
    found = job(connection, int(job_id))
    assert found is not None
    return found


def job(connection: Connection, job_id: int) -> JobRecord | None:
    row = connection.execute(select(*_COLUMNS).where(Job.id == job_id)).one_or_none()
    return None if row is None else _record(row)


def jobs_page(connection: Connection, *, before_id: int | None = None, limit: int = 50) -> list[JobRecord]:
    """Newest first, keyset-paged on id."""
    stmt = select(*_COLUMNS).order_by(Job.id.desc()).limit(limit)
    if before_id is not None:
        stmt = stmt.where(Job.id < before_id)
    return [_record(row) for row in connection.execute(stmt)]


def open_jobs(connection: Connection, kind: str) -> list[JobRecord]:
    """Jobs of ``kind`` queued or running (index on kind, status)."""
    stmt = select(*_COLUMNS).where(Job.kind == kind, Job.status.in_(OPEN)).order_by(Job.id)
    return [_record(row) for row in connection.execute(stmt)]


def start_job(connection: Connection, job_id: int, *, host: str, pid: int) -> bool:
    """Queued → running, by the process that runs it; False when it was not queued any more."""
    now = _now()
    changed = connection.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == "queued")
        .values(status="running", host=host, pid=pid, started_at=now, updated_at=now)
    ).rowcount
    return bool(changed)


def record_progress(connection: Connection, job_id: int, *, step: str, done: int, total: int | None) -> None:
    connection.execute(
        update(Job).where(Job.id == job_id, Job.status == "running").values(step=step, done=done, total=total, updated_at=_now())
    )


def finish_job(
    connection: Connection, job_id: int, *, result: dict[str, Any] | None = None, error: str | None = None
) -> None:
    """Running (or queued, if it never started) → done with ``result``, or failed with ``error``."""
    now = _now()
    connection.execute(
        update(Job)
        .where(Job.id == job_id, Job.status.in_(OPEN))
        .values(
            status="failed" if error is not None else "done",
            result=None if result is None else json.dumps(result, ensure_ascii=False, sort_keys=True),
            error=error, finished_at=now, updated_at=now,
        )
    )
