"""Recommenders behind one contract (:class:`~recsys.recommenders.base.Recommender`)."""

from __future__ import annotations

import json
from pathlib import Path

from recsys.recommenders.base import PARAMS_FILE, FitContext, Recommender, top_n
from recsys.recommenders.blend import BlendRecommender
from recsys.recommenders.factors import ALSRecommender, BPRRecommender, FactorRecommender
from recsys.recommenders.knn import ItemKNNRecommender
from recsys.recommenders.popularity import CategoryPopularityRecommender, PopularityRecommender
from recsys.settings import TrainingSettings

RECOMMENDERS: dict[str, type[Recommender]] = {
    cls.kind: cls
    for cls in (
        ALSRecommender,
        BPRRecommender,
        PopularityRecommender,
        CategoryPopularityRecommender,
        ItemKNNRecommender,
        BlendRecommender,
    )
}


def build_recommender(kind: str, settings: TrainingSettings) -> Recommender:
    """A fresh recommender of ``kind`` with its hyper-parameters from ``settings``."""
    if kind == "als":
        return ALSRecommender(
            factors=settings.factors,
            regularization=settings.regularization,
            alpha=settings.alpha,
            iterations=settings.iterations,
        )
    if kind == "bpr":
        return BPRRecommender(
            factors=settings.bpr_factors,
            learning_rate=settings.bpr_learning_rate,
            regularization=settings.bpr_regularization,
            iterations=settings.bpr_iterations,
        )
    if kind == "popularity":
        return PopularityRecommender()
    if kind == "category_popularity":
        return CategoryPopularityRecommender(prior=settings.category_prior_weight)
    if kind == "item_knn":
        return ItemKNNRecommender(
            neighbours=settings.knn_neighbours, similarity=settings.knn_similarity
        )
    if kind == "blend":  # the two components with their own settings, and the weight
        als, knn = build_recommender("als", settings), build_recommender("item_knn", settings)
        return BlendRecommender(weight=settings.blend_weight, als=als.params(), item_knn=knn.params())
    raise ValueError(f"unknown recommender {kind!r}; known: {', '.join(RECOMMENDERS)}")


def load_recommender(directory: Path) -> Recommender:
    """Whatever recommender was saved in ``directory``."""
    kind = json.loads((directory / PARAMS_FILE).read_text(encoding="utf-8"))["kind"]
    return RECOMMENDERS[kind].load(directory)


__all__ = [
    "RECOMMENDERS",
    "ALSRecommender",
    "BPRRecommender",
    "BlendRecommender",
    "CategoryPopularityRecommender",
    "FactorRecommender",
    "FitContext",
    "ItemKNNRecommender",
    "PopularityRecommender",
    "Recommender",
    "build_recommender",
    "load_recommender",
    "top_n",
]
