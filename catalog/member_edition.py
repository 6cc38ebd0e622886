"""Personalized member editions: the member's pages, then the shared segment catalog.

The segment catalog is rendered once (``catalog.render``). Member pages are
laid out many members per document (WeasyPrint's fixed cost per document and
per font subset is paid once per batch), written once, split per member by
the pages their anchors start on, and each member's pages are merged with
the shared body (:mod:`catalog.pdfmerge`, pypdf objects).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import segno
from sqlalchemy import Connection

from catalog.context import EntryView, MemberView, entry_view, member_view
from catalog.fonts import member_locator
from catalog.paths import edition_path, sidecar_bytes, sidecar_path
from catalog.pdfmerge import BodyTemplate, MemberBatch
from catalog.plan import CatalogPlan
from catalog.qr import qr_payload
from catalog.render import Renderer, check_fonts, page_css, per_row, render_html
from catalog.stamps import CardFill, FormFill, StampFinisher, StampSheet, placements, stamp_views
from recsys.errors import BookclubError, UnknownMemberError
from recsys.files import atomic_write_many
from recsys.serving import RecommendationQuery, ServableModel, make_shelf, recommend_for_member
from recsys.settings import CatalogSettings, Settings
from recsys.storage import campaigns as campaigns_db
from recsys.storage import members as members_db
from recsys.storage.members import MemberRecord
from recsys.storage.titles import TitleRecord


def member_qr(member_id: str, key_code: str = "") -> segno.QRCode:
    """The QR code on the order form (:func:`qr_payload`)."""
    return segno.make_qr(qr_payload(member_id, key_code), error="m")


def qr_data_url(member_id: str, key_code: str = "") -> str:
    return str(member_qr(member_id, key_code).svg_data_uri(scale=4, border=2, dark="#111"))


class MissingContactError(BookclubError):
    """A mailed member edition asked for without the member's mailed contact."""


def edition_key_codes(
    connection: Connection, quarter: str, segment: int, member_ids: Sequence[str], *, web: bool = False
) -> dict[str, str]:
    """member_id → the key code their edition carries: their mailed contact's in the quarter's
    campaign (named after the quarter). A mailed edition — the batch render, the print
    stream — needs that contact: without it (no campaign, a holdout or suppressed member, a
    member segmented after the contacts were written) it is an error. The on-demand web
    edition (``web``) carries the member's segment's key code, or none without a campaign."""
    campaign = campaigns_db.campaign_by_name(connection, quarter)
    if campaign is None:
        if web:
            return {}
        raise MissingContactError(
            f"no campaign for {quarter}: write its contacts before rendering mailed editions "
            f"(`bookclub campaigns contacts --quarter {quarter}`)"
        )
    contacts = campaigns_db.member_contacts(connection, campaign.id, member_ids)
    fallback = campaigns_db.segment_treatments(connection, campaign.id).get(segment, (0, 0, None))[2]
    codes: dict[str, str] = {}
    missing: list[str] = []
    for member_id in member_ids:
        mine = contacts.get(member_id, [])
        mailed = next((c for c in mine if c.arm == "mailed"), None)
        if mailed is not None:
            codes[member_id] = mailed.key_code or ""
        elif web:
            codes[member_id] = fallback or ""
        else:
            arms = "/".join(sorted({c.arm for c in mine})) or "no contact"
            missing.append(f"{member_id} ({arms})")
    if missing:
        raise MissingContactError(
            f"{len(missing)} member(s) have no mailed contact in campaign {quarter}, e.g. "
            f"{', '.join(missing[:5])}: holdout and suppressed members are not rendered; members "
            f"segmented since need `bookclub campaigns contacts --quarter {quarter}` first"
        )
    return codes


