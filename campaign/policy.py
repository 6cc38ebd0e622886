"""The mailing decision: each member gets the edition with the largest expected incremental
profit, or nothing, under a budget, a cap on pieces, capacities per edition and the contact rules.

Pure numpy/scipy. The input is, per member × option (an edition kind), the expected
incremental margin minus the piece's cost (plus the weighted change in lifetime value
where configured) — ``profit`` — the piece's ``cost``, and whether the contact rules and
the suppression list allow it (:func:`campaign.rules.eligibility`). The problem::

    maximise   Σ_i Σ_k profit[i,k]·x[i,k]
    subject to Σ_k x[i,k] ≤ 1                      (one piece per member at most)
               Σ_i Σ_k cost[i,k]·x[i,k] ≤ budget
               Σ_i Σ_k x[i,k] ≤ max_pieces
               Σ_i x[i,k] ≤ capacity[k]            (per option)
               x[i,k] = 0 where a rule forbids it;  x ∈ {0, 1}

Only pairs with positive profit are variables (a piece that loses money never helps: every
constraint caps from above). Three solvers:

- ``milp`` — scipy's HiGHS branch and cut (:func:`scipy.optimize.milp`) on the whole
  problem, optimal within ``mip_rel_gap``; its dual bound is the reported bound. Exact but
  slow past a few thousand members (30,000 members × 3 options with a budget and a
  capacity found no solution in 300 s).
- ``lp`` — the LP relaxation (:func:`scipy.optimize.linprog`, HiGHS), whose vertex has at
  most one fractional member per coupling constraint; the integral part is kept and the
  fractional members are decided by ``milp`` within what is left. The LP optimum is the
  bound (30,000 × 3: 5 s, 2 fractional members).
- ``greedy`` — Lagrangian relaxation of the coupling constraints (budget, pieces,
  capacities): each member takes ``argmax_k profit[i,k] − λ·a[i,k]`` if positive; the
  multipliers are found by coordinate bisection on the (convex) dual, every dual value
  is an upper bound on the LP optimum, the best one is reported; the member choices at
  the final multipliers are repaired to feasibility (the least efficient pieces dropped)
  and then topped up greedily by marginal profit per unit of cost. The gap to the LP
  bound is reported; with one coupling constraint the LP optimum has at most one
  fractional member, so the gap is that member's profit at most.
- ``auto`` — ``milp`` up to ``exact_max_members`` members with candidate pieces, ``lp`` up to
  ``milp_max_members``, ``greedy`` above.

**Holdouts stay random.** The caller's random holdout (the seeded hash of
:mod:`campaign.holdouts`) is decided before and apart from this: holdout members are
planned like everyone else — the edition they *would* get is recorded, so that each
edition's mailed members are compared with a random holdout of the same targeted
population — and then not mailed. The plan's cost (the budget) covers the holdout's
would-be pieces; what is mailed is that less the holdout.

Every member left out gets a reason code: the rule or suppression that blocked every
option, ``no expected profit``, ``budget``, ``max pieces``, ``capacity: KIND``, or
``holdout`` (with the would-be edition).

The mail-depth curve of the same problem, and its chart, are :mod:`campaign.mail_depth`.

(Past 400 lines because the three solvers are one problem solved three ways: they share its
formulation — the coupling constraints, the candidate pairs, the reason each member is left
out — and :func:`decide` chooses among them by size; apart, each would restate the problem.)
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from scipy import optimize, sparse

__all__ = ["Constraints", "Decision", "decide"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
Solver = Literal["auto", "milp", "lp", "greedy"]

NO_PROFIT = "no expected profit"
HOLDOUT = "holdout"


@dataclass(frozen=True)
class Constraints:
    budget: float | None = None
    max_pieces: int | None = None
    capacity: dict[str, int] = field(default_factory=dict)  # option name → most pieces

    def __post_init__(self) -> None:
        if self.budget is not None and not self.budget >= 0:
            raise ValueError(f"the budget must be ≥ 0, got {self.budget}")
        if self.max_pieces is not None and self.max_pieces < 0:
            raise ValueError(f"max pieces must be ≥ 0, got {self.max_pieces}")
        for name, cap in self.capacity.items():
            if cap < 0:
                raise ValueError(f"capacity of {name} must be ≥ 0, got {cap}")


@dataclass(frozen=True, eq=False)
class Decision:
    """The plan: per member the option (index into ``options``; −1 none) and why not, if not."""

    options: tuple[str, ...]
    choice: IntArray  # the planned option, holdout members included
    held_out: BoolArray
    reason: list[str | None]  # None for a mailed member
    objective: float  # Σ planned profit (holdout members' would-be pieces included)
    bound: float  # an upper bound on the LP optimum
    solver: str
    status: str
    cost: float  # Σ planned cost
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def mailed(self) -> BoolArray:
        return np.asarray((self.choice >= 0) & ~self.held_out, dtype=np.bool_)

    @property
    def gap(self) -> float:
        """(bound − objective) / bound: 0 when provably optimal (LP bound reached)."""
        if self.bound <= 0:
            return 0.0
        return max(0.0, (self.bound - self.objective) / self.bound)

    def pieces(self) -> dict[str, int]:
        """Pieces planned per option (holdout members' would-be pieces included)."""
        counts = np.bincount(self.choice[self.choice >= 0], minlength=len(self.options))
        return {name: int(c) for name, c in zip(self.options, counts, strict=True)}

    def reasons(self) -> dict[str, int]:
        return dict(Counter(r for r in self.reason if r is not None))


def _coupling(
    cost: FloatArray, options: Sequence[str], constraints: Constraints
) -> tuple[list[str], list[FloatArray], list[float]]:
    """The coupling constraints as (name, per member × option usage, limit)."""
    names: list[str] = []
    usage: list[FloatArray] = []
    limits: list[float] = []
    n, k = cost.shape
    if constraints.budget is not None:
        names.append("budget")
        usage.append(cost)
        limits.append(float(constraints.budget))
    if constraints.max_pieces is not None:
        names.append("max pieces")
        usage.append(np.ones((n, k)))
        limits.append(float(constraints.max_pieces))
    for j, name in enumerate(options):
        if name in constraints.capacity:
            one = np.zeros((n, k))
            one[:, j] = 1.0
            names.append(f"capacity: {name}")
            usage.append(one)
            limits.append(float(constraints.capacity[name]))
    return names, usage, limits


def _best(value: FloatArray, ok: BoolArray) -> tuple[IntArray, FloatArray]:
    """Per member: the option with the largest positive value among ``ok`` (−1 none), and that value."""
    masked = np.where(ok, value, -np.inf)
    j = np.argmax(masked, axis=1) if masked.shape[1] else np.zeros(masked.shape[0], dtype=np.int64)
    v = masked[np.arange(masked.shape[0]), j] if masked.shape[1] else np.full(masked.shape[0], -np.inf)
    take = v > 0
    return np.where(take, j, -1).astype(np.int64), np.where(take, v, 0.0)


def _used(choice: IntArray, usage: FloatArray) -> float:
    rows = np.flatnonzero(choice >= 0)
    return float(usage[rows, choice[rows]].sum())


class _Columns:
    """The Lagrangian's per-option columns, contiguous (a column at a time is several times faster
    than ``argmax(axis=1)`` over a few options), with forbidden and losing pairs at −inf."""

    def __init__(self, profit: FloatArray, ok: BoolArray, usage: list[FloatArray]) -> None:
        k = profit.shape[1]
        self.profit = [np.where(ok[:, j], profit[:, j], -np.inf) for j in range(k)]
        self.usage = [[np.ascontiguousarray(a[:, j]) for a in usage] for j in range(k)]
        self.n = profit.shape[0]

    def best(self, lam: FloatArray) -> tuple[IntArray, FloatArray]:
        """Per member: the option with the largest positive reduced profit (−1 none), and that value."""
        value = np.zeros(self.n)
        choice = np.full(self.n, -1, dtype=np.int64)
        for j, column in enumerate(self.profit):
            reduced = column.copy()
            for c, a in enumerate(self.usage[j]):
                if lam[c]:
                    reduced -= lam[c] * a
            better = reduced > value
            value = np.where(better, reduced, value)
            choice[better] = j
        return choice, value


def _lagrangian(
    profit: FloatArray, ok: BoolArray, usage: list[FloatArray], limits: list[float], *, rounds: int = 8, steps: int = 36
) -> tuple[FloatArray, float]:
    """Multipliers minimising the Lagrangian dual by coordinate bisection; the best dual value seen."""
    lam = np.zeros(len(limits))
    columns = _Columns(profit, ok, usage)
    limit_arr = np.asarray(limits)

    def dual(lam: FloatArray) -> tuple[float, IntArray]:
        choice, value = columns.best(lam)
        return float(value.sum() + lam @ limit_arr), choice

    best_bound, choice = dual(lam)
    for _ in range(rounds):
        before = lam.copy()
        for j, (a, limit) in enumerate(zip(usage, limits, strict=True)):
            lam[j] = 0.0
            bound, choice = dual(lam)
            best_bound = min(best_bound, bound)
            if _used(choice, a) <= limit:
                continue
            per_unit = np.where((a > 0) & ok, profit / np.where(a > 0, a, 1.0), 0.0)
            lo, hi = 0.0, float(per_unit.max()) + 1.0
            for _step in range(steps):
                mid = (lo + hi) / 2.0
                lam[j] = mid
                bound, choice = dual(lam)
                best_bound = min(best_bound, bound)
                if _used(choice, a) > limit:
                    lo = mid
                else:
                    hi = mid
            lam[j] = hi
            bound, _ = dual(lam)
            best_bound = min(best_bound, bound)
        if np.allclose(lam, before, rtol=1e-6, atol=1e-9):
            break
    return lam, best_bound


def _greedy(
    profit: FloatArray, cost: FloatArray, ok: BoolArray, usage: list[FloatArray], limits: list[float]
) -> tuple[IntArray, float, dict[str, Any]]:
    lam, bound = _lagrangian(profit, ok, usage, limits)
    reduced = profit - sum((lam[j] * a for j, a in enumerate(usage)), np.zeros_like(profit))
    choice, _ = _best(reduced, ok)
    used = np.array([_used(choice, a) for a in usage])
    # repair: drop the least efficient pieces (profit per weighted usage) until every limit holds
    if np.any(used > np.asarray(limits) + 1e-9):
        rows = np.flatnonzero(choice >= 0)
        weight = sum((a[rows, choice[rows]] / max(lim, 1e-12) for a, lim in zip(usage, limits, strict=True)),
                     np.zeros(rows.size)) + 1e-12  # fmt: skip
        for i in rows[np.argsort(profit[rows, choice[rows]] / weight, kind="stable")]:
            if np.all(used <= np.asarray(limits) + 1e-9):
                break
            j = choice[i]
            used -= np.array([a[i, j] for a in usage])
            choice[i] = -1
    # top up: add or upgrade pieces by marginal profit per marginal cost while they fit
    current = np.where(choice >= 0, profit[np.arange(len(choice)), np.maximum(choice, 0)], 0.0)
    gain = np.where(ok, profit - current[:, None], -np.inf)
    gain[np.arange(len(choice))[choice >= 0], choice[choice >= 0]] = -np.inf
    rows, cols = np.nonzero(gain > 1e-12)
    if rows.size:
        cur_cost = np.where(choice >= 0, cost[np.arange(len(choice)), np.maximum(choice, 0)], 0.0)
        extra = np.maximum(cost[rows, cols] - cur_cost[rows], 1e-9)
        order = np.argsort(-(gain[rows, cols] / extra), kind="stable")
        limit_arr = np.asarray(limits)
        for t in order:
            i, j = int(rows[t]), int(cols[t])
            old = choice[i]
            if profit[i, j] <= (profit[i, old] if old >= 0 else 0.0):
                continue
            delta = np.array([a[i, j] - (a[i, old] if old >= 0 else 0.0) for a in usage])
            if np.all(used + delta <= limit_arr + 1e-9):
                used += delta
                choice[i] = j
    objective = float(np.where(choice >= 0, profit[np.arange(len(choice)), np.maximum(choice, 0)], 0.0).sum())
    return choice, max(bound, objective), {"multipliers": [float(v) for v in lam]}


def _problem(
    profit: FloatArray, ok: BoolArray, usage: list[FloatArray], limits: list[float]
) -> tuple[IntArray, IntArray, list[optimize.LinearConstraint]]:
    """The candidate pairs (rows, cols) and the constraints over them, for scipy."""
    rows, cols = np.nonzero(ok & (profit > 0))
    m = rows.size
    _members, inverse = np.unique(rows, return_inverse=True)
    one_each = sparse.csr_matrix((np.ones(m), (inverse, np.arange(m))), shape=(_members.size, m))
    constraints = [optimize.LinearConstraint(one_each, -np.inf, 1.0)]
    if usage:
        coupling = np.vstack([a[rows, cols] for a in usage])
        constraints.append(optimize.LinearConstraint(sparse.csr_matrix(coupling), -np.inf, np.asarray(limits)))
    return rows.astype(np.int64), cols.astype(np.int64), constraints


def _solve_milp(
    c: FloatArray, constraints: list[optimize.LinearConstraint], time_limit: float, rel_gap: float
) -> Any:
    return optimize.milp(
        c=c, constraints=constraints, integrality=np.ones(c.size), bounds=optimize.Bounds(0.0, 1.0),
        options={"time_limit": time_limit, "mip_rel_gap": rel_gap, "disp": False},
    )  # fmt: skip


def _milp(
    profit: FloatArray, ok: BoolArray, usage: list[FloatArray], limits: list[float], time_limit: float, rel_gap: float
) -> tuple[IntArray, float, str, dict[str, Any]]:
    """The whole problem to scipy's branch and cut (exact; for small and mid-sized clubs)."""
    choice = np.full(profit.shape[0], -1, dtype=np.int64)
    rows, cols, constraints = _problem(profit, ok, usage, limits)
    if rows.size == 0:
        return choice, 0.0, "optimal", {"variables": 0}
    result = _solve_milp(-profit[rows, cols], constraints, time_limit, rel_gap)
    if result.x is None:
        raise RuntimeError(f"milp found no solution: {result.message}")
    take = result.x > 0.5
    choice[rows[take]] = cols[take]
    objective = float(profit[rows[take], cols[take]].sum())
    dual_bound = getattr(result, "mip_dual_bound", None)
    bound = -float(dual_bound) if dual_bound is not None and math.isfinite(dual_bound) else objective
    status = "optimal" if result.status == 0 else str(result.message)
    return choice, max(bound, objective), status, {"variables": int(rows.size), "nodes": getattr(result, "mip_node_count", None)}


def _lp_rounded(
    profit: FloatArray, ok: BoolArray, usage: list[FloatArray], limits: list[float], time_limit: float, rel_gap: float
) -> tuple[IntArray, float, str, dict[str, Any]]:
    """The LP relaxation (HiGHS), its integral part kept, and the few members it left fractional
    (at most one per coupling constraint at a vertex) decided exactly by ``milp`` within what is left.
    The LP optimum is the bound."""
    choice = np.full(profit.shape[0], -1, dtype=np.int64)
    rows, cols, constraints = _problem(profit, ok, usage, limits)
    if rows.size == 0:
        return choice, 0.0, "optimal", {"variables": 0}
    c = -profit[rows, cols]
    a_ub = sparse.vstack([con.A for con in constraints]).tocsr()
    b_ub = np.concatenate([np.broadcast_to(con.ub, (con.A.shape[0],)) for con in constraints])
    lp = optimize.linprog(c, A_ub=a_ub, b_ub=b_ub, bounds=(0.0, 1.0), method="highs",
                          options={"time_limit": time_limit})  # fmt: skip
    if lp.x is None:
        raise RuntimeError(f"the LP relaxation failed: {lp.message}")
    bound = -float(lp.fun)
    x = lp.x
    whole = x > 1.0 - 1e-7
    fractional_members = np.unique(rows[(x > 1e-7) & ~whole])
    choice[rows[whole]] = cols[whole]
    # integral pieces of a fractional member are reopened too: the member is decided as a whole
    reopen = np.isin(rows, fractional_members)
    choice[fractional_members] = -1
    info: dict[str, Any] = {"variables": int(rows.size), "fractional_members": int(fractional_members.size)}
    if fractional_members.size:
        kept = whole & ~reopen
        used = np.array([float(a[rows[kept], cols[kept]].sum()) for a in usage])
        sub_ok = np.zeros_like(ok)
        sub_ok[rows[reopen], cols[reopen]] = True
        residual = [max(0.0, lim - u) for lim, u in zip(limits, used, strict=True)]
        sub_rows, sub_cols, sub_constraints = _problem(profit, sub_ok, usage, residual)
        result = _solve_milp(-profit[sub_rows, sub_cols], sub_constraints, time_limit, rel_gap)
        if result.x is not None:
            take = result.x > 0.5
            choice[sub_rows[take]] = sub_cols[take]
    picked = np.flatnonzero(choice >= 0)
    objective = float(profit[picked, choice[picked]].sum())
    status = "optimal" if objective >= bound - 1e-9 * max(1.0, abs(bound)) else "within the LP bound"
    return choice, max(bound, objective), status, info


def decide(
    profit: FloatArray,
    cost: FloatArray,
    allowed: BoolArray,
    options: Sequence[str],
    constraints: Constraints,
    *,
    held_out: BoolArray | None = None,
    blocked_reason: Sequence[str | None] | None = None,
    solver: Solver = "auto",
    milp_max_members: int = 200_000,
    exact_max_members: int = 2_000,
    time_limit: float = 300.0,
    rel_gap: float = 1e-4,
) -> Decision:
    """The plan for every member (module doc). ``cost`` is (members, options) or (options,);
    ``blocked_reason[i]`` says why member i has no allowed option (from the rules)."""
    profit = np.asarray(profit, dtype=np.float64)
    n, k = profit.shape
    options = tuple(options)
    if len(options) != k:
        raise ValueError(f"{k} option columns but {len(options)} option names")
    cost = np.broadcast_to(np.asarray(cost, dtype=np.float64), (n, k))
    if np.any(cost < 0) or not np.all(np.isfinite(cost)) or not np.all(np.isfinite(profit)):
        raise ValueError("costs must be finite and ≥ 0, profits finite")
    allowed = np.asarray(allowed, dtype=np.bool_)
    if allowed.shape != (n, k):
        raise ValueError("allowed must be (members, options)")
    held = np.zeros(n, dtype=np.bool_) if held_out is None else np.asarray(held_out, dtype=np.bool_)
    if unknown := set(constraints.capacity) - set(options):
        raise ValueError(f"capacity for unknown option(s): {', '.join(sorted(unknown))}")
    names, usage, limits = _coupling(cost, options, constraints)
    ok = allowed & (profit > 0)
    free_choice, _ = _best(profit, ok)
    binding = [name for name, a, lim in zip(names, usage, limits, strict=True) if _used(free_choice, a) > lim]
    candidates = int(np.count_nonzero(ok.any(axis=1)))
    info: dict[str, Any] = {"candidates": candidates, "binding": binding}
    if not binding:
        choice, bound, used_solver, status = free_choice, float(profit[ok].size and 0.0), "unconstrained", "optimal"
        bound = float(np.where(choice >= 0, profit[np.arange(n), np.maximum(choice, 0)], 0.0).sum())
    elif solver == "milp" or (solver == "auto" and candidates <= exact_max_members):
        choice, bound, status, extra = _milp(profit, ok, usage, limits, time_limit, rel_gap)
        used_solver = "milp"
        info.update(extra)
    elif solver == "lp" or (solver == "auto" and candidates <= milp_max_members):
        choice, bound, status, extra = _lp_rounded(profit, ok, usage, limits, time_limit, rel_gap)
        used_solver = "lp"
        info.update(extra)
    else:
        choice, bound, extra = _greedy(profit, cost, ok, usage, limits)
        used_solver, status = "greedy", "feasible"
        info.update(extra)
    picked = np.flatnonzero(choice >= 0)
    objective = float(profit[picked, choice[picked]].sum())
    total_cost = float(cost[picked, choice[picked]].sum())
    used = {name: _used(choice, a) for name, a in zip(names, usage, strict=True)}
    info["used"] = used
    info["limits"] = dict(zip(names, limits, strict=True))
    reason = _reasons(choice, held, allowed, ok, profit, blocked_reason, names, usage, limits, used)
    return Decision(
        options=options, choice=choice, held_out=held, reason=reason, objective=objective, bound=bound,
        solver=used_solver, status=status, cost=total_cost, info=info,
    )  # fmt: skip


def _reasons(
    choice: IntArray,
    held: BoolArray,
    allowed: BoolArray,
    ok: BoolArray,
    profit: FloatArray,
    blocked_reason: Sequence[str | None] | None,
    names: list[str],
    usage: list[FloatArray],
    limits: list[float],
    used: dict[str, float],
) -> list[str | None]:
    """Why each member is not mailed (None for the mailed). A profitable member left out is
    blamed on the first constraint (budget, max pieces, capacity) whose slack is less than
    their best piece would use, else on the first constraint that bound at all."""
    n = choice.size
    slack = {name: lim - used[name] for name, lim in zip(names, limits, strict=True)}
    binding = [name for name in names if slack[name] <= 1e-6 * max(1.0, abs(used[name]))]
    best_option = np.argmax(np.where(ok, profit, -np.inf), axis=1) if profit.shape[1] else np.zeros(n, np.int64)
    out: list[str | None] = []
    for i in range(n):
        if choice[i] >= 0:
            out.append(HOLDOUT if held[i] else None)
        elif not allowed[i].any():
            out.append((blocked_reason[i] if blocked_reason is not None else None) or "no option allowed")
        elif not ok[i].any():
            out.append(NO_PROFIT)
        else:
            j = int(best_option[i])
            hit = next((name for name, a in zip(names, usage, strict=True) if slack[name] < a[i, j] - 1e-12), None)
            out.append(hit or (binding[0] if binding else names[0] if names else NO_PROFIT))
    return out
