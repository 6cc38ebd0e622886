"""``bookclub train``, ``evaluate`` and ``models list|activate|rollback``.

Also what ``bookclub tune`` (:mod:`bookclub_cli.tune_cmd`) shares with them: the ``--cutoff``
parser, the step progress bars and the ``mean [interval]`` cells.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import typer
from rich.progress import Progress, TaskID
from rich.table import Table

from bookclub_cli.common import cli_errors, console, err_console, load_settings, open_engine, progress
from recsys.errors import BookclubError
from recsys.storage.db import check_ready
from training.compare import served_against_each
from training.dataset import read_catalogue
from training.evaluate import evaluate
from training.evaluation_report import EvaluationReport
from training.pipeline import run_training
from training.registry import ModelRegistry, Promote
from training.tuning import configured

models_app = typer.Typer(
    help="Trained model versions: list, activate, roll back.", no_args_is_help=True
)

Step = Callable[[str, int, int], None]


def parse_cutoff(
    value: str | None, *, not_before: dt.date | None = None, not_after: dt.datetime | None = None
) -> dt.datetime | None:
    """``--cutoff`` as naive UTC, within bounds: a date in year 1 or 9999 used to overflow
    the training window's arithmetic (a traceback), a future one to test on nothing."""
    if value is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
        if moment.tzinfo is not None:
            moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
    except (ValueError, OverflowError):
        raise BookclubError(f"--cutoff {value!r} is not a date (use YYYY-MM-DD)") from None
    if not_before is not None and moment.date() < not_before:
        raise BookclubError(
            f"--cutoff {value} is before {not_before} (imports.earliest_date): no purchase can precede it"
        )
    if not_after is not None and moment > not_after:
        raise BookclubError(
            f"--cutoff {value} is in the future: the purchases after the cutoff are what is scored; "
            "choose a date up to today"
        )
    return moment


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


@contextmanager
def step_progress() -> Iterator[Step]:
    """A callback ``(what, done, total)`` drawing one rich progress bar per step."""
    bars: Progress = progress()
    tasks: dict[str, TaskID] = {}
    with bars:

        def step(what: str, done: int, total: int) -> None:
            if what not in tasks:
                tasks[what] = bars.add_task(what, total=max(total, 1))
            bars.update(tasks[what], completed=done if total else 1, total=max(total, 1))

        yield step


def interval_cell(value: float | None, interval: list[float] | None, signed: bool = False) -> str:
    if value is None:
        return "-"
    fmt = "{:+.4f}" if signed else "{:.4f}"
    text = fmt.format(value)
    if interval is not None:
        text += " [" + ", ".join(fmt.format(v) for v in interval) + "]"
    return text


def _period(report: EvaluationReport) -> str:
    if report.folds:
        return f"{len(report.folds)} test periods from {report.folds[0]['cutoff']} to {report.folds[-1]['end']}, pooled"
    end = f" to {report.scores[0].end:%Y-%m-%d}" if report.scores else ""
    return f"cutoff {report.cutoff}, test{end}"


def metrics_table(report: EvaluationReport) -> Table:
    """Means with their 95 % bootstrap intervals, one row per recommender (the served one starred)."""
    names = sorted({m for values in report.results.values() for m in values}, key=_metric_order)
    table = Table(title=f"evaluation: {_period(report)}, k = {report.k}: mean [95 % interval over members]")
    table.add_column("recommender")
    for name in names:
        table.add_column(name, justify="right")
    table.add_column(f"new titles recall@{report.k}", justify="right")
    for kind, values in report.results.items():
        intervals = report.intervals.get(kind, {})
        new = report.new_titles.get(kind, {}).get(f"recall@{report.k}")
        table.add_row(
            kind + (" *" if kind == report.served else ""),
            *(interval_cell(values.get(n, float("nan")), intervals.get(n)) for n in names),
            interval_cell(new, intervals.get(f"new_titles_recall@{report.k}")),
        )
    return table


def differences_table(report: EvaluationReport) -> Table | None:
    """Each recommender minus the best other one (by the primary metric), paired over members."""
    if not report.differences:
        return None
    names = [n for n in sorted(next(iter(report.results.values())), key=_metric_order) if "coverage" not in n]
    table = Table(title="paired differences (to the best other recommender, and to popularity): mean [95 % interval]")
    table.add_column("recommender")
    table.add_column("against")
    for name in names:
        table.add_column(name, justify="right")
    for kind, diff in report.differences.items():
        table.add_row(
            kind, diff["against"],
            *(interval_cell(diff[n]["mean"], [diff[n]["low"], diff[n]["high"]], signed=True) for n in names),
        )  # fmt: skip
    for kind, diff in report.versus_popularity.items():
        if report.differences.get(kind, {}).get("against") != "popularity":
            table.add_row(
                kind, "popularity",
                *(interval_cell(diff[n]["mean"], [diff[n]["low"], diff[n]["high"]], signed=True) for n in names),
            )  # fmt: skip
    return table


