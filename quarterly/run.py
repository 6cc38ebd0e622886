"""The quarter as one job: data → training → segment → plan → campaign contacts (the mailing
decided by expected profit when an earlier campaign's holdout says what a piece does) → segment
catalogs → the mailed members' editions → (on the demo club) simulated responses → matchback →
the campaign report.

A generated demo club has no past campaigns, so nothing to learn whom a piece moves from: before
its first quarter the job runs the previous quarter's campaign as a randomized test
(:mod:`quarterly.demo_campaign`), and the quarter is then planned by expected profit from it. The
generated history ends the day before the test's in-home date, so that what members buy in its
response window is the simulated response (with and without the piece) alone: order lines of the
generator in the window, unrelated to the mailing, would bury its effect (a first run with them
measured +5.00 [−5.52, +15.63] margin per piece against a true +1.5: noise the plan then learned).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from campaign.contacts import ContactsResult, PrintFiles, write_quarter_contacts
from campaign.matchback import MatchCounts, run_matchback
from campaign.reconcile import Reconciliation, reconcile_files
from campaign.report import CampaignReport, campaign_report
from catalog.member_edition import mailed_edition_members
from catalog.paths import catalog_file, edition_file, quarter_dir
from catalog.period import Quarter
from catalog.plan import CatalogPlan
from catalog.planning import plan_quarter
from catalog.production import render_member_editions, render_segment_catalogs, renderer_for
from catalog.segments import SegmentationResult, segment_quarter
from demo.generate import DemoSpec
from demo.load import DemoSummary, load_demo
from demo.respond import SimulatedResponses, simulate_responses
from quarterly.demo_campaign import DemoHistory, demo_history, earlier_campaigns, simulated_truth
from recsys.errors import BookclubError
from recsys.settings import Settings
from recsys.storage import campaigns as campaigns_db
from recsys.storage import club as club_db
from recsys.storage import segments as segments_db
from recsys.storage import titles as titles_db
from recsys.storage.categories import category_tree, clc_file, load_categories, read_clc
from recsys.storage.db import engine_from_settings, upgrade
from training.registry import ModelRegistry

if TYPE_CHECKING:
    from training.pipeline import TrainResult


@dataclass
class QuarterResult:
    quarter: str
    model_version: str
    segmentation: SegmentationResult
    plans: list[CatalogPlan]
    catalogs: dict[int, Path]
    editions: dict[str, Path]
    timings: dict[str, float] = field(default_factory=dict)
    data: QuarterData | None = None
    trained: TrainResult | None = None
    campaign: QuarterCampaign | None = None
    segment_member_id: str | None = None  # a member of the largest segment, for when nobody got an edition

    @property
    def example_member_id(self) -> str | None:
        """A member to show the API and console on: one with an edition, else a segmented one."""
        return next(iter(self.editions), self.segment_member_id)

    def summary(self) -> str:
        seg = self.segmentation
        lines = [
            f"   {seg.members:,} members: "
            + ", ".join(f"{t} {seg.tier_counts.get(t, 0):,}" for t in ("core", "regular", "occasional", "lapsed")),
            f"   80/20 check: the top 20% of buyers bring {seg.pareto.top_share_of_buyers:.0%} of revenue "
            f"({seg.pareto.top_share_of_members:.0%} counting all members)",
        ]
        if seg.compared:
            lines.append(
                f"   {seg.moved:,} of {seg.compared:,} members moved segment since {seg.previous_quarter}"
            )
        for profile in seg.profiles:
            plan = next((p for p in self.plans if p.segment == profile.segment), None)
            path = self.catalogs.get(profile.segment)
            lines.append(
                f"   segment {profile.segment} {profile.name}: {profile.size:,} members, "
                f"{len(plan.title_ids) if plan else 0} titles → {path or '-'}"
            )
        for member_id, path in list(self.editions.items())[:5]:
            lines.append(f"   member edition {member_id} → {path}")
        if len(self.editions) > 5:
            lines.append(f"   … {len(self.editions) - 5:,} more member editions in {next(iter(self.editions.values())).parent}")
        if self.campaign is not None:
            lines.extend(self.campaign.summary())
        lines.append("   timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in self.timings.items()))
        return "\n".join(lines)


@dataclass
class QuarterCampaign:
    """The quarter's campaign: its contacts, and on the demo club the loop closed."""

    contacts: ContactsResult
    reconciliation: Reconciliation
    simulated: SimulatedResponses | None = None
    matched: MatchCounts | None = None
    report: CampaignReport | None = None
    history: DemoHistory | None = None
    truth: dict[str, dict[str, float]] | None = None  # demo club: the plan and 'everyone' at the true effects

    def summary(self) -> list[str]:
        c = self.contacts
        counts = ", ".join(f"{arm} {n:,}" for arm, n in sorted(c.counts.items()))
        lines = [self.history.summary()] if self.history is not None else []
        lines.append(
            f"   campaign {c.campaign.name}: in home {c.campaign.in_home_date}; contacts {counts}"
            + (f" ({c.written:,} written now)" if c.written else " (written before)"),
        )
        lines.extend(f"   {line}" for line in c.summary())
        lines.extend(f"     suppressed {n:,}: {reason}" for reason, n in sorted(c.suppressed.items()))
        lines.append(f"   {self.reconciliation.summary()}")
        if self.simulated is not None:
            lines.append(
                f"   simulated responses (demo club): {self.simulated.responders:,} responders, "
                f"{self.simulated.lines:,} order lines written"
            )
        if self.truth is not None:
            for label, row in self.truth.items():
                lines.append(
                    f"   at the simulated true effect, {label + ':':<10} {row['pieces']:>7,.0f} pieces, incremental "
                    f"margin {row['margin']:>11,.2f}, profit {row['profit']:>11,.2f}"
                )
        if self.matched is not None:
            m = self.matched
            lines.append(
                f"   matchback: {m.lines:,} new line(s): direct {m.direct:,}, inferred {m.inferred:,}, "
                f"unattributed {m.unattributed:,}"
            )
        return lines


