"""/v1/segments: a quarter's reading-preference segments and their profiles."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, Field

from api.deps import ConnectionDep, ReadKeyDep
from api.errors import RESPONSES
from recsys.storage import segments as segments_db

router = APIRouter(prefix="/v1/segments", tags=["segments"])


class CategorySharePublic(BaseModel):
    code: str
    name: str
    share: float = Field(description="mean share of the members' reading in this category")
    lift: float = Field(description="share in the segment ÷ share over all members")


class TypicalTitlePublic(BaseModel):
    title_id: str
    title: str
    copies: int


class SegmentPublic(BaseModel):
    quarter: str
    segment: int
    name: str
    size: int
    model_version: str | None
    tier_mix: dict[str, int] = Field(description="members per value tier: core, regular, occasional, lapsed")
    average_spend: float
    average_orders: float
    top_categories: list[CategorySharePublic]
    typical_titles: list[TypicalTitlePublic]


class SegmentsPublic(BaseModel):
    quarter: str
    data: list[SegmentPublic]
    count: int


def _public(quarter: str, row: dict[str, Any]) -> SegmentPublic:
    profile = json.loads(row["profile_json"])
    return SegmentPublic(
        quarter=quarter,
        segment=row["segment"],
        name=row["name"],
        size=row["size"],
        model_version=row["model_version"],
        tier_mix=profile.get("tier_mix", {}),
        average_spend=profile.get("average_spend", 0.0),
        average_orders=profile.get("average_orders", 0.0),
        top_categories=profile.get("top_categories", []),
        typical_titles=profile.get("typical_titles", []),
    )


@router.get(
    "",
    response_model=SegmentsPublic,
    responses=RESPONSES,
    summary="A quarter's segments: name, size, tier mix, top categories, typical titles",
)
def read_segments(
    connection: ConnectionDep,
    _key: ReadKeyDep,
    quarter: Annotated[
        str | None,
        Query(
            pattern=r"^\d{4}Q[1-4]$",
            description="default: the latest quarter segmented",
            examples=["2026Q4"],
        ),
    ] = None,
) -> SegmentsPublic:
    if quarter is None:
        quarters = segments_db.quarters_with_segments(connection)
        if not quarters:
            raise HTTPException(404, "no quarter has been segmented yet: run `bookclub segment`")
        quarter = quarters[-1]
    rows = segments_db.segments_of_quarter(connection, quarter)
    if not rows:
        raise HTTPException(
            404, f"no segments stored for {quarter}: run `bookclub segment --quarter {quarter}`"
        )
    data = [_public(quarter, row) for row in rows]
    return SegmentsPublic(quarter=quarter, data=data, count=len(data))
