"""``bookclub recommend``: a member's titles from the active model, as the API gives them."""

from __future__ import annotations

import sys

import typer
from rich.table import Table

from bookclub_cli.common import cli_errors, console, load_settings, open_engine
from recsys import serving
from recsys.serving import RecommendationQuery
from training.registry import ModelRegistry


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


def register(app: typer.Typer) -> None:
    """Add this module's command to ``app``."""
    app.command("recommend")(recommend)
