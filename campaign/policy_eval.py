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

**Hillstrom** (:func:`evaluate_hillstrom`): 64,000 customers randomized to a men's
e-mail, a women's e-mail or none. A policy is learned on one random half; on the other
half its value is the inverse-propensity-weighted mean outcome of the members whose
random arm agrees with what the policy would send (the arms were random, so the
propensities are the arm shares), net of the e-mail cost. It is compared with mailing
everyone (each member one of the two editions, as the test did), mailing everyone the
edition that did better on the learning half, and mailing no one; intervals from a
paired bootstrap of the evaluation half.
"""

from __future__ import annotations

import csv
import gzip
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier
from threadpoolctl import threadpool_limits

from campaign.mailing_sim import MailingWorld, make_world
from campaign.policy import Constraints, decide
from campaign.uplift import Learner, UpliftData, UpliftModel, fit_uplift, qini

__all__ = [
    "HILLSTROM_ARMS",
    "HILLSTROM_OUTCOMES",
    "Comparison",
    "HillstromEvaluation",
    "SimulationEvaluation",
    "evaluate_hillstrom",
    "evaluate_simulated",
    "load_hillstrom",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
DEFAULT_COSTS: dict[str, float] = {"catalog": 2.50, "postcard": 0.45, "email": 0.002}


@dataclass(frozen=True)
class Comparison:
    """The policy against another: their totals and the policy's relative gain with its interval."""

    name: str
    profit: float
    pieces: int
    gain: float  # (policy − this) / |this|
    low: float
    high: float
    difference: float  # policy − this
    difference_low: float
    difference_high: float

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def _bootstrap_weights(n: int, resamples: int, seed: int) -> npt.NDArray[np.float32]:
    return np.random.default_rng(seed).poisson(1.0, size=(resamples, n)).astype(np.float32)


def _compare(
    name: str, ours: FloatArray, theirs: FloatArray, pieces: int, weights: npt.NDArray[np.float32]
) -> Comparison:
    a = weights @ ours.astype(np.float32)
    b = weights @ theirs.astype(np.float32)
    gain = (a - b) / np.abs(b)
    total_ours, total_theirs = float(ours.sum()), float(theirs.sum())
    return Comparison(
        name=name,
        profit=total_theirs,
        pieces=pieces,
        gain=(total_ours - total_theirs) / abs(total_theirs) if total_theirs else float("inf"),
        low=float(np.percentile(gain, 2.5)),
        high=float(np.percentile(gain, 97.5)),
        difference=total_ours - total_theirs,
        difference_low=float(np.percentile(a - b, 2.5)),
        difference_high=float(np.percentile(a - b, 97.5)),
    )


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
    qini: dict[str, float | None]
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
) -> SimulationEvaluation:
    """The policy and its rivals on a simulated club with known effects (module doc)."""
    constraints = constraints or Constraints()
    train_world = make_world(train_members, costs, seed=seed)
    data = train_world.randomized(shares, seed=seed + 1)
    fit, back = data.split(0.3, seed=seed + 2)
    model = fit_uplift(fit, learner=learner, seed=seed + 3)
    qinis = _held_back_qini(model, back)
    model = fit_uplift(data, learner=learner, seed=seed + 3)  # the whole quarter for the decision
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
    weights = _bootstrap_weights(world.n, resamples, seed + 5)
    mine = world.profit(ours.choice)
    best = world.profit(oracle.choice)
    capture = (weights @ mine.astype(np.float32)) / (weights @ best.astype(np.float32))
    comparisons = [
        _compare(name, mine, world.profit(choice), int(np.count_nonzero(choice >= 0)), weights)
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
        extra={"world": _world_summary(world)},
    )


def _finite(x: float) -> float | None:
    return x if np.isfinite(x) else None


def _held_back_qini(model: UpliftModel, back: UpliftData) -> dict[str, float | None]:
    """Per edition, the Qini coefficient of its margin and of its response ranking (None when the
    held-back data cannot tell the edition's total effect from zero)."""
    out: dict[str, float | None] = {}
    for j, name in enumerate(model.arm_names):
        mine = (back.arm == 0) | (back.arm == j + 1)
        pred = model.predict(back.features[mine])
        out[name] = _finite(qini(pred.margin[:, j], back.arm[mine] == j + 1, back.money[mine, 2]).qini)
        out[f"{name} (response)"] = _finite(qini(
            pred.response[:, j], back.arm[mine] == j + 1, back.responded[mine].astype(np.float64)
        ).qini)
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


# ----------------------------------------------------------------------------- Hillstrom

HILLSTROM_ARMS = ("No E-Mail", "Mens E-Mail", "Womens E-Mail")


@dataclass(frozen=True, eq=False)
class HillstromData:
    features: FloatArray
    feature_names: tuple[str, ...]
    arm: IntArray  # index into HILLSTROM_ARMS
    visit: npt.NDArray[np.bool_]
    conversion: npt.NDArray[np.bool_]
    spend: FloatArray


