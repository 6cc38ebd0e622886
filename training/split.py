"""The one time split: fit before a cutoff, score on the period after it.

:func:`time_split` is what every evaluation uses (``bookclub evaluate``, each fold
of ``--folds``, the split inside ``bookclub train --evaluate``, ``bookclub tune``):

- **Only what existed at the cutoff is fitted.** The catalogue is cut down to the
  members with an order line in the training window and the titles sold before the
  end of the test period (titles first sold in the test period are the new
  releases the ranking must place; a title that never sold by then did not exist
  for the club). Ids stay in sorted order, so the matrix, BM25's document counts
  and the recommenders' seeded random starts are the same however many members or
  titles were added to the database later.
- **Who is scored.** *Warm* members (history in the window) on the titles they
  bought in the test period that they had not bought in the window;
  *repurchase-only* members (history, but they only re-bought) are counted, not
  scored; *cold* members (no history in the window, a purchase in the test period)
  are scored separately, on everything they bought, through the served model's
  cold-start path (their declared categories).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from recsys.affinity import CategoryIndex
from recsys.idmap import IdMap
from recsys.settings import TrainingSettings
from recsys.storage.purchase_log import PurchaseArrays, to_epoch
from training.dataset import Catalogue, TrainingSet, build_training_set

IdxArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class ColdMember:
    """A member with no history in the window who bought in the test period."""

    member_id: str
    declared: tuple[str, ...]  # favourite category codes
    bought: frozenset[int]  # title_idx of the split's catalogue


@dataclass(frozen=True)
class Holdout:
    """What members bought in the test period, as matrix positions of the split's catalogue."""

    truth: dict[int, set[int]]  # warm member_idx → titles bought in the test period, new to them
    new_truth: dict[int, set[int]]  # warm member_idx → new titles (no sale before the cutoff) bought
    new_candidates: IdxArray  # titles with no sale before the cutoff
    test_rows: int
    cold: tuple[ColdMember, ...] = ()
    repurchase_only: int = 0  # warm members who bought only titles already in their history


@dataclass(frozen=True)
class Split:
    train: TrainingSet
    holdout: Holdout
    cutoff: dt.datetime
    end: dt.datetime


def _subset_lookup(key_idx: IdxArray, kept_old: IdxArray, n_old: int) -> IdxArray:
    """key → new position, for a lookup ``key_idx`` (key → old position) cut to ``kept_old``."""
    old_to_new = np.full(n_old + 1, -1, dtype=np.int64)  # the extra slot answers -1 for -1
    old_to_new[kept_old] = np.arange(len(kept_old), dtype=np.int64)
    return old_to_new[np.where(key_idx >= 0, key_idx, n_old)]


def restrict_catalogue(
    catalogue: Catalogue,
    member_keys: IdxArray,
    title_keys: IdxArray,
    extra_declared: IdxArray | None = None,
) -> Catalogue:
    """``catalogue`` cut down to some members and titles (by surrogate key), ids in sorted
    order; categories cut to those the kept titles and the kept members' favourites use
    (plus the favourites of the members ``extra_declared``, full-catalogue member_idx)."""
    member_old = np.unique(catalogue.member_idx(member_keys))
    member_old = member_old[member_old >= 0]
    title_old = np.unique(catalogue.title_idx(title_keys))
    title_old = title_old[title_old >= 0]
    members = IdMap(np.asarray(catalogue.members.ids)[member_old])
    titles = IdMap(np.asarray(catalogue.titles.ids)[title_old])
    member_new = np.full(len(catalogue.members), -1, dtype=np.int64)
    member_new[member_old] = np.arange(len(member_old))
    kept_members = member_new >= 0
    extra = np.zeros(len(catalogue.members), dtype=bool)
    if extra_declared is not None and len(extra_declared):
        extra[extra_declared] = True
    tc = sp.csr_matrix(catalogue.title_categories[title_old])
    used = np.zeros(len(catalogue.categories), dtype=bool)
    used[np.unique(tc.indices)] = True
    index = catalogue.categories
    pos = index.position()
    for member, col in catalogue.declared:
        if kept_members[member] or extra[member]:
            for code in index.path(index.codes[col]):
                used[pos[code]] = True
    cols = np.flatnonzero(used)
    categories = CategoryIndex(
        codes=[index.codes[c] for c in cols],
        names=[index.names[c] for c in cols],
        parents=[index.parents[c] for c in cols],
        levels=[index.levels[c] for c in cols],
    )
    col_new = np.full(len(index), -1, dtype=np.int64)
    col_new[cols] = np.arange(len(cols))
    declared = [
        (int(member_new[m]), int(col_new[c])) for m, c in catalogue.declared if kept_members[m]
    ]
    return Catalogue(
        members=members,
        titles=titles,
        title_names=[catalogue.title_names[int(t)] for t in title_old],
        member_key_idx=_subset_lookup(catalogue.member_key_idx, member_old, len(catalogue.members)),
        title_key_idx=_subset_lookup(catalogue.title_key_idx, title_old, len(catalogue.titles)),
        categories=categories,
        title_categories=sp.csr_matrix(tc[:, cols], dtype=np.float32),
        declared=declared,
    )


