"""A mailing policy learned and valued on Hillstrom's randomized e-mail test (issue 11, item 6).

64,000 customers were sent, at random, a men's e-mail, a women's e-mail or nothing; what they
did in the next two weeks is known (visit, conversion, spend). A policy is learned on one
random half and valued on the other.

**The objective** is spend per customer less the e-mail's cost (``email_cost``, 0 by default:
Hillstrom gives no cost, and an e-mail costs a fraction of a cent) — what the club would plan
by (its margin is spend × its margin rate, a constant factor here). ``outcome="visit"`` or
``"conversion"`` value the same policies on those instead (reported beside, as the issue's
earlier figures were).

**The learners** (all :func:`campaign.uplift.fit_uplift`, X-learner by default), the money
outcome learned as *uplift of a frequent event × the outcome per such event*:

- ``via conversion`` — conversion uplift × spend of a converter (0.9 % convert);
- ``via visit`` — visit uplift × spend of a visitor (15 % visit: sixteen times the events, so a
  far less noisy uplift; it assumes the e-mail changes whether a customer comes more than what
  a visitor spends, which the learning half does not contradict);
- and the two plain rules ``Mens E-Mail to everyone``, ``Womens E-Mail to everyone``.

The data — arms, outcomes, features, the file read — is :mod:`campaign.hillstrom_data`.

**Which learner** is chosen on the learning half only: each candidate is fitted on two thirds of
it and decides for the last third, three times over; the candidates' policies are valued there by
DR (outcome models cross-fitted within the learning half) and the best is refitted on the whole
learning half. The evaluation half is touched once, to value what was chosen (every candidate's
value there is reported too, for transparency — none was chosen on it).

**The value** on the evaluation half: IPW (the issue's estimator) and DR / AIPW with outcome
models cross-fitted within the evaluation half (:mod:`campaign.policy_value`), each against
mailing both editions to everyone (one of the two at random, as the test did), the edition that
did better on the learning half to everyone, and no e-mail; 95 % paired bootstrap intervals over
the evaluation half's customers. ``swap=True`` also learns on the evaluation half and values on
the learning half, and pools the two directions (every customer valued once, by a policy not
learned from them: two-fold cross-fitting) — the value of the *learning procedure*, with √2
narrower intervals. :func:`repeated_halves` does it all for several random splits.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from campaign.hillstrom_data import HILLSTROM_ARMS, HILLSTROM_OUTCOMES, HillstromData, load_hillstrom
from campaign.policy_value import (
    Comparison,
    bootstrap_weights,
    compare,
    cross_fitted_outcomes,
    deterministic,
    policy_scores,
)
from campaign.uplift import Learner, UpliftData, fit_uplift, qini

__all__ = ["HILLSTROM_CANDIDATES", "HillstromEvaluation", "evaluate_hillstrom", "repeated_halves"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

HILLSTROM_CANDIDATES = ("via conversion", "via visit", "Mens E-Mail to everyone", "Womens E-Mail to everyone")


@dataclass(frozen=True)
class HillstromEvaluation:
    """One direction (learned on ``members_learned``, valued on ``members_evaluated``) or both pooled."""

    members_learned: int
    members_evaluated: int
    outcome: str
    chosen: str  # the candidate chosen on the learning half
    policy_value: float  # per member, IPW, net of the e-mail cost
    policy_value_dr: float
    policy_mix: dict[str, float]  # share of members sent each arm
    values: dict[str, float]  # the rivals' IPW values per member
    values_dr: dict[str, float]
    comparisons: list[Comparison]  # IPW
    comparisons_dr: list[Comparison]
    qini: dict[str, dict[str, float | None]]
    selection: dict[str, float] = field(default_factory=dict)  # DR value per candidate, learning half (CV)
    candidates: dict[str, dict[str, Any]] = field(default_factory=dict)  # each candidate on the evaluation half
    members_needed: dict[str, float | None] = field(default_factory=dict)
    swapped: HillstromEvaluation | None = None  # both directions pooled (``swap=True``)

    def comparison(self, name: str, estimator: str = "ipw") -> Comparison:
        pool = self.comparisons if estimator == "ipw" else self.comparisons_dr
        return next(c for c in pool if c.name == name)

    def to_json(self) -> dict[str, Any]:
        return {
            "members_learned": self.members_learned, "members_evaluated": self.members_evaluated,
            "outcome": self.outcome, "chosen": self.chosen,
            "policy_value_per_member": {"ipw": self.policy_value, "dr": self.policy_value_dr},
            "policy_mix": self.policy_mix,
            "values_per_member": {"ipw": self.values, "dr": self.values_dr},
            "against": {"ipw": [c.to_json() for c in self.comparisons], "dr": [c.to_json() for c in self.comparisons_dr]},
            "qini_evaluation_half": self.qini, "selection_on_learning_half": self.selection,
            "candidates_on_evaluation_half": self.candidates, "members_needed_for_5pct": self.members_needed,
            "both_directions": None if self.swapped is None else self.swapped.to_json(),
        }  # fmt: skip


def _uplift_data(data: HillstromData, rows: IntArray, outcome: FloatArray, via: str) -> UpliftData:
    """``via`` conversion or visit: the event whose uplift is learned; the money is ``outcome``."""
    event = data.conversion if via == "conversion" else data.visit
    y = outcome[rows]
    money = np.column_stack([event[rows].astype(np.float64), y, y])
    return UpliftData(data.features[rows], data.arm[rows], event[rows], money, HILLSTROM_ARMS[1:], data.feature_names)


def _choose(
    data: HillstromData, learn: IntArray, target: IntArray, outcome: FloatArray, candidate: str,
    learner: Learner, email_cost: float, seed: int,
) -> tuple[IntArray, FloatArray | None]:
    """The arm ``candidate``, learned on ``learn``, sends each member of ``target``; and the predicted
    uplift per edition (None for a plain rule)."""  # fmt: skip
    if candidate.endswith(" to everyone"):
        arm = HILLSTROM_ARMS.index(candidate.removesuffix(" to everyone"))
        return np.full(target.size, arm, dtype=np.int64), None
    via = candidate.removeprefix("via ")
    model = fit_uplift(_uplift_data(data, learn, outcome, via), learner=learner, seed=seed)
    predicted = model.predict(data.features[target]).margin
    net = predicted - email_cost
    return np.where(net.max(axis=1) > 0, net.argmax(axis=1) + 1, 0).astype(np.int64), predicted


def _select(
    data: HillstromData, learn: IntArray, outcome: FloatArray, learner: Learner, email_cost: float,
    seed: int, folds: int, candidates: Sequence[str],
) -> dict[str, float]:
    """Each candidate's DR value per member on the learning half, by ``folds``-fold cross-validation."""  # fmt: skip
    fold = np.random.default_rng(seed).permutation(np.arange(learn.size) % folds)
    arm, y = data.arm[learn], outcome[learn]
    share = np.bincount(arm, minlength=3) / arm.size
    expected = cross_fitted_outcomes(data.features[learn], arm, y, 3, seed=seed + 1)
    out: dict[str, float] = {}
    for candidate in candidates:
        send = np.empty(learn.size, dtype=np.int64)
        for f in range(folds):
            send[fold == f], _ = _choose(data, learn[fold != f], learn[fold == f], outcome, candidate, learner,
                                         email_cost, seed + 10 + f)  # fmt: skip
        scores = policy_scores(arm, y, share, deterministic(send, 3), expected) - email_cost * (send > 0)
        out[candidate] = float(scores.mean())
    return out


