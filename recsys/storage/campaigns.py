"""Campaigns, their editions and treatments (key codes), contacts, and matchback.

One record type per table (:class:`CampaignRecord`, :class:`EditionRecord`,
:class:`TreatmentRecord`, :class:`ContactRecord`). Contacts are written in bulk
(``recsys.storage.bulk``); matchback and the outcome aggregates of the report are
set-based SQL (``INSERT … SELECT`` with window functions), never Python loops over
order lines. Every function takes a ``Connection``; the caller owns the transaction.

Matchback (:func:`match_orders`) classifies every order line of a campaign's window
once: **direct** when it carries one of the campaign's key codes (credited to the
member's contact of that treatment, or to the treatment alone when the member was
not sent it: a passed-on catalog), **inferred** when the member had a mailed or web
contact and ordered within ``response_days + late_days`` of its in-home date (one
row per candidate contact; ``late`` past ``response_days``), **unattributed**
otherwise (also a line carrying another campaign's key code). The credit rules are
stored side by side: ``credit_last`` (1 to the candidate with the latest in-home
date, mailed before web, then the lowest contact id), ``credit_fractional`` (1/n
over the n candidates) and ``credit_all`` (1 to each). Lines already classified
are never touched again: re-running adds the lines that arrived since, nothing else.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    Connection,
    Date,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    and_,
    case,
    cast,
    distinct,
    exists,
    func,
    insert,
    literal,
    null,
    or_,
    select,
)

from recsys.errors import BookclubError
from recsys.storage.bulk import bulk_insert, in_chunks, insert_ignoring_conflicts
from recsys.storage.schema import (
    Campaign,
    CampaignContact,
    CampaignEdition,
    CampaignMatch,
    CampaignTreatment,
    Member,
    MemberSegment,
    Purchase,
    table_of,
)
from recsys.storage.selections import active_order_line

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


def member_keys(connection: Connection, member_ids: Sequence[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for chunk in in_chunks(list(member_ids)):
        for member_id, key in connection.execute(select(Member.member_id, Member.id).where(Member.member_id.in_(chunk))):
            out[member_id] = int(key)
    return out


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
    """member_id → the member's contacts in the campaign (every arm)."""
    out: dict[str, list[ContactRecord]] = {}
    for chunk in in_chunks(list(member_ids)):
        stmt = _contact_query(campaign_id).where(Member.member_id.in_(chunk)).order_by(CampaignContact.id)
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


# ------------------------------------------------------------------ dates in SQL


def _day(value: dt.date) -> Any:
    """A date bound as a date: compares right with a timestamp column on both databases."""
    return literal(value, Date())


def _days_between(connection: Connection, at: Any, day: Any) -> Any:
    """Whole days from the date ``day`` to the timestamp ``at`` (negative before it)."""
    if connection.dialect.name == "postgresql":
        return cast(at, Date) - day
    return cast(func.julianday(func.date(at)) - func.julianday(day), Integer)


def in_home_dates(connection: Connection, campaign_id: int, arms: Sequence[str]) -> list[dt.date]:
    """The distinct planned in-home dates of the campaign's contacts in ``arms``."""
    campaign = campaign_by_id(connection, campaign_id)
    assert campaign is not None
    days = connection.scalars(
        select(func.coalesce(CampaignContact.in_home_date, _day(campaign.in_home_date)))
        .where(CampaignContact.campaign_id == campaign_id, CampaignContact.arm.in_(arms))
        .distinct()
    ).all()
    return sorted({_as_date(d) for d in days})


# ------------------------------------------------------------------ matchback


@dataclass(frozen=True)
class MatchCounts:
    """What one matchback run classified (lines new to this run only)."""

    direct: int
    inferred: int
    unattributed: int
    late: int
    window: tuple[dt.date, dt.date]

    @property
    def lines(self) -> int:
        return self.direct + self.inferred + self.unattributed


def _candidates_table(suffix: str) -> Table:
    return Table(
        f"matchback_candidates_{suffix}",
        MetaData(),
        Column("purchase_id", BigInteger, nullable=False),
        Column("contact_id", BigInteger),
        Column("treatment_id", Integer),
        Column("match", String(12), nullable=False),
        Column("days_after", Integer),
        Column("in_home", Date),
        Column("arm_rank", Integer, nullable=False),
        prefixes=["TEMPORARY"],
    )


