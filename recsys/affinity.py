"""Category mappings: titles → categories (all levels) and each member's category affinity.

A title's weight is spread over its category codes (1/n each) and carried up
to every ancestor, so each level of the tree sums to the title's weight. A
member's affinity for a category is the smoothed share of their weighted
purchases that fall in it::

    share(m, c) = (w(m, c) + prior × global_share(c)) / (w(m) + prior)

where declared favourite categories count as ``declared_weight`` purchases.
Only ``w(m, c)`` is stored (sparse); the smoothing is applied when read, so a
category the member never touched has share ``prior × global_share(c) / (w(m) + prior)``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from recsys.storage.categories import CategoryNode, ancestors


@dataclass(frozen=True)
class CategoryIndex:
    """Category codes as matrix columns, with names and the tree."""

    codes: list[str]
    names: list[str]
    parents: list[str | None]
    levels: list[int]

    @classmethod
    def build(cls, tree: Mapping[str, CategoryNode], used: Iterable[str]) -> CategoryIndex:
        """The used codes and all their ancestors (codes missing from the tree stand alone)."""
        wanted: set[str] = set()
        for code in used:
            wanted.update(ancestors(dict(tree), code) or [code])
        codes = sorted(wanted)
        nodes = [tree.get(c) for c in codes]
        return cls(
            codes=codes,
            names=[n.name if n else c for c, n in zip(codes, nodes, strict=True)],
            parents=[n.parent_code if n else None for n in nodes],
            levels=[n.level if n else 1 for n in nodes],
        )

    def __len__(self) -> int:
        return len(self.codes)

    def position(self) -> dict[str, int]:
        """code → column (computed once)."""
        cached: dict[str, int] | None = self.__dict__.get("_position")
        if cached is None:
            cached = {c: i for i, c in enumerate(self.codes)}
            self.__dict__["_position"] = cached
        return cached

    def path(self, code: str) -> list[str]:
        """``code`` and its ancestors, nearest first."""
        pos = self.position()
        out: list[str] = []
        current: str | None = code
        while current is not None and current in pos and current not in out:
            out.append(current)
            current = self.parents[pos[current]]
        return out

    def to_arrays(self) -> dict[str, npt.NDArray[np.str_] | npt.NDArray[np.int64]]:
        return {
            "codes": np.array(self.codes, dtype=np.str_),
            "names": np.array(self.names, dtype=np.str_),
            "parents": np.array([p or "" for p in self.parents], dtype=np.str_),
            "levels": np.array(self.levels, dtype=np.int64),
        }

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, npt.NDArray[np.generic]]) -> CategoryIndex:
        return cls(
            codes=[str(c) for c in arrays["codes"]],
            names=[str(n) for n in arrays["names"]],
            parents=[str(p) or None for p in arrays["parents"]],
            levels=[int(v) for v in arrays["levels"]],
        )


def spread_over_ancestors(
    codes: Iterable[str], path: Callable[[str], Sequence[str]], position: Mapping[str, int]
) -> dict[int, float]:
    """The one way categories are spread over the tree: ``{column: weight}``.

    ``path(code)`` is the code and its ancestors (``CategoryIndex.path``, or
    ``recsys.storage.categories.ancestors`` over a tree); ``position`` maps the codes that
    have a column. Each code with at least one node in ``position`` weighs 1/n (n = such
    codes) and adds that weight to every node of its path that has a column. Used for a
    title's categories (:func:`title_category_matrix`, titles added after training), a
    member's declared favourites (the served model's cold start, catalog segments).
    """
    paths = [[position[node] for node in path(code) if node in position] for code in codes]
    paths = [p for p in paths if p]
    out: dict[int, float] = {}
    for columns in paths:
        for col in columns:
            out[col] = out.get(col, 0.0) + 1.0 / len(paths)
    return out


def title_category_matrix(
    pairs: Sequence[tuple[int, str]],
    n_titles: int,
    index: CategoryIndex,
    *,
    with_ancestors: bool = True,
) -> sp.csr_matrix:
    """titles × categories: a title's codes weigh 1/n each, carried up to every ancestor
    (:func:`spread_over_ancestors`)."""
    pos = index.position()
    per_title: dict[int, list[str]] = {}
    for title_idx, code in pairs:
        if code in pos:
            per_title.setdefault(title_idx, []).append(code)
    path: Callable[[str], Sequence[str]] = index.path if with_ancestors else (lambda code: [code])
    rows: list[int] = []
    cols: list[int] = []
    vals: list[float] = []
    for title_idx, codes in per_title.items():
        for col, weight in spread_over_ancestors(codes, path, pos).items():
            rows.append(title_idx)
            cols.append(col)
            vals.append(weight)
    coords = (np.array(rows, dtype=np.int64), np.array(cols, dtype=np.int64))
    matrix = sp.csr_matrix((np.array(vals, dtype=np.float32), coords), shape=(n_titles, len(index)))
    matrix.sum_duplicates()
    return matrix


@dataclass(frozen=True)
class AffinityProfile:
    """Members' category affinity: stored raw weights, smoothed on read."""

    member_weights: sp.csr_matrix  # members × categories, weighted purchases (+ declared)
    member_totals: npt.NDArray[np.float32]  # per member, weight with a category
    global_share: npt.NDArray[np.float32]  # per category, share of all weight
    prior: float

    def shares(self, member_idx: int) -> dict[int, float]:
        """Smoothed share of every category the member touched, by column."""
        cols, vals = self.share_columns(member_idx)
        return {int(c): float(v) for c, v in zip(cols, vals, strict=True)}

    def share_columns(self, member_idx: int) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.float32]]:
        """:meth:`shares` as (columns, shares) arrays: what a request sets into a dense row."""
        indptr = self.member_weights.indptr
        start, end = indptr[member_idx], indptr[member_idx + 1]
        cols = self.member_weights.indices[start:end]
        denom = float(self.member_totals[member_idx]) + self.prior
        if denom <= 0:
            return cols[:0], np.zeros(0, dtype=np.float32)
        raw = self.member_weights.data[start:end]
        vals: npt.NDArray[np.float32] = (raw + self.prior * self.global_share[cols]) / denom
        return cols, vals

    def baseline(self, member_idx: int) -> npt.NDArray[np.float32]:
        """Share of each category for a member with no weight in it."""
        denom = float(self.member_totals[member_idx]) + self.prior
        if denom <= 0:
            return self.global_share.copy()
        baseline: npt.NDArray[np.float32] = (self.prior * self.global_share / denom).astype(
            np.float32
        )
        return baseline

    def dense_rows(self, member_idx: npt.NDArray[np.int64]) -> npt.NDArray[np.float32]:
        """Smoothed shares of every category for the given members (rows)."""
        raw = self.member_weights[member_idx].toarray()
        denom = self.member_totals[member_idx][:, None] + self.prior
        denom = np.where(denom > 0, denom, 1.0)
        shares: npt.NDArray[np.float32] = (
            (raw + self.prior * self.global_share[None, :]) / denom
        ).astype(np.float32)
        return shares

    def smoothed_matrix(self) -> sp.csr_matrix:
        """members × categories with smoothed shares where the member has weight."""
        out = self.member_weights.astype(np.float32, copy=True)
        rows = np.repeat(np.arange(out.shape[0]), np.diff(out.indptr))
        denom = self.member_totals[rows] + self.prior
        smoothed = out.data + self.prior * self.global_share[out.indices]
        out.data = smoothed / np.maximum(denom, 1e-9)
        return out

    def save(self, path: Path) -> None:
        np.savez(
            path,
            data=self.member_weights.data,
            indices=self.member_weights.indices,
            indptr=self.member_weights.indptr,
            shape=np.array(self.member_weights.shape, dtype=np.int64),
            totals=self.member_totals,
            global_share=self.global_share,
            prior=np.array([self.prior]),
        )

    @classmethod
    def load(cls, path: Path) -> AffinityProfile:
        with np.load(path) as f:
            shape = tuple(int(v) for v in f["shape"])
            weights = sp.csr_matrix((f["data"], f["indices"], f["indptr"]), shape=shape)
            return cls(weights, f["totals"], f["global_share"], float(f["prior"][0]))


