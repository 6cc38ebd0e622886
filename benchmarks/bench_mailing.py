"""The mailing decision at size: member value, uplift scoring, the decision with rules — each against
a plain reference measured on the same data in the same run.

    nice .venv/bin/python -m benchmarks.bench_mailing --members 1500000 [--lp-members 300000]

- **value**: BG/NBD + Gamma-Gamma on ``--members`` members simulated from known parameters
  (:mod:`campaign.value_sim`, two years, ~3 purchase days a member): the order lines summarised
  (:func:`campaign.value.summarise`), both models fitted, every member's expected purchases and
  value over 90 days predicted — against the **reference**: one ``np.unique`` of the lines'
  member-day keys (the sort any per-member summary of the lines needs at least).
- **uplift**: the X-learner fitted on a randomized test of 60,000 simulated members, then every
  member's incremental margin for three editions scored — against a **plain numpy scoring loop**:
  a linear score per edition (``X @ w``) over the same matrix, in the same batches.
- **decision**: 4 options (catalog, postcard, e-mail, nothing) for every member, with the contact
  rules (frequency caps, spacing, a quiet period) over a history of 2 pieces a member and a
  suppression list of 1 % of members, a budget and a catalog capacity that bind
  (:func:`campaign.rules.eligibility` + :func:`campaign.policy.decide`, greedy with its LP bound)
  — against **the LP solver alone** (:func:`scipy.optimize.linprog`, HiGHS) on the same problem;
  the LP is run on the first ``--lp-members`` members (default all) when the full LP does not fit
  the machine, and the ratio is then per member.

Peak memory is the Python/numpy peak of each stage (tracemalloc) and the process's peak RSS.
Never part of the test suite.
"""

from __future__ import annotations

import argparse
import datetime as dt
import resource
import time
import tracemalloc
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
from scipy import optimize, sparse

from campaign.mailing_sim import make_world
from campaign.policy import Constraints, decide
from campaign.rules import (
    NO_END,
    ContactHistory,
    ContactRules,
    FrequencyCap,
    MailOption,
    QuietPeriod,
    Spacing,
    SuppressionList,
    eligibility,
)
from campaign.uplift import STACK_FOLDS, fit_uplift
from campaign.value import BgNbdParams, GammaGammaParams, fit_member_value, summarise
from campaign.value_sim import simulate_purchases

T = TypeVar("T")
COSTS = {"catalog": 2.50, "postcard": 0.45, "email": 0.002}


def measure(label: str, run: Callable[[], T]) -> tuple[T, float, float]:
    """(result, wall seconds, peak MiB traced) of ``run``."""
    tracemalloc.start()
    start = time.perf_counter()
    result = run()
    seconds = time.perf_counter() - start
    _now, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"  {label}: {seconds:,.2f} s, peak {peak / 2**20:,.0f} MiB traced", flush=True)
    return result, seconds, peak / 2**20


def rss() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_value(members: int) -> dict[str, Any]:
    print(f"value: {members:,} members", flush=True)
    sim = simulate_purchases(members, BgNbdParams(0.5, 20.0, 0.8, 2.5), GammaGammaParams(6.0, 4.0, 60.0),
                             end_day=730.0, acquisition_days=365.0, seed=1)  # fmt: skip
    lines = sim.member_index.size
    print(f"  {lines:,} order lines")

    def ours() -> Any:
        summary = summarise(sim.member_index, sim.purchased_at_days, sim.amount, members, 640.0)
        model = fit_member_value(summary)
        return model.predict(summary, 90.0)

    def reference() -> Any:
        keep = sim.purchased_at_days < 640.0
        return np.unique(sim.member_index[keep] * 1000 + np.floor(sim.purchased_at_days[keep]).astype(np.int64))

    _, ours_s, ours_mb = measure("summarise + fit + predict", ours)
    _, ref_s, ref_mb = measure("reference: np.unique of member-day keys", reference)
    return {"lines": lines, "ours_s": ours_s, "ours_mib": ours_mb, "ref_s": ref_s, "ref_mib": ref_mb}


def bench_uplift(members: int) -> dict[str, Any]:
    print(f"uplift: fit on 60,000 randomized, score {members:,} members × 3 editions", flush=True)
    train = make_world(60_000, COSTS, seed=3).randomized([0.25] * 4, seed=4)
    # as the decision fits it: cross-fitted, stacked, the fold models predicting (STACK_FOLDS)
    model, fit_s, _ = measure(
        f"fit (X-learner, {STACK_FOLDS} folds stacked)",
        lambda: fit_uplift(train, learner="x", seed=5, stack_folds=STACK_FOLDS),
    )
    world = make_world(members, COSTS, seed=6)
    x, _names = world.features()
    _, ours_s, ours_mb = measure("score every member", lambda: model.predict(x).margin)
    weights = np.random.default_rng(0).normal(size=(x.shape[1], 3))

    def reference() -> Any:
        out = np.empty((x.shape[0], 3))
        for start in range(0, x.shape[0], 200_000):
            block = x[start : start + 200_000]
            for j in range(3):
                out[start : start + block.shape[0], j] = block @ weights[:, j]
        return out

    _, ref_s, ref_mb = measure("reference: numpy linear scoring loop", reference)
    return {"fit_s": fit_s, "ours_s": ours_s, "ours_mib": ours_mb, "ref_s": ref_s, "ref_mib": ref_mb}


