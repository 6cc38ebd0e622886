"""Campaigns, their editions and treatments (key codes): the ``campaigns``,
``campaign_editions`` and ``campaign_treatments`` tables.

One record type per table (:class:`CampaignRecord`, :class:`EditionRecord`,
:class:`TreatmentRecord`). The contacts of a campaign are in
:mod:`recsys.storage.contacts`; matchback and the report's outcomes in
:mod:`recsys.storage.matches`. Every function takes a ``Connection``; the caller
owns the transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Connection, exists, insert, literal, select

from recsys.errors import BookclubError
from recsys.storage.bulk import in_chunks, insert_ignoring_conflicts
from recsys.storage.schema import Campaign, CampaignEdition, CampaignTreatment, table_of


class UnknownCampaignError(BookclubError):
    """No campaign by that name or id."""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


# ------------------------------------------------------------------ records


@dataclass(frozen=True)
class CampaignRecord:
    id: int
    name: str
    quarter: str | None
    in_home_date: dt.date
    response_days: int
    late_days: int
    holdout_share: float
    universal_holdout_share: float
    seed: int
    description: str | None
    created_at: dt.datetime


@dataclass(frozen=True)
class EditionRecord:
    id: int
    campaign_id: int
    code: str
    name: str
    kind: str
    segment: int | None
    in_home_date: dt.date
    print_cost: Decimal
    paper_cost: Decimal
    postage_cost: Decimal
    other_cost: Decimal
    model_version: str | None
    plan_id: int | None
    plan_hash: str | None
    file: str | None

    @property
    def cost_per_piece(self) -> Decimal:
        return self.print_cost + self.paper_cost + self.postage_cost + self.other_cost


@dataclass(frozen=True)
class TreatmentRecord:
    id: int
    campaign_id: int
    edition_id: int | None
    name: str
    key_code: str | None
    control_id: int | None
    share: float | None


_CAMPAIGN_COLUMNS = [table_of(Campaign).c[f] for f in CampaignRecord.__dataclass_fields__]
_EDITION_COLUMNS = [table_of(CampaignEdition).c[f] for f in EditionRecord.__dataclass_fields__]
_TREATMENT_COLUMNS = [table_of(CampaignTreatment).c[f] for f in TreatmentRecord.__dataclass_fields__]


def _as_date(value: Any) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value)[:10])


def _campaign(row: Any) -> CampaignRecord:
    values = dict(row._mapping)
    values["in_home_date"] = _as_date(values["in_home_date"])
    return CampaignRecord(**values)


# ------------------------------------------------------------------ campaigns, editions, treatments


def campaign_by_name(connection: Connection, name: str) -> CampaignRecord | None:
    row = connection.execute(select(*_CAMPAIGN_COLUMNS).where(Campaign.name == name)).first()
    return None if row is None else _campaign(row)


def campaign_by_id(connection: Connection, campaign_id: int) -> CampaignRecord | None:
    row = connection.execute(select(*_CAMPAIGN_COLUMNS).where(Campaign.id == campaign_id)).first()
    return None if row is None else _campaign(row)


def find_campaign(connection: Connection, ref: str | int) -> CampaignRecord:
    """A campaign by id (an int, or digits) or by name; :class:`UnknownCampaignError` if none."""
    record = None
    # ASCII digits only ('²'.isdigit() is true, int('²') fails) and within an INTEGER column
    if isinstance(ref, int) or (str(ref).isascii() and str(ref).isdigit() and int(ref) < 2**31):
        record = campaign_by_id(connection, int(ref))
    if record is None and not isinstance(ref, int):
        record = campaign_by_name(connection, ref)
    if record is None:
        known = ", ".join(c.name for c in campaigns(connection)[:10]) or "none yet"
        raise UnknownCampaignError(f"no campaign {ref!r} (campaigns: {known})")
    return record


def campaigns(connection: Connection) -> list[CampaignRecord]:
    """Every campaign, newest in-home date first."""
    rows = connection.execute(select(*_CAMPAIGN_COLUMNS).order_by(Campaign.in_home_date.desc(), Campaign.id))
    return [_campaign(r) for r in rows]


def create_campaign(
    connection: Connection,
    *,
    name: str,
    quarter: str | None,
    in_home_date: dt.date,
    response_days: int,
    late_days: int,
    holdout_share: float,
    universal_holdout_share: float,
    seed: int,
    description: str | None = None,
) -> CampaignRecord:
    """Insert a campaign; the caller checks first that the name is free."""
    connection.execute(
        insert(Campaign).values(
            name=name, quarter=quarter, in_home_date=in_home_date, response_days=response_days,
            late_days=late_days, holdout_share=holdout_share,
            universal_holdout_share=universal_holdout_share, seed=seed, description=description,
            created_at=_now(),
        )
    )
    record = campaign_by_name(connection, name)
    assert record is not None
    return record


def editions(connection: Connection, campaign_id: int) -> list[EditionRecord]:
    rows = connection.execute(
        select(*_EDITION_COLUMNS).where(CampaignEdition.campaign_id == campaign_id).order_by(CampaignEdition.id)
    )
    out = []
    for row in rows:
        values = dict(row._mapping)
        values["in_home_date"] = _as_date(values["in_home_date"])
        for name in ("print_cost", "paper_cost", "postage_cost", "other_cost"):
            values[name] = Decimal(str(values[name]))
        out.append(EditionRecord(**values))
    return out


def add_edition(
    connection: Connection,
    campaign_id: int,
    *,
    code: str,
    name: str,
    kind: str,
    segment: int | None,
    in_home_date: dt.date,
    costs: tuple[float, float, float, float],
    model_version: str | None = None,
    plan_id: int | None = None,
    plan_hash: str | None = None,
    file: str | None = None,
) -> EditionRecord:
    """The campaign's edition ``code``: inserted, or the stored one when it exists already."""
    insert_ignoring_conflicts(
        connection,
        table_of(CampaignEdition),
        [
            {
                "campaign_id": campaign_id, "code": code, "name": name, "kind": kind,
                "segment": segment, "in_home_date": in_home_date,
                "print_cost": Decimal(str(costs[0])), "paper_cost": Decimal(str(costs[1])),
                "postage_cost": Decimal(str(costs[2])), "other_cost": Decimal(str(costs[3])),
                "model_version": model_version, "plan_id": plan_id, "plan_hash": plan_hash, "file": file,
            }
        ],
    )
    return next(e for e in editions(connection, campaign_id) if e.code == code)


