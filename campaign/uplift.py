"""Uplift per member and edition: what sending each kind of edition adds, learned from randomized arms.

Pure numpy + scikit-learn; the caller supplies the features. The data are earlier
campaigns' contacts: each member was, at random, held out (arm 0) or sent one of the
editions (arms 1…K), with what they did in the response window — whether they responded
(ordered at all), and their orders, revenue and margin.

Two learners, both per treated arm against the control (Künzel et al. 2019):

- **two-model** (T-learner): ``μ_k(x) = P(respond | x, arm k)`` and ``μ_0(x)`` as calibrated
  classifiers (histogram gradient boosting inside ``CalibratedClassifierCV``, isotonic);
  ``τ_k(x) = μ_k(x) − μ_0(x)``.
- **X-learner**: the same first stage, then imputed effects — ``D = y − μ_0(x)`` on arm k,
  ``D = μ_k(x) − y`` on the control — each regressed on x (``τ_k¹``, ``τ_k⁰``) and blended
  with the arm's propensity ``g``: ``τ_k(x) = g·τ_k⁰(x) + (1 − g)·τ_k¹(x)``. The arms were
  random, so ``g`` is the arm's share of the arm-k-or-control members (known, not fitted).

Money: a mailing changes **whether** a member orders much more than **what** a responder
buys (true in the simulated club; on Hillstrom the spend of converters barely differs by
arm), and the money outcomes are heavy-tailed and rare. So the incremental orders, revenue
and margin per member are ``τ_k(x) · v(x)`` with ``v(x)`` the expected orders, revenue and
margin of a *responder* with features x (gradient-boosted regressors on the responders of
every arm). :func:`qini` measures a ranking on held-back data (Qini curve, Qini coefficient
and AUUC, Radcliffe 2007; the normalisations are in its docstring) against random
targeting and, when the truth is known, against the truth.

**Honest calibration by cross-fitted stacking** (``stack_folds``, what the mailing decision
uses): an edition with a small effect (a postcard, an e-mail) is learned from a difference of
two noisy response rates, and its learner ranks partly noise with too wide a spread — on the
simulated club the postcard's learned uplift tracked the truth with a correlation of 0.45 in
one training quarter, yet varied as if it were sure, and the budget followed that noise. So
the randomized contacts are split into ``stack_folds`` folds (stratified by arm); the learner
fitted without a fold predicts every arm's response uplift ``T_j(x)`` and the response rates
``μ_0, μ_k`` on it; each arm's doubly robust pseudo-outcome on its own and the control's
members (the arms were random with known shares ``g``)::

    Z_k = μ_k(x) − μ_0(x) + [arm = k]·(y − μ_k(x))/g − [arm = 0]·(y − μ_0(x))/(1 − g)

(unbiased for ``τ_k(x)`` whatever the μ's) is regressed on every arm's out-of-fold uplift,
``Z_k ≈ a_k + Σ_j w_kj·T_j(x)`` with ``w ≥ 0`` (stacked regression, Breiman 1996; Laan's
super learner). The model then predicts ``a_k + Σ_j w_kj·T̄_j(x)`` with ``T̄`` the **mean of the
fold models' uplift** (cross-fitted, "bagged" prediction; a responder's value and the response
rates are the fold models' means too): a ranking the held-out data does not bear out is shrunk
towards the arm's mean (``w_kk`` < 1), and an arm whose own ranking is noise borrows another
arm's ranking where the held-out data say it predicts this arm's effect (members a catalog
moves are moved by a postcard too). The truth is never used: the weights come from the
training contacts only.

Why the fold models and not a model refitted on all the contacts: the weights are estimated
for the fold models' predictions, and a refitted model's are not alike — on the simulated club
(seed 0) the refit's catalog uplift spread less (sd 0.035 against a fold model's 0.044) and
needed more stretching to match the truth (truth-on-prediction slope 1.55 against 1.24), so
the weights under-scaled it. The fold models' mean sits between (sd 0.040, slope 1.38), and
its decision captured more of the oracle's profit in 16 of 20 checks (seeds 0–9, with and
without a budget; docs/mailing.md). Costs: ``stack_folds`` fits (one fewer than with a refit), and scoring
``stack_folds`` times the work of one model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from scipy.optimize import lsq_linear
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from threadpoolctl import threadpool_limits

__all__ = [
    "LEARNERS",
    "MONEY",
    "QiniResult",
    "UpliftData",
    "UpliftModel",
    "UpliftPrediction",
    "fit_uplift",
    "qini",
]

LEARNERS = ("two-model", "x")
MONEY = ("orders", "revenue", "margin")
Learner = Literal["two-model", "x"]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class UpliftData:
    """Randomized contacts: features, the arm each member was in (0 = held out), what they did.

    ``money`` holds orders, revenue and margin per member (columns in :data:`MONEY` order).
    """

    features: FloatArray  # (n, p)
    arm: npt.NDArray[np.int64]  # (n,) 0 = control, 1..K = the edition sent
    responded: npt.NDArray[np.bool_]  # (n,)
    money: FloatArray  # (n, 3)
    arm_names: tuple[str, ...]  # K names, arm k = arm_names[k - 1]
    feature_names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        n = self.features.shape[0]
        if self.features.ndim != 2 or self.arm.shape != (n,) or self.responded.shape != (n,):
            raise ValueError("features (n, p), arm (n,) and responded (n,) must agree")
        if self.money.shape != (n, len(MONEY)):
            raise ValueError(f"money must be (n, {len(MONEY)}): orders, revenue, margin")
        if n and (self.arm.min() < 0 or self.arm.max() > len(self.arm_names)):
            raise ValueError(f"arms must be 0 … {len(self.arm_names)}")
        if not np.all(np.isfinite(self.features)) or not np.all(np.isfinite(self.money)):
            raise ValueError("features and outcomes must be finite")

    def __len__(self) -> int:
        return int(self.arm.shape[0])

    def subset(self, rows: npt.NDArray[np.int64] | npt.NDArray[np.bool_]) -> UpliftData:
        return UpliftData(
            self.features[rows], self.arm[rows], self.responded[rows], self.money[rows],
            self.arm_names, self.feature_names,
        )  # fmt: skip

    def split(self, held_back: float, seed: int) -> tuple[UpliftData, UpliftData]:
        """A random (fit, held back) split, stratified by arm."""
        rng = np.random.default_rng(seed)
        back = np.zeros(len(self), dtype=np.bool_)
        for a in np.unique(self.arm):
            rows = np.flatnonzero(self.arm == a)
            back[rng.permutation(rows)[: round(held_back * rows.size)]] = True
        return self.subset(~back), self.subset(back)


@dataclass(frozen=True, eq=False)
class UpliftPrediction:
    """Per member × treated arm: incremental response probability and orders, revenue, margin."""

    response: FloatArray  # (n, K)
    orders: FloatArray
    revenue: FloatArray
    margin: FloatArray
    baseline_response: FloatArray | None  # (n,) μ_0: P(respond) when not mailed (``rates=True``)
    mailed_response: FloatArray | None  # (n, K) μ_k


# Shallow, slow-learning trees: an uplift is a small difference of two noisy rates, and deep
# trees fit the noise (on the simulated club, depth 2 captured 85 % of the oracle's profit
# where 15-leaf trees captured 74 %, same data).
def _classifier(seed: int, calibrate: bool, rows: int) -> Any:
    base = HistGradientBoostingClassifier(
        max_iter=200, learning_rate=0.03, max_depth=2, min_samples_leaf=min(300, max(20, rows // 20)),
        l2_regularization=1.0, random_state=seed,
    )  # fmt: skip
    if not calibrate or rows < 300:
        return base
    return CalibratedClassifierCV(base, method="isotonic", cv=3)


def _regressor(seed: int, rows: int) -> HistGradientBoostingRegressor:
    return HistGradientBoostingRegressor(
        max_iter=150, learning_rate=0.03, max_depth=2, min_samples_leaf=min(500, max(20, rows // 20)),
        l2_regularization=1.0, random_state=seed,
    )  # fmt: skip


class _Constant:
    """A model for a sample too small or one-sided to fit: the sample's mean."""

    def __init__(self, value: float) -> None:
        self.value = value

    def predict(self, x: FloatArray) -> FloatArray:
        return np.full(x.shape[0], self.value)

    def predict_proba(self, x: FloatArray) -> FloatArray:
        return np.column_stack([np.full(x.shape[0], 1.0 - self.value), np.full(x.shape[0], self.value)])


