"""A batch of member editions laid out and written: the member pages of many members in one
document, the segment's stamp sheet they are drawn from, and each member's edition merged with
the shared segment body.

What the pages show is prepared apart, in :mod:`catalog.member_edition` (picks, main selection,
views, the batch and what it records); this module only turns those views into PDF bytes and
files. The segment catalog is rendered once (``catalog.render``). Member pages are laid out
many members per document (WeasyPrint's fixed cost per document and per font subset is paid
once per batch), written once, split per member by the pages their anchors start on, and each
member's pages are merged with the shared body (:mod:`catalog.pdfmerge`, object bytes). What
a mailed edition showed is committed between writing the PDFs and their sidecars
(:func:`merge_editions`, with :func:`catalog.member_edition.shown_recorder`).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from weasyprint.document import Document

from catalog.context import MemberView, entry_view, letter_opening
from catalog.fonts import member_locator
from catalog.paths import sidecar_bytes_of, sidecar_path
from catalog.pdfmerge import BodyTemplate, MemberBatch
from catalog.period import Quarter
from catalog.plan import CatalogPlan
from catalog.render import Renderer, check_fonts, one_collection, page_css, per_row, render_html
from catalog.stamps import (
    BLOCKS,
    BlockFill,
    CardFill,
    Field,
    FormFill,
    StampedViews,
    StampFinisher,
    StampSheet,
    fits,
    form_layouts,
    line_stamps,
    placements,
    stamp_views,
    width_em,
)
from recsys.files import atomic_write_many, fsync_dir
from recsys.settings import CatalogSettings
from recsys.storage.titles import TitleRecord


def member_pages_html(
    views: Sequence[MemberView],
    settings: CatalogSettings,
    forms: Mapping[str, FormFill | None] | None = None,
    cards: Mapping[tuple[str, str], CardFill] | None = None,
    blocks: Mapping[str, Mapping[str, BlockFill]] | None = None,
) -> str:
    return render_html(
        "member.html", members=views, club_name=settings.club_name,
        page_css=page_css(settings, settings.member_font) + running_head_css(views, settings),
        per_row=per_row(settings), forms=forms or {}, cards=cards or {}, blocks=blocks or {},
    )


# The personal pages' running heads (catalog.css, ``@page personal``): the club and quarter at
# the top left, the member number at the top right. With both boxes' widths ``auto`` WeasyPrint
# shares the width by measuring both heads' min- and max-content on every page (CSS Paged Media
# §6.3.2): ~5 % of a member edition's CPU, and it measures a box whenever one of them is auto.
# A head that fits its box on one line is drawn at the same place whatever the box's width
# (left-aligned at the page area's left edge, right-aligned at its right edge, both at its
# bottom), so each box is given a width its head fits in (an upper bound), unmeasured, whenever
# the two fit side by side; otherwise both stay auto.
HEAD_PT = 7.5  # catalog.css, @page margin boxes
PAGE_AREA_MM = {"A4": 210 - 2 * 13, "A5": 148 - 2 * 10}  # the page width less the side margins


def running_head_css(views: Sequence[MemberView], settings: CatalogSettings) -> str:
    """``@page personal`` with fixed widths for the two running heads when every member's two
    heads in ``views`` fit side by side (upper bounds of their widths); else nothing."""
    if not views:
        return ""

    def mm(text: str) -> float:
        return width_em(text) * HEAD_PT * 25.4 / 72

    right = max(mm(f"会员号 {v.member_id}") for v in views) + 1.0
    left = max(mm(f"{v.club_name} · {v.quarter_label}") for v in views) + 1.0
    if left + right > PAGE_AREA_MM[settings.page_size]:
        return ""
    return f"\n@page personal {{ @top-left {{ width: {left:.2f}mm; }} @top-right {{ width: {right:.2f}mm; }} }}"


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
    frame = {
        "club_name": settings.club_name, "order_address": settings.order_address,
        "order_lines": MemberView.__dataclass_fields__["order_lines"].default,
        "page_css": page_css(settings, settings.member_font), "per_row": per_row(settings),
    }
    untagged = renderer.untagged()  # a sheet's forms carry no marked content of their own
    cells = _line_cells(frame, untagged)
    lines = [
        (f"S-{kind}-{e.title_id}", [
            (css, where, text) for (css, where), text in zip(cells[kind], (e.title_id, e.title, e.price), strict=True)
        ])
        for e in entries for kind in ("row", "sel")
    ] if cells is not None else []
    opening = letter_opening(plan.segment_name, Quarter.parse(plan.quarter).label)
    blocks = [(kind, tag, css, where) for kind, tag, css, where, _role in BLOCKS if where != "note" or per_row(settings) > 1]
    html = render_html(
        "stamps.html", entries=entries, lines=lines, blocks=blocks, segment_name=plan.segment_name,
        opening=opening, **frame,
    )
    check_fonts(html, settings, "member_font")
    sheet = _sheet(
        html, untagged, ids, {e.title_id: (e.title_id, e.title, e.price) for e in entries} if lines else {},
        (plan.segment_name, opening),
    )
    renderer.memo[key] = sheet
    return sheet


def _line_cells(frame: dict[str, object], untagged: Renderer) -> dict[str, list[tuple[str, Field]]] | None:
    """Where a title's order line and selection line put their cells (:func:`catalog.stamps.line_stamps`),
    from the form's frames laid out alone (once per renderer and frame)."""
    key = "stamp-lines:" + hashlib.sha256(repr(sorted(frame.items())).encode()).hexdigest()
    if key not in untagged.memo:
        html = render_html("stamps.html", entries=[], lines=[], blocks=[], segment_name="", opening="", **frame)
        untagged.memo[key] = line_stamps(form_layouts(_layout(html, untagged)))
    found: dict[str, list[tuple[str, Field]]] | None = untagged.memo[key]
    return found


