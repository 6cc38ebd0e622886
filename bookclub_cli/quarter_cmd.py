"""``bookclub quarter``: the whole quarter as one job, on whatever database is configured.

data (demo club if the database is empty) → train and evaluate → segment →
catalog plans → segment catalogs and a few member editions → serve the API.
"""

from __future__ import annotations

import datetime as dt

import typer

from bookclub_cli.common import cli_errors, console, load_settings, open_engine, progress
from recsys.storage.apikeys import create_key


def current_quarter(today: dt.date) -> str:
    return f"{today.year}Q{(today.month - 1) // 3 + 1}"


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
    from catalog.quarter import run_quarter
    from demo.generate import DemoSpec

    settings = load_settings()
    engine = open_engine(settings)
    quarter = quarter or current_quarter(dt.date.today())
    console.rule(f"[bold]bookclub quarter {quarter}[/] on {engine.url.render_as_string()}")
    demo = DemoSpec(
        members=members, titles=titles, years=years, seed=seed,
        end_date=dt.date.today() - dt.timedelta(days=1),
    )
    with progress() as bars:
        task = bars.add_task("quarter", total=None)

        def step(name: str, done: int, total: int) -> None:
            bars.update(task, description=name, completed=done, total=total or None)

        outcome = run_quarter(
            settings, quarter, members_for_editions=editions, demo=demo, train=True,
            say=lambda message: console.print(f"· {message}"), on_step=step,
        )
    data = outcome.data
    if data is not None:
        console.print(f"1. data: {data.members:,} members, {data.order_lines:,} order lines")
    if outcome.trained is not None:
        info = outcome.trained.info
        shown = ", ".join(f"{k} {v:.3f}" for k, v in info.metrics.items() if "@" in k)
        console.print(f"2. model {info.version}: {info.status} ({shown})")
    console.print(f"3. segments, catalog plans and PDFs for {quarter}")
    console.print(outcome.summary())

    with engine.begin() as connection:
        key, _info = create_key(connection, "read", label=f"quarter {quarter} demo")
        staff_key, _staff = create_key(connection, "admin", label=f"console {quarter} demo")
    member_id = outcome.example_member_id
    port = port or settings.api.port
    console.print("4. the API: a read key was created for you (shown once)")
    console.print(
        f'   curl -H "Authorization: Bearer {key}" '
        f'"http://{settings.api.host}:{port}/v1/members/{member_id}/recommendations?limit=5"',
        soft_wrap=True, highlight=False,
    )
    console.print("5. the staff console: an admin key to log in with was created for you (shown once)")
    console.print(
        f"   http://{settings.api.host}:{port}/ui/members/{member_id}   key: {staff_key}",
        soft_wrap=True, highlight=False,
    )
    if serve:
        from bookclub_cli.serve_cmd import serve as serve_api

        serve_api(host=None, port=port, workers=None, open_demo=False)


def register(app: typer.Typer) -> None:
    app.command("quarter")(quarter)