def _fit_classifier(x: FloatArray, y: npt.NDArray[np.bool_], seed: int, calibrate: bool) -> Any:
    if y.size == 0:
        raise ValueError("an arm has no members: nothing to learn it from")
    if y.all() or not y.any() or int(y.sum()) < 5:
        return _Constant(float(y.mean()))
    return _classifier(seed, calibrate, y.size).fit(x, y)


def _fit_regressor(x: FloatArray, y: FloatArray, seed: int) -> Any:
    if y.size < 40:
        return _Constant(float(y.mean()) if y.size else 0.0)
    return _regressor(seed, y.size).fit(x, y)


def _proba(model: Any, x: FloatArray) -> FloatArray:
    return np.asarray(model.predict_proba(x)[:, 1], dtype=np.float64)


@dataclass(eq=False)
class UpliftModel:
    """A fitted learner: :meth:`predict` gives every member's uplift for every treated arm."""

    learner: Learner
    arm_names: tuple[str, ...]
    feature_names: tuple[str, ...]
    control: Any
    treated: list[Any]
    stage_two: list[tuple[Any, Any]]  # X-learner: (τ¹ on the arm, τ⁰ on the control) per arm
    propensity: list[float]  # share of arm k among arm-k-or-control members
    per_responder: list[Any]  # orders, revenue, margin of a responder
    info: dict[str, Any] = field(default_factory=dict)
    # (K, 1 + K): per arm k the intercept and the weights of every arm's raw uplift (module doc); None: raw
    stacking: FloatArray | None = None
    # the stacking's cross-fitted fold models: when there are, the raw uplift, value and rates are
    # their mean (and the fields above from control to per_responder are unused)
    folds: list[UpliftModel] = field(default_factory=list)

    def predict(
        self, features: FloatArray, *, batch: int = 200_000, threads: int | None = 1, rates: bool = False
    ) -> UpliftPrediction:
        """Every member's uplift per arm, ``batch`` members at a time (``threads``: see :func:`fit_uplift`).

        The X-learner's uplift needs only its second stage; ``rates=True`` also scores the first
        stage for the response rates with and without a piece (``baseline_response`` and
        ``mailed_response``, else None): twice the work.
        """
        with threadpool_limits(limits=threads):
            return self._predict(features, batch, rates or self.learner != "x")

    def _predict(self, features: FloatArray, batch: int, rates: bool) -> UpliftPrediction:
        n, k = features.shape[0], len(self.arm_names)
        response = np.empty((n, k))
        mailed = np.empty((n, k)) if rates else None
        base = np.empty(n) if rates else None
        value = np.empty((n, len(MONEY)))
        for start in range(0, n, batch):
            rows = slice(start, min(n, start + batch))
            got = self._raw(features[rows], rates)
            response[rows], value[rows] = got[0], got[1]
            if base is not None and mailed is not None:
                base[rows], mailed[rows] = got[2], got[3]
        if self.stacking is not None:
            response = np.clip(self.stacking[:, 0] + response @ self.stacking[:, 1:].T, -1.0, 1.0)
        return UpliftPrediction(
            response=response,
            orders=response * value[:, [0]],
            revenue=response * value[:, [1]],
            margin=response * value[:, [2]],
            baseline_response=base,
            mailed_response=mailed,
        )

    def _raw(self, x: FloatArray, rates: bool) -> tuple[FloatArray, FloatArray, FloatArray | None, FloatArray | None]:
        """One batch before the stacking: the uplift per arm (clipped to ±1), a responder's orders,
        revenue and margin, and with ``rates`` μ_0 and μ_k — the mean of the fold models' when there are."""
        if self.folds:
            parts = [f._raw(x, rates) for f in self.folds]

            def mean(i: int) -> FloatArray | None:
                got = [a for p in parts if (a := p[i]) is not None]
                return np.mean(np.stack(got), axis=0) if got else None

            response, value = mean(0), mean(1)
            assert response is not None and value is not None
            return response, value, mean(2), mean(3)
        n, k = x.shape[0], len(self.arm_names)
        response = np.empty((n, k))
        mailed = np.empty((n, k)) if rates else None
        value = np.empty((n, len(MONEY)))
        mu0 = _proba(self.control, x) if rates else None
        for j in range(k):
            mu = _proba(self.treated[j], x) if rates else None
            if mailed is not None and mu is not None:
                mailed[:, j] = mu
            if self.learner == "x":
                tau1, tau0 = self.stage_two[j]
                g = self.propensity[j]
                response[:, j] = g * tau0.predict(x) + (1.0 - g) * tau1.predict(x)
            else:
                assert mu is not None and mu0 is not None
                response[:, j] = mu - mu0
        for m, model in enumerate(self.per_responder):
            value[:, m] = np.maximum(model.predict(x), 0.0)
        return np.clip(response, -1.0, 1.0), value, mu0, mailed


