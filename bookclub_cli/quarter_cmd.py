"""``bookclub quarter``: the whole quarter as one job, on whatever database is configured.

data (demo club if the database is empty) → train and evaluate → segment →
catalog plans → segment catalogs and a few member editions → serve the API.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import typer

from bookclub_cli.common import cli_errors, console, load_settings, open_engine, progress
from recsys.storage.apikeys import create_key

if TYPE_CHECKING:
    from quarterly.run import QuarterResult


def current_quarter(today: dt.date) -> str:
    return f"{today.year}Q{(today.month - 1) // 3 + 1}"


@cli_errors
def quarter(
    quarter: str | None = typer.Option(None, "--quarter", help="e.g. 2026Q4 (default: this quarter)"),
    members: int = typer.Option(5_000, "--members", min=1, help="demo club size, if the database is empty"),
    titles: int = typer.Option(1_500, "--titles", min=10, help="demo titles, if the database is empty"),
    years: int = typer.Option(3, "--years", min=1, max=100, help="demo years of history"),
    seed: int = typer.Option(42, "--seed", help="demo seed"),
    editions: int = typer.Option(
        3, "--editions", min=0,
        help="personalized member editions: the N best mailed members' pieces (the others get the segment catalog)",
    ),
    simulate: bool | None = typer.Option(
        None, "--simulate/--no-simulate",
        help="the club responds to the mailing with a known true effect, then matchback and the "
        "campaign report [default: on a generated demo club only]",
    ),
    mail_everyone: bool = typer.Option(
        False, "--mail-everyone",
        help="mail every eligible member (the holdout stays random) instead of the plan by expected "
        "profit [settings: mailing.plan_by_profit]",
    ),
    serve: bool = typer.Option(True, "--serve/--no-serve", help="end with the API server running"),
    port: int | None = typer.Option(None, "--port", help="API port [settings: 8000]"),
) -> None:
    """Run the quarter: data, training, segments, the campaign's contacts, catalogs and the mailed
    members' editions, on the demo the responses and the campaign report, and the API server."""
    from demo.generate import DemoSpec
    from quarterly.run import run_quarter

    settings = load_settings()
    if mail_everyone:
        settings = settings.model_copy(update={"mailing": settings.mailing.model_copy(update={"plan_by_profit": False})})
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
            say=lambda message: console.print(f"· {message}"), on_step=step, simulate=simulate,
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
    _print_campaign(outcome)
    if serve:
        from bookclub_cli.serve_cmd import serve as serve_api

        serve_api(host=None, port=port, workers=None, open_demo=False)


def _print_campaign(outcome: QuarterResult) -> None:
    """The campaign report, and on a simulated club each interval beside the truth."""
    from campaign.report_text import report_text
    from demo.respond import truth_lines

    campaign = outcome.campaign
    if campaign is None or campaign.report is None:
        if campaign is not None:
            console.print(
                f"6. campaign {campaign.contacts.campaign.name}: contacts written; once orders are in, "
                f"`bookclub campaigns matchback --campaign {campaign.contacts.campaign.name}` and "
                f"`bookclub campaigns report --campaign {campaign.contacts.campaign.name}`"
            )
        return
    console.print(f"6. the campaign report (`bookclub campaigns report --campaign {campaign.report.campaign.name}`)")
    console.print(report_text(campaign.report), highlight=False, soft_wrap=True)
    if campaign.simulated is not None:
        lines, covered, total = truth_lines(campaign.report, campaign.simulated)
        console.print(
            f"the simulated truth: {covered} of {total} intervals contain it "
            f"(95 % intervals: about 1 in 20 misses by chance)"
        )
        for line in lines:
            console.print(line, highlight=False, soft_wrap=True)
    console.print(campaign.reconciliation.summary(), highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("quarter")(quarter)
