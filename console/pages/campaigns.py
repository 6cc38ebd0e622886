"""Campaigns: every campaign with its contacts per arm, and one campaign's report — the
sample-ratio check first, contacts per edition and arm, each arm's incremental effect with its
interval as charts and tables, what matchback credited beside what the holdout says.

The report is :func:`campaign.report.campaign_report`, the function ``bookclub campaigns
report`` and ``GET /v1/campaigns/{id}/report`` call; it is computed in the background (its
bootstrap takes a moment on a large campaign) and shown with its time. Aggregate figures only:
the read role sees them, as the API's read keys do.

The list page also shows a quarter's mailing decision and its mail-depth curve:
:func:`campaign.mailing_plan.plan_mailing`, what ``bookclub campaigns plan [--budget B]
[--max-pieces N]`` prints (uplift learned from earlier campaigns' random holdouts, the contact
rules, the budget), computed in the background; when it cannot be made yet (no earlier
campaign with a holdout to learn from) the page says why, in the function's words.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy import Connection

from campaign.mailing_plan import MailingPlan, plan_mailing
from campaign.report import CampaignReport, campaign_report
from catalog.period import Quarter
from console.cache import aggregates_of
from console.charts import depth_chart, interval_chart
from console.web import ConsoleRoute, NotFound, get_connection, page, require, settings_of
from recsys.storage import campaigns as campaigns_db
from recsys.storage import contacts as contacts_db
from recsys.storage import segments as segments_db
from training.registry import ModelRegistry

router = APIRouter(route_class=ConsoleRoute)
Conn = Annotated[Connection, Depends(get_connection)]

# (outcome, scale, unit key): the charts of the incremental effect, one per outcome
OUTCOME_CHARTS = (("response", 100.0, "unit_points"), ("revenue", 1.0, "unit_money_piece"), ("margin", 1.0, "unit_money_piece"))


@router.get("/campaigns", include_in_schema=False)
def campaigns_page(
    request: Request,
    connection: Conn,
    quarter: Annotated[str | None, Query(pattern=r"^\d{4}Q[1-4]$")] = None,
    budget: Annotated[float | None, Query(ge=0)] = None,
    max_pieces: Annotated[int | None, Query(ge=0)] = None,
) -> Response:
    session = require(request, connection)
    found = campaigns_db.campaigns(connection)[:50]  # newest first
    ids = tuple(c.id for c in found)
    aggregates = aggregates_of(request)
    counts = aggregates.get(("campaign_contacts", ids), lambda c: {i: contacts_db.contact_counts(c, i) for i in ids})
    quarters = segments_db.quarters_with_segments(connection)
    quarter = quarter or (quarters[-1] if quarters else None)
    decision: dict[str, Any] | None = None
    if quarter is not None:
        settings = settings_of(request)
        key = ("mailing_plan", quarter, budget, max_pieces)
        computed = aggregates.get(
            key,
            lambda c: plan_mailing(c, settings, quarter, Quarter.parse(quarter).start, budget=budget,
                                   max_pieces=max_pieces, models=ModelRegistry(settings.models_dir).model_source(c)),
        )
        decision = {"at": computed.at if computed else None, "failure": aggregates.failure(key)}
        if computed is not None:
            decision.update(_decision(computed.value))
    return page(
        request, "campaigns.html", session, campaigns=found, counts=counts.value if counts else None,
        at=counts.at if counts else None, arms=("mailed", "holdout", "suppressed", "web"), quarter=quarter,
        quarters=quarters, budget=budget, max_pieces=max_pieces, decision=decision,
    )


def _decision(plan: MailingPlan) -> dict[str, Any]:
    """The plan as the page shows it: its JSON (what the CLI writes to mailing-plan.json) and the
    mail-depth curve as a chart beside its table."""
    body = plan.to_json()
    curve = body["mail_depth"]
    rows = [(int(r["pieces"]), round(float(r["cumulative_profit"]), 2)) for r in curve["table"]]
    chart = depth_chart(
        [float(v) for v in plan.curve.cumulative], rows, title="mail depth",
        lines=[(curve["break_even_depth"], "break-even"), (curve["chosen_depth"], "plan")],
    )
    return {"plan": plan, "body": body, "curve": curve, "rows": rows, "chart": chart}


def _row(arm: str, estimate: float, low: float, high: float, scale: float = 1.0) -> tuple[str, float, float, float]:
    """To the cent (money per piece) or the hundredth of a point (rates)."""
    return arm, round(estimate * scale, 2), round(low * scale, 2), round(high * scale, 2)


def _charts(report: CampaignReport) -> list[dict[str, Any]]:
    effects = [a.effect for a in report.arms] + ([report.total] if report.total is not None else [])
    charts = []
    for outcome, scale, unit in OUTCOME_CHARTS:
        series = [_row(e.arm, e.outcome(outcome).incremental, e.outcome(outcome).low, e.outcome(outcome).high, scale) for e in effects]
        charts.append({"outcome": outcome, "unit": unit, "series": series, "chart": interval_chart(series, title=outcome, digits=3)})
    net = [_row(e.arm, e.net_profit_per_piece.estimate, e.net_profit_per_piece.low, e.net_profit_per_piece.high) for e in effects]
    charts.append({"outcome": "net_profit", "unit": "unit_money_piece", "series": net, "chart": interval_chart(net, title="net profit", digits=3)})
    return charts


@router.get("/campaigns/{campaign_id}", include_in_schema=False)
def campaign_page(request: Request, connection: Conn, campaign_id: int) -> Response:
    session = require(request, connection)
    campaign = campaigns_db.campaign_by_id(connection, campaign_id)
    if campaign is None:
        raise NotFound()
    settings = settings_of(request).campaign
    aggregates = aggregates_of(request)
    key = ("campaign_report", campaign_id, settings.resamples, settings.report_seed)
    computed = aggregates.get(key, lambda c: campaign_report(c, campaign_id, settings))
    report = computed.value if computed is not None else None
    return page(
        request, "campaign.html", session, campaign=campaign, report=report, at=computed.at if computed else None,
        charts=_charts(report) if report is not None else [], failure=aggregates.failure(key),
    )
