"""The per-history decomposition of ALS scores matches implicit's own explain and recalculate_user."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from implicit.cpu.als import AlternatingLeastSquares
from threadpoolctl import threadpool_limits

from recsys.model.explain import MemberSystem, gram


@pytest.fixture
def fitted() -> tuple[AlternatingLeastSquares, sp.csr_matrix]:
    members, titles = 60, 40
    member_titles = sp.random(members, titles, density=0.2, random_state=3, format="csr", dtype=np.float32)
    member_titles.data = 1.0 + np.round(member_titles.data * 4)
    model = AlternatingLeastSquares(factors=8, regularization=0.3, alpha=2.0, iterations=5, random_state=1)
    with threadpool_limits(1, "blas"):
        model.fit(member_titles, show_progress=False)
    return model, member_titles


def test_top_reasons_match_implicit_explain(fitted: tuple[AlternatingLeastSquares, sp.csr_matrix]) -> None:
    model, member_titles = fitted
    factors = np.ascontiguousarray(model.item_factors)
    base = gram(factors, model.regularization)
    for member in range(8):
        row = member_titles[member]
        system = MemberSystem.build(
            factors, base, row.indices.astype(np.int64), row.data.astype(np.float64) * model.alpha
        )
        targets = np.arange(member_titles.shape[1], dtype=np.int64)
        ours = system.top_reasons(factors, targets, 3)
        contributions = system.contributions(factors, targets)
        for t in targets:
            total, top, _ = model.explain(0, row, int(t), N=3)
            assert ours[t] == [int(i) for i, s in top if s > 0], (member, t)
            assert contributions[:, t].sum() == pytest.approx(total, rel=1e-3, abs=1e-4)


def test_member_vector_matches_recalculate_user(fitted: tuple[AlternatingLeastSquares, sp.csr_matrix]) -> None:
    model, member_titles = fitted
    factors = np.ascontiguousarray(model.item_factors)
    row = member_titles[5]
    system = MemberSystem.build(
        factors, gram(factors, model.regularization), row.indices.astype(np.int64),
        row.data.astype(np.float64) * model.alpha,
    )
    expected = np.asarray(model.recalculate_user(0, row)).ravel()
    assert system.member_vector() == pytest.approx(expected, rel=1e-3, abs=1e-4)


def test_shapes_are_checked() -> None:
    factors = np.ones((3, 2), dtype=np.float32)
    with pytest.raises(ValueError, match="differ"):
        MemberSystem.build(factors, gram(factors, 0.1), np.array([0, 1]), np.array([1.0]))
