"""/v1/members: a member's recommendations and profile."""

from __future__ import annotations

from functools import partial
from typing import Annotated

import anyio
from fastapi import APIRouter, Path, Query, Response

from api.deps import ComputeDep, ConnectionDep, EngineDep, HolderDep, LimitDep, ReadKeyDep, SettingsDep
from api.errors import RESPONSES
from api.metrics import record_recommendation
from api.profile import member_profile
from api.recommending import TitleShelf, recommendations_json
from api.schemas import MemberProfilePublic, RecommendationsPublic
from recsys.serving import RecommendationQuery
from recsys.text import NO_NUL_PATTERN

router = APIRouter(prefix="/v1/members", tags=["members"])

MemberId = Annotated[
    str,
    Path(
        min_length=1, max_length=64, pattern=NO_NUL_PATTERN, description="the club's member id",
        examples=["M000123"],
    ),
]


@router.get(
    "/{member_id}/recommendations",
    response_model=RecommendationsPublic,
    responses=RESPONSES,
    summary="Titles recommended to a member, with a score and a readable reason",
)
async def read_recommendations(
    _key: ReadKeyDep,
    member_id: MemberId,
    engine: EngineDep,
    compute: ComputeDep,
    holder: HolderDep,
    limit: LimitDep,
    category: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=64,
            pattern=NO_NUL_PATTERN,
            description="only titles in this category (or below)",
            examples=["I247"],
        ),
    ] = None,
    include_purchased: Annotated[
        bool,
        Query(
            description="keep titles the member bought (the model itself always leaves out "
            "the titles of the member's history)"
        ),
    ] = False,
    in_stock_only: Annotated[bool, Query(description="drop titles out of stock")] = True,
) -> Response:
    """A member with no history gets cold-start titles (declared categories, then popular)
    with their reason; purchases posted since training count at once."""
    model, prepared = holder.serving()  # one model (and its title cache) for the whole request
    work = partial(
        recommendations_json,
        engine,
        model,
        member_id,
        RecommendationQuery(
            limit=limit, category=category, include_purchased=include_purchased, in_stock_only=in_stock_only
        ),
        shelf=prepared if isinstance(prepared, TitleShelf) else None,
    )
    # the body is serialised in the worker thread from cached title JSON (RecommendationsPublic,
    # checked in tests/api/test_recommendations_json.py), not validated again by FastAPI
    cold_start, body = await anyio.to_thread.run_sync(work, limiter=compute)
    record_recommendation(cold_start)
    return Response(body, media_type="application/json", headers={"X-Model-Version": model.version})


@router.get(
    "/{member_id}",
    response_model=MemberProfilePublic,
    responses=RESPONSES,
    summary="A member's profile: value tier, segment, top categories, purchase counts",
)
def read_member(
    key: ReadKeyDep, member_id: MemberId, connection: ConnectionDep, settings: SettingsDep
) -> MemberProfilePublic:
    """Name and address are included for keys allowed personal data (editions, admin) only."""
    return member_profile(
        connection, member_id, personal=key.sees_personal_data, top=settings.api.top_categories
    )
