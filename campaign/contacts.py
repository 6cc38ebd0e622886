"""A quarter's campaign and its contacts, written before anything is rendered.

The campaign of a quarter is named after it (``2026Q4``). It has one edition per
segment and edition kind (``catalog``: the segment's catalog, personalised per member;
``postcard`` and ``email`` when the mailing decision sends them), one treatment per
edition with the **key code** printed on the order form and in the QR code
(``2026Q4-S1-C``, ``2026Q4-S1-P``), and one contact row per segmented member.

Who gets what — each member's arm and reason — is decided first, as pure data
(:mod:`campaign.contact_plan`), one of two ways:

- **planned by expected profit** (``settings.mailing.plan_by_profit``, given the whole
  :class:`Settings`, when an earlier campaign's random holdout says what a piece does):
  :func:`campaign.mailing_plan.plan_mailing` decides, and every contact is written with its
  ``expected_profit`` (the planned edition's expected incremental margin less its cost; for a
  member not mailed, the best edition the rules allowed) and the member's value at the
  quarter's start (P(alive), expected purchases and value over ``mailing.value_horizon_days``);
- **everyone eligible** otherwise (the first campaign: nothing to learn from, which the
  result says; or the setting is off; or only :class:`CampaignSettings` were given): the
  suppression list and contact rules for the edition's kind on the in-home date, then the
  random holdout, then everyone else mailed.

A mailed catalog carries the planned in-home date, the cost per piece, the model version
and plan that produced the edition, and the print file the member's piece is in — their own
member edition, or the segment catalog when the quarter personalises only some members
(``personal``).

Everything is written in the caller's one transaction, in bulk. Re-running writes
contacts only for members who have none in the campaign yet (members segmented
since); the arms of the others, and everything else written, stay as they were.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import Connection

from campaign.contact_plan import ContactPlan, plan_contacts, plan_contacts_from_mailing
from campaign.edition_scores import ModelSource
from campaign.holdouts import campaign_seed
from campaign.rules import MailOption, eligibility
from campaign.suppression import rule_inputs, rules_from_settings
from recsys.errors import BookclubError
from recsys.settings import CampaignSettings, MailingSettings, Settings
from recsys.storage import campaigns as campaigns_db
from recsys.storage import contacts as contacts_db
from recsys.storage import members as members_db
from recsys.storage import plans as plans_db
from recsys.storage import segments as segments_db
from recsys.storage.campaigns import CampaignRecord, EditionRecord, TreatmentRecord
from recsys.storage.contacts import Audience

if TYPE_CHECKING:
    from campaign.mailing_plan import MailingPlan

__all__ = [
    "ContactsResult",
    "PrintFiles",
    "default_in_home",
    "key_code",
    "open_quarter_campaign",
    "record_web_edition",
    "write_quarter_contacts",
]


@dataclass(frozen=True)
class PrintFiles:
    """Where the print files of a quarter are, relative to the catalogs folder: the caller
    (the catalog side) says, so that campaign and renderer name the same files."""

    member: Callable[[str], str]  # member id → their member edition
    segment: Callable[[int], str]  # segment → the segment catalog


def key_code(campaign: str, segment: int, kind: str) -> str:
    """``2026Q4-S1-C``: campaign, segment, kind initial; short enough to write on a form."""
    return f"{campaign}-S{segment}-{kind[:1].upper()}"


def default_in_home(quarter_start: dt.date, today: dt.date, settings: CampaignSettings) -> dt.date:
    """The quarter's first day, or ``in_home_days`` from today when the quarter has begun."""
    return max(quarter_start, today + dt.timedelta(days=settings.in_home_days))


