"""Audience and contacts: the ``campaign_contacts`` table of a campaign.

The members segmented in a quarter (:class:`Audience`), contacts written in bulk
(:func:`write_contacts`, rows in :data:`CONTACT_COLUMNS` or
:data:`PLANNED_CONTACT_COLUMNS` order, through ``recsys.storage.bulk``) or one web
edition at a time (:func:`record_web_contact`), and their reads: a member's planned
contact (:func:`member_plan`), counts per arm and segment, contacts with their
treatment and edition (:class:`ContactRecord`), and the mailed and holdout contacts
as arrays (:func:`contact_arrays`, :func:`contact_members`, arms as :data:`ARM_CODES`).
Campaigns, editions and treatments themselves are in :mod:`recsys.storage.campaigns`.
Every function takes a ``Connection``; the caller owns the transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection, Float, case, cast, func, select

from recsys.storage.bulk import bulk_insert, in_chunks
from recsys.storage.campaigns import _as_date, _now
from recsys.storage.members import member_keys
from recsys.storage.schema import (
    Campaign,
    CampaignContact,
    CampaignEdition,
    CampaignTreatment,
    Member,
    MemberSegment,
    table_of,
)

CONTACT_COLUMNS = (
    "campaign_id",
    "member_key",
    "treatment_id",
    "edition_id",
    "arm",
    "reason",
    "segment",
    "tier",
    "holdout_share",
    "in_home_date",
    "cost",
    "model_version",
    "plan_id",
    "file",
    "created_at",
)
"""The column order of the tuples :func:`write_contacts` takes."""

PLANNED_CONTACT_COLUMNS = (*CONTACT_COLUMNS, "expected_profit", "p_alive", "expected_purchases", "expected_value")
"""…and of a contact the mailing decision planned: its expected profit and the member's value."""

ARM_CODES = {"mailed": 0, "holdout": 1, "suppressed": 2, "web": 3, "not_mailed": 4}
"""Arms as the small integers :func:`contact_arrays` returns."""


@dataclass(frozen=True)
class ContactRecord:
    """A member's contact as the renderer needs it: arm, key code, lineage."""

    id: int
    member_id: str
    arm: str
    treatment: str
    key_code: str | None
    edition_code: str | None
    kind: str | None
    segment: int | None
    file: str | None
    model_version: str | None


# ------------------------------------------------------------------ audience and contacts


@dataclass(frozen=True)
class Audience:
    """The members segmented in a quarter, by member key: what contact planning needs."""

    member_key: npt.NDArray[np.int64]
    member_id: list[str]
    segment: npt.NDArray[np.int64]
    tier: list[str]
    status: list[str]
    has_address: npt.NDArray[np.bool_]
    monetary: npt.NDArray[np.float64]

    def __len__(self) -> int:
        return int(self.member_key.size)


def quarter_audience(connection: Connection, quarter: str) -> Audience:
    """Every member segmented in ``quarter`` with segment, tier, status and whether an address is known."""
    rows = connection.execute(
        select(
            Member.id, Member.member_id, MemberSegment.segment, MemberSegment.tier, Member.status,
            case((func.coalesce(Member.address, "") == "", 0), else_=1), MemberSegment.monetary,
        )
        .join(MemberSegment, MemberSegment.member_key == Member.id)
        .where(MemberSegment.quarter == quarter)
        .order_by(Member.id)
    ).all()
    return Audience(
        member_key=np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows)),
        member_id=[r[1] for r in rows],
        segment=np.fromiter((r[2] for r in rows), dtype=np.int64, count=len(rows)),
        tier=[r[3] for r in rows],
        status=[r[4] for r in rows],
        has_address=np.fromiter((bool(r[5]) for r in rows), dtype=np.bool_, count=len(rows)),
        monetary=np.fromiter((float(r[6] or 0.0) for r in rows), dtype=np.float64, count=len(rows)),
    )


def contacted_member_keys(connection: Connection, campaign_id: int) -> npt.NDArray[np.int64]:
    """Member keys with any contact in the campaign (sorted, unique)."""
    keys = connection.scalars(
        select(CampaignContact.member_key).where(CampaignContact.campaign_id == campaign_id).distinct()
    ).all()
    return np.unique(np.asarray(keys, dtype=np.int64))


