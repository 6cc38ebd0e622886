"""What the renderer asks of the campaign: a mailed contact (and its key code) per mailed edition;
the on-demand web edition recorded as a web contact."""

from __future__ import annotations

import datetime as dt

import pytest
import segno
from sqlalchemy import Engine, func, select

from campaign.contacts import PrintFiles, record_web_edition, write_quarter_contacts
from catalog.member_edition import MissingContactError, edition_key_codes, member_qr, qr_payload
from recsys.settings import CampaignSettings
from recsys.storage.schema import CampaignContact, Member
from tests.campaign.club import QUARTER, insert_club

FILES = PrintFiles(member=lambda m: f"{QUARTER}/members/{m}.pdf", segment=lambda s: f"{QUARTER}/segment-{s}.pdf")


def _arms(engine: Engine) -> dict[str, tuple[str, int]]:
    with engine.connect() as connection:
        return {
            m: (arm, segment)
            for m, arm, segment in connection.execute(
                select(Member.member_id, CampaignContact.arm, CampaignContact.segment)
                .join(Member, Member.id == CampaignContact.member_key)
            )
        }


@pytest.fixture
def mailed(engine: Engine) -> Engine:
    with engine.begin() as connection:
        insert_club(connection, 300)
        write_quarter_contacts(
            connection, CampaignSettings(holdout_share=0.3), QUARTER, dt.date(2026, 10, 1), files=FILES
        )
    return engine


def test_a_mailed_edition_gets_its_key_code_and_others_are_refused(mailed: Engine) -> None:
    arms = _arms(mailed)
    sent = sorted(m for m, (arm, seg) in arms.items() if arm == "mailed" and seg == 1)[:3]
    held = sorted(m for m, (arm, seg) in arms.items() if arm == "holdout" and seg == 1)[:1]
    suppressed = sorted(m for m, (arm, seg) in arms.items() if arm == "suppressed" and seg == 1)[:1]
    assert sent and held and suppressed
    with mailed.connect() as connection:
        assert edition_key_codes(connection, QUARTER, 1, sent) == dict.fromkeys(sent, "2026Q4-S1-C")
        with pytest.raises(MissingContactError, match=rf"{held[0]} \(holdout\)"):
            edition_key_codes(connection, QUARTER, 1, [*sent, *held])
        with pytest.raises(MissingContactError, match=rf"{suppressed[0]} \(suppressed\)"):
            edition_key_codes(connection, QUARTER, 1, suppressed)
        with pytest.raises(MissingContactError, match="no campaign for 2027Q1"):
            edition_key_codes(connection, "2027Q1", 1, sent)
        # the web edition is not a mailing: it carries the segment's key code whatever the arm
        assert edition_key_codes(connection, QUARTER, 1, held, web=True) == {held[0]: "2026Q4-S1-C"}
        assert edition_key_codes(connection, "2027Q1", 1, held, web=True) == {}


def test_the_qr_code_carries_the_member_number_and_the_key_code() -> None:
    assert qr_payload("M0000042", "2026Q4-S1-C") == "M0000042 2026Q4-S1-C"
    assert qr_payload("M0000042") == "M0000042"
    code = member_qr("M0000042", "2026Q4-S1-C")
    assert code.matrix == segno.make_qr("M0000042 2026Q4-S1-C", error="m").matrix
    assert code.matrix != member_qr("M0000042").matrix


def test_the_web_edition_is_recorded_once_as_a_web_contact(mailed: Engine) -> None:
    arms = _arms(mailed)
    held = sorted(m for m, (arm, _s) in arms.items() if arm == "holdout")[0]
    with mailed.begin() as connection:
        assert record_web_edition(connection, QUARTER, held, f"{QUARTER}/members/{held}.pdf") is True
        assert record_web_edition(connection, QUARTER, held, f"{QUARTER}/members/{held}.pdf") is False
        assert record_web_edition(connection, "2027Q1", held, None) is False
        assert record_web_edition(connection, QUARTER, "NOBODY", None) is False
    with mailed.connect() as connection:
        rows = connection.execute(
            select(CampaignContact.arm, CampaignContact.file, CampaignContact.cost, CampaignContact.segment)
            .join(Member, Member.id == CampaignContact.member_key)
            .where(Member.member_id == held)
            .order_by(CampaignContact.id)
        ).all()
        webs = connection.execute(
            select(func.count()).select_from(CampaignContact).where(CampaignContact.arm == "web")
        ).scalar_one()
    assert [r[0] for r in rows] == ["holdout", "web"]  # the holdout contact stays: intent to treat
    assert rows[1][1] == f"{QUARTER}/members/{held}.pdf" and float(rows[1][2]) == 0.0
    assert rows[1][3] == rows[0][3]
    assert webs == 1
