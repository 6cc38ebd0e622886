"""/v1/members: a member's recommendations and profile."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from api.deps import ComputeDep, ConnectionDep, EngineDep, HolderDep, LimitDep, ReadKeyDep, SettingsDep
from api.errors import RESPONSES
from api.profile import member_profile
from api.recommending import answer_recommendations
from api.schemas import MemberProfilePublic, RecommendationsPublic
from recsys.serving import RecommendationQuery
from recsys.text import NO_NUL_PATTERN

router = APIRouter(prefix="/v1/members", tags=["members"])
RECOMMENDATIONS_ROUTE = "/v1/members/{member_id}/recommendations"  # the metrics' route label

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
    # Usually answered by api.fastpath without FastAPI's per-request machinery; this function
    # answers what the fast path leaves to it (a key not yet verified, a parameter it does not
    # read as plainly valid, no model) and declares the route for the OpenAPI document.
    query = RecommendationQuery(
        limit=limit, category=category, include_purchased=include_purchased, in_stock_only=in_stock_only
    )
    version, body = await answer_recommendations(holder, engine, compute, member_id, query)
    return Response(body, media_type="application/json", headers={"X-Model-Version": version})


@router.get(
    "/{member_id}",
    response_model=MemberProfilePublic,
    responses=RESPONSES,
    summary="A member's profile: value tier, segment, top categories, purchase counts, value and the "
    "edition planned for them this quarter, with why",
)
def read_member(
    key: ReadKeyDep, member_id: MemberId, connection: ConnectionDep, settings: SettingsDep
) -> MemberProfilePublic:
    """Name and address are included for keys allowed personal data (editions, admin) only."""
    return member_profile(
        connection, member_id, personal=key.sees_personal_data, top=settings.api.top_categories,
        horizon_days=settings.mailing.value_horizon_days,
    )
