"""The Hillstrom e-mail campaign as a club's campaign: members, history, arms, contacts, orders.

Kevin Hillstrom's MineThatData file (``../shared/data/hillstrom/``): 64,000 customers
of a catalog and web retailer, assigned at random to ``Mens E-Mail``, ``Womens
E-Mail`` and ``No E-Mail`` for a two-week campaign. It becomes:

- a **member** per row, ``HS00001`` … in file order (the file has no ids), with the
  file's channel (``Phone`` → phone, ``Web`` → web, ``Multichannel`` → none) and area
  (``zip_code``, spelled as in the file) as the city;
- **history**: one order line per member before the campaign, dated ``recency``
  months (of 30.44 days) before the in-home date, worth ``history`` (the past year's
  spend) of the men's, women's or both lines of merchandise the member bought — one
  line stands for a year of orders, as the file summarises them;
- the **campaign** ``hillstrom`` (in home :data:`IN_HOME`, a response window of 14
  days) with two e-mail editions, three arms keeping the file's names (``No E-Mail``
  is the holdout both e-mail arms are compared with; each arm's intended share is a
  third) and a contact per member: ``mailed`` in an e-mail arm, ``holdout`` in
  ``No E-Mail``;
- **orders**: one line per converting customer, worth their ``spend``, on a day of
  the two-week window (``row number mod 14`` days after the in-home date: the file
  does not say which day). ``visit`` has no counterpart and is not imported.

Everything lands in the caller's transaction; importing the file again adds nothing
(members, titles and lines are keyed by their ids, contacts by member and campaign).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from sqlalchemy import Connection

from recsys.errors import BookclubError
from recsys.settings import CampaignSettings
from recsys.storage import campaigns as campaigns_db
from recsys.storage import contacts as contacts_db
from recsys.storage import members as members_db
from recsys.storage.imports.loader import ImportOptions, Progress, import_rows
from recsys.storage.imports.report import ImportSummary
from recsys.storage.imports.source import RowSource, SourceRow, read_csv
from recsys.storage.imports.specs import MEMBERS, PURCHASES, TITLES

CAMPAIGN = "hillstrom"
IN_HOME = dt.date(2008, 3, 3)
"""The file gives no date; the challenge was published in March 2008."""
RESPONSE_DAYS = 14
COLUMNS = ("recency", "history_segment", "history", "mens", "womens", "zip_code", "newbie",
           "channel", "segment", "visit", "conversion", "spend")
HOLDOUT_ARM = "No E-Mail"
EMAIL_ARMS = {"Mens E-Mail": "HILLSTROM-M", "Womens E-Mail": "HILLSTROM-W"}
ARMS = (*EMAIL_ARMS, HOLDOUT_ARM)
_CHANNELS = {"Phone": "phone", "Web": "web", "Multichannel": ""}
_TITLES = {
    "HS-MENS": "Men's merchandise",
    "HS-WOMENS": "Women's merchandise",
    "HS-BOTH": "Men's and women's merchandise",
    "HS-ORDER": "Order in the campaign window",
}
_MONTH = 30.44


def member_id(row_number: int) -> str:
    return f"HS{row_number:05d}"


@dataclass(frozen=True)
class HillstromRow:
    number: int  # 1-based, file order
    line: int
    values: dict[str, str]


def _rows(path: Path) -> Iterator[HillstromRow]:
    source = read_csv(path)
    missing = [c for c in COLUMNS if c not in source.header]
    if missing:
        source.close()
        raise BookclubError(f"{path}:1: not the Hillstrom file: no column(s) {', '.join(missing)}")
    for number, row in enumerate(source.rows(), start=1):
        values = row.values
        if values.get("segment") not in ARMS:
            raise BookclubError(
                f"{path}:{row.line}: segment: {values.get('segment')!r} is not one of {', '.join(ARMS)}"
            )
        if len(values) < len(source.header) or "__extra__" in values:
            raise BookclubError(
                f"{path}:{row.line}: (row): {len(values)} fields, the header has {len(source.header)}"
            )
        yield HillstromRow(number, row.line, values)


def _members(path: Path) -> Iterator[SourceRow]:
    for row in _rows(path):
        v = row.values
        joined = (IN_HOME - dt.timedelta(days=182)).isoformat() if v["newbie"].strip() == "1" else ""
        yield SourceRow(row.line, {
            "member_id": member_id(row.number),
            "name": f"Hillstrom customer {row.number}",
            "joined_on": joined,
            "channel": _CHANNELS.get(v["channel"].strip(), ""),
            "city": v["zip_code"].strip(),
            "status": "active",
        })


def _titles() -> Iterator[SourceRow]:
    for number, (title_id, title) in enumerate(_TITLES.items(), start=2):
        yield SourceRow(number, {"title_id": title_id, "title": title, "language": "en", "in_stock": "true"})


def _history_title(values: dict[str, str]) -> str:
    mens, womens = values["mens"].strip() == "1", values["womens"].strip() == "1"
    if mens and not womens:
        return "HS-MENS"
    if womens and not mens:
        return "HS-WOMENS"
    return "HS-BOTH"


def _history(path: Path) -> Iterator[SourceRow]:
    """A line per member for the year before the campaign (module docstring)."""
    for row in _rows(path):
        v = row.values
        mid = member_id(row.number)
        channel = _CHANNELS.get(v["channel"].strip(), "") or "web"
        raw = v["recency"].strip()
        months = int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 3 else -1
        if not 0 <= months <= 600:  # the file has 1..12; past 50 years it is not a recency
            raise BookclubError(f"{path}:{row.line}: recency: {raw!r} is not a number of months (0–600)")
        last = dt.datetime.combine(IN_HOME, dt.time(12)) - dt.timedelta(days=round(months * _MONTH))
        yield SourceRow(row.line, {
            "line_id": f"{mid}-H", "order_id": f"{mid}-H", "member_id": mid,
            "title_id": _history_title(v), "purchased_at": last.isoformat(" "),
            "quantity": "1", "unit_price": v["history"].strip(), "channel": channel,
        })


def _orders(path: Path, summary: ImportSummary) -> Iterator[SourceRow]:
    """A line per converting customer, in the window; the others are counted as skipped."""
    for row in _rows(path):
        v = row.values
        if v["conversion"].strip() != "1":
            summary.skip("did not convert in the two weeks (no order)")
            continue
        mid = member_id(row.number)
        day = dt.datetime.combine(IN_HOME + dt.timedelta(days=row.number % RESPONSE_DAYS), dt.time(15))
        yield SourceRow(row.line, {
            "line_id": f"{mid}-C", "order_id": f"{mid}-C", "member_id": mid,
            "title_id": "HS-ORDER", "purchased_at": day.isoformat(" "),
            "quantity": "1", "unit_price": v["spend"].strip(), "channel": "web",
        })


@dataclass(frozen=True)
class HillstromResult:
    summaries: list[ImportSummary]
    campaign_id: int
    contacts_written: int
    arms: dict[str, int]  # arm name → members


def _campaign(connection: Connection, settings: CampaignSettings) -> tuple[int, dict[str, tuple[int, int | None]]]:
    """The campaign, its editions and treatments: (campaign id, arm → (treatment id, edition id))."""
    campaign = campaigns_db.campaign_by_name(connection, CAMPAIGN)
    if campaign is None:
        campaign = campaigns_db.create_campaign(
            connection, name=CAMPAIGN, quarter=None, in_home_date=IN_HOME, response_days=RESPONSE_DAYS,
            late_days=0, holdout_share=1 / 3, universal_holdout_share=0.0, seed=0,
            description="Kevin Hillstrom's MineThatData e-mail test (2008): arms assigned at random by the file",
        )
    costs = settings.costs("email")
    control = campaigns_db.add_treatment(
        connection, campaign.id, name=HOLDOUT_ARM, edition_id=None, key_code=None, share=1 / 3
    )
    arms: dict[str, tuple[int, int | None]] = {HOLDOUT_ARM: (control.id, None)}
    for name, code in EMAIL_ARMS.items():
        edition = campaigns_db.add_edition(
            connection, campaign.id, code=name.split()[0].lower() + "-email", name=name, kind="email",
            segment=None, in_home_date=IN_HOME, costs=(costs.print, costs.paper, costs.postage, costs.other),
        )
        treatment = campaigns_db.add_treatment(
            connection, campaign.id, name=name, edition_id=edition.id, key_code=code,
            control_id=control.id, share=1 / 3,
        )
        arms[name] = (treatment.id, edition.id)
    return campaign.id, arms


def import_hillstrom(
    connection: Connection,
    path: Path,
    options: ImportOptions,
    settings: CampaignSettings,
    *,
    progress: Progress | None = None,
) -> HillstromResult:
    """Members, titles, history and campaign orders, then the campaign and its contacts."""
    if not path.exists():
        raise BookclubError(f"{path}: no such file")
    name = str(path)
    members = import_rows(connection, MEMBERS, RowSource(name, _members(path), MEMBERS.columns), options)
    titles = import_rows(connection, TITLES, RowSource("hillstrom titles", _titles(), TITLES.columns), options)
    history = import_rows(
        connection, PURCHASES, RowSource(name, _history(path), PURCHASES.columns), options,
        summary=ImportSummary("purchases (history)", name),
    )
    summary = ImportSummary("purchases (campaign)", name)
    orders = import_rows(
        connection, PURCHASES, RowSource(name, _orders(path, summary), PURCHASES.columns), options,
        progress=progress, summary=summary,
    )
    campaign_id, arms = _campaign(connection, settings)
    keys = members_db.member_keys(connection, [member_id(r.number) for r in _rows(path)])
    done = set(contacts_db.contacted_member_keys(connection, campaign_id).tolist())
    cost = Decimal(str(settings.costs("email").total))
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    counts: dict[str, int] = dict.fromkeys(ARMS, 0)
    rows = []
    for row in _rows(path):
        arm_name = row.values["segment"]
        counts[arm_name] += 1
        key = keys.get(member_id(row.number))
        if key is None or key in done:  # a member rejected by the import has no contact
            continue
        treatment_id, edition_id = arms[arm_name]
        held = arm_name == HOLDOUT_ARM
        rows.append((
            campaign_id, key, treatment_id, edition_id, "holdout" if held else "mailed",
            "assigned at random by the file", None, None, None, IN_HOME,
            Decimal("0") if held else cost, None, None, None, now,
        ))
    written = contacts_db.write_contacts(connection, rows)
    return HillstromResult([members, titles, history, orders], campaign_id, written, counts)