@dataclass(frozen=True)
class _Direction:
    """Per-member scores on one evaluation half (for pooling the two directions)."""

    rows: IntArray
    chosen: str
    send: IntArray
    ipw: dict[str, FloatArray]  # "policy" and each rival
    dr: dict[str, FloatArray]
    qini: dict[str, dict[str, float | None]]
    selection: dict[str, float]
    candidates: dict[str, dict[str, Any]]


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _direction(
    data: HillstromData, learn: IntArray, evaluate: IntArray, outcome: FloatArray, *, learner: Learner,
    email_cost: float, seed: int, folds: int, candidates: Sequence[str],
) -> _Direction:  # fmt: skip
    selection = _select(data, learn, outcome, learner, email_cost, seed, folds, candidates)
    chosen = max(selection, key=lambda c: selection[c])
    arm, y = data.arm[evaluate], outcome[evaluate]
    share = np.bincount(data.arm, minlength=3) / data.arm.size  # the arms' probabilities (randomized)
    expected = cross_fitted_outcomes(data.features[evaluate], arm, y, 3, seed=seed + 2)
    learned_y = outcome[learn]
    better = 1 + int(np.argmax([learned_y[data.arm[learn] == a].mean() for a in (1, 2)]))
    both = np.zeros((evaluate.size, 3))
    both[:, 1:] = share[1:] / share[1:].sum()  # one of the two at random, as the test
    rivals = {
        "both editions to everyone": both,
        f"{HILLSTROM_ARMS[better]} to everyone": deterministic(np.full(evaluate.size, better), 3),
        "no e-mail": deterministic(np.zeros(evaluate.size, dtype=np.int64), 3),
    }

    def scored(policy: FloatArray, m: FloatArray | None) -> FloatArray:
        return policy_scores(arm, y, share, policy, m) - email_cost * (1.0 - policy[:, 0])

    ipw: dict[str, FloatArray] = {n: scored(p, None) for n, p in rivals.items()}
    dr: dict[str, FloatArray] = {n: scored(p, expected) for n, p in rivals.items()}
    best_rule = f"{HILLSTROM_ARMS[better]} to everyone"
    evaluated: dict[str, dict[str, Any]] = {}
    send = np.zeros(evaluate.size, dtype=np.int64)
    qinis: dict[str, dict[str, float | None]] = {}
    for c, candidate in enumerate(candidates):
        mine, predicted = _choose(data, learn, evaluate, outcome, candidate, learner, email_cost, seed + 100 + c)
        policy = deterministic(mine, 3)
        a, b = scored(policy, None), scored(policy, expected)
        evaluated[candidate] = {
            "ipw": float(a.mean()), "dr": float(b.mean()),
            "mix": {n: float(np.mean(mine == k)) for k, n in enumerate(HILLSTROM_ARMS)},
            "against the better edition per member": {"ipw": float((a - ipw[best_rule]).mean()),
                                                      "dr": float((b - dr[best_rule]).mean())},
            "members needed for +5 % over the better edition (dr)": _members_needed(b, dr[best_rule]),
        }  # fmt: skip
        if candidate == chosen:
            send, ipw["policy"], dr["policy"] = mine, a, b
        if predicted is not None:
            qinis[candidate] = _qinis(predicted, arm, y)
    return _Direction(evaluate, chosen, send, ipw, dr, qinis, selection, evaluated)


