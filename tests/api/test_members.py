"""GET /v1/members/{id}: the profile, and personal data by scope."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.api.conftest import bearer, with_club


@pytest.fixture
def club_engine(engine: Engine) -> Engine:
    """This module runs on SQLite and PostgreSQL."""
    return with_club(engine)


def test_profile_with_read_key_has_no_personal_data(client: TestClient) -> None:
    r = client.get("/v1/members/M01")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["member_id"] == "M01"
    assert body["value_tier"] == "core"  # latest quarter 2026Q1, not 2025Q4's 'regular'
    assert body["segment"] == {"quarter": "2026Q1", "segment": 1, "name": "当代小说读者"}
    assert body["top_categories"][0]["code"] == "I247"
    assert body["top_categories"][0]["units"] == 5
    assert body["declared_categories"] == ["I247"]
    counts = body["purchases"]
    assert counts["lines"] == 6 and counts["orders"] == 6 and counts["units_bought"] == 6
    assert counts["units_returned"] == 0
    assert counts["spent"] == 28 + 26 + 98 + 59 + 45 + 22
    assert body["personal"] is None
    assert "张三" not in r.text and "路" not in r.text


def test_profile_with_admin_key_has_name_and_address(client: TestClient, keys: dict[str, str]) -> None:
    body = client.get("/v1/members/M01", headers=bearer(keys["admin"])).json()
    assert body["personal"]["name"] == "张三"
    assert body["personal"]["address"] == "张三路 1 号"


def test_profile_of_member_without_history_or_segment(client: TestClient) -> None:
    body = client.get("/v1/members/M06").json()
    assert body["value_tier"] is None and body["segment"] is None
    assert body["top_categories"] == []
    assert body["purchases"]["lines"] == 0 and body["purchases"]["last_purchase_at"] is None


def test_segment_comes_from_the_latest_quarter_only(client: TestClient) -> None:
    body = client.get("/v1/members/M03").json()  # in 2025Q4, not in 2026Q1
    assert body["value_tier"] is None and body["segment"] is None


def test_returns_are_counted(client: TestClient) -> None:
    counts = client.get("/v1/members/M02").json()["purchases"]
    assert counts["units_returned"] == 1 and counts["units_bought"] == 6


def test_unknown_member_profile_is_404(client: TestClient) -> None:
    r = client.get("/v1/members/M404")
    assert r.status_code == 404 and "M404" in r.json()["message"]


def _planned_campaign(engine: Engine) -> None:
    """The 2026Q1 campaign as the mailing decision writes it: M01 mailed a catalog, M02 held out of a
    postcard, M04 not mailed (no expected profit), M05 suppressed; an older campaign mailed M02."""
    import datetime as dt

    from recsys.storage import campaigns as campaigns_db
    from recsys.storage import contacts as contacts_db
    from recsys.storage import members as members_db

    with engine.begin() as connection:
        keys = members_db.member_keys(connection, ["M01", "M02", "M04", "M05"])
        now = dt.datetime(2026, 1, 1)
        for name, day in (("2025Q4", dt.date(2025, 10, 1)), ("2026Q1", dt.date(2026, 1, 1))):
            campaign = campaigns_db.create_campaign(
                connection, name=name, quarter=name, in_home_date=day, response_days=90, late_days=30,
                holdout_share=0.1, universal_holdout_share=0.0, seed=1,
            )  # fmt: skip
            arms = {}
            for kind in ("catalog", "postcard"):
                edition = campaigns_db.add_edition(
                    connection, campaign.id, code=f"S1-{kind}", name=kind, kind=kind, segment=1, in_home_date=day,
                    costs=(1.0, 0.5, 0.8, 0.2) if kind == "catalog" else (0.1, 0.0, 0.3, 0.0),
                )  # fmt: skip
                treatment = campaigns_db.add_treatment(
                    connection, campaign.id, name=f"S1 {kind}", edition_id=edition.id,
                    key_code=f"{name}-S1-{kind[0].upper()}",
                )  # fmt: skip
                arms[kind] = (edition.id, treatment.id)
            specs: list[tuple[str, str, str, str | None, float, tuple[float, float, float]]] = (
                [("M02", "mailed", "catalog", None, 3.0, (0.5, 1.0, 10.0))] if name == "2025Q4" else [
                    ("M01", "mailed", "catalog", None, 1.75, (0.93, 3.25, 96.5)),
                    ("M02", "holdout", "postcard", "random", 0.4, (0.8, 2.0, 40.0)),
                    ("M04", "not_mailed", "catalog", "no expected profit", -1.25, (0.2, 0.1, 2.0)),
                    ("M05", "suppressed", "catalog", "suppressed: deceased", 0.5, (0.9, 1.0, 20.0)),
                ]
            )  # fmt: skip
            rows = [
                (campaign.id, keys[member], arms[kind][1], arms[kind][0], arm, reason, 1, "core", 0.1, day,
                 2.5 if arm == "mailed" else 0, None, None, None, now, profit, *value)
                for member, arm, kind, reason, profit, value in specs
            ]  # fmt: skip
            contacts_db.write_contacts(connection, rows, contacts_db.PLANNED_CONTACT_COLUMNS)


def test_profile_shows_value_and_the_edition_planned_this_quarter(club_engine: Engine, client: TestClient) -> None:
    _planned_campaign(club_engine)
    body = client.get("/v1/members/M01").json()
    assert body["value"] == {
        "p_alive": 0.93, "expected_purchases": 3.25, "expected_value": 96.5, "horizon_days": 365,
        "as_of": "2026-01-01", "campaign": "2026Q1",
    }  # fmt: skip
    assert body["mailing"] == {
        "campaign": "2026Q1", "quarter": "2026Q1", "in_home_date": "2026-01-01", "arm": "mailed",
        "edition_kind": "catalog", "edition": "S1-catalog", "key_code": "2026Q1-S1-C", "reason": None,
        "expected_profit": 1.75, "planned_by_profit": True,
    }  # fmt: skip
    # the latest campaign, not 2025Q4's mailed catalog; a holdout keeps the edition they would have had
    held = client.get("/v1/members/M02").json()["mailing"]
    assert (held["campaign"], held["arm"], held["edition_kind"], held["key_code"]) == ("2026Q1", "holdout", "postcard", None)
    left = client.get("/v1/members/M04").json()
    assert left["mailing"]["arm"] == "not_mailed" and left["mailing"]["reason"] == "no expected profit"
    assert left["mailing"]["edition_kind"] is None and left["mailing"]["expected_profit"] == -1.25
    assert left["value"]["p_alive"] == 0.2
    gone = client.get("/v1/members/M05").json()["mailing"]
    assert gone["arm"] == "suppressed" and gone["reason"] == "suppressed: deceased"
    nothing = client.get("/v1/members/M06").json()
    assert nothing["value"] is None and nothing["mailing"] is None


def test_auto_ships_are_counted_apart_and_leave_the_top_categories(club_engine: Engine, client: TestClient) -> None:
    """The negative option sent M01 two history titles (two quarters' main selections); they kept one and sent one back: the counts
    include them and say which part they are, and their taste is still what they ordered."""
    from decimal import Decimal

    from sqlalchemy import select

    from recsys.storage.bulk import bulk_insert
    from recsys.storage.schema import Member, Title
    from recsys.storage.selections import AutoshipOrder, write_autoships

    with club_engine.begin() as connection:
        member = connection.execute(select(Member.id).where(Member.member_id == "M01")).scalar_one()
        titles = dict(connection.execute(select(Title.title_id, Title.id).where(Title.title_id.in_(["T08", "T09"]))).all())
        before = client.get("/v1/members/M01").json()
        for campaign, title in ((7, "T08"), (8, "T09")):  # one main selection a campaign
            write_autoships(connection, campaign, [AutoshipOrder(member, titles[title], Decimal("30.00"),
                                                                 dt.date(2026, 2, 1))])  # fmt: skip
        bulk_insert(
            connection, "purchases",
            ["line_id", "order_id", "member_key", "title_key", "quantity", "unit_price", "purchased_at", "channel"],
            [("back-T09", "back-T09", member, titles["T09"], -1, Decimal("30.00"), dt.datetime(2026, 2, 20), "mail")],
        )
    body = client.get("/v1/members/M01").json()
    counts, was = body["purchases"], before["purchases"]
    assert before["purchases"]["autoship"] is None
    assert counts["lines"] == was["lines"] + 3 and counts["units_bought"] == was["units_bought"] + 2
    assert counts["units_returned"] == was["units_returned"] + 1 and counts["spent"] == was["spent"] + 30
    assert counts["autoship"] == {"lines": 3, "units_shipped": 2, "units_returned": 1, "spent": 30.0}
    assert body["top_categories"] == before["top_categories"]  # no K2 from the history titles sent unasked
