"""A trained model as serving and catalogs see it: recommendations with reasons, on one scale.

Built by ``training`` (``training.artifact`` reads and writes its files) and
loaded through ``training.registry.ModelRegistry``. Member factors may be a
read-only memory map shared by every API worker; nothing here writes to them.

Scores: ``member_factor · title_factor``. Titles with no sales in the training
window carry the mean factor of the titles with sales in their category, so a
new release ranks against the backlist on the same scale. Members with thin
history get that blended with popularity in their categories; members the
model does not know get popularity in their declared categories.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from implicit.cpu.als import AlternatingLeastSquares
from threadpoolctl import threadpool_limits

from recsys.affinity import AffinityProfile, CategoryIndex
from recsys.errors import UnknownCategoryError, UnknownMemberError, UnknownTitleError
from recsys.idmap import IdMap
from recsys.recommenders.base import cosine_neighbours

FloatArray = npt.NDArray[np.float32]
WARM = -2  # placement of a title that had sales: it has its own factors
EXPLAIN_TOP = 3


@dataclass(frozen=True)
class Recommendation:
    title_id: str
    score: float
    reason: str
    reason_kind: str  # 'history' | 'new_in_category' | 'category_popular' | 'popular'
    because: tuple[str, ...]
    reason_zh: str = ""  # the same reason in Chinese, for the printed catalogs


@dataclass
class ModelParts:
    """Everything a trained model holds; ``training.artifact`` saves and loads it."""

    kind: str  # 'als' | 'bpr'
    params: dict[str, Any]
    members: IdMap
    titles: IdMap
    title_names: list[str]
    member_factors: FloatArray  # members × k (may be a read-only memmap)
    title_factors: FloatArray  # titles × k, cold titles placed
    member_titles: sp.csr_matrix  # members × titles, confidence
    categories: CategoryIndex
    title_categories: sp.csr_matrix  # titles × categories, all levels
    affinity: AffinityProfile
    popularity: FloatArray  # per title
    placement: npt.NDArray[np.int64]  # per title: WARM, a category column, or -1 (all titles)
    thin_history: float = 3.0
    min_titles: int = 3
    threads: int = 1
    extra_title_ids: list[str] = field(default_factory=list)  # added after training


class TrainedModel:
    def __init__(self, parts: ModelParts, version: str, trained_until: dt.datetime) -> None:
        self.parts, self.version, self.trained_until = parts, version, trained_until
        self._categories = parts.categories.position()
        self._extra = {t: len(parts.titles) + i for i, t in enumerate(parts.extra_title_ids)}
        self._lock = threading.Lock()
        self._als: AlternatingLeastSquares | None = None
        top = float(parts.popularity.max()) if parts.popularity.size else 0.0
        self._pop = (parts.popularity / top if top > 0 else parts.popularity).astype(np.float32)
        self._depth = (10.0 ** (np.asarray(parts.categories.levels) - 1)).astype(np.float32)

    # ---- ids ---------------------------------------------------------------
    def _title_idx(self, title_id: str) -> int:
        idx = self.parts.titles.find(title_id)
        return idx if idx >= 0 else self._extra.get(title_id, -1)

    def _title_id(self, idx: int) -> str:
        base = len(self.parts.titles)
        return (
            self.parts.titles.to_id(idx) if idx < base else self.parts.extra_title_ids[idx - base]
        )

    def _category_col(self, code: str) -> int:
        if code not in self._categories:
            raise UnknownCategoryError(f"unknown category {code!r}")
        return self._categories[code]

    def knows_member(self, member_id: str) -> bool:
        return self.parts.members.find(member_id) >= 0

    @property
    def n_titles(self) -> int:
        return int(self.parts.title_factors.shape[0])

    # ---- scoring -----------------------------------------------------------
    def _implicit_als(self) -> AlternatingLeastSquares:
        with self._lock:
            if self._als is None:
                p = self.parts.params
                with threadpool_limits(1, "blas"):
                    model = AlternatingLeastSquares(
                        factors=int(p["factors"]),
                        regularization=float(p["regularization"]),
                        alpha=float(p["alpha"]),
                        num_threads=self.parts.threads,
                    )
                model.item_factors = np.ascontiguousarray(self.parts.title_factors)
                model.user_factors = self.parts.member_factors
                self._als = model
            return self._als

    def _history_row(self, member_idx: int, recent: Sequence[tuple[str, float]]) -> sp.csr_matrix:
        """The member's confidence row, with purchases since training folded in."""
        n = self.n_titles
        if member_idx >= 0:
            row = self.parts.member_titles[member_idx]
            row = sp.csr_matrix((row.data, row.indices, row.indptr), shape=(1, n))
        else:
            row = sp.csr_matrix((1, n), dtype=np.float32)
        if recent:
            unit = (
                float(row.data.mean()) if row.nnz else float(self.parts.member_titles.data.mean())
            )
            cols = [self._title_idx(t) for t, _ in recent]
            vals = [
                unit * max(float(q), 0.0) for (_, q), c in zip(recent, cols, strict=True) if c >= 0
            ]
            cols = [c for c in cols if c >= 0]
            row = sp.csr_matrix(row + sp.csr_matrix((vals, ([0] * len(cols), cols)), shape=(1, n)))
            row.eliminate_zeros()
        return sp.csr_matrix(row, dtype=np.float32)

    def _member_vector(self, member_idx: int, row: sp.csr_matrix, recalc: bool) -> FloatArray:
        if recalc and self.parts.kind == "als" and row.nnz:
            return np.asarray(self._implicit_als().recalculate_user(0, row), dtype=np.float32)
        if member_idx >= 0:
            return np.asarray(self.parts.member_factors[member_idx], dtype=np.float32)
        return np.zeros(self.parts.title_factors.shape[1], dtype=np.float32)

    def _shares(self, member_idx: int, declared: Sequence[str]) -> FloatArray:
        """Category shares: the stored profile, or the declared favourites (with ancestors)."""
        shares: FloatArray = np.zeros(len(self.parts.categories), dtype=np.float32)
        if member_idx >= 0 and self.parts.affinity.member_totals[member_idx] > 0:
            for col, share in self.parts.affinity.shares(member_idx).items():
                shares[col] = share
            return shares
        known = [c for c in declared if c in self._categories]
        for code in known:
            for node in self.parts.categories.path(code):
                shares[self._categories[node]] += 1.0 / len(known)
        return shares

    def _category_popularity(self, shares: FloatArray) -> FloatArray:
        if not shares.any():
            return self._pop.copy()
        # a deeper class counts 10× its parent; popularity orders titles within a class
        affinity = np.asarray(self.parts.title_categories @ (shares * self._depth)).ravel()
        scores: FloatArray = (affinity * (0.5 + self._pop)).astype(np.float32)
        return scores

    def _candidates(
        self,
        bought: npt.NDArray[np.int32],
        exclude: Collection[str],
        only: Collection[str] | None,
        category: str | None,
    ) -> npt.NDArray[np.bool_]:
        ok = np.ones(self.n_titles, dtype=bool)
        ok[bought] = False
        for t in exclude:
            if (i := self._title_idx(t)) >= 0:
                ok[i] = False
        if only is not None:
            keep = np.zeros_like(ok)
            idx = [i for i in (self._title_idx(t) for t in only) if i >= 0]
            keep[idx] = True
            ok &= keep
        if category is not None:
            col = self.parts.title_categories[:, self._category_col(category)]
            ok &= np.asarray(col.todense()).ravel() > 0
        return ok

    def recommend(
        self,
        member_id: str,
        *,
        limit: int = 20,
        recent: Sequence[tuple[str, float]] = (),
        exclude_title_ids: Collection[str] = (),
        only_title_ids: Collection[str] | None = None,
        category: str | None = None,
        declared_categories: Sequence[str] = (),
    ) -> list[Recommendation]:
        """Titles for ``member_id``, best first, each with a readable reason."""
        member_idx = self.parts.members.find(member_id)
        row = self._history_row(member_idx, recent)
        ok = self._candidates(row.indices, exclude_title_ids, only_title_ids, category)
        shares = self._shares(member_idx, declared_categories)
        catpop = self._category_popularity(shares)
        history = float(row.nnz)
        if history > 0:
            vector = self._member_vector(member_idx, row, recalc=bool(recent))
            factor_scores = self.parts.title_factors @ vector
            weight = history / (history + self.parts.thin_history)
            scores = weight * _scaled(factor_scores, ok) + (1 - weight) * _scaled(catpop, ok)
        else:
            scores = catpop
        scores = np.where(ok, scores, -np.inf)
        n = int(min(limit, ok.sum()))
        if n <= 0:
            return []
        best = np.argpartition(-scores, n - 1)[:n]
        best = best[np.argsort(-scores[best], kind="stable")]
        explainer = _Explainer(self, row) if history > 0 else None
        return [self._with_reason(int(t), float(scores[t]), shares, explainer) for t in best]

    def _with_reason(
        self, t: int, score: float, shares: FloatArray, explainer: _Explainer | None
    ) -> Recommendation:
        title_id = self._title_id(t)
        placed = int(self.parts.placement[t])
        if placed != WARM:
            code = self._placement_code(t)
            if code is not None:
                name = self.parts.categories.names[self._categories[code]]
                col = self._categories[code]
                reads = shares[col] > self.parts.affinity.global_share[col]
                tail = ", a class you read" if reads else ""
                tail_zh = "，您常读的类别" if reads else ""
                return Recommendation(
                    title_id, score, f"new in {code} {name}{tail}", "new_in_category", (code,),
                    f"新书：{code} {name}{tail_zh}",
                )
        if explainer is not None:
            because = explainer.because(t)
            if because:
                names = "、".join(f"《{self._title_name(i)}》" for i in because)
                ids = tuple(self._title_id(i) for i in because)
                return Recommendation(
                    title_id, score, f"because you bought {names}", "history", ids,
                    f"因为您买过{names}",
                )
        cats = self.parts.title_categories[t]
        if shares.any() and cats.nnz:
            levels = np.asarray(self.parts.categories.levels)[cats.indices]
            read = shares[cats.indices] > 0
            key = np.where(read, levels * 10.0 + shares[cats.indices], -1.0)
            col = int(cats.indices[np.argmax(key)])
            code, name = self.parts.categories.codes[col], self.parts.categories.names[col]
            return Recommendation(
                title_id, score, f"popular in {code} {name}", "category_popular", (code,),
                f"{code} {name}类热销",
            )
        return Recommendation(title_id, score, "popular with members", "popular", (), "会员热选")

    def _placement_code(self, t: int) -> str | None:
        placed = int(self.parts.placement[t])
        if placed >= 0:
            return self.parts.categories.codes[placed]
        cats = self.parts.title_categories[t]
        if not cats.nnz:
            return None
        levels = np.asarray(self.parts.categories.levels)[cats.indices]
        return self.parts.categories.codes[int(cats.indices[np.argmax(levels)])]

    def _title_name(self, idx: int) -> str:
        names = self.parts.title_names
        return names[idx] if idx < len(names) else self._title_id(idx)

    def similar_titles(self, title_id: str, limit: int = 20) -> list[tuple[str, float]]:
        t = self._title_idx(title_id)
        if t < 0:
            raise UnknownTitleError(f"unknown title {title_id!r}")
        ids, scores = cosine_neighbours(self.parts.title_factors, t, limit)
        return [
            (self._title_id(int(i)), float(s)) for i, s in zip(ids, scores, strict=True) if i >= 0
        ]

    def score_titles(self, member_ids: Sequence[str], title_ids: Sequence[str]) -> np.ndarray:
        """members × titles on the factor scale (unknown members score as the mean member)."""
        cols = [self._title_idx(t) for t in title_ids]
        if missing := [t for t, c in zip(title_ids, cols, strict=True) if c < 0]:
            raise UnknownTitleError(f"unknown title {missing[0]!r}")
        rows = self.parts.members.find_many(list(member_ids))
        factors = self.parts.member_factors
        vectors = np.zeros((len(rows), factors.shape[1]), dtype=np.float32)
        if (rows >= 0).any():
            vectors[rows >= 0] = factors[rows[rows >= 0]]
        if (rows < 0).any():
            vectors[rows < 0] = self._mean_member()
        return np.asarray(vectors @ self.parts.title_factors[cols].T, dtype=np.float32)

    def _mean_member(self) -> FloatArray:
        factors = self.parts.member_factors
        step = 100_000
        total = np.zeros(factors.shape[1], dtype=np.float64)
        for start in range(0, factors.shape[0], step):
            total += np.asarray(factors[start : start + step], dtype=np.float64).sum(axis=0)
        mean: FloatArray = (total / max(factors.shape[0], 1)).astype(np.float32)
        return mean

    # ---- categories --------------------------------------------------------
    def category_affinity(self, member_id: str) -> dict[str, float]:
        idx = self.parts.members.find(member_id)
        if idx < 0:
            raise UnknownMemberError(f"unknown member {member_id!r}")
        codes = self.parts.categories.codes
        return {codes[c]: s for c, s in self.parts.affinity.shares(idx).items()}

    def affinity_matrix(self) -> tuple[list[str], list[str], sp.csr_matrix]:
        return (
            self.parts.members.all_ids(),
            list(self.parts.categories.codes),
            self.parts.affinity.smoothed_matrix(),
        )

    def member_factors(self) -> np.ndarray:
        return self.parts.member_factors

    def popular_in_category(self, code: str, limit: int = 20) -> list[tuple[str, float]]:
        col = self.parts.title_categories[:, self._category_col(code)]
        members = np.flatnonzero(np.asarray(col.todense()).ravel() > 0)
        order = members[np.argsort(-self._pop[members], kind="stable")][:limit]
        return [(self._title_id(int(t)), float(self._pop[t])) for t in order]

    def add_titles(self, titles: Sequence[tuple[str, Sequence[str]]]) -> None:
        """Titles added after training: placed in their categories, scored like new releases."""
        from recsys.affinity import place_titles

        fresh = [(t, c) for t, c in titles if self._title_idx(t) < 0]
        if not fresh:
            return
        p = self.parts
        rows = []
        for _, codes in fresh:
            known = [c for c in codes if c in self._categories]
            row = np.zeros(len(p.categories), dtype=np.float32)
            for code in known:
                for node in p.categories.path(code):
                    row[self._categories[node]] += 1.0 / len(known)
            rows.append(row)
        start = self.n_titles
        title_categories = sp.vstack([p.title_categories, sp.csr_matrix(np.vstack(rows))], "csr")
        warm = np.concatenate([p.placement == WARM, np.zeros(len(fresh), dtype=bool)])
        cold = np.arange(start, start + len(fresh), dtype=np.int64)
        placement = place_titles(
            title_categories, p.categories.levels, warm, cold, min_titles=p.min_titles
        )
        padded = np.vstack([p.title_factors, np.zeros((len(fresh), p.title_factors.shape[1]))])
        p.title_factors = placement.fill_vectors(padded.astype(np.float32))
        p.title_categories = title_categories
        p.placement = np.concatenate([p.placement, placement.category])
        p.popularity = np.concatenate([p.popularity, np.zeros(len(fresh), dtype=np.float32)])
        self._pop = np.concatenate([self._pop, np.zeros(len(fresh), dtype=np.float32)])
        for i, (title_id, _) in enumerate(fresh):
            p.extra_title_ids.append(title_id)
            self._extra[title_id] = start + i
        with self._lock:
            self._als = None


class _Explainer:
    """Which purchased titles drive a score: ``implicit``'s ALS explain, else factor cosine."""

    def __init__(self, model: TrainedModel, row: sp.csr_matrix) -> None:
        self.model, self.row = model, row
        self.weights: Any = None

    def because(self, t: int) -> list[int]:
        if self.model.parts.kind == "als":
            als = self.model._implicit_als()
            _, top, self.weights = als.explain(
                0, self.row, t, user_weights=self.weights, N=EXPLAIN_TOP
            )
            return [int(i) for i, s in top if s > 0]
        factors = self.model.parts.title_factors
        bought = self.row.indices
        sims = factors[bought] @ factors[t]
        order = np.argsort(-sims)[:EXPLAIN_TOP]
        return [int(bought[i]) for i in order if sims[i] > 0]


def _scaled(scores: FloatArray, ok: npt.NDArray[np.bool_]) -> FloatArray:
    """Scores divided by their largest magnitude among the candidates."""
    top = float(np.abs(scores[ok]).max()) if ok.any() else 0.0
    return (scores / top if top > 0 else scores).astype(np.float32)
