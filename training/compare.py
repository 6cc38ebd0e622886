"""Two model versions side by side, and how far a title reaches, on seeded samples of members.

- :func:`metric_differences`: each version's stored evaluation (``meta.json``), metric by
  metric: the served recommender's mean with its 95 % bootstrap interval, the difference
  between the versions, and each version's paired difference against popularity (or, in an
  evaluation that did not store that, the best other recommender) of its own evaluation. The two evaluations stored their means and intervals,
  not their per-member values, so the difference *between* versions has no interval of its
  own; whether the two intervals overlap is said instead, and whether the cutoffs differ.
- :func:`compare_recommendations`: both versions' top ``k`` for the same members — a fixed
  seeded sample per segment and value tier (:func:`stratified_sample`) — through the one
  serving path (:func:`recsys.serving.recommend`, exactly what the API answers): overlap per
  cell and overall, coverage, the share of new titles, the members whose top 5 changed most.
- :func:`top_k_reach`: in how many sampled members' top ``k`` each title is (the model the
  API serves), to be extrapolated to the club and labelled as a sample.
- :func:`served_against_each`: in one evaluation, the served recommender minus every other
  one, metric by metric, paired over the same members — the check of "never significantly
  worse than any other, significantly better than popularity where the data can show it".

Nothing is written; the same sample and the same models give the same answer.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import Connection

from recsys.errors import UnknownMemberError
from recsys.serving import RecommendationQuery, ServableModel, Shelf, recommend
from recsys.storage.titles import TitleRecord
from training.evaluation_report import EvaluationReport, paired_difference

__all__ = [
    "CellOverlap",
    "MemberChange",
    "MetricDifference",
    "SampledMember",
    "VersionComparison",
    "compare_recommendations",
    "metric_differences",
    "served_against_each",
    "stratified_sample",
    "top_k_reach",
]


# ---- the sample --------------------------------------------------------------------------
@dataclass(frozen=True)
class SampledMember:
    member_id: str
    segment: int
    tier: str


def stratified_sample(rows: Sequence[tuple[str, int, str]], per_cell: int, seed: int) -> list[SampledMember]:
    """Up to ``per_cell`` members of each (segment, tier) of ``rows`` — (member_id, segment,
    tier) — drawn without replacement by a generator seeded with ``seed``; cells in order,
    members by id within a cell. The same rows and seed give the same sample whatever order
    the rows came in."""
    cells: dict[tuple[int, str], list[str]] = defaultdict(list)
    for member_id, segment, tier in rows:
        cells[(int(segment), str(tier))].append(member_id)
    rng = np.random.default_rng(seed)
    out: list[SampledMember] = []
    for (segment, tier), ids in sorted(cells.items()):
        ids.sort()
        if len(ids) > per_cell:
            keep = np.sort(rng.choice(len(ids), per_cell, replace=False))
            ids = [ids[int(i)] for i in keep]
        out.extend(SampledMember(m, segment, tier) for m in ids)
    return out


def simple_sample(member_ids: Sequence[str], size: int, seed: int) -> list[str]:
    """``size`` of ``member_ids`` (all when fewer) drawn with a generator seeded with ``seed``, sorted."""
    ids = sorted(member_ids)
    if len(ids) <= size:
        return ids
    keep = np.sort(np.random.default_rng(seed).choice(len(ids), size, replace=False))
    return [ids[int(i)] for i in keep]


# ---- stored metrics ----------------------------------------------------------------------
Interval = tuple[float, float]


@dataclass(frozen=True)
class PairedDifference:
    """A version's served recommender minus ``against`` in its own evaluation, paired over members."""

    against: str
    mean: float
    low: float
    high: float


@dataclass(frozen=True)
class MetricDifference:
    metric: str
    a: float | None
    a_interval: Interval | None
    b: float | None
    b_interval: Interval | None
    a_paired: PairedDifference | None
    b_paired: PairedDifference | None

    @property
    def difference(self) -> float | None:
        """b − a, when both versions have the metric."""
        return None if self.a is None or self.b is None else self.b - self.a

    @property
    def intervals_overlap(self) -> bool | None:
        """Whether the two versions' intervals overlap (None without both)."""
        if self.a_interval is None or self.b_interval is None:
            return None
        return self.a_interval[0] <= self.b_interval[1] and self.b_interval[0] <= self.a_interval[1]


@dataclass(frozen=True)
class StoredEvaluation:
    """What one version's ``meta.json`` says of its evaluation."""

    served: str | None
    cutoff: str | None
    k: int | None
    metrics: dict[str, float]
    intervals: dict[str, Interval]
    paired: dict[str, PairedDifference]


