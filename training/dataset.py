"""The training data set: id maps, the confidence matrix and category mappings for one window.

Everything here takes a connection and returns arrays, matrices and
dataclasses; the SQL itself is in :mod:`recsys.storage.purchase_log`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from sqlalchemy import Connection

from recsys.affinity import AffinityProfile, CategoryIndex, build_affinity, title_category_matrix
from recsys.confidence import confidence_matrix
from recsys.errors import TrainingError
from recsys.idmap import IdMap
from recsys.settings import TrainingSettings
from recsys.storage.categories import category_tree
from recsys.storage.purchase_log import (
    PurchaseArrays,
    purchase_id_bounds,
    read_member_categories,
    read_members,
    read_purchase_log,
    read_title_categories,
    read_titles,
    titles_sold_before,
    to_epoch,
)
from training.extract_cache import CacheReport, ExtractCache

Progress = Callable[[int], None]


@dataclass(frozen=True)
class Catalogue:
    """Members, titles and categories with their matrix positions."""

    members: IdMap
    titles: IdMap
    title_names: list[str]  # by title_idx
    member_key_idx: npt.NDArray[np.int64]  # member_key → member_idx (-1: none)
    title_key_idx: npt.NDArray[np.int64]  # title_key → title_idx
    categories: CategoryIndex
    title_categories: sp.csr_matrix  # titles × categories, all levels
    declared: list[tuple[int, int]]  # (member_idx, category column)

    def member_idx(self, keys: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        return self.member_key_idx[keys]

    def title_idx(self, keys: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        return self.title_key_idx[keys]

    def declared_paths(self) -> dict[int, list[int]]:
        pos = self.categories.position()
        return {
            col: [pos[c] for c in self.categories.path(self.categories.codes[col])]
            for col in {col for _, col in self.declared}
        }


@dataclass(frozen=True)
class DataSnapshot:
    """What a model was trained on, for the record."""

    window_start: str
    cutoff: str
    purchase_rows: int
    members_with_purchases: int
    titles_with_purchases: int
    newest_purchase: str | None
    sha256: str


@dataclass(frozen=True)
class TrainingSet:
    catalogue: Catalogue
    member_weights: sp.csr_matrix  # decayed net quantity, member × title
    member_titles: sp.csr_matrix  # confidence after BM25/TF-IDF, member × title
    affinity: AffinityProfile | None  # None when built without (evaluation's earlier window)
    snapshot: DataSnapshot
    trained_until: dt.datetime


def _key_lookup(keys: npt.NDArray[np.int64], idx: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    lookup = np.full(int(keys.max()) + 1 if len(keys) else 1, -1, dtype=np.int64)
    lookup[keys] = idx
    return lookup


def read_catalogue(connection: Connection) -> Catalogue:
    """Every member, title and category mapping in the database."""
    members_raw = read_members(connection)
    titles_raw = read_titles(connection)
    members = IdMap.from_ids(members_raw.ids)
    titles = IdMap.from_ids(titles_raw.ids)
    title_pos = titles.find_many(titles_raw.ids)
    names = [""] * len(titles)
    for pos, name in zip(title_pos, titles_raw.names, strict=True):
        names[int(pos)] = name
    title_key_idx = _key_lookup(titles_raw.keys, title_pos)
    member_key_idx = _key_lookup(members_raw.keys, members.find_many(members_raw.ids))
    pairs_raw = read_title_categories(connection)
    declared_raw = read_member_categories(connection)
    declared_codes = [code for _, code in declared_raw]
    used = {code for _, code, _ in pairs_raw} | set(declared_codes)
    index = CategoryIndex.build(category_tree(connection), used)
    pairs = [(int(title_key_idx[key]), code) for key, code, _ in pairs_raw]
    pos = index.position()
    # millions of favourites at full size: mapped in numpy, not per pair in Python
    columns = np.fromiter((pos.get(code, -1) for code in declared_codes), np.int64, len(declared_codes))
    keys = np.fromiter((key for key, _ in declared_raw), np.int64, len(declared_raw))
    known = columns >= 0
    declared = list(zip(member_key_idx[keys[known]].tolist(), columns[known].tolist(), strict=True))
    return Catalogue(
        members=members,
        titles=titles,
        title_names=names,
        member_key_idx=member_key_idx,
        title_key_idx=title_key_idx,
        categories=index,
        title_categories=title_category_matrix(pairs, len(titles), index),
        declared=declared,
    )


def window_start(cutoff: dt.datetime, settings: TrainingSettings) -> dt.datetime:
    return cutoff - dt.timedelta(days=365.25 * settings.window_years)


def extract_window(
    connection: Connection,
    cutoff: dt.datetime,
    settings: TrainingSettings,
    *,
    on_batch: Progress | None = None,
    on_total: Callable[[int], None] | None = None,
) -> tuple[dt.datetime, PurchaseArrays]:
    """Order lines of the ``window_years`` before ``cutoff``: (window start, arrays)."""
    start = window_start(cutoff, settings)
    if on_total is not None:
        low, high = purchase_id_bounds(connection)
        on_total(max(high - low + 1, 0))  # an upper bound: lines are read by id range
    log = read_purchase_log(
        connection, start=start, end=cutoff, batch_rows=settings.extract_batch_rows,
        on_batch=on_batch,
    )  # fmt: skip
    return start, log.arrays


@dataclass(frozen=True)
class TrainingExtract:
    """The window's order lines and what evaluation needs besides them."""

    window_start: dt.datetime
    purchases: PurchaseArrays
    sold_before: npt.NDArray[np.int64] | None  # title keys sold before ``eval_cutoff``
    cache: CacheReport | None


