"""Time-based evaluation that states its uncertainty.

Every recommender is fitted on the same split (:mod:`training.split`: only the
members and titles that existed at the cutoff, ids in sorted order, seeded fits,
BPR single-threaded) and scored on the same members:

- **warm** members on the titles they bought in the test period that they had not
  bought in the window (recall, nDCG, precision, MAP, hit rate at k; definitions in
  :mod:`training.metrics.ranking`), plus catalogue coverage;
- new-title recall: among titles never sold before the cutoff, the share of a
  member's new-title purchases that the recommender's ranking *of only those titles*
  puts in its top k (``None`` when no member bought a new title);
- **cold** members (no history in the window) on everything they bought, through
  the served model's cold-start path (declared categories → category popularity,
  :func:`training.served.cold_start_model`) against plain popularity;
- repurchase-only members are counted.

For each mean a 95 % percentile bootstrap interval over members (seeded, 2,000
resamples by default), and for each recommender the paired difference to the best
*other* recommender by the primary metric (nDCG@k), on every metric, with its
interval (the same resampled members for both: :mod:`training.metrics.bootstrap`).

``folds`` = N: rolling origin. The test periods are the N consecutive periods of
``holdout_days`` (h) that end at ``cutoff`` — [cutoff − N·h, cutoff − (N−1)·h), …,
[cutoff − h, cutoff) — each fitted only on what came before it; the report gives each
fold and the pooled figures (a member in several folds is one resampling unit, its
values summed). Without folds the one test period is [cutoff, cutoff + h), as it always
was. ``bookclub tune --cutoff T`` validates on folds ending at T, so ``evaluate --cutoff
T + N·h --folds N`` scores its choice on periods it never saw.

Equal scores are ranked by lower title index (``recsys.recommenders.top_n``), except
in the factor models' blocked top-k (implicit's heap), where exact ties are titles
placed in the same category: they share one score whatever their order.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from implicit.cpu.topk import topk
from sqlalchemy import Connection

from recsys.affinity import Placement
from recsys.recommenders import FactorRecommender, FitContext, Recommender, build_recommender, top_n
from recsys.settings import TrainingSettings
from recsys.storage.purchase_log import PurchaseArrays, read_purchase_log, titles_sold_before, to_epoch
from training.dataset import Catalogue, window_start
from training.metrics.bootstrap import LEVEL, RESAMPLES, pooled_means, resample_means
from training.metrics.coverage import catalog_coverage
from training.metrics.ranking import NAMES, member_metrics
from training.served import cold_placement, cold_start_model
from training.split import ColdMember, Holdout, Split, time_split

Step = Callable[[str, int, int], None]  # (what, done, total)
FloatArray = npt.NDArray[np.float64]
IdxArray = npt.NDArray[np.int64]
COLD_START = "cold_start"
BASELINE = "popularity"


# ---- ranking ------------------------------------------------------------------------
def _structure(rows: sp.csr_matrix) -> sp.csr_matrix:
    """Ones where ``rows`` has an entry (``top_n``'s ``liked`` reads structure, not values)."""
    return sp.csr_matrix((np.ones(rows.nnz, dtype=np.float32), rows.indices, rows.indptr), shape=rows.shape)


class _Ranker:
    """Top-k titles per member, three ways with the same answers as ``top_n`` on the
    dense scores (up to the order of exact ties):

    - factor models: ``implicit``'s blocked top-k on the factors (BLAS + a C++
      heap, ``threads`` wide), never a members × titles matrix;
    - popularity (every member scores alike): one ordering of the titles, and per
      member its first ``k`` not yet bought;
    - anything else: dense scores and ``top_n``.
    """

    def __init__(
        self, recommender: Recommender, placement: Placement, new_candidates: IdxArray, k: int, threads: int,
    ) -> None:  # fmt: skip
        self.recommender, self.placement, self.k, self.threads = recommender, placement, k, threads
        self.new_candidates = new_candidates
        self.factors: tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]] | None = None
        self.shared: npt.NDArray[np.float32] | None = None
        if isinstance(recommender, FactorRecommender):
            titles = recommender.title_factors
            if len(placement.cold_idx):
                titles = placement.fill_vectors(titles)
            self.factors = (np.asarray(recommender.member_factors), np.ascontiguousarray(titles))
        elif recommender.kind == "popularity":
            one = sp.csr_matrix((1, recommender.n_titles), dtype=np.float32)
            self.shared = placement.fill_scores(recommender.score(np.zeros(1, dtype=np.int64), one))[0]
            self.order = np.lexsort((np.arange(len(self.shared)), -self.shared))
            if len(new_candidates):
                pos, _ = top_n(self.shared[None, new_candidates], k)
                self.shared_new = np.where(pos >= 0, new_candidates[np.maximum(pos, 0)], -1)[0]

    def rank(self, idx: IdxArray, rows: sp.csr_matrix, new_rows: IdxArray) -> tuple[IdxArray, IdxArray]:
        """(top k of all titles, bought ones left out; top k among the new titles for ``new_rows``)."""
        if self.factors is not None:
            return self._rank_factors(idx, rows, new_rows)
        if self.shared is not None:
            return self._rank_shared(rows, new_rows)
        scores = self.placement.fill_scores(self.recommender.score(idx, rows))
        ids, _ = top_n(scores, self.k, liked=rows)
        new_ids = np.empty((0, self.k), dtype=np.int64)
        if len(new_rows) and len(self.new_candidates):
            pos, _ = top_n(scores[np.ix_(new_rows, self.new_candidates)], self.k)
            new_ids = np.where(pos >= 0, self.new_candidates[np.maximum(pos, 0)], -1)
        return ids, new_ids

    def _rank_factors(self, idx: IdxArray, rows: sp.csr_matrix, new_rows: IdxArray) -> tuple[IdxArray, IdxArray]:
        assert self.factors is not None
        members, titles = self.factors
        query = np.ascontiguousarray(members[idx], dtype=np.float32)
        k = min(self.k, titles.shape[0])
        pos, best = topk(titles, query, k, filter_query_items=_structure(rows), num_threads=self.threads)
        ids = np.asarray(pos, dtype=np.int64)
        ids[~np.isfinite(best)] = -1
        new_ids = np.empty((0, self.k), dtype=np.int64)
        if len(new_rows) and len(self.new_candidates):
            k_new = min(self.k, len(self.new_candidates))
            candidates = np.ascontiguousarray(titles[self.new_candidates])
            pos, best = topk(candidates, query[new_rows], k_new, num_threads=self.threads)
            new_ids = np.where(np.isfinite(best), self.new_candidates[np.asarray(pos, dtype=np.int64)], -1)
        return ids, new_ids

    def _rank_shared(self, rows: sp.csr_matrix, new_rows: IdxArray) -> tuple[IdxArray, IdxArray]:
        assert self.shared is not None
        bought = np.diff(rows.indptr)
        head = self.order[: self.k + (int(bought.max()) if len(bought) else 0)]
        scores = np.broadcast_to(self.shared[head], (rows.shape[0], len(head))).copy()
        scores[_structure(rows)[:, head].toarray() > 0] = -np.inf
        pos, _ = top_n(scores, self.k)
        ids = np.where(pos >= 0, head[np.maximum(pos, 0)], -1)
        new_ids = np.empty((0, self.k), dtype=np.int64)
        if len(new_rows) and len(self.new_candidates):
            new_ids = np.broadcast_to(self.shared_new, (len(new_rows), len(self.shared_new)))
        return ids, new_ids


