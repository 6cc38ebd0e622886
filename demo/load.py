"""Writing the demo club (``demo.generate``) to the database, chunk by chunk.

Everything goes in one transaction: a failure leaves the database as it was. Titles
and members get explicit surrogate keys (the tables are empty when this runs), so
order lines can name them without reading them back; PostgreSQL's sequences are
moved past them at the end.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Connection, Engine

from demo.generate import (
    DemoChunk,
    DemoSpec,
    DemoTitles,
    club_categories,
    generate_members,
    generate_titles,
    purchase_chunks,
)
from recsys.errors import BookclubError
from recsys.storage import categories as categories_db
from recsys.storage import club as club_db
from recsys.storage.bulk import bulk_insert
from recsys.storage.schema import (
    CHANNELS,
    Member,
    MemberCategory,
    Purchase,
    Title,
    TitleCategory,
)

DEMO_TABLES = club_db.CLUB_TABLES
ROWS_PER_BATCH = 50_000

Progress = Callable[[str, int, int], None]
"""Called as ``(table, rows written so far, rows expected)`` after each batch."""


class DemoDataExistsError(BookclubError):
    """The database already has members, titles or purchases."""


@dataclass(frozen=True)
class DemoSummary:
    counts: dict[str, int]  # rows per table after the load
    first_purchase: dt.datetime | None
    last_purchase: dt.datetime | None
    top20_revenue_share: float  # net revenue of the top 20 % of members / all revenue
    seconds: float


def _no_progress(_table: str, _done: int, _total: int) -> None:
    return None


def load_demo(
    engine: Engine,
    spec: DemoSpec,
    clc_path: Path,
    *,
    replace: bool = False,
    progress: Progress = _no_progress,
) -> DemoSummary:
    """Generate the club for ``spec`` and write it; a non-empty database needs ``replace``."""
    started = time.perf_counter()
    with engine.begin() as connection:
        codes = categories_db.ensure_categories(connection, clc_path)
        if club_db.has_club_data(connection):
            if not replace:
                raise DemoDataExistsError(
                    "the database already has members, titles or purchases: "
                    "use --replace to empty them and load the demo club instead"
                )
            club_db.clear_club_data(connection)
        titles = generate_titles(spec, club_categories(codes))
        _write_titles(connection, titles, progress)
        members = generate_members(spec, titles)
        revenue = np.zeros(len(members), dtype=np.int64)
        first, last = np.iinfo(np.int64).max, np.iinfo(np.int64).min
        lines = 0
        # The table is empty: build its secondary indexes once at the end, not row by row.
        with club_db.purchase_indexes_deferred(connection):
            for chunk in purchase_chunks(spec, titles, members):
                _write_members(connection, chunk, titles.codes, len(members), progress)
                _write(connection, Purchase, _PURCHASE_COLUMNS, _purchase_rows(chunk))
                lines += len(chunk.order_no)
                progress("purchases", lines, max(lines, spec.target_lines))
                np.add.at(revenue, chunk.member_key - 1, chunk.quantity * chunk.unit_cents)
                if len(chunk.purchased_at):
                    first = min(first, int(chunk.purchased_at.min().astype(np.int64)))
                    last = max(last, int(chunk.purchased_at.max().astype(np.int64)))
            progress("purchases", lines, lines)
        club_db.move_sequences(connection)
        club_db.analyze_club(connection)
        club_db.mark_demo(
            connection, f"demo club: {spec.members} members, {spec.titles} titles, {spec.years} years, seed {spec.seed}"
        )
        counts = club_db.row_counts(connection)
    return DemoSummary(
        counts=counts,
        first_purchase=_as_datetime(first) if lines else None,
        last_purchase=_as_datetime(last) if lines else None,
        top20_revenue_share=top_share(revenue, 0.2),
        seconds=time.perf_counter() - started,
    )


def top_share(revenue: NDArray[np.int64], fraction: float) -> float:
    """Share of the total held by the top ``fraction`` of ``revenue``'s entries."""
    total = float(revenue.sum())
    if total <= 0:
        return 0.0
    top = np.sort(revenue)[::-1][: max(1, round(len(revenue) * fraction))]
    return float(top.sum()) / total


def _as_datetime(seconds: int) -> dt.datetime:
    return dt.datetime(1970, 1, 1) + dt.timedelta(seconds=seconds)


