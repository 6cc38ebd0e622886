"""``bookclub demo-data``: fill the database with a believable, seeded demo club."""

from __future__ import annotations

import datetime as dt

import typer
from rich.progress import TaskID
from rich.table import Table

from bookclub_cli.common import cli_errors, console, load_settings, open_engine, progress
from demo.generate import DemoSpec
from demo.load import DemoSummary, load_demo
from recsys.errors import BookclubError
from recsys.storage.categories import clc_file
from recsys.storage.db import upgrade


@cli_errors
def demo_data(
    members: int = typer.Option(5_000, "--members", min=1, help="members to create"),
    titles: int = typer.Option(1_500, "--titles", min=10, help="titles in the catalogue"),
    years: int = typer.Option(3, "--years", min=1, max=100, help="years of purchase history"),
    seed: int = typer.Option(42, "--seed", help="same seed, same club"),
    purchases: int | None = typer.Option(
        None, "--purchases", min=0, help="order lines to aim for (default: members × years × 8)"
    ),
    end_date: dt.datetime | None = typer.Option(
        None, "--end-date", formats=["%Y-%m-%d"], help="last day of history (default: yesterday, so that no order lies in the future)"
    ),
    replace: bool = typer.Option(
        False,
        "--replace",
        help="empty members, titles, purchases, member_categories and title_categories first "
        "(without it, a database that has any of them is refused)",
    ),
) -> None:
    """Generate a demo club and write it to the configured database.

    CLC categories (levels 1–2, loaded if the tree is empty), titles in Chinese and
    English with authors, publishers, prices and quarterly releases, members with
    favourite categories, and purchases over all six channels with returns. The
    schema is upgraded first. Refuses a database that already has members, titles
    or purchases unless --replace is given.
    """
    settings = load_settings()
    last_day = end_date.date() if end_date else dt.date.today() - dt.timedelta(days=1)
    if last_day > dt.date.today():
        raise BookclubError(f"--end-date {last_day} is in the future: demo orders would lie ahead of now")
    if last_day.year - years < settings.imports.earliest_date.year:
        raise BookclubError(
            f"--end-date {last_day} with --years {years} starts before {settings.imports.earliest_date} "
            "(imports.earliest_date): choose a later end or fewer years"
        )
    engine = open_engine(settings)
    upgrade(engine)
    spec = DemoSpec(
        members=members,
        titles=titles,
        years=years,
        seed=seed,
        end_date=last_day,
        purchases=purchases,
    )
    clc_path = clc_file(settings.shared_data_dir / "clc", all_levels=False)
    with progress() as bars:
        tasks: dict[str, TaskID] = {}

        def report(table: str, done: int, total: int) -> None:
            if table not in tasks:
                tasks[table] = bars.add_task(f"loading {table}", total=total)
            bars.update(tasks[table], completed=done, total=total)

        summary = load_demo(engine, spec, clc_path, replace=replace, progress=report)
    _print_summary(summary, engine.url.render_as_string())


def _print_summary(summary: DemoSummary, url: str) -> None:
    console.print(f"demo club written to {url}")
    table = Table(show_header=True)
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, count in summary.counts.items():
        table.add_row(name, f"{count:,}")
    console.print(table)
    if summary.first_purchase and summary.last_purchase:
        console.print(
            f"purchases from {summary.first_purchase:%Y-%m-%d} to {summary.last_purchase:%Y-%m-%d}"
        )
    console.print(
        f"top 20 % of members bring {summary.top20_revenue_share:.0%} of revenue; "
        f"loaded in {summary.seconds:.1f} s"
    )


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command("demo-data")(demo_data)
