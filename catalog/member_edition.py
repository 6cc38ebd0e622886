"""Personalized member editions: the member's pages, then the shared segment catalog.

The segment catalog is rendered once (``catalog.render``). Member pages are
laid out many members per document (WeasyPrint's fixed cost per document and
per font subset is paid once per batch), written once, split per member by
the pages their anchors start on, and each member's pages are merged with
the shared body (:mod:`catalog.pdfmerge`, pypdf objects).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import segno
from sqlalchemy import Connection

from catalog.context import EntryView, MemberView, entry_view, member_view
from catalog.fonts import member_locator
from catalog.paths import sidecar_bytes, sidecar_path
from catalog.pdfmerge import BodyTemplate, MemberBatch
from catalog.plan import CatalogPlan
from catalog.render import Renderer, check_fonts, page_css, per_row, render_html
from recsys.errors import UnknownMemberError
from recsys.files import atomic_write_many
from recsys.serving import RecommendationQuery, ServableModel, make_shelf, recommend_for_member
from recsys.settings import CatalogSettings
from recsys.storage import members as members_db
from recsys.storage.members import MemberRecord
from recsys.storage.titles import TitleRecord


def member_qr(member_id: str) -> segno.QRCode:
    """The QR code on the order form: its payload is the member number, nothing else."""
    return segno.make_qr(member_id, error="m")


def qr_data_url(member_id: str) -> str:
    return str(member_qr(member_id).svg_data_uri(scale=4, border=2, dark="#111"))


def member_picks(
    connection: Connection,
    model: ServableModel,
    plan: CatalogPlan,
    titles: Mapping[str, TitleRecord],
    member_ids: Sequence[str],
    limit: int,
) -> dict[str, list[tuple[str, str]]]:
    """member_id → (title_id, reason in Chinese): each member's best titles within this
    quarter's catalog, on the one serving path (:func:`recsys.serving.recommend_for_member`:
    purchases since training folded in, bought and out-of-stock titles left out, declared
    categories for members without history). The model must know the plan's titles
    (:func:`recsys.serving.prepare_model`)."""
    snapshots = members_db.member_snapshots(connection, member_ids, model.trained_until)
    if missing := [m for m in member_ids if m not in snapshots]:
        raise UnknownMemberError(f"no such member(s): {', '.join(missing)}")
    in_plan = {t: titles[t] for t in plan.title_ids if t in titles}
    shelf = make_shelf(model, in_plan, ())
    query = RecommendationQuery(limit=limit, only_title_ids=shelf_mask(model, in_plan))
    out: dict[str, list[tuple[str, str]]] = {}
    for m in member_ids:
        result = recommend_for_member(model, m, snapshots[m], query, shelf=shelf)
        out[m] = [(r.title_id, r.reason_zh or r.reason) for r, _record in result.items]
    return out


def shelf_mask(model: object, titles: Mapping[str, TitleRecord]) -> Collection[str]:
    """The plan's titles as the model takes them fastest (a TitleMask when it builds one)."""
    make_mask = getattr(model, "title_mask", None)
    return make_mask(list(titles)) if make_mask is not None else set(titles)


def member_views(
    members: Sequence[MemberRecord],
    picks: Mapping[str, Sequence[tuple[str, str]]],
    plan: CatalogPlan,
    titles: Mapping[str, TitleRecord],
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
    """Lay out all ``views`` in one document, write it once, find each member's pages.

    The fonts are checked first: a missing font or character is an error naming the member,
    never a page of boxes."""
    html = member_pages_html(views, settings)
    check_fonts(html, settings, "member_font", member_locator(html))
    document = renderer.layout(html)
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
    segment: int | None = None,
) -> dict[str, Path]:
    """One PDF per member: their pages from ``batch``, then the shared body
    (appended as an incremental update, see :mod:`catalog.pdfmerge`).

    Each edition is written atomically with its sidecar after it (size, SHA-256, the body's
    SHA-256 and ``segment``): see :func:`catalog.paths.complete_edition`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    merger = MemberBatch(batch.pdf, batch.ranges, body)
    paths = {m: out_dir / name(m) for m in batch.ranges}

    def files() -> Iterator[tuple[Path, bytes]]:
        for member_id, path in paths.items():
            pdf = merger.edition(member_id)
            yield path, pdf
            yield sidecar_path(path), sidecar_bytes(pdf, body_sha256=body.sha256, segment=segment)

    atomic_write_many(files())
    return paths
