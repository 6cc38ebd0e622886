"""``bookclub tune``: each recommender's hyper-parameters and the served recommender, chosen by
the product on the club's own data.

**Validation folds** are the ``folds`` consecutive periods of ``holdout_days`` that end
at the cutoff (the same rolling origin as ``bookclub evaluate --folds``); nothing at or
after the cutoff is read, so ``bookclub evaluate --cutoff C`` with C at or after the tuning
cutoff scores the choice on periods the search never saw. Without a cutoff, the newest
data is the last fold.

**The search.** Every recommender has a space (:data:`SPACES`, the matrix weighting and
recency decay included, :data:`MATRIX`). Every recommender is first tried at its current
settings (this round always completes); then, until the budget (minutes) is spent, the next
point — each recommender's space in a seeded random order — goes to the recommender that
has had the least time so far, so that a dear one (BPR, ~5× an ALS point on Online Retail)
does not starve the others of points. A point with a
random start (ALS, BPR, the blend) is fitted once per seed and its per-member values averaged
over the seeds.

**The blend** (ALS + item-kNN, :mod:`recsys.recommenders.blend`) has no grid of its own: once
the others are searched, it is tried at each weight of :data:`BLEND_WEIGHTS` (0.25, 0.5,
0.75: ALS's share) with its components at ALS's and item-kNN's own choices so far
(:func:`blend_points`). The three points share their fits (each fold and seed fits the two
components once), so they cost about one ALS point and one item-kNN point; that much of
the budget is kept for them while the others are searched, and, like the first round, they
always run. Each point is scored per member on every fold (the primary metric, nDCG@k by
default), pooled over folds with members as the resampling units (as the evaluation
does).

**The choice** (:func:`choose`). The best point is the one with the highest mean over
folds, seeds and members. A point is *eligible* when it is not significantly worse than
any other point tried: for every other point, the 95 % interval of the paired bootstrap
difference (same members, same resamples) reaches 0. Among the eligible points whose mean
is within :data:`PRACTICAL_MARGIN` (1 %) of the best mean:

- a *baseline* (popularity or category popularity — one tier: where titles carry no
  categories the two are the same ranking, where they do, category popularity costs
  nothing more) is served if one is there, the one with the higher mean;
- otherwise the *learnt* recommender (item-kNN, ALS, BPR, the blend — one tier) whose point
  has the highest mean;
- within the recommender chosen, its simplest point there (:func:`complexity`: fewer
  neighbours or factors, no BM25 or decay, more regularization, fewer iterations).

Why. Simplicity is worth a margin only where it buys something: a baseline needs no
fitting and cannot overfit the search, and a smaller model of the same kind is cheaper
to fit; between two learnt recommenders, both fitted nightly and both served with reasons
and the same cold start, there is nothing to buy, so the validation mean decides. The
margin is a judgement, kept small (1 % of the best mean; the intervals seen on real data
are ±5 % of the mean and wider) and the significance test comes first, so a simpler
point is never preferred when the folds show it worse than any other point. The earlier rule ("the simplest point whose difference to the best reaches
0") served item-kNN on Online Retail 0.0003 behind ALS on validation, and popularity on
Shakespeare and Company 11 % behind the best point: it spent the whole noise of the folds
on simplicity. The choice is still only as good as the validation folds are a picture of
later periods: on both of those data sets the order of the two best candidates reversed
between validation and test (``docs/evaluation.md``). Each recommender's own
choice (``per_kind``: the settings ``bookclub evaluate`` scores it with) is the same rule
on that recommender's points. The record — every point tried with its mean, interval and
difference to the best, the folds, seeds, budget, rule and margin — is stored with the
choice under ``DATA_DIR/models/tuned.json`` (and a copy per run under ``models/tuning/``).

**Using it.** :func:`configured` gives every face the stored choice: the served
recommender (``bookclub train`` fits it) and each recommender's own settings (``bookclub
evaluate`` scores each with them). Settings given explicitly (``BOOKCLUB_TRAINING__…``)
win over the stored ones.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import Engine

from recsys.errors import BookclubError
from recsys.files import atomic_write_text
from recsys.settings import Settings, TrainingSettings
from recsys.storage.purchase_log import PurchaseArrays, read_purchase_log, titles_sold_before
from training.dataset import Catalogue, read_catalogue, window_start
from training.evaluate import evaluate_fold, fold_cutoffs
from training.evaluation_report import FoldScores
from training.metrics.bootstrap import LEVEL, pooled_means, resample_means

Step = Callable[[str, int, int], None]
TUNED_FILE = "tuned.json"
KINDS = ("popularity", "category_popularity", "item_knn", "als", "bpr", "blend")
RANDOM = frozenset({"als", "bpr", "blend"})  # recommenders with a random start: fitted once per seed
BLEND = "blend"
COMPONENTS = ("als", "item_knn")  # what the blend mixes: its points reuse their chosen settings
BLEND_WEIGHTS = (0.25, 0.5, 0.75)  # the blend's own space: ALS's share
MATRIX: dict[str, list[Any]] = {"weighting": ["bm25", "none"], "half_life_days": [None, 365.0, 180.0]}
SPACES: dict[str, dict[str, list[Any]]] = {
    "popularity": {},
    "category_popularity": {"category_prior_weight": [1.0, 5.0, 20.0]},
    "item_knn": {"knn_neighbours": [20, 50, 100, 200, 400], "knn_similarity": ["cosine", "bm25"]},
    "als": {
        "factors": [16, 32, 64, 128],
        "regularization": [0.05, 0.5, 5.0, 20.0],
        "alpha": [0.25, 1.0, 4.0, 16.0],
        "iterations": [15, 30],
    },
    "bpr": {
        "bpr_factors": [32, 64, 128],
        "bpr_learning_rate": [0.01, 0.05, 0.1],
        "bpr_regularization": [0.001, 0.01, 0.1],
        "bpr_iterations": [50, 100, 200],
    },
    "blend": {"blend_weight": list(BLEND_WEIGHTS)},  # on the components' chosen points: blend_points
}
CAPACITY = {"item_knn": "knn_neighbours", "als": "factors", "bpr": "bpr_factors"}
BASELINES = frozenset({"popularity", "category_popularity"})  # the simpler tier; the rest are learnt
PRACTICAL_MARGIN = 0.01  # a simpler point may trail the best mean by this share of it, no more
RULE = (
    "among points not significantly worse than any other (paired 95 % bootstrap) and within "
    "{margin:g} % of the best mean: a baseline if one is there, else the learnt recommender "
    "with the best mean; its simplest such point"
)


@dataclass(frozen=True)
class Point:
    """One configuration tried: a recommender and the settings it changes."""

    kind: str
    params: tuple[tuple[str, Any], ...]  # sorted (setting, value) pairs

    @property
    def name(self) -> str:
        return self.kind + "(" + ", ".join(f"{k}={v}" for k, v in self.params) + ")"

    def settings(self, base: TrainingSettings) -> TrainingSettings:
        update: dict[str, Any] = {**dict(self.params), "model": self.kind}
        if "half_life_days" in update:
            update["recency_decay"] = update["half_life_days"] is not None
            if update["half_life_days"] is None:
                update.pop("half_life_days")
        return base.model_copy(update=update)


def complexity(point: Point) -> tuple[float, ...]:
    """Smaller is simpler, *within* a recommender: its capacity (neighbours or factors),
    BM25 and recency decay each add one, less regularization and more iterations are more
    complex. Between recommenders only the tier counts (:data:`BASELINES` first): see
    :func:`choose`."""
    params = dict(point.params)
    capacity = float(params.get(CAPACITY.get(point.kind, ""), 0) or 0)
    regularization = -float(params.get("regularization", params.get("bpr_regularization", 0.0)) or 0.0)
    extras = float(params.get("weighting", "none") != "none") + float(params.get("half_life_days") is not None)
    iterations = float(params.get("iterations", params.get("bpr_iterations", 0)) or 0)
    return (float(point.kind not in BASELINES), capacity, extras, regularization, iterations)


def _point(kind: str, values: Mapping[str, Any]) -> Point:
    return Point(kind, tuple(sorted(values.items())))


def search_queues(base: TrainingSettings, kinds: Sequence[str], seed: int) -> dict[str, list[Point]]:
    """Each recommender's points in the order they are tried: its current settings, then the
    rest of its space in a seeded random order (the blend has none: :func:`blend_points`)."""
    rng = np.random.default_rng(seed)
    queues: dict[str, list[Point]] = {}
    for kind in kinds:
        if kind == BLEND:  # no queue of its own: its points follow the components' (blend_points)
            continue
        space = {**MATRIX, **SPACES[kind]}
        current = {name: getattr(base, name) for name in space}
        if not base.recency_decay:
            current["half_life_days"] = None
        start = _point(kind, current)
        grid = [_point(kind, dict(zip(space, values, strict=True))) for values in itertools.product(*space.values())]
        rest = [p for p in grid if p != start]
        queues[kind] = [start] + [rest[int(i)] for i in rng.permutation(len(rest))]
    return queues


def blend_points(als: Point, item_knn: Point, better: Point) -> list[Point]:
    """The blend at each of :data:`BLEND_WEIGHTS`, its components at the ``als`` and
    ``item_knn`` points (each one's own choice so far), on the matrix (weighting, decay) of
    ``better``, the one of the two with the higher mean (one matrix is served: where the two
    chose the same, as on Online Retail, the blend is exactly theirs)."""
    matrix = {name: value for name, value in better.params if name in MATRIX}
    own = {name: value for point in (als, item_knn) for name, value in point.params if name not in MATRIX}
    return [_point(BLEND, {**own, **matrix, "blend_weight": weight}) for weight in BLEND_WEIGHTS]


@dataclass
class Trial:
    point: Point
    member_ids: list[str]  # one per (fold, member) value, fold by fold
    values: npt.NDArray[np.float64]  # the primary metric per (fold, member), averaged over seeds
    seconds: float
    fold_means: list[float | None] = field(default_factory=list)  # the primary metric's mean per fold
    mean: float = 0.0
    interval: tuple[float, float] = (0.0, 0.0)
    difference: dict[str, float] = field(default_factory=dict)  # to the best, paired


@dataclass(frozen=True)
class TuneResult:
    chosen: Trial
    best: Trial
    per_kind: dict[str, Trial]  # the choice within each recommender (same rule)
    trials: list[Trial]
    record: dict[str, Any]


def _units(trials: Sequence[Trial]) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """(members × trials sums over folds, values per member): members are the resampling units."""
    ids = trials[0].member_ids
    if any(t.member_ids != ids for t in trials):
        raise BookclubError("tuning points were scored on different members: cannot compare them")
    unique, unit = np.unique(np.array(ids), return_inverse=True)
    sums = np.zeros((len(unique), len(trials)))
    np.add.at(sums, unit, np.column_stack([t.values for t in trials]))
    return sums, np.bincount(unit, minlength=len(unique)).astype(np.float64)


def choose(
    trials: Sequence[Trial], *, resamples: int, seed: int, margin: float = PRACTICAL_MARGIN
) -> tuple[Trial, Trial, dict[str, Trial]]:
    """(the chosen trial, the best, each recommender's own choice), by the rule of the
    module docstring; fills each trial's mean, interval and paired difference to the best
    overall."""
    sums, counts = _units(trials)
    means = pooled_means(sums, counts)
    boot = resample_means(sums, counts, resamples=resamples, seed=seed)
    upper = (1.0 + boot.level) / 2.0

    def significantly_worse(i: int, among: list[int]) -> bool:
        """Whether trial ``i`` is significantly worse than any of ``among`` (paired)."""
        others = [j for j in among if j != i]
        if not others or not len(boot.means):
            return False
        high = np.quantile(boot.means[:, [i]] - boot.means[:, others], upper, axis=0)
        return bool((high < 0.0).any())

    def pick(among: list[int]) -> tuple[int, int]:
        best = max(among, key=lambda i: (means[i], -i))
        floor = means[best] - margin * abs(means[best])
        near = [i for i in among if means[i] >= floor and (i == best or not significantly_worse(i, among))]
        tier = min(trials[i].point.kind not in BASELINES for i in near)
        near = [i for i in near if (trials[i].point.kind not in BASELINES) == tier]
        leader = max(near, key=lambda i: (means[i], -KINDS.index(trials[i].point.kind), -i))
        kind = trials[leader].point.kind
        return min((i for i in near if trials[i].point.kind == kind),
                   key=lambda i: (complexity(trials[i].point), -means[i], i)), best  # fmt: skip

    chosen, best = pick(list(range(len(trials))))
    for i, trial in enumerate(trials):
        d_low, d_high = boot.difference(i, best)
        trial.mean, trial.interval = float(means[i]), boot.interval(i)
        trial.difference = {"mean": float(means[i] - means[best]), "low": d_low, "high": d_high}
    per_kind = {}
    for kind in dict.fromkeys(t.point.kind for t in trials):
        per_kind[kind] = trials[pick([i for i, t in enumerate(trials) if t.point.kind == kind])[0]]
    return trials[chosen], trials[best], per_kind


def _lines(
    engine: Engine, cutoff: dt.datetime, origins: Sequence[dt.datetime], base: TrainingSettings
) -> tuple[Catalogue, PurchaseArrays, npt.NDArray[np.int64]]:
    earliest = window_start(origins[0], base)
    with engine.connect() as connection:
        catalogue = read_catalogue(connection)
        lines = read_purchase_log(connection, start=earliest, end=cutoff, batch_rows=base.extract_batch_rows).arrays
        before = titles_sold_before(connection, earliest)
    return catalogue, lines, before


def tune(
    engine: Engine,
    settings: Settings,
    cutoff: dt.datetime,
    *,
    folds: int = 3,
    seeds: int = 3,
    budget_minutes: float = 10.0,
    kinds: Sequence[str] = KINDS,
    resamples: int = 2000,
    margin: float = PRACTICAL_MARGIN,
    on_step: Step | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> TuneResult:
    """Search, choose and return the record (:func:`save` stores it)."""
    base = settings.training
    primary = base.primary_metric
    metric, _, k_text = primary.partition("@")
    k = int(k_text or base.k)
    # the folds end at the cutoff: [cutoff - folds·h, cutoff - (folds-1)·h), …, [cutoff - h, cutoff)
    origins = fold_cutoffs(cutoff, folds, base.holdout_days)
    catalogue, lines, before = _lines(engine, cutoff, origins, base)
    started = clock()
    deadline = started + budget_minutes * 60.0
    trials: list[Trial] = []
    cost: dict[str, float] = {}  # the last point's seconds, per recommender (the blend: its three)
    spent = dict.fromkeys(kinds, 0.0)
    queues = search_queues(base, kinds, base.seed)
    blending = BLEND in kinds and all(kind in kinds for kind in COMPONENTS)

    def run(points: list[Point]) -> None:
        begun = clock()
        args = (base, catalogue, lines, before, origins, seeds, metric, k, on_step)
        scored = [_score(points[0], *args)] if len(points) == 1 else _score_many(points, *args)
        cost[points[0].kind] = seconds = clock() - begun
        spent[points[0].kind] += seconds
        for trial in scored:
            trial.seconds = seconds / len(scored)
        trials.extend(scored)
        if on_step:
            on_step("tune", len(trials), 0)

    def reserved() -> float:
        """Time kept for the blend's points: they fit one ALS and one item-kNN point again."""
        return sum(cost.get(kind, 0.0) for kind in COMPONENTS) if blending else 0.0

    for point in sorted((queue.pop(0) for queue in queues.values()), key=lambda p: json.dumps(p.params, default=str)):
        run([point])  # the first round: every recommender at its current settings
    while True:
        now = clock()
        ready = [kind for kind in queues if queues[kind] and now + cost[kind] + reserved() <= deadline]
        if not ready:
            break
        kind = min(ready, key=lambda kind: (spent[kind], kinds.index(kind)))
        run([queues[kind].pop(0)])
    if blending:  # once, on ALS's and item-kNN's own choices (always, like the first round)
        own = [choose([t for t in trials if t.point.kind == kind], resamples=resamples, seed=base.seed,
                      margin=margin)[0] for kind in COMPONENTS]  # fmt: skip
        better = max(own, key=lambda t: t.mean)
        run(blend_points(own[0].point, own[1].point, better.point))
    left = any(queues.values())
    stopped = f"budget of {budget_minutes:g} min spent" if left else "the whole space was tried"
    chosen, best, per_kind = choose(trials, resamples=resamples, seed=base.seed, margin=margin)
    record = {
        "created_at": dt.datetime.now(dt.UTC).replace(tzinfo=None).isoformat(timespec="seconds"),
        "cutoff": cutoff.isoformat(),
        "folds": [{"cutoff": o.isoformat(), "end": (o + dt.timedelta(days=base.holdout_days)).isoformat()}
                  for o in origins],
        "seeds": seeds,
        "budget_minutes": budget_minutes,
        "elapsed_minutes": round((clock() - started) / 60.0, 2),
        "stopped": stopped,
        "metric": primary,
        "rule": RULE.format(margin=100.0 * margin),
        "margin": margin,
        "bootstrap": {"resamples": resamples, "level": LEVEL, "seed": base.seed, "unit": "member"},
        "members": len(set(best.member_ids)),
        "served": chosen.point.kind,
        "chosen": _trial_json(chosen),
        "best": _trial_json(best),
        "per_kind": {kind: _trial_json(t) for kind, t in per_kind.items()},
        "points": [_trial_json(t) for t in trials],
    }
    return TuneResult(chosen, best, per_kind, trials, record)


def _trial_json(trial: Trial) -> dict[str, Any]:
    return {
        "kind": trial.point.kind,
        "settings": dict(trial.point.params),
        "mean": trial.mean,
        "interval": list(trial.interval),
        "difference_to_best": trial.difference,
        "fold_means": trial.fold_means,
        "seconds": round(trial.seconds, 2),
    }


def _score(
    point: Point,
    base: TrainingSettings,
    catalogue: Catalogue,
    lines: PurchaseArrays,
    before: npt.NDArray[np.int64],
    origins: Sequence[dt.datetime],
    seeds: int,
    metric: str,
    k: int,
    on_step: Step | None,
) -> Trial:
    return _score_many([point], base, catalogue, lines, before, origins, seeds, metric, k, on_step)[0]


def _score_many(
    points: Sequence[Point],
    base: TrainingSettings,
    catalogue: Catalogue,
    lines: PurchaseArrays,
    before: npt.NDArray[np.int64],
    origins: Sequence[dt.datetime],
    seeds: int,
    metric: str,
    k: int,
    on_step: Step | None,
) -> list[Trial]:
    """Points of one recommender scored on every fold (and seed) together: where their fits
    are the same (the blend's components at every weight) they are fitted once
    (``training.evaluate.evaluate_split``)."""
    configs = {point.name: point.settings(base) for point in points}
    runs = range(seeds if points[0].kind in RANDOM else 1)
    ids: list[str] = []
    values: dict[str, list[npt.NDArray[np.float64]]] = {point.name: [] for point in points}
    for origin in origins:
        per_seed: list[FoldScores] = [
            evaluate_fold(
                catalogue, lines, before, origin, configs, served=points[0].name, k=k, fit_seed=base.seed + s,
                cold=False,
            )
            for s in runs
        ]  # fmt: skip
        ids.extend(per_seed[0].member_ids)
        for name, scored in values.items():
            scored.append(np.mean([f.scores[name].metrics[metric] for f in per_seed], axis=0))
    trials = []
    for point in points:
        scored = values[point.name]
        fold_means: list[float | None] = [float(v.mean()) if len(v) else None for v in scored]
        trials.append(Trial(point, list(ids), np.concatenate(scored) if scored else np.zeros(0), 0.0, fold_means))
    return trials


# ---- the stored choice ------------------------------------------------------------------
def save(models_dir: Path, record: Mapping[str, Any]) -> Path:
    """Store ``record`` as the club's configuration (and keep a copy of this run's search)."""
    text = json.dumps(record, indent=2, default=str)
    history = models_dir / "tuning"
    history.mkdir(parents=True, exist_ok=True)
    stamp = str(record["created_at"]).replace(":", "").replace("-", "")
    atomic_write_text(history / f"{stamp}.json", text)
    return atomic_write_text(models_dir / TUNED_FILE, text)


def load(models_dir: Path) -> dict[str, Any] | None:
    path = models_dir / TUNED_FILE
    if not path.exists():
        return None
    record: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return record


def _apply(base: TrainingSettings, values: Mapping[str, Any], explicit: set[str]) -> TrainingSettings:
    update = {name: value for name, value in values.items() if name not in explicit}
    if "half_life_days" in update:
        if "recency_decay" not in explicit:
            update["recency_decay"] = update["half_life_days"] is not None
        if update["half_life_days"] is None:
            update.pop("half_life_days")
    return base.model_copy(update=update)


def configured(settings: Settings) -> tuple[TrainingSettings, str, dict[str, TrainingSettings]]:
    """(the training settings to serve with, the served recommender, each recommender's
    settings for evaluation): the stored tuning choice where there is one, under any
    setting given explicitly in the environment."""
    base = settings.training
    record = load(settings.models_dir)
    explicit = set(base.model_fields_set)
    kinds = list(dict.fromkeys([*base.recommenders]))
    if record is None:
        return base, base.model, {kind: base.model_copy(update={"model": kind}) for kind in kinds}
    served = base.model if "model" in explicit else str(record["served"])
    chosen = _apply(base, record["chosen"]["settings"], explicit).model_copy(update={"model": served})
    if served != record["served"]:  # the served recommender was set by hand: its own tuned settings
        own = record.get("per_kind", {}).get(served)
        chosen = _apply(base, own["settings"], explicit) if own else base
        chosen = chosen.model_copy(update={"model": served})
    per_kind = {}
    for kind in kinds:
        own = record.get("per_kind", {}).get(kind)
        values = own["settings"] if own else {}
        per_kind[kind] = _apply(base, values, explicit).model_copy(update={"model": kind})
    per_kind[served] = chosen
    return chosen, served, per_kind
