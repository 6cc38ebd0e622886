"""The mailing decision: optimal against brute force, feasible always, within 0.5 % of the LP bound
greedily, every member left out with a reason, the contact rules never broken (Hypothesis)."""

from __future__ import annotations

import datetime as dt
import itertools
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import optimize, sparse

from campaign.mail_depth import depth_curve, depth_svg
from campaign.policy import Constraints, decide
from campaign.rules import eligibility, violations
from tests.campaign.test_rules import IN_HOME, OPTIONS, worlds

NAMES = tuple(o.kind for o in OPTIONS)
COST = np.array([2.5, 0.45, 0.01])


def brute_force(profit: np.ndarray, cost: np.ndarray, allowed: np.ndarray, c: Constraints) -> float:
    n, k = profit.shape
    best = 0.0
    for plan in itertools.product(range(-1, k), repeat=n):
        choice = np.array(plan)
        rows = np.flatnonzero(choice >= 0)
        if not allowed[rows, choice[rows]].all():
            continue
        if c.budget is not None and cost[rows, choice[rows]].sum() > c.budget + 1e-9:
            continue
        if c.max_pieces is not None and rows.size > c.max_pieces:
            continue
        counts = np.bincount(choice[rows], minlength=k)
        if any(counts[NAMES.index(name)] > cap for name, cap in c.capacity.items()):
            continue
        best = max(best, float(profit[rows, choice[rows]].sum()))
    return best


def check_feasible(d, profit, cost, allowed, c: Constraints) -> None:  # type: ignore[no-untyped-def]
    rows = np.flatnonzero(d.choice >= 0)
    assert allowed[rows, d.choice[rows]].all()
    assert (profit[rows, d.choice[rows]] > 0).all()
    if c.budget is not None:
        assert cost[rows, d.choice[rows]].sum() <= c.budget + 1e-6
    if c.max_pieces is not None:
        assert rows.size <= c.max_pieces
    for name, cap in c.capacity.items():
        assert np.count_nonzero(d.choice == NAMES.index(name)) <= cap
    assert d.objective == pytest.approx(float(profit[rows, d.choice[rows]].sum()))
    assert d.objective <= d.bound + 1e-6
    for i, r in enumerate(d.reason):
        assert (r is None) == (d.choice[i] >= 0 and not d.held_out[i]), (i, r)


constraints = st.builds(
    Constraints,
    budget=st.one_of(st.none(), st.floats(0, 8)),
    max_pieces=st.one_of(st.none(), st.integers(0, 5)),
    capacity=st.dictionaries(st.sampled_from(NAMES), st.integers(0, 3), max_size=2),
)


@settings(max_examples=150, deadline=None)
@given(
    arrays(np.float64, (5, 3), elements=st.floats(-2, 6)),
    arrays(np.bool_, (5, 3)),
    constraints,
    arrays(np.bool_, 5),
)
def test_milp_is_optimal_and_greedy_feasible_on_small_clubs(profit, allowed, c, held) -> None:  # type: ignore[no-untyped-def]
    cost = np.broadcast_to(COST, profit.shape)
    optimum = brute_force(profit, cost, allowed, c)
    exact = decide(profit, COST, allowed, NAMES, c, held_out=held, solver="milp")
    check_feasible(exact, profit, cost, allowed, c)
    assert exact.objective == pytest.approx(optimum, abs=1e-6)
    for solver in ("greedy", "lp"):
        approx = decide(profit, COST, allowed, NAMES, c, held_out=held, solver=solver)  # type: ignore[arg-type]
        check_feasible(approx, profit, cost, allowed, c)
        assert approx.objective <= optimum + 1e-6 <= approx.bound + 2e-6
    greedy = decide(profit, COST, allowed, NAMES, c, held_out=held, solver="greedy")
    # holdout members are planned like the others, never mailed
    assert not (greedy.mailed & held).any() and np.array_equal(exact.held_out, held)
    assert all(r == "holdout" for r, h, ch in zip(exact.reason, held, exact.choice, strict=True) if h and ch >= 0)


