"""Shakespeare and Company (Paris, 1919–1962) as a club: a lending library's members and borrows.

Books' genres map onto the CLC through ``category_mappings`` (scheme
``sco-genre``); each borrow becomes a purchase of quantity 1 in the shop
channel. Borrows whose date has no year or no month are skipped and counted;
a year-and-month date is read as the first of that month.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import Connection

from recsys.storage.categories import CategoryNode, ancestors, clc_file, load_categories, read_clc
from recsys.storage.imports.loader import ImportOptions, Progress, import_rows
from recsys.storage.imports.report import ImportSummary
from recsys.storage.imports.source import RowSource, SourceRow, read_csv
from recsys.storage.imports.specs import CATEGORY_MAPPINGS, MEMBERS, PURCHASES, TITLES

SCHEME = "sco-genre"
# The club's reading of the library's five genres in the CLC (5th edition).
GENRE_TO_CLC = {
    "Fiction": "I14",      # 小说集
    "Poetry": "I12",       # 诗歌集
    "Drama": "I13",        # 戏剧文学集
    "Nonfiction": "Z4",    # 论文集、全集、选集、杂著 (essays, lives, criticism, history)
    "Periodical": "Z6",    # 期刊、连续性出版物
}
NO_DATE = "borrow date missing, year only, or without a year"
_FULL = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_MONTH = re.compile(r"^\d{4}-\d{2}$")
_YEAR = re.compile(r"^(\d{4})")


def _rows(path: Path) -> Iterator[SourceRow]:
    yield from read_csv(path).rows()


def _ensure_categories(connection: Connection, clc_dir: Path) -> None:
    """Levels 1–2 of the CLC plus the deeper classes the genre mapping points at."""
    nodes = read_clc(clc_file(clc_dir, all_levels=False))
    wanted = set(GENRE_TO_CLC.values())
    if not wanted <= {n.code for n in nodes}:
        full = {n.code: n for n in read_clc(clc_file(clc_dir, all_levels=True))}
        extra: dict[str, CategoryNode] = {}
        for code in wanted:
            for c in ancestors(full, code):
                extra[c] = full[c]
        nodes = sorted({**{n.code: n for n in nodes}, **extra}.values(), key=lambda n: n.level)
    load_categories(connection, nodes)


def _mappings() -> Iterator[SourceRow]:
    for i, (label, code) in enumerate(GENRE_TO_CLC.items(), start=2):
        yield SourceRow(i, {"scheme": SCHEME, "label": label, "category_code": code})


def _members(path: Path) -> Iterator[SourceRow]:
    for row in _rows(path):
        v = row.values
        years = _YEAR.match((v.get("membership_years") or "").strip())
        arrondissement = (v.get("arrondissement_first_dwelling") or "").strip()
        yield SourceRow(row.line, {
            "member_id": v.get("member_id", ""),
            "name": (v.get("name") or "").strip() or v.get("member_id", ""),
            "joined_on": f"{years.group(1)}-01-01" if years else "",
            "channel": "shop",
            "address": f"arrondissement {arrondissement}" if arrondissement else "",
            "city": "Paris",
            "birth_year": (v.get("birth_year") or "").strip(),
            "status": "closed",
        })


def _books(path: Path) -> Iterator[SourceRow]:
    for row in _rows(path):
        v = row.values
        genres = [g.strip() for g in (v.get("genres") or "").split(";") if g.strip()]
        year = _YEAR.match((v.get("year") or "").strip())
        yield SourceRow(row.line, {
            "title_id": v.get("book_id", ""),
            "title": (v.get("title") or "").strip() or v.get("book_id", ""),
            "author": (v.get("author_name") or "").strip(),
            "published_on": f"{year.group(1)}-01-01" if year else "",
            "in_stock": "true",
            "categories": ";".join(f"{SCHEME}:{g}" for g in genres),
        })


def _borrows(path: Path, summary: ImportSummary) -> Iterator[SourceRow]:
    for row in _rows(path):
        v = row.values
        start = (v.get("start_date") or "").strip()
        if _MONTH.match(start):
            start = f"{start}-01"
        elif not _FULL.match(start):
            summary.skip(NO_DATE)
            continue
        event, member = v.get("event_id", ""), v.get("member_id", "")
        yield SourceRow(row.line, {
            "line_id": f"{event}:{member}",  # shared accounts repeat an event id, one row per member
            "order_id": event,
            "member_id": member,
            "title_id": v.get("book_id", ""),
            "purchased_at": start,
            "quantity": "1",
            "unit_price": "0",
            "channel": "shop",
        })


def import_shakespeare_and_co(
    connection: Connection, directory: Path, clc_dir: Path, options: ImportOptions,
    *, progress: Progress | None = None,
) -> list[ImportSummary]:
    """Categories, genre mappings, members, books and borrows, all in the caller's transaction."""
    _ensure_categories(connection, clc_dir)
    mappings = import_rows(
        connection, CATEGORY_MAPPINGS,
        RowSource(f"{SCHEME} mapping", _mappings(), CATEGORY_MAPPINGS.columns), options,
    )
    members_path, books_path, borrows_path = (
        directory / "sco_members.csv", directory / "sco_books.csv", directory / "sco_borrows.csv"
    )
    members = import_rows(
        connection, MEMBERS, RowSource(str(members_path), _members(members_path), MEMBERS.columns), options
    )
    titles = import_rows(
        connection, TITLES, RowSource(str(books_path), _books(books_path), TITLES.columns), options
    )
    summary = ImportSummary(PURCHASES.name, str(borrows_path))
    borrows = import_rows(
        connection, PURCHASES,
        RowSource(str(borrows_path), _borrows(borrows_path, summary), PURCHASES.columns),
        options, progress=progress, summary=summary,
    )
    return [mappings, members, titles, borrows]
