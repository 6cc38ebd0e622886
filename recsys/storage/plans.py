"""Catalog plans per quarter and segment."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    Connection,
    delete,
    insert,
    select,
)

from recsys.storage.schema import (
    CatalogPlanRecord,
)


def store_plan(
    connection: Connection,
    quarter: str,
    segment: int,
    model_version: str,
    settings_hash: str,
    plan_json: str,
) -> None:
    connection.execute(
        delete(CatalogPlanRecord).where(
            CatalogPlanRecord.quarter == quarter, CatalogPlanRecord.segment == segment
        )
    )
    connection.execute(
        insert(CatalogPlanRecord).values(
            quarter=quarter, segment=segment, model_version=model_version,
            settings_hash=settings_hash, plan_json=plan_json,
            created_at=dt.datetime.now(dt.UTC).replace(tzinfo=None),
        )
    )


def plans_of_quarter(connection: Connection, quarter: str) -> list[dict[str, Any]]:
    """Stored plans: segment, model_version, settings_hash, plan_json, created_at."""
    stmt = (
        select(
            CatalogPlanRecord.segment, CatalogPlanRecord.model_version,
            CatalogPlanRecord.settings_hash, CatalogPlanRecord.plan_json,
            CatalogPlanRecord.created_at,
        )
        .where(CatalogPlanRecord.quarter == quarter)
        .order_by(CatalogPlanRecord.segment)
    )
    return [dict(row._mapping) for row in connection.execute(stmt)]


def plan_lineage(connection: Connection, quarter: str) -> dict[int, tuple[int, str, str]]:
    """segment → (plan id, model version, settings hash) of ``quarter``'s stored plans."""
    stmt = select(
        CatalogPlanRecord.segment, CatalogPlanRecord.id, CatalogPlanRecord.model_version,
        CatalogPlanRecord.settings_hash,
    ).where(CatalogPlanRecord.quarter == quarter)
    return {int(s): (int(i), str(v), str(h)) for s, i, v, h in connection.execute(stmt)}
