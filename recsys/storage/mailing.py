"""What the mailing decision reads: the pieces members were sent, the randomized contacts of earlier
campaigns, and a quarter's segmented members with their R/F/M.

(The campaign tables themselves are written by :mod:`recsys.storage.campaigns` (campaigns,
editions, treatments) and :mod:`recsys.storage.contacts` (contacts); this module only reads them.)
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection, and_, func, select

from recsys.storage.line_kinds import active_order_line
from recsys.storage.schema import (
    CampaignContact,
    CampaignEdition,
    MemberSegment,
    Purchase,
    TitleCategory,
    table_of,
)

__all__ = [
    "CategoryUnits",
    "RandomizedContacts",
    "SegmentFeatures",
    "SentPieces",
    "category_units",
    "randomized_contacts",
    "segment_features",
    "sent_pieces",
]


@dataclass(frozen=True, eq=False)
class SentPieces:
    """Mailed contacts as columns: member key, in-home date (ordinal day), edition kind and code, campaign."""

    member_key: npt.NDArray[np.int64]
    day: npt.NDArray[np.int64]
    kind: list[str]
    code: list[str]
    campaign_id: npt.NDArray[np.int64]

    def __len__(self) -> int:
        return int(self.member_key.size)


def _ordinal(value: object) -> int:
    day = value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value)[:10])
    return day.toordinal()


def sent_pieces(
    connection: Connection, since: dt.date, until: dt.date, *, exclude_campaign: int | None = None
) -> SentPieces:
    """Pieces mailed (arm ``mailed``) with an in-home date in ``[since, until]``, other than
    those of ``exclude_campaign`` (the campaign being planned: its own contacts are replaced)."""
    editions = table_of(CampaignEdition)
    stmt = (
        select(
            CampaignContact.member_key, CampaignContact.in_home_date, editions.c.kind, editions.c.code,
            CampaignContact.campaign_id,
        )
        .join(editions, editions.c.id == CampaignContact.edition_id)
        .where(
            CampaignContact.arm == "mailed",
            CampaignContact.in_home_date >= since,
            CampaignContact.in_home_date <= until,
        )
    )  # fmt: skip
    if exclude_campaign is not None:
        stmt = stmt.where(CampaignContact.campaign_id != exclude_campaign)
    rows = connection.execute(stmt).all()
    n = len(rows)
    return SentPieces(
        member_key=np.fromiter((r[0] for r in rows), dtype=np.int64, count=n),
        day=np.fromiter((_ordinal(r[1]) for r in rows), dtype=np.int64, count=n),
        kind=[r[2] for r in rows],
        code=[r[3] for r in rows],
        campaign_id=np.fromiter((r[4] for r in rows), dtype=np.int64, count=n),
    )


@dataclass(frozen=True, eq=False)
class SegmentFeatures:
    """A quarter's segmented members with their tier, segment and R/F/M (recency -1 when none)."""

    member_key: npt.NDArray[np.int64]
    tier: list[str]
    segment: npt.NDArray[np.int64]
    recency_days: npt.NDArray[np.float64]
    frequency: npt.NDArray[np.float64]
    monetary: npt.NDArray[np.float64]

    def __len__(self) -> int:
        return int(self.member_key.size)


def segment_features(connection: Connection, quarter: str) -> SegmentFeatures:
    """Every member segmented in ``quarter``, by member key."""
    rows = connection.execute(
        select(
            MemberSegment.member_key, MemberSegment.tier, MemberSegment.segment, MemberSegment.recency_days,
            MemberSegment.frequency, MemberSegment.monetary,
        )
        .where(MemberSegment.quarter == quarter)
        .order_by(MemberSegment.member_key)
    ).all()  # fmt: skip
    n = len(rows)
    return SegmentFeatures(
        member_key=np.fromiter((r[0] for r in rows), dtype=np.int64, count=n),
        tier=[r[1] for r in rows],
        segment=np.fromiter((r[2] for r in rows), dtype=np.int64, count=n),
        recency_days=np.fromiter((-1.0 if r[3] is None else r[3] for r in rows), dtype=np.float64, count=n),
        frequency=np.fromiter((r[4] or 0 for r in rows), dtype=np.float64, count=n),
        monetary=np.fromiter((r[5] or 0.0 for r in rows), dtype=np.float64, count=n),
    )


@dataclass(frozen=True, eq=False)
class RandomizedContacts:
    """A campaign's mailed and held-out contacts: the randomized comparison an uplift model learns from."""

    contact_id: npt.NDArray[np.int64]
    member_key: npt.NDArray[np.int64]
    held_out: npt.NDArray[np.bool_]
    kind: list[str]  # the edition's kind (for a holdout: the edition they were held out of)

    def __len__(self) -> int:
        return int(self.contact_id.size)


def randomized_contacts(connection: Connection, campaign_id: int) -> RandomizedContacts:
    editions = table_of(CampaignEdition)
    rows = connection.execute(
        select(CampaignContact.id, CampaignContact.member_key, CampaignContact.arm, editions.c.kind)
        .join(editions, editions.c.id == CampaignContact.edition_id)
        .where(CampaignContact.campaign_id == campaign_id, CampaignContact.arm.in_(("mailed", "holdout")))
        .order_by(CampaignContact.id)
    ).all()
    n = len(rows)
    return RandomizedContacts(
        contact_id=np.fromiter((r[0] for r in rows), dtype=np.int64, count=n),
        member_key=np.fromiter((r[1] for r in rows), dtype=np.int64, count=n),
        held_out=np.fromiter((r[2] == "holdout" for r in rows), dtype=np.bool_, count=n),
        kind=[r[3] for r in rows],
    )


@dataclass(frozen=True, eq=False)
class CategoryUnits:
    """Net units per (member, primary category) of the lines in a window, as columns; ``code`` indexes ``codes``."""

    member_key: npt.NDArray[np.int64]
    code: npt.NDArray[np.int64]
    units: npt.NDArray[np.float64]
    codes: list[str]

    def __len__(self) -> int:
        return int(self.member_key.size)


def category_units(connection: Connection, since: dt.datetime, until: dt.datetime) -> CategoryUnits:
    """Every member's net units per primary category of their own order lines in ``[since, until)``
    (positive only): auto-ship lines and their returns are left out (``line_kinds.active_order_line``) —
    a main selection sent unasked says nothing of what the member likes."""
    units = func.sum(Purchase.quantity)
    rows = connection.execute(
        select(Purchase.member_key, TitleCategory.category_code, units)
        .join(TitleCategory, and_(TitleCategory.title_key == Purchase.title_key, TitleCategory.is_primary))
        .where(Purchase.purchased_at >= since, Purchase.purchased_at < until, active_order_line(table_of(Purchase)))
        .group_by(Purchase.member_key, TitleCategory.category_code)
        .having(units > 0)
    ).all()
    n = len(rows)
    index: dict[str, int] = {}
    code = np.fromiter((index.setdefault(r[1], len(index)) for r in rows), dtype=np.int64, count=n)
    return CategoryUnits(
        member_key=np.fromiter((r[0] for r in rows), dtype=np.int64, count=n),
        code=code,
        units=np.fromiter((r[2] for r in rows), dtype=np.float64, count=n),
        codes=list(index),
    )
