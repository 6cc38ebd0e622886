"""Ranking metrics at k for one member: ``ranked`` title indices best first, ``relevant`` a set.

Conventions (as in RecTools / implicit's ``ranking_metrics_at_k``):

- precision@k = hits in the top k / k
- recall@k = hits in the top k / |relevant|
- ndcg@k = DCG / ideal DCG with binary gains, log2(rank + 1) discount
- map@k = Σ precision@i at each hit i ≤ k / min(|relevant|, k)
- hitrate@k = 1 if any hit in the top k

Members with no relevant titles are not scored (the averages skip them).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np

Metric = Callable[[Sequence[int], set[int], int], float]


def _hits(ranked: Sequence[int], relevant: set[int], k: int) -> list[bool]:
    return [int(t) in relevant for t in list(ranked)[:k]]


def precision_at_k(ranked: Sequence[int], relevant: set[int], k: int) -> float:
    return sum(_hits(ranked, relevant, k)) / k if k > 0 else 0.0


def recall_at_k(ranked: Sequence[int], relevant: set[int], k: int) -> float:
    return sum(_hits(ranked, relevant, k)) / len(relevant) if relevant else 0.0


def ndcg_at_k(ranked: Sequence[int], relevant: set[int], k: int) -> float:
    hits = _hits(ranked, relevant, k)
    dcg = sum(1.0 / np.log2(i + 2) for i, hit in enumerate(hits) if hit)
    ideal = sum(1.0 / np.log2(i + 2) for i in range(min(len(relevant), k)))
    return float(dcg / ideal) if ideal > 0 else 0.0


def map_at_k(ranked: Sequence[int], relevant: set[int], k: int) -> float:
    if not relevant:
        return 0.0
    found, total = 0, 0.0
    for i, hit in enumerate(_hits(ranked, relevant, k)):
        if hit:
            found += 1
            total += found / (i + 1)
    return total / min(len(relevant), k)


def hit_rate_at_k(ranked: Sequence[int], relevant: set[int], k: int) -> float:
    return 1.0 if any(_hits(ranked, relevant, k)) else 0.0


RANKING_METRICS: dict[str, Metric] = {
    "precision": precision_at_k,
    "recall": recall_at_k,
    "ndcg": ndcg_at_k,
    "map": map_at_k,
    "hitrate": hit_rate_at_k,
}


_DISCOUNT = [float(1.0 / np.log2(i + 2)) for i in range(1000)]
_IDEAL_DCG = [0.0, *np.cumsum(_DISCOUNT).tolist()]


class RankingAccumulator:
    """Running sums of every ranking metric over members, for batch-wise evaluation."""

    def __init__(self, k: int, metrics: Iterable[str] = tuple(RANKING_METRICS)) -> None:
        self.k = k
        self.names = list(metrics)
        self.sums = dict.fromkeys(self.names, 0.0)
        self.members = 0

    def add(self, ranked: Sequence[int], relevant: set[int]) -> None:
        """One member's ranking (best first) against the titles they did buy."""
        if not relevant:
            return
        self.members += 1
        k = self.k
        hit_ranks = [i for i, t in enumerate(list(ranked)[:k]) if t in relevant]
        hits = len(hit_ranks)
        for name in self.names:
            if name == "precision":
                value = hits / k
            elif name == "recall":
                value = hits / len(relevant)
            elif name == "hitrate":
                value = 1.0 if hits else 0.0
            elif name == "ndcg":
                ideal = _IDEAL_DCG[min(len(relevant), k)] if k < len(_IDEAL_DCG) else None
                value = (
                    ndcg_at_k(ranked, relevant, k)
                    if ideal is None
                    else (sum(_DISCOUNT[i] for i in hit_ranks) / ideal)
                )
            elif name == "map":
                value = sum((j + 1) / (i + 1) for j, i in enumerate(hit_ranks)) / min(
                    len(relevant), k
                )
            else:
                value = RANKING_METRICS[name](ranked, relevant, k)
            self.sums[name] += value

    def means(self) -> dict[str, float]:
        """``{"recall@20": …}``; zeros when no member had relevant titles."""
        n = max(self.members, 1)
        return {f"{name}@{self.k}": self.sums[name] / n for name in self.names}


def average_ranking_metrics(
    rankings: Sequence[Sequence[int]], relevant: Sequence[set[int]], k: int
) -> dict[str, float]:
    """Every metric averaged over members with at least one relevant title."""
    if len(rankings) != len(relevant):
        raise ValueError("one ranking per relevant set")
    acc = RankingAccumulator(k)
    for ranked, rel in zip(rankings, relevant, strict=True):
        acc.add(ranked, rel)
    return acc.means()
