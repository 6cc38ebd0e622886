"""Titles and their categories: one record type (:class:`TitleRecord`, primary category first)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Connection,
    Float,
    cast,
    or_,
    select,
)

from recsys.storage.bulk import in_chunks
from recsys.storage.schema import (
    Title,
    TitleCategory,
)


@dataclass(frozen=True)
class TitleRecord:
    """A title as every reader sees it (API answers, catalogs, the console)."""

    title_id: str
    title: str
    author: str | None
    price: float | None  # list price
    in_stock: bool
    categories: tuple[str, ...]  # primary first
    publisher: str | None = None
    language: str | None = None
    published_on: dt.date | None = None
    blurb: str | None = None
    cover: str | None = None

    @property
    def primary_category(self) -> str | None:
        return self.categories[0] if self.categories else None


_TITLE_COLUMNS = (
    Title.id, Title.title_id, Title.title, Title.author, Title.price, Title.in_stock,
    Title.publisher, Title.language, Title.published_on, Title.blurb, Title.cover,
)


def _records(rows: Iterable[Any], codes: dict[int, list[str]]) -> list[TitleRecord]:
    return [
        TitleRecord(
            tid, title, author, None if price is None else float(price), bool(stock),
            tuple(codes.get(key, ())), publisher, language, published, blurb, cover,
        )
        for key, tid, title, author, price, stock, publisher, language, published, blurb, cover in rows
    ]


def _codes(connection: Connection, keys: Sequence[int] | None) -> dict[int, list[str]]:
    """title key → category codes, primary first (every title's, or ``keys``')."""
    stmt = select(TitleCategory.title_key, TitleCategory.category_code).order_by(
        TitleCategory.title_key, TitleCategory.is_primary.desc(), TitleCategory.category_code
    )
    out: dict[int, list[str]] = defaultdict(list)
    chunks: Iterable[Sequence[int] | None] = [None] if keys is None else in_chunks(keys)
    for chunk in chunks:
        query = stmt if chunk is None else stmt.where(TitleCategory.title_key.in_(chunk))
        for key, code in connection.execute(query):
            out[key].append(code)
    return out


def title_details(connection: Connection, title_ids: Collection[str]) -> dict[str, TitleRecord]:
    """The records of the titles among ``title_ids`` that exist."""
    rows: list[Any] = []
    for chunk in in_chunks(list(dict.fromkeys(title_ids))):
        rows.extend(connection.execute(select(*_TITLE_COLUMNS).where(Title.title_id.in_(chunk))).all())
    codes = _codes(connection, [row[0] for row in rows])
    return {r.title_id: r for r in _records(rows, codes)}


def all_title_details(
    connection: Connection, *, after: str | None = None, limit: int | None = None
) -> dict[str, TitleRecord]:
    """Every title's record: what a worker caches. With ``limit``: one page of at most that
    many, by title id, after the title id ``after`` (a worker reads its cache page by page)."""
    if limit is None and after is None:
        rows = connection.execute(select(*_TITLE_COLUMNS)).all()
        return {r.title_id: r for r in _records(rows, _codes(connection, None))}
    stmt = select(*_TITLE_COLUMNS).order_by(Title.title_id).limit(limit)
    if after is not None:
        stmt = stmt.where(Title.title_id > after)
    rows = connection.execute(stmt).all()
    return {r.title_id: r for r in _records(rows, _codes(connection, [row[0] for row in rows]))}


def title_stock(
    connection: Connection, *, after: str | None = None, limit: int | None = None
) -> list[tuple[str, float | None, bool]]:
    """(title_id, list price, in stock) by title id — what changes without a retrain, read
    often by the API's workers (no text columns, no Decimal per row); ``after`` and ``limit``
    page it as in :func:`all_title_details`."""
    stmt = select(Title.title_id, cast(Title.price, Float), Title.in_stock).order_by(Title.title_id).limit(limit)
    if after is not None:
        stmt = stmt.where(Title.title_id > after)
    rows = connection.execute(stmt)
    return [(title_id, None if price is None else float(price), bool(stock)) for title_id, price, stock in rows]


def titles_for_quarter(connection: Connection, until: dt.date) -> list[TitleRecord]:
    """Every title published before ``until`` (or undated), by title id."""
    rows = connection.execute(
        select(*_TITLE_COLUMNS)
        .where(or_(Title.published_on.is_(None), Title.published_on < until))
        .order_by(Title.title_id)
    ).all()
    return _records(rows, _codes(connection, None))


def title_exists(connection: Connection, title_id: str) -> bool:
    return connection.scalar(select(Title.id).where(Title.title_id == title_id)) is not None


def all_title_categories(connection: Connection) -> list[tuple[str, list[str]]]:
    """Every title with its category codes (primary first): what a freshly loaded model is fed."""
    by_title: dict[str, list[str]] = {}
    for title_id in connection.scalars(select(Title.title_id)):
        by_title[title_id] = []
    for title_id, code in connection.execute(
        select(Title.title_id, TitleCategory.category_code)
        .join(TitleCategory, TitleCategory.title_key == Title.id)
        .order_by(Title.title_id, TitleCategory.is_primary.desc(), TitleCategory.category_code)
    ):
        by_title[title_id].append(code)
    return list(by_title.items())


def title_keys(connection: Connection, title_ids: Collection[str]) -> dict[str, tuple[int, Decimal | None]]:
    """``title_id`` → (key, list price) for the ids that exist."""
    found: dict[str, tuple[int, Decimal | None]] = {}
    for chunk in in_chunks(list(dict.fromkeys(title_ids))):
        for title_id, key, price in connection.execute(
            select(Title.title_id, Title.id, Title.price).where(Title.title_id.in_(chunk))
        ):
            found[title_id] = (key, price)
    return found
