"""A blend of ALS and item-kNN: per member, ``w × ALS + (1 − w) × item-kNN`` on a common scale.

**The scale** (:func:`standardise`). The two scores live on unrelated scales: ALS's are
dot products of factors (roughly symmetric around 0, a member's spread set by the
regularization and alpha), item-kNN's are sums of ``confidence × similarity`` over the
member's purchases (exactly 0 for most titles, a heavy tail that grows with the length of
the history). Each is standardised per member — minus its mean, over its standard
deviation — over the member's *candidate titles*: every title the model knows that the
member has not bought. Why this one:

- per member, so that a member with a long history (large item-kNN sums) and one with a
  short one get the same mix for the same ``w``;
- over the candidates, not all titles: the titles already bought carry the largest
  item-kNN scores and never reach the list, and would set the scale otherwise;
- over the candidates *before* any query filter (category, in stock, only these titles),
  so that the scale of the two does not change with the filter;
- the mean and standard deviation use every candidate, so one extreme title moves them
  little — unlike min–max or division by the largest score, where the single best title
  sets the scale of the whole list; and, unlike ranks, the margins are kept (a title
  item-kNN scores far above the rest stays far above) and a member costs two passes over
  the titles, not a sort of them per request.

On Online Retail's validation folds (the tuning cutoff 2011-08-12, three 30-day folds)
standardised scores were compared with min–max, division by the largest magnitude and
reciprocal ranks before this was fixed; see ``docs/evaluation.md`` ("The blend").

A constant row (item-kNN for a member none of whose purchases has neighbours) standardises
to 0: the other recommender alone orders the titles. ``w = 1`` is ALS's order, ``w = 0``
item-kNN's (equal scores by title index, as everywhere). The blend holds a fitted ALS and a
fitted item-kNN; its settings are theirs plus ``weight``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from recsys.recommenders.base import FitContext, IdxArray, Recommender, ScoreArray, check_member_titles
from recsys.recommenders.factors import ALSRecommender
from recsys.recommenders.knn import ItemKNNRecommender

ALS_DIR, KNN_DIR = "als", "item_knn"
BoolArray = npt.NDArray[np.bool_]


def standardise(scores: ScoreArray, candidates: BoolArray) -> ScoreArray:
    """rows × titles: each row minus its mean over its candidates, over their standard
    deviation (a row whose candidates all score alike becomes 0). Non-candidates are
    standardised with the same mean and deviation (their values are not used for them)."""
    scores = np.asarray(scores, dtype=np.float64)
    count = np.maximum(candidates.sum(axis=1, keepdims=True), 1)
    kept = np.where(candidates, scores, 0.0)
    mean = kept.sum(axis=1, keepdims=True) / count
    spread = np.where(candidates, scores - mean, 0.0)
    std = np.sqrt((spread * spread).sum(axis=1, keepdims=True) / count)
    alike = std <= 1e-12 * np.maximum(np.abs(mean), 1e-30)  # every candidate alike (up to rounding)
    out: ScoreArray = ((scores - mean) / np.where(alike, np.inf, std)).astype(np.float32)
    return out


def standardise_row(scores: ScoreArray, bought: IdxArray) -> ScoreArray:
    """:func:`standardise` of one member's scores (every title), the candidates being every
    title but ``bought`` (distinct indices): from sums, a few passes over the titles — the
    served model's per-request path."""
    values = np.asarray(scores, dtype=np.float64)
    held = values[bought]
    count = max(len(values) - len(held), 1)
    mean = (float(values.sum()) - float(held.sum())) / count
    variance = (float(values @ values) - float(held @ held)) / count - mean * mean
    std = float(np.sqrt(variance)) if variance > 0 else 0.0
    if std <= 1e-12 * max(abs(mean), 1e-30):  # every candidate alike (up to rounding)
        return np.zeros(len(values), dtype=np.float32)
    out: ScoreArray = ((values - mean) / std).astype(np.float32)
    return out


def mix(als: ScoreArray, knn: ScoreArray, candidates: BoolArray, weight: float) -> ScoreArray:
    """``weight`` × standardised ALS + (1 − ``weight``) × standardised item-kNN (rows × titles)."""
    out: ScoreArray = (
        np.float32(weight) * standardise(als, candidates) + np.float32(1.0 - weight) * standardise(knn, candidates)
    )
    return out


def not_bought(member_titles: sp.csr_matrix) -> BoolArray:
    """rows × titles: True where the row has no entry (the member's candidate titles)."""
    out = np.ones(member_titles.shape, dtype=bool)
    rows = np.repeat(np.arange(member_titles.shape[0]), np.diff(member_titles.indptr))
    out[rows, member_titles.indices] = False
    return out


class BlendRecommender(Recommender):
    """ALS and item-kNN fitted on the same matrix; scores mixed by :func:`mix`."""

    kind = "blend"

    def __init__(
        self, weight: float = 0.5, als: dict[str, Any] | None = None, item_knn: dict[str, Any] | None = None
    ) -> None:
        if not 0.0 <= weight <= 1.0:
            raise ValueError(f"the blend's weight must lie in [0, 1], not {weight}")
        self.weight = float(weight)
        self.als = ALSRecommender(**(als or {}))
        self.item_knn = ItemKNNRecommender(**(item_knn or {}))
        self._given: set[str] = set()  # components given already fitted (use_fitted)

    @property
    def n_titles(self) -> int:
        return self.als.n_titles

    def params(self) -> dict[str, Any]:
        return {"weight": self.weight, "als": self.als.params(), "item_knn": self.item_knn.params()}

    def use_fitted(self, als: ALSRecommender | None = None, item_knn: ItemKNNRecommender | None = None) -> None:
        """Take components already fitted, with these settings, on the matrix :meth:`fit` will be
        given (evaluation fits ALS and item-kNN once per split and blends them at several
        weights): :meth:`fit` then fits only the others."""
        if als is not None:
            if als.params() != self.als.params():
                raise ValueError(f"a fitted ALS with {als.params()} is not the blend's {self.als.params()}")
            self.als = als
            self._given.add(ALS_DIR)
        if item_knn is not None:
            if item_knn.params() != self.item_knn.params():
                raise ValueError(
                    f"a fitted item-kNN with {item_knn.params()} is not the blend's {self.item_knn.params()}"
                )
            self.item_knn = item_knn
            self._given.add(KNN_DIR)

    def fit(self, member_titles: sp.csr_matrix, context: FitContext) -> None:
        check_member_titles(member_titles)
        for name, component in ((ALS_DIR, self.als), (KNN_DIR, self.item_knn)):
            if name in self._given:
                check_member_titles(member_titles, component.n_titles)
            else:
                component.fit(member_titles, context)

    def score(self, member_idx: IdxArray, member_titles: sp.csr_matrix) -> ScoreArray:
        return mix(
            self.als.score(member_idx, member_titles),
            self.item_knn.score(member_idx, member_titles),
            not_bought(member_titles),
            self.weight,
        )

    def similar_titles(self, title_idx: int, n: int = 10) -> tuple[IdxArray, ScoreArray]:
        return self.als.similar_titles(title_idx, n)

    def _save_state(self, directory: Path) -> None:
        self.als.save(directory / ALS_DIR)
        self.item_knn.save(directory / KNN_DIR)

    def _load_state(self, directory: Path) -> None:
        self.als = ALSRecommender.load(directory / ALS_DIR)
        self.item_knn = ItemKNNRecommender.load(directory / KNN_DIR)