def open_quarter_campaign(
    connection: Connection,
    settings: CampaignSettings,
    quarter: str,
    quarter_start: dt.date,
    *,
    in_home: dt.date | None = None,
    files: PrintFiles | None = None,
    kind: str = "catalog",
    name: str | None = None,
    segment_names: Mapping[int, str] | None = None,
) -> tuple[CampaignRecord, dict[int, tuple[EditionRecord, TreatmentRecord]]]:
    """The quarter's campaign (named after the quarter unless ``name`` says otherwise: a second
    mailing in the quarter), one edition and treatment per segment: the stored ones, or new.

    Needs the quarter's segments (``segment_names``: segment → name, read from the database
    when not given) and catalog plans (their model version and plan are the editions' lineage).
    """
    segments: list[dict[str, Any]] = (
        [{"segment": s, "name": n} for s, n in sorted(segment_names.items())]
        if segment_names is not None
        else segments_db.segments_of_quarter(connection, quarter)
    )
    if not segments:
        raise BookclubError(f"no segments for {quarter}: run `bookclub segment --quarter {quarter}` first")
    lineage = plans_db.plan_lineage(connection, quarter)
    if missing := [s["segment"] for s in segments if s["segment"] not in lineage]:
        raise BookclubError(
            f"no catalog plan for segment {missing[0]} of {quarter}: run `bookclub catalogs plan --quarter {quarter}`"
        )
    name = name or quarter
    campaign = campaigns_db.campaign_by_name(connection, name)
    if campaign is None:
        day = in_home or default_in_home(quarter_start, dt.date.today(), settings)
        campaign = campaigns_db.create_campaign(
            connection, name=name, quarter=quarter, in_home_date=day,
            response_days=settings.response_days, late_days=settings.late_days,
            holdout_share=settings.holdout_share, universal_holdout_share=settings.universal_holdout_share,
            seed=campaign_seed(name), description=f"the {quarter} catalogs",
        )
    costs = settings.costs(kind)
    arms: dict[int, tuple[EditionRecord, TreatmentRecord]] = {}
    for row in segments:
        segment = int(row["segment"])
        plan_id, model_version, plan_hash = lineage[segment]
        edition = campaigns_db.add_edition(
            connection, campaign.id, code=f"S{segment}-{kind}", name=f"{row['name']} · {kind}",
            kind=kind, segment=segment, in_home_date=campaign.in_home_date,
            costs=(costs.print, costs.paper, costs.postage, costs.other),
            model_version=model_version, plan_id=plan_id, plan_hash=plan_hash,
            file=files.segment(segment) if files else None,
        )
        treatment = campaigns_db.add_treatment(
            connection, campaign.id, name=f"S{segment} {row['name']}"[:128], edition_id=edition.id,
            key_code=key_code(name, segment, kind),
        )
        arms[segment] = (edition, treatment)
    return campaign, arms


@dataclass(frozen=True)
class ContactsResult:
    campaign: CampaignRecord
    written: int  # contact rows written by this call
    counts: dict[str, int]  # arm → contacts stored for the campaign, after this call
    suppressed: dict[str, int]  # reason → suppressed contacts stored
    plan: ContactPlan
    mailing: MailingPlan | None = None  # the decision by expected profit the contacts were written from
    fallback: str | None = None  # why not (everyone eligible was mailed), when contacts were written without one

    @property
    def planned_by_profit(self) -> bool:
        return self.mailing is not None

    def savings(self) -> dict[str, dict[str, float]] | None:
        """The plan against a catalog to every eligible member (less the holdout): pieces, cost,
        expected incremental margin and profit, both ways. None without a plan (or without catalogs)."""
        if self.mailing is None or not self.mailing.everyone:
            return None
        return {"planned": dict(self.mailing.planned), "everyone": dict(self.mailing.everyone)}

    def summary(self) -> list[str]:
        """How the contacts were decided, and against mailing everyone (one line each)."""
        if self.mailing is None:
            return [f"mailing: everyone eligible — {self.fallback}"] if self.fallback else []
        plan = self.mailing
        d = plan.decision
        mailed = {k: int(np.count_nonzero(d.mailed & (d.choice == j))) for j, k in enumerate(plan.options)}
        lines = [
            f"mailing planned by expected incremental profit ({d.solver}, {d.status}): "
            + ", ".join(f"{k} {n:,}" for k, n in mailed.items())
            + f"; learned from {', '.join(f'{c} ({n:,} contacts)' for c, n in plan.learned_from.items())}"
        ]
        lines.extend(f"  {kind} not offered: {why}" for kind, why in plan.not_offered.items())
        saved = self.savings()
        if saved is not None:
            p, e = saved["planned"], saved["everyone"]
            for label, row in (("planned", p), ("everyone", e)):
                lines.append(
                    f"  {label + ':':<10} {row['pieces']:>9,.0f} pieces, cost {row['cost']:>12,.2f}, expected "
                    f"incremental margin {row['margin']:>12,.2f}, profit {row['profit']:>12,.2f}"
                )
            lines.append(
                f"  saved against mailing everyone: {e['pieces'] - p['pieces']:,.0f} pieces, "
                f"{e['cost'] - p['cost']:,.2f} in cost; profit {p['profit'] - e['profit']:+,.2f}, "
                f"incremental margin {p['margin'] - e['margin']:+,.2f}"
            )
        return lines


