"""/v1/categories: what sells in a category."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response

from api.deps import ConnectionDep, LimitDep, ModelDep, ReadKeyDep
from api.errors import RESPONSES
from api.recommending import popular_in_category
from api.schemas import PopularTitlesPublic
from recsys.text import NO_NUL_PATTERN

router = APIRouter(prefix="/v1/categories", tags=["categories"])


@router.get(
    "/{code}/popular",
    response_model=PopularTitlesPublic,
    responses=RESPONSES,
    summary="The most bought titles in a category or any category below it",
)
def read_popular(
    _key: ReadKeyDep,
    code: Annotated[str, Path(min_length=1, max_length=64, pattern=NO_NUL_PATTERN, examples=["I247"])],
    response: Response,
    connection: ConnectionDep,
    model: ModelDep,
    limit: LimitDep,
) -> PopularTitlesPublic:
    name, data = popular_in_category(connection, model, code, limit)
    response.headers["X-Model-Version"] = model.version
    return PopularTitlesPublic(
        category=code, category_name=name, model_version=model.version, data=data, count=len(data)
    )
