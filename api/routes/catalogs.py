"""/v1/catalogs and a member's personalized catalog: plans as JSON, editions as PDF."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from api.deps import ConnectionDep, ModelDep, ReadKeyDep, SettingsDep
from api.errors import RESPONSES
from catalog.paths import catalog_path, edition_path
from catalog.plan import CatalogPlan
from recsys.errors import UnknownMemberError
from recsys.storage import plans as plans_db
from recsys.storage import segments as segments_db

router = APIRouter(prefix="/v1", tags=["catalogs"])

QuarterPath = Annotated[str, Path(pattern=r"^\d{4}Q[1-4]$", examples=["2026Q4"])]
PDF_RESPONSES = {**RESPONSES, 200: {"content": {"application/pdf": {}}, "description": "the PDF"}}


class PlanSectionPublic(BaseModel):
    code: str
    name: str
    title_ids: list[str]


class CatalogPublic(BaseModel):
    quarter: str
    segment: int
    segment_name: str
    model_version: str
    settings_hash: str = Field(
        description="with model_version and quarter, what the plan is reproducible from"
    )
    titles: int
    new_titles: int
    sections: list[PlanSectionPublic]
    pdf: str | None = Field(description="path of the segment catalog PDF, when rendered")


class CatalogsPublic(BaseModel):
    quarter: str
    data: list[CatalogPublic]
    count: int


def _plans(connection: ConnectionDep, quarter: str) -> list[CatalogPlan]:
    rows = plans_db.plans_of_quarter(connection, quarter)
    if not rows:
        raise HTTPException(
            404, f"no catalog plans for {quarter}: run `bookclub catalogs plan --quarter {quarter}`"
        )
    return [CatalogPlan.from_json(r["plan_json"]) for r in rows]


@router.get(
    "/catalogs/{quarter}",
    response_model=CatalogsPublic,
    responses=RESPONSES,
    summary="The quarter's catalog plans: sections and titles per segment",
)
def read_catalogs(
    quarter: QuarterPath, connection: ConnectionDep, settings: SettingsDep, _key: ReadKeyDep
) -> CatalogsPublic:
    data = []
    for plan in _plans(connection, quarter):
        pdf = catalog_path(settings, quarter, plan.segment)
        data.append(
            CatalogPublic(
                quarter=quarter,
                segment=plan.segment,
                segment_name=plan.segment_name,
                model_version=plan.model_version,
                settings_hash=plan.settings_hash,
                titles=len(plan.title_ids),
                new_titles=sum(e.is_new for s in plan.sections for e in s.entries),
                sections=[
                    PlanSectionPublic(code=s.code, name=s.name, title_ids=[e.title_id for e in s.entries])
                    for s in plan.sections
                ],
                pdf=str(pdf) if pdf.exists() else None,
            )
        )
    return CatalogsPublic(quarter=quarter, data=data, count=len(data))


@router.get(
    "/catalogs/{quarter}/{segment}.pdf",
    response_class=FileResponse,
    responses=PDF_RESPONSES,
    summary="A segment's catalog as print-ready PDF",
)
def read_segment_pdf(
    quarter: QuarterPath,
    segment: Annotated[int, Path(ge=0, le=50)],
    settings: SettingsDep,
    _key: ReadKeyDep,
) -> FileResponse:
    path = catalog_path(settings, quarter, segment)
    if not path.exists():
        raise HTTPException(
            404,
            f"segment {segment} of {quarter} is not rendered: run `bookclub catalogs render --quarter {quarter}`",
        )
    return FileResponse(path, media_type="application/pdf", filename=f"{quarter}-segment-{segment}.pdf")


@router.get(
    "/members/{member_id}/catalog.pdf",
    response_class=FileResponse,
    responses=PDF_RESPONSES,
    summary="A member's personalized edition: letter, picks, order form, then the segment catalog",
)
def read_member_pdf(
    member_id: Annotated[str, Path(min_length=1, max_length=64, examples=["M000123"])],
    connection: ConnectionDep,
    settings: SettingsDep,
    model: ModelDep,
    _key: ReadKeyDep,
    quarter: Annotated[
        str | None, Query(pattern=r"^\d{4}Q[1-4]$", description="default: the latest segmented")
    ] = None,
) -> FileResponse:
    """Served from disk when rendered; otherwise rendered now (a second or two) and kept."""
    if quarter is None:
        quarters = segments_db.quarters_with_segments(connection)
        if not quarters:
            raise HTTPException(404, "no quarter has been segmented yet: run `bookclub segment`")
        quarter = quarters[-1]
    path = edition_path(settings, quarter, member_id)
    if not path.exists():
        if segments_db.member_segment(connection, quarter, member_id) is None:
            raise UnknownMemberError(f"member {member_id!r} has no segment in {quarter}")
        # the renderer (WeasyPrint, fonts) is loaded by the first worker that needs it, not by all
        from catalog.production import render_member_editions

        path = render_member_editions(
            connection, model, settings, quarter, _plans(connection, quarter), [member_id]
        )[member_id]
    return FileResponse(path, media_type="application/pdf", filename=f"{quarter}-{member_id}.pdf")
