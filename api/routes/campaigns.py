"""/v1/campaigns: campaigns and each edition's incremental effect against its random holdout.

The report is aggregate (counts, rates, money per member, intervals): no member's
personal data, so a read key may see it.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path
from pydantic import BaseModel, ConfigDict, Field

from api.deps import ConnectionDep, ReadKeyDep, SettingsDep
from api.errors import RESPONSES
from campaign.report import campaign_report
from recsys.storage import campaigns as campaigns_db
from recsys.storage import contacts as contacts_db
from recsys.storage.campaigns import UnknownCampaignError
from recsys.text import NO_NUL_PATTERN

router = APIRouter(prefix="/v1/campaigns", tags=["campaigns"])


class CampaignPublic(BaseModel):
    id: int
    name: str
    quarter: str | None
    in_home_date: dt.date
    response_days: int
    late_days: int
    holdout_share: float
    universal_holdout_share: float
    contacts: dict[str, int] = Field(description="contacts per arm: mailed, holdout, suppressed, web")


class CampaignsPublic(BaseModel):
    data: list[CampaignPublic]
    count: int


class OutcomePublic(BaseModel):
    """One outcome per member: mailed and holdout means, the difference and its interval."""

    mailed: float
    holdout: float
    incremental: float = Field(description="mailed minus holdout, per member (per piece)")
    low: float = Field(description="lower limit of the interval (95 % by default)")
    high: float
    method: str = Field(description="newcombe (rates), bootstrap or welch (money)")


class ArmPublic(BaseModel):
    """A treated arm against its holdout; more keys than these are documented in the README."""

    model_config = ConfigDict(extra="allow")

    arm: str
    members: dict[str, int] = Field(description="mailed and holdout members")
    responders: dict[str, int]
    response: OutcomePublic
    orders: OutcomePublic
    revenue: OutcomePublic
    margin: OutcomePublic


class CampaignReportPublic(BaseModel):
    campaign: dict[str, Any]
    sample_ratio: dict[str, Any] = Field(description="mismatch (any arm the wrong size) and each check")
    warnings: list[str]
    margin_rate: float
    contacts: dict[str, Any]
    arms: list[ArmPublic]
    total: ArmPublic | None
    editions: list[dict[str, Any]]
    model_versions: list[dict[str, Any]]
    matchback: dict[str, Any]


CampaignRef = Annotated[
    str,
    Path(
        min_length=1, max_length=64, pattern=NO_NUL_PATTERN, description="the campaign's id or name",
        examples=["2026Q4"],
    ),
]


@router.get("", response_model=CampaignsPublic, responses=RESPONSES, summary="Every campaign, newest first")
def read_campaigns(connection: ConnectionDep, _key: ReadKeyDep) -> CampaignsPublic:
    data = [
        CampaignPublic(
            id=c.id, name=c.name, quarter=c.quarter, in_home_date=c.in_home_date,
            response_days=c.response_days, late_days=c.late_days, holdout_share=c.holdout_share,
            universal_holdout_share=c.universal_holdout_share,
            contacts=contacts_db.contact_counts(connection, c.id),
        )
        for c in campaigns_db.campaigns(connection)
    ]
    return CampaignsPublic(data=data, count=len(data))


@router.get(
    "/{campaign_id}/report",
    response_model=CampaignReportPublic,
    responses=RESPONSES,
    summary="Each edition's incremental effect per segment and arm, with 95 % intervals",
)
def read_campaign_report(
    campaign_id: CampaignRef, connection: ConnectionDep, settings: SettingsDep, _key: ReadKeyDep
) -> CampaignReportPublic:
    """The same report as `bookclub campaigns report --json`: the sample-ratio check first,
    then per arm the mailed and holdout means, the increment and its interval for response,
    orders, revenue and margin per member."""
    try:
        report = campaign_report(connection, campaign_id, settings.campaign)
    except UnknownCampaignError as exc:
        raise HTTPException(404, str(exc)) from None
    return CampaignReportPublic.model_validate(report.to_json())