def _write(
    connection: Connection, model: Any, columns: Sequence[str], rows: Iterator[tuple[Any, ...]]
) -> int:
    return bulk_insert(connection, model.__tablename__, columns, rows, batch_size=ROWS_PER_BATCH)


_TITLE_COLUMNS = (
    "id", "title_id", "title", "author", "publisher", "language", "price", "published_on",
    "in_stock", "blurb",
)  # fmt: skip
_MEMBER_COLUMNS = (
    "id", "member_id", "name", "joined_on", "channel", "address", "postcode", "city",
    "birth_year", "status",
)  # fmt: skip
_PURCHASE_COLUMNS = (
    "line_id", "order_id", "member_key", "title_key", "quantity", "unit_price", "purchased_at",
    "channel",
)  # fmt: skip


def _dates(days: NDArray[np.int64]) -> list[dt.date]:
    return days.astype("datetime64[D]").astype(object).tolist()  # type: ignore[no-any-return]


def _write_titles(connection: Connection, titles: DemoTitles, progress: Progress) -> None:
    n = len(titles)
    keys = list(range(1, n + 1))
    rows = zip(
        keys, titles.title_id, titles.title, titles.author, titles.publisher,
        titles.language.tolist(), (titles.price_cents / 100).tolist(),
        _dates(titles.published_day), titles.in_stock.tolist(), titles.blurb,
        strict=True,
    )  # fmt: skip
    _write(connection, Title, _TITLE_COLUMNS, iter(rows))
    progress("titles", n, n)
    codes = np.asarray(titles.codes)
    has_second = np.flatnonzero(titles.second_cat >= 0)
    links = zip(
        [*keys, *(has_second + 1).tolist()],
        [*codes[titles.primary_cat].tolist(), *codes[titles.second_cat[has_second]].tolist()],
        [True] * n + [False] * len(has_second),
        strict=True,
    )
    _write(connection, TitleCategory, ("title_key", "category_code", "is_primary"), iter(links))


def _write_members(
    connection: Connection,
    chunk: DemoChunk,
    codes: tuple[str, ...],
    total: int,
    progress: Progress,
) -> None:
    keys = chunk.key.tolist()
    lo, hi = keys[0] - 1, keys[-1]
    rows = zip(
        keys, chunk.member_id, chunk.name.tolist(), _dates(chunk.joined_day),
        np.asarray(CHANNELS)[chunk.preferred].tolist(), chunk.address.tolist(),
        chunk.postcode.tolist(), chunk.city.tolist(), chunk.birth_year.tolist(),
        chunk.status.tolist(),
        strict=True,
    )  # fmt: skip
    _write(connection, Member, _MEMBER_COLUMNS, iter(rows))
    fav = chunk.favourites
    member_idx, slot = np.nonzero(fav >= 0)
    member_keys = (member_idx + lo + 1).tolist()
    links = zip(member_keys, np.asarray(codes)[fav[member_idx, slot]].tolist(), strict=True)
    _write(connection, MemberCategory, ("member_key", "category_code"), iter(links))
    progress("members", hi, total)


def _timestamps(at: NDArray[np.datetime64]) -> list[str]:
    """Naive UTC timestamps as text in SQLAlchemy's SQLite layout (PostgreSQL reads it too)."""
    text_at = np.datetime_as_string(at.astype("datetime64[us]"), unit="us")
    return np.strings.replace(text_at, "T", " ").tolist()  # type: ignore[no-any-return]


def _purchase_rows(chunk: DemoChunk) -> Iterator[tuple[Any, ...]]:
    channels = np.asarray(CHANNELS)
    for lo in range(0, len(chunk.order_no), ROWS_PER_BATCH):
        part = slice(lo, lo + ROWS_PER_BATCH)
        for order, is_return, line, member, title, quantity, price, at, channel in zip(
            chunk.order_no[part].tolist(), chunk.is_return[part].tolist(),
            chunk.line_no[part].tolist(), chunk.member_key[part].tolist(),
            chunk.title_key[part].tolist(), chunk.quantity[part].tolist(),
            (chunk.unit_cents[part] / 100).tolist(), _timestamps(chunk.purchased_at[part]),
            channels[chunk.channel[part]].tolist(),
            strict=True,
        ):  # fmt: skip
            order_id = f"R{order:09d}" if is_return else f"O{order:09d}"
            yield (f"{order_id}-{line}", order_id, member, title, quantity, price, at, channel)
