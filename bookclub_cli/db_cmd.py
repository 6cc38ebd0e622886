"""``bookclub db …`` and ``bookclub categories …``."""

from __future__ import annotations

import typer

from bookclub_cli.common import cli_errors, console, load_settings, open_engine
from recsys.storage.categories import clc_file, load_categories, read_clc
from recsys.storage.db import current_revision, upgrade

db_app = typer.Typer(help="The database: create or upgrade its schema.", no_args_is_help=True)
categories_app = typer.Typer(help="The category tree.", no_args_is_help=True)


@db_app.command("upgrade")
@cli_errors
def db_upgrade(revision: str = typer.Argument("head", help="Alembic revision")) -> None:
    """Create the schema or bring it up to date (Alembic migrations)."""
    settings = load_settings()
    engine = open_engine(settings)
    upgrade(engine, revision)
    console.print(f"schema at revision {current_revision(engine)} ({engine.url.render_as_string()})")


@db_app.command("status")
@cli_errors
def db_status() -> None:
    """Show the database URL and its schema revision."""
    settings = load_settings()
    engine = open_engine(settings)
    console.print(f"{engine.url.render_as_string()}: revision {current_revision(engine) or 'none'}")


@categories_app.command("load-clc")
@cli_errors
def load_clc(
    all_levels: bool = typer.Option(False, "--all-levels", help="all 45,835 nodes, not levels 1–2"),
) -> None:
    """Load the Chinese Library Classification from ../shared/data/clc/."""
    settings = load_settings()
    engine = open_engine(settings)
    upgrade(engine)
    nodes = read_clc(clc_file(settings.shared_data_dir / "clc", all_levels))
    with engine.begin() as connection:
        inserted = load_categories(connection, nodes)
    console.print(f"CLC: {len(nodes)} categories read, {inserted} new, {len(nodes) - inserted} already present")


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
    app.add_typer(categories_app, name="categories")
