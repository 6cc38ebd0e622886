"""A quarter's campaign and its contacts, written before anything is rendered.

The campaign of a quarter is named after it (``2026Q4``). It has one edition per
segment (kind ``catalog``: the segment's catalog, personalised per member), one
treatment per edition with the **key code** printed on the order form and in the QR
code (``2026Q4-S1-C``), and one contact row per segmented member:

- ``suppressed`` (with the reason) when the member is closed, has no postal address,
  or is in a value tier the settings do not mail; suppression comes first and is
  not randomised;
- ``holdout`` when the seeded hash puts the member in the random holdout of their
  segment × tier (:mod:`campaign.holdouts`; ``reason`` says ``universal`` or
  ``random``): nothing is rendered or sent;
- ``mailed`` otherwise, with the planned in-home date, the cost per piece, the model
  version and plan that produced the edition, and the print file the member's piece
  is in — their own member edition, or the segment catalog when the quarter
  personalises only some members (``personal``).

Everything is written in the caller's one transaction, in bulk. Re-running writes
contacts only for members who have none in the campaign yet (members segmented
since); the arms of the others, and everything else written, stay as they were.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection

from campaign.holdouts import Assignment, HoldoutRule, assign_holdouts, campaign_seed
from recsys.errors import BookclubError
from recsys.settings import CampaignSettings
from recsys.storage import campaigns as campaigns_db
from recsys.storage import plans as plans_db
from recsys.storage import segments as segments_db
from recsys.storage.campaigns import Audience, CampaignRecord, EditionRecord, TreatmentRecord

__all__ = [
    "ContactPlan",
    "ContactsResult",
    "PrintFiles",
    "holdout_rule",
    "key_code",
    "open_quarter_campaign",
    "plan_contacts",
    "record_web_edition",
    "write_quarter_contacts",
]

PRINT_KINDS = frozenset({"catalog", "postcard"})


@dataclass(frozen=True)
class PrintFiles:
    """Where the print files of a quarter are, relative to the catalogs folder: the caller
    (the catalog side) says, so that campaign and renderer name the same files."""

    member: Callable[[str], str]  # member id → their member edition
    segment: Callable[[int], str]  # segment → the segment catalog


def holdout_rule(settings: CampaignSettings) -> HoldoutRule:
    return HoldoutRule(
        share=settings.holdout_share,
        overrides=dict(settings.holdout_shares),
        universal_share=settings.universal_holdout_share,
        universal_seed=settings.universal_holdout_seed,
    )


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


@dataclass(frozen=True, eq=False)
class ContactPlan:
    """Who gets what, one entry per member of the audience (pure data, nothing written)."""

    audience: Audience
    arm: list[str]  # mailed / holdout / suppressed
    reason: list[str | None]
    assignment: Assignment
    personal: npt.NDArray[np.bool_]  # mailed with their own member edition

    def counts(self) -> dict[tuple[int, str], int]:
        """(segment, arm) → members."""
        return dict(Counter(zip((int(s) for s in self.audience.segment), self.arm, strict=True)))

    def suppressed_reasons(self) -> dict[str, int]:
        return dict(Counter(r for a, r in zip(self.arm, self.reason, strict=True) if a == "suppressed" and r))


def _personal_mask(audience: Audience, mailed: npt.NDArray[np.bool_], personal: int | None) -> npt.NDArray[np.bool_]:
    """All mailed members, or the ``personal`` best spenders among them, one segment after another."""
    if personal is None:
        return mailed.copy()
    chosen = np.zeros(len(audience), dtype=np.bool_)
    if personal <= 0:
        return chosen
    order = np.lexsort((audience.member_key, -audience.monetary))  # best spend first
    rank_in_segment: Counter[int] = Counter()
    ranked: list[tuple[int, int, int]] = []
    for i in order:
        if mailed[i]:
            segment = int(audience.segment[i])
            ranked.append((rank_in_segment[segment], segment, int(i)))
            rank_in_segment[segment] += 1
    for _rank, _segment, i in sorted(ranked)[:personal]:
        chosen[i] = True
    return chosen


def plan_contacts(
    audience: Audience,
    settings: CampaignSettings,
    seed: int,
    *,
    kind: str = "catalog",
    personal: int | None = None,
) -> ContactPlan:
    """Suppress, then hold out at random, then mail the rest (module docstring)."""
    n = len(audience)
    status = np.asarray(audience.status, dtype=object)
    tiers = np.asarray(audience.tier, dtype=object)
    reason = np.full(n, None, dtype=object)
    closed = status == "closed"
    no_address = ~closed & ~audience.has_address if kind in PRINT_KINDS else np.zeros(n, dtype=np.bool_)
    reason[closed] = "member closed"
    reason[no_address] = "no postal address"
    for tier in settings.suppress_tiers:  # a handful of tiers: one mask each
        this = (tiers == tier) & (reason == None)  # noqa: E711 (elementwise on an object array)
        reason[this] = f"tier {tier} is not mailed"
    suppressed = reason != None  # noqa: E711
    assignment = assign_holdouts(
        audience.member_id, audience.segment, audience.tier, holdout_rule(settings), seed
    )
    held = assignment.held & ~suppressed
    arms = np.where(suppressed, "suppressed", np.where(held, "holdout", "mailed"))
    reason[held] = ["universal" if u else "random" for u in assignment.universal[held].tolist()]
    mailed = ~suppressed & ~held
    arm: list[str] = arms.tolist()
    return ContactPlan(audience, arm, reason.tolist(), assignment, _personal_mask(audience, mailed, personal))


@dataclass(frozen=True)
class ContactsResult:
    campaign: CampaignRecord
    written: int  # contact rows written by this call
    counts: dict[str, int]  # arm → contacts stored for the campaign, after this call
    suppressed: dict[str, int]  # reason → suppressed contacts stored
    plan: ContactPlan


def write_quarter_contacts(
    connection: Connection,
    settings: CampaignSettings,
    quarter: str,
    quarter_start: dt.date,
    *,
    files: PrintFiles,
    in_home: dt.date | None = None,
    personal: int | None = None,
    kind: str = "catalog",
    name: str | None = None,
    segment_names: Mapping[int, str] | None = None,
) -> ContactsResult:
    """Open the quarter's campaign and write a contact for every segmented member without one."""
    campaign, arms = open_quarter_campaign(
        connection, settings, quarter, quarter_start, in_home=in_home, files=files, kind=kind, name=name,
        segment_names=segment_names,
    )
    audience = campaigns_db.quarter_audience(connection, quarter)
    plan = plan_contacts(audience, settings, campaign.seed, kind=kind, personal=personal)
    done = campaigns_db.contacted_member_keys(connection, campaign.id)
    todo = ~np.isin(audience.member_key, done)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)

    def rows() -> Iterator[tuple[Any, ...]]:
        zero = Decimal("0")
        by_segment = {s: (e, t, e.cost_per_piece) for s, (e, t) in arms.items()}
        probability = plan.assignment.probability.tolist()
        keys = audience.member_key.tolist()
        segments = audience.segment.tolist()
        personal_mask = plan.personal.tolist()
        for i in np.flatnonzero(todo).tolist():
            segment = segments[i]
            edition, treatment, cost = by_segment[segment]
            arm = plan.arm[i]
            file = None
            if arm == "mailed":
                file = files.member(audience.member_id[i]) if personal_mask[i] else files.segment(segment)
            yield (
                campaign.id, keys[i], treatment.id, edition.id, arm, plan.reason[i], segment, audience.tier[i],
                None if arm == "suppressed" else probability[i], edition.in_home_date,
                cost if arm == "mailed" else zero, edition.model_version, edition.plan_id, file, now,
            )

    written = campaigns_db.write_contacts(connection, rows())
    return ContactsResult(
        campaign=campaign,
        written=written,
        counts=campaigns_db.contact_counts(connection, campaign.id),
        suppressed=campaigns_db.suppression_reasons(connection, campaign.id),
        plan=plan,
    )


