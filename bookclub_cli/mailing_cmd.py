"""``bookclub value`` (member lifetime value) and ``bookclub simulate`` (a simulated year of mailings)."""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import typer
from rich.table import Table

from bookclub_cli.common import cli_errors, console, load_settings, open_engine
from recsys.errors import BookclubError
from recsys.files import atomic_writer
from recsys.settings import Settings

if TYPE_CHECKING:
    from campaign.hillstrom_eval import HillstromEvaluation


def _parse_date(value: str, option: str) -> dt.datetime:
    try:
        return dt.datetime.fromisoformat(value)
    except ValueError:
        raise BookclubError(f"{option} {value!r} is not a date (use YYYY-MM-DD)") from None


def _number(value: float | None, digits: int = 2) -> str:
    return "—" if value is None or not math.isfinite(value) else f"{value:,.{digits}f}"


@cli_errors
def value(
    cutoff: str = typer.Option(..., "--cutoff", help="value members on the order lines before this date"),
    horizon_days: int = typer.Option(90, "--horizon-days", min=1, help="days ahead to predict"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
    members_csv: Path | None = typer.Option(
        None, "--members-csv", help="write each member's history, expected purchases and value to this CSV"
    ),
) -> None:
    """Member lifetime value (BG/NBD + Gamma-Gamma): parameters, expected purchases and value over the
    horizon, and — when the order lines after the cutoff are stored — predicted against actual."""
    from campaign.club_value import value_club

    settings = load_settings()
    moment = _parse_date(cutoff, "--cutoff")
    with open_engine(settings).connect() as connection:
        result = value_club(connection, moment, horizon_days)
    body = result.to_json()
    if members_csv is not None:
        _write_members(result, members_csv)
    if as_json:
        typer.echo(json.dumps(body, ensure_ascii=False))
        return
    table = Table(title=f"{body['model']} at {body['cutoff']} (time in days)")
    for column in ("parameter", "estimate", "95 % interval"):
        table.add_column(column, justify="right")
    for name, estimate in body["params"].items():
        lo, hi = body["intervals"][name]
        table.add_row(name, f"{estimate:.4g}", f"{_number(lo, 4)} – {_number(hi, 4)}")
    console.print(table)
    console.print(
        f"{body['members']:,} members with history ({body['members_without_history']:,} without, valued "
        f"as new); next {horizon_days} days: {body['predicted_purchases']:,.0f} purchases expected "
        f"(baseline {body['baseline_predicted_purchases']:,.0f}), value {body['predicted_value']:,.2f}"
    )
    if body["actual_purchases"] is None:
        console.print("actual: the stored order lines end before the horizon does — nothing to compare")
    else:
        console.print(
            f"actual: {body['actual_purchases']:,.0f} purchases ({_number(100 * body['relative_error'], 1)} % off), "
            f"value {body['actual_value']:,.2f}; per member MAE {body['mae']:.4f} against the "
            f"same-rate baseline's {body['baseline_mae']:.4f}"
        )
    for note in body["warnings"]:
        console.print(f"  note: {note}")
    if members_csv is not None:
        console.print(f"per member: {members_csv}")


def _write_members(result: object, path: Path) -> None:
    from campaign.club_value import ClubValue

    assert isinstance(result, ClubValue)
    s = result.summary
    actual = result.actual_purchases
    with atomic_writer(path, "w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(
            ["member_id", "has_history", "frequency", "recency_days", "age_days", "monetary",
             "p_alive", "expected_purchases", "expected_value", "actual_purchases"]
        )  # fmt: skip
        for i, member_id in enumerate(result.member_id):
            writer.writerow([
                member_id, int(s.has_purchase[i]), int(s.frequency[i]), f"{s.recency[i]:g}", f"{s.age[i]:g}",
                f"{s.monetary[i]:.2f}", f"{result.probability_alive[i]:.4f}",
                f"{result.expected_purchases[i]:.4f}", f"{result.expected_value[i]:.2f}",
                "" if actual is None else int(actual[i]),
            ])  # fmt: skip


suppressions_app = typer.Typer(
    help="The suppression list: members not to be mailed (deceased, moved, do_not_mail, do_not_email, "
    "bad_address), with source and dates.",
    no_args_is_help=True,
)


@cli_errors
def suppress_add(
    member_id: str = typer.Argument(..., help="the member's id"),
    reason: str = typer.Option(..., "--reason", help="deceased | moved | do_not_mail | do_not_email | bad_address"),
    source: str = typer.Option(..., "--source", help="where it comes from (returned piece, member's call, registry)"),
    starts_on: str | None = typer.Option(None, "--from", help="first day (default today)"),
    ends_on: str | None = typer.Option(None, "--until", help="the day it no longer applies (default: for good)"),
    scope: str | None = typer.Option(None, "--scope", help="post | email | all (default: the reason's)"),
    note: str | None = typer.Option(None, "--note"),
) -> None:
    """Add one member to the suppression list."""
    from campaign.suppression import SuppressionEntry, add_suppression_entries

    try:
        entry = SuppressionEntry(
            member_id, reason, source,
            _parse_date(starts_on, "--from").date() if starts_on else dt.date.today(),
            _parse_date(ends_on, "--until").date() if ends_on else None, scope, note,
        )  # fmt: skip
    except ValueError as exc:
        raise BookclubError(str(exc)) from None
    settings = load_settings()
    with open_engine(settings).begin() as connection:
        written = add_suppression_entries(connection, [entry])
    console.print(f"{member_id}: {'suppressed' if written else 'already on the list'} ({reason}, {source})")


@cli_errors
def suppress_import(path: Path = typer.Argument(..., help="CSV: member_id,reason,source · starts_on,ends_on,scope,note")) -> None:
    """Add the entries of a CSV file (all or nothing; an entry already there is left alone)."""
    from campaign.suppression import add_suppression_entries, read_suppression_file

    entries = read_suppression_file(path, dt.date.today())
    settings = load_settings()
    with open_engine(settings).begin() as connection:
        written = add_suppression_entries(connection, entries)
    console.print(f"{path}: {len(entries):,} row(s) read, {written:,} new, {len(entries) - written:,} already listed")


@cli_errors
def suppress_lift(
    member_id: str = typer.Argument(...),
    reason: str = typer.Option(..., "--reason"),
    on: str | None = typer.Option(None, "--on", help="the first day the member may be mailed again (default today)"),
) -> None:
    """End a member's open entries of a reason (they stay on record with their end date)."""
    from recsys.storage.members import member_keys
    from recsys.storage.suppressions import lift_suppression

    day = _parse_date(on, "--on").date() if on else dt.date.today()
    settings = load_settings()
    with open_engine(settings).begin() as connection:
        key = member_keys(connection, [member_id]).get(member_id)
        if key is None:
            raise BookclubError(f"unknown member id {member_id}")
        lifted = lift_suppression(connection, key, reason, day)
    console.print(f"{member_id}: {lifted} entr{'y' if lifted == 1 else 'ies'} of {reason} ended on {day}")


@cli_errors
def suppress_list(member_id: str | None = typer.Option(None, "--member")) -> None:
    """The suppression list, newest first."""
    from recsys.storage.members import member_keys
    from recsys.storage.suppressions import suppressions

    settings = load_settings()
    with open_engine(settings).connect() as connection:
        keys = None
        if member_id is not None:
            keys = list(member_keys(connection, [member_id]).values())
        entries = suppressions(connection, keys)
    table = Table(title=f"suppression list ({len(entries):,} entries)")
    for column in ("member", "reason", "scope", "from", "until", "source", "note"):
        table.add_column(column)
    for e in entries:
        table.add_row(e.member_id, e.reason, e.scope, str(e.starts_on), str(e.ends_on or "—"), e.source, e.note or "")
    console.print(table)


@cli_errors
def simulate(
    quarters: int = typer.Option(4, "--quarters", min=1, max=40, help="quarters to simulate"),
    members: int = typer.Option(20_000, "--members", min=100, help="members of the simulated club"),
    seed: int = typer.Option(0, "--seed"),
    budget_per_member: float | None = typer.Option(
        None, "--budget-per-member", min=0, help="the policy arm's budget per member and quarter (default: none)"
    ),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
) -> None:
    """A simulated year: the mailing decision against a mail-all control arm, quarter by quarter,
    scored on the simulated members' true incremental profit."""
    from campaign.year_sim import simulate_year

    settings = load_settings()
    costs: dict[str, float] = {str(kind): settings.campaign.costs(kind).total for kind in settings.mailing.options}
    rows = simulate_year(
        members=members, quarters=quarters, seed=seed, costs=costs, budget_per_member=budget_per_member,
        holdout_share=settings.campaign.holdout_share, learner=settings.mailing.uplift_learner,
    )  # fmt: skip
    if as_json:
        typer.echo(json.dumps({"costs": costs, "quarters": [r.to_json() for r in rows]}, ensure_ascii=False))
        return
    table = Table(title=f"a simulated year: {members:,} members, costs per piece "
                  + ", ".join(f"{k} {v:.3f}" for k, v in costs.items()))  # fmt: skip
    for column in ("q", "arm", "members", "pieces", "cost", "incr. margin", "profit", "per piece", "per member"):
        table.add_column(column, justify="right")
    table.add_column("how")
    for r in rows:
        table.add_row(
            str(r.quarter), r.arm, f"{r.members:,}", f"{r.total_pieces:,}", f"{r.cost:,.0f}",
            f"{r.incremental_margin:,.0f}", f"{r.profit:,.0f}", f"{r.profit_per_piece:,.3f}",
            f"{r.profit_per_member:,.3f}", r.how.split(" (")[0],
        )  # fmt: skip
    console.print(table)
    policy = [r for r in rows if r.arm == "policy" and r.quarter > 1]
    control = [r for r in rows if r.arm != "policy" and r.quarter > 1]
    if policy:
        per = sum(r.profit for r in policy) / sum(r.members for r in policy)
        base = sum(r.profit for r in control) / sum(r.members for r in control)
        pieces = sum(r.total_pieces for r in policy) / sum(r.members for r in policy)
        console.print(
            f"quarters 2–{quarters}: the decision {per:,.3f} profit per member with {pieces:.2f} pieces each; "
            f"the mail-all control {base:,.3f} with {sum(r.total_pieces for r in control) / sum(r.members for r in control):.2f}"
        )


@cli_errors
def evaluate_mailing(
    hillstrom: Path | None = typer.Option(None, "--hillstrom", help="the Hillstrom file (default: in the shared data)"),
    budget_per_member: float = typer.Option(0.40, "--budget-per-member", min=0, help="0 for no budget"),
    train_members: int = typer.Option(60_000, "--train-members", min=1000),
    eval_members: int = typer.Option(50_000, "--eval-members", min=1000),
    seed: int = typer.Option(0, "--seed"),
    halves: str | None = typer.Option(
        None, "--halves",
        help="Hillstrom: comma-separated split seeds, one random half learned and the other valued for each "
        "[default: --seed]",
    ),
    swap: bool = typer.Option(
        False, "--swap", help="Hillstrom: also learn on the second half and value on the first, both pooled"
    ),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
) -> None:
    """Issue 11's evaluation of the decision: the simulated club (against an oracle, mailing everyone,
    an RFM-cell rule and a response model) and Hillstrom (a policy learned on one random half, valued
    on the other by IPW and by doubly robust estimation)."""
    from campaign.hillstrom_eval import repeated_halves
    from campaign.policy import Constraints
    from campaign.policy_eval import evaluate_simulated

    try:
        seeds = [int(s) for s in halves.split(",")] if halves else [seed]
    except ValueError:
        raise typer.BadParameter(f"{halves!r}: comma-separated whole numbers, e.g. 0,1,2", param_hint="--halves") from None

    settings = load_settings()
    costs: dict[str, float] = {str(kind): settings.campaign.costs(kind).total for kind in settings.mailing.options}
    budget = budget_per_member * eval_members if budget_per_member else None
    sim = evaluate_simulated(
        train_members=train_members, eval_members=eval_members, seed=seed, costs=costs,
        learner=settings.mailing.uplift_learner, constraints=Constraints(budget=budget),
    )  # fmt: skip
    path = hillstrom or settings.shared_data_dir / "hillstrom" / "hillstrom.csv.gz"
    hill = (
        [(s, h) for o in ("spend", "visit") for s, h in zip(seeds, repeated_halves(path, seeds, outcome=o, swap=swap), strict=True)]
        if path.exists() else []
    )  # fmt: skip
    if as_json:
        typer.echo(json.dumps({"simulated": sim.to_json(), "hillstrom": [{"seed": s, **h.to_json()} for s, h in hill]}))
        return
    console.print(
        f"simulated club: {sim.members:,} members, learned from a randomized quarter of {sim.trained_on:,}; "
        f"budget {_number(budget, 0)}; the decision mails {sum(sim.policy_pieces.values()):,} pieces "
        f"({', '.join(f'{k} {v:,}' for k, v in sim.policy_pieces.items())}), profit {sim.policy_profit:,.0f}; "
        f"the oracle {sim.oracle_profit:,.0f}: captured {sim.capture:.1%} [{sim.capture_low:.1%}, {sim.capture_high:.1%}]"
    )
    table = Table(title="the decision against")
    for column in ("rule", "pieces", "profit", "decision's gain", "95 % interval"):
        table.add_column(column, justify="right")
    for c in sim.comparisons:
        table.add_row(c.name, f"{c.pieces:,}", f"{c.profit:,.0f}", f"{c.gain:+.1%}", f"[{c.low:+.1%}, {c.high:+.1%}]")
    console.print(table)
    for s, h in hill:
        for label, shown in (("one half", h), ("both directions pooled", h.swapped)):
            if shown is None:
                continue
            console.print(_hillstrom_table(s, label, shown))
    if not hill:
        console.print(f"Hillstrom: {path} not found, skipped")


def _hillstrom_table(seed: int, label: str, h: HillstromEvaluation) -> Table:
    """One Hillstrom evaluation: the policy against each rival, IPW and DR, with 95 % intervals."""
    table = Table(
        title=f"Hillstrom split {seed}, {label}: {h.outcome} per customer on {h.members_evaluated:,} customers not "
        f"learned from; the policy ({h.chosen}) {h.policy_value:.4f} IPW, {h.policy_value_dr:.4f} DR"
    )
    for column in ("against", "value IPW", "gain IPW", "95 % interval", "value DR", "gain DR", "95 % interval "):
        table.add_column(column, justify="right")
    dr = {c.name: c for c in h.comparisons_dr}
    for c in h.comparisons:
        d = dr.get(c.name)
        table.add_row(
            c.name, f"{h.values[c.name]:.4f}", f"{c.gain:+.1%}", f"[{c.low:+.1%}, {c.high:+.1%}]",
            f"{h.values_dr[c.name]:.4f}" if c.name in h.values_dr else "–",
            f"{d.gain:+.1%}" if d else "–", f"[{d.low:+.1%}, {d.high:+.1%}]" if d else "–",
        )  # fmt: skip
    return table


def print_mailing_decision(
    settings: Settings, quarter: str, in_home: dt.date | None, budget: float | None, max_pieces: int | None
) -> None:
    """The quarter's mailing by expected incremental profit (``bookclub campaigns plan``), its reasons,
    rules and what it saves against mailing everyone; the mail-depth curve as a table and an SVG chart
    (with the plan as JSON) beside the quarter's catalogs."""
    from campaign.mail_depth import depth_svg
    from campaign.mailing_plan import plan_mailing
    from catalog.paths import quarter_dir
    from catalog.period import Quarter
    from recsys.files import atomic_write_text
    from training.registry import ModelRegistry

    with open_engine(settings).connect() as connection:
        try:
            result = plan_mailing(connection, settings, quarter, Quarter.parse(quarter).start, budget=budget,
                                  max_pieces=max_pieces, in_home=in_home,
                                  models=ModelRegistry(settings.models_dir).model_source(connection))  # fmt: skip
        except BookclubError as exc:
            console.print(f"decision by expected profit: not possible yet — {exc}")
            return
    body = result.to_json()
    d = result.decision
    console.print(f"\n[bold]decision by expected incremental profit[/] ({d.solver}, {d.status}, gap to the LP bound "
                  f"{d.gap:.3%}; binding: {', '.join(body['binding']) or 'nothing'})")  # fmt: skip
    table = Table()
    for column in ("edition", "mailed", "held out", "cost per piece"):
        table.add_column(column, justify="right")
    for j, kind in enumerate(result.options):
        held = int(np.count_nonzero(d.held_out & (d.choice == j)))
        table.add_row(kind, f"{body['mailed'][kind]:,}", f"{held:,}", f"{result.cost[j]:.3f}")
    console.print(table)
    for kind, why in result.not_offered.items():
        console.print(f"  {kind} not offered: {why}")
    for reason, n in sorted(body["reasons"].items(), key=lambda kv: -kv[1]):
        console.print(f"  not mailed {n:,}: {reason}")
    for rule, n in body["rules"].items():
        console.print(f"  rule {rule}: blocked {n['pairs']:,} member×edition pair(s), {n['members']:,} member(s) entirely")
    p, e = body["planned"], body["everyone"]
    console.print(f"  planned: {p['pieces']:,.0f} pieces, cost {p['cost']:,.2f}, expected incremental margin "
                  f"{p['margin']:,.2f}, profit {p['profit']:,.2f}")  # fmt: skip
    if e:
        console.print(f"  a catalog to everyone: {e['pieces']:,.0f} pieces, cost {e['cost']:,.2f}, margin "
                      f"{e['margin']:,.2f}, profit {e['profit']:,.2f} — the plan saves {e['cost'] - p['cost']:,.2f} "
                      f"and earns {p['profit'] - e['profit']:+,.2f} more")  # fmt: skip
    curve = body["mail_depth"]
    depth = Table(title=f"mail depth: break-even at {curve['break_even_depth']:,} pieces, the plan {curve['chosen_depth']:,}")
    for column in ("pieces", "share", "marginal profit", "cumulative"):
        depth.add_column(column, justify="right")
    for row in curve["table"]:
        depth.add_row(f"{row['pieces']:,}", f"{row['share_of_audience']:.1%}", f"{row['marginal_profit']:,.3f}",
                      f"{row['cumulative_profit']:,.2f}")  # fmt: skip
    console.print(depth)
    folder = quarter_dir(settings, quarter)
    svg = atomic_write_text(folder / "mail-depth.svg", depth_svg(result.curve, title=f"{quarter}: mail depth"))
    plan_json = atomic_write_text(folder / "mailing-plan.json", json.dumps(body, ensure_ascii=False, indent=1))
    console.print(f"  chart {svg}; plan {plan_json}")
    for note in result.notes:
        console.print(f"  note: {note}")


def register(app: typer.Typer) -> None:
    app.command("value")(value)
    app.command("simulate")(simulate)
    app.command("evaluate-mailing")(evaluate_mailing)
    suppressions_app.command("add")(suppress_add)
    suppressions_app.command("import")(suppress_import)
    suppressions_app.command("lift")(suppress_lift)
    suppressions_app.command("list")(suppress_list)
    app.add_typer(suppressions_app, name="suppressions")
