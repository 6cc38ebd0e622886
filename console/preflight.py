"""Preflight of a segment's mailing before print: members the mail house cannot deliver or
whose envelope window would cut their name or address, duplicate households, members whose
edition has fewer picks than the layout needs, and rendered editions over their page budget.

Read through :func:`recsys.storage.console_reads.mailing_rows` (keyset batches, so a segment
of a million members is never held at once) and computed off the request path
(``console.cache``). The picks are :func:`catalog.member_edition.member_picks` — what the
edition prints — for every member, in batches; the pages are counted in the PDFs on disk
(:func:`console.pdfpages.page_count`, each file once while it is unchanged), beyond the
segment catalog's own pages.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection

from console.pdfpages import page_count
from recsys.storage import console_reads

NAME_WINDOW = 16  # characters the envelope window holds on the name line
ADDRESS_WINDOW = 40  # and on the address line
EXAMPLES = 5
PICKS_BATCH = 1000
ADDRESS_FLAGS = ("missing_address", "missing_postcode", "name_too_long", "address_too_long", "duplicate_household")
FLAGS = (*ADDRESS_FLAGS, "few_picks", "over_page_budget")


@dataclass
class Preflight:
    members: int = 0
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FLAGS, 0))
    examples: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    flagged: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))  # every member, per flag
    picks_needed: int | None = None  # None: picks not checked (no model served)
    editions: int = 0  # rendered editions whose pages were counted
    page_budget: int | None = None  # pages allowed beyond the segment catalog

    def flag(self, name: str, member_id: str) -> None:
        self.counts[name] += 1
        self.flagged[name].append(member_id)
        if len(self.examples[name]) < EXAMPLES:
            self.examples[name].append(member_id)


@dataclass(frozen=True)
class PicksCheck:
    """Members whose edition would hold fewer than ``needed`` picks from ``plan``."""

    model: Any
    plan: Any  # catalog.plan.CatalogPlan
    titles: Mapping[str, Any]
    needed: int


@dataclass(frozen=True)
class PagesCheck:
    """Rendered editions with more than ``budget`` pages beyond the segment's ``body_pages``."""

    edition_of: Any  # member_id → the edition's path
    body_pages: int
    budget: int


def _household(address: str, postcode: str) -> str:
    return "".join(address.split()).lower() + "|" + postcode.strip()


_pages_cache: dict[tuple[str, int, int], int] = {}
_pages_lock = threading.Lock()


def edition_pages(path: Path) -> int | None:
    """Pages of the PDF at ``path`` (None when there is none), counted once per size and mtime."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    with _pages_lock:
        found = _pages_cache.get(key)
    if found is None:
        found = page_count(path)
        with _pages_lock:
            _pages_cache[key] = found
    return found


def _batches(rows: Iterator[Any], size: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def preflight(
    connection: Connection, *, quarter: str, segment: int, picks: PicksCheck | None = None,
    pages: PagesCheck | None = None,
) -> Preflight:  # fmt: skip
    from catalog.member_edition import member_picks

    out = Preflight(picks_needed=picks.needed if picks else None, page_budget=pages.budget if pages else None)
    first_at: dict[str, str] = {}
    for batch in _batches(console_reads.mailing_rows(connection, quarter, segment), PICKS_BATCH):
        for row in batch:
            _address_checks(out, row, first_at)
        if picks is not None:
            ids: Sequence[str] = [row.member_id for row in batch]
            found = member_picks(connection, picks.model, picks.plan, picks.titles, ids, picks.needed)
            for member_id in ids:
                if len(found.get(member_id, ())) < picks.needed:
                    out.flag("few_picks", member_id)
        if pages is not None:
            for row in batch:
                n = edition_pages(pages.edition_of(row.member_id))
                if n is None:
                    continue
                out.editions += 1
                if n - pages.body_pages > pages.budget:
                    out.flag("over_page_budget", row.member_id)
    return out


def _address_checks(out: Preflight, row: Any, first_at: dict[str, str]) -> None:
    out.members += 1
    address, postcode = (row.address or "").strip(), (row.postcode or "").strip()
    if not address:
        out.flag("missing_address", row.member_id)
    if not postcode:
        out.flag("missing_postcode", row.member_id)
    if len(row.name or "") > NAME_WINDOW:
        out.flag("name_too_long", row.member_id)
    if len(address) > ADDRESS_WINDOW:
        out.flag("address_too_long", row.member_id)
    if address and postcode:
        household = _household(address, postcode)
        if household in first_at:
            out.flag("duplicate_household", row.member_id)
        else:
            first_at[household] = row.member_id