STACK_FOLDS = 3
"""Folds of the cross-fitted stacking the mailing decision uses (module doc)."""
MIN_STACK_ARM = 200
"""Fewest members of the control and of every arm for stacking; below it the raw learner is used."""


def fit_uplift(
    data: UpliftData,
    *,
    learner: Learner = "x",
    seed: int = 0,
    calibrate: bool = True,
    threads: int | None = 1,
    stack_folds: int = 0,
) -> UpliftModel:
    """Fit ``learner`` on randomized contacts (module doc). Needs members in the control and every arm.

    ``threads`` caps the OpenMP threads of the gradient boosting (None: all cores). One is
    the default: on a shared machine OpenMP's spinning threads slowed a fit 75-fold (181 s
    against 2.4 s for 17,000 members on two busy cores); the many small fits here gain
    little from a second thread even on an idle machine.

    ``stack_folds`` ≥ 2: calibrate the uplift honestly by cross-fitted stacking (module doc;
    ``stack_folds`` fits, each on all but one fold): the model predicts with the mean of the fold
    models, the predictor the weights were estimated for, and nothing is refitted on all the
    contacts. Skipped, with the reason in ``info["stacking"]``, when the control or an arm has
    fewer than :data:`MIN_STACK_ARM` members: then one fit on all the contacts, unstacked.
    """
    if learner not in LEARNERS:
        raise ValueError(f"unknown learner {learner!r}: one of {', '.join(LEARNERS)}")
    if stack_folds == 1 or stack_folds < 0:
        raise ValueError("stack_folds: 0 (no stacking) or at least 2")
    with threadpool_limits(limits=threads):
        if stack_folds and np.bincount(data.arm, minlength=len(data.arm_names) + 1).min() >= MIN_STACK_ARM:
            weights, folds, summary = _stacking(data, learner, seed, calibrate, stack_folds)
            return UpliftModel(
                learner=learner, arm_names=data.arm_names, feature_names=data.feature_names, control=None,
                treated=[], stage_two=[], propensity=[], per_responder=[],
                info={**_counts(data), "stacking": summary}, stacking=weights, folds=folds,
            )  # fmt: skip
        model = _fit(data, learner, seed, calibrate)
        if stack_folds:
            model.info["stacking"] = {"skipped": f"an arm or the control has fewer than {MIN_STACK_ARM} members"}
        return model


