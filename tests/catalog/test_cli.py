"""``bookclub segment`` and ``bookclub catalogs plan|render`` on the demo club."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from bookclub_cli.main import app
from recsys.storage import campaigns as campaigns_db
from recsys.storage import contacts as contacts_db
from recsys.storage import segments as segments_db
from tests.catalog.conftest import Club

QUARTER = "2027Q1"  # a quarter no other test uses: these commands write to the club's database

pytestmark = pytest.mark.slow


@pytest.fixture
def env(club: Club, monkeypatch: pytest.MonkeyPatch) -> Club:
    monkeypatch.setenv("BOOKCLUB_DATA_DIR", str(club.settings.data_dir))
    monkeypatch.setenv("BOOKCLUB_SEGMENTS__CLUSTERS", "3")
    monkeypatch.setenv("BOOKCLUB_CATALOG__TITLES_PER_CATALOG", "12")
    monkeypatch.setenv("BOOKCLUB_CATALOG__MIN_PER_SECTION", "2")
    return club


def test_segment_plan_render(env: Club, tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["segment", "--quarter", QUARTER])
    assert result.exit_code == 0, result.output
    assert "80/20 check" in result.output and "moved since 2026Q4" in result.output

    result = runner.invoke(app, ["catalogs", "plan", "--quarter", QUARTER])
    assert result.exit_code == 0, result.output
    assert result.output.count("12 titles") == 3

    # the campaign's contacts come before rendering: only a mailed member's edition is rendered
    result = runner.invoke(app, ["campaigns", "contacts", "--quarter", QUARTER])
    assert result.exit_code == 0, result.output
    with env.engine.connect() as connection:
        campaign = campaigns_db.campaign_by_name(connection, QUARTER)
        assert campaign is not None
        mailed = contacts_db.mailed_files(connection, campaign.id)
        member = next(m for m in segments_db.members_of_segment(connection, QUARTER, 1) if m in mailed)
    result = runner.invoke(
        app, ["catalogs", "render", "--quarter", QUARTER, "--segment", "1", "--members", member,
              "--out", str(tmp_path)],
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "segment-1.pdf").exists() and (tmp_path / "members" / f"{member}.pdf").exists()


def test_errors_are_one_line(env: Club) -> None:
    result = CliRunner().invoke(app, ["catalogs", "render", "--quarter", "2030Q1"])
    assert result.exit_code == 1 and "bookclub catalogs plan" in result.output
    result = CliRunner().invoke(app, ["segment", "--quarter", "2026-Q4"])
    assert result.exit_code == 1 and "not a quarter" in result.output
