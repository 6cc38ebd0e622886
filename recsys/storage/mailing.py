"""What the mailing decision reads of the campaign tables: the pieces members were sent.

(The campaign tables themselves — campaigns, editions, treatments, contacts — are
written by :mod:`recsys.storage.campaigns`; this module only reads them.)
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection, select

from recsys.storage.schema import CampaignContact, CampaignEdition, table_of

__all__ = ["SentPieces", "sent_pieces"]


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
