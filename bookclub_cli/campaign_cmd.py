"""``bookclub campaigns list|plan|contacts|matchback|report|reconcile``: the campaign loop.

plan (who would get what, nothing written) → contacts (written before rendering) →
render the mailed editions (``bookclub catalogs render``) → orders arrive →
matchback → report (the effect of each edition against its random holdout).
"""

from __future__ import annotations

import datetime as dt
import json
from functools import partial
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from bookclub_cli.common import cli_errors, console, err_console, load_settings
from bookclub_cli.common import open_engine as _open_engine
from recsys.errors import BookclubError
from recsys.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from campaign.contacts import PrintFiles

campaigns_app = typer.Typer(
    help="Campaigns: contacts with random holdouts, matchback, and each edition's incremental effect.",
    no_args_is_help=True,
)

QUARTER = typer.Option(..., "--quarter", help="the quarter, e.g. 2026Q4 (its campaign is named after it)")
CAMPAIGN = typer.Option(..., "--campaign", help="campaign name (e.g. 2026Q4, hillstrom) or id")
IN_HOME = typer.Option(
    None, "--in-home", formats=["%Y-%m-%d"],
    help="planned in-home date (default: the quarter's first day, or today once it has begun)",
)
PERSONAL = typer.Option(
    None, "--personal", min=0,
    help="personalise only the N best mailed members' editions (the others' piece is the segment "
    "catalog); default: every mailed member gets their own edition",
)


def print_files(settings: Settings, quarter: str) -> PrintFiles:
    """Where the catalog side writes a quarter's PDFs, relative to the catalogs folder."""
    from campaign.contacts import PrintFiles
    from catalog.paths import catalog_file, edition_file

    return PrintFiles(member=partial(edition_file, quarter), segment=partial(catalog_file, quarter))


def open_engine(settings: Settings) -> Engine:
    """The engine, its schema brought up to date first (campaign tables came with a migration)."""
    from recsys.storage.db import upgrade

    engine = _open_engine(settings)
    upgrade(engine)
    return engine


def _quarter_start(quarter: str) -> dt.date:
    from catalog.period import Quarter

    return Quarter.parse(quarter).start


@cli_errors
def list_campaigns() -> None:
    """Every campaign with its contacts per arm."""
    from recsys.storage import campaigns as campaigns_db
    from recsys.storage import contacts as contacts_db

    settings = load_settings()
    with open_engine(settings).connect() as connection:
        table = Table(title="campaigns")
        arms = ("mailed", "holdout", "suppressed", "not_mailed", "web")
        for column in ("id", "name", "in home", "window", *arms):
            table.add_column(column.replace("_", " "), justify="left" if column in ("name", "in home") else "right")
        for c in campaigns_db.campaigns(connection):
            counts = contacts_db.contact_counts(connection, c.id)
            table.add_row(
                str(c.id), c.name, str(c.in_home_date), f"{c.response_days}+{c.late_days} d",
                *(f"{counts.get(arm, 0):,}" for arm in arms),
            )
    console.print(table)


@cli_errors
def plan(
    quarter: str = QUARTER,
    in_home: dt.datetime | None = IN_HOME,
    personal: int | None = PERSONAL,
    budget: float | None = typer.Option(None, "--budget", min=0, help="most the quarter's pieces may cost"),
    max_pieces: int | None = typer.Option(None, "--max-pieces", min=0, help="most pieces in the quarter"),
) -> None:
    """Who would be mailed, held out or suppressed, per segment, and what it would cost (nothing is written);
    then the decision by expected incremental profit (campaign.mailing_plan) with the mail-depth curve."""
    from campaign.contacts import default_in_home, mail_everyone_plan
    from campaign.holdouts import campaign_seed
    from recsys.storage import campaigns as campaigns_db
    from recsys.storage import contacts as contacts_db

    settings = load_settings()
    with open_engine(settings).connect() as connection:
        audience = contacts_db.quarter_audience(connection, quarter)
        if not len(audience):
            raise BookclubError(f"no segments for {quarter}: run `bookclub segment --quarter {quarter}` first")
        existing = campaigns_db.campaign_by_name(connection, quarter)
        seed = existing.seed if existing else campaign_seed(quarter)
        day = existing.in_home_date if existing else (
            in_home.date() if in_home else default_in_home(_quarter_start(quarter), dt.date.today(), settings.campaign)
        )
        # the same plan `campaigns contacts` writes when everyone eligible is mailed: the holdout,
        # the suppression list and the contact rules (not_mailed) included
        contact_plan = mail_everyone_plan(
            connection, settings, audience, seed, day, personal=personal, check_rules=existing is None
        )
    cost = settings.campaign.costs("catalog").total
    counts = contact_plan.counts()
    personalised = int(contact_plan.personal.sum())
    suppressed = contact_plan.suppressed_reasons()
    if existing is not None:  # what was written, not a new plan
        with open_engine(settings).connect() as connection:
            counts = contacts_db.contact_counts_by_segment(connection, existing.id)
            suppressed = contacts_db.suppression_reasons(connection, existing.id)
            files = contacts_db.mailed_files(connection, existing.id)
        personalised = sum(1 for f in files.values() if f and "/members/" in f)
    table = Table(title=f"campaign {quarter}: in home {day}, holdout {settings.campaign.holdout_share:.1%} "
                  f"(+{settings.campaign.universal_holdout_share:.1%} universal)")
    for column in ("segment", "mailed", "holdout", "suppressed", "not mailed", "cost"):
        table.add_column(column, justify="right")
    for segment in sorted({s for s, _arm in counts}):
        mailed = counts.get((segment, "mailed"), 0)
        table.add_row(
            str(segment), f"{mailed:,}", f"{counts.get((segment, 'holdout'), 0):,}",
            f"{counts.get((segment, 'suppressed'), 0):,}", f"{counts.get((segment, 'not_mailed'), 0):,}",
            f"{mailed * cost:,.2f}",
        )
    console.print(table)
    for reason, n in sorted(suppressed.items()):
        console.print(f"  suppressed {n:,}: {reason}")
    console.print(f"  {personalised:,} personal edition(s) to render; "
                  + ("the contacts written for this campaign (nothing planned anew)" if existing else "nothing written yet: "
                     f"`bookclub campaigns contacts --quarter {quarter}`"))
    from bookclub_cli.mailing_cmd import print_mailing_decision

    print_mailing_decision(settings, quarter, in_home.date() if in_home else None, budget, max_pieces)


