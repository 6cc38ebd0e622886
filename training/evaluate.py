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
interval (the same resampled members for both: :mod:`training.metrics.bootstrap`) —
all of it pooled from the per-member scores by :mod:`training.evaluation_report`.

``folds`` = N: rolling origin. The test periods are the N consecutive periods of
``holdout_days`` (h) that end at ``cutoff`` — [cutoff − N·h, cutoff − (N−1)·h), …,
[cutoff − h, cutoff) — each fitted only on what came before it; the report gives each
fold and the pooled figures (a member in several folds is one resampling unit, its
values summed). Without folds the one test period is [cutoff, cutoff + h), as it always
was. ``bookclub tune --cutoff T`` validates on folds ending at T, so ``evaluate --cutoff
T + N·h --folds N`` scores its choice on periods it never saw.

Equal scores are ranked by lower title index (``recsys.recommenders.top_n``), except
in the factor models' blocked top-k (implicit's heap, :mod:`training.ranker`), where
exact ties are titles placed in the same category: they share one score whatever their
order.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from sqlalchemy import Connection

from recsys.affinity import Placement
from recsys.recommenders import (
    ALSRecommender,
    BlendRecommender,
    FitContext,
    ItemKNNRecommender,
    Recommender,
    build_recommender,
)
from recsys.settings import TrainingSettings
from recsys.storage.purchase_log import PurchaseArrays, read_purchase_log, titles_sold_before, to_epoch
from training.dataset import Catalogue, window_start
from training.evaluation_report import COLD_START, EvaluationReport, FoldScores, Scores
from training.metrics.bootstrap import RESAMPLES
from training.metrics.coverage import catalog_coverage
from training.metrics.ranking import member_metrics
from training.ranker import Ranker
from training.served import cold_placement, cold_start_model
from training.split import ColdMember, Holdout, Split, time_split

Step = Callable[[str, int, int], None]  # (what, done, total)
FloatArray = npt.NDArray[np.float64]
IdxArray = npt.NDArray[np.int64]


# ---- scoring one split ----------------------------------------------------------------
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
    ranker = Ranker(recommender, placement, holdout.new_candidates, k, threads)
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
    pop_ranked, _ = Ranker(popularity, placement, np.zeros(0, dtype=np.int64), k, 1).rank(
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
    Fitted recommenders are left in ``fitted`` when a dict is passed. A blend whose ALS and
    item-kNN settings are those of a recommender fitted before it on this split (its own
    entry, or another blend's component) reuses that fit (:func:`_reuse_components`).
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
    fits: dict[tuple[str, str], Recommender] = {}  # fitted on this split, by kind and settings
    for name in kinds:
        own = (overrides or {}).get(name)
        recommender = build_recommender(own.model if own else name, own or settings)
        _reuse_components(recommender, fits)
        if on_step:
            on_step(f"fit {name}", 0, 1)
        recommender.fit(train.member_titles, context)
        fits[_fit_key(recommender)] = recommender
        if isinstance(recommender, BlendRecommender):
            fits.setdefault(_fit_key(recommender.als), recommender.als)
            fits.setdefault(_fit_key(recommender.item_knn), recommender.item_knn)
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


def _fit_key(recommender: Recommender) -> tuple[str, str]:
    return recommender.kind, json.dumps(recommender.params(), sort_keys=True)


def _reuse_components(recommender: Recommender, done: Mapping[tuple[str, str], Recommender]) -> None:
    """A blend takes the ALS and item-kNN already fitted on the split with its components'
    settings (the same fit it would make: same matrix, same seed)."""
    if not isinstance(recommender, BlendRecommender):
        return
    als, knn = done.get(_fit_key(recommender.als)), done.get(_fit_key(recommender.item_knn))
    recommender.use_fitted(
        als if isinstance(als, ALSRecommender) else None, knn if isinstance(knn, ItemKNNRecommender) else None
    )


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