def _hits(ranked: IdxArray, members: IdxArray, truth: sp.csr_matrix, k: int) -> npt.NDArray[np.bool_]:
    """members × k: is the title at each place in the member's row of ``truth`` (CSR, sorted)?"""
    ranked = np.asarray(ranked, dtype=np.int64)[:, :k]
    n_titles = truth.shape[1]
    rows = np.repeat(np.arange(truth.shape[0], dtype=np.int64), np.diff(truth.indptr))
    wanted = np.sort(rows * n_titles + truth.indices)
    codes = members[:, None] * n_titles + np.maximum(ranked, 0)
    found = np.searchsorted(wanted, codes)
    hits = wanted[np.minimum(found, len(wanted) - 1)] == codes if len(wanted) else np.zeros_like(codes, bool)
    hits &= ranked >= 0
    out = np.zeros((len(members), k), dtype=bool)
    out[:, : hits.shape[1]] = hits
    return out


def _truth_matrix(truth: dict[int, set[int]], shape: tuple[int, int]) -> sp.csr_matrix:
    rows = [m for m, ts in truth.items() for _ in ts]
    cols = [t for ts in truth.values() for t in ts]
    out = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=shape)
    out.sum_duplicates()
    out.sort_indices()
    return out


# ---- scoring one split ----------------------------------------------------------------
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