def _stacking(
    data: UpliftData, learner: Learner, seed: int, calibrate: bool, folds: int
) -> tuple[FloatArray, list[UpliftModel], dict[str, Any]]:
    """The stacking weights (module doc) from out-of-fold predictions, the fold models, and a summary
    for ``info``."""
    n, k = len(data), len(data.arm_names)
    rng = np.random.default_rng(seed + 7919)
    fold = np.empty(n, dtype=np.int64)
    for a in range(k + 1):
        rows = np.flatnonzero(data.arm == a)
        fold[rng.permutation(rows)] = np.arange(rows.size) % folds
    raw, mu0, mu = np.empty((n, k)), np.empty(n), np.empty((n, k))
    parts: list[UpliftModel] = []
    for f in range(folds):
        held = fold == f
        part = _fit(data.subset(~held), learner, seed + 1000 * (f + 1), calibrate)
        parts.append(part)
        pred = part._predict(data.features[held], 200_000, True)  # within the caller's thread limit
        assert pred.baseline_response is not None and pred.mailed_response is not None
        raw[held], mu0[held], mu[held] = pred.response, pred.baseline_response, pred.mailed_response
    y = data.responded.astype(np.float64)
    weights = np.zeros((k, 1 + k))
    summary: dict[str, Any] = {"folds": folds, "predicts": f"the mean of the {folds} fold models"}
    for j in range(k):
        mine = (data.arm == 0) | (data.arm == j + 1)
        treated = data.arm[mine] == j + 1
        g = float(treated.mean())
        z = (mu[mine, j] - mu0[mine]) + np.where(
            treated, (y[mine] - mu[mine, j]) / g, -(y[mine] - mu0[mine]) / (1.0 - g)
        )
        design = np.column_stack([np.ones(int(mine.sum())), raw[mine]])
        lower = np.concatenate([[-np.inf], np.zeros(k)])
        weights[j] = lsq_linear(design, z, bounds=(lower, np.full(1 + k, np.inf))).x
        summary[data.arm_names[j]] = {
            "intercept": float(weights[j, 0]),
            "weights": {name: float(w) for name, w in zip(data.arm_names, weights[j, 1:], strict=True)},
        }
    return weights, parts, summary


