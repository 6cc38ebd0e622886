"""Personalized member editions: the member's pages, then the shared segment catalog.

The segment catalog is rendered once (``catalog.render``). Member pages are
laid out many members per document (WeasyPrint's fixed cost per document and
per font subset is paid once per batch), written once, split per member by
the pages their anchors start on, and each member's pages are merged with
the shared body (:mod:`catalog.pdfmerge`, pypdf objects).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import segno

from catalog.context import EntryView, MemberView, entry_view, member_view
from catalog.pdfmerge import BodyTemplate, MemberBatch
from catalog.plan import CatalogPlan
from catalog.render import Renderer, page_css, per_row, render_html
from recsys.segment_queries import MemberRow, TitleRow
from recsys.settings import CatalogSettings


class Pick(Protocol):
    @property
    def title_id(self) -> str: ...

    @property
    def reason(self) -> str: ...

    @property
    def reason_zh(self) -> str: ...


class PickingModel(Protocol):
    def recommend(
        self,
        member_id: str,
        *,
        limit: int = 20,
        exclude_title_ids: Collection[str] = (),
        only_title_ids: Collection[str] | None = None,
        declared_categories: Sequence[str] = (),
    ) -> Sequence[Pick]: ...


def member_qr(member_id: str) -> segno.QRCode:
    """The QR code on the order form: its payload is the member number, nothing else."""
    return segno.make_qr(member_id, error="m")


def qr_data_url(member_id: str) -> str:
    return str(member_qr(member_id).svg_data_uri(scale=4, border=2, dark="#111"))


def member_picks(
    model: PickingModel,
    member_id: str,
    plan: CatalogPlan,
    *,
    limit: int,
    bought: Iterable[str] = (),
    declared: Sequence[str] = (),
) -> list[tuple[str, str]]:
    """(title_id, reason): the member's best-scored titles within this quarter's catalog."""
    recommendations = model.recommend(
        member_id,
        limit=limit,
        exclude_title_ids=set(bought),
        only_title_ids=set(plan.title_ids),
        declared_categories=declared,
    )
    return [(r.title_id, r.reason_zh or r.reason) for r in recommendations]


def member_views(
    members: Sequence[MemberRow],
    picks: Mapping[str, Sequence[tuple[str, str]]],
    plan: CatalogPlan,
    titles: Mapping[str, TitleRow],
    settings: CatalogSettings,
    quarter: str,
    covers_dir: Path | None = None,
) -> list[MemberView]:
    section_of = {e.title_id: (s.code, s.name) for s in plan.sections for e in s.entries}
    flags = {e.title_id: e for s in plan.sections for e in s.entries}
    views = []
    for member in members:
        entries: list[EntryView] = []
        for title_id, reason in picks.get(member.member_id, ()):
            code, name = section_of[title_id]
            entries.append(
                entry_view(
                    titles[title_id], code, name, is_new=flags[title_id].is_new,
                    promoted=False, font=settings.member_font, covers_dir=covers_dir,
                    reason=reason,
                )
            )
        views.append(
            member_view(
                member, entries, qr_data_url(member.member_id), segment_name=plan.segment_name,
                quarter=quarter, club_name=settings.club_name, order_address=settings.order_address,
            )
        )
    return views


def member_pages_html(views: Sequence[MemberView], settings: CatalogSettings) -> str:
    return render_html(
        "member.html", members=views, club_name=settings.club_name,
        page_css=page_css(settings, settings.member_font), per_row=per_row(settings),
    )


@dataclass(frozen=True)
class MemberPages:
    """One batch of member pages, written once: ``ranges[member_id] = (first, stop)``."""

    pdf: bytes
    ranges: dict[str, tuple[int, int]]


def render_member_pages(
    views: Sequence[MemberView], settings: CatalogSettings, renderer: Renderer
) -> MemberPages:
    """Lay out all ``views`` in one document, write it once, find each member's pages."""
    document = renderer.layout(member_pages_html(views, settings))
    starts: dict[str, int] = {}
    for number, page in enumerate(document.pages):
        for anchor in page.anchors:
            if anchor.startswith("m-"):
                starts.setdefault(anchor[2:], number)
    order = sorted(starts.items(), key=lambda item: item[1])
    ranges = {
        member_id: (first, order[i + 1][1] if i + 1 < len(order) else len(document.pages))
        for i, (member_id, first) in enumerate(order)
    }
    missing = [v.member_id for v in views if v.member_id not in ranges]
    if missing:
        raise RuntimeError(f"member pages lost their anchors: {missing[:5]}")
    return MemberPages(renderer.write(document), ranges)


def merge_editions(
    batch: MemberPages,
    body: BodyTemplate,
    out_dir: Path,
    name: Callable[[str], str] = lambda member_id: f"{member_id}.pdf",
) -> dict[str, Path]:
    """One PDF per member: their pages from ``batch``, then the shared body
    (appended as an incremental update, see :mod:`catalog.pdfmerge`)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    merger = MemberBatch(batch.pdf, batch.ranges, body)
    return {m: merger.write(m, out_dir / name(m)) for m in batch.ranges}