def scored_members(holdout: Holdout, sample: int, seed: int) -> IdxArray:
    """The warm members scored: all, or a seeded sample of ``sample`` (sorted)."""
    members = np.array(sorted(holdout.truth), dtype=np.int64)
    if sample and len(members) > sample:
        members = np.sort(np.random.default_rng(seed).choice(members, sample, replace=False))
    return members


def score_recommender(
    recommender: Recommender,
    member_titles: sp.csr_matrix,
    holdout: Holdout,
    placement: Placement,
    members: IdxArray,
    *,
    k: int,
    batch: int = 2048,
    threads: int = 0,
    on_batch: Callable[[int], None] | None = None,
) -> Scores:
    """Per-member ranking metrics of ``members`` (over all titles, bought ones left out),
    new-title recall of those of them who bought a new title, and coverage."""
    truth = _truth_matrix(holdout.truth, member_titles.shape)
    new_truth = _truth_matrix(holdout.new_truth, member_titles.shape)
    n_relevant = np.diff(truth.indptr)
    n_new = np.diff(new_truth.indptr)
    ranker = _Ranker(recommender, placement, holdout.new_candidates, k, threads)
    hits, new_hits, new_members, recommended = [], [], [], []
    for start in range(0, len(members), batch):
        idx = members[start : start + batch]
        rows = member_titles[idx]
        new_rows = np.flatnonzero(n_new[idx] > 0)
        ids, new_ids = ranker.rank(idx, rows, new_rows)
        recommended.append(ids)
        hits.append(_hits(ids, idx, truth, k))
        if len(new_rows):
            new_hits.append(_hits(new_ids, idx[new_rows], new_truth, k))
            new_members.append(idx[new_rows])
        if on_batch is not None:
            on_batch(len(idx))
    all_hits = np.concatenate(hits) if hits else np.zeros((0, k), dtype=bool)
    metrics = member_metrics(all_hits, n_relevant[members], k)
    new_idx = np.concatenate(new_members) if new_members else np.zeros(0, dtype=np.int64)
    new_all = np.concatenate(new_hits) if new_hits else np.zeros((0, k), dtype=bool)
    new_recall = member_metrics(new_all, n_new[new_idx], k, ["recall"])["recall"]
    all_ids = np.concatenate(recommended) if recommended else np.empty(0, dtype=np.int64)
    return Scores(metrics, new_recall, catalog_coverage(all_ids, member_titles.shape[1]))


def score_cold(
    split: Split, popularity: Recommender, settings: TrainingSettings, k: int, placement: Placement
) -> tuple[list[str], dict[str, dict[str, FloatArray]]]:
    """Cold members through the served model's cold start and through plain popularity."""
    cold: Sequence[ColdMember] = split.holdout.cold
    if settings.eval_members and len(cold) > settings.eval_members:
        keep = np.sort(np.random.default_rng(settings.seed).choice(len(cold), settings.eval_members, replace=False))
        cold = [cold[int(i)] for i in keep]
    if not cold:
        return [], {}
    train = split.train
    model = cold_start_model(train, settings, split.cutoff)
    titles = train.catalogue.titles
    ranked = np.full((len(cold), k), -1, dtype=np.int64)
    for i, member in enumerate(cold):
        recs = model.recommend(member.member_id, limit=k, declared_categories=member.declared)
        idx = titles.find_many([r.title_id for r in recs]) if recs else np.zeros(0, dtype=np.int64)
        ranked[i, : len(idx)] = idx
    empty = sp.csr_matrix((len(cold), train.member_titles.shape[1]), dtype=np.float32)
    pop_ranked, _ = _Ranker(popularity, placement, np.zeros(0, dtype=np.int64), k, 1).rank(
        np.zeros(len(cold), dtype=np.int64), empty, np.zeros(0, dtype=np.int64)
    )
    truth = _truth_matrix({i: set(m.bought) for i, m in enumerate(cold)}, empty.shape)
    rows = np.arange(len(cold), dtype=np.int64)
    n_relevant = np.diff(truth.indptr)
    out = {
        COLD_START: member_metrics(_hits(ranked, rows, truth, k), n_relevant, k),
        "popularity": member_metrics(_hits(pop_ranked, rows, truth, k), n_relevant, k),
    }
    return [m.member_id for m in cold], out