def mail_everyone_plan(
    connection: Connection,
    settings: Settings | CampaignSettings,
    audience: Audience,
    seed: int,
    day: dt.date,
    *,
    kind: str = "catalog",
    personal: int | None = None,
    campaign_id: int | None = None,
    check_rules: bool = True,
) -> ContactPlan:
    """Every eligible member mailed ``kind`` on ``day`` less the random holdout, the suppression
    list and the contact rules (``not_mailed`` with the rule): what ``bookclub campaigns contacts``
    writes when the decision by profit is off or not possible, and what ``bookclub campaigns plan``
    previews before anything is written (``campaign_id``: the campaign's own pieces do not count
    against its rules)."""
    full = settings if isinstance(settings, Settings) else None
    campaign_settings = full.campaign if full is not None else settings
    assert isinstance(campaign_settings, CampaignSettings)
    rules = full.mailing if full is not None else MailingSettings()
    blocked = _rule_blocks(connection, audience, rules, kind, day, campaign_id) if check_rules and len(audience) else None
    return plan_contacts(audience, campaign_settings, seed, kind=kind, personal=personal, blocked=blocked)


def _rule_blocks(
    connection: Connection, audience: Audience, rules: MailingSettings, kind: str, day: dt.date,
    campaign_id: int | None,
) -> list[str | None]:
    """Per member: the suppression entry or contact rule that keeps them from a ``kind`` piece on ``day``."""
    contact_rules = rules_from_settings(rules)
    history, suppressions = rule_inputs(connection, audience.member_key, day, contact_rules, exclude_campaign=campaign_id)
    if not len(history) and not len(suppressions) and not contact_rules.quiet:
        return [None] * len(audience)
    allowed = eligibility(len(audience), [MailOption(kind)], day, contact_rules, history, suppressions)
    return allowed.member_reason()