def match_orders(connection: Connection, campaign_id: int) -> MatchCounts:
    """Classify the order lines of the campaign's window not classified yet (module docstring)."""
    import uuid

    campaign = campaign_by_id(connection, campaign_id)
    if campaign is None:
        raise UnknownCampaignError(f"no campaign with id {campaign_id}")
    purchases = table_of(Purchase)
    contacts = table_of(CampaignContact)
    treatments_table = table_of(CampaignTreatment)
    matches = table_of(CampaignMatch)
    span = campaign.response_days + campaign.late_days
    days = in_home_dates(connection, campaign_id, ("mailed", "web")) or [campaign.in_home_date]
    start, end = min([*days, campaign.in_home_date]), max(days) + dt.timedelta(days=span)

    already = exists(
        select(literal(1))
        .select_from(matches)
        .where(matches.c.campaign_id == campaign_id, matches.c.purchase_id == purchases.c.id)
    )
    responders = ("mailed", "web")
    arm_rank = case((contacts.c.arm == "mailed", 0), else_=1)
    candidates = _candidates_table(uuid.uuid4().hex[:8])
    candidates.create(connection)
    try:
        # (a) direct: the line carries one of this campaign's key codes
        home = func.coalesce(contacts.c.in_home_date, _day(campaign.in_home_date))
        connection.execute(
            candidates.insert().from_select(
                ["purchase_id", "contact_id", "treatment_id", "match", "days_after", "in_home", "arm_rank"],
                select(
                    purchases.c.id, contacts.c.id, treatments_table.c.id, literal("direct"),
                    _days_between(connection, purchases.c.purchased_at, home), home,
                    func.coalesce(arm_rank, 2),
                )
                .select_from(purchases)
                .join(
                    treatments_table,
                    and_(
                        treatments_table.c.key_code == purchases.c.key_code,
                        treatments_table.c.campaign_id == campaign_id,
                    ),
                )
                .outerjoin(
                    contacts,
                    and_(
                        contacts.c.campaign_id == campaign_id,
                        contacts.c.member_key == purchases.c.member_key,
                        contacts.c.treatment_id == treatments_table.c.id,
                        contacts.c.arm.in_(responders),
                    ),
                )
                .where(purchases.c.key_code.is_not(None), ~already),
            )
        )
        # (b) inferred: a contacted member ordered within the window after the in-home date
        for day in days:
            connection.execute(
                candidates.insert().from_select(
                    ["purchase_id", "contact_id", "treatment_id", "match", "days_after", "in_home", "arm_rank"],
                    select(
                        purchases.c.id, contacts.c.id, contacts.c.treatment_id, literal("inferred"),
                        _days_between(connection, purchases.c.purchased_at, _day(day)), _day(day), arm_rank,
                    )
                    .select_from(contacts)
                    .join(purchases, purchases.c.member_key == contacts.c.member_key)
                    .where(
                        contacts.c.campaign_id == campaign_id,
                        contacts.c.arm.in_(responders),
                        func.coalesce(contacts.c.in_home_date, _day(campaign.in_home_date)) == _day(day),
                        purchases.c.purchased_at >= _day(day),
                        purchases.c.purchased_at < _day(day + dt.timedelta(days=span)),
                        purchases.c.key_code.is_(None),
                        ~already,
                    ),
                )
            )
        ranked = select(
            candidates,
            func.row_number()
            .over(
                partition_by=candidates.c.purchase_id,
                order_by=(candidates.c.in_home.desc(), candidates.c.arm_rank, candidates.c.contact_id),
            )
            .label("rn"),
            func.count().over(partition_by=candidates.c.purchase_id).label("n"),
        ).subquery()
        late = case((ranked.c.days_after >= campaign.response_days, True), else_=False)
        connection.execute(
            matches.insert().from_select(
                [
                    "campaign_id", "purchase_id", "contact_id", "treatment_id", "match", "days_after",
                    "late", "credit_last", "credit_fractional", "credit_all",
                ],
                select(
                    literal(campaign_id), ranked.c.purchase_id, ranked.c.contact_id, ranked.c.treatment_id,
                    ranked.c.match, ranked.c.days_after, late,
                    case((ranked.c.rn == 1, 1.0), else_=0.0),
                    case((ranked.c.match == "direct", 1.0), else_=1.0 / cast(ranked.c.n, Float)),
                    literal(1.0),
                ).where(or_(ranked.c.match == "inferred", ranked.c.rn == 1)),
            )
        )
        # (c) unattributed: every other line of the window
        unattributed = connection.execution_options(preserve_rowcount=True).execute(
            matches.insert().from_select(
                [
                    "campaign_id", "purchase_id", "contact_id", "treatment_id", "match", "days_after",
                    "late", "credit_last", "credit_fractional", "credit_all",
                ],
                select(
                    literal(campaign_id), purchases.c.id, null(), null(), literal("unattributed"),
                    _days_between(connection, purchases.c.purchased_at, _day(campaign.in_home_date)),
                    literal(False), literal(0.0), literal(0.0), literal(0.0),
                ).where(
                    purchases.c.purchased_at >= _day(start),
                    purchases.c.purchased_at < _day(end),
                    ~already,
                ),
            )
        ).rowcount
        counts: dict[str, int] = {
            str(match): int(n)
            for match, n in connection.execute(
                select(candidates.c.match, func.count(distinct(candidates.c.purchase_id))).group_by(candidates.c.match)
            )
        }
        late_lines = connection.execute(
            select(func.count(distinct(candidates.c.purchase_id))).where(
                candidates.c.days_after >= campaign.response_days
            )
        ).scalar_one()
    finally:
        candidates.drop(connection)
    return MatchCounts(
        direct=int(counts.get("direct", 0)),
        inferred=int(counts.get("inferred", 0)),
        unattributed=int(unattributed),
        late=int(late_lines),
        window=(start, end),
    )


