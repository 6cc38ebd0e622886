"""``bookclub campaigns plan|contacts|list|matchback|report|reconcile`` on a small club."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from bookclub_cli.main import app
from recsys.settings import Settings
from recsys.storage.db import make_engine, upgrade
from recsys.storage.schema import CampaignContact
from tests.campaign.club import QUARTER, insert_club


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("BOOKCLUB_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.delenv("BOOKCLUB_DATABASE_URL", raising=False)
    settings = Settings(data_dir=tmp_path / "var")
    engine = make_engine(settings.db_url)
    upgrade(engine)
    with engine.begin() as connection:
        insert_club(connection, 400)
    engine.dispose()
    return settings


def _contacts(settings: Settings) -> int:
    engine = make_engine(settings.db_url)
    with engine.connect() as connection:
        n = int(connection.execute(select(func.count()).select_from(CampaignContact)).scalar_one())
    engine.dispose()
    return n


def test_plan_writes_nothing_and_contacts_write_once(env: Settings) -> None:
    runner = CliRunner()
    planned = runner.invoke(app, ["campaigns", "plan", "--quarter", QUARTER, "--in-home", "2026-10-05"])
    assert planned.exit_code == 0, planned.output
    assert "nothing written yet" in planned.output and "in home 2026-10-05" in planned.output
    assert _contacts(env) == 0
    written = runner.invoke(app, ["campaigns", "contacts", "--quarter", QUARTER, "--in-home", "2026-10-05"])
    assert written.exit_code == 0, written.output
    assert "400 contact(s) written" in written.output and "suppressed" in written.output
    assert _contacts(env) == 400
    again = runner.invoke(app, ["campaigns", "contacts", "--quarter", QUARTER])
    assert again.exit_code == 0 and "0 contact(s) written" in again.output
    stored = runner.invoke(app, ["campaigns", "plan", "--quarter", QUARTER])
    assert "the contacts written for this campaign" in " ".join(stored.output.split())
    listed = runner.invoke(app, ["campaigns", "list"])
    assert listed.exit_code == 0 and QUARTER in listed.output
    # no PDF was rendered: every mailed contact's file is missing
    reconciled = runner.invoke(app, ["campaigns", "reconcile", "--campaign", QUARTER])
    assert reconciled.exit_code == 1 and "mailed contact file(s) missing" in reconciled.output
    report = runner.invoke(app, ["campaigns", "report", "--campaign", QUARTER])
    assert report.exit_code == 0, report.output
    assert "matchback: not run yet" in report.output
    matched = runner.invoke(app, ["campaigns", "matchback", "--campaign", QUARTER])
    assert matched.exit_code == 0 and "0 new line(s)" in matched.output
    as_json = json.loads(runner.invoke(app, ["campaigns", "report", "--campaign", "1", "--json"]).output)
    assert as_json["campaign"]["name"] == QUARTER and len(as_json["arms"]) == 4


def test_an_unknown_campaign_is_a_one_line_error(env: Settings) -> None:
    result = CliRunner().invoke(app, ["campaigns", "report", "--campaign", "2031Q1"])
    assert result.exit_code == 1 and "no campaign '2031Q1'" in result.output


def test_the_preview_is_what_contacts_writes_suppressions_and_rules_included(env: Settings) -> None:
    """``campaigns plan`` before anything is written shows the plan ``campaigns contacts`` then
    writes (one function, ``campaign.contacts.mail_everyone_plan``): a member on the suppression
    list is not counted as mailed in the preview."""
    import datetime as dt

    from campaign.contacts import mail_everyone_plan
    from campaign.holdouts import campaign_seed
    from recsys.storage import campaigns as campaigns_db
    from recsys.storage import contacts as contacts_db
    from tests.campaign.club import member_id

    runner = CliRunner()
    moved = runner.invoke(app, ["suppressions", "add", member_id(7), "--reason", "moved", "--source", "returned piece",
                                "--from", "2026-01-01"])  # fmt: skip
    assert moved.exit_code == 0, moved.output
    engine = make_engine(env.db_url)
    with engine.connect() as connection:
        audience = contacts_db.quarter_audience(connection, QUARTER)
        preview = mail_everyone_plan(connection, env, audience, campaign_seed(QUARTER), dt.date(2026, 10, 5))
    arm_of = dict(zip(audience.member_id, preview.arm, strict=True))
    assert arm_of[member_id(7)] in ("suppressed", "not_mailed")
    written = runner.invoke(app, ["campaigns", "contacts", "--quarter", QUARTER, "--in-home", "2026-10-05"])
    assert written.exit_code == 0, written.output
    with engine.connect() as connection:
        campaign = campaigns_db.campaign_by_name(connection, QUARTER)
        assert campaign is not None
        stored = contacts_db.contact_counts_by_segment(connection, campaign.id)
    engine.dispose()
    assert stored == preview.counts()