Say = Callable[[str], None]
Step = Callable[[str, int, int], None]


def _quiet(_message: str) -> None:
    return None


@dataclass(frozen=True)
class QuarterData:
    """How the quarter found the club's data (and what it loaded first)."""

    categories_loaded: int  # CLC classes loaded because the tree was empty
    demo: DemoSummary | None  # the demo club generated because the database was empty
    members: int
    order_lines: int


def prepare_club(engine: Engine, settings: Settings, demo: DemoSpec | None, say: Say = _quiet) -> QuarterData:
    """Schema up to date, a category tree (the CLC when there is none), and a demo club when
    the database holds no club data and ``demo`` is given."""
    upgrade(engine)
    loaded = 0
    with engine.begin() as connection:
        if not club_db.has_categories(connection):
            nodes = read_clc(clc_file(settings.shared_data_dir / "clc", all_levels=False))
            loaded = load_categories(connection, nodes)
            say(f"loaded the CLC: {loaded} categories")
        empty = not club_db.has_club_data(connection)
    summary = None
    if empty:
        if demo is None:
            raise BookclubError("the database holds no members, titles or purchases: import them first")
        say(f"the database is empty: generating a demo club of {demo.members:,} members, its history to {demo.end_date}")
        summary = load_demo(engine, demo, clc_file(settings.shared_data_dir / "clc", all_levels=False))
    with engine.connect() as connection:
        counts = club_db.row_counts(connection)
    return QuarterData(loaded, summary, counts["members"], counts["purchases"])


