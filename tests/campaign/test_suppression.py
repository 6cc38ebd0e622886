"""The suppression list and the rules' inputs from the database (SQLite and PostgreSQL), and the CLI."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from campaign.contacts import PrintFiles, write_quarter_contacts
from campaign.rules import ContactRules, FrequencyCap, MailOption, Spacing, eligibility
from campaign.suppression import (
    SuppressionEntry,
    add_suppression_entries,
    read_suppression_file,
    rule_inputs,
    rules_from_settings,
)
from recsys.errors import BookclubError
from recsys.settings import CampaignSettings, MailingSettings, Settings
from recsys.storage import contacts as contacts_db
from recsys.storage import members as members_db
from recsys.storage.db import make_engine, upgrade
from recsys.storage.suppressions import lift_suppression, suppression_arrays, suppressions
from tests.campaign.club import QUARTER, insert_club, member_id

FILES = PrintFiles(member=lambda m: f"{QUARTER}/members/{m}.pdf", segment=lambda s: f"{QUARTER}/segment-{s}.pdf")
TODAY = dt.date(2026, 11, 20)


def test_entries_are_written_once_lifted_and_read_back(engine: Engine) -> None:
    with engine.begin() as connection:
        insert_club(connection, 20)
        entries = [
            SuppressionEntry(member_id(1), "deceased", "registry", dt.date(2026, 1, 1)),
            SuppressionEntry(member_id(2), "moved", "returned piece", dt.date(2026, 9, 1), dt.date(2026, 12, 1)),
            SuppressionEntry(member_id(3), "do_not_mail", "member's call", dt.date(2026, 5, 1), note="phoned"),
        ]
        assert add_suppression_entries(connection, entries) == 3
        assert add_suppression_entries(connection, entries) == 0  # the same entries again: nothing new
        with pytest.raises(BookclubError, match="unknown member"):
            add_suppression_entries(connection, [SuppressionEntry("nobody", "moved", "x", TODAY)])
        key3 = members_db.member_keys(connection, [member_id(3)])[member_id(3)]
        assert lift_suppression(connection, key3, "do_not_mail", TODAY) == 1
    with engine.connect() as connection:
        listed = {e.member_id: e for e in suppressions(connection)}
        arrays = suppression_arrays(connection)
    assert listed[member_id(1)].scope == "all" and listed[member_id(2)].scope == "post"
    assert listed[member_id(3)].ends_on == TODAY and listed[member_id(3)].note == "phoned"
    assert sorted(arrays.reason) == ["deceased", "do_not_mail", "moved"]
    with pytest.raises(ValueError, match="not after"):
        SuppressionEntry("M", "moved", "x", TODAY, TODAY)
    with pytest.raises(ValueError, match="reason"):
        SuppressionEntry("M", "emigrated", "x", TODAY)


def test_rule_inputs_read_the_pieces_sent_and_the_list_for_an_audience(engine: Engine) -> None:
    in_home = dt.date(2026, 10, 5)
    with engine.begin() as connection:
        insert_club(connection, 400)
        result = write_quarter_contacts(connection, CampaignSettings(), QUARTER, dt.date(2026, 10, 1),
                                        files=FILES, in_home=in_home)  # fmt: skip
        add_suppression_entries(connection, [
            SuppressionEntry(member_id(10), "bad_address", "returned piece", dt.date(2026, 10, 20)),
            SuppressionEntry(member_id(11), "do_not_email", "unsubscribe link", dt.date(2026, 10, 1)),
        ])  # fmt: skip
    mailed = {i for i in range(400) if result.plan.arm[i] == "mailed"}
    with engine.connect() as connection:
        audience = contacts_db.quarter_audience(connection, QUARTER)
        # the next mailing, 20 days after the catalogs: postcards must wait 21 days after a catalog
        rules = ContactRules(caps=(FrequencyCap(2, 60, frozenset({"catalog", "postcard"})),),
                             spacing=(Spacing("postcard", "catalog", 21),))  # fmt: skip
        history, supp = rule_inputs(connection, audience.member_key, dt.date(2026, 10, 25), rules)
        again, _ = rule_inputs(connection, audience.member_key, dt.date(2026, 10, 25), rules,
                               exclude_campaign=result.campaign.id)  # fmt: skip
    assert len(history) == len(mailed) and len(again) == 0
    assert {audience.member_id[m] for m in history.member} == {member_id(i) for i in mailed}
    assert set(history.kind) == {"catalog"} and set(np.unique(history.day)) == {in_home.toordinal()}
    options = (MailOption("catalog"), MailOption("postcard"), MailOption("email"))
    result_ok = eligibility(len(audience), options, dt.date(2026, 10, 25), rules, history, supp)
    row = {m: i for i, m in enumerate(audience.member_id)}
    for i in range(400):
        got = result_ok.allowed[row[member_id(i)]].tolist()
        expect_postcard = i not in mailed and i != 10
        expect_email = i != 11
        assert got == [i != 10, expect_postcard, expect_email], i


def test_rules_from_settings_and_bad_rules() -> None:
    rules = rules_from_settings(MailingSettings())
    assert [c.pieces for c in rules.caps] == [2, 8] and rules.spacing[0].edition == "postcard"
    bad = MailingSettings.model_validate({"quiet_periods": [{"start": "12-40", "end": "01-05"}]})
    with pytest.raises(BookclubError, match="quiet period"):
        rules_from_settings(bad)


def test_suppression_file_is_all_or_nothing_and_the_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bookclub_cli.main import app

    data = tmp_path / "var"
    engine = make_engine(Settings(data_dir=data).db_url)
    upgrade(engine)
    with engine.begin() as connection:
        insert_club(connection, 10)
    monkeypatch.setenv("BOOKCLUB_DATA_DIR", str(data))
    bad = tmp_path / "bad.csv"
    bad.write_text("member_id,reason,source,starts_on\nM000001,moved,post office,2026-01-01\n"
                   "M000002,emigrated,post office,2026-01-01\nM000003,moved,,2026-01-01\n", encoding="utf-8")
    with pytest.raises(BookclubError) as caught:
        read_suppression_file(bad, TODAY)
    assert "bad.csv:3: reason 'emigrated'" in str(caught.value) and "bad.csv:4: source is empty" in str(caught.value)
    runner = CliRunner()
    assert runner.invoke(app, ["suppressions", "import", str(bad)]).exit_code == 1
    good = tmp_path / "good.csv"
    good.write_text("member_id,reason,source,starts_on,ends_on\nM000001,moved,post office,2026-01-01,2026-03-01\n"
                    "M000002,deceased,registry,,\n", encoding="utf-8")
    out = runner.invoke(app, ["suppressions", "import", str(good)])
    assert out.exit_code == 0 and "2 new" in out.stdout
    out = runner.invoke(app, ["suppressions", "add", "M000004", "--reason", "do_not_mail", "--source", "letter"])
    assert out.exit_code == 0, out.output
    out = runner.invoke(app, ["suppressions", "lift", "M000004", "--reason", "do_not_mail", "--on", "2099-01-01"])
    assert out.exit_code == 0 and "1 entry" in out.stdout
    listed = runner.invoke(app, ["suppressions", "list"])
    assert listed.exit_code == 0 and "M000002" in listed.stdout and "deceased" in listed.stdout
    with engine.connect() as connection:
        assert len(suppressions(connection)) == 3
    engine.dispose()