def write_quarter_contacts(
    connection: Connection,
    settings: Settings | CampaignSettings,
    quarter: str,
    quarter_start: dt.date,
    *,
    files: PrintFiles,
    in_home: dt.date | None = None,
    personal: int | None = None,
    kind: str = "catalog",
    name: str | None = None,
    segment_names: Mapping[int, str] | None = None,
    budget: float | None = None,
    max_pieces: int | None = None,
    models: ModelSource | None = None,
) -> ContactsResult:
    """Open the quarter's campaign and write a contact for every segmented member without one
    (module docstring), in the caller's transaction. Given the whole :class:`Settings`, with
    ``mailing.plan_by_profit`` on, the quarter's own campaign (``name`` the quarter's) is planned
    by expected profit (``budget``, ``max_pieces``: as ``bookclub campaigns plan``) when an earlier
    campaign's holdout allows it; otherwise every eligible member is mailed ``kind``, and
    :attr:`ContactsResult.fallback` says why."""
    full = settings if isinstance(settings, Settings) else None
    campaign_settings = full.campaign if full is not None else settings
    assert isinstance(campaign_settings, CampaignSettings)
    # decided before anything is written (on SQLite the write lock is then held for the writes only)
    existing = campaigns_db.campaign_by_name(connection, name or quarter)
    day = existing.in_home_date if existing else in_home or default_in_home(quarter_start, dt.date.today(), campaign_settings)
    audience = contacts_db.quarter_audience(connection, quarter)
    done = contacts_db.contacted_member_keys(connection, existing.id) if existing else np.zeros(0, dtype=np.int64)
    todo = ~np.isin(audience.member_key, done)
    mailing: MailingPlan | None = None
    fallback: str | None = None
    if full is None:
        fallback = "planned without the mailing settings"
    elif not full.mailing.plan_by_profit:
        fallback = "mailing.plan_by_profit is off"
    elif name not in (None, quarter):
        fallback = f"{name} is a further mailing of {quarter}: only the quarter's own campaign is planned by profit"
    elif todo.any():
        from campaign.mailing_plan import NothingToLearnError, plan_mailing

        try:
            mailing = plan_mailing(
                connection, full, quarter, quarter_start, budget=budget, max_pieces=max_pieces, in_home=day,
                models=models,
            )  # fmt: skip
        except NothingToLearnError as exc:
            fallback = f"nothing to learn what a piece does from yet ({exc})"
    campaign, arms = open_quarter_campaign(
        connection, campaign_settings, quarter, quarter_start, in_home=day, files=files, kind=kind, name=name,
        segment_names=segment_names,
    )
    by_kind = {kind: arms}
    if mailing is not None:
        plan, choice, expected_profit = plan_contacts_from_mailing(mailing, audience, campaign.seed, personal)
        for option in {mailing.options[j] for j in np.unique(choice[choice >= 0]).tolist()} - {kind}:
            by_kind[option] = open_quarter_campaign(
                connection, campaign_settings, quarter, quarter_start, in_home=in_home, files=None, kind=option,
                name=name, segment_names=segment_names,
            )[1]  # fmt: skip
        value = mailing.member_value()
    else:
        plan = mail_everyone_plan(
            connection, settings, audience, campaign.seed, campaign.in_home_date, kind=kind, personal=personal,
            campaign_id=campaign.id, check_rules=bool(todo.any()),  # nothing left to write: no rules to read
        )
        choice = np.where(np.isin(np.asarray(plan.arm), ("mailed", "holdout")), 0, -1)
        expected_profit = None
        value = None
    options = mailing.options if mailing is not None else (kind,)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)

    def rows() -> Iterator[tuple[Any, ...]]:
        zero = Decimal("0")
        # per option index (−1: the base kind, for contacts with no piece planned) and segment
        base = {s: (e, t, e.cost_per_piece) for s, (e, t) in by_kind[kind].items()}
        by_option = [{s: (e, t, e.cost_per_piece) for s, (e, t) in by_kind[o].items()} for o in options]
        probability = plan.assignment.probability.tolist()
        keys = audience.member_key.tolist()
        segments = audience.segment.tolist()
        personal_mask = plan.personal.tolist()
        chosen = choice.tolist()
        profit = None if expected_profit is None else expected_profit.tolist()
        values = None if value is None else [v.tolist() for v in value]
        is_catalog = [o == "catalog" for o in options]
        for i in np.flatnonzero(todo).tolist():
            segment = segments[i]
            j = chosen[i]
            edition, treatment, cost = by_option[j][segment] if j >= 0 else base[segment]
            arm = plan.arm[i]
            file = None
            if arm == "mailed" and is_catalog[j]:
                file = files.member(audience.member_id[i]) if personal_mask[i] else files.segment(segment)
            row = (
                campaign.id, keys[i], treatment.id, edition.id, arm, plan.reason[i], segment, audience.tier[i],
                None if arm == "suppressed" else probability[i], edition.in_home_date,
                cost if arm == "mailed" else zero, edition.model_version, edition.plan_id, file, now,
            )
            if profit is None:
                yield row
            elif values is None:
                yield (*row, profit[i], None, None, None)
            else:
                yield (*row, profit[i], values[0][i], values[1][i], values[2][i])

    columns = contacts_db.CONTACT_COLUMNS if mailing is None else contacts_db.PLANNED_CONTACT_COLUMNS
    written = contacts_db.write_contacts(connection, rows(), columns)
    return ContactsResult(
        campaign=campaign,
        written=written,
        counts=contacts_db.contact_counts(connection, campaign.id),
        suppressed=contacts_db.suppression_reasons(connection, campaign.id),
        plan=plan,
        mailing=mailing,
        fallback=fallback,
    )


def record_web_edition(connection: Connection, quarter: str, member_id: str, file: str | None) -> bool:
    """The on-demand web edition of ``member_id`` as a ``web`` contact of the quarter's campaign
    (once per member; the treatment of their mailed contact, else of their segment's edition).
    False when the quarter has no campaign or the member is unknown to it."""
    campaign = campaigns_db.campaign_by_name(connection, quarter)
    if campaign is None:
        return False
    keys = members_db.member_keys(connection, [member_id])
    if member_id not in keys:
        return False
    contacts = contacts_db.member_contacts(connection, campaign.id, [member_id]).get(member_id, [])
    segment = next((c.segment for c in contacts if c.segment is not None), None)
    if segment is None:
        found = segments_db.member_segment(connection, quarter, member_id)
        segment = None if found is None else found[1]
    by_segment = contacts_db.segment_treatments(connection, campaign.id)
    if segment is None or segment not in by_segment:
        return False
    treatment_id, edition_id, _code = by_segment[segment]
    edition = next(e for e in campaigns_db.editions(connection, campaign.id) if e.id == edition_id)
    return contacts_db.record_web_contact(
        connection, campaign.id, keys[member_id], treatment_id=treatment_id, edition_id=edition_id,
        segment=segment, tier=None, model_version=edition.model_version, plan_id=edition.plan_id,
        file=file, on=dt.date.today(),
    )
