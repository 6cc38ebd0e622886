"""A trained model as serving and catalogs see it: recommendations with reasons, on one scale.

Built by ``training`` (``training.artifact`` reads and writes its files) and
loaded through ``training.registry.ModelRegistry``. Member factors may be a
read-only memory map shared by every API worker; nothing here writes to them.

Scores: ``member_factor · title_factor`` (ALS, BPR). Titles with no sales in the
training window carry the mean factor of the titles with sales in their category, so a
new release ranks against the backlist on the same scale. Members with thin
history get that blended with popularity in their categories; members the
model does not know get popularity in their declared categories.

The served recommender need not have factors (``bookclub tune`` may choose another):

- ``item_knn``: ``history confidence @ similarity``; a title without sales scores the
  mean of its category's titles (the same placement, on scores instead of vectors);
  "because you bought X" names the purchases whose similarity contributes most.
- ``blend``: both — ALS's factors (purchases since training folded in, as for ALS) and
  item-kNN's similarity; each score standardised over the titles the member has not bought
  and mixed with the tuned weight (:mod:`recsys.recommenders.blend`), then treated like
  ALS's score (thin histories blended with category popularity). A title's reason comes
  from the component that adds more to its blended score: ALS's decomposition over the
  history, or item-kNN's most contributing purchases.
- ``popularity``: the window's best-sellers for every member with history (not blended).
- ``category_popularity``: popularity in the member's categories, which is what the
  blend above gives a member without history; reasons name the category.

Cold start (members without history) is the same for every kind.

(Past 400 lines because it is one class, the served model: its ids, scoring for every kind, reasons and cold-title placement share one index and the same per-request arrays; split, each part would reach into the others' state.)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from recsys.affinity import Placement, place_titles, spread_over_ancestors
from recsys.errors import UnknownCategoryError, UnknownMemberError, UnknownTitleError
from recsys.model.explain import MemberSystem, history_reasons
from recsys.model.index import ServingIndex, TitleMask, blend, mask_of, top_n
from recsys.model.parts import FACTOR_KINDS, WARM, ModelParts, Recommendation
from recsys.recommenders.base import cosine_neighbours
from recsys.recommenders.blend import mix, standardise_row

FloatArray = npt.NDArray[np.float32]
IdxArray = npt.NDArray[np.int64]
EXPLAIN_TOP = 3
_FEW_IDS = 256  # up to this many title ids are looked up in a dict, more in the sorted id array


class TrainedModel:
    def __init__(self, parts: ModelParts, version: str, trained_until: dt.datetime) -> None:
        self.parts, self.version, self.trained_until = parts, version, trained_until
        self._categories = parts.categories.position()
        self._extra = {t: len(parts.titles) + i for i, t in enumerate(parts.extra_title_ids)}
        self._index = ServingIndex.build(parts)
        self._placement = self._place()
        self._unit: float | None = None
        self._title_ids = parts.titles.all_ids()  # the strings once, not per answer
        self._member_ids = np.asarray(parts.members.ids)  # the map's pages, as a plain array
        self._positions: dict[str, int] | None = None
        self._quoted: dict[int, str] = {}

    def _place(self) -> Placement | None:
        """Where titles without sales borrow their scores from (models without factors only)."""
        p = self.parts
        if p.kind in FACTOR_KINDS:
            return None
        warm = p.placement == WARM
        return place_titles(
            p.title_categories, p.categories.levels, warm, np.flatnonzero(~warm).astype(np.int64),
            min_titles=p.min_titles,
        )  # fmt: skip

    # ---- ids ---------------------------------------------------------------
    def _title_idx(self, title_id: str) -> int:
        idx = self.parts.titles.find(title_id)
        return idx if idx >= 0 else self._extra.get(title_id, -1)

    def _title_idx_many(self, title_ids: Collection[str]) -> IdxArray:
        """Indices of ``title_ids`` in one search; -1 for ids the model does not know."""
        ids = list(title_ids)
        if len(ids) <= _FEW_IDS:  # a member's purchases, on every request: no bytes array to search
            positions, extra = self._title_positions(), self._extra
            return np.array([positions.get(t, extra.get(t, -1)) for t in ids], dtype=np.int64)
        idx = self.parts.titles.find_many(ids)
        if self._extra and (missing := np.flatnonzero(idx < 0)).size:
            for i in missing:
                idx[i] = self._extra.get(ids[i], -1)
        return idx

    def _title_positions(self) -> dict[str, int]:
        """``title_id`` → ``title_idx`` of the trained titles, as a dict (built at first use)."""
        positions = self._positions
        if positions is None:
            positions = self._positions = {t: i for i, t in enumerate(self._title_ids)}
        return positions

    def _title_id(self, idx: int) -> str:
        ids = self._title_ids
        return ids[idx] if idx < len(ids) else self.parts.extra_title_ids[idx - len(ids)]

    def _category_col(self, code: str) -> int:
        if code not in self._categories:
            raise UnknownCategoryError(f"unknown category {code!r}")
        return self._categories[code]

    def _member_idx(self, member_id: str) -> int:
        """``members.find`` for one id, without building arrays (once per request)."""
        ids, key = self._member_ids, member_id.encode("utf-8")
        if not len(ids) or len(key) > ids.dtype.itemsize:
            return -1
        pos = int(np.searchsorted(ids, key))
        return pos if pos < len(ids) and bytes(ids[pos]) == key else -1

    def knows_member(self, member_id: str) -> bool:
        return self._member_idx(member_id) >= 0

    @property
    def n_titles(self) -> int:
        return int(self.parts.title_factors.shape[0])

    def _similarity_scores(self, history: IdxArray, confidence: npt.NDArray[np.float64]) -> FloatArray:
        """item-kNN: ``confidence @ similarity[history]`` over every title, placed titles filled."""
        sim = self.parts.similarity
        assert sim is not None and self._placement is not None
        scores = np.zeros(self.n_titles, dtype=np.float32)
        known = history < sim.shape[0]  # titles added after training have no row
        if known.any():
            rows = sim[history[known]]
            scores[: sim.shape[1]] = np.asarray(rows.T @ confidence[known], dtype=np.float32).ravel()
        filled: FloatArray = self._fill_placed(scores[None, :])[0]
        return filled

    def _fill_placed(self, scores: FloatArray) -> FloatArray:
        """rows × titles: a title without sales scores the mean of its peers (``Placement``'s
        rule, computed sparse: no titles × groups array per request)."""
        placement = self._placement
        assert placement is not None
        if len(placement.cold_idx):
            means = np.asarray(placement.peers.T @ scores.T, dtype=np.float32).T  # rows × groups
            scores[:, placement.cold_idx] = means[:, placement.group]
        return scores

    def _similarity_reasons(
        self, best: IdxArray, history: IdxArray, confidence: npt.NDArray[np.float64]
    ) -> list[list[int]]:
        """Per returned title, up to ``EXPLAIN_TOP`` purchases whose ``confidence × similarity``
        adds most to its score (none for a placed title: its reason is its category)."""
        sim = self.parts.similarity
        assert sim is not None
        known = history < sim.shape[0]
        hist, conf = history[known], confidence[known]
        targets = best[best < sim.shape[1]]
        if not len(hist) or not len(targets):
            return [[] for _ in best]
        contrib = np.asarray(sim[hist][:, targets].todense(), dtype=np.float64) * conf[:, None]
        order = np.argsort(-contrib, axis=0, kind="stable")[:EXPLAIN_TOP]
        found = {
            int(t): [int(hist[r]) for r in order[:, c] if contrib[r, c] > 0] for c, t in enumerate(targets.tolist())
        }
        return [found.get(int(t), []) for t in best]

    def title_mask(self, title_ids: Collection[str]) -> TitleMask:
        """``title_ids`` as a :class:`TitleMask`: build once, pass as ``exclude_title_ids`` often."""
        ids = list(dict.fromkeys(title_ids))
        idx = self._title_idx_many(ids).tolist()
        known = [t for i, t in zip(idx, ids, strict=True) if i >= 0]
        unknown = frozenset(t for i, t in zip(idx, ids, strict=True) if i < 0)
        return TitleMask(mask_of(idx, self.n_titles), known, unknown)

    # ---- scoring -----------------------------------------------------------
    def _history(
        self, member_idx: int, recent: Sequence[tuple[str, float]]
    ) -> tuple[IdxArray, npt.NDArray[np.float64]]:
        """(title_idx, confidence) of the member's history, purchases since training folded in."""
        mt = self.parts.member_titles
        if member_idx >= 0:
            start, end = int(mt.indptr[member_idx]), int(mt.indptr[member_idx + 1])
            cols = np.asarray(mt.indices[start:end], dtype=np.int64)
            vals = np.asarray(mt.data[start:end], dtype=np.float64)
        else:
            cols, vals = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
        if not recent:
            keep = vals != 0
            return cols[keep], vals[keep]
        unit = float(vals.mean()) if len(vals) else self._mean_confidence()
        fresh = self._title_idx_many([t for t, _ in recent])
        # a return is a negative quantity; -inf: every copy returned, the title leaves the history
        qty = np.array([float(q) for _, q in recent], dtype=np.float64)
        cols = np.concatenate([cols, fresh[fresh >= 0]])
        vals = np.concatenate([vals, unit * qty[fresh >= 0]])
        uniq, inverse = np.unique(cols, return_inverse=True)
        summed = np.asarray(np.bincount(inverse, weights=vals, minlength=len(uniq)), dtype=np.float64)
        keep = summed > 0
        return uniq[keep], summed[keep]

    def _mean_confidence(self) -> float:
        """Mean confidence of a training purchase: the weight of one bought since (cached)."""
        if self._unit is None:
            data = self.parts.member_titles.data
            self._unit = float(np.mean(data, dtype=np.float64)) if len(data) else 1.0
        return self._unit

    def _shares(self, member_idx: int, declared: Sequence[str]) -> FloatArray:
        """Category shares: the stored profile, or the declared favourites (with ancestors)."""
        shares: FloatArray = np.zeros(len(self.parts.categories), dtype=np.float32)
        if member_idx >= 0 and self.parts.affinity.member_totals[member_idx] > 0:
            cols, vals = self.parts.affinity.share_columns(member_idx)
            shares[cols] = vals
            return shares
        for col, weight in spread_over_ancestors(declared, self.parts.categories.path, self._categories).items():
            shares[col] = weight
        return shares

    def _candidates(
        self,
        bought: IdxArray,
        exclude: Collection[str],
        only: Collection[str] | None,
        category: str | None,
    ) -> npt.NDArray[np.bool_]:
        n = self.n_titles
        if isinstance(exclude, TitleMask):
            ok = ~exclude.padded(n)
            if exclude.extra:
                idx = self._title_idx_many(exclude.extra)
                ok[idx[idx >= 0]] = False
        else:
            ok = np.ones(n, dtype=bool)
            if exclude:
                idx = self._title_idx_many(exclude)
                ok[idx[idx >= 0]] = False
        ok[bought] = False
        if only is not None:
            keep = only.padded(n) if isinstance(only, TitleMask) else None
            if keep is None:
                keep = mask_of(self._title_idx_many(only).tolist(), n)
            ok &= keep
        if category is not None:
            ok &= self._index.in_category(self._category_col(category))
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
        """Titles for ``member_id``, best first, each with a readable reason.

        ``exclude_title_ids`` / ``only_title_ids`` may be :class:`TitleMask` objects
        (:meth:`title_mask`): no id is converted per call then.
        """
        index = self._index  # one reference for the whole call (add_titles swaps it)
        member_idx = self._member_idx(member_id)
        history, confidence = self._history(member_idx, recent)
        ok = self._candidates(history, exclude_title_ids, only_title_ids, category)
        drop = np.flatnonzero(~ok)  # a few thousand at most: cheaper to index than to mask
        shares = self._shares(member_idx, declared_categories)
        catpop = index.category_popularity(shares)
        system: MemberSystem | None = None
        kind = self.parts.kind
        mixed: tuple[FloatArray, FloatArray] | None = None  # a blend's two weighted parts
        thin = len(history) / (len(history) + self.parts.thin_history) if len(history) else 0.0
        if kind == "popularity" and len(history):
            scores = index.pop.copy()
        elif kind == "item_knn" and len(history):
            scores = blend(self._similarity_scores(history, confidence), catpop, drop, thin)
        elif len(history) and kind in FACTOR_KINDS:
            factor_scores, system = self._factor_scores(index, member_idx, history, confidence, bool(recent))
            scores = blend(factor_scores, catpop, drop, thin)
        elif kind == "blend" and len(history):
            factor_scores, system = self._factor_scores(index, member_idx, history, confidence, bool(recent))
            mixed = self._blend_parts(factor_scores, self._similarity_scores(history, confidence), history)
            scores = blend(mixed[0] + mixed[1], catpop, drop, thin)
        else:
            scores = catpop
        scores[drop] = -np.inf
        best = top_n(scores, min(limit, self.n_titles - len(drop)))
        if not len(best):
            return []
        if kind in FACTOR_KINDS:
            reasons = history_reasons(index.title_factors, best, history, system, EXPLAIN_TOP)
        elif kind == "item_knn":
            reasons = self._similarity_reasons(best, history, confidence)
        elif mixed is not None:
            reasons = self._blend_reasons(index, best, history, confidence, system, mixed)
        else:
            reasons = [[] for _ in best]
        reads_any = bool(shares.any())
        return [
            self._with_reason(index, t, s, shares, because, placed, reads_any)
            for t, s, because, placed in zip(
                best.tolist(), scores[best].tolist(), reasons, self.parts.placement[best].tolist(), strict=True
            )
        ]

    def _factor_scores(
        self, index: ServingIndex, member_idx: int, history: IdxArray, confidence: npt.NDArray[np.float64],
        recent: bool,
    ) -> tuple[FloatArray, MemberSystem | None]:  # fmt: skip
        """Factor scores of every title (ALS: purchases since training folded in) and, for
        ALS, the member's normal equations (its reasons)."""
        system: MemberSystem | None = None
        if self.parts.kind in ("als", "blend"):
            alpha = float(self.parts.factor_params.get("alpha", 1.0))
            system = MemberSystem.build(index.title_factors, index.gram, history, confidence * alpha)
        if recent and system is not None:
            vector = system.member_vector()
        elif member_idx >= 0:
            vector = np.asarray(self.parts.member_factors[member_idx], dtype=np.float32)
        else:
            vector = np.zeros(index.title_factors.shape[1], dtype=np.float32)
        scores: FloatArray = index.title_factors @ vector
        return scores, system

    def _blend_parts(self, als: FloatArray, knn: FloatArray, history: IdxArray) -> tuple[FloatArray, FloatArray]:
        """(w × standardised ALS, (1 − w) × standardised item-kNN) over every title, both
        standardised over the titles the member has not bought, before any query filter
        (:mod:`recsys.recommenders.blend`: the two scales do not change with the filter)."""
        weight = float(self.parts.params.get("weight", 0.5))
        return (
            np.float32(weight) * standardise_row(als, history),
            np.float32(1.0 - weight) * standardise_row(knn, history),
        )

    def _blend_reasons(
        self, index: ServingIndex, best: IdxArray, history: IdxArray, confidence: npt.NDArray[np.float64],
        system: MemberSystem | None, parts: tuple[FloatArray, FloatArray],
    ) -> list[list[int]]:  # fmt: skip
        """Per returned title, the reasons of the component that adds more to its blended
        score: ALS's decomposition over the history, or item-kNN's most contributing purchases."""
        by_als = parts[0][best] >= parts[1][best]
        reasons: list[list[int]] = [[] for _ in best]
        if by_als.any():
            found = history_reasons(index.title_factors, best[by_als], history, system, EXPLAIN_TOP)
            for i, r in zip(np.flatnonzero(by_als).tolist(), found, strict=True):
                reasons[i] = r
        if (~by_als).any():
            found = self._similarity_reasons(best[~by_als], history, confidence)
            for i, r in zip(np.flatnonzero(~by_als).tolist(), found, strict=True):
                reasons[i] = r
        return reasons

    def _with_reason(
        self,
        index: ServingIndex,
        t: int,
        score: float,
        shares: FloatArray,
        because: list[int],
        placed: int,
        reads_any: bool,
    ) -> Recommendation:
        title_id = self._title_id(t)
        if placed != WARM:
            code = self._placement_code(index, t)
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
        if because:
            names = "、".join(map(self._quoted_name, because))
            ids = tuple(map(self._title_id, because))
            return Recommendation(
                title_id, score, f"because you bought {names}", "history", ids,
                f"因为您买过{names}",
            )
        cats = index.codes_of(t).tolist()
        if cats and reads_any:
            # the deepest class the member reads, then the one read most; else the first code
            col = max(cats, key=lambda c: index.levels[c] * 10.0 + shares[c] if shares[c] > 0 else -1.0)
            code, name = self.parts.categories.codes[col], self.parts.categories.names[col]
            return Recommendation(
                title_id, score, f"popular in {code} {name}", "category_popular", (code,),
                f"{code} {name}类热销",
            )
        return Recommendation(title_id, score, "popular with members", "popular", (), "会员热选")

    def _placement_code(self, index: ServingIndex, t: int) -> str | None:
        placed = int(self.parts.placement[t])
        if placed >= 0:
            return self.parts.categories.codes[placed]
        cats = index.codes_of(t)
        if not len(cats):
            return None
        return self.parts.categories.codes[int(cats[np.argmax(index.levels[cats])])]

    def _quoted_name(self, idx: int) -> str:
        """《name》, as reasons quote a title (kept: the same titles come back often)."""
        found = self._quoted.get(idx)
        if found is None:
            found = self._quoted[idx] = f"《{self._title_name(idx)}》"
        return found

    def _title_name(self, idx: int) -> str:
        names = self.parts.title_names
        return names[idx] if idx < len(names) else self._title_id(idx)

    def similar_titles(self, title_id: str, limit: int = 20) -> list[tuple[str, float]]:
        t = self._title_idx(title_id)
        if t < 0:
            raise UnknownTitleError(f"unknown title {title_id!r}")
        if self.parts.kind in FACTOR_KINDS or self.parts.kind == "blend":  # a blend: its ALS factors
            ids, scores = cosine_neighbours(self.parts.title_factors, t, limit)
        elif self.parts.kind == "item_knn" and self.parts.similarity is not None and t < self.parts.similarity.shape[0]:
            row = self.parts.similarity.getrow(t).toarray()[0].astype(np.float32)
            row[row <= 0] = -np.inf
            row[t] = -np.inf
            ids = top_n(row, limit)
            scores = row[ids]
            keep = np.isfinite(scores)
            ids, scores = ids[keep], scores[keep]
        else:  # no likeness learnt: best-sellers sharing the title's categories
            profile = self._index.title_categories.toarray() * np.log1p(self._index.pop * 100.0)[:, None]
            ids, scores = cosine_neighbours(profile.astype(np.float32), t, limit)
        return [
            (self._title_id(int(i)), float(s)) for i, s in zip(ids, scores, strict=True) if i >= 0
        ]

    def score_titles(self, member_ids: Sequence[str], title_ids: Sequence[str]) -> np.ndarray:
        """members × titles on the model's scale (unknown members score as the mean member):
        factor dot products, item-kNN sums, a blend's standardised mix, popularity."""
        cols = [self._title_idx(t) for t in title_ids]
        if missing := [t for t, c in zip(title_ids, cols, strict=True) if c < 0]:
            raise UnknownTitleError(f"unknown title {missing[0]!r}")
        rows = self.parts.members.find_many(list(member_ids))
        idx = np.asarray(cols, dtype=np.int64)
        kind = self.parts.kind
        if kind == "blend":
            return self._score_titles_blended(rows, idx)
        if kind not in FACTOR_KINDS:
            return self._score_titles_without_factors(rows, idx)
        return np.asarray(self._member_vectors(rows) @ self.parts.title_factors[cols].T, dtype=np.float32)

    def _member_vectors(self, rows: IdxArray) -> FloatArray:
        factors = self.parts.member_factors
        vectors = np.zeros((len(rows), factors.shape[1]), dtype=np.float32)
        if (rows >= 0).any():
            vectors[rows >= 0] = factors[rows[rows >= 0]]
        if (rows < 0).any():
            vectors[rows < 0] = self._mean_member()
        return vectors

    def _score_titles_without_factors(self, rows: IdxArray, cols: IdxArray) -> np.ndarray:
        """:meth:`score_titles` for item-kNN (history @ similarity; unknown members as the mean
        member) and the popularity kinds (popularity, on every row)."""
        if self.parts.kind != "item_knn":
            return np.broadcast_to(self._index.pop[cols], (len(rows), len(cols))).astype(np.float32)
        return np.asarray(self._similarity_rows(rows)[:, cols], dtype=np.float32)

    def _similarity_rows(self, rows: IdxArray) -> FloatArray:
        """rows × every title: history @ similarity (the mean history row for ``rows`` < 0),
        titles without sales placed."""
        sim = self.parts.similarity
        assert sim is not None and self._placement is not None
        mt = self.parts.member_titles
        scores = np.zeros((len(rows), self.n_titles), dtype=np.float32)
        scores[:, : sim.shape[1]] = np.asarray((mt[np.maximum(rows, 0)] @ sim).todense(), dtype=np.float32)
        if (rows < 0).any():  # the mean member: the mean history row
            mean = sp.csr_matrix(np.asarray(mt.mean(axis=0), dtype=np.float32))
            scores[rows < 0, : sim.shape[1]] = np.asarray((mean @ sim).todense(), dtype=np.float32)[0]
        return self._fill_placed(scores)

    def _score_titles_blended(self, rows: IdxArray, cols: IdxArray) -> np.ndarray:
        """:meth:`score_titles` for a blend: both components over every title, standardised
        over the titles each member has not bought (every title for the mean member), mixed;
        32 members at a time (a few members × titles arrays of float64 each)."""
        weight = float(self.parts.params.get("weight", 0.5))
        titles = np.asarray(self.parts.title_factors, dtype=np.float32).T
        mt = self.parts.member_titles
        vectors = self._member_vectors(rows)
        out = np.zeros((len(rows), len(cols)), dtype=np.float32)
        for start in range(0, len(rows), 32):
            chunk = rows[start : start + 32]
            als = vectors[start : start + 32] @ titles
            knn = self._similarity_rows(chunk)
            candidates = np.ones((len(chunk), self.n_titles), dtype=bool)
            for i, row in enumerate(chunk.tolist()):
                if row >= 0:
                    candidates[i, mt.indices[mt.indptr[row] : mt.indptr[row + 1]]] = False
            out[start : start + len(chunk)] = mix(als, knn, candidates, weight)[:, cols]
        return out

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
        index = self._index
        members = np.flatnonzero(index.in_category(self._category_col(code)))
        order = members[np.argsort(-index.pop[members], kind="stable")][:limit]
        return [(self._title_id(int(t)), float(index.pop[t])) for t in order]

    def add_titles(self, titles: Sequence[tuple[str, Sequence[str]]]) -> None:
        """Titles added after training: placed in their categories, scored like new releases."""
        from recsys.affinity import place_titles

        found = self._title_idx_many([t for t, _ in titles])
        fresh = [(t, c) for (t, c), i in zip(titles, found, strict=True) if i < 0]
        if not fresh:
            return
        p = self.parts
        rows = []
        for _, codes in fresh:
            row = np.zeros(len(p.categories), dtype=np.float32)
            for col, weight in spread_over_ancestors(codes, p.categories.path, self._categories).items():
                row[col] = weight
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
        for i, (title_id, _) in enumerate(fresh):
            p.extra_title_ids.append(title_id)
            self._extra[title_id] = start + i
        self._index = ServingIndex.build(p)
        self._placement = self._place()