def _qinis(predicted: FloatArray, arm: IntArray, y: FloatArray) -> dict[str, float | None]:
    """Per edition: Qini coefficient and AUUC of the predicted uplift on the evaluation half."""
    out: dict[str, float | None] = {}
    for j, name in enumerate(HILLSTROM_ARMS[1:]):
        rows = (arm == 0) | (arm == j + 1)
        q = qini(predicted[rows, j], arm[rows] == j + 1, y[rows])
        out[f"{name} qini"] = _finite(q.qini)
        out[f"{name} auuc"] = _finite(q.auuc)
        out[f"{name} area per member"] = q.area
    return out


def _gain(ours: FloatArray, theirs: FloatArray) -> float:
    base = abs(float(theirs.mean()))
    return float(ours.mean() - theirs.mean()) / base if base else 0.0


def _members_needed(ours: FloatArray, theirs: FloatArray, gain: float = 0.05) -> float | None:
    """Members an evaluation half needs for a true relative ``gain`` over ``theirs`` to show at 95 %
    with 80 % power, given the per-member spread of the paired difference measured here. The spread
    grows with the share of members the two policies treat differently, so the figure means
    something only for a policy that could plausibly gain that much (one that departs from the rival
    for a handful of members has a tiny spread and could never gain 5 %)."""
    sd = float(np.std(ours - theirs))
    effect = gain * abs(float(theirs.mean()))  # a gain ≤ 0 is never shown: None
    if sd == 0 or effect <= 0:
        return None
    return float(((1.959964 + 0.841621) * sd / effect) ** 2)