def mailed_edition_members(connection: Connection, settings: Settings, quarter: str) -> list[str]:
    """The members whose mailed piece this quarter is their own member edition (the print
    stream's members, sorted); an error when the quarter has no campaign yet."""
    campaign = campaigns_db.campaign_by_name(connection, quarter)
    if campaign is None:
        raise MissingContactError(
            f"no campaign for {quarter}: write its contacts before rendering the mailed editions "
            f"(`bookclub campaigns contacts --quarter {quarter}`)"
        )
    root = settings.catalogs_dir
    return sorted(
        member_id
        for member_id, file in campaigns_db.mailed_files(connection, campaign.id).items()
        if file == edition_path(settings, quarter, member_id).relative_to(root).as_posix()
    )


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
    key_codes: Mapping[str, str] | None = None,
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
        key_code = (key_codes or {}).get(member.member_id, "")
        views.append(
            member_view(
                member, entries, qr_data_url(member.member_id, key_code), segment_name=plan.segment_name,
                quarter=quarter, club_name=settings.club_name, order_address=settings.order_address,
                key_code=key_code,
            )
        )
    return views


def member_pages_html(
    views: Sequence[MemberView],
    settings: CatalogSettings,
    forms: Mapping[str, FormFill | None] | None = None,
    cards: Mapping[tuple[str, str], CardFill] | None = None,
) -> str:
    return render_html(
        "member.html", members=views, club_name=settings.club_name,
        page_css=page_css(settings, settings.member_font), per_row=per_row(settings),
        forms=forms or {}, cards=cards or {},
    )


# Below this many members a batch is laid out whole unless its segment's stamps are laid out
# already: a stamp sheet costs about as much as a segment catalog, once per renderer.
STAMPS_FROM_MEMBERS = 8


def stamp_sheet(
    plan: CatalogPlan,
    titles: Mapping[str, TitleRecord],
    settings: CatalogSettings,
    renderer: Renderer,
    covers_dir: Path | None = None,
    *,
    members: int | None = None,
) -> StampSheet | None:
    """The segment's stamp sheet (:mod:`catalog.stamps`), laid out once per renderer and plan;
    None for a batch of fewer than :data:`STAMPS_FROM_MEMBERS` ``members`` when it is not laid
    out yet (an on-demand edition of one member is faster laid out whole)."""
    key = "stamps:" + hashlib.sha256(
        (plan.to_json() + settings.model_dump_json() + str(covers_dir)).encode()
    ).hexdigest()
    found = renderer.memo.get(key)
    if isinstance(found, StampSheet) or (members is not None and members < STAMPS_FROM_MEMBERS):
        return found if isinstance(found, StampSheet) else None
    flags = {e.title_id: e for s in plan.sections for e in s.entries}
    section_of = {e.title_id: (s.code, s.name) for s in plan.sections for e in s.entries}
    ids = [t for t in plan.title_ids if t in titles]
    entries = [
        entry_view(
            titles[t], *section_of[t], is_new=flags[t].is_new, promoted=False, font=settings.member_font,
            covers_dir=covers_dir,
        )
        for t in ids
    ]
    html = render_html(
        "stamps.html", entries=entries, club_name=settings.club_name, order_address=settings.order_address,
        order_lines=MemberView.__dataclass_fields__["order_lines"].default,
        page_css=page_css(settings, settings.member_font), per_row=per_row(settings),
    )
    check_fonts(html, settings, "member_font")
    untagged = renderer.untagged()  # a sheet's forms must carry no marked content of their own
    document = untagged.layout(html)
    sheet = StampSheet(untagged.write(document), document, ids)
    renderer.memo[key] = sheet
    return sheet


@dataclass(frozen=True)
class MemberPages:
    """One batch of member pages, written once: ``ranges[member_id] = (first, stop)``."""

    pdf: bytes
    ranges: dict[str, tuple[int, int]]


def render_member_pages(
    views: Sequence[MemberView], settings: CatalogSettings, renderer: Renderer, sheet: StampSheet | None = None
) -> MemberPages:
    """Lay out all ``views`` in one document, write it once, find each member's pages. With
    the segment's stamp ``sheet``, the parts every member shares (the order form's frame, the
    title cards) are drawn from it rather than laid out again (:mod:`catalog.stamps`).

    The fonts are checked first: a missing font or character is an error naming the member,
    never a page of boxes."""
    stamped = stamp_views(views, sheet) if sheet is not None else None
    html = member_pages_html(views, settings, stamped.forms if stamped else None, stamped.cards if stamped else None)
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
    finisher = None
    if sheet is not None and stamped is not None:
        finisher = StampFinisher(sheet, placements(document, stamped.wanted, sheet, stamped.qr_codes))
    return MemberPages(renderer.write(document, finisher=finisher), ranges)


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
