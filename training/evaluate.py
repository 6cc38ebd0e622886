"""Time-based evaluation: train before a cutoff, test on the following ``holdout_days``.

Every recommender is fitted on the same training matrix and scored on the same
test members in one run. A member is scored on the titles they bought in the
test period that they had not bought in the training window; members with no
training history are left to the cold-start path and not scored here.
Separately, new-title recall: among titles never sold before the cutoff (the
new releases), how many of a member's new-title purchases does the
recommender's ranking of only those titles put in the top k.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from implicit.cpu.topk import topk
from sqlalchemy import Connection

from recsys.affinity import Placement, place_titles
from recsys.recommenders import (
    FactorRecommender,
    FitContext,
    Recommender,
    build_recommender,
    top_n,
)
from recsys.settings import TrainingSettings
from recsys.storage.purchase_log import (
    PurchaseArrays,
    read_purchase_log,
    read_purchases,
    titles_sold_before,
    to_epoch,
)
from training.dataset import Catalogue, TrainingSet, build_training_set, window_start
from training.metrics.coverage import catalog_coverage
from training.metrics.ranking import RankingAccumulator

Step = Callable[[str, int, int], None]  # (what, done, total)


@dataclass(frozen=True)
class Holdout:
    """What members bought after the cutoff, as matrix positions."""

    truth: dict[int, set[int]]  # member_idx → titles bought in the test period, new to them
    new_truth: dict[int, set[int]]  # member_idx → new titles (no sale before the cutoff) bought
    new_candidates: npt.NDArray[np.int64]  # titles with no sale before the cutoff
    test_rows: int


@dataclass
class EvaluationReport:
    cutoff: str
    k: int
    results: dict[str, dict[str, float]] = field(default_factory=dict)
    new_titles: dict[str, dict[str, float]] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` object: cutoff, k, results, new_titles."""
        return {
            "cutoff": self.cutoff,
            "k": self.k,
            "results": self.results,
            "new_titles": self.new_titles,
        }

    @classmethod
    def of(
        cls,
        cutoff: dt.datetime,
        k: int,
        train: TrainingSet,
        holdout: Holdout,
        results: dict[str, dict[str, float]],
        new_titles: dict[str, dict[str, float]],
    ) -> EvaluationReport:
        """The report of one run: metrics plus what they were measured on."""
        return cls(
            cutoff=cutoff.date().isoformat() if cutoff.time() == dt.time() else cutoff.isoformat(),
            k=k,
            results=results,
            new_titles=new_titles,
            details={
                "train": asdict(train.snapshot),
                "test_rows": holdout.test_rows,
                "test_members": len(holdout.truth),
                "new_title_members": len(holdout.new_truth),
                "new_title_candidates": len(holdout.new_candidates),
            },
        )


def build_holdout(
    connection: Connection,
    train: TrainingSet,
    cutoff: dt.datetime,
    holdout_days: int,
    batch_rows: int = 200_000,
) -> Holdout:
    """The ``holdout_days`` after ``cutoff``, read from the database."""
    end = cutoff + dt.timedelta(days=holdout_days)
    test = read_purchases(connection, cutoff, end, batch_rows=batch_rows)
    return holdout_from(train, test, titles_sold_before(connection, cutoff))


def holdout_from(
    train: TrainingSet, test: PurchaseArrays, sold_before_keys: npt.NDArray[np.int64]
) -> Holdout:
    """Ground truth from the test lines: per member, titles bought that they had not bought."""
    catalogue = train.catalogue
    bought = test.quantity > 0
    shape = train.member_titles.shape
    members = catalogue.member_idx(test.member_key[bought])
    titles = catalogue.title_idx(test.title_key[bought])
    sold_before = np.zeros(len(catalogue.titles), dtype=bool)
    if len(sold_before_keys):
        sold_before[catalogue.title_idx(sold_before_keys)] = True
    bought_after = sp.csr_matrix((np.ones(len(members), dtype=np.float32), (members, titles)), shape=shape)
    bought_after.sum_duplicates()
    history = train.member_titles
    has_history = (np.diff(history.indptr) > 0).astype(np.float32)
    # titles bought after the cutoff, not bought before, by members with history
    fresh = bought_after - bought_after.multiply(history > 0)
    fresh = sp.csr_matrix(sp.diags(has_history) @ fresh)
    fresh.eliminate_zeros()
    truth: dict[int, set[int]] = {}
    new_truth: dict[int, set[int]] = {}
    for m in np.flatnonzero(np.diff(fresh.indptr)).tolist():
        row = fresh.indices[fresh.indptr[m] : fresh.indptr[m + 1]]
        truth[m] = set(row.tolist())
        new = row[~sold_before[row]]
        if new.size:
            new_truth[m] = set(new.tolist())
    return Holdout(truth, new_truth, np.flatnonzero(~sold_before).astype(np.int64), len(test))


def cold_placement(train: TrainingSet, min_titles: int) -> Placement:
    """Titles with no sales in the training window borrow from their category's titles."""
    warm = np.bincount(train.member_titles.indices, minlength=train.member_titles.shape[1]) > 0
    return place_titles(
        train.catalogue.title_categories,
        train.catalogue.categories.levels,
        warm,
        np.flatnonzero(~warm).astype(np.int64),
        min_titles=min_titles,
    )