def evaluate_split(
    split: Split,
    settings: TrainingSettings,
    kinds: Sequence[str],
    *,
    k: int,
    on_step: Step | None = None,
    fitted: dict[str, Recommender] | None = None,
    overrides: Mapping[str, TrainingSettings] | None = None,
    cold: bool = True,
    fit_seed: int | None = None,
) -> FoldScores:
    """Fit each recommender of ``kinds`` on the split and score it, per member.

    ``overrides[name]``: other settings for that entry (its ``model`` is the kind
    fitted; the split's matrix must be the one those settings build), e.g. the active
    configuration beside a new one. ``fit_seed``: the recommenders' random start
    (default ``settings.seed``; the members sampled always follow ``settings.seed``).
    Fitted recommenders are left in ``fitted`` when a dict is passed.
    """
    train, holdout = split.train, split.holdout
    placement = cold_placement(train, settings.cold_start_min_titles)
    context = FitContext(
        title_categories=train.catalogue.title_categories, threads=settings.threads, deterministic=True,
        seed=settings.seed if fit_seed is None else fit_seed,
    )  # fmt: skip
    members = scored_members(holdout, settings.eval_members, settings.seed)
    scores: dict[str, Scores] = {}
    popularity: Recommender | None = None
    for name in kinds:
        own = (overrides or {}).get(name)
        recommender = build_recommender(own.model if own else name, own or settings)
        if on_step:
            on_step(f"fit {name}", 0, 1)
        recommender.fit(train.member_titles, context)
        if fitted is not None:
            fitted[name] = recommender
        if recommender.kind == "popularity":
            popularity = recommender
        done = 0

        def advance(n: int, name: str = name) -> None:
            nonlocal done
            done += n
            if on_step:
                on_step(f"score {name}", done, len(members))

        scores[name] = score_recommender(
            recommender, train.member_titles, holdout, placement, members, k=k,
            batch=settings.eval_batch_members, threads=settings.threads, on_batch=advance,
        )  # fmt: skip
    cold_ids: list[str] = []
    cold_scores: dict[str, dict[str, FloatArray]] = {}
    if cold and holdout.cold:
        if popularity is None:
            popularity = build_recommender("popularity", settings)
            popularity.fit(train.member_titles, context)
        if on_step:
            on_step("score cold members", 0, 1)
        cold_ids, cold_scores = score_cold(split, popularity, settings, k, placement)
    ids = train.catalogue.members
    new_idx = [m for m in members.tolist() if m in holdout.new_truth]
    return FoldScores(
        cutoff=split.cutoff,
        end=split.end,
        member_ids=ids.to_ids(members.tolist()),
        new_member_ids=ids.to_ids(new_idx),
        scores=scores,
        cold_ids=cold_ids,
        cold=cold_scores,
        members={"warm": len(holdout.truth), "cold": len(holdout.cold), "repurchase_only": holdout.repurchase_only},
        details={
            "train": asdict(train.snapshot),
            "test_rows": holdout.test_rows,
            "test_members": len(holdout.truth),
            "scored_members": len(members),
            "new_title_members": len(holdout.new_truth),
            "new_title_candidates": len(holdout.new_candidates),
            "fitted_members": len(train.catalogue.members),
            "fitted_titles": len(train.catalogue.titles),
        },
        catalogue=train.catalogue,
    )


# ---- the report -----------------------------------------------------------------------
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


# ---- from the database ----------------------------------------------------------------
def fold_cutoffs(cutoff: dt.datetime, folds: int | None, holdout_days: int) -> list[dt.datetime]:
    """The test periods' starts: the one period after ``cutoff`` (``folds`` None), or the
    ``folds`` consecutive periods ending at ``cutoff``, oldest first."""
    if folds is None:
        return [cutoff]
    if folds < 1:
        raise ValueError(f"folds must be at least 1, not {folds}")
    step = dt.timedelta(days=holdout_days)
    return [cutoff - step * (folds - i) for i in range(folds)]


