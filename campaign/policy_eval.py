"""How good is the mailing decision? Scored where the truth is known, and on a real randomized test.

**The simulated club** (:func:`evaluate_simulated`): an uplift model is learned from a
randomized test quarter of one simulated club (:mod:`campaign.mailing_sim`: each member
held out or sent a catalog, a postcard or an e-mail at random), then every policy decides
for a fresh club of the same kind, and each decision is scored with the members' *true*
expected incremental profit (margin minus the cost of the piece) — no sampling noise in
the score. The policies:

- ``policy`` — the decision (:func:`campaign.policy.decide`) on the learned uplift;
- ``oracle`` — the same decision on the true effects (the most any policy can get);
- ``mail everyone`` — a catalog to every member (what the club did before);
- ``RFM cells`` — the classic response rule: members in recency × frequency × monetary
  quintile cells; a cell gets the edition whose mailed members in the test quarter
  brought the most margin per piece net of its cost, if positive (orders that would have
  come anyway counted as the mailing's, as response analysis does);
- ``response top-k`` — a response model: per edition, a calibrated classifier of
  P(order | mailed, x) and the margin of a responder; members ranked by expected
  response margin net of cost, and the top k mailed: as many as the budget pays for, or
  (without a budget) k = the pieces the policy mails.

With a budget (the club's print and postage money for the quarter), the policy, the
oracle, the RFM rule and the response model all spend at most it; mailing everyone is
what the club did before and costs what it costs.

Intervals are 95 % percentile intervals over a paired bootstrap of the evaluated members
(the learned policy held fixed): they say how sure the comparison is for a club of this
size, not how it varies with the training quarter (run several seeds for that).

**Hillstrom** is :mod:`campaign.hillstrom_eval`: a policy learned on one random half of a
real randomized e-mail test, valued on the other by IPW and by DR (:mod:`campaign.policy_value`).

**Qini / AUUC** on held-back data (:func:`held_back_qini`): 30 % of the randomized training
quarter is held back before the model that measures it is fitted; per edition, the Qini
coefficient and AUUC of the predicted incremental margin (outcome: margin) and of the
predicted incremental response (outcome: ordered or not). The decision itself then uses a
model fitted on the whole quarter (stacked: the mean of its cross-fitted fold models,
:func:`campaign.uplift.fit_uplift`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier
from threadpoolctl import threadpool_limits

from campaign.mailing_sim import MailingWorld, make_world
from campaign.policy import Constraints, decide
from campaign.policy_value import Comparison, bootstrap_weights, compare
from campaign.uplift import STACK_FOLDS, Learner, UpliftData, UpliftModel, fit_uplift, qini

__all__ = ["SimulationEvaluation", "evaluate_simulated", "held_back_qini", "response_scores", "rfm_rule", "top_k"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
DEFAULT_COSTS: dict[str, float] = {"catalog": 2.50, "postcard": 0.45, "email": 0.002}


# ----------------------------------------------------------------------------- the simulated club


@dataclass(frozen=True)
class SimulationEvaluation:
    members: int
    trained_on: int
    learner: str
    policy_profit: float
    policy_pieces: dict[str, int]
    oracle_profit: float
    oracle_pieces: dict[str, int]
    capture: float
    capture_low: float
    capture_high: float
    comparisons: list[Comparison]
    qini: dict[str, dict[str, float | None]]
    gap: float
    solver: str
    extra: dict[str, Any] = field(default_factory=dict)

    def comparison(self, name: str) -> Comparison:
        return next(c for c in self.comparisons if c.name == name)

    def to_json(self) -> dict[str, Any]:
        return {
            "members": self.members, "trained_on": self.trained_on, "learner": self.learner,
            "policy": {"profit": self.policy_profit, "pieces": self.policy_pieces},
            "oracle": {"profit": self.oracle_profit, "pieces": self.oracle_pieces},
            "capture": {"share": self.capture, "low": self.capture_low, "high": self.capture_high},
            "against": [c.to_json() for c in self.comparisons],
            "qini_held_back": self.qini, "lp_gap": self.gap, "solver": self.solver, **self.extra,
        }  # fmt: skip


def _rfm_cells(x: FloatArray, names: Sequence[str], edges: list[FloatArray] | None = None) -> tuple[IntArray, list[FloatArray]]:
    """Quintile cells of recency (fewer days better), frequency and monetary value."""
    cols = [names.index("recency_days"), names.index("frequency"), names.index("monetary")]
    if edges is None:
        edges = [np.unique(np.quantile(x[:, c], [0.2, 0.4, 0.6, 0.8])) for c in cols]
    cell = np.zeros(x.shape[0], dtype=np.int64)
    for c, e in zip(cols, edges, strict=True):
        cell = cell * 5 + np.searchsorted(e, x[:, c], side="right")
    return cell, edges


def rfm_rule(train: UpliftData, costs: FloatArray, x: FloatArray, *, budget: float | None = None) -> IntArray:
    """The RFM-cell response rule (module doc): per cell the edition with the most margin per piece
    among its mailed members net of cost, if positive; cells the test did not reach are not mailed.
    Under a budget, the cells with the most net margin per unit of cost are mailed first until
    it is spent."""
    cells, edges = _rfm_cells(train.features, train.feature_names)
    k = len(train.arm_names)
    net = np.full((125, k), -np.inf)
    for j in range(k):
        mine = train.arm == j + 1
        count = np.bincount(cells[mine], minlength=125)
        total = np.bincount(cells[mine], weights=train.money[mine, 2], minlength=125)
        seen = count >= 10
        net[seen, j] = total[seen] / count[seen] - costs[j]
    best = np.argmax(net, axis=1)
    value = net[np.arange(125), best]
    rule = np.where(value > 0, best, -1)
    target, _ = _rfm_cells(x, train.feature_names, edges)
    choice = rule[target].astype(np.int64)
    if budget is not None:
        per_cost = np.where(choice >= 0, value[target] / costs[np.maximum(choice, 0)], -np.inf)
        order = np.argsort(-per_cost, kind="stable")
        spent = np.cumsum(np.where(choice[order] >= 0, costs[np.maximum(choice[order], 0)], 0.0))
        choice[order[spent > budget]] = -1
    return choice


def response_scores(train: UpliftData, costs: FloatArray, x: FloatArray, seed: int) -> FloatArray:
    """Expected response margin net of cost per member × edition, from mailed members only."""
    k = len(train.arm_names)
    with threadpool_limits(limits=1):
        responders = train.responded & (train.arm > 0)
        value = _per_responder_margin(train, responders, seed)
        scores = np.empty((x.shape[0], k))
        for j in range(k):
            mine = train.arm == j + 1
            clf = CalibratedClassifierCV(
                HistGradientBoostingClassifier(max_iter=200, learning_rate=0.03, max_depth=2, random_state=seed + j),
                method="isotonic", cv=3,
            ).fit(train.features[mine], train.responded[mine])  # fmt: skip
            scores[:, j] = clf.predict_proba(x)[:, 1] * value.predict(x) - costs[j]
    return scores


def _per_responder_margin(train: UpliftData, responders: npt.NDArray[np.bool_], seed: int) -> Any:
    from sklearn.ensemble import HistGradientBoostingRegressor

    return HistGradientBoostingRegressor(max_iter=150, learning_rate=0.03, max_depth=2, random_state=seed).fit(
        train.features[responders], train.money[responders, 2]
    )


def top_k(scores: FloatArray, k: int, costs: FloatArray, budget: float | None = None) -> IntArray:
    """Each member's best-scoring edition; the ``k`` best members mailed, or under a budget as
    many of the best as it pays for."""
    best = np.argmax(scores, axis=1)
    value = scores[np.arange(scores.shape[0]), best]
    choice = np.full(scores.shape[0], -1, dtype=np.int64)
    order = np.argsort(-value, kind="stable")
    chosen = order[:k] if budget is None else order[np.cumsum(costs[best[order]]) <= budget]
    choice[chosen] = best[chosen]
    return choice


def evaluate_simulated(
    *,
    train_members: int = 60_000,
    eval_members: int = 50_000,
    seed: int = 0,
    costs: Mapping[str, float] = DEFAULT_COSTS,
    learner: Learner = "x",
    constraints: Constraints | None = None,
    shares: Sequence[float] = (0.25, 0.25, 0.25, 0.25),
    resamples: int = 1000,
    stack_folds: int = STACK_FOLDS,
) -> SimulationEvaluation:
    """The policy and its rivals on a simulated club with known effects (module doc). ``stack_folds``:
    the uplift's cross-fitted stacking (:func:`campaign.uplift.fit_uplift`; 0 = the raw learner)."""
    constraints = constraints or Constraints()
    train_world = make_world(train_members, costs, seed=seed)
    data = train_world.randomized(shares, seed=seed + 1)
    fit, back = data.split(0.3, seed=seed + 2)
    model = fit_uplift(fit, learner=learner, seed=seed + 3, stack_folds=stack_folds)
    qinis = held_back_qini(model, back)
    model = fit_uplift(data, learner=learner, seed=seed + 3, stack_folds=stack_folds)  # the whole quarter decides
    world = make_world(eval_members, costs, seed=seed + 100)
    x, _names = world.features()
    options = world.kinds
    allowed = np.ones((world.n, len(options)), dtype=np.bool_)
    predicted = model.predict(x).margin - world.costs
    ours = decide(predicted, world.costs, allowed, options, constraints)
    oracle = decide(world.true_margin() - world.costs, world.costs, allowed, options, constraints)
    pieces = int(np.count_nonzero(ours.choice >= 0))
    budget = constraints.budget
    rivals = {
        "mail everyone": np.zeros(world.n, dtype=np.int64),
        "RFM cells": rfm_rule(data, world.costs, x, budget=budget),
        "response top-k": top_k(response_scores(data, world.costs, x, seed + 4), pieces, world.costs, budget),
    }
    weights = bootstrap_weights(world.n, resamples, seed + 5)
    mine = world.profit(ours.choice)
    best = world.profit(oracle.choice)
    capture = (weights @ mine.astype(np.float32)) / (weights @ best.astype(np.float32))
    comparisons = [
        compare(name, mine, world.profit(choice), int(np.count_nonzero(choice >= 0)), weights)
        for name, choice in rivals.items()
    ]
    return SimulationEvaluation(
        members=world.n,
        trained_on=len(data),
        learner=learner,
        policy_profit=float(mine.sum()),
        policy_pieces=ours.pieces(),
        oracle_profit=float(best.sum()),
        oracle_pieces=oracle.pieces(),
        capture=float(mine.sum() / best.sum()),
        capture_low=float(np.percentile(capture, 2.5)),
        capture_high=float(np.percentile(capture, 97.5)),
        comparisons=comparisons,
        qini=qinis,
        gap=ours.gap,
        solver=ours.solver,
        extra={"world": _world_summary(world), "stacking": model.info.get("stacking")},
    )


