"""A segment's catalog plan as pure data: which titles, in which sections.

Inputs are plain values (candidates, scores, section weights, rules), so a
plan is testable without a database, a model or a renderer, and the same
inputs give the same plan. Rules, in order of precedence:

1. out-of-stock and excluded titles never appear, promoted or not;
2. promoted (must-include) titles always appear, in their own section;
3. each title appears once; at most ``max_per_author`` titles per author
   (promotions count towards the cap but are never dropped for it);
4. sections (CLC order) get quotas proportional to the segment's affinity,
   within ``[min_per_section, max_per_section]`` and what the section holds;
5. at least ``new_release_share`` of the titles are new releases when there
   are enough; within those bounds the best-scored titles win.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Candidate:
    title_id: str
    author: str | None
    section: str  # category code at the section level
    is_new: bool
    in_stock: bool = True


@dataclass(frozen=True)
class PlanRules:
    titles: int = 120
    max_per_author: int = 3
    min_per_section: int = 4
    max_per_section: int = 30
    new_release_share: float = 0.3


@dataclass(frozen=True)
class PlanEntry:
    title_id: str
    score: float
    is_new: bool
    promoted: bool = False


@dataclass
class PlanSection:
    code: str
    name: str
    quota: int
    entries: list[PlanEntry] = field(default_factory=list)


@dataclass
class CatalogPlan:
    quarter: str
    segment: int
    segment_name: str
    model_version: str
    settings_hash: str
    sections: list[PlanSection]
    dropped: list[tuple[str, str]] = field(default_factory=list)  # (title_id, reason)

    @property
    def title_ids(self) -> list[str]:
        return [e.title_id for s in self.sections for e in s.entries]

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> CatalogPlan:
        raw: dict[str, Any] = json.loads(text)
        raw["sections"] = [
            PlanSection(s["code"], s["name"], s["quota"], [PlanEntry(**e) for e in s["entries"]])
            for s in raw["sections"]
        ]
        raw["dropped"] = [tuple(d) for d in raw["dropped"]]
        return cls(**raw)


def settings_hash(*parts: Mapping[str, Any] | str) -> str:
    """A stable digest of the settings a plan depends on."""
    text = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _allocate(
    total: int, weights: Mapping[str, float], low: Mapping[str, int], high: Mapping[str, int]
) -> dict[str, int]:
    """Integer quotas ∝ weights, each within [low, high], summing to ``total`` where possible.

    Bisection on the scale λ of ``clamp(λ·w, low, high)``, then largest remainders.
    """
    sections = sorted(weights)
    total = max(min(total, sum(high[s] for s in sections)), sum(low[s] for s in sections))

    def filled(scale: float) -> dict[str, float]:
        return {s: min(max(scale * weights[s], low[s]), high[s]) for s in sections}

    lo, hi = 0.0, 1.0
    while sum(filled(hi).values()) < total and hi < 1e12:
        hi *= 2
    for _ in range(100):
        mid = (lo + hi) / 2
        if sum(filled(mid).values()) < total:
            lo = mid
        else:
            hi = mid
    real = filled(hi)
    quotas = {s: math.floor(real[s]) for s in sections}
    order = sorted(sections, key=lambda s: (-(real[s] - quotas[s]), -weights[s], s))
    short = total - sum(quotas.values())
    for s in order:
        if short <= 0:
            break
        if quotas[s] < high[s]:
            quotas[s] += 1
            short -= 1
    return quotas


def build_plan(
    candidates: Sequence[Candidate],
    scores: Mapping[str, float],
    section_weights: Mapping[str, float],
    section_names: Mapping[str, str],
    rules: PlanRules,
    *,
    must_include: Collection[str] = (),
    exclude: Collection[str] = (),
    quarter: str = "",
    segment: int = 0,
    segment_name: str = "",
    model_version: str = "",
    settings_digest: str = "",
) -> CatalogPlan:
    """Choose ``rules.titles`` titles in sections; see the module docstring for the rules."""
    dropped: list[tuple[str, str]] = []
    by_id: dict[str, Candidate] = {}
    for c in sorted(candidates, key=lambda c: c.title_id):
        by_id.setdefault(c.title_id, c)
    excluded = set(exclude)
    eligible = {t: c for t, c in by_id.items() if c.in_stock and t not in excluded}
    promoted: list[str] = []
    for t in sorted(set(must_include)):
        if t not in by_id:
            dropped.append((t, "promoted but not in this quarter's titles"))
        elif t not in eligible:
            dropped.append((t, "promoted but out of stock or excluded"))
        else:
            promoted.append(t)

    def rank(t: str) -> tuple[float, str]:
        return (-scores.get(t, float("-inf")), t)

    pools: dict[str, list[str]] = {}
    for t in sorted(eligible, key=rank):
        pools.setdefault(eligible[t].section, []).append(t)
    promoted_in = Counter(eligible[t].section for t in promoted)

    # Which sections: all with titles, unless their minimums alone overflow the catalog;
    # then the segment's strongest (and every section holding a promotion).
    sections = sorted(pools, key=lambda s: (-section_weights.get(s, 0.0), s))
    floor = {s: min(rules.min_per_section, len(pools[s])) for s in sections}
    kept: list[str] = []
    used = sum(promoted_in.values())
    for s in sections:
        need = max(floor[s] - promoted_in[s], 0)
        if promoted_in[s] or used + need <= rules.titles:
            kept.append(s)
            used += need
    low = {s: max(floor[s], promoted_in[s]) for s in kept}
    high = {s: max(min(rules.max_per_section, len(pools[s])), promoted_in[s]) for s in kept}
    weights = {s: section_weights.get(s, 0.0) + 1e-9 for s in kept}
    quotas = _allocate(rules.titles, weights, low, high)

    chosen: dict[str, list[str]] = {s: [] for s in kept}
    authors: Counter[str] = Counter()
    taken: set[str] = set()

    def take(t: str, force: bool = False) -> bool:
        author = eligible[t].author
        if t in taken or (not force and author and authors[author] >= rules.max_per_author):
            return False
        chosen[eligible[t].section].append(t)
        taken.add(t)
        if author:
            authors[author] += 1
        return True

    for t in promoted:
        take(t, force=True)
    total = sum(quotas.values())
    # New releases first, spread over sections in proportion to their quotas and as far
    # as each section has new titles.
    new_room = {s: min(quotas[s], sum(eligible[t].is_new for t in pools[s])) for s in kept}
    new_target = min(math.ceil(rules.new_release_share * total), sum(new_room.values()))
    new_quota = _allocate(
        new_target, {s: quotas[s] + 1e-9 for s in kept}, dict.fromkeys(kept, 0), new_room
    ) if kept else {}
    for s in kept:
        for t in pools[s]:
            have = sum(eligible[x].is_new for x in chosen[s])
            if len(chosen[s]) >= quotas[s] or have >= new_quota[s]:
                break
            if eligible[t].is_new:
                take(t)
    for s in kept:
        for t in pools[s]:
            if len(chosen[s]) >= quotas[s]:
                break
            take(t)
    # Sections the author cap left short hand their places to sections with room; then
    # sections left out for their minimums take the places still free, best first.
    short = rules.titles - len(taken)
    for s in sorted(kept, key=lambda s: (-weights[s], s)):
        for t in pools[s]:
            if short <= 0 or len(chosen[s]) >= high[s]:
                break
            if take(t):
                short -= 1
    for s in sections:
        if short <= 0:
            break
        if s in chosen:
            continue
        chosen[s] = []
        for t in pools[s]:
            if short <= 0 or len(chosen[s]) >= rules.max_per_section:
                break
            if take(t):
                short -= 1

    plan_sections = [
        PlanSection(
            s,
            section_names.get(s, s),
            len(chosen[s]),
            [
                PlanEntry(t, round(scores.get(t, 0.0), 6), eligible[t].is_new, t in promoted)
                for t in sorted(chosen[s], key=rank)
            ],
        )
        for s in sorted(chosen)
        if chosen[s]
    ]
    return CatalogPlan(
        quarter, segment, segment_name, model_version, settings_digest, plan_sections, dropped
    )