@cli_errors
def contacts(
    quarter: str = QUARTER,
    in_home: dt.datetime | None = IN_HOME,
    personal: int | None = PERSONAL,
    budget: float | None = typer.Option(None, "--budget", min=0, help="most the quarter's pieces may cost"),
    max_pieces: int | None = typer.Option(None, "--max-pieces", min=0, help="most pieces in the quarter"),
) -> None:
    """Open the quarter's campaign and write every segmented member's contact (one transaction).

    With ``mailing.plan_by_profit`` (the default) the contacts follow the decision by expected
    incremental profit (as ``bookclub campaigns plan`` shows it) once an earlier campaign's random
    holdout says what a piece does; until then every eligible member is mailed, and this says so.
    Run before rendering: a mailed member edition is rendered only for a mailed contact.
    Re-running writes contacts only for members segmented since; nothing else changes.
    """
    from campaign.contacts import write_quarter_contacts
    from training.registry import ModelRegistry

    settings = load_settings()
    engine = open_engine(settings)
    with engine.begin() as connection:
        result = write_quarter_contacts(
            connection, settings, quarter, _quarter_start(quarter),
            files=print_files(settings, quarter),
            in_home=in_home.date() if in_home else None, personal=personal, budget=budget, max_pieces=max_pieces,
            models=ModelRegistry(settings.models_dir).model_source(connection),
        )
    counts = ", ".join(f"{arm} {n:,}" for arm, n in sorted(result.counts.items()))
    console.print(f"campaign {result.campaign.name} (id {result.campaign.id}), in home "
                  f"{result.campaign.in_home_date}: {result.written:,} contact(s) written; now {counts}")
    for line in result.summary():
        console.print(f"  {line}", highlight=False, soft_wrap=True)
    for reason, n in sorted(result.suppressed.items()):
        console.print(f"  suppressed {n:,}: {reason}")


@cli_errors
def matchback(campaign: str = CAMPAIGN) -> None:
    """Classify the campaign's order lines: direct (key code), inferred (response window), unattributed."""
    from campaign.matchback import run_matchback

    settings = load_settings()
    with open_engine(settings).begin() as connection:
        counts = run_matchback(connection, campaign, settings.campaign.timezone)
    start, end = counts.window
    console.print(
        f"matchback {campaign} ({start} to {end}): {counts.lines:,} new line(s) classified — "
        f"direct {counts.direct:,}, inferred {counts.inferred:,} ({counts.late:,} late), "
        f"unattributed {counts.unattributed:,}"
    )


@cli_errors
def report(
    campaign: str = CAMPAIGN,
    as_json: bool = typer.Option(False, "--json", help="the report as JSON"),
) -> None:
    """Each edition's incremental effect against its random holdout, with 95 % intervals."""
    from campaign.report import campaign_report
    from campaign.report_text import report_text

    settings = load_settings()
    with open_engine(settings).connect() as connection:
        result = campaign_report(connection, campaign, settings.campaign)
    if as_json:
        typer.echo(json.dumps(result.to_json(), ensure_ascii=False, indent=2))
    else:
        console.print(report_text(result), highlight=False, soft_wrap=True)
    if result.mismatch:
        err_console.print("[bold red]sample ratio mismatch:[/] the arms are not the sizes they should be")


@cli_errors
def reconcile(campaign: str = CAMPAIGN) -> None:
    """Contacts against the PDFs on disk: no PDF without a contact, no mailed contact without its PDF."""
    from campaign.reconcile import reconcile_files
    from catalog.paths import quarter_dir
    from recsys.storage import campaigns as campaigns_db

    settings = load_settings()
    with open_engine(settings).connect() as connection:
        record = campaigns_db.find_campaign(connection, campaign)
        if record.quarter is None:
            raise BookclubError(f"campaign {record.name} has no quarter: no files to reconcile")
        result = reconcile_files(
            connection, record, settings.catalogs_dir, quarter_dir(settings, record.quarter) / "members"
        )
    console.print(result.summary())
    if not result.ok:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    campaigns_app.command("list")(list_campaigns)
    campaigns_app.command("plan")(plan)
    campaigns_app.command("contacts")(contacts)
    campaigns_app.command("matchback")(matchback)
    campaigns_app.command("report")(report)
    campaigns_app.command("reconcile")(reconcile)
    app.add_typer(campaigns_app, name="campaigns")
