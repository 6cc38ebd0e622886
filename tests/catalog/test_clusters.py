"""k-means over category profiles, Hungarian alignment with last quarter, names."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from catalog.clusters import align_labels, cluster_profiles, segment_names, short_name
from recsys.storage.categories import CategoryNode


def _profiles(seed: int = 0) -> sp.csr_matrix:
    """60 members in three obvious reading groups over four categories."""
    rng = np.random.default_rng(seed)
    centres = np.array([[0.9, 0.05, 0.05, 0.0], [0.05, 0.9, 0.0, 0.05], [0.0, 0.1, 0.1, 0.8]])
    rows = np.vstack([centres[i % 3] + rng.uniform(0, 0.05, 4) for i in range(60)])
    return sp.csr_matrix(rows)


def test_kmeans_finds_the_groups_and_is_seeded() -> None:
    first = cluster_profiles(_profiles(), 3, seed=7)
    again = cluster_profiles(_profiles(), 3, seed=7)
    assert np.array_equal(first.labels, again.labels)
    for group in range(3):
        members = first.labels[group::3]
        assert len(set(members.tolist())) == 1  # every member of a group together
    assert len(set(first.labels.tolist())) == 3


def test_k_shrinks_to_the_distinct_profiles() -> None:
    same = sp.csr_matrix(np.tile([1.0, 0.0], (10, 1)))
    assert cluster_profiles(same, 4, seed=1).labels.tolist() == [0] * 10


def test_alignment_keeps_labels_when_clusters_come_back_permuted() -> None:
    members = [f"M{i}" for i in range(12)]
    last_quarter = {m: i % 3 for i, m in enumerate(members)}
    permutation = {0: 2, 1: 0, 2: 1}  # k-means numbered the same groups differently
    raw = np.array([permutation[i % 3] for i in range(12)])
    aligned = align_labels(members, raw, last_quarter)
    assert aligned.labels.tolist() == [i % 3 for i in range(12)]
    assert aligned.moved == 0 and aligned.compared == 12


def test_alignment_counts_members_who_moved_and_names_new_clusters() -> None:
    members = [f"M{i}" for i in range(10)]
    last_quarter = {m: (0 if i < 5 else 1) for i, m in enumerate(members[:8])}  # M8, M9 are new
    raw = np.array([5, 5, 5, 5, 9, 9, 9, 9, 7, 7])  # M4 moved to the other group; a third cluster
    aligned = align_labels(members, raw, last_quarter)
    assert aligned.mapping[5] == 0 and aligned.mapping[9] == 1
    assert aligned.mapping[7] == 2  # the smallest label not taken
    assert aligned.compared == 8 and aligned.moved == 1


def test_alignment_without_last_quarter_numbers_from_zero() -> None:
    aligned = align_labels(["a", "b", "c"], np.array([4, 1, 4]), {})
    assert sorted(set(aligned.labels.tolist())) == [0, 1] and aligned.compared == 0


def test_names_are_readable_unique_and_skip_family() -> None:
    tree = {
        "I": CategoryNode("I", "文学", None, 1),
        "I2": CategoryNode("I2", "中国文学", "I", 2),
        "K": CategoryNode("K", "历史、地理", None, 1),
        "B": CategoryNode("B", "哲学、宗教", None, 1),
    }
    distinctive = {
        0: [("I", 0.5, 2.0), ("I2", 0.3, 2.1), ("K", 0.1, 1.5)],
        1: [("K", 0.4, 2.5), ("B", 0.2, 0.9)],
        2: [("I", 0.3, 1.3), ("K", 0.2, 1.25)],
    }
    names = segment_names(distinctive, tree)
    assert names[0] == "文学 · 历史"  # I2 is part of I; K is the next distinct word
    assert names[1] == "历史"  # B's lift is under 1.2: not what sets the segment apart
    assert len(set(names.values())) == 3
    assert short_name("马克思主义、列宁主义") == "马克思主义"
