"""Matchback: every line of the window classified direct / inferred / unattributed, credits side by side."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import Connection, Engine, func, select

from campaign.matchback import run_matchback
from recsys.storage import campaigns as campaigns_db
from recsys.storage import contacts as contacts_db
from recsys.storage import matches as matches_db
from recsys.storage import members as members_db
from recsys.storage.schema import CampaignMatch, Purchase
from tests.campaign.club import add_lines, insert_club, member_id

D1 = dt.date(2026, 10, 5)
D2 = dt.date(2026, 10, 15)


def at(day: dt.date, days: int = 0, hour: int = 10) -> dt.datetime:
    return dt.datetime.combine(day + dt.timedelta(days=days), dt.time(hour))


def _campaign(connection: Connection, name: str, code_prefix: str) -> tuple[int, int, int]:
    campaign = campaigns_db.create_campaign(
        connection, name=name, quarter=None, in_home_date=D1, response_days=30, late_days=10,
        holdout_share=0.05, universal_holdout_share=0.0, seed=1,
    )
    catalog = campaigns_db.add_edition(
        connection, campaign.id, code="catalog", name="catalog", kind="catalog", segment=0,
        in_home_date=D1, costs=(1.0, 0.5, 0.8, 0.0),
    )
    postcard = campaigns_db.add_edition(
        connection, campaign.id, code="postcard", name="postcard", kind="postcard", segment=0,
        in_home_date=D2, costs=(0.1, 0.0, 0.3, 0.0),
    )
    t1 = campaigns_db.add_treatment(connection, campaign.id, name="catalog", edition_id=catalog.id, key_code=f"{code_prefix}1")
    t2 = campaigns_db.add_treatment(connection, campaign.id, name="postcard", edition_id=postcard.id, key_code=f"{code_prefix}2")
    return campaign.id, t1.id, t2.id


def _contact(connection: Connection, campaign_id: int, who: int, treatment: int, arm: str, day: dt.date) -> None:
    keys = members_db.member_keys(connection, [member_id(who)])
    contacts_db.write_contacts(
        connection,
        [(campaign_id, keys[member_id(who)], treatment, None, arm, None, 0, "core", 0.05, day,
          Decimal("1.5") if arm == "mailed" else Decimal(0), "v1", None, None, dt.datetime(2026, 9, 1))],
    )


@pytest.fixture
def scene(engine: Engine) -> tuple[Engine, int, int, int]:
    with engine.begin() as connection:
        insert_club(connection, 20)
        cid, t1, t2 = _campaign(connection, "Q", "Q-")
        _campaign(connection, "other", "OTHER-")
        _contact(connection, cid, 1, t1, "mailed", D1)   # A: catalog and postcard
        _contact(connection, cid, 1, t2, "mailed", D2)
        _contact(connection, cid, 2, t1, "mailed", D1)   # B: orders with the key code
        _contact(connection, cid, 3, t1, "holdout", D1)  # C: held out
        _contact(connection, cid, 4, t1, "mailed", D1)   # D: orders late
        _contact(connection, cid, 6, t1, "mailed", D1)   # F: orders before and long after
        _contact(connection, cid, 7, t1, "mailed", D1)   # G: another campaign's key code
        _contact(connection, cid, 8, t1, "mailed", D1)   # H: mailed and fetched the web edition
        _contact(connection, cid, 8, t1, "web", D1)
        _contact(connection, cid, 9, t1, "mailed", D1)   # I: a return
        add_lines(connection, [
            ("A-1", member_id(1), at(D2, 5), 30.0, None),
            ("B-1", member_id(2), at(D1, 3), 25.0, "Q-1"),
            ("C-1", member_id(3), at(D1, 4), 12.0, None),
            ("D-1", member_id(4), at(D1, 35), 40.0, None),
            ("E-1", member_id(5), at(D1, 2), 18.0, "Q-1"),   # E: not contacted, passed-on catalog
            ("F-1", member_id(6), at(D1, -1), 9.0, None),
            ("F-2", member_id(6), at(D1, 60), 9.0, None),
            ("G-1", member_id(7), at(D1, 6), 15.0, "OTHER-1"),
            ("H-1", member_id(8), at(D1, 1), 20.0, None),
            ("I-1", member_id(9), at(D1, 8, 0), 10.0, None),
            ("Z-1", member_id(10), at(D1, 0, 0), 11.0, None),  # not contacted, at midnight of the in-home date
        ])
        # I's return, in the window too
        keys = members_db.member_keys(connection, [member_id(9)])
        title = connection.execute(select(Purchase.title_key)).scalars().first()
        connection.execute(Purchase.__table__.insert().values(
            line_id="I-2", order_id="I-2", member_key=keys[member_id(9)], title_key=title, quantity=-1,
            unit_price=Decimal("10.00"), purchased_at=at(D1, 9), channel="mail",
        ))
    return engine, cid, t1, t2


def _rows(engine: Engine, campaign_id: int) -> dict[str, list[tuple[str, int | None, bool, float, float, float]]]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(
                Purchase.line_id, CampaignMatch.match, CampaignMatch.treatment_id, CampaignMatch.late,
                CampaignMatch.credit_last, CampaignMatch.credit_fractional, CampaignMatch.credit_all,
                CampaignMatch.days_after,
            )
            .join(Purchase, Purchase.id == CampaignMatch.purchase_id)
            .where(CampaignMatch.campaign_id == campaign_id)
            .order_by(Purchase.line_id, CampaignMatch.treatment_id, CampaignMatch.credit_last)
        )
        out: dict[str, list[tuple[str, int | None, bool, float, float, float]]] = {}
        for line_id, match, treatment, late, last, fractional, every, _days in rows:
            out.setdefault(line_id, []).append((match, treatment, bool(late), last, fractional, every))
        return out


def test_every_line_of_the_window_is_classified_with_its_credits(scene: tuple[Engine, int, int, int]) -> None:
    engine, cid, t1, t2 = scene
    with engine.begin() as connection:
        counts = run_matchback(connection, "Q")
    rows = _rows(engine, cid)
    # A: two candidate contacts; the postcard came last
    assert sorted(rows["A-1"]) == sorted([("inferred", t1, False, 0.0, 0.5, 1.0), ("inferred", t2, False, 1.0, 0.5, 1.0)])
    assert rows["B-1"] == [("direct", t1, False, 1.0, 1.0, 1.0)]
    assert rows["C-1"] == [("unattributed", None, False, 0.0, 0.0, 0.0)]  # the holdout was not contacted
    assert rows["D-1"] == [("inferred", t1, True, 1.0, 1.0, 1.0)]  # 35 days: in the late window
    assert rows["E-1"] == [("direct", t1, False, 1.0, 1.0, 1.0)]  # passed on: credited to the treatment
    assert "F-1" not in rows and "F-2" not in rows  # before the in-home date, after the late window
    assert rows["G-1"] == [("unattributed", None, False, 0.0, 0.0, 0.0)]  # another campaign's key code
    assert [r[0] for r in rows["H-1"]] == ["inferred", "inferred"]
    assert sorted(r[3] for r in rows["H-1"]) == [0.0, 1.0] and all(r[4] == 0.5 for r in rows["H-1"])
    assert rows["I-1"][0][0] == rows["I-2"][0][0] == "inferred"
    assert rows["Z-1"] == [("unattributed", None, False, 0.0, 0.0, 0.0)]
    assert (counts.direct, counts.inferred, counts.unattributed, counts.late) == (2, 5, 3, 1)
    with engine.connect() as connection:
        e_contact = connection.execute(
            select(CampaignMatch.contact_id).join(Purchase, Purchase.id == CampaignMatch.purchase_id)
            .where(Purchase.line_id == "E-1")
        ).scalar_one()
        totals = matches_db.match_totals(connection, cid)
        classes = matches_db.match_classes(connection, cid)
    assert e_contact is None
    assert totals.lines == {"direct": 2, "inferred": 5, "unattributed": 3}
    assert totals.revenue["direct"] == pytest.approx(43.0)
    assert totals.revenue["inferred"] == pytest.approx(30 + 40 + 20 + 10 - 10)
    assert totals.late_lines == 1
    # last and fractional credit add up to each line once; "all" counts A and H twice
    assert totals.credited[t1]["last"] + totals.credited[t2]["last"] == pytest.approx(43 + 90)
    assert totals.credited[t1]["fractional"] + totals.credited[t2]["fractional"] == pytest.approx(43 + 90)
    assert totals.credited[t1]["all"] + totals.credited[t2]["all"] == pytest.approx(43 + 90 + 30 + 20)
    assert set(classes) == {"A-1", "B-1", "C-1", "D-1", "E-1", "G-1", "H-1", "I-1", "I-2", "Z-1"}


def test_re_running_adds_only_the_lines_that_arrived_since(scene: tuple[Engine, int, int, int]) -> None:
    engine, cid, t1, _t2 = scene
    with engine.begin() as connection:
        run_matchback(connection, cid)
        before = connection.execute(
            select(CampaignMatch).where(CampaignMatch.campaign_id == cid).order_by(CampaignMatch.id)
        ).all()
    with engine.begin() as connection:
        again = run_matchback(connection, "Q")
        same = connection.execute(
            select(CampaignMatch).where(CampaignMatch.campaign_id == cid).order_by(CampaignMatch.id)
        ).all()
    assert again.lines == 0 and same == before
    with engine.begin() as connection:
        add_lines(connection, [("B-2", member_id(2), at(D1, 20), 14.0, None)])
        later = run_matchback(connection, "Q")
        total = connection.execute(
            select(func.count()).select_from(CampaignMatch).where(CampaignMatch.campaign_id == cid)
        ).scalar_one()
    assert (later.inferred, later.direct, later.unattributed) == (1, 0, 0)
    assert total == len(before) + 1
    assert _rows(engine, cid)["B-2"] == [("inferred", t1, False, 1.0, 1.0, 1.0)]


def test_an_unknown_campaign_is_an_error(engine: Engine) -> None:
    with engine.begin() as connection, pytest.raises(campaigns_db.UnknownCampaignError, match="no campaign"):
        run_matchback(connection, "2031Q1")


def test_the_windows_are_the_clubs_days(engine: Engine) -> None:
    """A club in Shanghai (UTC+8), in home 2026-10-05, 30 days + 10 late: an order at 07:00 there on
    the in-home day (23:00 UTC the day before) is in the window, day 0; one at 07:00 there the day
    the window ends is not; the report's outcomes count the same days. In UTC the first is outside."""
    with engine.begin() as connection:
        insert_club(connection, 6)
        cid, t1, _t2 = _campaign(connection, "Q", "Q-")
        for who in (1, 2):
            _contact(connection, cid, who, t1, "mailed", D1)
        _contact(connection, cid, 3, t1, "holdout", D1)
        add_lines(connection, [
            ("early", member_id(1), at(D1, -1, 23), 20.0, None),   # 07:00 on D1 in Shanghai
            ("keyed", member_id(2), at(D1, -1, 23), 12.0, "Q-1"),  # with the key code: day 0 there, −1 in UTC
            ("last", member_id(1), at(D1, 29, 15), 8.0, None),     # 23:00 on D1 + 29 there: in the response window
            ("after", member_id(2), at(D1, 29, 17), 9.0, None),    # 01:00 on D1 + 30 there: late
            ("gone", member_id(3), at(D1, 39, 17), 7.0, None),     # 01:00 on D1 + 40 there: outside
        ])  # fmt: skip
        counts = run_matchback(connection, "Q", "Asia/Shanghai")
        outcomes = matches_db.contact_outcomes(connection, cid, "Asia/Shanghai")
        utc = matches_db.contact_outcomes(connection, cid)
        rows = dict(connection.execute(
            select(Purchase.line_id, CampaignMatch.days_after).select_from(CampaignMatch)
            .join(Purchase, Purchase.id == CampaignMatch.purchase_id)
        ).all())  # fmt: skip
        late = set(connection.scalars(
            select(Purchase.line_id).select_from(CampaignMatch)
            .join(Purchase, Purchase.id == CampaignMatch.purchase_id).where(CampaignMatch.late)
        ))  # fmt: skip
    assert rows == {"early": 0, "keyed": 0, "last": 29, "after": 30}  # "gone" is past the window
    assert late == {"after"} and (counts.direct, counts.inferred, counts.late) == (1, 3, 1)
    revenue = dict(zip(outcomes.contact_id.tolist(), outcomes.revenue.tolist(), strict=True))
    assert sorted(revenue.values()) == [12.0, 28.0]  # member 1: early + last; member 2: keyed (after is late)
    assert sorted(utc.revenue.tolist()) == [8.0, 9.0]  # in UTC days the in-home day's orders fall before it
