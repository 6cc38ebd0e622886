"""``bookclub``: the entry point. Each command group lives in its own module."""

from __future__ import annotations

import typer

from bookclub_cli import (
    campaign_cmd,
    catalog_cmd,
    db_cmd,
    demo_cmd,
    import_cmd,
    mailing_cmd,
    quarter_cmd,
    recommend_cmd,
    selection_cmd,
    serve_cmd,
    train_cmd,
    tune_cmd,
)

app = typer.Typer(
    name="bookclub",
    help="Recommendations and quarterly personalized catalogs for a book club.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

for module in (
    db_cmd, import_cmd, demo_cmd, train_cmd, tune_cmd, recommend_cmd, serve_cmd, catalog_cmd, campaign_cmd,
    mailing_cmd, quarter_cmd,
):  # fmt: skip
    module.register(app)
selection_cmd.register(app)  # campaigns decline|autoship (the negative option), into the campaigns group

if __name__ == "__main__":
    app()
