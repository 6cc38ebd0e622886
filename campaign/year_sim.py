"""A simulated year of quarterly mailings: the decision against a mail-all control arm.

One simulated club (:mod:`campaign.mailing_sim`) is split at random, once, into a
**control arm** (``control_share``, default 20 %) that is mailed as before — a catalog to
everyone — and the **policy arm**. Each quarter, in each arm, a random holdout
(``holdout_share``) is not mailed. In the policy arm:

- the first quarter, with nothing learned yet, is a randomized test: each member gets a
  catalog, a postcard, an e-mail or nothing at random;
- every later quarter an uplift model is fitted on every randomized contact so far (the
  first quarter's test, the control arm's catalogs and holdouts, the policy arm's
  holdouts and ``explore_share`` of random pieces kept every quarter so that each
  edition stays measurable), and :func:`campaign.policy.decide` chooses for the rest,
  under ``budget_per_member`` × the arm's members if given.

Every quarter draws fresh responses (same members, new luck). Each arm is scored on the
members' true expected incremental profit (known in the simulation) and on the drawn
margin; profit per piece and per member are what the quarters show.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from campaign.mailing_sim import make_world
from campaign.policy import Constraints, decide
from campaign.uplift import STACK_FOLDS, Learner, UpliftData, fit_uplift

__all__ = ["ArmQuarter", "simulate_year"]

DEFAULT_COSTS: dict[str, float] = {"catalog": 2.50, "postcard": 0.45, "email": 0.002}


@dataclass(frozen=True)
class ArmQuarter:
    quarter: int
    arm: str  # "policy" or "mail-all control"
    members: int
    pieces: dict[str, int]
    cost: float
    incremental_margin: float  # true, expected
    profit: float  # incremental margin − cost (true, expected)
    drawn_margin: float  # margin of the orders drawn (incremental or not)
    how: str

    @property
    def total_pieces(self) -> int:
        return sum(self.pieces.values())

    @property
    def profit_per_piece(self) -> float:
        return self.profit / self.total_pieces if self.total_pieces else 0.0

    @property
    def profit_per_member(self) -> float:
        return self.profit / self.members if self.members else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "quarter": self.quarter, "arm": self.arm, "members": self.members, "pieces": self.pieces,
            "cost": self.cost, "incremental_margin": self.incremental_margin, "profit": self.profit,
            "profit_per_piece": self.profit_per_piece, "profit_per_member": self.profit_per_member,
            "drawn_margin": self.drawn_margin, "how": self.how,
        }  # fmt: skip


def simulate_year(
    *,
    members: int = 20_000,
    quarters: int = 4,
    seed: int = 0,
    costs: Mapping[str, float] = DEFAULT_COSTS,
    control_share: float = 0.2,
    holdout_share: float = 0.05,
    explore_share: float = 0.1,
    budget_per_member: float | None = None,
    learner: Learner = "x",
    stack_folds: int = STACK_FOLDS,
) -> list[ArmQuarter]:
    """The year, quarter by quarter, both arms (module doc); ``stack_folds``: see
    :func:`campaign.uplift.fit_uplift`."""
    if quarters < 1 or members < 100:
        raise ValueError("need at least one quarter and 100 members")
    world = make_world(members, costs, seed=seed)
    k = len(world.kinds)
    x, names = world.features()
    rng = np.random.default_rng(seed + 1)
    control = rng.random(world.n) < control_share
    policy = ~control
    seen_x: list[npt.NDArray[np.float64]] = []
    seen_arm: list[npt.NDArray[np.int64]] = []
    seen_resp: list[npt.NDArray[np.bool_]] = []
    seen_money: list[npt.NDArray[np.float64]] = []
    out: list[ArmQuarter] = []
    truth = world.true_margin()
    for q in range(1, quarters + 1):
        held = rng.random(world.n) < holdout_share
        arm = np.zeros(world.n, dtype=np.int64)  # 0 nothing, j + 1 kind j
        arm[control & ~held] = 1  # a catalog to everyone in the control arm
        randomized = control.copy()  # the control's catalogs and holdouts are random
        randomized |= policy & held
        if q == 1:
            how = "randomized test"
            test = policy & ~held
            arm[test] = rng.integers(0, k + 1, size=int(test.sum()))
            randomized |= test
        else:
            explore = policy & ~held & (rng.random(world.n) < explore_share)
            arm[explore] = rng.integers(0, k + 1, size=int(explore.sum()))
            randomized |= explore
            data = UpliftData(
                np.concatenate(seen_x), np.concatenate(seen_arm), np.concatenate(seen_resp),
                np.concatenate(seen_money), world.kinds, names,
            )  # fmt: skip
            model = fit_uplift(data, learner=learner, seed=seed + q, stack_folds=stack_folds)
            chosen = policy & ~explore  # holdout members are planned too, then not mailed
            rows = np.flatnonzero(chosen)
            predicted = model.predict(x[rows]).margin - world.costs
            budget = None if budget_per_member is None else budget_per_member * int(policy.sum())
            decision = decide(
                predicted, world.costs, np.ones((rows.size, k), dtype=np.bool_), world.kinds,
                Constraints(budget=budget), held_out=held[rows],
            )  # fmt: skip
            arm[rows] = np.where(decision.mailed, decision.choice + 1, 0)
            how = f"decision ({decision.solver}, {len(data):,} randomized contacts learned)"
        responded, money = world.draw(arm, seed=seed + 1000 * q)
        seen_x.append(x[randomized])
        seen_arm.append(arm[randomized])
        seen_resp.append(responded[randomized])
        seen_money.append(money[randomized])
        for name, mask in (("policy", policy), ("mail-all control", control)):
            sent = mask & (arm > 0)
            rows = np.flatnonzero(sent)
            kinds = arm[rows] - 1
            margin = float(truth[rows, kinds].sum())
            cost = float(world.costs[kinds].sum())
            counts = np.bincount(kinds, minlength=k)
            out.append(ArmQuarter(
                quarter=q, arm=name, members=int(mask.sum()),
                pieces={kind: int(c) for kind, c in zip(world.kinds, counts, strict=True)},
                cost=cost, incremental_margin=margin, profit=margin - cost,
                drawn_margin=float(money[mask, 2].sum()),
                how=how if name == "policy" else "catalogs",
            ))  # fmt: skip
    return out
