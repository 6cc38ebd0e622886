from __future__ import annotations

import numpy as np
import pytest

from recsys.confidence import SECONDS_PER_DAY, confidence_matrix, line_weights, reweight, sum_matrix


def test_recency_halves_every_half_life() -> None:
    now = 1000 * SECONDS_PER_DAY
    quantity = np.array([2, 1, 1], dtype=np.float32)
    at = np.array([now, now - 30 * SECONDS_PER_DAY, now - 60 * SECONDS_PER_DAY])
    w = line_weights(quantity, at, reference=now, half_life_days=30)
    assert w.tolist() == pytest.approx([2.0, 0.5, 0.25])
    assert line_weights(quantity, at, reference=now, half_life_days=None).tolist() == [2, 1, 1]


def test_returns_subtract_and_drop_when_net_zero() -> None:
    member = np.array([0, 0, 0, 1], dtype=np.int64)
    title = np.array([0, 0, 1, 1], dtype=np.int64)
    weights = np.array([2, -2, 3, 1], dtype=np.float32)
    m = sum_matrix(member, title, weights, (2, 2))
    assert m.toarray().tolist() == [[0, 3], [0, 1]]
    assert m.nnz == 2  # the returned pair is gone, not stored as 0


def test_shape_checked() -> None:
    with pytest.raises(ValueError, match="outside"):
        sum_matrix(np.array([2]), np.array([0]), np.array([1.0], dtype=np.float32), (2, 2))


def test_bm25_damps_titles_everyone_buys() -> None:
    # implicit's convention: titles are the documents. Title 0 is bought by all
    # three members, titles 1-3 by one each: member 0's weight on title 0 is lower.
    member = np.array([0, 1, 2, 0, 1, 2], dtype=np.int64)
    title = np.array([0, 0, 0, 1, 2, 3], dtype=np.int64)
    ones = np.ones(6, dtype=np.float32)
    raw, weighted = confidence_matrix(
        member,
        title,
        ones,
        np.zeros(6),
        (3, 4),
        reference=0.0,
        half_life_days=None,
        weighting="bm25",
    )
    assert raw.toarray()[0].tolist() == [1, 1, 0, 0]
    row = weighted.toarray()[0]
    assert row[1] > row[0] > 0
    tfidf = reweight(raw, "tfidf")
    assert (tfidf.indices == raw.indices).all() and (tfidf.data > 0).all()
    assert weighted.nnz == raw.nnz
