"""POST /v1/purchases: a batch of order lines, checked like a purchases CSV, all or nothing.

Each line goes through the file importer's own row parser
(``recsys.storage.imports.specs.PURCHASES.parse``: the same fields, defaults and
messages), then the importer's reference checks (member and title known, a
line id once per batch). Any bad line rejects the whole batch with every fault
listed (index, field, reason). Line ids already stored are counted
``already_present`` and not written again, so a client may safely resend.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import Connection

from api.errors import InvalidInputError
from api.schemas import PurchaseBatchPublic, PurchaseLineCreate
from recsys.storage import campaigns as campaigns_db
from recsys.storage import members as members_db
from recsys.storage import purchases as purchases_db
from recsys.storage import titles as titles_db
from recsys.storage.imports.fields import Limits
from recsys.storage.imports.specs import PURCHASES, RowInvalid
from recsys.text import has_unstorable

_COLUMNS = (
    "line_id",
    "order_id",
    "member_id",
    "title_id",
    "purchased_at",
    "quantity",
    "unit_price",
    "channel",
    "key_code",
)  # the order of PURCHASES.parse's tuple


def _error(index: int, field: str, reason: str) -> dict[str, Any]:
    return {"location": "body", "field": field, "index": index, "reason": reason}


def _values(line: PurchaseLineCreate) -> dict[str, str]:
    return {k: "" if v is None else str(v) for k, v in line.model_dump().items()}


def _parse(
    lines: list[PurchaseLineCreate], limits: Limits
) -> tuple[list[dict[str, Any] | None], list[dict[str, Any]]]:
    rows: list[dict[str, Any] | None] = []
    errors: list[dict[str, Any]] = []
    first_index: dict[str, int] = {}
    for index, line in enumerate(lines):
        try:
            row: dict[str, Any] | None = dict(zip(_COLUMNS, PURCHASES.parse(_values(line), limits), strict=True))
        except RowInvalid as exc:
            errors.extend(_error(index, e.field, e.reason) for e in exc.errors)
            row = None
        if row is not None:
            line_id = row["line_id"]
            if line_id in first_index:
                errors.append(
                    _error(
                        index,
                        "line_id",
                        f"duplicate line_id '{line_id}' (first at index {first_index[line_id]})",
                    )
                )
            else:
                first_index[line_id] = index
        rows.append(row)
    return rows, errors


def _lookup_id(value: str) -> str:
    value = value.strip()
    return "" if has_unstorable(value) else value


def store_batch(
    connection: Connection, lines: list[PurchaseLineCreate], max_lines: int, limits: Limits | None = None
) -> PurchaseBatchPublic:
    """Validate every line, then insert the new ones in one transaction (committed here).

    ``limits`` bounds ``purchased_at`` (default: ``ImportSettings``' bounds around now)."""
    if len(lines) > max_lines:
        raise InvalidInputError(
            f"{len(lines)} lines in one batch; send at most {max_lines} per request",
            [_error(max_lines, "lines", f"more than {max_lines} lines")],
        )
    rows, errors = _parse(lines, limits or Limits.of())
    good = [r for r in rows if r is not None]
    # references are checked on every line, parsed or not, so one answer lists every fault;
    # an id no database can hold (a NUL) is already a fault of its line and is not looked up
    member_ids = [_lookup_id(line.member_id) for line in lines]
    title_ids = [_lookup_id(line.title_id) for line in lines]
    members = members_db.member_keys(connection, [m for m in member_ids if m])
    titles = titles_db.title_keys(connection, [t for t in title_ids if t])
    codes = {r["key_code"] for r in good if r["key_code"]}
    known_codes = campaigns_db.known_key_codes(connection, codes) if codes else set()
    for index, r in enumerate(rows):
        if r is not None and r["key_code"] and r["key_code"] not in known_codes:
            errors.append(_error(index, "key_code", f"unknown key code '{r['key_code']}' (on no campaign's order form)"))
    for index, (member_id, title_id) in enumerate(zip(member_ids, title_ids, strict=True)):
        if member_id and member_id not in members:
            errors.append(
                _error(index, "member_id", f"unknown member '{member_id}' (import the member first)")
            )
        if title_id and title_id not in titles:
            errors.append(_error(index, "title_id", f"unknown title '{title_id}' (import the title first)"))
    if errors:
        bad = len({e["index"] for e in errors})
        raise InvalidInputError(
            f"{bad} of {len(lines)} line(s) are invalid; nothing was written: fix them and resend",
            sorted(errors, key=lambda e: (e["index"], e["field"])),
        )
    present = purchases_db.existing_line_ids(connection, [r["line_id"] for r in good])
    new_rows = []
    for r in good:
        if r["line_id"] in present:
            continue
        title_key, list_price = titles[r["title_id"]]
        given = r["unit_price"]  # the parser's fast path leaves it as checked text
        price = Decimal(str(given)) if given is not None else (list_price or Decimal("0"))
        new_rows.append(
            {
                "line_id": r["line_id"],
                "order_id": r["order_id"],
                "member_key": members[r["member_id"]],
                "title_key": title_key,
                "quantity": r["quantity"],
                "unit_price": price,
                "purchased_at": r["purchased_at"],
                "channel": r["channel"],
                "key_code": r["key_code"],
            }
        )
    inserted = purchases_db.insert_purchase_rows(connection, new_rows)
    connection.commit()
    present = {r["line_id"] for r in good} - inserted  # incl. lines a concurrent call stored
    return PurchaseBatchPublic(
        received=len(lines),
        inserted=len(inserted),
        already_present=len(lines) - len(inserted),
        already_present_line_ids=sorted(present),
    )
