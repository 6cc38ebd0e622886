"""The UCI Online Retail data set as a club: customers → members, StockCodes → titles.

Every one of the file's lines is accounted for in the purchases summary: landed,
already present, rejected (with its reason) or skipped (no CustomerID; not a
product — postage, fees, discounts and manual adjustments).
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Connection

from recsys.errors import BookclubError
from recsys.storage.imports.loader import ImportOptions, Progress, import_rows
from recsys.storage.imports.report import ImportSummary
from recsys.storage.imports.source import RowSource, SourceRow, read_csv
from recsys.storage.imports.specs import MEMBERS, PURCHASES, TITLES

COLUMNS = ("InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice",
           "CustomerID", "Country")
# Stock codes that are not goods: postage, carriage, fees, discounts, manual lines, samples.
NOT_PRODUCTS = frozenset(
    {"POST", "DOT", "C2", "D", "M", "m", "S", "B", "CRUK", "PADS", "AMAZONFEE", "BANK CHARGES"}
)
NO_CUSTOMER = "no CustomerID (guest checkout: cannot be tied to a member)"
NOT_PRODUCT = "not a product (postage, fees, discounts, manual adjustments)"


def _lines(path: Path) -> Iterator[SourceRow]:
    source = read_csv(path)
    missing = [c for c in COLUMNS if c not in source.header]
    if missing:
        source.close()
        raise BookclubError(f"{path}:1: not the Online Retail file: no column(s) {', '.join(missing)}")
    yield from source.rows()


def _customer(values: dict[str, str]) -> str | None:
    raw = (values.get("CustomerID") or "").strip()
    if not raw or raw.upper() == "NA":
        return None
    return raw[:-2] if raw.endswith(".0") else raw


@dataclass
class _Catalogue:
    """What the first pass learns: each customer's first order and country, each product's names and prices."""

    customers: dict[str, tuple[int, str, str]] = field(default_factory=dict)  # id -> (line, date, country)
    names: dict[str, Counter[str]] = field(default_factory=dict)
    prices: dict[str, list[float]] = field(default_factory=dict)
    first_line: dict[str, int] = field(default_factory=dict)


def _survey(path: Path) -> _Catalogue:
    cat = _Catalogue()
    for row in _lines(path):
        v = row.values
        customer = _customer(v)
        code = (v.get("StockCode") or "").strip()
        if customer is None or code in NOT_PRODUCTS or not code:
            continue
        day = (v.get("InvoiceDate") or "")[:10]
        known = cat.customers.get(customer)
        if known is None or day < known[1]:
            cat.customers[customer] = (known[0] if known else row.line, day, (v.get("Country") or "").strip())
        cat.first_line.setdefault(code, row.line)
        description = (v.get("Description") or "").strip()
        if description and description.upper() != "NA":
            cat.names.setdefault(code, Counter())[description] += 1
        try:
            price = float(v.get("UnitPrice") or "")
        except ValueError:
            continue
        if price > 0:
            cat.prices.setdefault(code, []).append(price)
    return cat


def _members(cat: _Catalogue) -> Iterator[SourceRow]:
    for customer, (line, day, country) in cat.customers.items():
        yield SourceRow(line, {
            "member_id": customer, "name": f"Customer {customer}", "joined_on": day,
            "channel": "web", "city": country, "status": "active",
        })


def _titles(cat: _Catalogue) -> Iterator[SourceRow]:
    for code, line in cat.first_line.items():
        names = cat.names.get(code)
        prices = cat.prices.get(code)
        yield SourceRow(line, {
            "title_id": code,
            "title": names.most_common(1)[0][0].title() if names else f"Item {code}",
            "language": "en",
            "price": f"{statistics.median(prices):.2f}" if prices else "",
            "in_stock": "true",
        })


def _purchases(path: Path, summary: ImportSummary) -> Iterator[SourceRow]:
    numbers: Counter[str] = Counter()  # lines so far per invoice (an invoice's lines may interleave)
    for row in _lines(path):
        v = row.values
        code = (v.get("StockCode") or "").strip()
        if _customer(v) is None:
            summary.skip(NO_CUSTOMER)
            continue
        if code in NOT_PRODUCTS:
            summary.skip(NOT_PRODUCT)
            continue
        inv = (v.get("InvoiceNo") or "").strip()
        numbers[inv] += 1
        yield SourceRow(row.line, {
            "line_id": f"{inv}-{numbers[inv]}",
            "order_id": inv,
            "member_id": _customer(v) or "",
            "title_id": code,
            "purchased_at": (v.get("InvoiceDate") or "").strip(),
            "quantity": (v.get("Quantity") or "").strip(),
            "unit_price": (v.get("UnitPrice") or "").strip(),
            "channel": "web",
        })


def import_online_retail(
    connection: Connection, path: Path, options: ImportOptions, *, progress: Progress | None = None
) -> list[ImportSummary]:
    """Members, titles, then purchases, in the caller's transaction: all land or none."""
    if not path.exists():
        raise BookclubError(f"{path}: no such file")
    cat = _survey(path)
    name = str(path)
    members = import_rows(connection, MEMBERS, RowSource(name, _members(cat), MEMBERS.columns), options)
    titles = import_rows(connection, TITLES, RowSource(name, _titles(cat), TITLES.columns), options)
    summary = ImportSummary(PURCHASES.name, name)
    purchases = import_rows(
        connection, PURCHASES, RowSource(name, _purchases(path, summary), PURCHASES.columns),
        options, progress=progress, summary=summary,
    )
    return [members, titles, purchases]
