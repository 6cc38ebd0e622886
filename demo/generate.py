"""A believable demo club, generated with numpy: titles, members and their purchases.

Pure: no I/O. ``generate_titles`` and ``generate_members`` build every title and the
numeric side of every member at once; ``purchase_chunks`` then walks the members in
fixed-size chunks and yields each chunk's member rows and order lines, so the full size
(1.5M members, 20M lines) is never in memory at once. Everything is drawn from
``numpy.random.Generator``s seeded from ``DemoSpec.seed`` and the chunk number, so a
seed gives the same club every time.

Days are integers (days since 1970-01-01); ``*_idx`` index the arrays here, ``*_key``
are the database surrogate keys (``idx + 1``).

(Past 400 lines: titles, members and purchases are drawn from shared arrays — a title's
category and release day shape who buys it when — and read best in one place.)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from demo import names
from demo.names import CLUB_CATEGORIES, CategorySpec
from recsys.storage.schema import CHANNELS

CHUNK_MEMBERS = 50_000  # fixed: the chunking is part of what a seed reproduces
LINES_PER_MEMBER_YEAR = 8.0
FAVOURITE_SHARE = 0.8  # lines bought within a member's favourite categories
NEW_RELEASE_SHARE = 0.25  # lines picked among the last 120 days' releases
UNSOLD_DAYS = 21  # titles released in the last three weeks have no sales yet
RETURN_SHARE = 0.015
MEAN_LINES = 1.6  # order lines per order
DISCOUNTS = (np.array([1.0, 0.9, 0.85, 0.8, 0.75]), np.array([0.45, 0.25, 0.12, 0.12, 0.06]))
CHANNEL_WEIGHTS = np.array([0.22, 0.12, 0.14, 0.10, 0.30, 0.12])  # order of schema.CHANNELS
MONTH_FACTOR = np.array([1.25, 0.9, 1.0, 0.95, 0.95, 1.0, 1.1, 1.15, 1.25, 1.0, 1.3, 1.2])
HOUR_WEIGHTS = np.array(
    [1, 1, 1, 1, 1, 1, 2, 3, 5, 7, 8, 8, 8, 7, 7, 7, 7, 8, 9, 10, 11, 10, 7, 3.0]
)


@dataclass(frozen=True)
class DemoSpec:
    members: int = 5_000
    titles: int = 1_500
    years: int = 3
    seed: int = 42
    end_date: dt.date = field(default_factory=dt.date.today)
    purchases: int | None = None  # target order lines; default members × years × 8

    def __post_init__(self) -> None:
        if self.members < 1 or self.titles < 10 or self.years < 1:
            raise ValueError("demo needs members >= 1, titles >= 10 and years >= 1")

    @property
    def target_lines(self) -> int:
        if self.purchases is not None:
            return self.purchases
        return round(self.members * self.years * LINES_PER_MEMBER_YEAR)

    @property
    def end_day(self) -> int:
        return _day(self.end_date)

    @property
    def start_day(self) -> int:
        """First day of the purchase window: ``years`` before ``end_date``."""
        end = self.end_date
        try:
            start = end.replace(year=end.year - self.years)
        except ValueError:  # 29 February
            start = end.replace(year=end.year - self.years, day=28)
        return _day(start) + 1


def _day(date: dt.date) -> int:
    return int(np.datetime64(date, "D").astype(np.int64))


def _rng(spec: DemoSpec, stream: int) -> np.random.Generator:
    return np.random.default_rng([spec.seed, stream])


@dataclass(frozen=True)
class DemoTitles:
    """Every title; ``cat_*`` index ``codes`` (the club's categories present in the tree)."""

    codes: tuple[str, ...]
    title_id: list[str]
    title: list[str]
    author: list[str]
    publisher: list[str]
    language: NDArray[np.str_]
    price_cents: NDArray[np.int64]
    published_day: NDArray[np.int64]
    in_stock: NDArray[np.bool_]
    blurb: list[str]
    primary_cat: NDArray[np.intp]
    second_cat: NDArray[np.intp]  # -1: only one category
    popularity: NDArray[np.float64]  # Zipf-like sales weight; 0 for titles not yet on sale

    def __len__(self) -> int:
        return len(self.title_id)


def club_categories(available: set[str]) -> tuple[CategorySpec, ...]:
    """The club's categories that the loaded tree has."""
    chosen = tuple(c for c in CLUB_CATEGORIES if c.code in available)
    if not chosen:
        raise ValueError("none of the demo's CLC categories is in the category tree")
    return chosen


def generate_titles(spec: DemoSpec, categories: tuple[CategorySpec, ...]) -> DemoTitles:
    """The catalogue: authors writing in one or two categories, quarterly releases, prices."""
    rng = _rng(spec, 1)
    n, c = spec.titles, len(categories)
    weight = np.array([cat.weight for cat in categories])
    english = np.array([cat.english for cat in categories])
    # Authors: a home category, sometimes a second one, a language; productivity is skewed.
    n_authors = max(3, n // 3)
    a_cat1 = rng.choice(c, n_authors, p=weight / weight.sum())
    a_cat2 = np.where(
        rng.random(n_authors) < 0.35, rng.choice(c, n_authors, p=weight / weight.sum()), -1
    )
    a_cat2[a_cat2 == a_cat1] = -1
    a_latin = rng.random(n_authors) < np.maximum(english[a_cat1] * 1.6, 0.03)
    a_name = np.where(
        a_latin, names.latin_names(rng, n_authors), names.chinese_names(rng, n_authors)
    )
    productivity = rng.pareto(1.5, n_authors) + 1.0
    author_idx = np.concatenate(
        [
            rng.permutation(n_authors)[: min(n, n_authors)],
            rng.choice(n_authors, max(0, n - n_authors), p=productivity / productivity.sum()),
        ]
    )
    use_second = (a_cat2[author_idx] >= 0) & (rng.random(n) < 0.3)
    primary = np.where(use_second, a_cat2[author_idx], a_cat1[author_idx])
    other = np.where(use_second, a_cat1[author_idx], a_cat2[author_idx])
    second = np.where((other >= 0) & (rng.random(n) < 0.5), other, -1)
    # Language: English-language editions by Latin-name authors; translations stay zh.
    lang_en = a_latin[author_idx] & (rng.random(n) < np.clip(english[primary] * 2.5, 0, 0.9))
    language = np.where(lang_en, "en", "zh")
    # Prices: log-uniform within the category's range, ending in .00 or .80; imports cost more.
    lo = np.array([cat.price[0] for cat in categories])[primary]
    hi = np.array([cat.price[1] for cat in categories])[primary]
    yuan = np.exp(rng.uniform(np.log(lo), np.log(hi)))
    yuan = np.where(lang_en, np.minimum(yuan * 1.8, 398), yuan)
    price_cents = (np.floor(yuan) * 100 + np.where(rng.random(n) < 0.4, 80, 0)).astype(np.int64)
    # Release dates: a backlist before the window, then every quarter's new releases
    # (most in the quarter's first month, when its catalog goes out), and a last batch
    # announced in the final three weeks that has not sold yet.
    end, start = spec.end_day, spec.start_day
    kind = rng.choice(3, n, p=[0.35, 0.62, 0.03])
    backlist = start - 1 - rng.integers(0, 8 * 365, n)
    quarter_starts = _quarter_starts(start, end)
    q = rng.choice(len(quarter_starts), n, p=_growth(len(quarter_starts)))
    offset = np.where(rng.random(n) < 0.6, rng.integers(0, 31, n), rng.integers(0, 91, n))
    window = np.minimum(quarter_starts[q] + offset, end - UNSOLD_DAYS - 1)
    fresh = end - rng.integers(0, UNSOLD_DAYS, n)
    published = np.select([kind == 0, kind == 1], [backlist, window], fresh).astype(np.int64)
    published[0] = start - 400  # at least one title on sale before the window opens
    in_stock = rng.random(n) >= np.where(published < start, 0.06, 0.015)
    # Popularity: Zipf over a random rank, English editions sell less, unreleased nothing.
    popularity = np.asarray(1.0 / (rng.permutation(n) + 1.0) ** 0.95, dtype=np.float64)
    popularity *= np.where(lang_en, 0.35, 1.0)
    popularity[published > end - UNSOLD_DAYS] = 0.0
    subjects = [names.subject_key(categories[i].code) for i in primary.tolist()]
    title_text, blurb = names.title_texts(rng, subjects, language)
    publisher = [
        names.publisher(rng, s, lang == "en")
        for s, lang in zip(subjects, language.tolist(), strict=True)
    ]
    numbers = rng.permutation(np.arange(n, dtype=np.int64) + 10_000_000 * (spec.seed % 9 + 1))
    title_id = _isbn13_by_language(numbers, lang_en)
    return DemoTitles(
        codes=tuple(cat.code for cat in categories),
        title_id=title_id,
        title=title_text,
        author=a_name[author_idx].tolist(),
        publisher=publisher,
        language=language,
        price_cents=price_cents,
        published_day=published,
        in_stock=in_stock,
        blurb=blurb,
        primary_cat=primary,
        second_cat=second,
        popularity=popularity,
    )


def _isbn13_by_language(numbers: NDArray[np.int64], lang_en: NDArray[np.bool_]) -> list[str]:
    zh, en = names.isbn13("9787", numbers), names.isbn13("9781", numbers)
    return [e if is_en else z for z, e, is_en in zip(zh, en, lang_en.tolist(), strict=True)]


def _quarter_starts(start: int, end: int) -> NDArray[np.int64]:
    months = np.arange(
        np.datetime64(start, "D").astype("datetime64[M]"),
        np.datetime64(end, "D").astype("datetime64[M]") + 1,
    )
    firsts = months[months.astype(np.int64) % 3 == 0].astype("datetime64[D]").astype(np.int64)
    return np.concatenate([[start], firsts[firsts > start]]).astype(np.int64)


def _growth(n: int) -> NDArray[np.float64]:
    weights = np.linspace(1.0, 1.25, n)
    return np.asarray(weights / weights.sum(), dtype=np.float64)


@dataclass(frozen=True)
class DemoMembers:
    """The numeric side of every member; text is made per chunk in ``purchase_chunks``."""

    joined_day: NDArray[np.int64]
    channel: NDArray[np.int8]  # index into schema.CHANNELS
    birth_year: NDArray[np.int16]
    favourites: NDArray[np.int16]  # members × 3 category indexes, -1 padded
    activity: NDArray[np.float64]  # expected order lines over the window

    def __len__(self) -> int:
        return len(self.joined_day)


def generate_members(spec: DemoSpec, titles: DemoTitles) -> DemoMembers:
    """Join dates, channels, ages, one to three favourite categories, a heavy-tailed activity."""
    rng = _rng(spec, 2)
    n, start, end = spec.members, spec.start_day, spec.end_day
    old = rng.random(n) < 0.4  # joined before the window: long-standing members
    joined = np.where(
        old, start - 1 - rng.integers(0, 5 * 365, n), start + (end - start) * rng.random(n) ** 0.8
    ).astype(np.int64)
    young = rng.random(n) < 0.72  # most members are under 25 when they join
    age = np.where(young, rng.integers(15, 25, n), rng.triangular(25, 30, 66, n).astype(np.int64))
    join_year = joined.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970
    channel = rng.choice(len(CHANNELS), n, p=CHANNEL_WEIGHTS).astype(np.int8)
    # Favourites: Gumbel top-k over the category weights, in chunks to bound memory.
    weight = np.bincount(titles.primary_cat, minlength=len(titles.codes)) + 0.5
    log_w = np.log(weight / weight.sum())
    favourites = np.empty((n, 3), dtype=np.int16)
    for lo in range(0, n, 100_000):
        hi = min(n, lo + 100_000)
        keys = log_w + rng.gumbel(size=(hi - lo, len(log_w)))
        favourites[lo:hi] = np.argsort(-keys, axis=1)[:, :3]
    count = rng.choice([1, 2, 3], n, p=[0.4, 0.4, 0.2])
    favourites[np.arange(3)[None, :] >= count[:, None]] = -1
    # Activity: lognormal taste for buying × days of membership inside the window.
    days = (end - np.maximum(joined, start) + 1).astype(np.float64)
    rate = rng.lognormal(0.0, 1.45, n) * days
    activity = rate * (spec.target_lines / rate.sum())
    return DemoMembers(joined, channel, (join_year - age).astype(np.int16), favourites, activity)


@dataclass(frozen=True)
class DemoChunk:
    """Members ``key[0]…key[-1]`` with their text and status, and their order lines."""

    key: NDArray[np.int64]
    member_id: list[str]
    name: NDArray[np.str_]
    address: NDArray[np.str_]
    postcode: NDArray[np.str_]
    city: NDArray[np.str_]
    status: NDArray[np.str_]
    joined_day: NDArray[np.int64]
    preferred: NDArray[np.int8]  # preferred channel, index into schema.CHANNELS
    birth_year: NDArray[np.int16]
    favourites: NDArray[np.int16]  # members × 3 indexes into DemoTitles.codes, -1 padded
    # order lines (returns have a negative quantity and an "R" order)
    order_no: NDArray[np.int64]
    is_return: NDArray[np.bool_]
    line_no: NDArray[np.int64]
    member_key: NDArray[np.int64]
    title_key: NDArray[np.int64]
    quantity: NDArray[np.int64]
    unit_cents: NDArray[np.int64]
    purchased_at: NDArray[np.datetime64]
    channel: NDArray[np.int8]


def _day_intensity(spec: DemoSpec) -> NDArray[np.float64]:
    """Cumulative buying intensity over the window: month effects, catalog weeks, growth."""
    days = np.arange(spec.start_day, spec.end_day + 1)
    as_date = days.astype("datetime64[D]")
    month = as_date.astype("datetime64[M]").astype(np.int64)
    day_of_month = days - month.astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)
    catalog_weeks = (month % 3 == 0) & (day_of_month < 21)
    weekend = ((days + 3) % 7) >= 5
    growth = 1.0 + 0.08 * (days - days[0]) / 365.0
    intensity = (
        MONTH_FACTOR[month % 12] * np.where(catalog_weeks, 1.4, 1.0) * np.where(weekend, 1.15, 1.0)
    )
    return np.concatenate([[0.0], np.cumsum(intensity * growth)])


@dataclass(frozen=True)
class _TitleIndex:
    """Titles by category, in release order, with cumulative popularity: one flat array."""

    keys: NDArray[np.int64]  # category * 2**20 + published_day, ascending
    title_idx: NDArray[np.int64]
    cum: NDArray[np.float64]  # cumulative popularity, with a leading 0

    @classmethod
    def build(cls, titles: DemoTitles) -> _TitleIndex:
        has_second = titles.second_cat >= 0
        idx = np.concatenate(
            [np.arange(len(titles)), np.flatnonzero(has_second), np.arange(len(titles))]
        )
        cat = np.concatenate(
            [
                titles.primary_cat,
                titles.second_cat[has_second],
                np.full(len(titles), len(titles.codes)),
            ]
        )
        keys = cat.astype(np.int64) * 2**20 + titles.published_day[idx]
        order = np.argsort(keys, kind="stable")
        cum = np.concatenate([[0.0], np.cumsum(titles.popularity[idx[order]])])
        return cls(keys[order], idx[order].astype(np.int64), cum)

    def draw(
        self,
        rng: np.random.Generator,
        cat: NDArray[np.int64],
        first: NDArray[np.int64],
        last: NDArray[np.int64],
    ) -> NDArray[np.int64]:
        """A title per line from ``cat`` released in [first, last] by popularity; -1 if none."""
        lo = np.searchsorted(self.keys, cat * 2**20 + first, "left")
        hi = np.searchsorted(self.keys, cat * 2**20 + last, "right")
        mass = self.cum[hi] - self.cum[lo]
        u = self.cum[lo] + rng.random(len(cat)) * mass
        pos = np.clip(np.searchsorted(self.cum, u, "right") - 1, lo, np.maximum(hi - 1, lo))
        return np.where(mass > 0, self.title_idx[np.minimum(pos, len(self.title_idx) - 1)], -1)


@dataclass(frozen=True)
class _Club:
    """What every chunk samples from."""

    spec: DemoSpec
    titles: DemoTitles
    members: DemoMembers
    cum: NDArray[np.float64]
    index: _TitleIndex
    cat_p: NDArray[np.float64]  # category shares of sales, for lines outside the favourites


def purchase_chunks(
    spec: DemoSpec, titles: DemoTitles, members: DemoMembers
) -> Iterator[DemoChunk]:
    """Each chunk of ``CHUNK_MEMBERS`` members with their text, status and order lines."""
    weight = np.bincount(titles.primary_cat, titles.popularity, minlength=len(titles.codes))
    club = _Club(
        spec, titles, members, _day_intensity(spec), _TitleIndex.build(titles),
        np.asarray(weight / weight.sum(), dtype=np.float64),
    )  # fmt: skip
    orders_so_far = returns_so_far = 0
    for chunk_no, lo in enumerate(range(0, len(members), CHUNK_MEMBERS)):
        hi = min(len(members), lo + CHUNK_MEMBERS)
        rng = _rng(spec, 1000 + chunk_no)
        chunk = _chunk(club, rng, lo, hi, orders_so_far, returns_so_far)
        orders_so_far = int(chunk.order_no[~chunk.is_return].max(initial=orders_so_far))
        returns_so_far += int(chunk.is_return.sum())
        yield chunk


def _chunk(
    club: _Club, rng: np.random.Generator, lo: int, hi: int, order_base: int, return_base: int
) -> DemoChunk:
    spec, titles, members, cum, index = club.spec, club.titles, club.members, club.cum, club.index
    start, end, n_cats = spec.start_day, spec.end_day, len(titles.codes)
    # Orders: a Poisson count per member, dated by the season-weighted intensity over membership.
    n_orders = rng.poisson(members.activity[lo:hi] / MEAN_LINES)
    o_member = np.repeat(np.arange(lo, hi), n_orders)
    n_o = len(o_member)
    first = np.maximum(members.joined_day[o_member], start)
    u = cum[first - start] + rng.random(n_o) * (cum[end - start + 1] - cum[first - start])
    o_day = np.clip(start + np.searchsorted(cum, u, "right") - 1, first, end)
    o_second = rng.choice(24, n_o, p=HOUR_WEIGHTS / HOUR_WEIGHTS.sum()) * 3600 + rng.integers(
        0, 3600, n_o
    )
    o_channel = np.where(
        rng.random(n_o) < 0.7,
        members.channel[o_member],
        rng.choice(len(CHANNELS), n_o, p=CHANNEL_WEIGHTS),
    ).astype(np.int8)
    # Lines: 1–6 per order; the category mostly one of the member's favourites.
    n_lines = 1 + np.minimum(rng.poisson(MEAN_LINES - 1, n_o), 5)
    line_order = np.repeat(np.arange(n_o), n_lines)
    n_l = len(line_order)
    line_no = np.arange(n_l) - np.repeat(np.cumsum(n_lines) - n_lines, n_lines) + 1
    l_member, l_day = o_member[line_order], o_day[line_order]
    favs = members.favourites[l_member]
    pick = (rng.random(n_l) * (favs >= 0).sum(axis=1)).astype(np.intp)
    cat = favs[np.arange(n_l), pick].astype(np.int64)
    elsewhere = np.flatnonzero(rng.random(n_l) >= FAVOURITE_SHARE)
    for _ in range(3):  # the other lines: a category outside the favourites, by sales
        cat[elsewhere] = rng.choice(n_cats, len(elsewhere), p=club.cat_p)
        elsewhere = elsewhere[(favs[elsewhere] == cat[elsewhere, None]).any(axis=1)]
    # Titles: recent releases for some lines, else the whole backlist released by then.
    recent = rng.random(n_l) < NEW_RELEASE_SHARE
    title = index.draw(rng, cat, np.where(recent, l_day - 120, 0), l_day)
    for fallback_cat in (cat, np.full(n_l, n_cats)):
        missing = np.flatnonzero(title < 0)
        title[missing] = index.draw(
            rng, fallback_cat[missing], np.zeros(len(missing), np.int64), l_day[missing]
        )
    quantity = rng.choice([1, 2, 3, 4], n_l, p=[0.9, 0.07, 0.02, 0.01])
    discount = rng.choice(DISCOUNTS[0], n_l, p=DISCOUNTS[1])
    unit_cents = (np.round(titles.price_cents[title] * discount / 10) * 10).astype(np.int64)
    at = l_day * 86_400 + o_second[line_order]
    # Returns: a few lines come back 2–30 days later as their own order.
    back = np.flatnonzero(rng.random(n_l) < RETURN_SHARE)
    back_at = at[back] + rng.integers(2, 31, len(back)) * 86_400
    back = back[back_at < (end + 1) * 86_400]
    back_at = back_at[back_at < (end + 1) * 86_400]
    n_r = len(back)
    # Status: lapsed after a year without buying; a few lapsed members closed their membership.
    last = np.full(hi - lo, -1, dtype=np.int64)
    np.maximum.at(last, l_member - lo, l_day)
    old = members.joined_day[lo:hi] < end - 365
    lapsed = old & (last < end - 365)
    status = np.where(lapsed, np.where(rng.random(hi - lo) < 0.1, "closed", "lapsed"), "active")
    latin = rng.random(hi - lo) < 0.04
    member_name = np.where(
        latin, names.latin_names(rng, hi - lo), names.chinese_names(rng, hi - lo)
    )
    city_w = np.array([c.weight for c in names.CITIES])
    address, postcode, city = names.addresses(
        rng, rng.choice(len(city_w), hi - lo, p=city_w / city_w.sum())
    )
    key = np.arange(lo, hi, dtype=np.int64) + 1
    return DemoChunk(
        key=key,
        member_id=[f"M{k:07d}" for k in key.tolist()],
        name=member_name,
        address=address,
        postcode=postcode,
        city=city,
        status=status,
        joined_day=members.joined_day[lo:hi],
        preferred=members.channel[lo:hi],
        birth_year=members.birth_year[lo:hi],
        favourites=members.favourites[lo:hi],
        order_no=np.concatenate([order_base + 1 + line_order, return_base + 1 + np.arange(n_r)]),
        is_return=np.concatenate([np.zeros(n_l, bool), np.ones(n_r, bool)]),
        line_no=np.concatenate([line_no, np.ones(n_r, np.int64)]),
        member_key=np.concatenate([l_member, l_member[back]]) + 1,
        title_key=np.concatenate([title, title[back]]) + 1,
        quantity=np.concatenate([quantity, -quantity[back]]),
        unit_cents=np.concatenate([unit_cents, unit_cents[back]]),
        purchased_at=np.concatenate([at, back_at]).astype("datetime64[s]"),
        channel=np.concatenate([o_channel[line_order], o_channel[line_order][back]]),
    )
