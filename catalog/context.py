"""Plans → template contexts: the words, prices and pictures a page shows.

No I/O here: title and member rows come in, plain dataclasses go out, and
the templates only lay them out.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from xml.sax.saxutils import escape

from catalog.clusters import short_name
from catalog.period import Quarter
from catalog.plan import CatalogPlan
from catalog.segments import SegmentProfile
from recsys.storage.members import MemberRecord
from recsys.storage.titles import TitleRecord

CLC_CLASSES = "ABCDEFGHIJKNOPQRSTUVXZ"
MONTHS = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
    "November", "December",
)  # not strftime's %B: that follows the locale
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_PUNCTUATION = "《》「」『』“”\"'()（）:：,，.。!！?？-—·"


@dataclass(frozen=True)
class EntryView:
    title_id: str
    title: str
    author: str
    price: str
    blurb: str
    image: str  # a URL the fetcher allows: file: under the assets, or a data: SVG
    category: str
    is_new: bool
    promoted: bool
    reason: str = ""


@dataclass(frozen=True)
class SectionView:
    anchor: str
    code: str
    name: str
    colour: str
    entries: list[EntryView]


@dataclass(frozen=True)
class CatalogView:
    club_name: str
    order_address: str
    quarter: str
    quarter_label: str
    segment: int
    segment_name: str
    segment_line: str
    colour: str
    sections: list[SectionView]
    title_count: int
    cover_images: list[str]
    order_lines: int = 14


@dataclass(frozen=True)
class MemberView:
    member_id: str
    name: str
    address_lines: list[str]
    greeting: str
    letter: list[str]
    picks: list[EntryView]
    qr_url: Callable[[], str]  # makes the data: URL of the order form's QR code (see ``qr``)
    segment_name: str
    quarter_label: str
    club_name: str
    order_address: str
    order_lines: int = 5  # with the main selection's row above them
    prefilled: list[EntryView] = field(default_factory=list)
    key_code: str = ""  # the campaign treatment's, printed on the order form and in the QR code
    main: EntryView | None = None  # 本季推荐 · this quarter's selection, the member's own
    reply_by: dt.date | None = None  # the main selection's reply deadline (None: no campaign to reply to)

    @cached_property
    def qr(self) -> str:
        """The QR code as a data: URL, made when a page lays out the order form whole: a
        stamped form draws its QR code from the payload (:func:`catalog.stamps.qr_ops`), and
        encoding it twice was ~2 % of an edition."""
        return self.qr_url()

    @property
    def reply_by_iso(self) -> str:
        """The deadline as the order form prints it (``2026-10-31``); empty without one."""
        return self.reply_by.isoformat() if self.reply_by is not None else ""

    @property
    def reply_by_text(self) -> str:
        """The deadline in words: ``2026年10月31日 · 31 October 2026``; empty without one."""
        day = self.reply_by
        if day is None:
            return ""
        return f"{day.year}年{day.month}月{day.day}日 · {day.day} {MONTHS[day.month - 1]} {day.year}"


def class_colour(code: str, lightness: int = 42) -> str:
    """A muted colour per CLC class (first letter), the same in every catalog."""
    letter = code[:1].upper()
    index = CLC_CLASSES.find(letter)
    if index < 0:
        index = int(hashlib.sha1(code.encode()).hexdigest(), 16) % len(CLC_CLASSES)
    hue = round(index * 360 / len(CLC_CLASSES) + 15) % 360
    return f"hsl({hue}, 38%, {lightness}%)"


def initials(title: str) -> str:
    """Two CJK characters, or the initials of two Latin words."""
    cleaned = "".join(ch for ch in title if ch not in _PUNCTUATION).strip()
    if _CJK.match(cleaned[:1] or " "):
        return "".join(ch for ch in cleaned if _CJK.match(ch))[:2]
    words = [w for w in cleaned.split() if w[:1].isalnum()]
    return "".join(w[0].upper() for w in words[:2]) or "?"


def placeholder_cover(title: str, category_code: str, category_label: str, font: str) -> str:
    """A data: URL of an SVG cover: the class colour (a shade per title), the title's
    initials, the category."""
    shade = int(hashlib.sha1(title.encode()).hexdigest(), 16) % 5
    bg = class_colour(category_code, 36 + 3 * shade)
    band = class_colour(category_code, 26 + 2 * shade)
    svg = (
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 100 140" width="100" height="140">'
        f'<rect width="100" height="140" fill="{bg}"/>'
        f'<rect y="104" width="100" height="36" fill="{band}"/>'
        '<rect x="6" y="6" width="88" height="92" fill="none" stroke="white" stroke-opacity="0.5"/>'
        f'<text x="50" y="66" font-family="{escape(font)}" font-size="30" fill="white" '
        f'text-anchor="middle">{escape(initials(title))}</text>'
        f'<text x="50" y="126" font-family="{escape(font)}" font-size="10" fill="white" '
        f'text-anchor="middle">{escape(category_label[:10])}</text>'
        "</svg>"
    )
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()


def short_blurb(text: str | None, limit: int = 64) -> str:
    """``limit`` CJK characters (Latin counts half) and an ellipsis."""
    if not text:
        return ""
    text = " ".join(text.split())
    width = 0.0
    for i, ch in enumerate(text):
        width += 1.0 if _CJK.match(ch) else 0.5
        if width > limit:
            return text[:i].rstrip(" ,，;；、") + "…"
    return text


def price_text(price: float | None) -> str:
    return "—" if price is None else f"¥{price:,.2f}"


def cover_url(cover: str | None, covers_dir: Path | None) -> str | None:
    """A file: URL for a cover image stored under ``covers_dir``; None when there is none."""
    if not cover or covers_dir is None:
        return None
    path = (covers_dir / cover).resolve()
    if not path.is_relative_to(covers_dir.resolve()) or not path.is_file():
        return None
    return path.as_uri()


def entry_view(
    title: TitleRecord,
    section_code: str,
    section_label: str,
    *,
    is_new: bool,
    promoted: bool,
    font: str,
    covers_dir: Path | None,
    reason: str = "",
) -> EntryView:
    category = section_label.split(" ", 1)[-1]
    image = cover_url(title.cover, covers_dir) or placeholder_cover(
        title.title, section_code, short_name(category), font
    )
    return EntryView(
        title.title_id, title.title, title.author or "", price_text(title.price),
        short_blurb(title.blurb), image, category, is_new, promoted, reason,
    )


def segment_line(profile: SegmentProfile | None) -> str:
    """``为喜爱文学、历史的会员精选``: the categories that set the segment apart."""
    if profile is None:
        return ""
    names: list[str] = []
    codes: list[str] = []
    for c in profile.top_categories:
        if codes and c.lift < 1.2:
            continue
        if any(c.code.startswith(x) or x.startswith(c.code) for x in codes):
            continue
        codes.append(c.code)
        names.append(c.name.split("、")[0])
    return f"为喜爱{'、'.join(names[:3])}的会员精选 · Chosen for {profile.size:,} members who read {profile.name}"


def _main_class(plan: CatalogPlan, profile: SegmentProfile | None) -> str:
    """The segment's leading category: the cover takes its colour."""
    if profile is not None and profile.top_categories:
        return profile.top_categories[0].code
    if plan.sections:
        return max(plan.sections, key=lambda s: (len(s.entries), s.code)).code
    return "I"