def run_quarter(
    settings: Settings,
    quarter: str,
    members_for_editions: int = 3,
    *,
    demo: DemoSpec | None = None,
    train: bool = False,
    say: Say = _quiet,
    on_step: Step | None = None,
    simulate: bool | None = None,
    in_home: dt.date | None = None,
) -> QuarterResult:
    """The quarter as one job, what ``bookclub quarter`` and a scheduler call: the club's data
    (a demo club if ``demo`` is given and the database is empty), training with evaluation
    (``train``), segments, plans, each segment's catalog rendered once, and
    the quarter's campaign — a contact for every segmented member, mailed, held out at random
    or suppressed, written before anything is rendered — and the mailed members' pieces:
    ``members_for_editions`` personalized editions (the best mailed customers, one segment
    after another; the others' piece is their segment's catalog). With ``simulate`` (default:
    when the club is a generated demo club) the mailed and held-out members respond with a
    known true effect, matchback runs and the campaign report is built. ``in_home``: the
    campaign's in-home date (default: the quarter's first day, or ``campaign.in_home_days`` from
    today once the quarter has begun). The category tree, segment profiles and the quarter's
    titles are read once."""
    from training.pipeline import run_training

    engine = engine_from_settings(settings)
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = now - clock
        clock = now

    if demo is not None and settings.mailing.plan_by_profit and simulate is not False:
        # a club generated for the demo buys, after its test campaign's in-home date, only what the
        # simulated responses say: the test then measures the mailing, not the generator's noise
        test_day = Quarter.parse(quarter).previous().start
        if demo.end_date >= test_day:
            demo = dataclasses.replace(demo, end_date=test_day - dt.timedelta(days=1))
    data = prepare_club(engine, settings, demo, say)
    lap("data")
    trained = None
    if train:
        say("training and evaluating the model")
        trained = run_training(engine, settings, with_evaluation=True, promote="auto", on_step=on_step)
        lap("train")
    say(f"segments, catalog plans and PDFs for {quarter}")
    with engine.connect() as connection:
        model = ModelRegistry(settings.models_dir).load_prepared(connection)
        tree = category_tree(connection)
        titles = titles_db.titles_for_quarter(connection, Quarter.parse(quarter).end)
    by_id = {t.title_id: t for t in titles}
    lap("load")
    with engine.connect() as connection:
        simulate = club_db.is_demo_club(connection) if simulate is None else simulate
        learn_first = simulate and settings.mailing.plan_by_profit and not earlier_campaigns(connection, quarter)
    history = None
    if learn_first:
        previous = str(Quarter.parse(quarter).previous())
        say(f"the demo club has no earlier campaign: {previous}'s catalogs go out as a randomized test first")
        history = demo_history(engine, settings, previous, model, tree, titles)
        lap("test campaign")
    with engine.begin() as connection:
        segmentation = segment_quarter(connection, model, settings.segments, quarter, tree=tree)
    lap("segment")
    with engine.begin() as connection:
        plans = plan_quarter(
            connection, model, settings, quarter, profiles=segmentation.profiles, titles=titles, tree=tree
        )
    lap("plan")
    files = PrintFiles(member=partial(edition_file, quarter), segment=partial(catalog_file, quarter))
    with engine.begin() as connection:  # contacts before rendering, in one transaction
        contacts = write_quarter_contacts(
            connection, settings, quarter, Quarter.parse(quarter).start, files=files, in_home=in_home,
            personal=members_for_editions, segment_names={p.segment: p.name for p in segmentation.profiles},
            models=ModelRegistry(settings.models_dir).model_source(connection, loaded=model),
        )
    lap("contacts")
    renderer = renderer_for(settings)
    with engine.connect() as connection:
        catalogs = render_segment_catalogs(
            connection, settings, quarter, plans, renderer=renderer, force=True,
            titles=by_id, profiles=segmentation.profiles,
        )
    lap("segment catalogs")
    editions: dict[str, Path] = {}
    with engine.connect() as connection:
        # the mailed members whose piece is their own edition (chosen when the contacts were written)
        member_ids = mailed_edition_members(connection, settings, quarter)
        if member_ids:
            editions = render_member_editions(
                connection, model, settings, quarter, plans, member_ids, renderer=renderer,
                titles=by_id, bodies=catalogs,
            )
        largest = max(segmentation.profiles, key=lambda p: p.size, default=None)
        some_member = segments_db.members_of_segment(connection, quarter, largest.segment, limit=1) if largest else []
    lap("member editions")
    campaign = QuarterCampaign(contacts, _reconcile(engine, settings, quarter), history=history)
    if simulate and contacts.mailing is not None and contacts.mailing.everyone:
        with engine.connect() as connection:
            campaign.truth = simulated_truth(connection, settings, contacts)
    if simulate and not (contacts.counts.get("mailed") and contacts.counts.get("holdout")):
        # the plan may mail so few that the random holdout is empty: nothing to compare, nothing to simulate
        say(f"no simulated responses: the campaign has {contacts.counts.get('mailed', 0):,} mailed and "
            f"{contacts.counts.get('holdout', 0):,} held-out contacts (both are needed)")  # fmt: skip
        simulate = False
    if simulate:
        say("the demo club responds to the mailing (simulated, with a known true effect)")
        with engine.begin() as connection:
            campaign.simulated = simulate_responses(
                connection, quarter,
                sections={p.segment: [s.code for s in p.sections] for p in plans},
                plan_titles={p.segment: p.title_ids for p in plans},
                margin_rate=settings.campaign.margin_rate,
                negative_option=settings.campaign,  # declines and auto-ships only when the club runs it
            )
        with engine.begin() as connection:
            campaign.matched = run_matchback(connection, quarter, settings.campaign.timezone)
        with engine.connect() as connection:
            campaign.report = campaign_report(connection, quarter, settings.campaign)
        lap("responses, matchback, report")
    engine.dispose()
    return QuarterResult(
        quarter, model.version, segmentation, plans, catalogs, editions, timings, data=data, trained=trained,
        campaign=campaign, segment_member_id=next(iter(some_member), None),
    )


def _reconcile(engine: Engine, settings: Settings, quarter: str) -> Reconciliation:
    with engine.connect() as connection:
        record = campaigns_db.find_campaign(connection, quarter)
        return reconcile_files(connection, record, settings.catalogs_dir, quarter_dir(settings, quarter) / "members")
