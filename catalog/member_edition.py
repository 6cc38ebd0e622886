"""Personalized member editions: the member's pages, then the shared segment catalog.

The segment catalog is rendered once (``catalog.render``). Member pages are
laid out many members per document (WeasyPrint's fixed cost per document and
per font subset is paid once per batch), written once, split per member by
the pages their anchors start on, and each member's pages are merged with
the shared body (:mod:`catalog.pdfmerge`, pypdf objects).

What a member's pages show (:func:`edition_batch`, the same for the batch render, the Dask
workers and the print stream): the main selection (本季推荐, the member's best title of the
segment catalog on the one serving path) with the reply deadline on the order form, then the
picks; titles shown in the member's last editions rotate out (:func:`edition_selections`).
What a mailed edition showed is recorded in ``contact_titles`` with the edition
(:func:`merge_editions`): rotation reads it next quarter, the negative option ships its main.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
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
from catalog.stamps import (
    CardFill,
    FormFill,
    StampedViews,
    StampFinisher,
    StampSheet,
    fits,
    placements,
    stamp_views,
)
from recsys.errors import BookclubError, UnknownMemberError
from recsys.files import atomic_write_many, fsync_dir
from recsys.serving import RecommendationQuery, ServableModel, make_shelf, recommend_for_member
from recsys.settings import CatalogSettings, MailingSettings, Settings
from recsys.storage import campaigns as campaigns_db
from recsys.storage import contacts as contacts_db
from recsys.storage import members as members_db
from recsys.storage import shown_titles as shown_db
from recsys.storage.members import MemberRecord
from recsys.storage.shown_titles import EditionContact, ShownTitle
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
    contacts = contacts_db.member_contacts(connection, campaign.id, member_ids)
    fallback = contacts_db.segment_treatments(connection, campaign.id).get(segment, (0, 0, None))[2]
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
        for member_id, file in contacts_db.mailed_files(connection, campaign.id).items()
        if file == edition_path(settings, quarter, member_id).relative_to(root).as_posix()
    )


def member_picks(
    connection: Connection,
    model: ServableModel,
    plan: CatalogPlan,
    titles: Mapping[str, TitleRecord],
    member_ids: Sequence[str],
    limit: int,
    *,
    shown: Mapping[str, Collection[str]] | None = None,
    rotation_tolerance: float = 0.9,
) -> dict[str, list[tuple[str, str]]]:
    """member_id → (title_id, reason in Chinese): each member's best titles within this
    quarter's catalog, on the one serving path (:func:`recsys.serving.recommend_for_member`:
    purchases since training folded in, bought and out-of-stock titles left out, declared
    categories for members without history). The model must know the plan's titles
    (:func:`recsys.serving.prepare_model`). ``shown``: member_id → titles shown in their last
    editions, which rotate out unless nothing close replaces them
    (:func:`recsys.serving.rotate`, ``rotation_tolerance``)."""
    snapshots = members_db.member_snapshots(connection, member_ids, model.trained_until)
    if missing := [m for m in member_ids if m not in snapshots]:
        raise UnknownMemberError(f"no such member(s): {', '.join(missing)}")
    in_plan = {t: titles[t] for t in plan.title_ids if t in titles}
    shelf = make_shelf(model, in_plan, ())
    query = RecommendationQuery(
        limit=limit, only_title_ids=shelf_mask(model, in_plan), rotation_tolerance=rotation_tolerance
    )
    out: dict[str, list[tuple[str, str]]] = {}
    for m in member_ids:
        seen = (shown or {}).get(m)
        asked = dataclasses.replace(query, rotate_out=seen) if seen else query
        result = recommend_for_member(model, m, snapshots[m], asked, shelf=shelf)
        out[m] = [(r.title_id, r.reason_zh or r.reason) for r, _record in result.items]
    return out


@dataclass(frozen=True)
class EditionSelection:
    """What a member's edition features: the main selection (本季推荐) and the picks after it,
    each (title_id, reason); ``main`` is None only when the catalog has nothing for them."""

    main: tuple[str, str] | None
    picks: list[tuple[str, str]]

    @property
    def title_ids(self) -> list[str]:
        return [t for t, _ in ([self.main] if self.main else []) + self.picks]


def edition_selections(
    connection: Connection,
    model: ServableModel,
    plan: CatalogPlan,
    titles: Mapping[str, TitleRecord],
    member_ids: Sequence[str],
    picks: int,
    mailing: MailingSettings,
    *,
    campaign_id: int | None,
) -> dict[str, EditionSelection]:
    """Each member's main selection and ``picks`` picks: the member's best ``picks + 1`` titles of
    the segment catalog on the one serving path (:func:`member_picks`), the first of them the
    main selection — the model's choice for this member, not one title for the segment. Titles
    shown in the member's last ``mailing.rotation_editions`` editions before ``campaign_id``
    (what ``contact_titles`` recorded) rotate out unless nothing else scores at least
    ``mailing.rotation_tolerance`` of their score (:func:`recsys.serving.rotate`)."""
    shown = shown_db.recent_shown_titles(
        connection, member_ids, mailing.rotation_editions, before_campaign_id=campaign_id
    )
    found = member_picks(
        connection, model, plan, titles, member_ids, picks + 1, shown=shown,
        rotation_tolerance=mailing.rotation_tolerance,
    )
    return {m: EditionSelection(ts[0] if ts else None, ts[1:]) for m, ts in found.items()}


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
    *,
    mains: Mapping[str, tuple[str, str] | None] | None = None,
    reply_by: Mapping[str, dt.date] | None = None,
) -> list[MemberView]:
    """The members' pages as views: ``picks`` and the main selection (``mains``: member_id →
    (title_id, reason)), with the reply deadline of their contact (``reply_by``)."""
    section_of = {e.title_id: (s.code, s.name) for s in plan.sections for e in s.entries}
    flags = {e.title_id: e for s in plan.sections for e in s.entries}

    def view_of(title_id: str, reason: str) -> EntryView:
        code, name = section_of[title_id]
        return entry_view(
            titles[title_id], code, name, is_new=flags[title_id].is_new,
            promoted=False, font=settings.member_font, covers_dir=covers_dir, reason=reason,
        )

    views = []
    for member in members:
        entries = [view_of(t, reason) for t, reason in picks.get(member.member_id, ())]
        chosen = (mains or {}).get(member.member_id)
        key_code = (key_codes or {}).get(member.member_id, "")
        views.append(
            member_view(
                member, entries, qr_data_url(member.member_id, key_code), segment_name=plan.segment_name,
                quarter=quarter, club_name=settings.club_name, order_address=settings.order_address,
                key_code=key_code, main=view_of(*chosen) if chosen else None,
                reply_by=(reply_by or {}).get(member.member_id),
            )
        )
    return views


@dataclass(frozen=True)
class EditionContacts:
    """The contacts a batch of editions is rendered for: each member's key code, their mailed
    contact (whose ``contact_titles`` the edition writes) and the reply deadline (the contact's
    in-home date plus ``campaign.reply_days``; the campaign's in-home date for a web edition
    without a mailed contact; none without a campaign)."""

    campaign_id: int | None
    key_codes: dict[str, str]
    contacts: dict[str, EditionContact]
    reply_by: dict[str, dt.date]


def edition_contacts(
    connection: Connection, settings: Settings, quarter: str, segment: int, member_ids: Sequence[str], *,
    web: bool = False,
) -> EditionContacts:
    """:class:`EditionContacts` of ``member_ids`` (a mailed edition needs the mailed contact:
    :func:`edition_key_codes`)."""
    key_codes = edition_key_codes(connection, quarter, segment, member_ids, web=web)
    campaign = campaigns_db.campaign_by_name(connection, quarter)
    if campaign is None:
        return EditionContacts(None, key_codes, {}, {})
    contacts = shown_db.edition_contacts(connection, campaign.id, member_ids)
    days = dt.timedelta(days=settings.campaign.reply_days)
    reply_by = {
        m: (contacts[m].in_home_date if m in contacts else campaign.in_home_date) + days for m in member_ids
    }
    return EditionContacts(campaign.id, key_codes, contacts, reply_by)


@dataclass(frozen=True)
class EditionBatch:
    """A batch's member views and what their editions show, as ``contact_titles`` rows of the
    members' mailed contacts whose piece is their own edition (``contact_ids``: every contact
    whose rows the batch replaces)."""

    views: list[MemberView]
    shown: list[ShownTitle]
    contact_ids: list[int]


def edition_batch(
    connection: Connection,
    model: ServableModel,
    settings: Settings,
    quarter: str,
    plan: CatalogPlan,
    titles: Mapping[str, TitleRecord],
    members: Sequence[MemberRecord],
    *,
    web: bool = False,
) -> EditionBatch:
    """The personal pages' data of ``members`` (one segment): contacts, main selection and picks
    (:func:`edition_selections`), views — what the batch render, the Dask workers and the print
    stream all lay out."""
    ids = [m.member_id for m in members]
    contacts = edition_contacts(connection, settings, quarter, plan.segment, ids, web=web)
    selections = edition_selections(
        connection, model, plan, titles, ids, settings.catalog.picks_per_member, settings.mailing,
        campaign_id=contacts.campaign_id,
    )
    views = member_views(
        members, {m: s.picks for m, s in selections.items()}, plan, titles, settings.catalog, quarter,
        covers_dir=settings.data_dir / "covers", key_codes=contacts.key_codes,
        mains={m: s.main for m, s in selections.items()}, reply_by=contacts.reply_by,
    )
    # recorded for the contacts whose mailed piece is this edition (not a segment catalog's), by
    # what prints or mails it; an on-demand web edition (``web``) records nothing: it may be laid
    # out later, from later purchases, than the piece the member holds (and its order form)
    mailed = {
        m: c for m, c in contacts.contacts.items()
        if not web and c.file == edition_path(settings, quarter, m).relative_to(settings.catalogs_dir).as_posix()
    }
    shown = [
        ShownTitle(
            c.contact_id, c.campaign_id, c.member_key, title_id, "main" if i == 0 else "pick", i,
            _printed_price(titles[title_id].price),
        )
        for m, c in mailed.items()
        if selections[m].main is not None
        for i, title_id in enumerate(selections[m].title_ids)
    ]
    return EditionBatch(views, shown, sorted(c.contact_id for c in mailed.values()))


def _printed_price(price: float | None) -> Decimal | None:
    """A title's price as the pages print it (``catalog.context.price_text``: two decimals)."""
    return None if price is None else Decimal(f"{price:.2f}")