def build_affinity(
    member_titles: sp.csr_matrix,
    title_categories: sp.csr_matrix,
    *,
    declared: Sequence[tuple[int, int]] = (),
    declared_weight: float = 2.0,
    prior: float = 5.0,
    declared_paths: Mapping[int, Sequence[int]] | None = None,
) -> AffinityProfile:
    """Profiles from weighted purchases (member×title) and titles×categories (all levels).

    ``declared`` holds (member_idx, category column) favourites; each adds
    ``declared_weight`` to the category and, via ``declared_paths``, to its ancestors.
    """
    if member_titles.shape[1] != title_categories.shape[0]:
        raise ValueError(
            f"member_titles has {member_titles.shape[1]} titles, title_categories {title_categories.shape[0]}"
        )
    n_members, n_cats = member_titles.shape[0], title_categories.shape[1]
    weights = sp.csr_matrix(member_titles @ title_categories, dtype=np.float32)
    # total weight on titles that have a category: the level-1 mass per member
    has_category = np.asarray(title_categories.sum(axis=1)).ravel() > 0
    totals = np.asarray(member_titles @ has_category.astype(np.float32)).ravel().astype(np.float32)
    if declared and declared_weight > 0:
        rows, cols = [], []
        paths = declared_paths or {}
        members_declaring: dict[int, int] = {}
        for member_idx, _col in declared:
            members_declaring[member_idx] = members_declaring.get(member_idx, 0) + 1
        for member_idx, col in declared:
            for node in paths.get(col, [col]):
                rows.append(member_idx)
                cols.append(node)
        vals = np.array([declared_weight / members_declaring[r] for r in rows], dtype=np.float32)
        extra = sp.csr_matrix((vals, (rows, cols)), shape=(n_members, n_cats))
        weights = sp.csr_matrix(weights + extra, dtype=np.float32)
        for member_idx, count in members_declaring.items():
            totals[member_idx] += declared_weight if count else 0.0
    weights.eliminate_zeros()
    col_mass = np.asarray(weights.sum(axis=0)).ravel()
    grand = float(totals.sum())
    global_share = (col_mass / grand if grand > 0 else np.zeros(n_cats)).astype(np.float32)
    return AffinityProfile(weights, totals, global_share, prior)