def treatments(connection: Connection, campaign_id: int) -> list[TreatmentRecord]:
    rows = connection.execute(
        select(*_TREATMENT_COLUMNS)
        .where(CampaignTreatment.campaign_id == campaign_id)
        .order_by(CampaignTreatment.id)
    )
    return [TreatmentRecord(**dict(r._mapping)) for r in rows]


def add_treatment(
    connection: Connection,
    campaign_id: int,
    *,
    name: str,
    edition_id: int | None,
    key_code: str | None,
    control_id: int | None = None,
    share: float | None = None,
) -> TreatmentRecord:
    """The campaign's treatment ``name``: inserted, or the stored one when it exists already."""
    insert_ignoring_conflicts(
        connection,
        table_of(CampaignTreatment),
        [
            {
                "campaign_id": campaign_id, "name": name, "edition_id": edition_id,
                "key_code": key_code, "control_id": control_id, "share": share,
            }
        ],
    )
    return next(t for t in treatments(connection, campaign_id) if t.name == name)


def treatment_of_key_code(connection: Connection, key_code: str) -> TreatmentRecord | None:
    row = connection.execute(select(*_TREATMENT_COLUMNS).where(CampaignTreatment.key_code == key_code)).first()
    return None if row is None else TreatmentRecord(**dict(row._mapping))


def known_key_codes(connection: Connection, codes: Collection[str]) -> set[str]:
    """The key codes among ``codes`` that some campaign's treatment carries."""
    found: set[str] = set()
    for chunk in in_chunks(sorted(set(codes))):
        found.update(
            connection.scalars(select(CampaignTreatment.key_code).where(CampaignTreatment.key_code.in_(chunk)))
        )
    return found


def key_code_known(stage_column: Any) -> ColumnElement[bool]:
    """SQL: the staged key code is some treatment's (for the import's set-based check)."""
    treatments_table = table_of(CampaignTreatment)
    return exists(select(literal(1)).select_from(treatments_table).where(treatments_table.c.key_code == stage_column))