BETTER_PER_HALF = "the learning half's better edition to everyone"


def _better_rule(direction: _Direction) -> str:
    return next(n for n in direction.ipw if n.endswith(" to everyone") and n != "both editions to everyone")


def _one_better_rule(directions: Sequence[_Direction]) -> list[_Direction]:
    """Two directions whose learning halves found a different edition better (it happens when the
    editions are close): their "better edition to everyone" rules pooled under one name."""
    rules = {_better_rule(d) for d in directions}
    if len(rules) == 1:
        return list(directions)

    def renamed(scores: dict[str, FloatArray], rule: str) -> dict[str, FloatArray]:
        return {BETTER_PER_HALF if n == rule else n: v for n, v in scores.items()}

    return [replace(d, ipw=renamed(d.ipw, _better_rule(d)), dr=renamed(d.dr, _better_rule(d))) for d in directions]


def _summarise(
    directions: Sequence[_Direction], outcome_label: str, resamples: int, seed: int, learned: int,
) -> HillstromEvaluation:  # fmt: skip
    """One evaluation from one direction, or from two pooled (every customer once)."""
    directions = _one_better_rule(directions)
    first = directions[0]
    names = [n for n in first.ipw if n != "policy"]
    better = next(n for n in names if n.endswith(" to everyone") and n != "both editions to everyone")
    ipw = {n: np.concatenate([d.ipw[n] for d in directions]) for n in first.ipw}
    dr = {n: np.concatenate([d.dr[n] for d in directions]) for n in first.dr}
    send = np.concatenate([d.send for d in directions])
    weights = bootstrap_weights(send.size, resamples, seed)
    rivals = [n for n in names if n != "policy"]
    return HillstromEvaluation(
        members_learned=learned,
        members_evaluated=int(send.size),
        outcome=outcome_label,
        chosen=" / ".join(dict.fromkeys(d.chosen for d in directions)),
        policy_value=float(ipw["policy"].mean()),
        policy_value_dr=float(dr["policy"].mean()),
        policy_mix={n: float(np.mean(send == k)) for k, n in enumerate(HILLSTROM_ARMS)},
        values={n: float(ipw[n].mean()) for n in rivals},
        values_dr={n: float(dr[n].mean()) for n in rivals},
        comparisons=[compare(n, ipw["policy"], ipw[n], 0, weights) for n in rivals],
        comparisons_dr=[compare(n, dr["policy"], dr[n], 0, weights) for n in rivals],
        qini=first.qini if len(directions) == 1 else {},
        selection=first.selection if len(directions) == 1 else {},
        candidates=first.candidates if len(directions) == 1 else {},
        members_needed={
            f"{est}: {n}, {at}": _members_needed(scores["policy"], scores[n], gain)
            for est, scores in (("ipw", ipw), ("dr", dr)) for n in (better, "both editions to everyone")
            for at, gain in (("+5 %", 0.05), ("the gain seen", _gain(scores["policy"], scores[n])))
        },
    )