MATRIX_KEYS = ("weighting", "half_life_days", "recency_decay", "bm25_k1", "bm25_b", "window_years")


def matrix_key(settings: TrainingSettings) -> tuple[object, ...]:
    """The settings that shape the training matrix: configurations with equal keys share a split."""
    return tuple(getattr(settings, name) for name in MATRIX_KEYS)


def evaluate_fold(
    catalogue: Catalogue,
    lines: PurchaseArrays,
    sold_before_window: IdxArray,
    origin: dt.datetime,
    configs: Mapping[str, TrainingSettings],
    *,
    served: str,
    k: int,
    on_step: Step | None = None,
    fit_seed: int | None = None,
    cold: bool = True,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    fitted: dict[str, Recommender] | None = None,
) -> FoldScores:
    """One test period [origin, ``end``) (default origin + holdout_days), fitted on
    [``start``, origin) (default the window before origin): every configuration of
    ``configs`` (name → settings whose ``model`` is the recommender fitted) on its own
    matrix, all scored on the same members (a split per distinct matrix); cold members
    through the served configuration's split. ``sold_before_window``: keys of titles sold
    before the lines given."""
    base = configs[served] if served in configs else next(iter(configs.values()))
    end = end or origin + dt.timedelta(days=base.holdout_days)
    sold = np.union1d(sold_before_window, lines.title_key[lines.purchased_at < to_epoch(origin)])
    groups: dict[tuple[object, ...], list[str]] = {}
    for name, config in configs.items():
        groups.setdefault(matrix_key(config), []).append(name)
    merged: FoldScores | None = None
    for key, names in sorted(groups.items(), key=lambda item: served not in item[1]):
        settings = configs[names[0]]
        split = time_split(
            catalogue, lines, window_start=start or window_start(origin, settings), cutoff=origin, end=end,
            sold_before=sold, settings=settings, with_affinity=cold and merged is None,
        )  # fmt: skip
        one = evaluate_split(
            split, settings, names, k=k, on_step=on_step, overrides=configs, fit_seed=fit_seed,
            cold=cold and merged is None, fitted=fitted,
        )  # fmt: skip
        if merged is None:
            merged = one
        elif one.member_ids != merged.member_ids:
            raise ValueError(f"matrix settings {key} score other members than {matrix_key(base)}")
        else:
            merged.scores.update(one.scores)
    assert merged is not None
    merged.scores = {name: merged.scores[name] for name in configs}
    return merged


def default_configs(settings: TrainingSettings, kinds: Sequence[str]) -> dict[str, TrainingSettings]:
    """Every recommender of ``kinds`` with the same ``settings``."""
    return {kind: settings.model_copy(update={"model": kind}) for kind in kinds}


def evaluate(
    connection: Connection,
    catalogue: Catalogue,
    settings: TrainingSettings,
    cutoff: dt.datetime,
    *,
    k: int | None = None,
    kinds: Sequence[str] | None = None,
    on_step: Step | None = None,
    folds: int | None = None,
    served: str | None = None,
    configs: Mapping[str, TrainingSettings] | None = None,
    resamples: int = RESAMPLES,
) -> EvaluationReport:
    """Every recommender on the test period after ``cutoff``, or on the ``folds``
    consecutive periods ending at it (each fitted on what came before it).

    ``configs``: each recommender's own settings (``bookclub tune``'s choice per
    recommender); default ``settings`` for every one of ``kinds``.
    """
    k = k or settings.k
    configs = dict(configs or default_configs(settings, list(kinds or settings.recommenders)))
    served = served or settings.model
    origins = fold_cutoffs(cutoff, folds, settings.holdout_days)
    step = dt.timedelta(days=settings.holdout_days)
    first_start = min(window_start(origins[0], c) for c in configs.values())
    lines = read_purchase_log(
        connection, start=first_start, end=origins[-1] + step, batch_rows=settings.extract_batch_rows
    ).arrays
    before_window = titles_sold_before(connection, first_start)
    scored = [
        evaluate_fold(catalogue, lines, before_window, origin, configs, served=served, k=k, on_step=on_step)
        for origin in origins
    ]
    return EvaluationReport.of(
        scored, k, served=served, primary=settings.primary_metric, seed=settings.seed,
        resamples=resamples, cutoff=cutoff, with_folds=folds is not None,
    )  # fmt: skip