@one_collection()
def _layout(html: str, untagged: Renderer) -> Document:
    return untagged.layout(html)


@one_collection()
def _sheet(
    html: str, untagged: Renderer, ids: Sequence[str], line_texts: Mapping[str, tuple[str, str, str]],
    block_texts: tuple[str, str],
) -> StampSheet:
    document = untagged.layout(html)
    return StampSheet(untagged.write(document), document, ids, line_texts, block_texts)


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
    stamped = stamp_selection(stamp_views(views, sheet), views, sheet) if sheet is not None else None
    html = member_pages_html(
        views, settings, stamped.forms if stamped else None, stamped.cards if stamped else None,
        stamped.blocks if stamped else None,
    )
    check_fonts(html, settings, "member_font", member_locator(html))
    return _pages(html, views, renderer, sheet, stamped)


@one_collection()  # the batch's garbage collected once, after this frame is gone
def _pages(
    html: str, views: Sequence[MemberView], renderer: Renderer, sheet: StampSheet | None, stamped: StampedViews | None
) -> MemberPages:
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


# the selection's fields on the stamped form: (css class, field of the stamp sheet, font size)
SELECTION_FIELDS = (("no", "sel-no", 8.5), ("sel-title", "sel-title", 8.5), ("amount", "sel-amount", 8.5))