def _fit(data: UpliftData, learner: Learner, seed: int, calibrate: bool) -> UpliftModel:
    x, arm, y = data.features, data.arm, data.responded
    control = arm == 0
    control_model = _fit_classifier(x[control], y[control], seed, calibrate)
    treated: list[Any] = []
    stage_two: list[tuple[Any, Any]] = []
    propensity: list[float] = []
    for k in range(1, len(data.arm_names) + 1):
        mine = arm == k
        model = _fit_classifier(x[mine], y[mine], seed + k, calibrate)
        treated.append(model)
        g = float(mine.sum() / max(1, mine.sum() + control.sum()))
        propensity.append(g)
        if learner == "x":
            d1 = y[mine].astype(np.float64) - _proba(control_model, x[mine])
            d0 = _proba(model, x[control]) - y[control].astype(np.float64)
            stage_two.append((_fit_regressor(x[mine], d1, seed + 100 + k), _fit_regressor(x[control], d0, seed + 200 + k)))
    responders = y
    per_responder = [
        _fit_regressor(x[responders], data.money[responders, m], seed + 300 + m) for m in range(len(MONEY))
    ]
    return UpliftModel(
        learner=learner,
        arm_names=data.arm_names,
        feature_names=data.feature_names,
        control=control_model,
        treated=treated,
        stage_two=stage_two,
        propensity=propensity,
        per_responder=per_responder,
        info=_counts(data),
    )