def cold_table(report: EvaluationReport) -> Table | None:
    cold = report.cold
    if not cold.get("results"):
        return None
    names = sorted(next(iter(cold["results"].values())), key=_metric_order)
    table = Table(title=f"cold members ({cold['members']:,}, no history before the cutoff): mean [95 % interval]")
    table.add_column("ranking")
    for name in names:
        table.add_column(name, justify="right")
    for arm, values in cold["results"].items():
        table.add_row(arm, *(interval_cell(values[n], cold["intervals"][arm][n]) for n in names))
    diff = cold["differences"]["cold_start"]
    table.add_row(
        "cold_start − popularity",
        *(interval_cell(diff[n]["mean"], [diff[n]["low"], diff[n]["high"]], signed=True) for n in names),
    )
    return table


def folds_table(report: EvaluationReport) -> Table | None:
    if not report.folds:
        return None
    primary = f"ndcg@{report.k}"
    table = Table(title=f"per fold: {primary} [95 % interval]")
    for column in ("test period", "warm", "cold", "repurchase only", *report.results):
        table.add_column(column, justify="left" if column == "test period" else "right")
    for fold in report.folds:
        m = fold["members"]
        table.add_row(
            f"{fold['cutoff']} – {fold['end']}", f"{m['warm']:,}", f"{m['cold']:,}", f"{m['repurchase_only']:,}",
            *(interval_cell(fold["results"][kind][primary], fold["intervals"][kind][primary]) for kind in report.results),
        )  # fmt: skip
    return table


def served_table(report: EvaluationReport, versus: dict[str, Any]) -> Table | None:
    """The served recommender minus every other one (paired), and what that allows saying."""
    if not versus["against"]:
        return None
    names = [n for n in sorted(next(iter(report.results.values())), key=_metric_order) if "coverage" not in n]
    worse = versus["worse_than"]
    verdict = (
        "significantly worse than " + ", ".join(f"{o} ({', '.join(ms)})" for o, ms in worse.items())
        if worse else "not significantly worse than any other"
    )  # fmt: skip
    better = versus["better_than_popularity"]
    if "popularity" in versus["against"]:
        verdict += "; significantly better than popularity on " + (", ".join(better) if better else "no metric")
    table = Table(title=f"served ({report.served}) minus each other recommender, paired: {verdict}")
    table.add_column("served − other")
    for name in names:
        table.add_column(name, justify="right")
    for other, values in versus["against"].items():
        table.add_row(
            f"{report.served} − {other}",
            *(interval_cell(values[n]["mean"], [values[n]["low"], values[n]["high"]], signed=True) for n in names),
        )
    return table


def print_report(report: EvaluationReport) -> None:
    for table in (metrics_table(report), differences_table(report), cold_table(report), folds_table(report)):
        if table is not None:
            console.print(table)
    m = report.members
    console.print(
        f"members: {m.get('warm', 0):,} warm (history in the window, scored), {m.get('cold', 0):,} cold "
        f"(scored separately), {m.get('repurchase_only', 0):,} bought only titles they had bought before "
        f"(not scored); * = served ({report.served}); intervals: {report.bootstrap.get('resamples', 0):,} "
        "bootstrap resamples over members"
    )


def _metric_order(name: str) -> int:
    order = ["recall", "ndcg", "precision", "map", "hitrate", "coverage"]
    base = name.split("@")[0]
    return order.index(base) if base in order else len(order)