def record_web_edition(connection: Connection, quarter: str, member_id: str, file: str | None) -> bool:
    """The on-demand web edition of ``member_id`` as a ``web`` contact of the quarter's campaign
    (once per member; the treatment of their mailed contact, else of their segment's edition).
    False when the quarter has no campaign or the member is unknown to it."""
    campaign = campaigns_db.campaign_by_name(connection, quarter)
    if campaign is None:
        return False
    keys = campaigns_db.member_keys(connection, [member_id])
    if member_id not in keys:
        return False
    contacts = campaigns_db.member_contacts(connection, campaign.id, [member_id]).get(member_id, [])
    segment = next((c.segment for c in contacts if c.segment is not None), None)
    if segment is None:
        found = segments_db.member_segment(connection, quarter, member_id)
        segment = None if found is None else found[1]
    by_segment = campaigns_db.segment_treatments(connection, campaign.id)
    if segment is None or segment not in by_segment:
        return False
    treatment_id, edition_id, _code = by_segment[segment]
    edition = next(e for e in campaigns_db.editions(connection, campaign.id) if e.id == edition_id)
    return campaigns_db.record_web_contact(
        connection, campaign.id, keys[member_id], treatment_id=treatment_id, edition_id=edition_id,
        segment=segment, tier=None, model_version=edition.model_version, plan_id=edition.plan_id,
        file=file, on=dt.date.today(),
    )