def _counts(data: UpliftData) -> dict[str, Any]:
    arms = {name: int((data.arm == k + 1).sum()) for k, name in enumerate(data.arm_names)}
    return {"members": len(data), "control": int((data.arm == 0).sum()), "arms": arms,
            "responders": int(data.responded.sum())}  # fmt: skip


@dataclass(frozen=True)
class QiniResult:
    """A ranking's Qini curve on held-back data, at ``fractions`` of the members targeted.

    ``gain[i]`` is the incremental outcome of treating the top ``fractions[i]`` members
    (treated outcome minus control outcome scaled to the treated count, Radcliffe's
    Qini), ``uplift[i]`` the same per targeted member. ``qini`` is the area between the
    curve and the random-targeting line, divided by the whole population's incremental
    outcome (so 0 = random, and sorting perfectly by the truth gives the largest value);
    ``auuc`` the area under the gain curve divided by the same, with random = 0.5. Both are
    NaN when the population's incremental outcome is within two standard errors of zero
    (there is nothing to normalise by); ``area`` is the unnormalised area between the
    curve and the random line, per member.
    """

    fractions: tuple[float, ...]
    gain: tuple[float, ...]
    uplift: tuple[float, ...]
    qini: float
    auuc: float
    total_gain: float
    area: float = math.nan

    def to_json(self) -> dict[str, Any]:
        return {
            "qini": None if math.isnan(self.qini) else self.qini,
            "auuc": None if math.isnan(self.auuc) else self.auuc,
            "area": self.area,
            "total_gain": self.total_gain,
            "curve": [
                {"fraction": f, "gain": g, "uplift_per_member": u}
                for f, g, u in zip(self.fractions, self.gain, self.uplift, strict=True)
            ],
        }


def qini(
    score: FloatArray,
    treated: npt.NDArray[np.bool_],
    outcome: FloatArray,
    *,
    points: int = 10,
) -> QiniResult:
    """The Qini curve of ``score`` (higher = target first) on randomized members (module doc)."""
    score = np.asarray(score, dtype=np.float64)
    treated = np.asarray(treated, dtype=np.bool_)
    outcome = np.asarray(outcome, dtype=np.float64)
    n = score.size
    if n == 0 or treated.all() or not treated.any():
        raise ValueError("Qini needs treated and control members")
    order = np.argsort(-score, kind="stable")
    t = treated[order]
    y = outcome[order]
    n_t = np.cumsum(t)
    n_c = np.cumsum(~t)
    y_t = np.cumsum(np.where(t, y, 0.0))
    y_c = np.cumsum(np.where(~t, y, 0.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        gain = y_t - np.where(n_c > 0, y_c * n_t / n_c, 0.0)
    # rescale to the population: the incremental outcome if that share of everyone were treated
    gain = gain * n / max(1, int(n_t[-1]))
    total = float(gain[-1])
    xs = np.arange(1, n + 1) / n
    area_model = float(np.trapezoid(np.concatenate([[0.0], gain]), np.concatenate([[0.0], xs])))
    area_random = total / 2.0
    # normalised by the whole population's incremental outcome — only when the data can tell it
    # from zero (beyond two standard errors); otherwise the ratio is noise over noise: NaN
    y_treated, y_control = outcome[treated], outcome[~treated]
    se = n * math.sqrt(float(y_treated.var()) / max(1, y_treated.size) + float(y_control.var()) / max(1, y_control.size))
    scale = abs(total) if total != 0 and abs(total) > 2.0 * se else math.nan
    fractions = tuple(float(f) for f in np.linspace(0.1, 1.0, points))
    at = [max(0, min(n - 1, round(f * n) - 1)) for f in fractions]
    return QiniResult(
        fractions=fractions,
        gain=tuple(float(gain[i]) for i in at),
        uplift=tuple(float(gain[i] / (i + 1)) for i in at),
        qini=(area_model - area_random) / scale,
        auuc=area_model / scale,
        total_gain=total,
        area=(area_model - area_random) / n,
    )
