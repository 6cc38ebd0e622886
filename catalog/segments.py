"""A quarter's segmentation: value tiers (RFM) and reading-preference segments,
aligned with last quarter, profiled, stored.

``segment_quarter`` is the one function the CLI, the quarter job and tests call.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from sqlalchemy import Connection

from catalog.clusters import (
    align_labels,
    cluster_profiles,
    distinctive_categories,
    nearest_centroid,
    segment_names,
)
from catalog.period import Quarter
from catalog.rfm import ParetoCheck, pareto_check, score_tiers
from recsys.affinity import spread_over_ancestors
from recsys.errors import BookclubError
from recsys.settings import SegmentSettings
from recsys.storage import members as members_db
from recsys.storage import purchases as purchases_db
from recsys.storage import segments as segments_db
from recsys.storage.categories import CategoryNode, ancestors, category_tree


class AffinityModel(Protocol):
    """What segmentation needs of a TrainedModel."""

    version: str

    def affinity_matrix(self) -> tuple[list[str], list[str], sp.csr_matrix]: ...


@dataclass(frozen=True)
class CategoryShare:
    code: str
    name: str
    share: float
    lift: float


@dataclass
class SegmentProfile:
    segment: int
    name: str
    size: int
    tier_mix: dict[str, int]
    average_spend: float
    average_orders: float
    top_categories: list[CategoryShare]
    affinity: dict[str, float]  # mean category share over the members (levels clustered)
    typical_titles: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> SegmentProfile:
        raw = json.loads(text)
        raw["top_categories"] = [CategoryShare(**c) for c in raw["top_categories"]]
        return cls(**raw)


@dataclass(frozen=True)
class SegmentationResult:
    quarter: str
    model_version: str
    profiles: list[SegmentProfile]
    tier_counts: dict[str, int]
    pareto: ParetoCheck
    previous_quarter: str
    compared: int  # members segmented last quarter too
    moved: int  # of those, members whose segment changed
    members: int


def profile_matrix(
    member_categories: sp.csr_matrix, codes: Sequence[str], tree: Mapping[str, CategoryNode], level: int
) -> tuple[sp.csr_matrix, list[str]]:
    """The columns of categories at ``level`` or above (known to the tree)."""
    keep = [i for i, c in enumerate(codes) if c in tree and tree[c].level <= level]
    if not keep:
        raise BookclubError("the model's category affinities hold no level-1/2 categories")
    return sp.csr_matrix(member_categories[:, keep]), [codes[i] for i in keep]


def declared_profiles(
    member_ids: Sequence[str],
    declared: Mapping[str, Sequence[str]],
    columns: Sequence[str],
    tree: Mapping[str, CategoryNode],
) -> sp.csr_matrix:
    """Members' declared favourites (and their ancestors) as 0/1 rows over ``columns``."""
    index = {c: j for j, c in enumerate(columns)}
    nodes = dict(tree)
    rows: list[int] = []
    cols: list[int] = []
    for i, member_id in enumerate(member_ids):
        hit = spread_over_ancestors(declared.get(member_id, ()), lambda code: ancestors(nodes, code), index)
        rows.extend([i] * len(hit))
        cols.extend(sorted(hit))
    data = np.ones(len(rows), dtype=np.float64)
    return sp.csr_matrix((data, (rows, cols)), shape=(len(member_ids), len(columns)))


def _column_means(matrix: sp.csr_matrix, rows: npt.NDArray[np.bool_]) -> npt.NDArray[np.float64]:
    if not rows.any():
        return np.zeros(matrix.shape[1])
    return np.asarray(matrix[np.flatnonzero(rows)].mean(axis=0)).ravel()