DENSE_GROUPS = 1024


@dataclass(frozen=True)
class Placement:
    """Where titles without sales borrow their scores: the mean of warm titles in a category.

    ``peers`` is titles × groups (a group = one category used for placement, or
    all warm titles), each column averaging its warm titles; ``group[i]`` is the
    column cold title ``cold_idx[i]`` reads.
    """

    cold_idx: npt.NDArray[np.int64]  # titles placed
    category: npt.NDArray[np.int64]  # the category column each was placed in (-1: all titles)
    peers: sp.csc_matrix  # titles × groups, column means over warm titles
    group: npt.NDArray[np.int64]  # per cold title, its column of ``peers``

    def fill_vectors(self, title_vectors: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """titles × k: a placed title's vector becomes the mean of its peers' vectors."""
        out = np.array(title_vectors, dtype=np.float32, copy=True)
        if len(self.cold_idx):
            means = np.asarray(self.peers.T @ out, dtype=np.float32)
            out[self.cold_idx] = means[self.group]
        return out

    def fill_scores(self, scores: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """members × titles: a placed title scores the mean of its peers' scores.

        For a factor model this equals scoring with :meth:`fill_vectors` (it is linear).
        """
        out = np.array(scores, dtype=np.float32, copy=True)
        if len(self.cold_idx):
            if self.peers.shape[1] <= DENSE_GROUPS:  # a BLAS product beats sparse × dense here
                means = out @ self.peers.toarray()
            else:
                means = np.asarray(self.peers.T @ out.T, dtype=np.float32).T
            out[:, self.cold_idx] = means[:, self.group]
        return out


def place_titles(
    title_categories: sp.csr_matrix,
    levels: Sequence[int],
    warm: npt.NDArray[np.bool_],
    cold_idx: npt.NDArray[np.int64],
    *,
    min_titles: int = 3,
) -> Placement:
    """Place each cold title in its deepest category holding ``min_titles`` warm titles.

    ``title_categories`` is titles × categories (all levels); a title none of
    whose categories qualifies is placed among all warm titles (column -1).
    """
    if title_categories.shape[0] != len(warm):
        raise ValueError("warm must have one flag per title row of title_categories")
    member = sp.csc_matrix((title_categories > 0).astype(np.float32))
    member = sp.csc_matrix(member.multiply(warm.astype(np.float32)[:, None]))
    member.eliminate_zeros()
    counts = np.diff(member.indptr)
    level_arr = np.asarray(levels, dtype=np.int64)
    chosen = np.full(len(cold_idx), -1, dtype=np.int64)
    tc = title_categories.tocsr()
    for i, t in enumerate(cold_idx):
        cats = tc.indices[tc.indptr[t] : tc.indptr[t + 1]]
        ok = cats[counts[cats] >= min_titles]
        if ok.size:
            chosen[i] = int(ok[np.argmax(level_arr[ok])])
    used, group = np.unique(chosen, return_inverse=True)
    columns = []
    for c in used:
        if c >= 0:
            columns.append(member[:, int(c)] / max(float(counts[c]), 1.0))
        else:
            columns.append(sp.csc_matrix(warm.astype(np.float32)[:, None] / max(warm.sum(), 1)))
    n_titles = title_categories.shape[0]
    peers = sp.hstack(columns, "csc") if columns else sp.csc_matrix((n_titles, 0))
    return Placement(
        cold_idx.astype(np.int64),
        chosen,
        sp.csc_matrix(peers, dtype=np.float32),
        group.astype(np.int64).ravel(),
    )
