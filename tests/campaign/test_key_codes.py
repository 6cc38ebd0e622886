"""Key codes on order lines: imported, checked against the campaigns' treatments, matched back directly."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from campaign.matchback import run_matchback
from recsys.errors import ImportRejectedError
from recsys.storage import campaigns as campaigns_db
from recsys.storage import matches as matches_db
from recsys.storage.imports import KINDS, ImportOptions, ImportSummary, csv_source, import_rows
from recsys.storage.schema import Purchase
from tests.campaign.club import insert_club, member_id

COLUMNS = ["line_id", "member_id", "title_id", "purchased_at", "quantity", "key_code"]


def _file(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        writer.writerows(rows)
    return path


def _import(engine: Engine, path: Path, **options: object) -> ImportSummary:
    spec = KINDS["purchases"]
    with engine.begin() as connection:
        return import_rows(
            connection, spec, csv_source(path, spec.required, spec.optional), ImportOptions(**options)  # type: ignore[arg-type]
        )


@pytest.fixture
def club(engine: Engine) -> Engine:
    with engine.begin() as connection:
        insert_club(connection, 10)
        campaign = campaigns_db.create_campaign(
            connection, name="2026Q4", quarter="2026Q4", in_home_date=dt.date(2026, 10, 5), response_days=30,
            late_days=0, holdout_share=0.05, universal_holdout_share=0.0, seed=1,
        )
        edition = campaigns_db.add_edition(
            connection, campaign.id, code="S0-catalog", name="catalog", kind="catalog", segment=0,
            in_home_date=dt.date(2026, 10, 5), costs=(1, 0, 0, 0),
        )
        campaigns_db.add_treatment(connection, campaign.id, name="S0", edition_id=edition.id, key_code="2026Q4-S0-C")
    return engine


ROWS = [
    ["L1", member_id(1), "T1", "2026-10-07 10:00:00", "1", "2026Q4-S0-C"],
    ["L2", member_id(2), "T1", "2026-10-08 10:00:00", "1", ""],
    ["L3", member_id(3), "T1", "2026-10-09 10:00:00", "1", "2026Q9-S0-X"],
]


def test_an_unknown_key_code_rejects_the_file(club: Engine, tmp_path: Path) -> None:
    rejects = tmp_path / "rejects.csv"
    with pytest.raises(ImportRejectedError, match="unknown key code '2026Q9-S0-X'"):
        _import(club, _file(tmp_path / "p.csv", ROWS), rejects_path=rejects)
    with club.connect() as connection:
        assert connection.execute(select(Purchase.line_id)).all() == []
    assert "unknown key code '2026Q9-S0-X'" in rejects.read_text()


def test_with_skip_invalid_the_line_lands_unattributed_and_the_rejects_file_says_why(
    club: Engine, tmp_path: Path
) -> None:
    rejects = tmp_path / "rejects.csv"
    summary = _import(club, _file(tmp_path / "p.csv", ROWS), rejects_path=rejects, skip_invalid=True)
    assert (summary.read, summary.inserted, summary.rejected, summary.cleared) == (3, 3, 0, 1)
    assert summary.adds_up()
    with club.connect() as connection:
        codes = {line: code for line, code in connection.execute(select(Purchase.line_id, Purchase.key_code))}
    assert codes == {"L1": "2026Q4-S0-C", "L2": None, "L3": None}
    lines = list(csv.DictReader(rejects.open(encoding="utf-8")))
    assert [(r["line"], r["field"], r["key_code"]) for r in lines] == [("4", "key_code", "2026Q9-S0-X")]
    assert lines[0]["reason"] == "unknown key code '2026Q9-S0-X' (on no campaign's order form); landed without it"
    # L1 is matched back directly by its key code, L3 (its code dropped) is not
    with club.begin() as connection:
        run_matchback(connection, "2026Q4")
        classes = matches_db.match_classes(connection, 1)
    assert classes == {"L1": "direct", "L2": "unattributed", "L3": "unattributed"}


def test_a_key_code_longer_than_32_characters_is_a_row_error(club: Engine, tmp_path: Path) -> None:
    rows = [["L9", member_id(1), "T1", "2026-10-07 10:00:00", "1", "K" * 33]]
    with pytest.raises(ImportRejectedError, match="key_code: longer than 32 characters"):
        _import(club, _file(tmp_path / "p.csv", rows))
