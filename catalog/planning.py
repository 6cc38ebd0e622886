"""From a model, a segment and the quarter's titles to a stored catalog plan.

The model-facing half of planning: candidates from the quarter's titles, new
releases scored through the cold-start path, the segment's preference as the
mean score over a seeded sample of its members. :mod:`catalog.plan` then
chooses the titles, without knowing any of this.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping, Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection

from catalog.period import Quarter
from catalog.plan import Candidate, CatalogPlan, PlanRules, build_plan, settings_hash
from catalog.segments import SegmentProfile, stored_profiles
from recsys.errors import BookclubError
from recsys.serving import prepare_model
from recsys.settings import Settings
from recsys.storage import plans as plans_db
from recsys.storage import segments as segments_db
from recsys.storage import titles as titles_db
from recsys.storage.categories import CategoryNode, ancestors, category_tree
from recsys.storage.titles import TitleRecord

OTHER_SECTION = "~"
OTHER_NAME = "其他 · Other"
MEMBERS_PER_SCORING_CHUNK = 256


class ScoringModel(Protocol):
    """What planning needs of a TrainedModel."""

    version: str

    def score_titles(self, member_ids: Sequence[str], title_ids: Sequence[str]) -> npt.NDArray[np.float32]: ...

    def add_titles(self, titles: Sequence[tuple[str, Sequence[str]]]) -> None: ...


def section_of(
    code: str | None, tree: Mapping[str, CategoryNode], level: int, split: Collection[str] = ()
) -> str:
    """The ancestor of ``code`` at ``level`` (or the deepest above it); OTHER when unknown.

    A section in ``split`` is too big for one section: its titles go one level down.
    """
    if code is None or code not in tree:
        return OTHER_SECTION
    path = ancestors(dict(tree), code)[::-1]  # root first
    section = path[min(level, len(path)) - 1]
    if section in split and len(path) > level:
        section = path[level]
    return section


def sections_to_split(
    profile: SegmentProfile, tree: Mapping[str, CategoryNode], level: int, titles: int, largest: int
) -> set[str]:
    """Sections whose share of the segment's reading would give them more than ``largest``
    titles: a literature segment gets 中国文学 and 各国文学 rather than one capped 文学."""
    shares = {c: v for c, v in profile.affinity.items() if c in tree and tree[c].level == level}
    total = sum(shares.values())
    return {c for c, v in shares.items() if total > 0 and v / total * titles > largest}


def is_new_release(title: TitleRecord, period: Quarter, days: int) -> bool:
    if title.published_on is None:
        return False
    return period.start - dt.timedelta(days=days) <= title.published_on < period.end


def candidates_for(
    titles: Sequence[TitleRecord],
    period: Quarter,
    tree: Mapping[str, CategoryNode],
    level: int,
    new_days: int,
    split: Collection[str] = (),
) -> list[Candidate]:
    return [
        Candidate(
            t.title_id,
            t.author,
            section_of(t.primary_category, tree, level, split),
            is_new_release(t, period, new_days),
            t.in_stock,
        )
        for t in titles
    ]


def sample_members(member_ids: Sequence[str], size: int, seed: int) -> list[str]:
    """A seeded sample (all of them when there are few): the segment's preference is an average."""
    if len(member_ids) <= size:
        return list(member_ids)
    rng = np.random.default_rng(seed)
    picked = rng.choice(len(member_ids), size=size, replace=False)
    return [member_ids[i] for i in sorted(picked)]


def segment_scores(
    model: ScoringModel, member_ids: Sequence[str], title_ids: Sequence[str]
) -> dict[str, float]:
    """title_id → the members' mean score (members scored in chunks to bound memory)."""
    if not member_ids:
        return dict.fromkeys(title_ids, 0.0)
    total = np.zeros(len(title_ids), dtype=np.float64)
    for start in range(0, len(member_ids), MEMBERS_PER_SCORING_CHUNK):
        chunk = member_ids[start : start + MEMBERS_PER_SCORING_CHUNK]
        total += np.asarray(model.score_titles(chunk, title_ids), dtype=np.float64).sum(axis=0)
    mean = total / len(member_ids)
    return dict(zip(title_ids, mean.tolist(), strict=True))


