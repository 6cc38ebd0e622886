"""Personalized member editions, the data: what each member's pages show.

What a member's pages show (:func:`edition_batch`, the same for the batch render, the Dask
workers and the print stream): the main selection (本季推荐, the member's best title of the
segment catalog on the one serving path) with the reply deadline on the order form, then the
picks; titles shown in the member's last editions rotate out (:func:`edition_selections`).
What a mailed edition showed is recorded in ``contact_titles`` with the edition
(:func:`shown_recorder`, called by :func:`catalog.member_pages.merge_editions`): rotation reads
it next quarter, the negative option ships its main.

Laying the pages out, the stamp sheet and the merge with the segment body are in
:mod:`catalog.member_pages` (data preparation apart from rendering).
"""
from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from pathlib import Path

import segno
from sqlalchemy import Connection

from catalog.context import EntryView, MemberView, entry_view, member_view
from catalog.paths import edition_file
from catalog.plan import CatalogPlan
from catalog.qr import qr_payload
from catalog.render import PER_MEMBER_DATA_URL
from recsys.errors import BookclubError, UnknownMemberError
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
    """The QR code as an inline SVG, in the form the renderer's image cache leaves out (one per member)."""
    url = str(member_qr(member_id, key_code).svg_data_uri(scale=4, border=2, dark="#111"))
    if not url.startswith(PER_MEMBER_DATA_URL):
        raise RuntimeError(f"segno wrote the QR code as {url[:40]}…, not {PER_MEMBER_DATA_URL}…")
    return url


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
    return sorted(
        member_id
        for member_id, file in contacts_db.mailed_files(connection, campaign.id).items()
        if file == edition_file(quarter, member_id)
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
                member, entries, partial(qr_data_url, member.member_id, key_code), segment_name=plan.segment_name,
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
        if not web and c.file == edition_file(quarter, m)
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