def write_contacts(
    connection: Connection, rows: Iterable[Sequence[Any]], columns: Sequence[str] = CONTACT_COLUMNS
) -> int:
    """Append contact rows (tuples in ``columns`` order: :data:`CONTACT_COLUMNS`, or
    :data:`PLANNED_CONTACT_COLUMNS` for a planned mailing) in bulk; return how many."""
    if tuple(columns) not in (CONTACT_COLUMNS, PLANNED_CONTACT_COLUMNS):
        raise ValueError(f"contact columns: {', '.join(columns)} (neither CONTACT_COLUMNS nor PLANNED_CONTACT_COLUMNS)")
    return bulk_insert(connection, CampaignContact.__tablename__, tuple(columns), rows)


@dataclass(frozen=True)
class MemberPlanRecord:
    """A member's contact in the latest campaign that has one (web contacts aside): what the
    quarter planned for them and why, with their value when the plan was made."""

    campaign: str
    quarter: str | None
    in_home_date: dt.date | None
    arm: str
    reason: str | None
    edition_code: str | None
    edition_kind: str | None
    key_code: str | None
    expected_profit: float | None
    p_alive: float | None
    expected_purchases: float | None
    expected_value: float | None


def member_plan(connection: Connection, member_key: int) -> MemberPlanRecord | None:
    """The member's planned contact in their latest campaign (by in-home date, then id), or None.
    One indexed query (``ix_campaign_contacts_member_key_campaign_id``)."""
    treatments_table = table_of(CampaignTreatment)
    editions_table = table_of(CampaignEdition)
    row = connection.execute(
        select(
            Campaign.name, Campaign.quarter, func.coalesce(CampaignContact.in_home_date, Campaign.in_home_date),
            CampaignContact.arm, CampaignContact.reason, editions_table.c.code, editions_table.c.kind,
            treatments_table.c.key_code, CampaignContact.expected_profit, CampaignContact.p_alive,
            CampaignContact.expected_purchases, CampaignContact.expected_value,
        )
        .join(Campaign, Campaign.id == CampaignContact.campaign_id)
        .join(treatments_table, treatments_table.c.id == CampaignContact.treatment_id)
        .outerjoin(editions_table, editions_table.c.id == CampaignContact.edition_id)
        .where(CampaignContact.member_key == member_key, CampaignContact.arm != "web")
        .order_by(Campaign.in_home_date.desc(), Campaign.id.desc(), CampaignContact.id)
        .limit(1)
    ).first()  # fmt: skip
    if row is None:
        return None
    day = None if row[2] is None else _as_date(row[2])
    return MemberPlanRecord(
        row[0], row[1], day, row[3], row[4], row[5], row[6], row[7],
        *(None if v is None else float(v) for v in row[8:12]),
    )


def contact_counts(connection: Connection, campaign_id: int) -> dict[str, int]:
    """Contacts per arm."""
    rows = connection.execute(
        select(CampaignContact.arm, func.count())
        .where(CampaignContact.campaign_id == campaign_id)
        .group_by(CampaignContact.arm)
    )
    return {arm: int(n) for arm, n in rows}


def contact_counts_by_segment(connection: Connection, campaign_id: int) -> dict[tuple[int, str], int]:
    """(segment, arm) → contacts (segment -1 when none)."""
    rows = connection.execute(
        select(func.coalesce(CampaignContact.segment, -1), CampaignContact.arm, func.count())
        .where(CampaignContact.campaign_id == campaign_id)
        .group_by(CampaignContact.segment, CampaignContact.arm)
    )
    return {(int(segment), str(arm)): int(n) for segment, arm, n in rows}


def suppression_reasons(connection: Connection, campaign_id: int) -> dict[str, int]:
    rows = connection.execute(
        select(CampaignContact.reason, func.count())
        .where(CampaignContact.campaign_id == campaign_id, CampaignContact.arm == "suppressed")
        .group_by(CampaignContact.reason)
    )
    return {str(reason): int(n) for reason, n in rows}


