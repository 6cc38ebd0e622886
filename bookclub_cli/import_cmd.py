"""``bookclub import …``: the club's CSV formats and the real-data adapters."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import typer
from rich.table import Table
from sqlalchemy import Connection

from bookclub_cli.common import cli_errors, console, err_console, load_settings, open_engine, progress
from recsys.errors import ImportRejectedError
from recsys.importing.hillstrom import import_hillstrom
from recsys.importing.online_retail import import_online_retail
from recsys.importing.shakespeare import import_shakespeare_and_co
from recsys.settings import Settings
from recsys.storage.db import upgrade
from recsys.storage.imports import KINDS, ImportOptions, ImportSummary, csv_source, import_rows

import_app = typer.Typer(
    help="Import CSV (or gzip'd CSV) files; a file with a bad row is rejected whole unless --skip-invalid.",
    no_args_is_help=True,
)

SKIP = typer.Option(
    False, "--skip-invalid", help="land the good rows; write the bad ones with reasons to the rejects file"
)
REJECTS = typer.Option(None, "--rejects", help="where bad rows go (default: DATA_DIR/rejects/…)")


def _options(settings: Settings, source: Path, skip_invalid: bool, rejects: Path | None) -> ImportOptions:
    if rejects is None:
        stamp = dt.datetime.now().strftime("%Y%m%dT%H%M%S")
        rejects = settings.data_dir / "rejects" / f"{source.name}.{stamp}.rejects.csv"
    return ImportOptions.from_settings(settings.imports, skip_invalid=skip_invalid, rejects_path=rejects)


def print_summaries(summaries: list[ImportSummary]) -> None:
    table = Table(title="import summary")
    for column in ("kind", "read", "inserted", "already present", "rejected", "skipped"):
        table.add_column(column, justify="left" if column == "kind" else "right")
    for s in summaries:
        table.add_row(s.kind, f"{s.read:,}", f"{s.inserted:,}", f"{s.already_present:,}",
                      f"{s.rejected:,}", f"{s.skipped:,}")
    console.print(table)
    for s in summaries:
        for reason, count in s.skipped_reasons.items():
            console.print(f"  {s.kind}: skipped {count:,}: {reason}")
        if s.cleared:
            console.print(f"  {s.kind}: {s.cleared:,} row(s) landed without a bad optional field "
                          "(an unknown key code: the line is unattributed)")
        if s.rejects_path:
            console.print(f"  {s.kind}: {s.rejected:,} rejected row(s) with reasons in {s.rejects_path}")
        for error in s.errors:
            err_console.print(f"  {error}", highlight=False)
        if not s.adds_up():
            err_console.print(f"[red]{s.kind}: counts do not add up[/]")


def _run(
    settings: Settings, label: str, work: Callable[[Connection, Callable[[int], None]], list[ImportSummary]]
) -> None:
    engine = open_engine(settings)
    upgrade(engine)
    with progress() as bar:
        task = bar.add_task(label, total=None)
        with engine.begin() as connection:
            summaries = work(connection, lambda n: bar.advance(task, n))
    print_summaries(summaries)


def _generic(kind: str) -> Callable[..., None]:
    spec = KINDS[kind]

    @cli_errors
    def command(
        file: Path = typer.Argument(..., help=f"CSV: {','.join(spec.columns)}"),
        skip_invalid: bool = SKIP,
        rejects: Path | None = REJECTS,
    ) -> None:
        settings = load_settings()
        options = _options(settings, file, skip_invalid, rejects)

        def work(connection: Connection, advance: Callable[[int], None]) -> list[ImportSummary]:
            source = csv_source(file, spec.required, spec.optional)
            return [import_rows(connection, spec, source, options, progress=advance)]

        try:
            _run(settings, f"importing {kind}", work)
        except ImportRejectedError:
            err_console.print(f"(every bad row with its reason: {options.rejects_path})")
            raise

    command.__doc__ = (
        f"Import {kind} from FILE. Columns: {', '.join(spec.required)} (required)"
        + (f"; {', '.join(spec.optional)} (optional)." if spec.optional else ".")
    )
    return command


@cli_errors
def online_retail(
    path: Path | None = typer.Argument(
        None, help="online_retail.csv[.gz] (default: SHARED_DATA_DIR/online-retail/online_retail.csv.gz)"
    ),
    skip_invalid: bool = SKIP,
    rejects: Path | None = REJECTS,
) -> None:
    """Import the UCI Online Retail data: customers → members, StockCodes → titles, lines → purchases."""
    settings = load_settings()
    path = path or settings.shared_data_dir / "online-retail" / "online_retail.csv.gz"
    options = _options(settings, path, skip_invalid, rejects)
    _run(settings, "importing Online Retail",
         lambda connection, advance: import_online_retail(connection, path, options, progress=advance))


@cli_errors
def shakespeare_and_co(
    directory: Path | None = typer.Argument(
        None, help="folder with sco_*.csv (default: SHARED_DATA_DIR/shakespeare-and-co)"
    ),
    skip_invalid: bool = SKIP,
    rejects: Path | None = REJECTS,
) -> None:
    """Import Shakespeare and Company: members, books (genres mapped to CLC), borrows → purchases."""
    settings = load_settings()
    directory = directory or settings.shared_data_dir / "shakespeare-and-co"
    options = _options(settings, directory / "sco_borrows.csv", skip_invalid, rejects)
    _run(settings, "importing Shakespeare and Company",
         lambda connection, advance: import_shakespeare_and_co(
             connection, directory, settings.shared_data_dir / "clc", options, progress=advance))


@cli_errors
def hillstrom(
    path: Path | None = typer.Argument(
        None, help="hillstrom.csv[.gz] (default: SHARED_DATA_DIR/hillstrom/hillstrom.csv.gz)"
    ),
    skip_invalid: bool = SKIP,
    rejects: Path | None = REJECTS,
) -> None:
    """Import the Hillstrom e-mail test: members, history, the campaign `hillstrom` with its
    three arms and contacts, and the orders of the two-week window."""
    settings = load_settings()
    path = path or settings.shared_data_dir / "hillstrom" / "hillstrom.csv.gz"
    options = _options(settings, path, skip_invalid, rejects)
    outcome: list[str] = []

    def work(connection: Connection, advance: Callable[[int], None]) -> list[ImportSummary]:
        result = import_hillstrom(connection, path, options, settings.campaign, progress=advance)
        arms = ", ".join(f"{name} {n:,}" for name, n in result.arms.items())
        outcome.append(f"campaign hillstrom: {arms}; {result.contacts_written:,} contact(s) written")
        return result.summaries

    _run(settings, "importing Hillstrom", work)
    for line in outcome:
        console.print(line)
    console.print("next: bookclub campaigns matchback --campaign hillstrom && "
                  "bookclub campaigns report --campaign hillstrom")


for _kind in KINDS:
    import_app.command(_kind)(_generic(_kind))
import_app.command("hillstrom")(hillstrom)
import_app.command("online-retail")(online_retail)
import_app.command("shakespeare-and-co")(shakespeare_and_co)


def register(app: typer.Typer) -> None:
    app.add_typer(import_app, name="import")