def stored_evaluation(meta: Mapping[str, Any]) -> StoredEvaluation:
    evaluation: Mapping[str, Any] = meta.get("evaluation") or {}
    served = evaluation.get("served") or meta.get("kind")
    raw_intervals = (evaluation.get("intervals") or {}).get(served) or {}
    intervals = {
        name: (float(pair[0]), float(pair[1]))
        for name, pair in raw_intervals.items()
        if isinstance(pair, list | tuple) and len(pair) == 2
    }
    paired: dict[str, PairedDifference] = {}
    # against plain popularity (the baseline to beat) when the evaluation stored it, else
    # against the best other recommender of the same evaluation
    versus = (evaluation.get("versus_popularity") or {}).get(served)
    diff = {"against": "popularity", **versus} if versus else (evaluation.get("differences") or {}).get(served) or {}
    for name, value in diff.items():
        if isinstance(value, dict) and {"mean", "low", "high"} <= value.keys():
            paired[name] = PairedDifference(str(diff.get("against")), float(value["mean"]), float(value["low"]), float(value["high"]))
    metrics = {str(k): float(v) for k, v in (meta.get("metrics") or {}).items() if isinstance(v, int | float)}
    k = evaluation.get("k")
    return StoredEvaluation(served, evaluation.get("cutoff"), int(k) if k is not None else None, metrics, intervals, paired)


def metric_differences(meta_a: Mapping[str, Any], meta_b: Mapping[str, Any]) -> list[MetricDifference]:
    """Every metric either version stored, in a stable order (see the module docstring)."""
    a, b = stored_evaluation(meta_a), stored_evaluation(meta_b)
    names = sorted(set(a.metrics) | set(b.metrics), key=_metric_order)
    return [
        MetricDifference(
            name, a.metrics.get(name), a.intervals.get(name), b.metrics.get(name), b.intervals.get(name),
            a.paired.get(name), b.paired.get(name),
        )
        for name in names
    ]


_ORDER = ("ndcg", "recall", "precision", "map", "hitrate", "coverage", "new_titles_recall")


def _metric_order(name: str) -> tuple[int, str]:
    base = name.split("@")[0]
    return (_ORDER.index(base) if base in _ORDER else len(_ORDER), name)


# ---- recommendations on the sample -------------------------------------------------------
Loaded = tuple[ServableModel, Shelf]


@dataclass(frozen=True)
class CellOverlap:
    segment: int
    tier: str
    members: int
    overlap: float  # mean over the cell's members of |A ∩ B| / the longer list


@dataclass(frozen=True)
class MemberChange:
    member_id: str
    segment: int
    tier: str
    changed: int  # titles of the first version's top 5 missing from the second's
    a_top: tuple[str, ...]
    b_top: tuple[str, ...]


@dataclass(frozen=True)
class VersionComparison:
    a: str
    b: str
    k: int
    top: int
    members: int  # sampled members both versions answered for
    per_cell: int
    seed: int
    overlap: float
    cells: list[CellOverlap]
    coverage: dict[str, float]  # version → distinct titles in the sample's top k / titles in stock
    new_share: dict[str, float]  # version → share of the sample's top-k places held by new titles
    changed: list[MemberChange] = field(default_factory=list)  # most changed first
    skipped: int = 0  # sampled members no longer in the club


def _overlap(a: Sequence[str], b: Sequence[str]) -> float:
    longest = max(len(a), len(b))
    return 1.0 if longest == 0 else len(set(a) & set(b)) / longest