def _contact_query(campaign_id: int) -> Any:
    treatments_table = table_of(CampaignTreatment)
    editions_table = table_of(CampaignEdition)
    return (
        select(
            CampaignContact.id, Member.member_id, CampaignContact.arm, treatments_table.c.name,
            treatments_table.c.key_code, editions_table.c.code, editions_table.c.kind,
            CampaignContact.segment, CampaignContact.file, CampaignContact.model_version,
        )
        .join(Member, Member.id == CampaignContact.member_key)
        .join(treatments_table, treatments_table.c.id == CampaignContact.treatment_id)
        .outerjoin(editions_table, editions_table.c.id == CampaignContact.edition_id)
        .where(CampaignContact.campaign_id == campaign_id)
    )


def member_contacts(
    connection: Connection, campaign_id: int, member_ids: Sequence[str]
) -> dict[str, list[ContactRecord]]:
    """member_id → the member's contacts in the campaign (every arm). By member key, so that the
    (member key, campaign) index is read: filtered by member id, SQLite without statistics read
    every contact of the campaign instead (1 s a call at 1.5M contacts; the editions make one a batch)."""
    out: dict[str, list[ContactRecord]] = {}
    for chunk in in_chunks(list(member_ids)):
        keys = list(member_keys(connection, chunk).values())
        if not keys:
            continue
        stmt = _contact_query(campaign_id).where(CampaignContact.member_key.in_(keys)).order_by(CampaignContact.id)
        for row in connection.execute(stmt):
            out.setdefault(row[1], []).append(ContactRecord(*row))
    return out


def contacts_with_files(connection: Connection, campaign_id: int) -> list[ContactRecord]:
    """Mailed and web contacts that name a print file (for reconciling with the files on disk)."""
    stmt = (
        _contact_query(campaign_id)
        .where(CampaignContact.arm.in_(("mailed", "web")), CampaignContact.file.is_not(None))
        .order_by(CampaignContact.id)
    )
    return [ContactRecord(*row) for row in connection.execute(stmt)]


def record_web_contact(
    connection: Connection,
    campaign_id: int,
    member_key: int,
    *,
    treatment_id: int,
    edition_id: int | None,
    segment: int | None,
    tier: str | None,
    model_version: str | None,
    plan_id: int | None,
    file: str | None,
    on: dt.date,
) -> bool:
    """A web edition fetched on demand, recorded once per member and treatment; True when new."""
    row = {
        "campaign_id": campaign_id, "member_key": member_key, "treatment_id": treatment_id,
        "edition_id": edition_id, "arm": "web", "reason": "on-demand web edition",
        "segment": segment, "tier": tier, "holdout_share": None, "in_home_date": on,
        "cost": Decimal("0"), "model_version": model_version, "plan_id": plan_id,
        "file": file, "created_at": _now(),
    }
    stmt: Any
    if connection.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        stmt = pg_insert(CampaignContact).values(**row).on_conflict_do_nothing()
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        stmt = sqlite_insert(CampaignContact).values(**row).on_conflict_do_nothing()
    return bool(connection.execution_options(preserve_rowcount=True).execute(stmt).rowcount)


def segment_treatments(connection: Connection, campaign_id: int) -> dict[int, tuple[int, int, str | None]]:
    """segment → (treatment id, edition id, key code) of the campaign's per-segment editions."""
    treatments_table = table_of(CampaignTreatment)
    editions_table = table_of(CampaignEdition)
    rows = connection.execute(
        select(editions_table.c.segment, treatments_table.c.id, editions_table.c.id, treatments_table.c.key_code)
        .join(editions_table, editions_table.c.id == treatments_table.c.edition_id)
        .where(treatments_table.c.campaign_id == campaign_id, editions_table.c.segment.is_not(None))
        .order_by(treatments_table.c.id)
    )
    out: dict[int, tuple[int, int, str | None]] = {}
    for segment, treatment_id, edition_id, code in rows:
        out.setdefault(int(segment), (int(treatment_id), int(edition_id), code))
    return out


def mailed_files(connection: Connection, campaign_id: int) -> dict[str, str | None]:
    """member_id → the print file of the member's mailed contact (first one), for every mailed member."""
    rows = connection.execute(
        select(Member.member_id, CampaignContact.file)
        .join(Member, Member.id == CampaignContact.member_key)
        .where(CampaignContact.campaign_id == campaign_id, CampaignContact.arm == "mailed")
        .order_by(CampaignContact.id)
    )
    out: dict[str, str | None] = {}
    for member_id, file in rows:
        out.setdefault(member_id, file)
    return out


