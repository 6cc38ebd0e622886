"""Bootstrap intervals over members: seeded, vectorised, paired.

A metric's mean over members is a ratio of sums when a member counts more than once
(pooled folds: one member, several test periods), so the resampling unit is the
member — a cluster of ``counts[i]`` values summing to ``sums[i]``; with one value
per member this is the ordinary bootstrap of the mean. Every column (recommender ×
metric) is resampled with the *same* draws, so the difference of two columns'
resampled means is the paired bootstrap of their difference.

The interval is the percentile interval: the ``(1 - level) / 2`` and
``(1 + level) / 2`` quantiles of the resampled means (numpy's default linear
interpolation between order statistics).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
RESAMPLES = 2000
LEVEL = 0.95


@dataclass(frozen=True)
class Resampled:
    """``means[b, j]``: column ``j``'s mean in resample ``b`` (the same members for every column)."""

    means: FloatArray
    level: float

    def interval(self, column: int) -> tuple[float, float]:
        return _quantiles(self.means[:, column], self.level)

    def difference(self, column: int, other: int) -> tuple[float, float]:
        """Interval of ``mean[column] - mean[other]`` (paired: same draws)."""
        return _quantiles(self.means[:, column] - self.means[:, other], self.level)


def _quantiles(values: FloatArray, level: float) -> tuple[float, float]:
    if not len(values):
        return (float("nan"), float("nan"))
    low, high = np.quantile(values, [(1.0 - level) / 2.0, (1.0 + level) / 2.0])
    return float(low), float(high)


def resample_means(
    sums: npt.ArrayLike,
    counts: npt.ArrayLike | None = None,
    *,
    resamples: int = RESAMPLES,
    seed: int = 0,
    level: float = LEVEL,
    chunk: int = 256,
) -> Resampled:
    """Resample the rows (members) of ``sums`` (members × columns) with replacement.

    ``counts[i]``: how many values member ``i``'s row sums (default 1 each). Each
    resample's mean of column ``j`` is ``Σ w_i sums[i, j] / Σ w_i counts[i]`` with ``w``
    the multiplicities drawn. Draws come from ``numpy.random.default_rng(seed)`` in
    chunks of ``chunk`` resamples, so a run is repeatable to the last digit.
    """
    values = np.asarray(sums, dtype=np.float64)
    if values.ndim == 1:
        values = values[:, None]
    n = values.shape[0]
    weights = np.ones(n) if counts is None else np.asarray(counts, dtype=np.float64)
    if weights.shape != (n,):
        raise ValueError(f"counts must have one entry per row of sums ({n}), got {weights.shape}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    if n == 0:
        return Resampled(np.zeros((0, values.shape[1])), level)
    rng = np.random.default_rng(seed)
    out = np.empty((resamples, values.shape[1]), dtype=np.float64)
    for start in range(0, resamples, chunk):
        c = min(chunk, resamples - start)
        draws = rng.integers(0, n, size=(c, n))
        # multiplicities of each member in each resample: one bincount over offset draws
        offset = draws + (np.arange(c) * n)[:, None]
        w = np.bincount(offset.ravel(), minlength=c * n).reshape(c, n).astype(np.float64)
        out[start : start + c] = (w @ values) / (w @ weights)[:, None]
    return Resampled(out, level)


def pooled_means(sums: npt.ArrayLike, counts: npt.ArrayLike | None = None) -> FloatArray:
    """The point estimate ``Σ sums / Σ counts`` per column (the mean over every value)."""
    values = np.asarray(sums, dtype=np.float64)
    if values.ndim == 1:
        values = values[:, None]
    total = float(values.shape[0] if counts is None else np.asarray(counts, dtype=np.float64).sum())
    if total <= 0:
        return np.full(values.shape[1], np.nan)
    result: FloatArray = values.sum(axis=0) / total
    return result