@cli_errors
def train(
    with_evaluation: bool = typer.Option(
        False, "--evaluate", help="score on the last holdout period first; decides promotion"
    ),
    promote: str = typer.Option("auto", "--promote", help="auto | never | force"),
    cutoff: str | None = typer.Option(None, "--cutoff", help="train on purchases before this date"),
) -> None:
    """Retrain: extract purchases, fit, (evaluate), save a new version, promote it or not."""
    if promote not in ("auto", "never", "force"):
        raise BookclubError(f"--promote must be auto, never or force, not {promote!r}")
    mode: Promote = promote  # type: ignore[assignment]
    settings = load_settings()
    engine = open_engine(settings)
    check_ready(engine)
    with step_progress() as step:
        result = run_training(
            engine,
            settings,
            cutoff=parse_cutoff(cutoff, not_before=settings.imports.earliest_date),  # later than now: now
            with_evaluation=with_evaluation,
            promote=mode,
            on_step=step,
        )
    for warning in result.warnings:
        err_console.print(f"[yellow]warning:[/] {warning}", highlight=False, soft_wrap=True)
    snap = result.training.snapshot
    console.print(
        f"model {result.info.version}: {snap.purchase_rows:,} order lines, "
        f"{snap.members_with_purchases:,} members, {snap.titles_with_purchases:,} titles, "
        f"newest purchase {snap.newest_purchase}"
    )
    if result.evaluation is not None:
        print_report(result.evaluation)
    console.print(f"status: {result.info.status} ({result.info.reason})")
    console.print("timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in result.timings.items()))


@cli_errors
def evaluate_cmd(
    cutoff: str = typer.Option(
        ..., "--cutoff", help="train before this date, test on the next holdout_days (91)"
    ),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
    k: int = typer.Option(20, "--k", min=1, help="rank cut-off"),
    folds: int | None = typer.Option(
        None, "--folds", min=1, help="instead of the period after CUTOFF: the N consecutive test periods "
        "(holdout_days each) ending at CUTOFF, each trained on what came before it; per fold and pooled",
    ),
) -> None:
    """Score every recommender on a time split (train before CUTOFF, test after), with 95 %
    bootstrap intervals over members and paired differences; cold members separately."""
    settings = load_settings()
    engine = open_engine(settings)
    check_ready(engine)
    moment = parse_cutoff(cutoff, not_before=settings.imports.earliest_date, not_after=utc_now())
    assert moment is not None
    training, served, per_kind = configured(settings)
    with engine.connect() as connection:
        catalogue = read_catalogue(connection)
        if as_json:
            report = evaluate(
                connection, catalogue, training, moment, k=k, folds=folds, served=served, configs=per_kind
            )
        else:
            with step_progress() as step:
                report = evaluate(
                    connection, catalogue, training, moment, k=k, on_step=step, folds=folds, served=served,
                    configs=per_kind,
                )  # fmt: skip
    versus = served_against_each(report)
    if as_json:
        typer.echo(json.dumps({**report.to_json(), "versus_served": versus}))
        return
    print_report(report)
    table = served_table(report, versus)
    if table is not None:
        console.print(table)
    if not report.folds:
        d = report.details
        console.print(
            f"train: {d['train']['purchase_rows']:,} lines before {report.cutoff} "
            f"({d['fitted_members']:,} members, {d['fitted_titles']:,} titles fitted); "
            f"test: {d['test_rows']:,} lines, {d['scored_members']:,} members scored, "
            f"{d['new_title_members']:,} bought new titles ({d['new_title_candidates']:,} candidates)"
        )


@models_app.command("list")
@cli_errors
def models_list(as_json: bool = typer.Option(False, "--json")) -> None:
    """Every model version with its status, primary metrics and the promotion reason."""
    settings = load_settings()
    infos = ModelRegistry(settings.models_dir).list()
    if as_json:
        typer.echo(json.dumps([info.__dict__ for info in infos]))
        return
    primary = settings.training.primary_metric
    table = Table(title=f"models in {settings.models_dir}")
    for column in ("version", "created", "trained until", "status", primary, "recall@20", "reason"):
        table.add_column(column)
    for info in infos:
        m: dict[str, Any] = info.metrics
        table.add_row(
            info.version,
            info.created_at,
            info.trained_until or "",
            info.status,
            f"{m[primary]:.4f}" if primary in m else "-",
            f"{m['recall@20']:.4f}" if "recall@20" in m else "-",
            info.reason,
        )
    console.print(table)


@models_app.command("activate")
@cli_errors
def models_activate(
    version: str = typer.Argument(..., help="a version from `models list`"),
) -> None:
    """Make VERSION the active model (API workers pick it up on their next poll).

    The model's files are checked against the checksums written with it, and it is
    loaded, first; a damaged model is refused (exit 1, naming the broken file)."""
    settings = load_settings()
    registry = ModelRegistry(settings.models_dir)
    registry.activate(version)
    console.print(f"active model: {version} (verified: {registry.last_check})")


@models_app.command("rollback")
@cli_errors
def models_rollback() -> None:
    """Re-activate the model that was active before the current one (verified first, like
    `models activate`)."""
    settings = load_settings()
    registry = ModelRegistry(settings.models_dir)
    version = registry.rollback()
    console.print(f"rolled back; active model: {version} (verified: {registry.last_check})")


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app`` (``tune`` and ``recommend`` have their own modules)."""
    app.command("train")(train)
    app.command("evaluate")(evaluate_cmd)
    app.add_typer(models_app, name="models")