def extract_for_training(
    connection: Connection,
    cutoff: dt.datetime,
    settings: TrainingSettings,
    *,
    cache: ExtractCache | None = None,
    eval_cutoff: dt.datetime | None = None,
    on_batch: Progress | None = None,
    on_total: Callable[[int], None] | None = None,
) -> TrainingExtract:
    """One read of the purchases for a retrain: the window before ``cutoff`` and, with
    ``eval_cutoff``, the keys of the titles sold before it (new-title recall needs them).

    With ``cache`` every line is served from it where it still holds (see
    :mod:`training.extract_cache`) and the window is cut out in numpy.
    """
    start = window_start(cutoff, settings)
    if cache is None:
        start, purchases = extract_window(connection, cutoff, settings, on_batch=on_batch, on_total=on_total)
        sold_before = None
        if eval_cutoff is not None:
            early = purchases.title_key[purchases.purchased_at < to_epoch(eval_cutoff)]
            sold_before = np.union1d(titles_sold_before(connection, start), early)
        return TrainingExtract(start, purchases, sold_before, None)
    if on_total is not None:
        low, high = purchase_id_bounds(connection)
        on_total(max(high - low + 1, 0))
    log, report = cache.read(connection, batch_rows=settings.extract_batch_rows, on_batch=on_batch)
    sold_before = None
    if eval_cutoff is not None:
        everything = log.arrays
        sold_before = np.unique(everything.title_key[everything.purchased_at < to_epoch(eval_cutoff)])
    return TrainingExtract(start, log.window(start, cutoff), sold_before, report)


def matrix_hash(matrix: sp.csr_matrix) -> str:
    digest = hashlib.sha256()
    digest.update(np.asarray(matrix.shape, dtype=np.int64).tobytes())
    digest.update(matrix.indptr.astype(np.int64).tobytes())
    digest.update(matrix.indices.astype(np.int64).tobytes())
    digest.update(np.round(matrix.data.astype(np.float64), 4).tobytes())
    return digest.hexdigest()


def build_training_set(
    catalogue: Catalogue,
    purchases: PurchaseArrays,
    *,
    window_start: dt.datetime,
    cutoff: dt.datetime,
    settings: TrainingSettings,
    with_affinity: bool = True,
) -> TrainingSet:
    """Purchases → decayed weights, confidence, affinity (unless ``with_affinity`` is
    false: evaluation does not read it) and the snapshot record."""
    if len(purchases) == 0:
        raise TrainingError(
            f"no purchases between {window_start:%Y-%m-%d} and {cutoff:%Y-%m-%d}: "
            "import purchases or choose another --cutoff"
        )
    member_idx = catalogue.member_idx(purchases.member_key)
    title_idx = catalogue.title_idx(purchases.title_key)
    shape = (len(catalogue.members), len(catalogue.titles))
    weights, confidence = confidence_matrix(
        member_idx,
        title_idx,
        purchases.quantity,
        purchases.purchased_at,
        shape,
        reference=to_epoch(cutoff),
        half_life_days=settings.half_life_days if settings.recency_decay else None,
        weighting=settings.weighting,
        k1=settings.bm25_k1,
        b=settings.bm25_b,
    )
    affinity = (
        build_affinity(
            weights,
            catalogue.title_categories,
            declared=catalogue.declared,
            declared_weight=settings.declared_category_weight,
            prior=settings.category_prior_weight,
            declared_paths=catalogue.declared_paths(),
        )
        if with_affinity
        else None
    )
    newest = purchases.newest()
    snapshot = DataSnapshot(
        window_start=window_start.isoformat(),
        cutoff=cutoff.isoformat(),
        purchase_rows=len(purchases),
        members_with_purchases=int(np.count_nonzero(np.diff(weights.indptr))),
        titles_with_purchases=int(np.count_nonzero(np.bincount(weights.indices, minlength=shape[1]))),
        newest_purchase=newest.isoformat() if newest else None,
        sha256=matrix_hash(weights),
    )
    return TrainingSet(
        catalogue=catalogue,
        member_weights=weights,
        member_titles=confidence,
        affinity=affinity,
        snapshot=snapshot,
        trained_until=newest or cutoff,
    )
