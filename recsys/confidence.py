"""Order lines → the member×title confidence matrix.

Convention (as in ``implicit``): ``member_titles`` is CSR, rows = members,
columns = titles, values = the weight ``w`` built here. ALS (``implicit`` 0.7)
multiplies it by ``alpha`` and nothing else: a bought title's confidence is
``c = alpha · w`` with preference 1, every other title has confidence 1 and
preference 0 (implicit solves ``(YᵀY + Yᵀ(Cᵤ − I)Y + λI) xᵤ = YᵀCᵤpᵤ``). It is
*not* Hu, Koren and Volinsky's ``1 + alpha · w``: with ``alpha · w < 1`` a bought
title weighs less than one not bought. BPR and item-kNN read ``w`` as it is.

A line weighs ``quantity × 0.5 ** (age / half_life)``; returns carry a negative
quantity and so subtract from what the member bought; a member×title pair whose
net weight is not positive is dropped. Optionally the matrix is re-weighted
with ``implicit``'s BM25 or TF-IDF (titles as documents, members as terms), which
damps best-sellers and heavy buyers.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from implicit.nearest_neighbours import bm25_weight, tfidf_weight

SECONDS_PER_DAY = 86_400.0

Weighting = Literal["none", "bm25", "tfidf"]


def line_weights(
    quantity: npt.NDArray[np.float32],
    purchased_at: npt.NDArray[np.float64],
    *,
    reference: float,
    half_life_days: float | None,
) -> npt.NDArray[np.float32]:
    """Each line's weight: quantity, halved every ``half_life_days`` before ``reference``."""
    if quantity.shape != purchased_at.shape:
        raise ValueError(f"quantity {quantity.shape} and purchased_at {purchased_at.shape} differ")
    if half_life_days is None:
        return quantity.astype(np.float32, copy=True)
    age_days = np.maximum(reference - purchased_at, 0.0) / SECONDS_PER_DAY
    decay = np.exp2(-age_days / half_life_days)
    return (quantity * decay).astype(np.float32)


def sum_matrix(
    member_idx: npt.NDArray[np.int64],
    title_idx: npt.NDArray[np.int64],
    weights: npt.NDArray[np.float32],
    shape: tuple[int, int],
) -> sp.csr_matrix:
    """Sum ``weights`` per (member, title); keep only positive sums (returns subtract)."""
    if not (len(member_idx) == len(title_idx) == len(weights)):
        raise ValueError("member_idx, title_idx and weights must have one entry per line")
    if len(member_idx) and (member_idx.max() >= shape[0] or title_idx.max() >= shape[1]):
        raise ValueError(f"an index falls outside the matrix shape {shape}")
    summed = sp.csr_matrix(
        (weights.astype(np.float32), (member_idx, title_idx)), shape=shape, dtype=np.float32
    )
    summed.sum_duplicates()
    summed.data[summed.data < 1e-6] = 0.0
    summed.eliminate_zeros()
    return summed


def reweight(
    member_titles: sp.csr_matrix, weighting: Weighting, *, k1: float = 1.2, b: float = 0.75
) -> sp.csr_matrix:
    """BM25 / TF-IDF from ``implicit`` applied with titles as rows; returns member×title CSR."""
    if weighting == "none" or member_titles.nnz == 0:
        return member_titles.astype(np.float32)
    title_members = member_titles.T
    if weighting == "bm25":
        weighted = bm25_weight(title_members, K1=k1, B=b)
    elif weighting == "tfidf":
        weighted = tfidf_weight(title_members)
    else:
        raise ValueError(f"unknown weighting {weighting!r}")
    out = sp.csr_matrix(weighted.T, dtype=np.float32)
    # log(N) - log1p(df) is negative for a title every member bought; keep weights positive.
    out.data = np.maximum(out.data, 1e-3)
    out.sort_indices()
    return out


def confidence_matrix(
    member_idx: npt.NDArray[np.int64],
    title_idx: npt.NDArray[np.int64],
    quantity: npt.NDArray[np.float32],
    purchased_at: npt.NDArray[np.float64],
    shape: tuple[int, int],
    *,
    reference: float,
    half_life_days: float | None,
    weighting: Weighting,
    k1: float = 1.2,
    b: float = 0.75,
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """(decayed net weights, re-weighted confidence): both member×title CSR, same pattern."""
    weights = line_weights(
        quantity, purchased_at, reference=reference, half_life_days=half_life_days
    )
    member_titles = sum_matrix(member_idx, title_idx, weights, shape)
    return member_titles, reweight(member_titles, weighting, k1=k1, b=b)
