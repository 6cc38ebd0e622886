"""/v1/catalogs and a member's personalized catalog: plans as JSON, editions as PDF."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy import Connection

from api.auth import EditionsKeyDep
from api.deps import ConnectionDep, EngineDep, ModelDep, ReadKeyDep, SettingsDep
from api.editions import render_gate
from api.errors import RESPONSES
from api.schemas import ErrorPublic
from campaign.contacts import record_web_edition
from catalog.paths import (
    CompletePdf,
    catalog_path,
    complete_edition,
    complete_pdf,
    edition_file,
    edition_path,
)
from catalog.plan import CatalogPlan
from recsys.errors import UnknownMemberError
from recsys.storage import plans as plans_db
from recsys.storage import segments as segments_db
from recsys.text import NO_NUL_PATTERN

router = APIRouter(prefix="/v1", tags=["catalogs"])

QuarterPath = Annotated[str, Path(pattern=r"^\d{4}Q[1-4]$", examples=["2026Q4"])]
PDF_RESPONSES = {**RESPONSES, 200: {"content": {"application/pdf": {}}, "description": "the PDF"}}
EDITION_RESPONSES = {
    **PDF_RESPONSES,
    403: {"model": ErrorPublic, "description": "the key has read scope; an editions or admin key is needed"},
    429: {"model": ErrorPublic, "description": "this key's on-demand renders are used up; see Retry-After"},
    503: {"model": ErrorPublic, "description": "renderer busy, fonts missing, database or model unavailable"},
    507: {"model": ErrorPublic, "description": "the server's disk is full: nothing was kept; retry later"},
}


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
    pdf: str | None = Field(
        description="URL of the segment catalog PDF (relative to this server), when rendered completely"
    )


class CatalogsPublic(BaseModel):
    quarter: str
    data: list[CatalogPublic]
    count: int


def _plans(connection: Connection, quarter: str) -> list[CatalogPlan]:
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
        # a URL, never the server's path; listed once the PDF is complete (size and digest checked)
        rendered = complete_pdf(catalog_path(settings, quarter, plan.segment)) is not None
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
                pdf=f"/v1/catalogs/{quarter}/{plan.segment}.pdf" if rendered else None,
            )
        )
    return CatalogsPublic(quarter=quarter, data=data, count=len(data))


def _pdf_response(pdf: CompletePdf, filename: str) -> Response:
    """The bytes that were checked against the sidecar, never the file re-read (a concurrent
    re-render renames a new file in; what is sent is what was verified)."""
    ascii_name = quote(filename)
    disposition = (
        f'attachment; filename="{filename}"'
        if ascii_name == filename
        else f"attachment; filename*=utf-8''{ascii_name}"
    )
    return Response(
        pdf.data,
        media_type="application/pdf",
        headers={"Content-Disposition": disposition, "ETag": f'"{pdf.sha256}"'},
    )


@router.get(
    "/catalogs/{quarter}/{segment}.pdf",
    response_class=Response,
    responses=PDF_RESPONSES,
    summary="A segment's catalog as print-ready PDF",
)
def read_segment_pdf(
    quarter: QuarterPath,
    segment: Annotated[int, Path(ge=0, le=50)],
    settings: SettingsDep,
    _key: ReadKeyDep,
) -> Response:
    pdf = complete_pdf(catalog_path(settings, quarter, segment))
    if pdf is None:
        raise HTTPException(
            404,
            f"segment {segment} of {quarter} is not rendered: run `bookclub catalogs render --quarter {quarter}`",
        )
    return _pdf_response(pdf, f"{quarter}-segment-{segment}.pdf")


@router.get(
    "/members/{member_id}/catalog.pdf",
    response_class=Response,
    responses=EDITION_RESPONSES,
    summary="A member's personalized edition (name and address: editions or admin key): letter, "
    "picks, order form, then the segment catalog",
)
def read_member_pdf(
    member_id: Annotated[str, Path(min_length=1, max_length=64, pattern=NO_NUL_PATTERN, examples=["M000123"])],
    request: Request,
    engine: EngineDep,
    settings: SettingsDep,
    model: ModelDep,
    key: EditionsKeyDep,
    quarter: Annotated[
        str | None, Query(pattern=r"^\d{4}Q[1-4]$", description="default: the latest segmented")
    ] = None,
) -> Response:
    """Served from disk when rendered completely; otherwise rendered now (a second or two) by
    one request at a time per member — concurrent requests for the member wait and get the
    same file — within this key's render rate and the worker's render queue."""
    with engine.connect() as connection:  # no connection is held while waiting for a render
        if quarter is None:
            quarters = segments_db.quarters_with_segments(connection)
            if not quarters:
                raise HTTPException(404, "no quarter has been segmented yet: run `bookclub segment`")
            quarter = quarters[-1]
        pdf = complete_edition(edition_path(settings, quarter, member_id))
        if pdf is None and segments_db.member_segment(connection, quarter, member_id) is None:
            raise UnknownMemberError(f"member {member_id!r} has no segment in {quarter}")
    if pdf is None:
        # the renderer (WeasyPrint, fonts) is loaded by the first worker that needs it, not by all
        from catalog.production import member_edition

        gate = render_gate(request, settings)
        chosen = quarter
        with gate.admitted():
            pdf = member_edition(
                engine.connect, model, settings, quarter, lambda c: _plans(c, chosen), member_id,
                guard=lambda: gate.rendering(key.prefix or "anonymous"),
                wait_seconds=settings.api.render_wait_seconds,
            )
    with engine.begin() as connection:  # the web edition is a contact of the quarter's campaign
        record_web_edition(
            connection, quarter, member_id,
            edition_file(quarter, member_id),
        )
    return _pdf_response(pdf, f"{quarter}-{member_id}.pdf")