def bench_decision(members: int, lp_members: int) -> dict[str, Any]:
    print(f"decision: {members:,} members × 4 options with rules", flush=True)
    rng = np.random.default_rng(7)
    profit = rng.normal([0.3, 0.35, 0.25], [1.2, 0.4, 0.08], size=(members, 3))
    cost = np.array([COSTS["catalog"], COSTS["postcard"], COSTS["email"]])
    options = (MailOption("catalog", "C"), MailOption("postcard", "P"), MailOption("email", "E"))
    in_home = dt.date(2026, 10, 1)
    day = in_home.toordinal()
    pieces = 2 * members
    kinds = np.array(["catalog", "postcard", "email"])[rng.integers(0, 3, pieces)]
    history = ContactHistory(rng.integers(0, members, pieces), day - rng.integers(1, 200, pieces), list(kinds),
                             [k[0].upper() for k in kinds])  # fmt: skip
    n_supp = members // 100
    reasons = np.array(["deceased", "moved", "do_not_mail", "bad_address"])[rng.integers(0, 4, n_supp)]
    scope = {"deceased": "all", "moved": "post", "do_not_mail": "post", "bad_address": "post"}
    suppressions = SuppressionList(rng.integers(0, members, n_supp), list(reasons), [scope[r] for r in reasons],
                                   np.full(n_supp, day - 30), np.full(n_supp, NO_END))  # fmt: skip
    rules = ContactRules(
        caps=(FrequencyCap(2, 60, frozenset({"catalog", "postcard"})), FrequencyCap(6, 365)),
        quiet=(QuietPeriod("12-20", "01-05"),),
        spacing=(Spacing("postcard", "catalog", 21),),
    )
    free_cost = float(np.where(profit.max(1) > 0, cost[profit.argmax(1)], 0).sum())
    constraints = Constraints(budget=0.5 * free_cost, capacity={"catalog": members // 10})
    names = ("catalog", "postcard", "email")

    def ours() -> Any:
        ok = eligibility(members, options, in_home, rules, history, suppressions)
        return decide(profit, cost, ok.allowed, names, constraints, blocked_reason=ok.member_reason(), solver="greedy")

    decision, ours_s, ours_mb = measure("eligibility + decide (greedy)", ours)
    print(f"  objective {decision.objective:,.0f}, bound {decision.bound:,.0f}, gap {decision.gap:.4%}; "
          f"pieces {decision.pieces()}; binding {decision.info['binding']}")  # fmt: skip
    allowed = eligibility(members, options, in_home, rules, history, suppressions).allowed
    m = min(lp_members, members)
    part = slice(0, m)
    scale = m / members

    def lp() -> Any:
        p, ok = profit[part], allowed[part] & (profit[part] > 0)
        rows, cols = np.nonzero(ok)
        n = rows.size
        _u, inverse = np.unique(rows, return_inverse=True)
        a_ub = sparse.vstack([
            sparse.csr_matrix((np.ones(n), (inverse, np.arange(n))), shape=(_u.size, n)),
            sparse.csr_matrix(np.vstack([cost[cols], (cols == 0).astype(float)])),
        ]).tocsr()  # fmt: skip
        b_ub = np.concatenate([np.ones(_u.size), [constraints.budget * scale, constraints.capacity["catalog"] * scale]])  # type: ignore[operator]
        return optimize.linprog(-p[rows, cols], A_ub=a_ub, b_ub=b_ub, bounds=(0, 1), method="highs")

    result, lp_s, lp_mb = measure(f"reference: linprog (HiGHS) alone on {m:,} members", lp)
    print(f"  LP optimum {-result.fun:,.0f} (status {result.status})")
    return {"ours_s": ours_s, "ours_mib": ours_mb, "lp_s": lp_s, "lp_mib": lp_mb, "lp_members": m, "gap": decision.gap}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--members", type=int, default=1_500_000)
    parser.add_argument("--lp-members", type=int, default=None, help="members in the LP reference (default all)")
    parser.add_argument("--skip", action="append", default=[], choices=["value", "uplift", "decision"])
    args = parser.parse_args()
    n = args.members
    out: dict[str, Any] = {}
    if "value" not in args.skip:
        out["value"] = bench_value(n)
    if "uplift" not in args.skip:
        out["uplift"] = bench_uplift(n)
    if "decision" not in args.skip:
        out["decision"] = bench_decision(n, args.lp_members or n)
    print(f"\nsummary ({n:,} members; peak RSS {rss():,.0f} MiB; minutes, peak traced MiB)")
    if "value" in out:
        v = out["value"]
        print(f"  value: {v['ours_s'] / 60:,.2f} min, {v['ours_mib']:,.0f} MiB for {v['lines']:,} lines; the np.unique "
              f"reference {v['ref_s'] / 60:,.2f} min, {v['ref_mib']:,.0f} MiB ({v['ours_s'] / v['ref_s']:.1f}x)")  # fmt: skip
    if "uplift" in out:
        u = out["uplift"]
        print(f"  uplift: fit {u['fit_s'] / 60:,.2f} min; scoring {u['ours_s'] / 60:,.2f} min, {u['ours_mib']:,.0f} MiB; "
              f"the numpy loop {u['ref_s'] / 60:,.3f} min, {u['ref_mib']:,.0f} MiB ({u['ours_s'] / u['ref_s']:.1f}x)")  # fmt: skip
    if "decision" in out:
        d = out["decision"]
        per = (d["ours_s"] / n) / (d["lp_s"] / d["lp_members"])
        print(f"  decision: {d['ours_s'] / 60:,.2f} min, {d['ours_mib']:,.0f} MiB (gap {d['gap']:.3%}); the LP alone "
              f"{d['lp_s'] / 60:,.2f} min, {d['lp_mib']:,.0f} MiB on {d['lp_members']:,} members; per member ours / LP "
              f"= {per:.2f}")  # fmt: skip

if __name__ == "__main__":
    main()
