"""How much a member should like their edition's titles: the model's scores, as an uplift feature.

A quarter's edition for a member is their segment's catalog (the stored plan's titles, read
from ``plan_json``) with their personal picks drawn from it. The feature is the mean of the
member's ``TOP`` highest model scores among those titles — roughly what their picks pages
show them — scored by **the model version that planned the catalog** (recorded with each
plan), so that a past campaign's feature is what was known before its mailing: a model
trained later has learnt from the very orders the mailing brought, and its scores would
tell the uplift model who responded.

Scores are on each model's own scale (factor dot products, item-kNN sums, a blend's
standardised mix), which differ from version to version; the feature is therefore the
member's **rank quantile** among the quarter's segmented members (0 the lowest, 1 the
highest; ties share their mean rank), comparable from one quarter and model to the next.

The models come from the caller (:data:`ModelSource`: a version → a prepared model, e.g.
the registry's), so that this package does not load model files itself. Where the source is
missing, a version is no longer kept, or a quarter has no plans, the scores are ``None`` and
the caller says so (:func:`campaign.mailing_plan.plan_mailing` puts ½, the middle rank, and a note).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection

from recsys.errors import BookclubError
from recsys.storage import plans as plans_db

__all__ = ["CHUNK", "TOP", "ModelSource", "TitleScorer", "edition_title_scores", "rank_quantile"]

TOP = 5  # about the personal picks an edition shows
CHUNK = 256  # members scored at a time (an item-kNN model scores every title for each member first)


class TitleScorer(Protocol):
    """What the feature needs of a model (a prepared :class:`recsys.model.trained.TrainedModel`)."""

    def score_titles(self, member_ids: Sequence[str], title_ids: Sequence[str]) -> npt.NDArray[np.float32]: ...


ModelSource = Callable[[str], TitleScorer]
"""A model version → that model, prepared with every title of the club; raises
:class:`recsys.errors.BookclubError` when the version is not kept."""


def rank_quantile(values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Each value's rank among ``values`` scaled to [0, 1] (ties: their mean rank; one value: ½)."""
    n = values.size
    if n <= 1:
        return np.full(n, 0.5)
    order = np.argsort(values, kind="stable")
    ranks = np.empty(n, dtype=np.float64)
    ranks[order] = np.arange(n, dtype=np.float64)
    # ties share the mean of their ranks
    uniq, inverse = np.unique(values, return_inverse=True)
    if uniq.size < n:
        ranks = (np.bincount(inverse, weights=ranks) / np.bincount(inverse))[inverse]
    return ranks / (n - 1)


def _plan_titles(plan_json: str | None) -> list[str]:
    plan = json.loads(plan_json or "{}")
    seen: dict[str, None] = {}
    for section in plan.get("sections", []):
        for entry in section.get("entries", []):
            seen.setdefault(str(entry["title_id"]), None)
    return list(seen)


def edition_title_scores(
    connection: Connection,
    quarter: str,
    member_ids: Sequence[str],
    segment: npt.NDArray[np.int64],
    models: ModelSource | None,
) -> tuple[npt.NDArray[np.float64] | None, str | None]:
    """Per member (``member_ids`` with their ``segment`` in ``quarter``): the rank quantile of the
    mean of their ``TOP`` best scores among their segment's catalog titles; members of a segment
    without a plan rank with the lowest. ``(None, why)`` when the scores cannot be had."""
    if models is None:
        return None, "no model source given"
    plans = plans_db.plans_of_quarter(connection, quarter)
    if not plans:
        return None, f"no catalog plans for {quarter}"
    raw = np.full(len(member_ids), -np.inf)
    loaded: dict[str, TitleScorer] = {}
    for row in plans:
        version, titles = str(row["model_version"]), _plan_titles(row["plan_json"])
        rows = np.flatnonzero(segment == int(row["segment"]))
        if not titles or not rows.size:
            continue
        try:
            model = loaded[version] if version in loaded else loaded.setdefault(version, models(version))
        except BookclubError as exc:
            return None, f"{quarter}'s catalogs were planned by model {version}, which cannot be loaded ({exc})"
        top = min(TOP, len(titles))
        for start in range(0, rows.size, CHUNK):
            chunk = rows[start : start + CHUNK]
            scores = np.asarray(model.score_titles([member_ids[i] for i in chunk], titles), dtype=np.float64)
            best = -np.partition(-scores, top - 1, axis=1)[:, :top] if top < scores.shape[1] else scores
            raw[chunk] = best.mean(axis=1)
    if not np.isfinite(raw).any():
        return None, f"{quarter}'s catalog plans list no titles for its members"
    return rank_quantile(raw), None
