"""The one contract every recommender keeps (after ``implicit.recommender_base``).

Matrix convention, everywhere: ``member_titles`` is CSR, rows = members,
columns = titles, values = confidence. ``member_idx`` / ``title_idx`` are
matrix positions, never the club's ids (see :mod:`recsys.idmap`).
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

IdxArray = npt.NDArray[np.int64]
ScoreArray = npt.NDArray[np.float32]
PARAMS_FILE = "recommender.json"


class FactorsNaNError(ValueError):
    """Training produced NaN or infinite factors (try more regularization or lower alpha)."""


@dataclass(frozen=True)
class FitContext:
    """What some recommenders need besides the matrix."""

    title_categories: sp.csr_matrix | None = None  # titles × categories, all levels
    seed: int = 42
    threads: int = 0
    show_progress: bool = False
    # the same factors on every run (evaluation, tuning): BPR then samples on one thread
    # (implicit 0.7's multi-threaded BPR differs run to run; ALS and item-kNN do not)
    deterministic: bool = False


def check_member_titles(member_titles: sp.csr_matrix, n_titles: int | None = None) -> None:
    if not sp.issparse(member_titles) or member_titles.format != "csr":
        raise ValueError("member_titles must be a scipy CSR matrix (rows = members)")
    if n_titles is not None and member_titles.shape[1] != n_titles:
        raise ValueError(
            f"member_titles has {member_titles.shape[1]} title columns, the model {n_titles}"
        )


def top_n(
    scores: ScoreArray,
    n: int,
    *,
    liked: sp.csr_matrix | None = None,
    items: IdxArray | None = None,
) -> tuple[IdxArray, ScoreArray]:
    """Best ``n`` columns of each row of ``scores`` (members × titles), best first; equal
    scores in order of their column (the lower index first, also at the n-th place).

    ``liked`` (same shape) masks titles already bought; ``items`` restricts the
    ranking to those columns. Rows with fewer candidates pad with index -1.
    """
    scores = np.array(scores, dtype=np.float32, copy=True)
    if scores.ndim != 2:
        raise ValueError(f"scores must be members × titles, got shape {scores.shape}")
    if items is not None:
        keep = np.zeros(scores.shape[1], dtype=bool)
        keep[items] = True
        scores[:, ~keep] = -np.inf
    if liked is not None and liked.nnz:
        if liked.shape != scores.shape:
            raise ValueError(f"liked {liked.shape} and scores {scores.shape} differ")
        rows = np.repeat(np.arange(liked.shape[0]), np.diff(liked.indptr))
        scores[rows, liked.indices] = -np.inf
    n = min(n, scores.shape[1])
    if n <= 0:
        empty = np.empty((scores.shape[0], 0))
        return empty.astype(np.int64), empty.astype(np.float32)
    part = np.argpartition(-scores, n - 1, axis=1)[:, :n]
    part_scores = np.take_along_axis(scores, part, axis=1)
    # ties at the n-th place: argpartition keeps any of them; keep the lowest indices
    kth = part_scores.min(axis=1)
    short = np.flatnonzero(
        (scores == kth[:, None]).sum(axis=1) > (part_scores == kth[:, None]).sum(axis=1)
    )
    for r in short.tolist():
        above = np.flatnonzero(scores[r] > kth[r])
        equal = np.flatnonzero(scores[r] == kth[r])[: n - len(above)]
        part[r] = np.concatenate([above, equal])
        part_scores[r] = scores[r, part[r]]
    order = np.lexsort((part, -part_scores))  # best first, equal scores by lower index
    ids = np.take_along_axis(part, order, axis=1).astype(np.int64)
    best = np.take_along_axis(part_scores, order, axis=1)
    ids[~np.isfinite(best)] = -1
    return ids, best


class Recommender(ABC):
    """fit / score / recommend / similar_titles / save / load."""

    kind: ClassVar[str]

    @abstractmethod
    def fit(self, member_titles: sp.csr_matrix, context: FitContext) -> None:
        """Learn from ``member_titles`` (CSR, rows = members, columns = titles, confidence)."""

    @property
    @abstractmethod
    def n_titles(self) -> int: ...

    @abstractmethod
    def score(self, member_idx: IdxArray, member_titles: sp.csr_matrix) -> ScoreArray:
        """members × titles scores, dense; ``member_titles`` holds one row per ``member_idx``."""

    @abstractmethod
    def similar_titles(self, title_idx: int, n: int = 10) -> tuple[IdxArray, ScoreArray]:
        """Titles most like ``title_idx`` (itself excluded), best first."""

    @abstractmethod
    def params(self) -> dict[str, Any]:
        """Hyper-parameters, JSON-serialisable; ``type(self)(**params())`` rebuilds it."""

    @abstractmethod
    def _save_state(self, directory: Path) -> None: ...

    @abstractmethod
    def _load_state(self, directory: Path) -> None: ...

    def recommend(
        self,
        member_idx: IdxArray,
        member_titles: sp.csr_matrix,
        n: int = 10,
        *,
        filter_already_liked: bool = True,
        items: IdxArray | None = None,
    ) -> tuple[IdxArray, ScoreArray]:
        """Top ``n`` titles per member (rows of the result follow ``member_idx``)."""
        check_member_titles(member_titles, self.n_titles)
        if member_titles.shape[0] != len(member_idx):
            raise ValueError("member_titles must hold one row per member_idx")
        scores = self.score(member_idx, member_titles)
        return top_n(scores, n, liked=member_titles if filter_already_liked else None, items=items)

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self._save_state(directory)
        (directory / PARAMS_FILE).write_text(
            json.dumps({"kind": self.kind, "params": self.params()}, indent=2), encoding="utf-8"
        )

    @classmethod
    def load(cls, directory: Path) -> Self:
        meta = json.loads((directory / PARAMS_FILE).read_text(encoding="utf-8"))
        if meta["kind"] != cls.kind:
            raise ValueError(f"{directory} holds a {meta['kind']!r} model, not {cls.kind!r}")
        model = cls(**meta["params"])
        model._load_state(directory)
        return model


def cosine_neighbours(
    vectors: npt.NDArray[np.float32], title_idx: int, n: int
) -> tuple[IdxArray, ScoreArray]:
    """Cosine nearest rows of ``vectors`` to row ``title_idx``, itself excluded."""
    norms = np.linalg.norm(vectors, axis=1)
    query = vectors[title_idx]
    qn = float(norms[title_idx]) or 1.0
    sims = (vectors @ query) / (np.where(norms > 0, norms, 1.0) * qn)
    sims[title_idx] = -np.inf
    ids, best = top_n(sims[None, :].astype(np.float32), n)
    return ids[0], best[0]
