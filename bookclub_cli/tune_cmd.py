"""``bookclub tune``: search every recommender's settings on validation folds and store the choice."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from bookclub_cli.common import cli_errors, console, load_settings, open_engine
from bookclub_cli.train_cmd import interval_cell, parse_cutoff, step_progress, utc_now
from recsys.storage.db import check_ready
from training.pipeline import default_cutoff
from training.tuning import save, tune


@cli_errors
def tune_cmd(
    cutoff: str | None = typer.Option(
        None, "--cutoff", help="use nothing at or after this date (default: all data; the newest is the last fold)"
    ),
    budget: float = typer.Option(10.0, "--budget", min=0.0, help="minutes for the search (the first round always runs)"),
    folds: int = typer.Option(3, "--folds", min=1, help="validation periods (holdout_days each) ending at the cutoff"),
    seeds: int = typer.Option(3, "--seeds", min=1, help="fits per point for ALS and BPR (random starts), averaged"),
    as_json: bool = typer.Option(False, "--json", help="print the search record as one JSON object"),
) -> None:
    """Search every recommender's settings on validation folds, choose what to serve — among
    the points not significantly worse than any other and within 1 % of the best mean, a
    baseline if one is there, else the learnt recommender with the best mean — and store it:
    `bookclub train` serves it and `bookclub evaluate` scores each recommender with its own
    choice."""
    settings = load_settings()
    engine = open_engine(settings)
    check_ready(engine)
    moment = parse_cutoff(cutoff, not_before=settings.imports.earliest_date, not_after=utc_now()) or default_cutoff(
        engine
    )
    if as_json:
        result = tune(engine, settings, moment, folds=folds, seeds=seeds, budget_minutes=budget)
    else:
        with step_progress() as step:
            result = tune(engine, settings, moment, folds=folds, seeds=seeds, budget_minutes=budget, on_step=step)
    path = save(settings.models_dir, result.record)
    if as_json:
        typer.echo(json.dumps(result.record, default=str))
        return
    record = result.record
    table = Table(title=f"tune: {record['metric']} on {folds} fold(s) ending {moment:%Y-%m-%d}, {record['members']:,} members")
    for column in ("recommender", "settings", "mean [95 % interval]", "− best [95 % interval]", "s"):
        table.add_column(column, justify="right" if column == "s" else "left")
    for kind, trial in record["per_kind"].items():
        d = trial["difference_to_best"]
        table.add_row(
            kind + (" *" if kind == record["served"] else ""),
            ", ".join(f"{k}={v}" for k, v in trial["settings"].items()),
            interval_cell(trial["mean"], trial["interval"]),
            interval_cell(d["mean"], [d["low"], d["high"]], signed=True),
            f"{trial['seconds']:.1f}",
        )
    console.print(table)
    console.print(
        f"{len(record['points'])} points in {record['elapsed_minutes']} min ({record['stopped']}); "
        f"served: {record['served']} (* — {record['rule']}); stored in {path}"
    )


def register(app: typer.Typer) -> None:
    """Add this module's command to ``app``."""
    app.command("tune")(tune_cmd)