def evaluate_hillstrom(
    path: Path,
    *,
    seed: int = 0,
    learner: Learner = "x",
    outcome: str = "spend",
    margin_rate: float = 1.0,
    email_cost: float = 0.0,
    resamples: int = 2000,
    folds: int = 3,
    candidates: Sequence[str] = HILLSTROM_CANDIDATES,
    swap: bool = False,
    data: HillstromData | None = None,
) -> HillstromEvaluation:
    """A policy learned on one random half of Hillstrom (split by ``seed``), valued on the other (module doc).

    ``outcome``: ``spend`` × ``margin_rate`` (dollars of spend at 1.0), ``conversion`` or ``visit``
    per customer; less ``email_cost`` per e-mail sent. ``candidates``: a subset of
    :data:`HILLSTROM_CANDIDATES`.
    """
    unknown = [c for c in candidates if c not in HILLSTROM_CANDIDATES]
    if unknown or not candidates:
        raise ValueError(f"unknown candidate(s) {unknown}: choose among {', '.join(HILLSTROM_CANDIDATES)}")
    data = data if data is not None else load_hillstrom(path)
    y = data.outcome(outcome, margin_rate)
    n = data.arm.size
    order = np.random.default_rng(seed).permutation(n)
    learn, evaluate = np.sort(order[: n // 2]), np.sort(order[n // 2 :])
    label = (f"spend × {margin_rate:g}" if outcome == "spend" else outcome) + (
        f" − {email_cost:g} per e-mail" if email_cost else ""
    )
    kw: dict[str, Any] = {"learner": learner, "email_cost": email_cost, "folds": folds, "candidates": tuple(candidates)}
    forward = _direction(data, learn, evaluate, y, seed=seed + 1, **kw)
    result = _summarise([forward], label, resamples, seed + 2, int(learn.size))
    if not swap:
        return result
    backward = _direction(data, evaluate, learn, y, seed=seed + 501, **kw)
    pooled = _summarise([forward, backward], label, resamples, seed + 3, int(learn.size))
    return replace(result, swapped=pooled)


def repeated_halves(
    path: Path, seeds: Sequence[int], *, outcome: str = "spend", email_cost: float = 0.0, swap: bool = True,
    resamples: int = 1000, learner: Learner = "x",
) -> list[HillstromEvaluation]:  # fmt: skip
    """:func:`evaluate_hillstrom` for each split seed (the stability of the figure across random halves)."""
    data = load_hillstrom(path)
    kw: dict[str, Any] = {"outcome": outcome, "email_cost": email_cost, "swap": swap, "resamples": resamples}
    return [evaluate_hillstrom(path, seed=s, learner=learner, data=data, **kw) for s in seeds]


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m campaign.hillstrom_eval --seeds 0,1,2 [--outcome spend] [--swap]``: one JSON line per
    random half (``bookclub evaluate-mailing`` prints seed 0)."""
    import argparse
    import json

    parser = argparse.ArgumentParser(description="Hillstrom: a policy learned on one random half, valued on the other")
    parser.add_argument("--path", type=Path, default=Path("../shared/data/hillstrom/hillstrom.csv.gz"))
    parser.add_argument("--seeds", default="0", help="comma-separated split seeds")
    parser.add_argument("--outcome", default="spend", choices=HILLSTROM_OUTCOMES)
    parser.add_argument("--email-cost", type=float, default=0.0)
    parser.add_argument("--swap", action="store_true", help="also learn on the second half, value on the first")
    args = parser.parse_args(argv)
    try:
        seeds = [int(s) for s in args.seeds.split(",")]
    except ValueError:
        parser.error(f"--seeds {args.seeds!r}: comma-separated whole numbers")
    if not args.path.exists():
        parser.error(f"--path {args.path}: no such file")
    for seed, result in zip(seeds, repeated_halves(args.path, seeds, outcome=args.outcome,
                                                   email_cost=args.email_cost, swap=args.swap), strict=True):  # fmt: skip
        print(json.dumps({"seed": seed, **result.to_json()}), flush=True)


if __name__ == "__main__":
    main()