def time_split(
    catalogue: Catalogue,
    lines: PurchaseArrays,
    *,
    window_start: dt.datetime,
    cutoff: dt.datetime,
    end: dt.datetime,
    sold_before: IdxArray,
    settings: TrainingSettings,
    with_affinity: bool = True,
) -> Split:
    """Split ``lines`` (the window and the test period, or more) at ``cutoff``.

    ``sold_before``: keys of titles sold before the window (or before the cutoff; they
    are not new releases). Lines at or after ``end`` are ignored.
    """
    at = lines.purchased_at
    early = (at >= to_epoch(window_start)) & (at < to_epoch(cutoff))
    late = (at >= to_epoch(cutoff)) & (at < to_epoch(end))
    train_lines, test_lines = lines.subset(early), lines.subset(late)
    test_buyers = catalogue.member_idx(np.unique(test_lines.member_key[test_lines.quantity > 0]))
    titles = np.unique(np.concatenate([train_lines.title_key, test_lines.title_key, sold_before]))
    small = restrict_catalogue(catalogue, np.unique(train_lines.member_key), titles, test_buyers)
    train = build_training_set(
        small, train_lines, window_start=window_start, cutoff=cutoff, settings=settings,
        with_affinity=with_affinity,
    )  # fmt: skip
    sold = np.union1d(sold_before, train_lines.title_key)
    return Split(train, holdout_from(train, test_lines, sold, catalogue), cutoff, end)


def holdout_from(
    train: TrainingSet,
    test: PurchaseArrays,
    sold_before_keys: IdxArray,
    full: Catalogue | None = None,
) -> Holdout:
    """Ground truth from the test lines. ``full``: the catalogue ``train``'s was cut from
    (cold members are looked up there); without it cold members are not collected."""
    catalogue = train.catalogue
    bought = test.quantity > 0
    shape = train.member_titles.shape
    members = catalogue.member_idx(test.member_key[bought])
    titles = catalogue.title_idx(test.title_key[bought])
    known = (members >= 0) & (titles >= 0)
    sold_before = np.zeros(len(catalogue.titles), dtype=bool)
    if len(sold_before_keys):
        idx = catalogue.title_idx(sold_before_keys)
        sold_before[idx[idx >= 0]] = True
    bought_after = sp.csr_matrix(
        (np.ones(int(known.sum()), dtype=np.float32), (members[known], titles[known])), shape=shape
    )
    bought_after.sum_duplicates()
    history = train.member_titles
    has_history = np.diff(history.indptr) > 0
    # titles bought after the cutoff, not bought before, by members with history
    fresh = bought_after - bought_after.multiply(history > 0)
    fresh = sp.csr_matrix(sp.diags(has_history.astype(np.float32)) @ fresh)
    fresh.eliminate_zeros()
    truth: dict[int, set[int]] = {}
    new_truth: dict[int, set[int]] = {}
    for m in np.flatnonzero(np.diff(fresh.indptr)).tolist():
        row = fresh.indices[fresh.indptr[m] : fresh.indptr[m + 1]]
        truth[m] = set(row.tolist())
        new = row[~sold_before[row]]
        if new.size:
            new_truth[m] = set(new.tolist())
    buyers = np.diff(bought_after.indptr) > 0
    repurchase_only = int(np.count_nonzero(buyers & has_history)) - len(truth)
    cold = _cold_members(train, test, bought, full, has_history) if full is not None else ()
    return Holdout(
        truth, new_truth, np.flatnonzero(~sold_before).astype(np.int64), len(test), cold, repurchase_only
    )


def _cold_members(
    train: TrainingSet,
    test: PurchaseArrays,
    bought: npt.NDArray[np.bool_],
    full: Catalogue,
    has_history: npt.NDArray[np.bool_],
) -> tuple[ColdMember, ...]:
    """Test-period buyers with no history in the window (unknown to the split's catalogue, or
    known with only returns), with their favourites, in member_id order."""
    catalogue = train.catalogue
    full_idx = full.member_idx(test.member_key[bought])
    small_idx = catalogue.member_idx(test.member_key[bought])
    titles = catalogue.title_idx(test.title_key[bought])
    cold = (small_idx < 0) | ~has_history[np.maximum(small_idx, 0)]
    cold &= (full_idx >= 0) & (titles >= 0)
    per_member: dict[int, set[int]] = {}
    for m, t in zip(full_idx[cold].tolist(), titles[cold].tolist(), strict=True):
        per_member.setdefault(m, set()).add(t)
    favourites: dict[int, list[str]] = {}
    for m, col in full.declared:
        if m in per_member:
            favourites.setdefault(m, []).append(full.categories.codes[col])
    out = [
        ColdMember(full.members.to_id(m), tuple(sorted(favourites.get(m, ()))), frozenset(ts))
        for m, ts in per_member.items()
    ]
    return tuple(sorted(out, key=lambda c: c.member_id))