def load_hillstrom(path: Path) -> HillstromData:
    """The Hillstrom file (gzip'd CSV) as features and outcomes (recency and history as given;
    men's, women's, newbie flags; zip code and channel one-hot)."""
    zips = ("Urban", "Surburban", "Rural")
    channels = ("Phone", "Web", "Multichannel")
    rows: list[list[float]] = []
    arm: list[int] = []
    visit: list[bool] = []
    conversion: list[bool] = []
    spend: list[float] = []
    with gzip.open(path, "rt", encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            rows.append([
                float(row["recency"]), float(row["history"]), float(row["mens"]), float(row["womens"]),
                float(row["newbie"]), *(float(row["zip_code"] == z) for z in zips),
                *(float(row["channel"] == c) for c in channels),
            ])  # fmt: skip
            arm.append(HILLSTROM_ARMS.index(row["segment"]))
            visit.append(row["visit"] == "1")
            conversion.append(row["conversion"] == "1")
            spend.append(float(row["spend"]))
    names = ("recency", "history", "mens", "womens", "newbie", *(f"zip_{z}" for z in zips),
             *(f"channel_{c}" for c in channels))  # fmt: skip
    return HillstromData(
        np.asarray(rows), names, np.asarray(arm, dtype=np.int64), np.asarray(visit), np.asarray(conversion),
        np.asarray(spend),
    )


@dataclass(frozen=True)
class HillstromEvaluation:
    members_learned: int
    members_evaluated: int
    outcome: str
    policy_value: float  # per member, IPW, net of the e-mail cost
    policy_mix: dict[str, float]  # share of members sent each arm
    values: dict[str, float]  # the rivals' values per member
    comparisons: list[Comparison]
    qini: dict[str, float | None]

    def comparison(self, name: str) -> Comparison:
        return next(c for c in self.comparisons if c.name == name)

    def to_json(self) -> dict[str, Any]:
        return {
            "members_learned": self.members_learned, "members_evaluated": self.members_evaluated,
            "outcome": self.outcome, "policy_value_per_member": self.policy_value, "policy_mix": self.policy_mix,
            "values_per_member": self.values, "against": [c.to_json() for c in self.comparisons],
            "qini_evaluation_half": self.qini,
        }  # fmt: skip


HILLSTROM_OUTCOMES = ("spend", "conversion", "visit")


def _outcome(data: HillstromData, outcome: str, margin_rate: float) -> FloatArray:
    if outcome == "spend":
        return data.spend * margin_rate
    if outcome == "conversion":
        return data.conversion.astype(np.float64)
    if outcome == "visit":
        return data.visit.astype(np.float64)
    raise ValueError(f"unknown outcome {outcome!r}: one of {', '.join(HILLSTROM_OUTCOMES)}")


def _hillstrom_uplift_data(data: HillstromData, rows: IntArray, outcome: str, margin_rate: float) -> UpliftData:
    y = _outcome(data, outcome, margin_rate)[rows]
    responded = data.conversion[rows] if outcome == "spend" else y > 0
    money = np.column_stack([responded.astype(np.float64), y, y])
    return UpliftData(data.features[rows], data.arm[rows], responded, money, HILLSTROM_ARMS[1:], data.feature_names)


def evaluate_hillstrom(
    path: Path,
    *,
    seed: int = 0,
    learner: Learner = "x",
    outcome: str = "spend",
    margin_rate: float = 1.0,
    email_cost: float = 0.0,
    resamples: int = 2000,
) -> HillstromEvaluation:
    """A policy learned on one random half of Hillstrom, valued by IPW on the other (module doc).

    ``outcome``: ``spend`` × ``margin_rate`` (1.0: dollars of spend; learned as conversion
    uplift × a converter's spend), ``conversion`` or ``visit`` (per member); less
    ``email_cost`` per e-mail sent.
    """
    data = load_hillstrom(path)
    n = data.arm.size
    order = np.random.default_rng(seed).permutation(n)
    learn, evaluate = np.sort(order[: n // 2]), np.sort(order[n // 2 :])
    model = fit_uplift(_hillstrom_uplift_data(data, learn, outcome, margin_rate), learner=learner, seed=seed + 1)
    x = data.features[evaluate]
    arm = data.arm[evaluate]
    y = _outcome(data, outcome, margin_rate)[evaluate]
    share = np.bincount(data.arm, minlength=3) / n  # the arms' probabilities (randomized)
    predicted = model.predict(x).margin - email_cost
    choice = np.where(predicted.max(axis=1) > 0, predicted.argmax(axis=1) + 1, 0)

    def per_member(send: IntArray) -> FloatArray:
        """IPW contribution of each evaluated member to the value of a deterministic policy."""
        value: FloatArray = np.where(arm == send, y / share[arm], 0.0) - email_cost * (send > 0)
        return value

    learned_y = _outcome(data, outcome, margin_rate)[learn]
    learned_means = [float(learned_y[data.arm[learn] == a].mean()) for a in (1, 2)]
    better = 1 + int(np.argmax(learned_means))
    treated = arm > 0
    both = np.where(treated, y / share[1:].sum(), 0.0) - email_cost  # one of the two at random, as the test
    rivals = {
        "both editions to everyone": both,
        f"{HILLSTROM_ARMS[better]} to everyone": per_member(np.full(arm.size, better)),
        "no e-mail": per_member(np.zeros(arm.size, dtype=np.int64)),
    }
    mine = per_member(choice.astype(np.int64))
    weights = _bootstrap_weights(arm.size, resamples, seed + 2)
    comparisons = [_compare(name, mine, theirs, 0, weights) for name, theirs in rivals.items()]
    qinis: dict[str, float | None] = {}
    pred_all = model.predict(x)
    for j, name in enumerate(HILLSTROM_ARMS[1:]):
        rows = (arm == 0) | (arm == j + 1)
        qinis[name] = _finite(qini(pred_all.margin[rows, j], arm[rows] == j + 1, y[rows]).qini)
    return HillstromEvaluation(
        members_learned=int(learn.size),
        members_evaluated=int(evaluate.size),
        outcome=(f"spend × {margin_rate:g}" if outcome == "spend" else outcome)
        + (f" − {email_cost:g} per e-mail" if email_cost else ""),
        policy_value=float(mine.mean()),
        policy_mix={name: float(np.mean(choice == a)) for a, name in enumerate(HILLSTROM_ARMS)},
        values={name: float(v.mean()) for name, v in rivals.items()},
        comparisons=comparisons,
        qini=qinis,
    )