@dataclass(frozen=True)
class MatchTotals:
    """Stored matchback of a campaign: lines and revenue by class, credited revenue per treatment."""

    lines: dict[str, int]  # match kind → distinct order lines
    revenue: dict[str, float]  # match kind → revenue of those lines
    late_lines: int
    credited: dict[int | None, dict[str, float]]  # treatment id → {"last", "fractional", "all"} revenue


def match_totals(connection: Connection, campaign_id: int) -> MatchTotals:
    """The campaign's matched active orders (auto-ship lines and their returns are read apart:
    ``selections.autoship_matches``)."""
    matches = table_of(CampaignMatch)
    purchases = table_of(Purchase)
    value = cast(purchases.c.quantity * purchases.c.unit_price, Float)
    per_line = (
        select(
            matches.c.match,
            matches.c.purchase_id,
            func.max(value).label("value"),
            func.max(case((matches.c.late, 1), else_=0)).label("late"),
        )
        .join(purchases, purchases.c.id == matches.c.purchase_id)
        .where(matches.c.campaign_id == campaign_id, active_order_line(purchases))
        .group_by(matches.c.match, matches.c.purchase_id)
        .subquery()
    )
    lines: dict[str, int] = {}
    revenue: dict[str, float] = {}
    late_lines = 0
    for match, n, total, late in connection.execute(
        select(per_line.c.match, func.count(), func.coalesce(func.sum(per_line.c.value), 0.0), func.sum(per_line.c.late))
        .group_by(per_line.c.match)
    ):
        lines[str(match)] = int(n)
        revenue[str(match)] = float(total)
        late_lines += int(late or 0)
    credited: dict[int | None, dict[str, float]] = {}
    for treatment_id, last, fractional, every in connection.execute(
        select(
            matches.c.treatment_id,
            func.sum(matches.c.credit_last * value),
            func.sum(matches.c.credit_fractional * value),
            func.sum(matches.c.credit_all * value),
        )
        .join(purchases, purchases.c.id == matches.c.purchase_id)
        .where(matches.c.campaign_id == campaign_id, matches.c.match != "unattributed", active_order_line(purchases))
        .group_by(matches.c.treatment_id)
    ):
        credited[treatment_id] = {
            "last": float(last or 0.0), "fractional": float(fractional or 0.0), "all": float(every or 0.0)
        }
    return MatchTotals(lines, revenue, late_lines, credited)


def match_classes(connection: Connection, campaign_id: int) -> dict[str, str]:
    """line_id → its class in the campaign (direct / inferred / unattributed); for checks and tests."""
    matches = table_of(CampaignMatch)
    rows = connection.execute(
        select(Purchase.line_id, matches.c.match)
        .join(Purchase, Purchase.id == matches.c.purchase_id)
        .where(matches.c.campaign_id == campaign_id)
        .distinct()
    )
    return {line_id: match for line_id, match in rows}


# ------------------------------------------------------------------ outcomes for the report


@dataclass(frozen=True)
class ContactOutcomes:
    """Per contact with any order line in its response window: orders and net revenue."""

    contact_id: npt.NDArray[np.int64]
    orders: npt.NDArray[np.float64]
    revenue: npt.NDArray[np.float64]


def contact_outcomes(connection: Connection, campaign_id: int) -> ContactOutcomes:
    """What each mailed or held-out member bought in ``[in-home, in-home + response_days)``.

    Every line of the member counts, attributed or not: the comparison with the
    holdout, not the matchback, says what the mailing caused. Orders are distinct
    orders with a positive line; revenue is net of returns. Active orders only: auto-ship
    lines (the negative option) and their returns are left out (``selections.active_order_line``).
    """
    campaign = campaign_by_id(connection, campaign_id)
    assert campaign is not None
    contacts = table_of(CampaignContact)
    purchases = table_of(Purchase)
    order_key = func.coalesce(purchases.c.order_id, purchases.c.line_id)
    ids: list[int] = []
    orders: list[float] = []
    revenue: list[float] = []
    for day in in_home_dates(connection, campaign_id, ("mailed", "holdout")):
        stmt = (
            select(
                contacts.c.id,
                func.count(distinct(case((purchases.c.quantity > 0, order_key)))),
                func.sum(cast(purchases.c.quantity * purchases.c.unit_price, Float)),
            )
            .select_from(contacts)
            .join(purchases, purchases.c.member_key == contacts.c.member_key)
            .where(
                contacts.c.campaign_id == campaign_id,
                contacts.c.arm.in_(("mailed", "holdout")),
                func.coalesce(contacts.c.in_home_date, _day(campaign.in_home_date)) == _day(day),
                purchases.c.purchased_at >= _day(day),
                purchases.c.purchased_at < _day(day + dt.timedelta(days=campaign.response_days)),
                active_order_line(purchases),
            )
            .group_by(contacts.c.id)
        )
        for contact_id, n, total in connection.execute(stmt):
            ids.append(int(contact_id))
            orders.append(float(n))
            revenue.append(float(total or 0.0))
    return ContactOutcomes(
        np.asarray(ids, dtype=np.int64), np.asarray(orders, dtype=np.float64), np.asarray(revenue, dtype=np.float64)
    )
