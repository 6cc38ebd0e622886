"""The audit log: who did what, when and why, from the staff console (one record type)."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, insert, select

from recsys.storage.schema import AuditEntry


@dataclass(frozen=True)
class AuditRecord:
    id: int
    at: dt.datetime
    actor_prefix: str
    actor_label: str | None
    role: str
    action: str
    target: str
    reason: str
    detail: dict[str, Any]


_COLUMNS = (
    AuditEntry.id, AuditEntry.at, AuditEntry.actor_prefix, AuditEntry.actor_label, AuditEntry.role,
    AuditEntry.action, AuditEntry.target, AuditEntry.reason, AuditEntry.detail,
)


def _record(row: Any) -> AuditRecord:
    detail = json.loads(row.detail) if row.detail else {}
    return AuditRecord(
        row.id, row.at, row.actor_prefix, row.actor_label, row.role, row.action, row.target, row.reason, detail
    )


def record_action(
    connection: Connection,
    *,
    actor_prefix: str,
    actor_label: str | None,
    role: str,
    action: str,
    target: str,
    reason: str,
    detail: dict[str, Any] | None = None,
    at: dt.datetime | None = None,
) -> AuditRecord:
    """Append one entry (inside the caller's transaction) and return it."""
    moment = at or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    text = json.dumps(detail, ensure_ascii=False, sort_keys=True) if detail else None
    new_id = connection.execute(
        insert(AuditEntry)
        .values(
            at=moment, actor_prefix=actor_prefix, actor_label=actor_label, role=role,
            action=action, target=target, reason=reason, detail=text,
        )
        .returning(AuditEntry.id)
    ).scalar_one()
    return AuditRecord(int(new_id), moment, actor_prefix, actor_label, role, action, target, reason, detail or {})


def recent_actions(
    connection: Connection, *, before_id: int | None = None, limit: int = 50, action: str | None = None
) -> list[AuditRecord]:
    """Newest first, keyset-paged on ``id`` (``before_id``: the last id of the previous page)."""
    stmt = select(*_COLUMNS).order_by(AuditEntry.id.desc()).limit(limit)
    if before_id is not None:
        stmt = stmt.where(AuditEntry.id < before_id)
    if action is not None:
        stmt = stmt.where(AuditEntry.action == action)
    return [_record(row) for row in connection.execute(stmt)]


def actions_on(connection: Connection, action_prefix: str, target_prefix: str, limit: int = 200) -> list[AuditRecord]:
    """Entries whose action starts with ``action_prefix`` and target with ``target_prefix``,
    newest first (e.g. every proof mark and approval of a quarter)."""
    stmt = (
        select(*_COLUMNS)
        .where(AuditEntry.action.startswith(action_prefix, autoescape=True))
        .where(AuditEntry.target.startswith(target_prefix, autoescape=True))
        .order_by(AuditEntry.id.desc())
        .limit(limit)
    )
    return [_record(row) for row in connection.execute(stmt)]
