"""Reading-preference clusters: seeded k-means over category profiles, aligned
with last quarter's labels by member overlap (Hungarian matching), and named
from the categories that set each cluster apart.

``member_categories`` matrices are rows = members, columns = category codes,
values = smoothed affinity shares.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from scipy.optimize import linear_sum_assignment
from sklearn.cluster import KMeans, MiniBatchKMeans

from recsys.storage.categories import CategoryNode, ancestors

# Above this many members, mini-batch k-means: the full version's memory and time
# grow with every row, and 1.5 million profiles cluster as well in batches.
MINIBATCH_ABOVE = 200_000


@dataclass(frozen=True)
class Clustering:
    labels: npt.NDArray[np.int64]  # one per row of the profile matrix
    centroids: npt.NDArray[np.float64]  # clusters × columns, in the normalised space


def normalise_rows(member_categories: sp.csr_matrix | npt.NDArray[np.float64]) -> sp.csr_matrix:
    """Rows scaled to unit length, so clusters follow the mix of reading, not its volume."""
    matrix = sp.csr_matrix(member_categories, dtype=np.float32)  # 1.5M members × ~270 classes
    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1), dtype=np.float64).ravel())
    norms[norms == 0] = 1.0
    return sp.csr_matrix(sp.diags((1.0 / norms).astype(np.float32)) @ matrix)


def cluster_profiles(
    member_categories: sp.csr_matrix, k: int, *, seed: int, n_init: int = 8
) -> Clustering:
    """k-means (seeded) over row-normalised profiles; k shrinks to the distinct rows there are."""
    if member_categories.shape[0] == 0:
        raise ValueError("no member profiles to cluster")
    profiles = normalise_rows(member_categories)
    distinct = np.unique(profiles.toarray() if profiles.shape[0] <= 5_000 else profiles[:5_000].toarray(), axis=0)
    k = max(1, min(k, distinct.shape[0]))
    model: KMeans | MiniBatchKMeans
    if profiles.shape[0] > MINIBATCH_ABOVE:
        model = MiniBatchKMeans(n_clusters=k, random_state=seed, n_init=n_init, batch_size=8192)
    else:
        model = KMeans(n_clusters=k, random_state=seed, n_init=n_init)
    labels = model.fit_predict(profiles)
    return Clustering(np.asarray(labels, dtype=np.int64), np.asarray(model.cluster_centers_))


def nearest_centroid(
    centroids: npt.NDArray[np.float64], member_categories: sp.csr_matrix
) -> npt.NDArray[np.int64]:
    """The closest centroid to each (normalised) row."""
    profiles = normalise_rows(member_categories).toarray()
    distances = ((profiles[:, None, :] - centroids[None, :, :]) ** 2).sum(axis=2)
    return np.asarray(distances.argmin(axis=1), dtype=np.int64)


@dataclass(frozen=True)
class Alignment:
    labels: npt.NDArray[np.int64]  # the new labels, renamed to last quarter's where matched
    mapping: dict[int, int]  # raw cluster -> stable label
    compared: int  # members present in both quarters
    moved: int  # of those, how many changed segment


def align_labels(
    member_ids: Sequence[str], raw_labels: npt.NDArray[np.int64], previous: Mapping[str, int]
) -> Alignment:
    """Rename clusters to maximise member overlap with ``previous`` (member_id → label).

    Hungarian matching (``linear_sum_assignment``) on the overlap counts; a new
    cluster with no partner takes the smallest label not used by a matched one.
    """
    clusters = sorted({int(x) for x in raw_labels})
    if not previous:
        mapping = {c: i for i, c in enumerate(clusters)}
    else:
        old_labels = sorted(set(previous.values()))
        row = {c: i for i, c in enumerate(clusters)}
        col = {o: j for j, o in enumerate(old_labels)}
        overlap = np.zeros((len(clusters), len(old_labels)), dtype=np.int64)
        for member_id, label in zip(member_ids, raw_labels, strict=True):
            old = previous.get(member_id)
            if old is not None:
                overlap[row[int(label)], col[old]] += 1
        rows, cols = linear_sum_assignment(overlap, maximize=True)
        mapping = {clusters[r]: old_labels[c] for r, c in zip(rows, cols, strict=True)}
        free = (x for x in range(len(clusters) + len(old_labels)) if x not in mapping.values())
        for c in clusters:
            if c not in mapping:
                mapping[c] = next(free)
    labels = np.asarray([mapping[int(x)] for x in raw_labels], dtype=np.int64)
    compared = moved = 0
    for member_id, label in zip(member_ids, labels, strict=True):
        old = previous.get(member_id)
        if old is not None:
            compared += 1
            moved += int(old != label)
    return Alignment(labels, mapping, compared, moved)


def short_name(name: str) -> str:
    """The first clause of a CLC name: ``历史、地理`` → ``历史``."""
    for separator in ("、", "，", ",", "（", "("):
        name = name.split(separator)[0]
    return name.strip()


def distinctive_categories(
    segment_share: Mapping[str, float], overall_share: Mapping[str, float], limit: int
) -> list[tuple[str, float, float]]:
    """(code, share, lift) ranked by share × lift: large in the segment and larger than usual."""
    scored = []
    for code, share in segment_share.items():
        base = overall_share.get(code, 0.0)
        lift = share / base if base > 0 else 1.0
        scored.append((code, share, lift))
    scored.sort(key=lambda r: (-(r[1] * r[2]), r[0]))
    return scored[:limit]


def segment_names(
    distinctive: Mapping[int, Sequence[tuple[str, float, float]]],
    tree: Mapping[str, CategoryNode],
    words: int = 2,
    min_lift: float = 1.2,
) -> dict[int, str]:
    """A readable, unique name per segment from its distinctive categories.

    A category whose ancestor or descendant is already in the name is skipped
    (``I 文学 · I2 中国文学`` says one thing twice), and so is one after the first whose
    lift is below ``min_lift``; clashing names take one more word.
    """
    def pick(segment: int, count: int) -> list[str]:
        chosen: list[str] = []
        for code, _share, lift in distinctive[segment]:
            if chosen and lift < min_lift:
                continue  # a second word must set the segment apart, not just be common
            family = set(ancestors(dict(tree), code))
            if any(c in family or code in ancestors(dict(tree), c) for c in chosen):
                continue
            chosen.append(code)
            if len(chosen) == count:
                break
        return chosen

    def label(codes: list[str]) -> str:
        return " · ".join(short_name(tree[c].name) if c in tree else c for c in codes)

    names = {s: label(pick(s, words)) for s in distinctive}
    for extra in range(1, 4):
        clashes = [s for s in names if list(names.values()).count(names[s]) > 1]
        if not clashes:
            break
        for s in clashes:
            names[s] = label(pick(s, words + extra))
    seen: dict[str, int] = {}
    for s in sorted(names):
        seen[names[s]] = seen.get(names[s], 0) + 1
        if seen[names[s]] > 1:
            names[s] = f"{names[s]} ({seen[names[s]]})"
    return names
