"""Value tiers from recency, frequency and monetary value (pure numpy).

Each of R, F and M gets a quantile score 1..bins among the members still
buying (a lower recency scores higher); the mean score as a share of ``bins``
names the tier. Members with no purchase within ``lapsed_after_days`` are
``lapsed`` whatever they once spent.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.stats import rankdata

TIERS: tuple[str, ...] = ("core", "regular", "occasional", "lapsed")


@dataclass(frozen=True)
class RfmScores:
    """Rows follow the input arrays. Scores are 0 for lapsed members."""

    r_score: npt.NDArray[np.int64]
    f_score: npt.NDArray[np.int64]
    m_score: npt.NDArray[np.int64]
    tiers: list[str]


@dataclass(frozen=True)
class ParetoCheck:
    """The 80/20 check: the revenue share of the top ``fraction`` of members by spend."""

    fraction: float
    top_share_of_buyers: float  # among members who spent anything in the window
    top_share_of_members: float  # among all members
    buyers: int
    members: int
    revenue: float


def quantile_scores(values: npt.NDArray[np.float64], bins: int) -> npt.NDArray[np.int64]:
    """1..bins by rank percentile; ties share a score; higher values score higher."""
    if values.size == 0:
        return np.zeros(0, dtype=np.int64)
    percentile = rankdata(values, method="average") / values.size
    scores: npt.NDArray[np.int64] = np.clip(np.ceil(percentile * bins), 1, bins).astype(np.int64)
    return scores


def score_tiers(
    recency_days: npt.NDArray[np.int64],
    frequency: npt.NDArray[np.int64],
    monetary: npt.NDArray[np.float64],
    *,
    bins: int = 5,
    lapsed_after_days: int = 365,
    core_min_score: float = 0.8,
    regular_min_score: float = 0.5,
) -> RfmScores:
    """Tier per member. ``recency_days`` is -1 for members who never bought."""
    n = recency_days.shape[0]
    if frequency.shape[0] != n or monetary.shape[0] != n:
        raise ValueError(
            f"recency ({n}), frequency ({frequency.shape[0]}) and monetary "
            f"({monetary.shape[0]}) need one row per member"
        )
    active = (recency_days >= 0) & (recency_days <= lapsed_after_days) & (frequency > 0)
    r = np.zeros(n, dtype=np.int64)
    f = np.zeros(n, dtype=np.int64)
    m = np.zeros(n, dtype=np.int64)
    r[active] = quantile_scores(-recency_days[active].astype(np.float64), bins)
    f[active] = quantile_scores(frequency[active].astype(np.float64), bins)
    m[active] = quantile_scores(monetary[active], bins)
    share = (r + f + m) / (3.0 * bins)
    tiers = np.where(
        ~active,
        "lapsed",
        np.where(
            share >= core_min_score,
            "core",
            np.where(share >= regular_min_score, "regular", "occasional"),
        ),
    )
    return RfmScores(r, f, m, [str(t) for t in tiers])


def pareto_check(monetary: npt.NDArray[np.float64], fraction: float = 0.2) -> ParetoCheck:
    """Revenue share of the top ``fraction`` of members (ceil) ranked by spend."""
    spend = np.sort(np.maximum(monetary, 0.0))[::-1]
    revenue = float(spend.sum())
    buyers = int((spend > 0).sum())

    def share(population: int) -> float:
        if population == 0 or revenue <= 0:
            return 0.0
        top = int(np.ceil(fraction * population))
        return float(spend[:top].sum() / revenue)

    return ParetoCheck(fraction, share(buyers), share(spend.size), buyers, spend.size, revenue)
