"""``bookclub quarter``: the whole quarter as one job, on whatever database is configured.

data (demo club if the database is empty) → train and evaluate → segment →
catalog plans → segment catalogs and a few member editions → serve the API.
"""

from __future__ import annotations

import datetime as dt

import typer
from sqlalchemy import func, select

from bookclub_cli.common import cli_errors, console, load_settings, open_engine, progress
from recsys.settings import Settings
from recsys.storage.apikeys import create_key
from recsys.storage.categories import clc_file, load_categories, read_clc
from recsys.storage.db import upgrade
from recsys.storage.schema import Category, Member, Purchase


def current_quarter(today: dt.date) -> str:
    return f"{today.year}Q{(today.month - 1) // 3 + 1}"


def _count(settings: Settings, model: type[Category] | type[Member] | type[Purchase]) -> int:
    with open_engine(settings).connect() as connection:
        return int(connection.execute(select(func.count()).select_from(model)).scalar_one())


@cli_errors
def quarter(
    quarter: str | None = typer.Option(None, "--quarter", help="e.g. 2026Q4 (default: this quarter)"),
    members: int = typer.Option(5_000, "--members", help="demo club size, if the database is empty"),
    titles: int = typer.Option(1_500, "--titles", help="demo titles, if the database is empty"),
    years: int = typer.Option(3, "--years", help="demo years of history"),
    seed: int = typer.Option(42, "--seed", help="demo seed"),
    editions: int = typer.Option(3, "--editions", min=0, help="personalized member editions to render"),
    serve: bool = typer.Option(True, "--serve/--no-serve", help="end with the API server running"),
    port: int | None = typer.Option(None, "--port", help="API port [settings: 8000]"),
) -> None:
    """Run the quarter: data, training, segments, catalogs, and the API server."""
    from bookclub_cli.demo_cmd import demo_data
    from catalog.quarter import run_quarter
    from training.pipeline import run_training

    settings = load_settings()
    engine = open_engine(settings)
    quarter = quarter or current_quarter(dt.date.today())
    console.rule(f"[bold]bookclub quarter {quarter}[/] on {engine.url.render_as_string()}")

    upgrade(engine)
    if _count(settings, Category) == 0:
        nodes = read_clc(clc_file(settings.shared_data_dir / "clc", all_levels=False))
        with engine.begin() as connection:
            load_categories(connection, nodes)
        console.print(f"1. loaded the CLC: {len(nodes)} categories")
    if _count(settings, Member) == 0:
        console.print("1. the database is empty: generating a demo club")
        demo_data(members=members, titles=titles, years=years, seed=seed, purchases=None,
                  end_date=None, replace=False)
    else:
        console.print(f"1. data: {_count(settings, Member):,} members, "
                      f"{_count(settings, Purchase):,} order lines")

    console.print("2. training and evaluating the model")
    with progress() as bars:
        task = bars.add_task("training", total=None)

        def step(name: str, done: int, total: int) -> None:
            bars.update(task, description=name, completed=done, total=total or None)

        result = run_training(engine, settings, with_evaluation=True, promote="auto", on_step=step)
    shown = ", ".join(f"{k} {v:.3f}" for k, v in result.info.metrics.items() if "@" in k)
    console.print(f"   model {result.info.version}: {result.info.status} ({shown})")

    console.print(f"3. segments, catalog plans and PDFs for {quarter}")
    outcome = run_quarter(settings, quarter, members_for_editions=editions)
    console.print(outcome.summary())

    with engine.begin() as connection:
        key, _info = create_key(connection, "read", label=f"quarter {quarter} demo")
    member_id = outcome.example_member_id
    port = port or settings.api.port
    console.print("4. the API: a read key was created for you (shown once)")
    console.print(
        f'   curl -H "Authorization: Bearer {key}" '
        f'"http://{settings.api.host}:{port}/v1/members/{member_id}/recommendations?limit=5"',
        soft_wrap=True, highlight=False,
    )
    if serve:
        from bookclub_cli.serve_cmd import serve as serve_api

        serve_api(host=None, port=port, workers=None, open_demo=False)


def register(app: typer.Typer) -> None:
    app.command("quarter")(quarter)
