"""The quarter as one job: data → training → segment → plan → segment catalogs → member editions."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from catalog.period import Quarter
from catalog.plan import CatalogPlan
from catalog.planning import plan_quarter
from catalog.production import render_member_editions, render_segment_catalogs, renderer_for
from catalog.segments import SegmentationResult, segment_quarter
from demo.generate import DemoSpec
from demo.load import DemoSummary, load_demo
from recsys.errors import BookclubError
from recsys.settings import Settings
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

    @property
    def example_member_id(self) -> str | None:
        return next(iter(self.editions), None)

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
        for member_id, path in self.editions.items():
            lines.append(f"   member edition {member_id} → {path}")
        lines.append("   timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in self.timings.items()))
        return "\n".join(lines)


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
        say(f"the database is empty: generating a demo club of {demo.members:,} members")
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
) -> QuarterResult:
    """The quarter as one job, what ``bookclub quarter`` and a scheduler call: the club's data
    (a demo club if ``demo`` is given and the database is empty), training with evaluation
    (``train``), segments, plans, each segment's catalog rendered once, and
    ``members_for_editions`` personalized editions (the best customers, one segment after
    another). The category tree, segment profiles and the quarter's titles are read once."""
    from training.pipeline import run_training

    engine = engine_from_settings(settings)
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = now - clock
        clock = now

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
    with engine.begin() as connection:
        segmentation = segment_quarter(connection, model, settings.segments, quarter, tree=tree)
    lap("segment")
    with engine.begin() as connection:
        plans = plan_quarter(
            connection, model, settings, quarter, profiles=segmentation.profiles, titles=titles, tree=tree
        )
    lap("plan")
    renderer = renderer_for(settings)
    with engine.connect() as connection:
        catalogs = render_segment_catalogs(
            connection, settings, quarter, plans, renderer=renderer, force=True,
            titles=by_id, profiles=segmentation.profiles,
        )
    lap("segment catalogs")
    editions: dict[str, Path] = {}
    if members_for_editions > 0:
        with engine.connect() as connection:
            per_segment = -(-members_for_editions // max(len(plans), 1))
            chosen = segments_db.best_members(connection, quarter, per_segment)
            # one segment after another, so three editions show three segments
            rank: Counter[int] = Counter()
            keyed = []
            for member_id, segment in chosen:
                keyed.append((rank[segment], segment, member_id))
                rank[segment] += 1
            member_ids = [m for _, _, m in sorted(keyed)[:members_for_editions]]
            editions = render_member_editions(
                connection, model, settings, quarter, plans, member_ids, renderer=renderer,
                titles=by_id, bodies=catalogs,
            )
    lap("member editions")
    engine.dispose()
    return QuarterResult(
        quarter, model.version, segmentation, plans, catalogs, editions, timings, data=data, trained=trained
    )