def stamp_selection(stamped: StampedViews, views: Sequence[MemberView], sheet: StampSheet) -> StampedViews:
    """:func:`catalog.stamps.stamp_views` plus what only member editions carry: the main
    selection's card (the same head and tail stamps as a pick's) and, on the stamped form, the
    selection's title number, title, price and the reply deadline. A member whose selection
    does not fit its cells on one line gets the form laid out in full."""
    for view in views:
        if view.main is not None:
            m = view.member_id
            card = CardFill(f"K-{m}-main", f"L-{m}-main", sheet.cards[view.main.title_id].head)
            stamped.cards[(m, view.main.title_id)] = card
            stamped.wanted[card.head_anchor] = f"head-{view.main.title_id}"
            stamped.wanted[card.tail_anchor] = f"tail-{view.main.title_id}"
        form = stamped.forms.get(view.member_id)
        if form is None:
            continue
        layout = sheet.forms[bool(view.key_code)].fields
        texts = [("due", "due", view.reply_by_iso, 8.5)] if view.reply_by_iso else []
        selection = []
        if view.main is not None:
            main = view.main
            selection = [(css, name, text, size) for (css, name, size), text in zip(
                SELECTION_FIELDS, (main.title_id, main.title, main.price), strict=True
            )]
        if all(fits(text, layout[name], size) for _css, name, text, size in [*texts, *selection]):
            lines = form.lines
            if view.main is not None and sheet.has_lines(view.main):  # the title's selection line, a stamp
                line = (f"R-{view.member_id}-sel", layout["sel-no"], f"sel-{view.main.title_id}")
                lines = (*lines, line)
                stamped.wanted[line[0]] = line[2]
            else:
                texts += selection
            extra = [(css, layout[name], text) for css, name, text, _size in texts]
            stamped.forms[view.member_id] = dataclasses.replace(form, fields=[*form.fields, *extra], lines=lines)
        else:
            stamped.forms[view.member_id] = None
            del stamped.wanted[form.anchor], stamped.qr_codes[form.qr_anchor]
            for anchor, _where, _stamp in form.lines:
                del stamped.wanted[anchor]
    return stamped


def merge_editions(
    batch: MemberPages,
    body: BodyTemplate,
    out_dir: Path,
    name: Callable[[str], str] = lambda member_id: f"{member_id}.pdf",
    segment: int | None = None,
    record: Callable[[], None] | None = None,
) -> dict[str, Path]:
    """One PDF per member: their pages from ``batch``, then the shared body
    (appended as an incremental update, see :mod:`catalog.pdfmerge`).

    Each edition is written atomically with its sidecar after it (size, SHA-256, the body's
    SHA-256 and ``segment``): see :func:`catalog.paths.complete_edition`.

    ``record`` (:func:`shown_recorder`) commits what the editions show to the database. An
    edition is usable only with a sidecar that matches it, so the order makes the two atomic
    as far as a file system and a database can be: (1) the editions' old sidecars are removed
    (an edition about to change is not served or reused meanwhile), (2) every PDF is written
    (temporary name, fsync, rename), (3) ``record()`` commits the rows, (4) every sidecar is
    written. A crash before (3) leaves the rows as they were (describing files that were
    written: the previous editions) and no usable new edition; a crash between (3) and (4)
    leaves the new rows and the new PDFs written but not usable until rendered again, which
    replaces the rows. So a usable edition always has its rows, and no row ever describes a
    file that was not written. ``record`` failing leaves the editions unusable."""
    out_dir.mkdir(parents=True, exist_ok=True)
    merger = MemberBatch(batch.pdf, batch.ranges, body)
    paths = {m: out_dir / name(m) for m in batch.ranges}
    sidecars: dict[Path, bytes] = {}

    def editions() -> Iterator[tuple[Path, bytes | tuple[bytes, ...]]]:
        for member_id, path in paths.items():
            increment = merger.increment(member_id)  # the body's bytes are written as they are
            size, sha256 = merger.edition_digest(increment)
            sidecars[sidecar_path(path)] = sidecar_bytes_of(size, sha256, body_sha256=body.sha256, segment=segment)
            yield path, (body.data, increment)
            if record is None:
                yield sidecar_path(path), sidecars.pop(sidecar_path(path))

    if record is None:
        atomic_write_many(editions())
        return paths
    for path in paths.values():
        sidecar_path(path).unlink(missing_ok=True)
    fsync_dir(out_dir)
    atomic_write_many(editions())
    record()
    atomic_write_many(sidecars.items())
    return paths
