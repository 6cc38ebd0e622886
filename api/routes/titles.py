"""/v1/titles: titles like a given one."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response

from api.deps import ConnectionDep, LimitDep, ModelDep, ReadKeyDep
from api.errors import RESPONSES
from api.recommending import similar_titles
from api.schemas import SimilarTitlesPublic
from recsys.text import NO_NUL_PATTERN

router = APIRouter(prefix="/v1/titles", tags=["titles"])


@router.get(
    "/{title_id}/similar",
    response_model=SimilarTitlesPublic,
    responses=RESPONSES,
    summary="Titles bought by the same members (item-item similarity of the model)",
)
def read_similar(
    _key: ReadKeyDep,
    title_id: Annotated[str, Path(min_length=1, max_length=64, pattern=NO_NUL_PATTERN, examples=["T004711"])],
    response: Response,
    connection: ConnectionDep,
    model: ModelDep,
    limit: LimitDep,
) -> SimilarTitlesPublic:
    data = similar_titles(connection, model, title_id, limit)
    response.headers["X-Model-Version"] = model.version
    return SimilarTitlesPublic(title_id=title_id, model_version=model.version, data=data, count=len(data))
