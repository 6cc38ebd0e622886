"""One training run: extract → matrix → fit → (evaluate) → save → promote.

The configuration is ``bookclub tune``'s stored choice where there is one
(:func:`training.tuning.configured`): which recommender is served and its settings.

With ``evaluate``, the served recommender, the popularity baseline and — when the
active model was trained with another configuration — that configuration are fitted
on the one time split (:mod:`training.split`) at ``cutoff - holdout_days`` and scored
on the last ``holdout_days``, per member. Promotion reads the paired bootstrap
difference, new minus active configuration, on the primary metric: the new model is
refused only when the interval lies wholly below 0 (the registry records the
interval). The model saved is then brought up to the cutoff on the whole window (see
:func:`run_training`).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import Engine

from recsys.errors import BookclubError, TrainingError
from recsys.recommenders import (
    ALSRecommender,
    BlendRecommender,
    FactorRecommender,
    FitContext,
    Recommender,
    build_recommender,
)
from recsys.settings import Settings, TrainingSettings
from recsys.storage.purchase_log import PurchaseArrays, newest_purchase
from training.artifact import read_meta, write_parts
from training.dataset import Catalogue, TrainingSet, build_training_set, extract_for_training, read_catalogue
from training.evaluate import evaluate_fold
from training.evaluation_report import EvaluationReport, paired_difference
from training.extract_cache import CacheReport, ExtractCache
from training.registry import ModelInfo, ModelRegistry, Promote
from training.served import model_parts
from training.tuning import configured

Step = Callable[[str, int, int], None]
log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    info: ModelInfo
    training: TrainingSet
    evaluation: EvaluationReport | None
    timings: dict[str, float] = field(default_factory=dict)
    extract_cache: CacheReport | None = None
    warnings: list[str] = field(default_factory=list)  # what the run left out, and why


def utc_now() -> dt.datetime:
    """Naive UTC, like every stored timestamp."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def default_cutoff(engine: Engine, now: dt.datetime | None = None, warnings: list[str] | None = None) -> dt.datetime:
    """Just after the newest purchase in the database, and never after ``now``: order lines
    dated in the future (stored before dates were bounded) are left out, with a warning."""
    now = now or utc_now()
    with engine.connect() as connection:
        newest = newest_purchase(connection)
    if newest is None:
        raise TrainingError("the database has no purchases: import some first")
    if newest >= now:
        _warn(
            warnings,
            f"the newest order line is dated {newest:%Y-%m-%d %H:%M}, in the future: lines after now "
            f"({now:%Y-%m-%d %H:%M} UTC) are left out of training; correct or delete them",
        )
        return now
    return newest + dt.timedelta(seconds=1)


def training_cutoff(
    engine: Engine, cutoff: dt.datetime | None, now: dt.datetime | None = None, warnings: list[str] | None = None
) -> dt.datetime:
    """The cutoff a run trains up to: ``cutoff`` if given (at most now), else :func:`default_cutoff`."""
    now = now or utc_now()
    if cutoff is None:
        return default_cutoff(engine, now, warnings)
    if cutoff.tzinfo is not None:
        cutoff = cutoff.astimezone(dt.UTC).replace(tzinfo=None)
    if cutoff > now:
        _warn(warnings, f"cutoff {cutoff:%Y-%m-%d %H:%M} is in the future: training up to now ({now:%Y-%m-%d %H:%M} UTC)")
        return now
    return cutoff


def check_enough_data(train: TrainingSet, settings: TrainingSettings) -> None:
    """Refuse a model built on too little data (``min_order_lines``, ``min_members``): it would
    be published, and served if it were the first, while it knows next to nothing."""
    snap = train.snapshot
    if snap.purchase_rows >= settings.min_order_lines and snap.members_with_purchases >= settings.min_members:
        return
    raise TrainingError(
        f"too little data to train on: {snap.purchase_rows:,} order line(s) from "
        f"{snap.members_with_purchases:,} member(s) between {snap.window_start[:10]} and {snap.cutoff[:10]}; "
        f"a model needs at least {settings.min_order_lines:,} lines (training.min_order_lines) and "
        f"{settings.min_members:,} members (training.min_members): no model was made; "
        "import more purchases or choose another --cutoff"
    )