@dataclass(frozen=True)
class ContactArrays:
    """The contacts of a campaign in the arms compared (mailed, holdout), one entry per contact."""

    contact_id: npt.NDArray[np.int64]
    treatment_id: npt.NDArray[np.int64]
    arm: npt.NDArray[np.int8]  # ARM_CODES
    segment: npt.NDArray[np.int64]  # -1 when none
    holdout_share: npt.NDArray[np.float64]  # NaN when the campaign's arms came from outside
    cost: npt.NDArray[np.float64]


def contact_arrays(connection: Connection, campaign_id: int) -> ContactArrays:
    """Mailed and holdout contacts as arrays, ordered by contact id (one round trip)."""
    arm_code = case(
        *((CampaignContact.arm == name, code) for name, code in ARM_CODES.items()), else_=-1
    )
    rows = connection.execute(
        select(
            CampaignContact.id, CampaignContact.treatment_id, arm_code,
            func.coalesce(CampaignContact.segment, -1), CampaignContact.holdout_share,
            cast(CampaignContact.cost, Float),
        )
        .where(CampaignContact.campaign_id == campaign_id, CampaignContact.arm.in_(("mailed", "holdout")))
        .order_by(CampaignContact.id)
    ).all()
    n = len(rows)
    return ContactArrays(
        contact_id=np.fromiter((r[0] for r in rows), dtype=np.int64, count=n),
        treatment_id=np.fromiter((r[1] for r in rows), dtype=np.int64, count=n),
        arm=np.fromiter((r[2] for r in rows), dtype=np.int8, count=n),
        segment=np.fromiter((r[3] for r in rows), dtype=np.int64, count=n),
        holdout_share=np.fromiter((np.nan if r[4] is None else r[4] for r in rows), dtype=np.float64, count=n),
        cost=np.fromiter((r[5] or 0.0 for r in rows), dtype=np.float64, count=n),
    )


@dataclass(frozen=True)
class ContactMembers:
    """Mailed and holdout contacts with what a response model needs of their members."""

    member_key: npt.NDArray[np.int64]
    member_id: list[str]
    treatment_id: npt.NDArray[np.int64]
    arm: npt.NDArray[np.int8]  # ARM_CODES
    segment: npt.NDArray[np.int64]  # -1 when none
    tier: list[str | None]
    recency_days: npt.NDArray[np.int64]  # as of the quarter's segmentation; -1 never bought or unknown


def contact_members(connection: Connection, campaign_id: int, quarter: str | None) -> ContactMembers:
    """The campaign's mailed and holdout contacts (by contact id) with member id and recency."""
    recency = (
        select(MemberSegment.member_key, MemberSegment.recency_days)
        .where(MemberSegment.quarter == (quarter or ""))
        .subquery()
    )
    arm_code = case(*((CampaignContact.arm == name, code) for name, code in ARM_CODES.items()), else_=-1)
    rows = connection.execute(
        select(
            CampaignContact.member_key, Member.member_id, CampaignContact.treatment_id, arm_code,
            func.coalesce(CampaignContact.segment, -1), CampaignContact.tier,
            func.coalesce(recency.c.recency_days, -1),
        )
        .join(Member, Member.id == CampaignContact.member_key)
        .outerjoin(recency, recency.c.member_key == CampaignContact.member_key)
        .where(CampaignContact.campaign_id == campaign_id, CampaignContact.arm.in_(("mailed", "holdout")))
        .order_by(CampaignContact.id)
    ).all()
    n = len(rows)
    return ContactMembers(
        member_key=np.fromiter((r[0] for r in rows), dtype=np.int64, count=n),
        member_id=[r[1] for r in rows],
        treatment_id=np.fromiter((r[2] for r in rows), dtype=np.int64, count=n),
        arm=np.fromiter((r[3] for r in rows), dtype=np.int8, count=n),
        segment=np.fromiter((r[4] for r in rows), dtype=np.int64, count=n),
        tier=[r[5] for r in rows],
        recency_days=np.fromiter((r[6] for r in rows), dtype=np.int64, count=n),
    )
