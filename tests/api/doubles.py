"""A test double of TrainedModel / ModelRegistry (docs/contracts.md) for unit tests only.

The end-to-end tests use a really trained model (see conftest ``trained_registry``).
"""

from __future__ import annotations

import datetime as dt
import os
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from recsys.errors import ModelNotFoundError, UnknownTitleError
from tests.api import club


@dataclass(frozen=True)
class Rec:
    title_id: str
    score: float
    reason: str
    reason_kind: str
    because: tuple[str, ...]


_PARENT = {c: p for c, _n, p, _lv in club.CATEGORIES}


def _with_ancestors(code: str) -> set[str]:
    out = set()
    node: str | None = code
    while node is not None:
        out.add(node)
        node = _PARENT.get(node)
    return out


@dataclass
class FakeModel:
    version: str
    trained_until: dt.datetime = club.TRAINED_UNTIL
    flip: bool = False  # a second version ranks the other way round
    added: list[tuple[str, Sequence[str]]] = field(default_factory=list)
    calls: list[dict[str, object]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.title_codes = {t[0]: _with_ancestors(t[5]) for t in club.TITLES}
        net: Counter[tuple[str, str]] = Counter()
        for m, t, q, _d in club.PURCHASES:
            net[m, t] += q
        self.history = {
            m: sorted(t for (mm, t), q in net.items() if mm == m and q > 0) for m, *_ in club.PURCHASES
        }
        pop: Counter[str] = Counter()
        for _m, t, q, _d in club.PURCHASES:
            pop[t] += q
        self.popularity = {t: float(pop.get(t, 0)) for t in self.title_codes}

    def knows_member(self, member_id: str) -> bool:
        return member_id in self.history

    def knows_title(self, title_id: str) -> bool:
        return title_id in self.title_codes

    def _rank(self, scores: dict[str, float], limit: int) -> list[tuple[str, float]]:
        sign = -1.0 if self.flip else 1.0
        return sorted(scores.items(), key=lambda kv: (-sign * kv[1], kv[0]))[:limit]

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
    ) -> list[Rec]:
        self.calls.append(
            {
                "member_id": member_id,
                "recent": list(recent),
                "limit": limit,
                "exclude": set(exclude_title_ids),
                "declared": list(declared_categories),
                "category": category,
            }
        )
        bought = self.history.get(member_id, []) + [t for t, _q in recent]
        candidates = {
            t: p
            for t, p in self.popularity.items()
            if t not in exclude_title_ids
            and (category is None or category in self.title_codes[t])
            and (only_title_ids is None or t in only_title_ids)
        }
        if bought:
            return [
                Rec(t, s, f"because you bought {bought[-1]}", "history", (bought[-1],))
                for t, s in self._rank(candidates, limit)
            ]
        if declared_categories:
            code = declared_categories[0]
            inside = {t: s for t, s in candidates.items() if code in self.title_codes[t]}
            return [
                Rec(t, s, f"popular in {code}, a category you chose", "category_popular", (code,))
                for t, s in self._rank(inside, limit)
            ]
        return [Rec(t, s, "popular with members", "popular", ()) for t, s in self._rank(candidates, limit)]

    def similar_titles(self, title_id: str, limit: int = 20) -> list[tuple[str, float]]:
        if title_id not in self.title_codes:
            raise UnknownTitleError(f"the model does not know title {title_id!r}")
        mine = self.title_codes[title_id]
        scores = {t: float(len(mine & c)) for t, c in self.title_codes.items() if t != title_id}
        return self._rank(scores, limit)

    def popular_in_category(self, code: str, limit: int = 20) -> list[tuple[str, float]]:
        inside = {t: p for t, p in self.popularity.items() if code in self.title_codes[t]}
        return self._rank(inside, limit)

    def add_titles(self, titles: Sequence[tuple[str, Sequence[str]]]) -> None:
        for title_id, codes in titles:
            self.added.append((title_id, codes))
            self.title_codes[title_id] = set().union(*(_with_ancestors(c) for c in codes))
            self.popularity[title_id] = 0.0


@dataclass(frozen=True)
class Info:
    version: str
    created_at: dt.datetime
    status: str
    metrics: dict[str, float]
    reason: str


class FakeRegistry:
    """Versions held in memory; activation rewrites a pointer file atomically, like the real one."""

    def __init__(self, root: Path, models: Sequence[FakeModel], active: str | None) -> None:
        self.models = {m.version: m for m in models}
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.loads = 0
        if active is not None:
            self.activate(active)

    @property
    def active_pointer(self) -> Path:
        return self.root / "ACTIVE"

    def list(self) -> list[Info]:
        active = self.active_version()
        return [
            Info(
                v, dt.datetime(2026, 2, 1), "active" if v == active else "candidate", {"ndcg@20": 0.1}, "test"
            )
            for v in self.models
        ]

    def active_version(self) -> str | None:
        if not self.active_pointer.exists():
            return None
        return self.active_pointer.read_text().strip() or None

    def activate(self, version: str) -> None:
        if version not in self.models:
            raise ModelNotFoundError(f"no model {version!r}")
        tmp = self.root / "ACTIVE.tmp"
        tmp.write_text(version)
        os.replace(tmp, self.active_pointer)

    def load(self, version: str | None = None) -> FakeModel:
        version = version or self.active_version()
        if version is None or version not in self.models:
            raise ModelNotFoundError(f"no model {version!r}")
        self.loads += 1
        return self.models[version]