def catalog_view(
    plan: CatalogPlan,
    titles: Mapping[str, TitleRecord],
    profile: SegmentProfile | None,
    *,
    club_name: str,
    order_address: str,
    font: str,
    covers_dir: Path | None = None,
) -> CatalogView:
    sections = [
        SectionView(
            f"sec-{i}",
            s.code,
            s.name,
            class_colour(s.code),
            [
                entry_view(
                    titles[e.title_id], s.code, s.name, is_new=e.is_new, promoted=e.promoted,
                    font=font, covers_dir=covers_dir,
                )
                for e in s.entries
            ],
        )
        for i, s in enumerate(plan.sections)
    ]
    best = sorted(
        (e for s in plan.sections for e in s.entries), key=lambda e: (-e.score, e.title_id)
    )[:10]
    images = [next(x.image for s in sections for x in s.entries if x.title_id == e.title_id) for e in best]
    period = Quarter.parse(plan.quarter)
    return CatalogView(
        club_name, order_address, plan.quarter, period.label, plan.segment,
        plan.segment_name, segment_line(profile),
        class_colour(_main_class(plan, profile), 34),
        sections, sum(len(s.entries) for s in sections), images,
    )


def letter_opening(segment_name: str, quarter_label: str) -> str:
    """The letter's first paragraph: the same for every member of a segment (a stamp,
    :mod:`catalog.stamps`)."""
    return f"感谢您一直以来对书友会的支持。{quarter_label}的会员书目已经为您备好，这一期以「{segment_name}」为主题。"


def member_letter(
    name: str, segment_name: str, quarter_label: str, picks: int, main: EntryView | None = None
) -> list[str]:
    chosen = (
        f"根据您的阅读记录，我们从本季书目中为您选出本季推荐《{main.title}》，另挑选了 {picks} 本书，"
        if main is not None
        else f"根据您的阅读记录，我们从本季书目中为您挑选了 {picks} 本书，"
    )
    english = (
        f"Dear {name}, thank you for reading with us. This quarter's selection, chosen for you "
        "from your reading history, and your picks follow the order form, which already "
        "carries your member number."
        if main is not None
        else f"Dear {name}, thank you for reading with us. Your picks for this quarter, chosen "
        "from your reading history, follow the order form, which already carries your "
        "member number."
    )
    return [
        letter_opening(segment_name, quarter_label),
        chosen + "列在订购单后面，每本都附上了推荐的理由。用订购单订购，会员号已为您填好。",
        english,
    ]


def member_view(
    member: MemberRecord,
    picks: Sequence[EntryView],
    qr: Callable[[], str],
    *,
    segment_name: str,
    quarter: str,
    club_name: str,
    order_address: str,
    key_code: str = "",
    main: EntryView | None = None,
    reply_by: dt.date | None = None,
) -> MemberView:
    label = Quarter.parse(quarter).label
    address = [line for line in (member.address, " ".join(filter(None, (member.postcode, member.city)))) if line]
    return MemberView(
        member.member_id, member.name, address, f"亲爱的 {member.name}：",
        member_letter(member.name, segment_name, label, len(picks), main), list(picks), qr,
        segment_name, label, club_name, order_address, prefilled=list(picks[:3]), key_code=key_code,
        main=main, reply_by=reply_by,
    )
