"""Matrix-factorisation recommenders from ``implicit``: ALS (the default) and BPR.

Factors are saved as plain ``.npy`` (``member_factors.npy``, ``title_factors.npy``)
so serving can memory-map them and share them between workers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from implicit.cpu.als import AlternatingLeastSquares
from implicit.cpu.bpr import BayesianPersonalizedRanking
from threadpoolctl import threadpool_limits

from recsys.recommenders.base import (
    FactorsNaNError,
    FitContext,
    IdxArray,
    Recommender,
    ScoreArray,
    check_member_titles,
    cosine_neighbours,
)

MEMBER_FACTORS = "member_factors.npy"
TITLE_FACTORS = "title_factors.npy"

FloatMatrix = npt.NDArray[np.float32]


class FactorRecommender(Recommender):
    """Scores are dot products of member and title factor rows."""

    def __init__(self) -> None:
        self.member_factors: FloatMatrix = np.zeros((0, 0), dtype=np.float32)
        self.title_factors: FloatMatrix = np.zeros((0, 0), dtype=np.float32)

    @property
    def n_titles(self) -> int:
        return int(self.title_factors.shape[0])

    def _store(self, member_factors: Any, title_factors: Any) -> None:
        members = np.ascontiguousarray(member_factors, dtype=np.float32)
        titles = np.ascontiguousarray(title_factors, dtype=np.float32)
        if not (np.isfinite(members).all() and np.isfinite(titles).all()):
            raise FactorsNaNError(
                f"{self.kind} produced NaN factors: raise regularization or lower alpha"
            )
        self.member_factors, self.title_factors = members, titles

    def score(self, member_idx: IdxArray, member_titles: sp.csr_matrix) -> ScoreArray:
        return np.asarray(self.member_factors[member_idx] @ self.title_factors.T, dtype=np.float32)

    def similar_titles(self, title_idx: int, n: int = 10) -> tuple[IdxArray, ScoreArray]:
        return cosine_neighbours(self.title_factors, title_idx, n)

    def _save_state(self, directory: Path) -> None:
        np.save(directory / MEMBER_FACTORS, self.member_factors)
        np.save(directory / TITLE_FACTORS, self.title_factors)

    def _load_state(self, directory: Path) -> None:
        self.member_factors = np.load(directory / MEMBER_FACTORS, mmap_mode="r")
        self.title_factors = np.load(directory / TITLE_FACTORS)


class ALSRecommender(FactorRecommender):
    """``implicit`` ALS: a bought title's confidence is ``alpha × weight`` (implicit 0.7
    multiplies the matrix by ``alpha``; there is no ``1 +``), every other title's is 1."""

    kind = "als"

    def __init__(
        self,
        factors: int = 64,
        regularization: float = 0.05,
        alpha: float = 2.0,
        iterations: int = 15,
    ) -> None:
        super().__init__()
        self.factors, self.regularization = factors, regularization
        self.alpha, self.iterations = alpha, iterations

    def params(self) -> dict[str, Any]:
        return {
            "factors": self.factors,
            "regularization": self.regularization,
            "alpha": self.alpha,
            "iterations": self.iterations,
        }

    def _als(self, *, iterations: int, threads: int, seed: int | None = None) -> AlternatingLeastSquares:
        # implicit warns and slows down when BLAS runs threads of its own under its threads
        with threadpool_limits(1, "blas"):
            return AlternatingLeastSquares(
                factors=self.factors,
                regularization=self.regularization,
                alpha=self.alpha,
                iterations=iterations,
                random_state=seed,
                num_threads=threads,
                calculate_training_loss=False,
            )

    def implicit_model(self, threads: int = 0) -> AlternatingLeastSquares:
        """An ``implicit`` ALS holding these factors (for ``explain`` and ``recalculate_user``)."""
        model = self._als(iterations=self.iterations, threads=threads)
        model.user_factors = self.member_factors
        model.item_factors = self.title_factors
        return model

    def fit(self, member_titles: sp.csr_matrix, context: FitContext) -> None:
        check_member_titles(member_titles)
        model = self._als(iterations=self.iterations, threads=context.threads, seed=context.seed)
        with threadpool_limits(1, "blas"):
            model.fit(member_titles, show_progress=context.show_progress)
        self._store(model.user_factors, model.item_factors)

    def refine(self, member_titles: sp.csr_matrix, context: FitContext, iterations: int) -> None:
        """``iterations`` more ALS sweeps on ``member_titles``, starting from the current factors.

        Used to bring a model fitted on an earlier window up to date: from a good
        start ALS converges in a few sweeps instead of ``self.iterations``.
        """
        check_member_titles(member_titles, self.n_titles)
        if member_titles.shape[0] != self.member_factors.shape[0]:
            raise ValueError("refine needs the same members (rows) as the fitted model")
        model = self._als(iterations=iterations, threads=context.threads, seed=context.seed)
        model.user_factors = np.array(self.member_factors, dtype=np.float32)
        model.item_factors = np.array(self.title_factors, dtype=np.float32)
        with threadpool_limits(1, "blas"):
            model.fit(member_titles, show_progress=context.show_progress)
        self._store(model.user_factors, model.item_factors)


class BPRRecommender(FactorRecommender):
    """``implicit`` Bayesian Personalized Ranking (factors carry a bias column)."""

    kind = "bpr"

    def __init__(
        self,
        factors: int = 64,
        learning_rate: float = 0.01,
        regularization: float = 0.01,
        iterations: int = 100,
    ) -> None:
        super().__init__()
        self.factors, self.learning_rate = factors, learning_rate
        self.regularization, self.iterations = regularization, iterations

    def params(self) -> dict[str, Any]:
        return {
            "factors": self.factors,
            "learning_rate": self.learning_rate,
            "regularization": self.regularization,
            "iterations": self.iterations,
        }

    def fit(self, member_titles: sp.csr_matrix, context: FitContext) -> None:
        check_member_titles(member_titles)
        model = BayesianPersonalizedRanking(
            factors=self.factors,
            learning_rate=self.learning_rate,
            regularization=self.regularization,
            iterations=self.iterations,
            num_threads=1 if context.deterministic else context.threads,
            random_state=context.seed,
        )
        with threadpool_limits(1, "blas"):
            model.fit(member_titles, show_progress=context.show_progress)
        self._store(model.user_factors, model.item_factors)
