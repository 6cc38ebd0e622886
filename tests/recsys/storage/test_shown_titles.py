"""contact_titles: what each contact's edition showed — written replace-on-rerender, read per
member over their last N editions (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from decimal import Decimal

import pytest
from sqlalchemy import Connection, Engine, func, insert, select

from recsys.errors import BookclubError
from recsys.storage import campaigns as campaigns_db
from recsys.storage import shown_titles as shown_db
from recsys.storage.schema import CampaignContact, ContactTitle, Member, Title
from recsys.storage.shown_titles import ShownTitle

MEMBERS = ("M1", "M2", "M3")
QUARTERS = (("2026Q1", dt.date(2026, 1, 10)), ("2026Q2", dt.date(2026, 4, 10)), ("2026Q3", dt.date(2026, 7, 10)),
            ("2026Q4", dt.date(2026, 10, 10)))


def _club(connection: Connection) -> dict[str, dict[str, int]]:
    """Three members, twelve titles, four quarterly campaigns; M1 and M2 mailed in each (M2's
    contacts without an in-home date of their own), M3 held out. quarter → member → contact id."""
    connection.execute(insert(Member), [{"member_id": m, "name": m, "status": "active"} for m in MEMBERS])
    connection.execute(
        insert(Title), [{"title_id": f"T{i:02d}", "title": f"T{i:02d}", "price": Decimal("10"), "in_stock": True}
                        for i in range(12)]
    )
    keys = {m: k for m, k in connection.execute(select(Member.member_id, Member.id))}
    out: dict[str, dict[str, int]] = {}
    for quarter, in_home in QUARTERS:
        campaign = campaigns_db.create_campaign(
            connection, name=quarter, quarter=quarter, in_home_date=in_home, response_days=90, late_days=0,
            holdout_share=0.1, universal_holdout_share=0.0, seed=1,
        )
        treatment = campaigns_db.add_treatment(connection, campaign.id, name="catalog", edition_id=None, key_code=None)
        for member, arm, day in (("M1", "mailed", in_home), ("M2", "mailed", None), ("M3", "holdout", in_home)):
            connection.execute(insert(CampaignContact).values(
                campaign_id=campaign.id, member_key=keys[member], treatment_id=treatment.id, arm=arm,
                in_home_date=day, cost=Decimal("0"), created_at=dt.datetime(2026, 1, 1),
            ))
        contacts = shown_db.edition_contacts(connection, campaign.id, list(MEMBERS))
        out[quarter] = {m: c.contact_id for m, c in contacts.items()}
    return out


def _rows(connection: Connection, quarter: str, member: str, contact_id: int, titles: list[str]) -> list[ShownTitle]:
    campaign = campaigns_db.campaign_by_name(connection, quarter)
    assert campaign is not None
    key = connection.execute(select(Member.id).where(Member.member_id == member)).scalar_one()
    return [
        ShownTitle(contact_id, campaign.id, key, t, "main" if i == 0 else "pick", i) for i, t in enumerate(titles)
    ]


def test_edition_contacts_are_the_mailed_ones_with_their_in_home_date(engine: Engine) -> None:
    with engine.begin() as connection:
        contacts = _club(connection)
        campaign = campaigns_db.campaign_by_name(connection, "2026Q3")
        assert campaign is not None
        found = shown_db.edition_contacts(connection, campaign.id, list(MEMBERS))
    assert set(found) == {"M1", "M2"}  # M3 was held out
    assert found["M1"].contact_id == contacts["2026Q3"]["M1"]
    assert found["M1"].in_home_date == found["M2"].in_home_date == dt.date(2026, 7, 10)  # M2: the campaign's


def test_rows_are_written_and_replaced_when_the_edition_is_rendered_again(engine: Engine) -> None:
    with engine.begin() as connection:
        contacts = _club(connection)
        c1, c2 = contacts["2026Q4"]["M1"], contacts["2026Q4"]["M2"]
        first = _rows(connection, "2026Q4", "M1", c1, ["T00", "T01", "T02"]) + _rows(
            connection, "2026Q4", "M2", c2, ["T05", "T06"]
        )
        assert shown_db.replace_shown_titles(connection, [c1, c2], first) == 5
        again = _rows(connection, "2026Q4", "M1", c1, ["T03", "T00"])
        assert shown_db.replace_shown_titles(connection, [c1], again) == 2
        campaign = campaigns_db.campaign_by_name(connection, "2026Q4")
        assert campaign is not None
        shown = shown_db.shown_titles(connection, campaign.id)
        count = connection.execute(select(func.count()).select_from(ContactTitle)).scalar_one()
        mains = connection.execute(
            select(ContactTitle.contact_id, Title.title_id).join(Title, Title.id == ContactTitle.title_key)
            .where(ContactTitle.role == "main", ContactTitle.position == 0)
        ).all()
    assert count == 4  # M1's three rows replaced by two; M2's two kept
    assert [(s.title_id, s.role, s.position) for s in shown["M1"]] == [("T03", "main", 0), ("T00", "pick", 1)]
    assert [s.title_id for s in shown["M2"]] == ["T05", "T06"]
    assert sorted(mains) == sorted([(c1, "T03"), (c2, "T05")])  # the negative option's contract: one main each


def test_bad_rows_are_refused_whole(engine: Engine) -> None:
    with engine.begin() as connection:
        contacts = _club(connection)
        c1 = contacts["2026Q4"]["M1"]
        rows = _rows(connection, "2026Q4", "M1", c1, ["T00", "T01"])
        with pytest.raises(ValueError, match="2 main titles"):
            shown_db.replace_shown_titles(connection, [c1], [rows[0], replace(rows[1], role="main")])
        with pytest.raises(ValueError, match="shown twice"):
            shown_db.replace_shown_titles(connection, [c1], [*rows, replace(rows[1], position=2)])
        with pytest.raises(ValueError, match="not among those replaced"):
            shown_db.replace_shown_titles(connection, [c1 + 1000], rows)
        with pytest.raises(BookclubError, match="unknown title"):
            shown_db.replace_shown_titles(connection, [c1], [replace(rows[0], title_id="NOPE")])


def test_recent_titles_are_those_of_the_last_n_editions_before_the_campaign(engine: Engine) -> None:
    with engine.begin() as connection:
        contacts = _club(connection)
        shown = {
            "2026Q1": (["T00", "T01"], ["T08"]),
            "2026Q2": (["T02", "T03"], ["T09"]),
            "2026Q3": (["T04", "T05"], []),  # M2 not rendered in Q3
            "2026Q4": (["T06", "T07"], ["T10"]),
        }
        for quarter, (m1, m2) in shown.items():
            rows = _rows(connection, quarter, "M1", contacts[quarter]["M1"], m1)
            if m2:
                rows += _rows(connection, quarter, "M2", contacts[quarter]["M2"], m2)
            shown_db.replace_shown_titles(connection, contacts[quarter].values(), rows)
        q4 = campaigns_db.campaign_by_name(connection, "2026Q4")
        q2 = campaigns_db.campaign_by_name(connection, "2026Q2")
        assert q4 is not None and q2 is not None
        last_two = shown_db.recent_shown_titles(connection, list(MEMBERS), 2, before_campaign_id=q4.id)
        last_one = shown_db.recent_shown_titles(connection, ["M1"], 1, before_campaign_id=q4.id)
        before_q2 = shown_db.recent_shown_titles(connection, list(MEMBERS), 5, before_campaign_id=q2.id)
        everything = shown_db.recent_shown_titles(connection, ["M1", "M2"], 10)
        none = shown_db.recent_shown_titles(connection, ["M1"], 0, before_campaign_id=q4.id)
    # the campaign being rendered never counts; M2's last two editions are Q2 and Q1 (none in Q3)
    assert last_two == {"M1": {"T02", "T03", "T04", "T05"}, "M2": {"T08", "T09"}}
    assert last_one == {"M1": {"T04", "T05"}}
    assert before_q2 == {"M1": {"T00", "T01"}, "M2": {"T08"}}
    assert everything["M1"] == {f"T{i:02d}" for i in range(8)} and everything["M2"] == {"T08", "T09", "T10"}
    assert none == {}