def segment_quarter(
    connection: Connection,
    model: AffinityModel,
    settings: SegmentSettings,
    quarter: str,
    *,
    tree: Mapping[str, CategoryNode] | None = None,
) -> SegmentationResult:
    """Tiers, clusters, alignment with last quarter, profiles; stored for ``quarter`` (each
    profile written once). ``tree``: the category tree, when the caller has read it."""
    period = Quarter.parse(quarter)
    as_of = period.start_datetime
    since = as_of - dt.timedelta(days=settings.rfm_window_days)
    rfm = purchases_db.rfm_aggregates(connection, as_of, since)
    if not rfm.member_ids:
        raise BookclubError("no members to segment: import or generate data first")
    scores = score_tiers(
        rfm.recency_days, rfm.frequency, rfm.monetary,
        bins=settings.rfm_bins, lapsed_after_days=settings.lapsed_after_days,
        core_min_score=settings.core_min_score, regular_min_score=settings.regular_min_score,
    )
    tree = tree if tree is not None else category_tree(connection)

    model_members, codes, affinity = model.affinity_matrix()
    profiles, columns = profile_matrix(affinity, codes, tree, settings.profile_level)
    row_of = {m: i for i, m in enumerate(model_members)}
    in_model = np.asarray([m in row_of for m in rfm.member_ids])
    model_rows = np.asarray([row_of[m] for m in rfm.member_ids if m in row_of], dtype=np.int64)
    if model_rows.size == 0:
        raise BookclubError("the model knows none of the members: retrain on the current data")
    member_profiles = profiles[model_rows]
    clustering = cluster_profiles(
        member_profiles, settings.clusters, seed=settings.seed, n_init=settings.kmeans_init
    )
    raw = np.zeros(len(rfm.member_ids), dtype=np.int64)
    raw[in_model] = clustering.labels
    # Members the model does not know: nearest centroid to their declared favourites,
    # else the largest segment (the broadest reading mix).
    unknown = [m for m, known in zip(rfm.member_ids, in_model, strict=True) if not known]
    if unknown:
        declared = declared_profiles(unknown, members_db.declared_categories(connection), columns, tree)
        has_declared = np.asarray(declared.getnnz(axis=1) > 0)
        largest = int(np.bincount(clustering.labels).argmax())
        guess = np.full(len(unknown), largest, dtype=np.int64)
        if has_declared.any():
            guess[has_declared] = nearest_centroid(clustering.centroids, declared[has_declared])
        raw[~in_model] = guess

    previous = segments_db.member_segment_labels(connection, str(period.previous()))
    alignment = align_labels(rfm.member_ids, raw, previous)
    labels = alignment.labels

    overall = dict(zip(columns, _column_means(member_profiles, np.ones(model_rows.size, bool)), strict=True))
    labels_in_model = labels[in_model]
    result_profiles: list[SegmentProfile] = []
    distinctive: dict[int, list[tuple[str, float, float]]] = {}
    for segment in sorted({int(x) for x in labels}):
        members = labels == segment
        share = dict(zip(columns, _column_means(member_profiles, labels_in_model == segment), strict=True))
        distinctive[segment] = distinctive_categories(share, overall, limit=8)
        tiers = Counter(t for t, keep in zip(scores.tiers, members, strict=True) if keep)
        result_profiles.append(
            SegmentProfile(
                segment=segment,
                name="",
                size=int(members.sum()),
                tier_mix={t: int(tiers.get(t, 0)) for t in ("core", "regular", "occasional", "lapsed")},
                average_spend=round(float(rfm.monetary[members].mean()), 2),
                average_orders=round(float(rfm.frequency[members].mean()), 2),
                top_categories=[
                    CategoryShare(c, tree[c].name, round(float(s), 4), round(float(lift), 3))
                    for c, s, lift in distinctive[segment][:5]
                ],
                affinity={c: round(float(v), 6) for c, v in share.items() if v > 0},
            )
        )
    names = segment_names(distinctive, tree)
    for profile in result_profiles:
        profile.name = names[profile.segment]

    rows = [
        segments_db.MemberSegmentRow(
            member_id, tier, int(label), None if recency < 0 else int(recency), int(freq), float(money)
        )
        for member_id, tier, label, recency, freq, money in zip(
            rfm.member_ids, scores.tiers, labels, rfm.recency_days, rfm.frequency, rfm.monetary,
            strict=True,
        )
    ]
    segments_db.store_member_segments(connection, quarter, rows)
    typical = segments_db.typical_titles(connection, quarter, since, as_of, settings.typical_titles)
    for profile in result_profiles:
        profile.typical_titles = [
            {"title_id": t, "title": name, "copies": n} for t, name, n in typical.get(profile.segment, [])
        ]
    segments_db.store_segment_profiles(
        connection, quarter,
        [(p.segment, p.name, p.size, p.to_json(), model.version) for p in result_profiles],
    )
    return SegmentationResult(
        quarter=quarter,
        model_version=model.version,
        profiles=result_profiles,
        tier_counts=dict(Counter(scores.tiers)),
        pareto=pareto_check(rfm.monetary),
        previous_quarter=str(period.previous()),
        compared=alignment.compared,
        moved=alignment.moved,
        members=len(rfm.member_ids),
    )


def stored_profiles(connection: Connection, quarter: str) -> list[SegmentProfile]:
    """The profiles stored for ``quarter`` (empty when it was not segmented)."""
    return [SegmentProfile.from_json(row["profile_json"]) for row in segments_db.segments_of_quarter(connection, quarter)]