def shown_recorder(connection: Connection, batch: EditionBatch) -> Callable[[], None] | None:
    """What :func:`merge_editions` calls between writing the editions and marking them complete:
    the batch's ``contact_titles`` rows replaced and committed in a transaction of their own (a
    second connection of ``connection``'s engine — the caller's transaction is left alone, and
    must not hold uncommitted writes on SQLite). None when the batch has no contact."""
    if not batch.contact_ids:
        return None

    def record() -> None:
        with connection.engine.begin() as writer:
            shown_db.replace_shown_titles(writer, batch.contact_ids, batch.shown)

    return record


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
    stamped = stamp_selection(stamp_views(views, sheet), views, sheet) if sheet is not None else None
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
        if view.main is not None:
            main = view.main
            texts += [(css, name, text, size) for (css, name, size), text in zip(
                SELECTION_FIELDS, (main.title_id, main.title, main.price), strict=True
            )]
        if all(fits(text, layout[name], size) for _css, name, text, size in texts):
            extra = [(css, layout[name], text) for css, name, text, _size in texts]
            stamped.forms[view.member_id] = dataclasses.replace(form, fields=[*form.fields, *extra])
        else:
            stamped.forms[view.member_id] = None
            del stamped.wanted[form.anchor], stamped.qr_codes[form.qr_anchor]
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

    def editions() -> Iterator[tuple[Path, bytes]]:
        for member_id, path in paths.items():
            pdf = merger.edition(member_id)
            sidecars[sidecar_path(path)] = sidecar_bytes(pdf, body_sha256=body.sha256, segment=segment)
            yield path, pdf
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
