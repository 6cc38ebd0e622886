"""Ranking metrics at k: one implementation, per member, for every caller.

:func:`member_metrics` is the arithmetic: a members × k matrix of hits (title at
rank ``i`` bought in the test period) and each member's number of relevant titles
→ one value per member and metric. The evaluation calls it batch by batch; the
per-member functions (``ndcg_at_k`` …) and :func:`average_ranking_metrics` are the
same arithmetic for one ranked list of title indices and a set of relevant ones.

Definitions (binary relevance; ``hits`` counted in the first ``k`` places; ranks from 1):

- precision@k = hits / k (k even when fewer than k titles were ranked;
  RecTools' ``Precision``; implicit's ``ranking_metrics_at_k`` divides by
  min(k, |relevant|) instead)
- recall@k = hits / |relevant| (RecTools' ``Recall``)
- ndcg@k = Σ_{hit at rank i} 1/log2(i + 1) divided by the ideal DCG of
  min(|relevant|, k) hits at ranks 1…min(|relevant|, k) (implicit's; RecTools'
  ``NDCG`` divides by the ideal DCG of k hits, which is smaller for members with
  fewer than k relevant titles)
- map@k = Σ_{hit at rank i} precision@i / min(|relevant|, k) (implicit's;
  RecTools' ``MAP`` divides by |relevant|, or by k with ``divide_by_k``)
- hitrate@k = 1 if any hit, else 0

A member with no relevant titles has no value (``nan``); averages skip such members.
Ties are not the metrics' business: they score the order they are given (the
evaluation's order of equal scores is documented in ``training.evaluate``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

Metric = Callable[[Sequence[int], set[int], int], float]
FloatArray = npt.NDArray[np.float64]
NAMES = ("precision", "recall", "ndcg", "map", "hitrate")


def hit_matrix(ranked: npt.NDArray[np.int64], relevant: Sequence[set[int]], k: int) -> npt.NDArray[np.bool_]:
    """members × k: whether the title at each of the first ``k`` places is relevant
    (``ranked`` rows best first, padded with -1; shorter rows count as misses)."""
    hits = np.zeros((len(relevant), k), dtype=bool)
    if not len(relevant):
        return hits
    ranked = np.asarray(ranked, dtype=np.int64).reshape(len(relevant), -1)[:, :k]
    for i, (row, rel) in enumerate(zip(ranked.tolist(), relevant, strict=True)):
        hits[i, : len(row)] = [t in rel for t in row]
    return hits


def member_metrics(
    hits: npt.NDArray[np.bool_], n_relevant: npt.NDArray[np.int64], k: int, names: Sequence[str] = NAMES
) -> dict[str, FloatArray]:
    """Every metric of ``names`` per member (see the module docstring); ``nan`` where a
    member has no relevant title."""
    hits = np.asarray(hits, dtype=bool)
    if hits.ndim != 2 or hits.shape[1] > k:
        raise ValueError(f"hits must be members × (at most k={k}), got {hits.shape}")
    n_rel = np.asarray(n_relevant, dtype=np.float64)
    scored = n_rel > 0
    safe = np.where(scored, n_rel, 1.0)
    ranks = np.arange(1, hits.shape[1] + 1, dtype=np.float64)
    found = hits.sum(axis=1).astype(np.float64)
    out: dict[str, FloatArray] = {}
    for name in names:
        if name == "precision":
            value = found / k
        elif name == "recall":
            value = found / safe
        elif name == "hitrate":
            value = (found > 0).astype(np.float64)
        elif name == "ndcg":
            discount = 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))
            ideal = np.concatenate([[0.0], np.cumsum(discount)])[np.minimum(safe, k).astype(np.int64)]
            value = (hits * discount[: hits.shape[1]]).sum(axis=1) / ideal
        elif name == "map":
            precision_at = np.cumsum(hits, axis=1) / ranks
            value = (precision_at * hits).sum(axis=1) / np.minimum(safe, k)
        else:
            raise ValueError(f"unknown metric {name!r}; known: {', '.join(NAMES)}")
        out[name] = np.where(scored, value, np.nan)
    return out


def _one(name: str, ranked: Sequence[int], relevant: set[int], k: int) -> float:
    if k <= 0:
        return 0.0
    hits = hit_matrix(np.asarray(list(ranked)[:k] or [-1], dtype=np.int64)[None, :], [relevant], k)
    value = float(member_metrics(hits, np.array([len(relevant)]), k, [name])[name][0])
    return 0.0 if np.isnan(value) else value


def precision_at_k(ranked: Sequence[int], relevant: set[int], k: int) -> float:
    return _one("precision", ranked, relevant, k)


def recall_at_k(ranked: Sequence[int], relevant: set[int], k: int) -> float:
    return _one("recall", ranked, relevant, k)


def ndcg_at_k(ranked: Sequence[int], relevant: set[int], k: int) -> float:
    return _one("ndcg", ranked, relevant, k)


def map_at_k(ranked: Sequence[int], relevant: set[int], k: int) -> float:
    return _one("map", ranked, relevant, k)


def hit_rate_at_k(ranked: Sequence[int], relevant: set[int], k: int) -> float:
    return _one("hitrate", ranked, relevant, k)


RANKING_METRICS: dict[str, Metric] = {
    "precision": precision_at_k,
    "recall": recall_at_k,
    "ndcg": ndcg_at_k,
    "map": map_at_k,
    "hitrate": hit_rate_at_k,
}


def mean_metrics(per_member: dict[str, FloatArray], k: int) -> dict[str, float]:
    """``{"recall@20": mean over members with a value, …}``; 0 when no member has one."""
    out = {}
    for name, values in per_member.items():
        scored = values[~np.isnan(values)]
        out[f"{name}@{k}"] = float(scored.mean()) if scored.size else 0.0
    return out


def average_ranking_metrics(
    rankings: Sequence[Sequence[int]], relevant: Sequence[set[int]], k: int
) -> dict[str, float]:
    """Every metric averaged over members with at least one relevant title."""
    if len(rankings) != len(relevant):
        raise ValueError("one ranking per relevant set")
    padded = np.full((len(rankings), k), -1, dtype=np.int64)
    for i, ranked in enumerate(rankings):
        row = list(ranked)[:k]
        padded[i, : len(row)] = row
    hits = hit_matrix(padded, relevant, k)
    return mean_metrics(member_metrics(hits, np.array([len(r) for r in relevant]), k), k)
