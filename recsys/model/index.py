"""What a loaded model precomputes once so that a recommendation is a few array operations.

:class:`ServingIndex` holds, per set of title factors and title categories: the
titles × categories matrix both ways (CSR rows for a title's codes, CSC columns
for a category's titles), category levels and depth weights, normalised
popularity and ``YᵀY + λI`` for the ALS normal equations. It is rebuilt whole (one reference swap)
when titles are added after training.

:class:`TitleMask` is a set of titles as a boolean array over the model's
``title_idx``: built once (e.g. the titles out of stock), it is passed as
``exclude_title_ids`` without converting thousands of ids per request.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from recsys.model.explain import gram

if TYPE_CHECKING:
    from recsys.model.parts import ModelParts

FloatArray = npt.NDArray[np.float32]
IdxArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


class TitleMask:
    """A frozen set of title ids held as a boolean mask over one model's titles.

    It is a ``Collection[str]`` (``in``, ``len``, iteration), so it can be given
    wherever title ids are; :meth:`recommend` uses the mask directly. Ids the
    model does not know are kept aside, for ``in`` only. :meth:`plus` adds a few
    ids (e.g. a member's purchases) without copying the mask.
    """

    __slots__ = ("_frozen", "_ids", "_unknown", "extra", "mask")

    def __init__(
        self,
        mask: BoolArray,
        ids: list[str],
        unknown: frozenset[str] = frozenset(),
        extra: tuple[str, ...] = (),
    ) -> None:
        self.mask = mask
        self.mask.flags.writeable = False
        self._ids = ids  # the ids in the mask
        self._unknown = unknown
        self.extra = extra  # ids added by plus(), converted by whoever reads the mask
        self._frozen: frozenset[str] | None = None

    def plus(self, title_ids: Collection[str]) -> TitleMask:
        """This set and ``title_ids`` (sharing this mask)."""
        out = TitleMask(self.mask, self._ids, self._unknown, tuple(title_ids))
        out._frozen = self._frozen
        return out

    def __contains__(self, title_id: object) -> bool:
        return title_id in self._unknown or title_id in self.extra or title_id in self._set()

    def _set(self) -> frozenset[str]:
        if self._frozen is None:
            self._frozen = frozenset(self._ids)
        return self._frozen

    def __len__(self) -> int:
        return len(set(self))

    def __iter__(self) -> Iterator[str]:
        yield from dict.fromkeys([*self._ids, *self._unknown, *self.extra])

    def padded(self, n_titles: int) -> BoolArray:
        """The mask over ``n_titles`` (titles added after it was built are not in it)."""
        if len(self.mask) >= n_titles:
            return self.mask[:n_titles]
        out = np.zeros(n_titles, dtype=bool)
        out[: len(self.mask)] = self.mask
        return out


@dataclass(frozen=True)
class ServingIndex:
    """Arrays a model derives from its parts once, for every request after."""

    n_titles: int
    tc_indptr: npt.NDArray[np.int64]  # titles × categories, CSR: a title's codes
    tc_indices: npt.NDArray[np.int32]
    title_categories: sp.csr_matrix
    category_titles: sp.csc_matrix  # the same matrix by column: a category's titles
    profiles: sp.csr_matrix  # distinct rows of titles × categories (few: titles share codes)
    profile_of: npt.NDArray[np.int32]  # per title, its row of ``profiles``
    half_pop: FloatArray  # 0.5 + popularity
    levels: npt.NDArray[np.int64]  # per category
    depth: FloatArray  # 10 ** (level - 1): a deeper class counts 10× its parent
    pop: FloatArray  # popularity / max
    gram: npt.NDArray[np.float64]  # YᵀY + λI of the title factors (k × k), for ALS
    title_factors: FloatArray  # C-contiguous float32

    @classmethod
    def build(cls, parts: ModelParts) -> ServingIndex:
        tc = sp.csr_matrix(parts.title_categories, dtype=np.float32)
        top = float(parts.popularity.max()) if parts.popularity.size else 0.0
        pop = (parts.popularity / top if top > 0 else parts.popularity).astype(np.float32)
        levels = np.asarray(parts.categories.levels, dtype=np.int64)
        # a plain ndarray over the (memory-mapped) file: np.memmap results cost a Python hook each
        factors = np.asarray(np.ascontiguousarray(parts.title_factors, dtype=np.float32))
        profiles, profile_of = _distinct_rows(tc)
        return cls(
            n_titles=int(factors.shape[0]),
            tc_indptr=tc.indptr.astype(np.int64),
            tc_indices=tc.indices.astype(np.int32),
            title_categories=tc,
            category_titles=tc.tocsc(),
            profiles=profiles,
            profile_of=profile_of,
            half_pop=(0.5 + pop).astype(np.float32),
            levels=levels,
            depth=(10.0 ** (levels - 1)).astype(np.float32),
            pop=pop,
            gram=gram(factors, float(parts.factor_params.get("regularization", 0.0))),
            title_factors=factors,
        )

    def codes_of(self, title_idx: int) -> npt.NDArray[np.int32]:
        """Category columns of a title (all levels)."""
        return self.tc_indices[self.tc_indptr[title_idx] : self.tc_indptr[title_idx + 1]]

    def in_category(self, col: int) -> BoolArray:
        """Titles carrying category column ``col`` (itself or below)."""
        c = self.category_titles
        rows = c.indices[c.indptr[col] : c.indptr[col + 1]]
        mask = np.zeros(self.n_titles, dtype=bool)
        mask[rows[c.data[c.indptr[col] : c.indptr[col + 1]] > 0]] = True
        return mask

    def category_popularity(self, shares: FloatArray) -> FloatArray:
        """Per title: its affinity to the member's categories, times (0.5 + popularity)."""
        if not shares.any():
            return self.pop.copy()
        # a title's affinity depends only on its categories: score each distinct set once
        per_profile = np.asarray(self.profiles @ (shares * self.depth), dtype=np.float32)
        scores: FloatArray = per_profile.take(self.profile_of)
        scores *= self.half_pop
        return scores


def _distinct_rows(matrix: sp.csr_matrix) -> tuple[sp.csr_matrix, npt.NDArray[np.int32]]:
    """(the distinct rows, each row's position among them) of a CSR matrix."""
    matrix.sort_indices()
    seen: dict[bytes, int] = {}
    first: list[int] = []
    row_of = np.empty(matrix.shape[0], dtype=np.int32)
    indptr, indices, data = matrix.indptr, matrix.indices, matrix.data
    for row in range(matrix.shape[0]):
        a, b = indptr[row], indptr[row + 1]
        key = indices[a:b].tobytes() + data[a:b].tobytes()
        pos = seen.setdefault(key, len(seen))
        if pos == len(first):
            first.append(row)
        row_of[row] = pos
    return sp.csr_matrix(matrix[first]), row_of


def mask_of(indices: Iterable[int], n_titles: int) -> BoolArray:
    mask = np.zeros(n_titles, dtype=bool)
    idx = np.fromiter(indices, dtype=np.int64)
    mask[idx[idx >= 0]] = True
    return mask


def blend(factor_scores: FloatArray, catpop: FloatArray, drop: IdxArray, weight: float) -> FloatArray:
    """``weight`` × factor scores + (1 - weight) × category popularity, each divided by its
    largest magnitude among the candidates (all titles but ``drop``). Both inputs are
    scratch: they are overwritten."""
    factor_scores[drop] = 0.0
    catpop[drop] = 0.0  # category popularity is never negative
    top = max(float(factor_scores.max(initial=0.0)), -float(factor_scores.min(initial=0.0)))
    top_pop = float(catpop.max(initial=0.0))
    factor_scores *= np.float32(weight / top if top > 0 else weight)
    catpop *= np.float32((1 - weight) / top_pop if top_pop > 0 else 1 - weight)
    factor_scores += catpop
    return factor_scores


def top_n(scores: FloatArray, n: int) -> IdxArray:
    """Indices of the ``n`` largest scores, best first (ties: lower index first).

    The n-th largest of every 16th score bounds the answer from below, so only the few
    scores above it are partitioned and sorted, not all of them.
    """
    if n <= 0:
        return np.zeros(0, dtype=np.int64)
    candidates: IdxArray | None = None
    sample = scores[::16]
    if len(sample) > n:
        bound = np.partition(sample, len(sample) - n)[len(sample) - n]
        if np.isfinite(bound):
            candidates = np.flatnonzero(scores >= bound)
    if candidates is None:
        candidates = np.arange(len(scores), dtype=np.int64)
    picked = scores[candidates]
    if len(picked) > n:
        keep = np.argpartition(picked, len(picked) - n)[len(picked) - n :]
        candidates, picked = candidates[keep], picked[keep]
    order = np.lexsort((candidates, -picked))
    out: IdxArray = candidates[order]
    return out