def _warn(warnings: list[str] | None, message: str) -> None:
    log.warning(message)
    if warnings is not None:
        warnings.append(message)


def run_training(
    engine: Engine,
    settings: Settings,
    *,
    cutoff: dt.datetime | None = None,
    with_evaluation: bool = False,
    promote: Promote = "auto",
    on_step: Step | None = None,
) -> TrainResult:
    """Retrain up to ``cutoff`` (default: just after the newest purchase) and publish.

    Purchases are read once. With ``with_evaluation`` the window is split at
    ``cutoff - holdout_days``: the model (and the popularity baseline) is fitted
    on the earlier part and scored on the later; the scored model is then brought
    up to the cutoff with ``refresh_iterations`` warm-started ALS sweeps on the
    whole window, instead of a second fit from scratch.
    """
    ts, _served, _ = configured(settings)  # `bookclub tune`'s stored choice, if any
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = round(now - clock, 3)
        clock = now

    warnings: list[str] = []
    cutoff = training_cutoff(engine, cutoff, warnings=warnings)
    eval_cutoff = cutoff - dt.timedelta(days=ts.holdout_days)
    progress = _Counter("extract purchases", on_step)
    cache = ExtractCache(settings.models_dir / "extract_cache", verify_rows=ts.extract_cache_verify_rows)
    with engine.connect() as connection:
        catalogue = read_catalogue(connection)
        extract = extract_for_training(
            connection,
            cutoff,
            ts,
            cache=cache if ts.extract_cache else None,
            eval_cutoff=eval_cutoff if with_evaluation else None,
            on_batch=progress.add,
            on_total=progress.set_total,
        )
    start, purchases, sold_before = extract.window_start, extract.purchases, extract.sold_before
    lap("extract")
    train = build_training_set(catalogue, purchases, window_start=start, cutoff=cutoff, settings=ts)
    check_enough_data(train, ts)
    lap("matrix")
    context = FitContext(title_categories=catalogue.title_categories, seed=ts.seed, threads=ts.threads)
    report: EvaluationReport | None = None
    recommender: Recommender | None = None
    gate: dict[str, Any] | None = None
    registry = ModelRegistry(settings.models_dir)
    if with_evaluation and sold_before is not None:
        report, fitted, small, gate = _evaluate_split(
            train, purchases, start, eval_cutoff, cutoff, sold_before, ts, _active(registry), on_step
        )
        recommender = fitted[ts.model]
        lap("evaluate")
    if on_step:
        on_step(f"fit {ts.model}", 0, 1)
    if isinstance(recommender, ALSRecommender):
        carry_over(recommender, small, catalogue)
        recommender.refine(train.member_titles, context, ts.refresh_iterations)
    elif isinstance(recommender, BlendRecommender):  # its ALS brought up to date, its item-kNN refitted
        carry_over(recommender.als, small, catalogue)
        recommender.als.refine(train.member_titles, context, ts.refresh_iterations)
        recommender.item_knn.fit(train.member_titles, context)
    else:
        recommender = build_recommender(ts.model, ts)
        recommender.fit(train.member_titles, context)
    lap("fit")
    parts = model_parts(train, recommender, ts)
    metrics = dict(report.results.get(ts.model, {})) if report else {}
    if report:
        for name, value in report.new_titles.get(ts.model, {}).items():
            if value is not None:  # None: no member bought a new title in the test period
                metrics[f"new_titles_{name}"] = value
    version = registry.new_version()
    meta: dict[str, Any] = {
        "version": version,
        "created_at": dt.datetime.now(dt.UTC).replace(tzinfo=None).isoformat(timespec="seconds"),
        "trained_until": train.trained_until.isoformat(),
        "settings": ts.model_dump(),
        "snapshot": asdict(train.snapshot),
        "metrics": metrics,
        "evaluation": report.to_json() if report else None,
        "promotion_gate": gate,
    }
    if on_step:
        on_step("save", 0, 1)
    info = registry.publish(
        lambda directory: write_parts(parts, directory, meta),
        metrics=metrics,
        primary=ts.primary_metric,
        tolerance=ts.promote_tolerance,
        promote=promote,
        version=version,
        gate=gate,
    )
    lap("save")
    return TrainResult(
        info=info, training=train, evaluation=report, timings=timings, extract_cache=extract.cache,
        warnings=warnings,
    )


