"""Baselines: overall popularity, and popularity within the member's categories."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from recsys.recommenders.base import (
    FitContext,
    IdxArray,
    Recommender,
    ScoreArray,
    check_member_titles,
    cosine_neighbours,
)

POPULARITY = "popularity.npy"
TITLE_CATEGORIES = "title_categories.npz"
CATEGORYLESS = 0.01  # affinity floor: categories first, then plain popularity


def title_popularity(member_titles: sp.csr_matrix) -> npt.NDArray[np.float32]:
    """Distinct buyers per title, ties broken by total confidence."""
    buyers = np.bincount(member_titles.indices, minlength=member_titles.shape[1])
    weight = np.asarray(member_titles.sum(axis=0)).ravel()
    top = float(weight.max()) if weight.size and weight.max() > 0 else 1.0
    return (buyers + 0.5 * weight / top).astype(np.float32)


class PopularityRecommender(Recommender):
    """Everyone gets the best-sellers of the training window."""

    kind = "popularity"

    def __init__(self) -> None:
        self.popularity: npt.NDArray[np.float32] = np.zeros(0, dtype=np.float32)

    @property
    def n_titles(self) -> int:
        return int(self.popularity.shape[0])

    def params(self) -> dict[str, Any]:
        return {}

    def fit(self, member_titles: sp.csr_matrix, context: FitContext) -> None:
        check_member_titles(member_titles)
        self.popularity = title_popularity(member_titles)

    def score(self, member_idx: IdxArray, member_titles: sp.csr_matrix) -> ScoreArray:
        return np.broadcast_to(self.popularity, (len(member_idx), self.n_titles)).copy()

    def similar_titles(self, title_idx: int, n: int = 10) -> tuple[IdxArray, ScoreArray]:
        # no notion of likeness: the best-sellers, the title itself left out
        scores = self.popularity[None, :].copy()
        scores[0, title_idx] = -np.inf
        from recsys.recommenders.base import top_n

        ids, best = top_n(scores, n)
        return ids[0], best[0]

    def _save_state(self, directory: Path) -> None:
        np.save(directory / POPULARITY, self.popularity)

    def _load_state(self, directory: Path) -> None:
        self.popularity = np.load(directory / POPULARITY)


class CategoryPopularityRecommender(PopularityRecommender):
    """Best-sellers weighted by the member's smoothed share of each of the title's categories."""

    kind = "category_popularity"

    def __init__(self, prior: float = 5.0) -> None:
        super().__init__()
        self.prior = prior
        self.title_categories = sp.csr_matrix((0, 0), dtype=np.float32)
        self.global_share: npt.NDArray[np.float32] = np.zeros(0, dtype=np.float32)

    def params(self) -> dict[str, Any]:
        return {"prior": self.prior}

    def fit(self, member_titles: sp.csr_matrix, context: FitContext) -> None:
        super().fit(member_titles, context)
        if context.title_categories is None:
            raise ValueError("category_popularity needs title_categories in the FitContext")
        if context.title_categories.shape[0] != member_titles.shape[1]:
            raise ValueError("title_categories must have one row per title column")
        self.title_categories = sp.csr_matrix(context.title_categories, dtype=np.float32)
        mass = np.asarray(member_titles.sum(axis=0)).ravel() @ self.title_categories
        total = float(np.asarray(mass).sum())
        self.global_share = (np.asarray(mass) / total if total > 0 else mass).astype(np.float32)

    def member_shares(self, member_titles: sp.csr_matrix) -> npt.NDArray[np.float32]:
        """members × categories smoothed shares from the members' purchase rows."""
        weights = np.asarray((member_titles @ self.title_categories).todense(), dtype=np.float32)
        levels_total = np.asarray(self.title_categories.sum(axis=1)).ravel()
        totals = np.asarray(member_titles @ (levels_total > 0).astype(np.float32)).ravel()
        denom = (totals + self.prior)[:, None]
        shares: npt.NDArray[np.float32] = (
            (weights + self.prior * self.global_share[None, :]) / np.maximum(denom, 1e-9)
        ).astype(np.float32)
        return shares

    def score(self, member_idx: IdxArray, member_titles: sp.csr_matrix) -> ScoreArray:
        shares = self.member_shares(member_titles)
        affinity = np.asarray(self.title_categories @ shares.T).T
        # a title with no category still ranks by popularity, behind the member's classes
        return ((CATEGORYLESS + affinity) * self.popularity[None, :]).astype(np.float32)

    def similar_titles(self, title_idx: int, n: int = 10) -> tuple[IdxArray, ScoreArray]:
        profile = self.title_categories.toarray() * np.log1p(self.popularity)[:, None]
        return cosine_neighbours(profile.astype(np.float32), title_idx, n)

    def _save_state(self, directory: Path) -> None:
        super()._save_state(directory)
        sp.save_npz(directory / TITLE_CATEGORIES, self.title_categories)
        np.save(directory / "global_share.npy", self.global_share)

    def _load_state(self, directory: Path) -> None:
        super()._load_state(directory)
        self.title_categories = sp.load_npz(directory / TITLE_CATEGORIES).tocsr()
        self.global_share = np.load(directory / "global_share.npy")
