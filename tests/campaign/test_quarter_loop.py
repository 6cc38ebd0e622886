"""`run_quarter` closes the loop on a demo club: contacts before rendering, editions only for the
mailed, simulated responses, matchback, a report; files and contacts reconcile; re-running
changes nothing that was written."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import func, select

from catalog.paths import quarter_dir
from catalog.quarter import run_quarter
from demo.generate import DemoSpec
from recsys.settings import CatalogSettings, SegmentSettings, Settings, TrainingSettings
from recsys.storage.db import make_engine
from recsys.storage.schema import CampaignContact, CampaignMatch, Member, MemberSegment, Purchase
from tests.conftest import SHARED_DATA, shared_data

pytestmark = pytest.mark.slow  # trains a model and renders PDFs


def test_the_quarter_mails_renders_simulates_and_reports(tmp_path: Path) -> None:
    shared_data("clc", "clc_level1_2.csv")
    settings = Settings(
        data_dir=tmp_path / "var",
        shared_data_dir=SHARED_DATA,
        training=TrainingSettings(factors=8, iterations=5, threads=1),
        segments=SegmentSettings(clusters=3, kmeans_init=2),
        catalog=CatalogSettings(titles_per_catalog=16, min_per_section=2, max_per_section=8, picks_per_member=4),
    )
    spec = DemoSpec(members=800, titles=150, years=2, seed=3, end_date=dt.date.today() - dt.timedelta(days=1))
    result = run_quarter(settings, "2026Q4", members_for_editions=4, demo=spec, train=True)
    campaign = result.campaign
    assert campaign is not None and campaign.report is not None and campaign.simulated is not None

    engine = make_engine(settings.db_url)
    with engine.connect() as connection:
        segmented = connection.execute(
            select(func.count()).select_from(MemberSegment).where(MemberSegment.quarter == "2026Q4")
        ).scalar_one()
        arms = dict(connection.execute(select(CampaignContact.arm, func.count()).group_by(CampaignContact.arm)).all())
        mailed_files = connection.execute(
            select(Member.member_id, CampaignContact.file)
            .join(Member, Member.id == CampaignContact.member_key)
            .where(CampaignContact.arm == "mailed")
        ).all()
        simulated = connection.execute(
            select(func.count()).select_from(Purchase).where(Purchase.line_id.like("SIM-2026Q4-%"))
        ).scalar_one()
        matched = connection.execute(select(func.count()).select_from(CampaignMatch)).scalar_one()
    # a contact per segmented member, written in the arms the campaign decided
    assert sum(arms.values()) == segmented and arms["mailed"] > 0 and arms["holdout"] > 0
    assert campaign.contacts.campaign.in_home_date == dt.date.today()
    # editions only for the mailed members whose piece is their own edition
    personal = {m for m, f in mailed_files if f and "/members/" in f}
    assert set(result.editions) == personal and len(personal) == 4
    on_disk = {p.stem for p in (quarter_dir(settings, "2026Q4") / "members").glob("*.pdf")}
    assert on_disk == personal
    assert campaign.reconciliation.ok and not campaign.reconciliation.missing
    # the loop: responses written, matched back, reported with the truth beside it
    assert simulated == campaign.simulated.lines > 0 and matched >= simulated
    report = campaign.report
    assert len(report.arms) == len(result.plans) and not report.mismatch
    assert set(campaign.simulated.truth) == {a.treatment.id for a in report.arms}
    assert report.matchback.lines.get("direct", 0) > 0  # mailed responders wrote the key code

    # re-running the quarter writes no contact, no response and no match again, and says the same
    again = run_quarter(settings, "2026Q4", members_for_editions=4, demo=spec, train=False)
    assert again.campaign is not None and again.campaign.report is not None and again.campaign.simulated is not None
    assert again.campaign.contacts.written == 0 and again.campaign.simulated.lines == 0
    assert again.campaign.matched is not None and again.campaign.matched.lines == 0
    assert again.campaign.simulated.truth == campaign.simulated.truth
    assert again.campaign.report.to_json()["arms"] == report.to_json()["arms"]
    assert set(again.editions) == personal
    engine.dispose()
