"""Member editions and the campaign: the key code on the order form, the contact a render needs,
the web edition recorded as a web contact."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from api import errors
from api.auth import Principal, require_editions
from api.deps import get_engine, get_model, get_settings
from api.routes import catalogs
from campaign.reconcile import reconcile_files
from catalog.member_edition import MissingContactError
from catalog.paths import quarter_dir
from catalog.production import render_member_editions
from recsys.settings import Settings
from recsys.storage import campaigns as campaigns_db
from recsys.storage import members as members_db
from recsys.storage.schema import Campaign, CampaignContact, Member
from tests.catalog.conftest import QUARTER, Club

pytestmark = pytest.mark.slow  # renders PDFs


def _text(path: Path) -> str:
    if not shutil.which("pdftotext"):
        pytest.fail("pdftotext (poppler-utils) is needed: ./run.sh installs it")
    return subprocess.run(["pdftotext", "-f", "1", "-l", "3", str(path), "-"], capture_output=True, text=True,
                          check=True).stdout


def _mailed(engine: Engine, n: int) -> list[tuple[str, int]]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(Member.member_id, CampaignContact.segment)
            .join(Member, Member.id == CampaignContact.member_key)
            .join(Campaign, Campaign.id == CampaignContact.campaign_id)
            .where(CampaignContact.arm == "mailed", Campaign.name == QUARTER)
            .order_by(Member.member_id)
        ).all()
    return [(m, int(s)) for m, s in rows[:n]]


def test_the_order_form_prints_the_mailings_key_code(club: Club, tmp_path: Path) -> None:
    (member_id, segment), = _mailed(club.engine, 1)
    with club.engine.connect() as connection:
        paths = render_member_editions(
            connection, club.model, club.settings, QUARTER, club.plans, [member_id], out_dir=tmp_path
        )
    text = _text(paths[member_id])
    assert "Key code" in text and f"{QUARTER}-S{segment}-C" in text


def test_a_member_without_a_mailed_contact_is_not_rendered(club: Club, tmp_path: Path) -> None:
    with club.engine.begin() as connection:
        campaign = campaigns_db.campaign_by_name(connection, QUARTER)
        assert campaign is not None
        mailed = _mailed(club.engine, 1)[0][0]
        key = members_db.member_keys(connection, [mailed])[mailed]
        connection.execute(
            CampaignContact.__table__.update()
            .where(CampaignContact.member_key == key, CampaignContact.campaign_id == campaign.id)
            .values(arm="holdout", file=None)
        )
    try:
        with club.engine.connect() as connection, pytest.raises(MissingContactError, match=rf"{mailed} \(holdout\)"):
            render_member_editions(connection, club.model, club.settings, QUARTER, club.plans, [mailed], out_dir=tmp_path)
        assert not (tmp_path / "members" / f"{mailed}.pdf").exists()
    finally:
        with club.engine.begin() as connection:
            connection.execute(
                CampaignContact.__table__.update()
                .where(CampaignContact.member_key == key, CampaignContact.campaign_id == campaign.id)
                .values(arm="mailed", file=f"{QUARTER}/members/{mailed}.pdf")
            )


@pytest.fixture
def web_client(club: Club, tmp_path: Path) -> Iterator[tuple[TestClient, Settings]]:
    settings = club.settings.model_copy(update={"data_dir": tmp_path / "var"})
    settings.models_dir.mkdir(parents=True)
    app = FastAPI()
    errors.install(app)
    app.include_router(catalogs.router)

    async def settings_dep() -> Settings:
        return settings

    async def printer() -> Principal:
        return Principal(scope="editions", prefix="printer")

    async def model() -> object:
        return club.model

    async def engine_dep() -> Engine:
        return club.engine

    app.dependency_overrides.update(
        {get_settings: settings_dep, require_editions: printer, get_model: model, get_engine: engine_dep}
    )
    app.state.settings = settings
    with TestClient(app) as client:
        yield client, settings


def test_the_web_edition_is_a_web_contact_and_reconciles(club: Club, web_client: tuple[TestClient, Settings]) -> None:
    client, settings = web_client
    (member_id, _segment), = _mailed(club.engine, 1)
    for _ in range(2):  # rendered once, served twice: one web contact
        response = client.get(f"/v1/members/{member_id}/catalog.pdf", params={"quarter": QUARTER})
        assert response.status_code == 200, response.text
    with club.engine.connect() as connection:
        campaign = campaigns_db.campaign_by_name(connection, QUARTER)
        assert campaign is not None
        arms = connection.execute(
            select(CampaignContact.arm, CampaignContact.file)
            .join(Member, Member.id == CampaignContact.member_key)
            .where(Member.member_id == member_id, CampaignContact.campaign_id == campaign.id)
            .order_by(CampaignContact.id)
        ).all()
        result = reconcile_files(
            connection, campaign, settings.catalogs_dir, quarter_dir(settings, QUARTER) / "members"
        )
    assert [a for a, _f in arms] == ["mailed", "web"]
    assert arms[1][1] == f"{QUARTER}/members/{member_id}.pdf"
    assert result.editions_on_disk == 1 and not result.orphans  # the one PDF has its contact
    assert len(result.missing) == result.mailed - 1  # the other mailed editions were never rendered here
    # a PDF nobody was sent is an orphan
    stray = quarter_dir(settings, QUARTER) / "members" / "STRAY.pdf"
    stray.write_bytes(b"%PDF-1.7")
    with club.engine.connect() as connection:
        again = reconcile_files(connection, campaign, settings.catalogs_dir, stray.parent)
    assert again.orphans == [f"{QUARTER}/members/STRAY.pdf"] and not again.ok