ACTIVE = "active"  # the active model's configuration, refitted on the same split


def _active(registry: ModelRegistry) -> tuple[str, TrainingSettings] | None:
    """(version, settings) of the active model, if its settings can still be read."""
    version = registry.active_version()
    if version is None:
        return None
    try:
        recorded = read_meta(registry.versions_dir / version).get("settings") or {}
        return version, TrainingSettings(**recorded)
    except (BookclubError, ValueError, TypeError) as exc:
        log.warning("the active model's settings cannot be read (%s): promotion compares recorded metrics", exc)
        return None


def _evaluate_split(
    full: TrainingSet,
    purchases: PurchaseArrays,
    start: dt.datetime,
    eval_cutoff: dt.datetime,
    cutoff: dt.datetime,
    sold_before: npt.NDArray[np.int64],
    ts: TrainingSettings,
    active: tuple[str, TrainingSettings] | None,
    on_step: Step | None,
) -> tuple[EvaluationReport, dict[str, Recommender], Catalogue, dict[str, Any] | None]:
    """The served recommender, popularity and — when its configuration differs — the active
    model's configuration, on the one time split (:mod:`training.split`) of the window at
    ``eval_cutoff``; warm members only. The gate is the paired difference, new minus active,
    on the primary metric (the same members, resampled together)."""
    configs: dict[str, TrainingSettings] = {ts.model: ts, "popularity": ts.model_copy(update={"model": "popularity"})}
    same = active is not None and _fit_settings(active[1]) == _fit_settings(ts)
    if active is not None and not same:
        configs[ACTIVE] = active[1]
    fitted: dict[str, Recommender] = {}
    scores = evaluate_fold(
        full.catalogue, purchases, sold_before, eval_cutoff, configs, served=ts.model, k=ts.k, on_step=on_step,
        cold=False, start=start, end=cutoff, fitted=fitted,
    )  # fmt: skip
    report = EvaluationReport.of([scores], ts.k, served=ts.model, primary=ts.primary_metric, seed=ts.seed)
    gate: dict[str, Any] | None = None
    if active is not None:
        if same:
            gate = {"metric": ts.primary_metric, "mean": 0.0, "low": 0.0, "high": 0.0, "against": active[0],
                    "note": "the same configuration as the active model: nothing to compare"}  # fmt: skip
        else:
            gate = {**paired_difference(report, ts.model, ACTIVE, ts.primary_metric), "against": active[0]}
    assert scores.catalogue is not None
    return report, fitted, scores.catalogue, gate


def _fit_settings(settings: TrainingSettings) -> dict[str, Any]:
    """What decides a fitted model (not how it is evaluated or extracted)."""
    skip = {"eval_members", "eval_batch_members", "extract_batch_rows", "extract_cache", "extract_cache_verify_rows",
            "threads", "recommenders", "promote_tolerance", "min_order_lines", "min_members"}  # fmt: skip
    return {k: v for k, v in settings.model_dump().items() if k not in skip}


def carry_over(recommender: FactorRecommender, small: Catalogue, full: Catalogue) -> None:
    """Factors fitted on ``small`` (an evaluation split's members and titles) laid out over
    ``full``'s rows: the members and titles ``small`` lacks start at zero, so a few ALS
    sweeps on the whole window (:meth:`ALSRecommender.refine`) finish the model."""
    for attr, small_ids, full_ids in (
        ("member_factors", small.members, full.members),
        ("title_factors", small.titles, full.titles),
    ):
        fitted = np.asarray(getattr(recommender, attr))
        if len(small_ids) == len(full_ids):
            continue
        rows = np.searchsorted(np.asarray(full_ids.ids), np.asarray(small_ids.ids))
        laid = np.zeros((len(full_ids), fitted.shape[1]), dtype=np.float32)
        laid[rows] = fitted
        setattr(recommender, attr, laid)


class _Counter:
    """Progress of a step counted in rows."""

    def __init__(self, what: str, on_step: Step | None) -> None:
        self.what, self.on_step, self.done, self.total = what, on_step, 0, 0

    def set_total(self, total: int) -> None:
        self.total = total

    def add(self, n: int) -> None:
        self.done += n
        if self.on_step:
            self.on_step(self.what, self.done, self.total)
