"""Evaluation metrics, one module per family; each ``metric@k`` per member and on average."""

from training.metrics.coverage import catalog_coverage
from training.metrics.ranking import (
    RANKING_METRICS,
    average_ranking_metrics,
    hit_rate_at_k,
    map_at_k,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
)

__all__ = [
    "RANKING_METRICS",
    "average_ranking_metrics",
    "catalog_coverage",
    "hit_rate_at_k",
    "map_at_k",
    "ndcg_at_k",
    "precision_at_k",
    "recall_at_k",
]
