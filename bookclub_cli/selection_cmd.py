"""``bookclub campaigns decline|autoship``: members' replies to the main selection and the negative option.

``decline`` records a member's "no" to their edition's main selection; ``autoship`` sends,
after the reply deadline, the main selection to each mailed member who neither ordered nor
declined it — only when the club runs the negative option (``BOOKCLUB_CAMPAIGN__NEGATIVE_OPTION``).
Both call :mod:`campaign.negative_option`.
"""

from __future__ import annotations

import datetime as dt

import typer

from bookclub_cli.campaign_cmd import CAMPAIGN, campaigns_app, open_engine
from bookclub_cli.common import cli_errors, console, load_settings


@cli_errors
def decline(
    member_id: str = typer.Argument(..., help="the member's id"),
    campaign: str = CAMPAIGN,
    source: str = typer.Option("staff", "--source", help="where the reply came from: phone, web, card, ..."),
) -> None:
    """Record that a member declined the campaign's main selection (it will not be auto-shipped)."""
    from campaign.negative_option import decline as record

    settings = load_settings()
    with open_engine(settings).begin() as connection:
        result = record(
            connection, campaign, member_id, settings.campaign, source=source,
            at=dt.datetime.now(dt.UTC).replace(tzinfo=None),
        )
    console.print(result.summary(), highlight=False)


@cli_errors
def autoship(
    campaign: str = CAMPAIGN,
    as_of: dt.datetime | None = typer.Option(
        None, "--as-of", formats=["%Y-%m-%d"], help="the shipping day (default: today in the club's time zone, campaign.timezone); after the "
        "reply deadline"
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="count who would be shipped; write nothing"),
) -> None:
    """Send the main selection, billed, to mailed members who neither ordered nor declined it by the
    reply deadline (the negative option; refused when the club does not run it). Running it again
    ships nobody twice."""
    from campaign.negative_option import run_autoship

    settings = load_settings()
    with open_engine(settings).begin() as connection:
        result = run_autoship(
            connection, campaign, settings.campaign,
            as_of=as_of.date() if as_of else settings.campaign.club_today(), dry_run=dry_run,
        )
    console.print(result.summary(), highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add the commands to ``bookclub campaigns`` (the group itself is registered by campaign_cmd)."""
    campaigns_app.command("decline")(decline)
    campaigns_app.command("autoship")(autoship)
