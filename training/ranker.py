"""Top-k titles per member for the evaluation, fast: :class:`Ranker`.

:mod:`training.evaluate` ranks every scored member through it. The answers are those
of ``recsys.recommenders.top_n`` on the dense scores (up to the order of exact ties;
``tests/training/test_evaluate.py`` checks it), without ever building a members ×
titles matrix for the factor models, and with one ordering of the titles for
popularity, which scores every member alike.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from implicit.cpu.topk import topk

from recsys.affinity import Placement
from recsys.recommenders import BlendRecommender, FactorRecommender, Recommender, top_n
from recsys.recommenders.blend import mix, not_bought

IdxArray = npt.NDArray[np.int64]


def _structure(rows: sp.csr_matrix) -> sp.csr_matrix:
    """Ones where ``rows`` has an entry (``top_n``'s ``liked`` reads structure, not values)."""
    return sp.csr_matrix((np.ones(rows.nnz, dtype=np.float32), rows.indices, rows.indptr), shape=rows.shape)


class Ranker:
    """Top-k titles per member, three ways with the same answers as ``top_n`` on the
    dense scores (up to the order of exact ties):

    - factor models: ``implicit``'s blocked top-k on the factors (BLAS + a C++
      heap, ``threads`` wide), never a members × titles matrix;
    - popularity (every member scores alike): one ordering of the titles, and per
      member its first ``k`` not yet bought;
    - the blend: both components' dense scores, titles without sales placed in each
      (as the served model places them), standardised over the titles not bought and
      mixed (:func:`recsys.recommenders.blend.mix`), then ``top_n``;
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
        scores = self._dense(idx, rows)
        ids, _ = top_n(scores, self.k, liked=rows)
        new_ids = np.empty((0, self.k), dtype=np.int64)
        if len(new_rows) and len(self.new_candidates):
            pos, _ = top_n(scores[np.ix_(new_rows, self.new_candidates)], self.k)
            new_ids = np.where(pos >= 0, self.new_candidates[np.maximum(pos, 0)], -1)
        return ids, new_ids

    def _dense(self, idx: IdxArray, rows: sp.csr_matrix) -> npt.NDArray[np.float32]:
        """members × titles scores, titles without sales placed."""
        blend = self.recommender
        if not isinstance(blend, BlendRecommender):
            return self.placement.fill_scores(blend.score(idx, rows))
        als = self.placement.fill_scores(blend.als.score(idx, rows))
        knn = self.placement.fill_scores(blend.item_knn.score(idx, rows))
        return mix(als, knn, not_bought(rows), blend.weight)

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
