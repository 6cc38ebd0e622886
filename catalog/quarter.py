"""The quarter as one job: segment → plan → segment catalogs → a few member editions."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from catalog.plan import CatalogPlan
from catalog.planning import plan_quarter
from catalog.production import render_member_editions, render_segment_catalogs, renderer_for
from catalog.segments import SegmentationResult, segment_quarter
from recsys.settings import Settings
from recsys.storage import segments as segments_db
from recsys.storage.db import engine_from_settings
from training.registry import ModelRegistry


@dataclass
class QuarterResult:
    quarter: str
    model_version: str
    segmentation: SegmentationResult
    plans: list[CatalogPlan]
    catalogs: dict[int, Path]
    editions: dict[str, Path]
    timings: dict[str, float] = field(default_factory=dict)

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


def run_quarter(settings: Settings, quarter: str, members_for_editions: int = 3) -> QuarterResult:
    """Segment the members, plan and render each segment's catalog, and render
    ``members_for_editions`` personalized editions (the best customers, one segment after another)."""
    engine = engine_from_settings(settings)
    with engine.connect() as connection:
        model = ModelRegistry(settings.models_dir).load_prepared(connection)
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    with engine.begin() as connection:
        segmentation = segment_quarter(connection, model, settings.segments, quarter)
    timings["segment"] = time.perf_counter() - clock
    clock = time.perf_counter()
    with engine.begin() as connection:
        plans = plan_quarter(connection, model, settings, quarter)
    timings["plan"] = time.perf_counter() - clock
    clock = time.perf_counter()
    renderer = renderer_for(settings)
    with engine.connect() as connection:
        catalogs = render_segment_catalogs(connection, settings, quarter, plans, renderer=renderer, force=True)
    timings["segment catalogs"] = time.perf_counter() - clock
    clock = time.perf_counter()
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
                connection, model, settings, quarter, plans, member_ids, renderer=renderer
            )
    timings["member editions"] = time.perf_counter() - clock
    engine.dispose()
    return QuarterResult(quarter, model.version, segmentation, plans, catalogs, editions, timings)
