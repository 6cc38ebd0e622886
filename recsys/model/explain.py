"""Why a member's ALS score for a title is high: its decomposition over the member's history.

For implicit ALS (Hu, Koren, Volinsky 2008, section 5) a member's vector is
``x_u = W_u Yᵀ C_u p_u`` with ``W_u = (YᵀC_uY + λI)⁻¹``, so the score of title
``i`` splits over the titles ``j`` of the history::

    score(u, i) = Σ_j c_uj · y_jᵀ W_u y_i

This module builds ``YᵀC_uY + λI`` once per member (from a precomputed ``YᵀY + λI``)
and scores every (history title, returned title) pair in one matrix product:
the same numbers as ``implicit``'s ``AlternatingLeastSquares.explain``, without
a Cholesky solve and a Python loop per returned title. The same factorisation
also folds purchases made since training into the member's vector (what
``recalculate_user`` does).

Matrix convention: ``title_factors`` is titles × k (row ``title_idx``);
``history`` is title indices, ``confidence`` their confidences (already × alpha).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.linalg
import scipy.linalg.lapack

FloatArray = npt.NDArray[np.float32]
IdxArray = npt.NDArray[np.int64]


def gram(title_factors: FloatArray, regularization: float = 0.0) -> npt.NDArray[np.float64]:
    """``YᵀY + λI`` (k × k), computed once per set of title factors."""
    y = np.asarray(title_factors, dtype=np.float64)
    out: npt.NDArray[np.float64] = y.T @ y + regularization * np.eye(y.shape[1])
    return out


def _cholesky(a: npt.NDArray[np.float64]) -> tuple[npt.NDArray[np.float64], bool]:
    """``scipy.linalg.cho_factor(a, check_finite=False)`` (upper), straight from LAPACK: the
    wrapper's checks cost as much as the k × k factorisation, once per request."""
    c, info = scipy.linalg.lapack.dpotrf(a, lower=False, clean=False)
    if info != 0:
        raise np.linalg.LinAlgError(f"{info}-th leading minor not positive definite")
    return c, False


def _solve(cho: tuple[npt.NDArray[np.float64], bool], b: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """``scipy.linalg.cho_solve(cho, b, check_finite=False)``, straight from LAPACK."""
    x, info = scipy.linalg.lapack.dpotrs(cho[0], b, lower=cho[1])
    if info != 0:
        raise ValueError(f"illegal value in argument {-info} of dpotrs")
    out: npt.NDArray[np.float64] = x
    return out


@dataclass(frozen=True)
class MemberSystem:
    """One member's ALS normal equations, factorised: ``A = YᵀC_uY + λI`` and ``b = YᵀC_u p_u``."""

    history: IdxArray  # title indices with confidence > 0
    confidence: npt.NDArray[np.float64]  # their confidences (× alpha)
    factors: npt.NDArray[np.float64]  # history × k
    cho: tuple[npt.NDArray[np.float64], bool]
    b: npt.NDArray[np.float64]

    @classmethod
    def build(
        cls,
        title_factors: FloatArray,
        base: npt.NDArray[np.float64],
        history: IdxArray,
        confidence: npt.NDArray[np.float64],
    ) -> MemberSystem:
        """As ``implicit.cpu.als.user_linear_equation``, from ``base = gram(Y, λ)``: negative
        confidences count as |c| in A only."""
        if history.shape != confidence.shape:
            raise ValueError(f"history {history.shape} and confidence {confidence.shape} differ")
        y = np.asarray(title_factors[history], dtype=np.float64)
        a = base + (y.T * (np.abs(confidence) - 1.0)) @ y
        b = y.T @ np.where(confidence > 0, confidence, 0.0)
        keep = np.flatnonzero(confidence > 0)
        keep = keep[np.argsort(-history[keep])]  # by descending title index
        return cls(history[keep], confidence[keep], y[keep], _cholesky(a), b)

    def member_vector(self) -> FloatArray:
        """``x_u = A⁻¹ b``: the member's factors re-solved against the current history."""
        out: FloatArray = _solve(self.cho, self.b).astype(np.float32)
        return out

    def contributions(self, title_factors: FloatArray, targets: IdxArray) -> npt.NDArray[np.float64]:
        """history × targets: ``c_uj · y_jᵀ W_u y_i``, one column per target title."""
        targets_t = np.asarray(title_factors[targets], np.float64).T
        weighted = _solve(self.cho, targets_t)
        out: npt.NDArray[np.float64] = (self.factors @ weighted) * self.confidence[:, None]
        return out

    def top_reasons(self, title_factors: FloatArray, targets: IdxArray, n: int) -> list[list[int]]:
        """Per target: up to ``n`` history titles with the largest positive contribution, best first.

        Ties are broken as ``implicit``'s heap does (the larger title index first).
        """
        if not len(targets) or not len(self.history):
            return [[] for _ in targets]
        contrib = self.contributions(title_factors, targets)
        cols = np.arange(contrib.shape[1])
        if len(self.history) > n:  # the n largest per column, then only those sorted
            part = np.argpartition(-contrib, n - 1, axis=0)[:n]
            order = part[np.argsort(-contrib[part, cols], axis=0, kind="stable"), cols]
        else:
            order = np.argsort(-contrib, axis=0, kind="stable")
        # descending score (exact ties, which trained factors do not produce, break either way
        # once partitioned; sorted whole, the history's descending title index breaks them)
        best = self.history[order].T.tolist()
        positive = (contrib[order, cols] > 0).T.tolist()
        return [[t for t, p in zip(ts, ps, strict=True) if p] for ts, ps in zip(best, positive, strict=True)]

def history_reasons(
    title_factors: FloatArray,
    targets: IdxArray,
    history: IdxArray,
    system: MemberSystem | None,
    n: int,
) -> list[list[int]]:
    """Per target title, up to ``n`` purchased titles that drive its score, best first: the ALS
    decomposition when there is a ``system``, else the most similar purchases (factor dot)."""
    if not len(history):
        return [[] for _ in targets]
    if system is not None:
        return system.top_reasons(title_factors, targets, n)
    sims = title_factors[history] @ title_factors[targets].T  # history × targets
    order = np.argsort(-sims, axis=0, kind="stable")[:n]
    return [[int(history[r]) for r in order[:, c] if sims[r, c] > 0] for c in range(len(targets))]
