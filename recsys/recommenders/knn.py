"""Item-kNN from ``implicit``: cosine or BM25 similarity between titles."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp
from implicit.nearest_neighbours import BM25Recommender, CosineRecommender
from implicit.utils import ParameterWarning

from recsys.recommenders.base import (
    FitContext,
    IdxArray,
    Recommender,
    ScoreArray,
    check_member_titles,
    top_n,
)

SIMILARITY = "title_similarity.npz"


class ItemKNNRecommender(Recommender):
    """Score = Σ over the member's titles of confidence × similarity (``K`` neighbours kept)."""

    kind = "item_knn"

    def __init__(
        self, neighbours: int = 100, similarity: Literal["cosine", "bm25"] = "cosine"
    ) -> None:
        self.neighbours, self.similarity_kind = neighbours, similarity
        self.similarity = sp.csr_matrix((0, 0), dtype=np.float32)

    @property
    def n_titles(self) -> int:
        return int(self.similarity.shape[0])

    def params(self) -> dict[str, Any]:
        return {"neighbours": self.neighbours, "similarity": self.similarity_kind}

    def fit(self, member_titles: sp.csr_matrix, context: FitContext) -> None:
        check_member_titles(member_titles)
        model: CosineRecommender | BM25Recommender
        if self.similarity_kind == "bm25":
            model = BM25Recommender(K=self.neighbours, num_threads=context.threads)
        else:
            model = CosineRecommender(K=self.neighbours, num_threads=context.threads)
        with warnings.catch_warnings():  # implicit converts its own COO product to CSR
            warnings.simplefilter("ignore", category=ParameterWarning)
            model.fit(member_titles.astype(np.float64), show_progress=context.show_progress)
        self.similarity = sp.csr_matrix(model.similarity, dtype=np.float32)

    def score(self, member_idx: IdxArray, member_titles: sp.csr_matrix) -> ScoreArray:
        return np.asarray((member_titles @ self.similarity).todense(), dtype=np.float32)

    def similar_titles(self, title_idx: int, n: int = 10) -> tuple[IdxArray, ScoreArray]:
        row = self.similarity.getrow(title_idx).toarray().astype(np.float32)
        row[row == 0] = -np.inf
        row[0, title_idx] = -np.inf
        ids, best = top_n(row, n)
        keep = ids[0] >= 0
        return ids[0][keep], best[0][keep]

    def _save_state(self, directory: Path) -> None:
        sp.save_npz(directory / SIMILARITY, self.similarity)

    def _load_state(self, directory: Path) -> None:
        self.similarity = sp.load_npz(directory / SIMILARITY).tocsr()