def _structure(rows: sp.csr_matrix) -> sp.csr_matrix:
    """Ones where ``rows`` has an entry (``top_n``'s ``liked`` reads structure, not values)."""
    ones = sp.csr_matrix((np.ones(rows.nnz, dtype=np.float32), rows.indices, rows.indptr), shape=rows.shape)
    return ones


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
        self, recommender: Recommender, placement: Placement, new_candidates: npt.NDArray[np.int64], k: int,
        threads: int,
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
            self.order = np.argsort(-self.shared, kind="stable")
            if len(new_candidates):
                pos, _ = top_n(self.shared[None, new_candidates], k)
                self.shared_new = np.where(pos >= 0, new_candidates[np.maximum(pos, 0)], -1)[0]

    def rank(
        self, idx: npt.NDArray[np.int64], rows: sp.csr_matrix, new_rows: npt.NDArray[np.int64]
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
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

    def _rank_factors(
        self, idx: npt.NDArray[np.int64], rows: sp.csr_matrix, new_rows: npt.NDArray[np.int64]
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
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

    def _rank_shared(
        self, rows: sp.csr_matrix, new_rows: npt.NDArray[np.int64]
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
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


def score_recommender(
    recommender: Recommender,
    member_titles: sp.csr_matrix,
    holdout: Holdout,
    placement: Placement,
    *,
    k: int,
    batch: int = 2048,
    sample: int = 0,
    seed: int = 0,
    threads: int = 0,
    on_batch: Callable[[int], None] | None = None,
) -> tuple[dict[str, float], dict[str, float]]:
    """(ranking metrics and coverage over all titles, recall@k among new titles only).

    ``sample`` > 0 scores a seeded random sample of that many test members.
    """
    members = np.array(sorted(holdout.truth), dtype=np.int64)
    if sample and len(members) > sample:
        members = np.sort(np.random.default_rng(seed).choice(members, sample, replace=False))
    acc, acc_new = RankingAccumulator(k), RankingAccumulator(k, ["recall"])
    ranker = _Ranker(recommender, placement, holdout.new_candidates, k, threads)
    recommended: list[npt.NDArray[np.int64]] = []
    for start in range(0, len(members), batch):
        idx = members[start : start + batch]
        rows = member_titles[idx]
        new_rows = np.array([i for i, m in enumerate(idx.tolist()) if m in holdout.new_truth], dtype=np.int64)
        ids, new_ids = ranker.rank(idx, rows, new_rows)
        recommended.append(ids)
        for m, row in zip(idx.tolist(), ids.tolist(), strict=True):
            acc.add(row, holdout.truth[m])
        for i, row in zip(new_rows.tolist(), new_ids.tolist(), strict=False):
            acc_new.add(row, holdout.new_truth[int(idx[i])])
        if on_batch is not None:
            on_batch(len(idx))
    metrics = acc.means()
    all_ids = np.concatenate(recommended) if recommended else np.empty(0, dtype=np.int64)
    metrics[f"coverage@{k}"] = catalog_coverage(all_ids, member_titles.shape[1])
    return metrics, acc_new.means()


def evaluate_on(
    train: TrainingSet,
    holdout: Holdout,
    settings: TrainingSettings,
    kinds: Sequence[str],
    *,
    k: int,
    on_step: Step | None = None,
    fitted: dict[str, Recommender] | None = None,
) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, float]]]:
    """Fit each recommender of ``kinds`` on ``train`` and score it on ``holdout``.

    Fitted recommenders are left in ``fitted`` (by kind) when a dict is passed.
    """
    placement = cold_placement(train, settings.cold_start_min_titles)
    context = FitContext(
        title_categories=train.catalogue.title_categories,
        seed=settings.seed,
        threads=settings.threads,
    )
    results: dict[str, dict[str, float]] = {}
    new_titles: dict[str, dict[str, float]] = {}
    n_members = min(len(holdout.truth), settings.eval_members or len(holdout.truth))
    for kind in kinds:
        recommender = build_recommender(kind, settings)
        if on_step:
            on_step(f"fit {kind}", 0, 1)
        recommender.fit(train.member_titles, context)
        if fitted is not None:
            fitted[kind] = recommender
        done = 0

        def advance(n: int, kind: str = kind) -> None:
            nonlocal done
            done += n
            if on_step:
                on_step(f"score {kind}", done, n_members)

        results[kind], new_titles[kind] = score_recommender(
            recommender,
            train.member_titles,
            holdout,
            placement,
            k=k,
            batch=settings.eval_batch_members,
            sample=settings.eval_members,
            seed=settings.seed,
            threads=settings.threads,
            on_batch=advance,
        )
    return results, new_titles


def evaluate(
    connection: Connection,
    catalogue: Catalogue,
    settings: TrainingSettings,
    cutoff: dt.datetime,
    *,
    k: int | None = None,
    kinds: Sequence[str] | None = None,
    on_step: Step | None = None,
) -> EvaluationReport:
    """Train every recommender before ``cutoff``, test on the next ``holdout_days``."""
    k = k or settings.k
    kinds = list(kinds or settings.recommenders)
    # one read for the window and the holdout, split here
    start = window_start(cutoff, settings)
    end = cutoff + dt.timedelta(days=settings.holdout_days)
    lines = read_purchase_log(connection, start=start, end=end, batch_rows=settings.extract_batch_rows).arrays
    early = lines.purchased_at < to_epoch(cutoff)
    purchases = lines.subset(early)
    train = build_training_set(catalogue, purchases, window_start=start, cutoff=cutoff, settings=settings)
    sold_before = np.union1d(titles_sold_before(connection, start), purchases.title_key)
    holdout = holdout_from(train, lines.subset(~early), sold_before)
    results, new_titles = evaluate_on(train, holdout, settings, kinds, k=k, on_step=on_step)
    return EvaluationReport.of(cutoff, k, train, holdout, results, new_titles)