def compare_recommendations(
    connection: Connection,
    a: Loaded,
    b: Loaded,
    sample: Sequence[SampledMember],
    *,
    k: int = 20,
    top: int = 5,
    is_new: Callable[[TitleRecord], bool],
    keep: int = 10,
    per_cell: int = 0,
    seed: int = 0,
) -> VersionComparison:
    """Both versions' top ``k`` (the API's default query: bought and out-of-stock titles left
    out) for every member of ``sample``; ``is_new`` says which titles are new releases."""
    query = RecommendationQuery(limit=k)
    ranked: dict[str, list[tuple[SampledMember, list[str]]]] = {}
    new_places: dict[str, int] = {}
    places: dict[str, int] = {}
    answered: set[str] | None = None
    for model, shelf in (a, b):
        rows: list[tuple[SampledMember, list[str]]] = []
        new = total = 0
        for member in sample:
            try:
                result = recommend(connection, model, member.member_id, query, shelf=shelf)
            except UnknownMemberError:  # closed and removed since the quarter's segments
                continue
            ids = [rec.title_id for rec, _record in result.items]
            new += sum(1 for _rec, record in result.items if is_new(record))
            total += len(ids)
            rows.append((member, ids))
        ranked[model.version] = rows
        new_places[model.version], places[model.version] = new, total
        found = {m.member_id for m, _ids in rows}
        answered = found if answered is None else answered & found
    version_a, version_b = a[0].version, b[0].version
    answered = answered or set()
    by_a = {m.member_id: ids for m, ids in ranked[version_a]}
    by_b = {m.member_id: ids for m, ids in ranked[version_b]}
    members = [m for m in sample if m.member_id in answered]
    cell_values: dict[tuple[int, str], list[float]] = defaultdict(list)
    changes: list[MemberChange] = []
    for m in members:
        ids_a, ids_b = by_a[m.member_id], by_b[m.member_id]
        cell_values[(m.segment, m.tier)].append(_overlap(ids_a, ids_b))
        head_a, head_b = tuple(ids_a[:top]), tuple(ids_b[:top])
        changes.append(MemberChange(m.member_id, m.segment, m.tier, len(set(head_a) - set(head_b)), head_a, head_b))
    cells = [
        CellOverlap(segment, tier, len(values), float(np.mean(values)))
        for (segment, tier), values in sorted(cell_values.items())
    ]
    all_values = [v for values in cell_values.values() for v in values]
    coverage = {}
    for model, shelf in (a, b):
        stocked = sum(1 for record in shelf.details.values() if record.in_stock)
        distinct = {t for m, ids in ranked[model.version] if m.member_id in answered for t in ids}
        coverage[model.version] = len(distinct) / stocked if stocked else 0.0
    changes.sort(key=lambda c: (-c.changed, c.member_id))
    return VersionComparison(
        a=version_a, b=version_b, k=k, top=top, members=len(members), per_cell=per_cell, seed=seed,
        overlap=float(np.mean(all_values)) if all_values else 1.0, cells=cells, coverage=coverage,
        new_share={v: (new_places[v] / places[v] if places[v] else 0.0) for v in (version_a, version_b)},
        changed=[c for c in changes if c.changed > 0][:keep], skipped=len(sample) - len(members),
    )


@dataclass(frozen=True)
class Reach:
    """In how many of ``members`` sampled members' top ``k`` each title is."""

    version: str
    k: int
    members: int  # sampled members answered for
    counts: dict[str, int]

    def share(self, title_id: str) -> float:
        return self.counts.get(title_id, 0) / self.members if self.members else 0.0


def top_k_reach(connection: Connection, loaded: Loaded, member_ids: Sequence[str], *, k: int = 20) -> Reach:
    """Each title's count of sampled members with it in their top ``k`` (the API's default
    query), through :func:`recsys.serving.recommend`."""
    model, shelf = loaded
    counts: Counter[str] = Counter()
    answered = 0
    query = RecommendationQuery(limit=k)
    for member_id in member_ids:
        try:
            result = recommend(connection, model, member_id, query, shelf=shelf)
        except UnknownMemberError:
            continue
        answered += 1
        counts.update(rec.title_id for rec, _record in result.items)
    return Reach(model.version, k, answered, dict(counts))


# ---- the served recommender against every other, in one evaluation -----------------------
def served_against_each(report: EvaluationReport) -> dict[str, Any]:
    """``{"against": {other: {metric: {mean, low, high}}}, "worse_than": {other: [metrics]},
    "better_than_popularity": [metrics]}``: the served recommender minus each other one on
    every ranking metric, paired over the report's members (its bootstrap seed and resamples);
    ``worse_than`` lists where the 95 % interval lies wholly below 0."""
    served = report.served
    if served not in report.results or not report.scores:
        return {"against": {}, "worse_than": {}, "better_than_popularity": []}
    metrics = [m for m in next(iter(report.results.values())) if not m.startswith("coverage")]
    resamples = int(report.bootstrap.get("resamples", 2000))
    seed = int(report.bootstrap.get("seed", 0))
    against: dict[str, dict[str, dict[str, float]]] = {}
    for other in report.results:
        if other == served:
            continue
        against[other] = {}
        for metric in metrics:
            d = paired_difference(report, served, other, metric, resamples=resamples, seed=seed)
            against[other][metric] = {"mean": d["mean"], "low": d["low"], "high": d["high"]}
    worse = {o: [m for m, d in values.items() if d["high"] < 0.0] for o, values in against.items()}
    better = [m for m, d in against.get("popularity", {}).items() if d["low"] > 0.0]
    return {"against": against, "worse_than": {o: ms for o, ms in worse.items() if ms}, "better_than_popularity": better}
