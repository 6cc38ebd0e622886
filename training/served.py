"""What the served model is made of: a training set and a fitted recommender → :class:`ModelParts`.

Used for the model a retrain saves (``training.pipeline``) and, in evaluation, for
the served model's cold-start path (``training.evaluate`` scores members without
history through :meth:`recsys.model.trained.TrainedModel.recommend`, the function
every face calls, rather than a copy of it).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import scipy.sparse as sp

from recsys.affinity import Placement, place_titles
from recsys.errors import TrainingError
from recsys.model.parts import WARM, ModelParts
from recsys.model.trained import TrainedModel
from recsys.recommenders import BlendRecommender, FactorRecommender, ItemKNNRecommender, Recommender
from recsys.recommenders.popularity import title_popularity
from recsys.settings import TrainingSettings
from training.dataset import TrainingSet


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


def model_parts(train: TrainingSet, recommender: Recommender, settings: TrainingSettings) -> ModelParts:
    """What the served model holds, cold titles placed in their categories.

    A factor model (ALS, BPR) is held as its factors; item-kNN as its similarity (factor
    arrays of width 0); a blend as both, its ALS component's factors and its item-kNN
    component's similarity (its params: the weight and each component's); popularity and
    category popularity need nothing beyond what every model holds (popularity, category
    affinity). See ``recsys.model.trained``.
    """
    if isinstance(recommender, BlendRecommender):
        parts = _parts(train, recommender.kind, recommender.params(), recommender.als.member_factors,
                       recommender.als.title_factors, settings)  # fmt: skip
        parts.similarity = sp.csr_matrix(recommender.item_knn.similarity, dtype=np.float32)
        return parts
    if isinstance(recommender, FactorRecommender):
        return _parts(train, recommender.kind, recommender.params(), recommender.member_factors,
                      recommender.title_factors, settings)  # fmt: skip
    n_members, n_titles = train.member_titles.shape
    none = (np.zeros((n_members, 0), dtype=np.float32), np.zeros((n_titles, 0), dtype=np.float32))
    if isinstance(recommender, ItemKNNRecommender):
        parts = _parts(train, recommender.kind, recommender.params(), *none, settings)
        parts.similarity = sp.csr_matrix(recommender.similarity, dtype=np.float32)
        return parts
    if recommender.kind in ("popularity", "category_popularity"):
        return _parts(train, recommender.kind, recommender.params(), *none, settings)
    raise TrainingError(f"the served model cannot hold a {recommender.kind} recommender")


def _parts(
    train: TrainingSet,
    kind: str,
    params: dict[str, object],
    member_factors: np.ndarray,
    title_factors: np.ndarray,
    settings: TrainingSettings,
) -> ModelParts:
    if train.affinity is None:
        raise TrainingError("the served model needs the training set's category affinity")
    placement = cold_placement(train, settings.cold_start_min_titles)
    placed = np.full(len(train.catalogue.titles), WARM, dtype=np.int64)
    placed[placement.cold_idx] = placement.category
    return ModelParts(
        kind=kind,
        params=dict(params),
        members=train.catalogue.members,
        titles=train.catalogue.titles,
        title_names=train.catalogue.title_names,
        member_factors=np.asarray(member_factors, dtype=np.float32),
        title_factors=placement.fill_vectors(np.asarray(title_factors, dtype=np.float32)),
        member_titles=train.member_titles,
        categories=train.catalogue.categories,
        title_categories=train.catalogue.title_categories,
        affinity=train.affinity,
        popularity=title_popularity(train.member_titles),
        placement=placed,
        thin_history=settings.thin_history,
        min_titles=settings.cold_start_min_titles,
        threads=settings.threads,
    )


def cold_start_model(train: TrainingSet, settings: TrainingSettings, cutoff: dt.datetime) -> TrainedModel:
    """The served model as it answers a member with no history at ``cutoff``.

    Its answer for such a member reads only category popularity and the member's
    declared categories (see ``TrainedModel.recommend``: no history, no factor
    score), so the factors here are zeros of width 1 — whatever recommender is served,
    its cold start is this one.
    """
    n_members, n_titles = train.member_titles.shape
    parts = _parts(
        train, "als", {}, np.zeros((n_members, 1), dtype=np.float32),
        np.zeros((n_titles, 1), dtype=np.float32), settings,
    )  # fmt: skip
    return TrainedModel(parts, f"evaluation-{cutoff:%Y%m%d}", cutoff)
