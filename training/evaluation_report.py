"""What an evaluation says: per-member scores pooled into means, intervals and paired differences.

:mod:`training.evaluate` fits and scores; what it measures on one split is a
:class:`FoldScores`, values per member (a :class:`Scores` per recommender) before any
averaging. This module turns one of them, or several (rolling-origin folds), into an
:class:`EvaluationReport`:

- every metric's mean per recommender, pooled over the folds, with a 95 % percentile
  bootstrap interval over members (a member in several folds is one resampling unit,
  its values summed: :mod:`training.metrics.bootstrap`);
- each recommender minus the best *other* one by the primary metric, and minus plain
  popularity, on every metric, paired over the same resampled members;
- new-title recall and the cold members (cold start against popularity) alike;
- with folds, the same figures for each fold alone.

:func:`paired_difference` gives one more such difference from a report's members (the
served recommender against each other in :mod:`training.compare`, the new model
against the active one in :mod:`training.pipeline`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from training.dataset import Catalogue
from training.metrics.bootstrap import LEVEL, RESAMPLES, pooled_means, resample_means
from training.metrics.ranking import NAMES

FloatArray = npt.NDArray[np.float64]
COLD_START = "cold_start"
BASELINE = "popularity"


# ---- per member -----------------------------------------------------------------------
@dataclass(frozen=True)
class Scores:
    """One recommender on one split: values per member (rows follow the split's order)."""

    metrics: dict[str, FloatArray]  # metric name (no @k) → per scored warm member
    new_recall: FloatArray  # per member who bought a new title
    coverage: float


@dataclass
class FoldScores:
    """Everything measured on one split, per member, before any averaging."""

    cutoff: dt.datetime
    end: dt.datetime
    member_ids: list[str]  # warm members scored
    new_member_ids: list[str]  # warm members who bought a new title
    scores: dict[str, Scores]
    cold_ids: list[str]
    cold: dict[str, dict[str, FloatArray]]  # COLD_START | "popularity" → metric → per cold member
    members: dict[str, int]  # warm, cold, repurchase_only
    details: dict[str, Any]
    catalogue: Catalogue | None = field(default=None, repr=False)  # the split's (fitted) catalogue


# ---- pooled -------------------------------------------------------------------------
def _date(moment: dt.datetime) -> str:
    return moment.date().isoformat() if moment.time() == dt.time() else moment.isoformat()


def _clusters(
    folds: Sequence[FoldScores], ids: Callable[[FoldScores], list[str]], columns: Callable[[FoldScores], FloatArray]
) -> tuple[FloatArray, FloatArray]:
    """(per member: sums of each column over folds, number of values) — members are the units."""
    all_ids = [i for f in folds for i in ids(f)]
    if not all_ids:
        return np.zeros((0, 0)), np.zeros(0)
    values = np.concatenate([columns(f) for f in folds if ids(f)], axis=0)
    unique, unit = np.unique(np.array(all_ids, dtype=object).astype(str), return_inverse=True)
    sums = np.zeros((len(unique), values.shape[1]))
    np.add.at(sums, unit, values)
    return sums, np.bincount(unit, minlength=len(unique)).astype(np.float64)


def summarize(
    folds: Sequence[FoldScores], k: int, primary: str, *, resamples: int = RESAMPLES, seed: int = 0,
    level: float = LEVEL,
) -> dict[str, Any]:  # fmt: skip
    """Means, intervals and paired differences over the members of ``folds`` (pooled)."""
    names = list(folds[0].scores)
    metric_names = [f"{m}@{k}" for m in NAMES]
    out: dict[str, Any] = {"results": {}, "new_titles": {}, "intervals": {}, "differences": {}}
    sums, counts = _clusters(
        folds, lambda f: f.member_ids,
        lambda f: np.column_stack([f.scores[n].metrics[m] for n in names for m in NAMES]),
    )  # fmt: skip
    width = len(NAMES)
    if len(counts):
        boot = resample_means(sums, counts, resamples=resamples, seed=seed, level=level)
        means = pooled_means(sums, counts)
    for r, name in enumerate(names):
        results: dict[str, float] = {}
        intervals: dict[str, list[float]] = {}
        for j, metric in enumerate(metric_names):
            col = r * width + j
            results[metric] = float(means[col]) if len(counts) else 0.0
            intervals[metric] = list(boot.interval(col)) if len(counts) else [0.0, 0.0]
        results[f"coverage@{k}"] = float(np.mean([f.scores[name].coverage for f in folds]))
        out["results"][name], out["intervals"][name] = results, intervals
    if len(counts) and len(names) > 1:
        p = metric_names.index(primary) if primary in metric_names else metric_names.index(f"ndcg@{k}")
        for r, name in enumerate(names):
            other = max((o for o in range(len(names)) if o != r), key=lambda o: (means[o * width + p], -o))
            diff: dict[str, Any] = {"against": names[other]}
            for j, metric in enumerate(metric_names):
                low, high = boot.difference(r * width + j, other * width + j)
                diff[metric] = {"mean": float(means[r * width + j] - means[other * width + j]), "low": low, "high": high}
            out["differences"][name] = diff
        if BASELINE in names:  # and each against plain popularity, the baseline to beat
            b = names.index(BASELINE)
            out["versus_popularity"] = {
                name: {
                    metric: dict(
                        zip(("low", "high"), boot.difference(r * width + j, b * width + j), strict=True),
                        mean=float(means[r * width + j] - means[b * width + j]),
                    )
                    for j, metric in enumerate(metric_names)
                }
                for r, name in enumerate(names)
                if name != BASELINE
            }
    new_sums, new_counts = _clusters(
        folds, lambda f: f.new_member_ids, lambda f: np.column_stack([f.scores[n].new_recall for n in names])
    )
    new_boot = resample_means(new_sums, new_counts, resamples=resamples, seed=seed, level=level) if len(new_counts) else None
    new_means = pooled_means(new_sums, new_counts) if len(new_counts) else None
    for r, name in enumerate(names):
        key = f"recall@{k}"
        if new_boot is None or new_means is None:
            out["new_titles"][name] = {key: None}
            continue
        out["new_titles"][name] = {key: float(new_means[r])}
        out["intervals"][name][f"new_titles_recall@{k}"] = list(new_boot.interval(r))
    out["cold"] = _summarize_cold(folds, k, resamples=resamples, seed=seed, level=level)
    return out


def _summarize_cold(
    folds: Sequence[FoldScores], k: int, *, resamples: int, seed: int, level: float
) -> dict[str, Any]:
    arms = [COLD_START, "popularity"]
    sums, counts = _clusters(
        folds, lambda f: f.cold_ids, lambda f: np.column_stack([f.cold[a][m] for a in arms for m in NAMES])
    )
    out: dict[str, Any] = {"members": int(counts.sum()) if len(counts) else 0, "results": {}, "intervals": {}}
    if not len(counts):
        return out
    boot = resample_means(sums, counts, resamples=resamples, seed=seed, level=level)
    means = pooled_means(sums, counts)
    width = len(NAMES)
    for a, arm in enumerate(arms):
        out["results"][arm] = {f"{m}@{k}": float(means[a * width + j]) for j, m in enumerate(NAMES)}
        out["intervals"][arm] = {f"{m}@{k}": list(boot.interval(a * width + j)) for j, m in enumerate(NAMES)}
    out["differences"] = {
        COLD_START: {
            "against": "popularity",
            **{
                f"{m}@{k}": dict(
                    zip(("low", "high"), boot.difference(j, width + j), strict=True),
                    mean=float(means[j] - means[width + j]),
                )
                for j, m in enumerate(NAMES)
            },
        }
    }
    return out


@dataclass
class EvaluationReport:
    cutoff: str
    k: int
    results: dict[str, dict[str, float]] = field(default_factory=dict)
    new_titles: dict[str, dict[str, float | None]] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    members: dict[str, int] = field(default_factory=dict)
    intervals: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    differences: dict[str, dict[str, Any]] = field(default_factory=dict)
    served: str = ""
    versus_popularity: dict[str, dict[str, Any]] = field(default_factory=dict)
    cold: dict[str, Any] = field(default_factory=dict)
    folds: list[dict[str, Any]] | None = None
    bootstrap: dict[str, Any] = field(default_factory=dict)
    scores: list[FoldScores] = field(default_factory=list, repr=False)  # per member, not in JSON

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` object: cutoff, k, results, new_titles (as before), and members,
        intervals, differences, served, versus_popularity (each recommender minus popularity,
        paired), cold, bootstrap; ``folds`` with ``--folds``."""
        out: dict[str, Any] = {
            "cutoff": self.cutoff,
            "k": self.k,
            "results": self.results,
            "new_titles": self.new_titles,
            "members": self.members,
            "intervals": self.intervals,
            "differences": self.differences,
            "served": self.served,
            "versus_popularity": self.versus_popularity,
            "cold": self.cold,
            "bootstrap": self.bootstrap,
        }
        if self.folds is not None:
            out["folds"] = self.folds
        return out

    @classmethod
    def of(
        cls, folds: Sequence[FoldScores], k: int, *, served: str, primary: str, seed: int,
        resamples: int = RESAMPLES, cutoff: dt.datetime | None = None, with_folds: bool = False,
    ) -> EvaluationReport:  # fmt: skip
        """The report of one split (or the pooled report of several)."""
        pooled = summarize(folds, k, primary, resamples=resamples, seed=seed)
        members = {key: sum(f.members[key] for f in folds) for key in ("warm", "cold", "repurchase_only")}
        report = cls(
            cutoff=_date(cutoff or folds[0].cutoff),
            k=k,
            results=pooled["results"],
            new_titles=pooled["new_titles"],
            details=dict(folds[0].details) if len(folds) == 1 else {"folds": [f.details for f in folds]},
            members=members,
            intervals=pooled["intervals"],
            differences=pooled["differences"],
            served=served,
            versus_popularity=pooled.get("versus_popularity", {}),
            cold=pooled["cold"],
            bootstrap={"resamples": resamples, "level": LEVEL, "seed": seed, "unit": "member"},
            scores=list(folds),
        )
        if with_folds:
            report.folds = []
            for f in folds:
                one = summarize([f], k, primary, resamples=resamples, seed=seed)
                report.folds.append(
                    {"cutoff": _date(f.cutoff), "end": _date(f.end), "members": f.members, **one,
                     "details": f.details}
                )  # fmt: skip
        return report


def paired_difference(
    report: EvaluationReport, name: str, other: str, metric: str, *, resamples: int = RESAMPLES, seed: int = 0
) -> dict[str, Any]:
    """``name`` minus ``other`` on ``metric`` (e.g. ``ndcg@20``), paired over the report's
    members: ``{"metric", "mean", "low", "high"}`` (95 % bootstrap interval)."""
    base = metric.split("@")[0]
    sums, counts = _clusters(
        report.scores, lambda f: f.member_ids,
        lambda f: np.column_stack([f.scores[name].metrics[base], f.scores[other].metrics[base]]),
    )  # fmt: skip
    if not len(counts):
        return {"metric": metric, "mean": 0.0, "low": 0.0, "high": 0.0, "members": 0}
    means = pooled_means(sums, counts)
    low, high = resample_means(sums, counts, resamples=resamples, seed=seed).difference(0, 1)
    return {"metric": metric, "mean": float(means[0] - means[1]), "low": low, "high": high,
            "members": len(counts)}  # fmt: skip
