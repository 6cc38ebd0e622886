"""Frozen maps between the club's string ids and matrix indices.

External ids (``member_id``, ``title_id``) and matrix indices (``member_idx``,
``title_idx``) never mix: an :class:`IdMap` converts between them at the edge.
The ids are kept sorted as fixed-width bytes, so a map is one numpy array that
can be saved as ``.npy`` and memory-mapped by every API worker; lookups are a
binary search, no per-id Python objects.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

IdxArray = npt.NDArray[np.int64]


class IdMap:
    """Sorted, unique ids; index ``i`` is the id's row (or column) in a matrix."""

    __slots__ = ("_ids",)

    def __init__(self, ids: npt.NDArray[np.bytes_]) -> None:
        if ids.ndim != 1:
            raise ValueError(f"an IdMap needs a 1-d array of ids, got shape {ids.shape}")
        if len(ids) > 1 and not bool(np.all(ids[1:] > ids[:-1])):
            raise ValueError("IdMap ids must be sorted and unique (use IdMap.from_ids)")
        self._ids = ids

    @classmethod
    def from_ids(cls, ids: Iterable[str]) -> IdMap:
        """A map over ``ids`` (any order, duplicates dropped)."""
        encoded = [i.encode("utf-8") for i in ids]
        if not encoded:
            return cls(np.array([], dtype="S1"))
        return cls(np.unique(np.array(encoded, dtype=np.bytes_)))

    @classmethod
    def load(cls, path: Path, *, mmap: bool = True) -> IdMap:
        return cls(np.load(path, mmap_mode="r" if mmap else None))

    def save(self, path: Path) -> None:
        np.save(path, np.asarray(self._ids))

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, external_id: object) -> bool:
        return isinstance(external_id, str) and self.find(external_id) >= 0

    @property
    def ids(self) -> npt.NDArray[np.bytes_]:
        return self._ids

    def find(self, external_id: str) -> int:
        """The index of ``external_id``, or -1 when the map does not hold it."""
        return int(self.find_many([external_id])[0])

    def find_many(self, external_ids: Sequence[str]) -> IdxArray:
        """Indices of ``external_ids``; -1 where an id is not in the map."""
        if not external_ids or len(self._ids) == 0:
            return np.full(len(external_ids), -1, dtype=np.int64)
        wanted = np.array([i.encode("utf-8") for i in external_ids], dtype=np.bytes_)
        pos = np.searchsorted(self._ids, wanted).astype(np.int64)
        clipped = np.minimum(pos, len(self._ids) - 1)
        found = self._ids[clipped] == wanted
        return np.where(found, clipped, -1)

    def to_idx(self, external_ids: Sequence[str]) -> IdxArray:
        """Indices of ``external_ids``; ``KeyError`` naming the first unknown id."""
        idx = self.find_many(external_ids)
        missing = np.flatnonzero(idx < 0)
        if missing.size:
            raise KeyError(external_ids[int(missing[0])])
        return idx

    def to_id(self, idx: int) -> str:
        return bytes(self._ids[idx]).decode("utf-8")

    def to_ids(self, idx: Iterable[int]) -> list[str]:
        return [bytes(self._ids[i]).decode("utf-8") for i in idx]

    def all_ids(self) -> list[str]:
        return self.to_ids(range(len(self._ids)))
