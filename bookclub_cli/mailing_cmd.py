"""``bookclub value`` (member lifetime value) and ``bookclub simulate`` (a simulated year of mailings)."""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
from pathlib import Path

import typer
from rich.table import Table

from bookclub_cli.common import cli_errors, console, load_settings, open_engine
from recsys.errors import BookclubError
from recsys.files import atomic_writer


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


def register(app: typer.Typer) -> None:
    app.command("value")(value)