def _finite(x: float) -> float | None:
    return x if np.isfinite(x) else None


def held_back_qini(model: UpliftModel, back: UpliftData) -> dict[str, dict[str, float | None]]:
    """Per edition: Qini coefficient, AUUC and the unnormalised area per member of its margin ranking
    (``margin …``) and of its response ranking (``response …``) on held-back members. Qini and AUUC
    are None when the held-back data cannot tell the edition's total effect from zero
    (:func:`campaign.uplift.qini`); the area is always there."""
    out: dict[str, dict[str, float | None]] = {}
    for j, name in enumerate(model.arm_names):
        mine = (back.arm == 0) | (back.arm == j + 1)
        pred = model.predict(back.features[mine])
        treated = back.arm[mine] == j + 1
        row: dict[str, float | None] = {}
        for label, score, outcome in (
            ("margin", pred.margin[:, j], back.money[mine, 2]),
            ("response", pred.response[:, j], back.responded[mine].astype(np.float64)),
        ):
            q = qini(score, treated, outcome)
            row[f"{label} qini"], row[f"{label} auuc"], row[f"{label} area"] = _finite(q.qini), _finite(q.auuc), q.area
        out[name] = row
    return out


def _world_summary(world: MailingWorld) -> dict[str, Any]:
    base = world.effects[0].baseline_response
    inc = world.true_response()
    return {
        "baseline_response": float(base.mean()),
        "incremental_response": {k: float(inc[:, j].mean()) for j, k in enumerate(world.kinds)},
        "costs": {k: float(c) for k, c in zip(world.kinds, world.costs, strict=True)},
        "would_have_come_anyway": float(base.mean() / (base.mean() + inc[:, 0].mean())),
    }
