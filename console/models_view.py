"""What the console shows of the model registry: each version with its metrics, the popularity
baseline of the same evaluation, its cutoff and lineage (read from the version's meta.json)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from fastapi import Request

from training.artifact import read_meta
from training.registry import ModelRegistry

HEADLINE = ("ndcg@20", "recall@20", "precision@20", "hitrate@20", "coverage@20")


@dataclass(frozen=True)
class VersionView:
    version: str
    created_at: str
    status: str
    reason: str
    trained_until: dt.datetime | None
    metrics: dict[str, float]
    baseline: dict[str, float]  # the popularity recommender, same evaluation
    cutoff: str | None
    lineage: dict[str, Any]


@dataclass(frozen=True)
class ModelSummary:
    active: VersionView
    previous: VersionView | None
    versions: list[VersionView]

    @property
    def trained_until(self) -> dt.datetime | None:
        return self.active.trained_until

    def staleness_days(self, now: dt.datetime) -> int | None:
        until = self.active.trained_until
        return None if until is None else max(0, (now - until).days)


def registry_of(request: Request) -> ModelRegistry:
    holder = getattr(request.app.state, "holder", None)
    registry = getattr(holder, "registry", None)
    if isinstance(registry, ModelRegistry):
        return registry
    return ModelRegistry(request.app.state.settings.models_dir)


def versions(registry: ModelRegistry) -> list[VersionView]:
    out = []
    for info in registry.list():
        try:
            meta = read_meta(registry.versions_dir / info.version)
        except Exception:  # a version being removed: show what the registry knows
            meta = {}
        evaluation = meta.get("evaluation") or {}
        results = evaluation.get("results") or {}
        until = dt.datetime.fromisoformat(info.trained_until) if info.trained_until else None
        lineage = {
            "kind": meta.get("kind"),
            "params": meta.get("params"),
            "window": (meta.get("snapshot") or {}).get("window_start"),
            "cutoff": (meta.get("snapshot") or {}).get("cutoff"),
            "purchase_rows": (meta.get("snapshot") or {}).get("purchase_rows"),
            "members": (meta.get("snapshot") or {}).get("members_with_purchases"),
            "titles": (meta.get("snapshot") or {}).get("titles_with_purchases"),
            "data_sha256": (meta.get("snapshot") or {}).get("sha256"),
        }
        out.append(
            VersionView(
                info.version, info.created_at, info.status, info.reason, until, dict(info.metrics),
                dict(results.get("popularity") or {}), evaluation.get("cutoff"), lineage,
            )
        )
    return out


def model_summary(request: Request) -> ModelSummary | None:
    registry = registry_of(request)
    active_version = registry.active_version()
    views = versions(registry)
    active = next((v for v in views if v.version == active_version), None)
    if active is None:
        return None
    index = views.index(active)
    previous = views[index - 1] if index > 0 else None
    return ModelSummary(active, previous, views)