def section_weights(profile: SegmentProfile, sections: Collection[str]) -> dict[str, float]:
    return {s: float(profile.affinity.get(s, 0.0)) for s in sections}


def plan_digest(settings: Settings) -> str:
    return settings_hash(settings.catalog.model_dump(), settings.segments.model_dump())


def plan_segment(
    model: ScoringModel,
    profile: SegmentProfile,
    member_ids: Sequence[str],
    titles: Sequence[TitleRecord],
    tree: Mapping[str, CategoryNode],
    quarter: str,
    settings: Settings,
) -> CatalogPlan:
    """One segment's plan; the model must already know the quarter's titles (``prepare_model``)."""
    cfg = settings.catalog
    period = Quarter.parse(quarter)
    split = sections_to_split(
        profile, tree, cfg.section_level, cfg.titles_per_catalog, cfg.max_per_section
    )
    candidates = candidates_for(
        titles, period, tree, cfg.section_level, cfg.new_release_days, split
    )
    eligible = [c.title_id for c in candidates if c.in_stock and c.title_id not in set(cfg.excluded)]
    sample = sample_members(member_ids, cfg.scoring_sample, settings.segments.seed + profile.segment)
    scores = segment_scores(model, sample, eligible)
    sections = {c.section for c in candidates}
    names = {s: (f"{s} {tree[s].name}" if s in tree else OTHER_NAME) for s in sections}
    rules = PlanRules(
        titles=cfg.titles_per_catalog,
        max_per_author=cfg.max_per_author,
        min_per_section=cfg.min_per_section,
        max_per_section=cfg.max_per_section,
        new_release_share=cfg.new_release_share,
    )
    return build_plan(
        candidates, scores, section_weights(profile, sections), names, rules,
        must_include=cfg.promotions, exclude=cfg.excluded, quarter=quarter,
        segment=profile.segment, segment_name=profile.name, model_version=model.version,
        settings_digest=plan_digest(settings),
    )


def plan_quarter(
    connection: Connection, model: ScoringModel, settings: Settings, quarter: str,
    segments: Collection[int] | None = None,
    *,
    profiles: Sequence[SegmentProfile] | None = None,
    titles: Sequence[TitleRecord] | None = None,
    tree: Mapping[str, CategoryNode] | None = None,
) -> list[CatalogPlan]:
    """Plans for the quarter's stored segments (all, or ``segments``), stored in catalog_plans.

    ``profiles``, ``titles`` (the quarter's) and ``tree``: when the caller has read them
    (the quarter job reads each once); otherwise read here."""
    if profiles is None:
        profiles = stored_profiles(connection, quarter)
    profiles = [p for p in profiles if segments is None or p.segment in segments]
    if not profiles:
        raise BookclubError(f"no segments stored for {quarter}: run `bookclub segment --quarter {quarter}`")
    if titles is None:
        titles = titles_db.titles_for_quarter(connection, Quarter.parse(quarter).end)
    if not titles:
        raise BookclubError("no titles to put in a catalog: import or generate titles first")
    tree = tree if tree is not None else category_tree(connection)
    prepare_model(model, ((t.title_id, t.categories) for t in titles))  # new releases included
    plans = []
    for profile in profiles:
        members = segments_db.members_of_segment(connection, quarter, profile.segment)
        plan = plan_segment(model, profile, members, titles, tree, quarter, settings)
        plans_db.store_plan(connection, quarter, profile.segment, plan.model_version, plan.settings_hash, plan.to_json())
        plans.append(plan)
    return plans


def stored_plans(connection: Connection, quarter: str) -> list[CatalogPlan]:
    return [CatalogPlan.from_json(r["plan_json"]) for r in plans_db.plans_of_quarter(connection, quarter)]
