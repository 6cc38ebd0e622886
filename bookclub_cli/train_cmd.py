"""``bookclub train``, ``evaluate``, ``recommend`` and ``models list|activate|rollback``."""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import typer
from rich.progress import Progress, TaskID
from rich.table import Table

from bookclub_cli.common import cli_errors, console, err_console, load_settings, open_engine, progress
from recsys import serving
from recsys.errors import BookclubError
from recsys.serving import RecommendationQuery
from recsys.storage.db import check_ready
from training.dataset import read_catalogue
from training.evaluate import EvaluationReport, evaluate
from training.pipeline import run_training
from training.registry import ModelRegistry, Promote

models_app = typer.Typer(
    help="Trained model versions: list, activate, roll back.", no_args_is_help=True
)

Step = Callable[[str, int, int], None]


def parse_cutoff(value: str | None) -> dt.datetime | None:
    if value is None:
        return None
    try:
        return dt.datetime.fromisoformat(value)
    except ValueError:
        raise BookclubError(f"--cutoff {value!r} is not a date (use YYYY-MM-DD)") from None


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


def metrics_table(report: EvaluationReport) -> Table:
    names = sorted({m for values in report.results.values() for m in values}, key=_metric_order)
    table = Table(title=f"evaluation: cutoff {report.cutoff}, test = next quarter, k = {report.k}")
    table.add_column("recommender")
    for name in names:
        table.add_column(name, justify="right")
    table.add_column(f"new titles recall@{report.k}", justify="right")
    for kind, values in report.results.items():
        new = report.new_titles.get(kind, {}).get(f"recall@{report.k}")
        table.add_row(
            kind,
            *(f"{values.get(n, float('nan')):.4f}" for n in names),
            "-" if new is None else f"{new:.4f}",
        )
    return table


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
            cutoff=parse_cutoff(cutoff),
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
        console.print(metrics_table(result.evaluation))
    console.print(f"status: {result.info.status} ({result.info.reason})")
    console.print("timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in result.timings.items()))


@cli_errors
def evaluate_cmd(
    cutoff: str = typer.Option(
        ..., "--cutoff", help="train before this date, test on the next quarter"
    ),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
    k: int = typer.Option(20, "--k", min=1, help="rank cut-off"),
) -> None:
    """Score every recommender on a time split (train before CUTOFF, test after)."""
    settings = load_settings()
    engine = open_engine(settings)
    check_ready(engine)
    moment = parse_cutoff(cutoff)
    assert moment is not None
    with engine.connect() as connection:
        catalogue = read_catalogue(connection)
        if as_json:
            report = evaluate(connection, catalogue, settings.training, moment, k=k)
        else:
            with step_progress() as step:
                report = evaluate(
                    connection, catalogue, settings.training, moment, k=k, on_step=step
                )
    if as_json:
        typer.echo(json.dumps(report.to_json()))
        return
    console.print(metrics_table(report))
    d = report.details
    console.print(
        f"train: {d['train']['purchase_rows']:,} lines before {report.cutoff}; "
        f"test: {d['test_rows']:,} lines, {d['test_members']:,} members scored, "
        f"{d['new_title_members']:,} bought new titles ({d['new_title_candidates']:,} candidates)"
    )


@cli_errors
def recommend(
    member_id: str = typer.Argument(..., help="the club's member id"),
    limit: int = typer.Option(10, "--limit", min=1, max=200, help="how many titles"),
    category: str | None = typer.Option(None, "--category", help="only titles in this category (or below)"),
    include_purchased: bool = typer.Option(
        False, "--include-purchased", help="keep titles the member bought since training"
    ),
    in_stock_only: bool = typer.Option(
        True, "--in-stock-only/--all-stock", help="drop titles out of stock (the default)"
    ),
    as_json: bool = typer.Option(
        False, "--json", help="print exactly the body of GET /v1/members/{id}/recommendations"
    ),
) -> None:
    """A member's titles from the active model, with reasons: the API's answer, on the CLI."""
    settings = load_settings()
    model = ModelRegistry(settings.models_dir).load()
    query = RecommendationQuery(
        limit=limit, category=category, include_purchased=include_purchased, in_stock_only=in_stock_only
    )
    with open_engine(settings).connect() as connection:
        serving.prepare_model_from_db(connection, model)
        shelf = serving.read_shelf(connection, model)
        result = serving.recommend(connection, model, member_id, query, shelf=shelf)
    if as_json:
        sys.stdout.buffer.write(serving.recommendations_json(result, model.version, shelf) + b"\n")
        return
    known = "cold start" if result.cold_start else "from purchases"
    table = Table(title=f"{member_id} ({known}), model {model.version}")
    for column in ("#", "title_id", "title", "author", "score", "why"):
        table.add_column(column, justify="right" if column in ("#", "score") else "left")
    for i, (r, record) in enumerate(result.items, 1):
        table.add_row(str(i), r.title_id, record.title, record.author or "", f"{r.score:.3f}", r.reason)
    console.print(table)


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
    """Add this module's commands to ``app``."""
    app.command("train")(train)
    app.command("evaluate")(evaluate_cmd)
    app.command("recommend")(recommend)
    app.add_typer(models_app, name="models")