def test_greedy_and_lp_are_within_half_a_percent_of_the_lp_optimum_on_a_large_club() -> None:
    rng = np.random.default_rng(4)
    n = 30_000
    profit = rng.normal([0.4, 0.3, 0.2], [1.5, 0.5, 0.1], size=(n, 3))
    allowed = rng.random((n, 3)) > 0.1
    c = Constraints(budget=12_000.0, max_pieces=20_000, capacity={"catalog": 3_000})
    greedy = decide(profit, COST, allowed, NAMES, c, solver="greedy")
    lp = decide(profit, COST, allowed, NAMES, c, solver="lp")
    cost = np.broadcast_to(COST, profit.shape)
    check_feasible(greedy, profit, cost, allowed, c)
    check_feasible(lp, profit, cost, allowed, c)
    # the reference: the LP relaxation solved here on its own
    ok = allowed & (profit > 0)
    rows, cols = np.nonzero(ok)
    members, inverse = np.unique(rows, return_inverse=True)
    a_ub = sparse.vstack([
        sparse.csr_matrix((np.ones(rows.size), (inverse, np.arange(rows.size))), shape=(members.size, rows.size)),
        sparse.csr_matrix(np.vstack([COST[cols], np.ones(rows.size), (cols == 0).astype(float)])),
    ])  # fmt: skip
    b_ub = np.concatenate([np.ones(members.size), [12_000.0, 20_000.0, 3_000.0]])
    reference = -optimize.linprog(-profit[rows, cols], A_ub=a_ub, b_ub=b_ub, bounds=(0, 1), method="highs").fun
    assert greedy.objective >= 0.995 * reference and lp.objective >= 0.995 * reference
    assert greedy.bound >= reference - 1e-6 and lp.bound == pytest.approx(reference, rel=1e-9)
    assert greedy.gap < 0.005 and lp.gap < 0.001 and lp.info["fractional_members"] <= 3
    assert set(greedy.info["binding"]) == {"budget", "max pieces", "capacity: catalog"}
    reasons = greedy.reasons()
    assert reasons["no expected profit"] > 0 and reasons.get("budget", 0) + reasons.get("capacity: catalog", 0) > 0


def test_without_a_binding_constraint_each_member_gets_the_best_profitable_option() -> None:
    profit = np.array([[1.0, 2.0, 0.5], [-1.0, -0.5, -0.1], [3.0, 0.1, 0.2], [5.0, 1.0, 1.0]])
    allowed = np.array([[1, 1, 1], [1, 1, 1], [1, 1, 1], [0, 0, 0]], dtype=bool)
    d = decide(profit, COST, allowed, NAMES, Constraints(), blocked_reason=[None, None, None, "suppressed: moved"])
    assert d.choice.tolist() == [1, -1, 0, -1] and d.solver == "unconstrained" and d.gap == 0
    assert d.reason == [None, "no expected profit", None, "suppressed: moved"]
    assert d.pieces() == {"catalog": 1, "postcard": 1, "email": 0}
    with pytest.raises(ValueError):
        decide(profit, COST, allowed, NAMES, Constraints(capacity={"flyer": 3}))


@settings(max_examples=120, deadline=None)
@given(worlds(), st.data(), st.sampled_from(["milp", "lp", "greedy"]))
def test_no_plan_breaks_a_contact_rule(world: dict, data: st.DataObject, solver: str) -> None:
    n = world["n"]
    result = eligibility(
        n, OPTIONS, IN_HOME, world["rules"], world["history"], world["suppressions"],
        closed=np.array(world["closed"]), no_address=np.array(world["no_address"]),
    )  # fmt: skip
    profit = data.draw(arrays(np.float64, (n, 3), elements=st.floats(-1, 5)))
    c = data.draw(constraints)
    d = decide(profit, COST, result.allowed, NAMES, c, blocked_reason=result.member_reason(), solver=solver)  # type: ignore[arg-type]
    assert violations(
        d.choice.tolist(), OPTIONS, IN_HOME, world["rules"], world["history"], world["suppressions"],
        closed=world["closed"], no_address=world["no_address"],
    ) == []  # fmt: skip
    for i, r in enumerate(d.reason):
        if not result.allowed[i].any():
            assert r == result.member_reason()[i]


def test_depth_curve_and_svg() -> None:
    profit = np.array([[3.0, 1.0, 0.0], [-1.0, -2.0, -0.5], [0.5, 0.2, 0.1], [2.0, 2.5, 0.3]])
    allowed = np.ones((4, 3), dtype=bool)
    d = decide(profit, COST, allowed, NAMES, Constraints(max_pieces=2))
    curve = depth_curve(profit, allowed, d)
    assert curve.marginal.tolist() == [3.0, 2.5, 0.5, -0.5]
    assert curve.break_even == 3 and curve.chosen == 2
    assert curve.cumulative[-1] == pytest.approx(5.5)
    table = curve.to_json()["table"]
    assert {"pieces": 3, "share_of_audience": 0.75, "marginal_profit": 0.5, "cumulative_profit": 6.0} in table
    svg = depth_svg(curve, title="2026Q4 <test>")
    root = ET.fromstring(svg)
    assert root.tag.endswith("svg")
    assert "break-even 3" in svg and "plan 2" in svg and "&lt;test&gt;" in svg and "6 ◀ break-even" in svg
    assert dt.date.today()  # the chart needs no clock
