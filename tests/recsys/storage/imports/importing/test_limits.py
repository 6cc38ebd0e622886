"""What a row may hold (issue 9, findings 4 and 7): dates inside sane bounds, and text that
both databases can store — a NUL is a row error on SQLite and PostgreSQL alike."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from recsys.errors import ImportRejectedError
from recsys.settings import ImportSettings
from recsys.storage.imports import KINDS, ImportOptions, ImportSummary, csv_source, import_rows
from recsys.storage.imports.fields import Limits
from recsys.storage.schema import Member, Purchase, Title
from tests.recsys.storage.imports.test_formats import club as club  # the fixture, re-exported
from tests.recsys.storage.imports.test_formats import purchases, write_csv

NOW = dt.datetime.now(dt.UTC).replace(tzinfo=None)


def run(engine: Engine, kind: str, path: Path, **options: object) -> ImportSummary:
    spec = KINDS[kind]
    with engine.begin() as connection:
        return import_rows(connection, spec, csv_source(path, spec.required, spec.optional),
                           ImportOptions(**options))  # type: ignore[arg-type]


def count(engine: Engine, model: type) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(model)).scalar_one())


def rejects(path: Path) -> dict[str, tuple[str, str]]:
    return {r["line"]: (r["field"], r["reason"]) for r in csv.DictReader(path.open(encoding="utf-8"))}


def test_purchases_in_the_future_or_before_the_floor_are_row_errors(club: Engine, tmp_path: Path) -> None:
    soon = (NOW + dt.timedelta(hours=1)).isoformat(" ", timespec="seconds")
    rows = purchases(8, {
        1: {"purchased_at": "9999-12-31"},
        2: {"purchased_at": "2099-06-01 10:00:00"},
        3: {"purchased_at": "1850-01-01"},
        4: {"purchased_at": "9999-12-31T23:00:00-05:00"},  # past year 9999 in UTC
        5: {"purchased_at": soon},  # inside the tolerance: a clock slightly ahead
    })
    path = write_csv(tmp_path / "p.csv", rows)
    with pytest.raises(ImportRejectedError, match=r"p\.csv:3: purchased_at: '9999-12-31' is in the future"):
        run(club, "purchases", path)
    assert count(club, Purchase) == 0
    summary = run(club, "purchases", path, skip_invalid=True, rejects_path=tmp_path / "r.csv")
    assert (summary.read, summary.inserted, summary.rejected) == (8, 4, 4) and summary.adds_up()
    bad = rejects(tmp_path / "r.csv")
    assert set(bad) == {"3", "4", "5", "6"}
    assert all(field == "purchased_at" for field, _ in bad.values())
    assert "in the future" in bad["4"][1] and "before 1900-01-01 (imports.earliest_date)" in bad["5"][1]


def test_the_bounds_come_from_the_settings(club: Engine, tmp_path: Path) -> None:
    rows = purchases(2, {0: {"purchased_at": "1950-01-01"}, 1: {"purchased_at": NOW.isoformat(" ")}})
    path = write_csv(tmp_path / "p.csv", rows)
    strict = Limits.of(ImportSettings(earliest_date=dt.date(2000, 1, 1)), now=NOW - dt.timedelta(days=2))
    with pytest.raises(ImportRejectedError) as info:
        run(club, "purchases", path, limits=strict)
    assert "p.csv:2: purchased_at: '1950-01-01' is before 2000-01-01" in str(info.value)
    assert "p.csv:3: purchased_at:" in str(info.value) and "in the future" in str(info.value)
    assert run(club, "purchases", path).inserted == 2  # the defaults take both


def test_join_dates_and_publication_dates(engine: Engine, tmp_path: Path) -> None:
    ahead = (NOW.date() + dt.timedelta(days=200)).isoformat()
    members = write_csv(tmp_path / "m.csv", [
        {"member_id": "M1", "name": "a", "joined_on": "2999-01-01"},
        {"member_id": "M2", "name": "b", "joined_on": "1919-11-19"},  # Shakespeare and Company's years
        {"member_id": "M3", "name": "c", "joined_on": "1899-12-31"},
    ])
    summary = run(engine, "members", members, skip_invalid=True, rejects_path=tmp_path / "rm.csv")
    assert (summary.inserted, summary.rejected) == (1, 2)
    assert {k: v[0] for k, v in rejects(tmp_path / "rm.csv").items()} == {"2": "joined_on", "4": "joined_on"}
    titles = write_csv(tmp_path / "t.csv", [
        {"title_id": "T1", "title": "a", "published_on": "2999-12-31"},
        {"title_id": "T2", "title": "b", "published_on": ahead},  # announced: up to a year ahead
        {"title_id": "T3", "title": "c", "published_on": "1485-01-01"},  # Malory, in the S&Co books
        {"title_id": "T4", "title": "d", "published_on": "1400-01-01"},
    ])
    summary = run(engine, "titles", titles, skip_invalid=True, rejects_path=tmp_path / "rt.csv")
    assert (summary.inserted, summary.rejected) == (2, 2)
    bad = rejects(tmp_path / "rt.csv")
    assert set(bad) == {"2", "5"} and "imports.published_ahead_days" in bad["2"][1]
    assert "before 1450-01-01 (imports.earliest_published)" in bad["5"][1]


@pytest.mark.parametrize(
    ("kind", "row", "field"),
    [
        ("members", {"member_id": "M\x009", "name": "x"}, "member_id"),
        ("members", {"member_id": "M9", "name": "Ann\x00Lee"}, "name"),
        ("titles", {"title_id": "T\x009", "title": "x"}, "title_id"),
        ("titles", {"title_id": "T9", "title": "x", "categories": "I\x0024"}, "categories"),
        ("categories", {"code": "Z\x00", "name": "x"}, "code"),
        ("category-mappings", {"scheme": "s", "label": "l\x00", "category_code": "I"}, "label"),
    ],
)
def test_a_nul_is_a_row_error_on_both_databases(
    club: Engine, tmp_path: Path, kind: str, row: dict[str, str], field: str
) -> None:
    path = tmp_path / "nul.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, list(row))
        writer.writeheader()
        writer.writerow(row)
    with pytest.raises(ImportRejectedError, match=rf"nul\.csv:2: {field}: contains a NUL character"):
        run(club, kind, path)
    summary = run(club, kind, path, skip_invalid=True)
    assert (summary.read, summary.rejected, summary.inserted) == (1, 1, 0)


def test_a_nul_in_a_purchase_line_is_a_row_error(club: Engine, tmp_path: Path) -> None:
    rows = purchases(4, {1: {"line_id": "O0-\x002"}, 2: {"order_id": "O\x001"}, 3: {"member_id": "M\x001"}})
    path = write_csv(tmp_path / "p.csv", rows)
    summary = run(club, "purchases", path, skip_invalid=True, rejects_path=tmp_path / "r.csv")
    assert (summary.inserted, summary.rejected) == (1, 3)
    assert {k: v[0] for k, v in rejects(tmp_path / "r.csv").items()} == {
        "3": "line_id", "4": "order_id", "5": "member_id"}
    assert count(club, Member) == 2 and count(club, Title) == 3
