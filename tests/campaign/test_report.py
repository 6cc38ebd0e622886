"""The campaign report: the JSON shape, the difference of means, the sample-ratio alarm, repeatability."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest
from sqlalchemy import Engine, delete, select

from campaign.contacts import PrintFiles, write_quarter_contacts
from campaign.matchback import run_matchback
from campaign.report import campaign_report
from campaign.report_text import report_text
from recsys.settings import CampaignSettings
from recsys.storage.schema import CampaignContact, Member, Purchase
from tests.campaign.club import QUARTER, add_lines, insert_club

FILES = PrintFiles(member=lambda m: f"{QUARTER}/members/{m}.pdf", segment=lambda s: f"{QUARTER}/segment-{s}.pdf")
IN_HOME = dt.date(2026, 10, 5)
SETTINGS = CampaignSettings(holdout_share=0.25, universal_holdout_share=0.0, response_days=30, late_days=0,
                            margin_rate=0.4, resamples=500)


def _club(engine: Engine, members: int = 1_600) -> dict[str, tuple[str, int]]:
    """Contacts written; mailed members buy more. Returns member → (arm, segment)."""
    rng = np.random.default_rng(5)
    with engine.begin() as connection:
        insert_club(connection, members)
        write_quarter_contacts(connection, SETTINGS, QUARTER, dt.date(2026, 10, 1), files=FILES, in_home=IN_HOME)
        arms = {
            m: (arm, int(segment))
            for m, arm, segment in connection.execute(
                select(Member.member_id, CampaignContact.arm, CampaignContact.segment)
                .join(Member, Member.id == CampaignContact.member_key)
            )
        }
        lines = []
        for m, (arm, _segment) in sorted(arms.items()):
            rate = 0.3 if arm == "mailed" else 0.15
            for n in range(int(rng.random() < rate) * (1 + rng.poisson(0.5))):
                day = dt.datetime.combine(IN_HOME, dt.time(9)) + dt.timedelta(days=int(rng.integers(0, 30)))
                lines.append((f"{m}-{n}", m, day, float(rng.integers(10, 60)), None))
            # outside the response window: never counted
            lines.append((f"{m}-old", m, dt.datetime.combine(IN_HOME, dt.time(9)) - dt.timedelta(days=3), 99.0, None))
        add_lines(connection, lines)
        run_matchback(connection, QUARTER)
    return arms


def _expected(engine: Engine, arms: dict[str, tuple[str, int]], segment: int) -> dict[str, tuple[float, float]]:
    """Plain means per arm from the lines themselves: (mailed, holdout) per outcome."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(Member.member_id).select_from(Member)
        ).scalars().all()
        spend: dict[str, list[float]] = {}
        for member, price, at in connection.execute(
            select(Member.member_id, Purchase.unit_price, Purchase.purchased_at).join(Member, Member.id == Purchase.member_key)
        ):
            if IN_HOME <= at.date() < IN_HOME + dt.timedelta(days=30):
                spend.setdefault(member, []).append(float(price))
    out: dict[str, tuple[float, float]] = {}
    groups = {
        arm: [m for m in rows if arms.get(m) == (arm, segment)] for arm in ("mailed", "holdout")
    }
    for name, fn in (
        ("response", lambda m: float(bool(spend.get(m)))),
        ("orders", lambda m: float(len(spend.get(m, [])))),
        ("revenue", lambda m: sum(spend.get(m, []))),
        ("margin", lambda m: 0.4 * sum(spend.get(m, []))),
    ):
        out[name] = (
            float(np.mean([fn(m) for m in groups["mailed"]])),
            float(np.mean([fn(m) for m in groups["holdout"]])),
        )
    return out


def test_the_report_is_the_difference_of_means_per_arm_in_the_issues_shape(engine: Engine) -> None:
    arms = _club(engine)
    with engine.connect() as connection:
        report = campaign_report(connection, QUARTER, SETTINGS)
    payload = json.loads(json.dumps(report.to_json()))
    assert payload["sample_ratio"]["mismatch"] is False
    assert payload["campaign"]["name"] == QUARTER
    assert len(payload["arms"]) == 4
    for arm in payload["arms"]:
        assert {"arm", "members", "response", "orders", "revenue", "margin"} <= set(arm)
        segment = arm["segment"]
        expected = _expected(engine, arms, segment)
        mailed = sum(1 for a, s in arms.values() if (a, s) == ("mailed", segment))
        held = sum(1 for a, s in arms.values() if (a, s) == ("holdout", segment))
        assert arm["members"] == {"mailed": mailed, "holdout": held}
        assert arm["key_code"] == f"{QUARTER}-S{segment}-C"
        for outcome in ("response", "orders", "revenue", "margin"):
            o = arm[outcome]
            assert set(o) >= {"mailed", "holdout", "incremental", "low", "high"}
            assert o["mailed"] == pytest.approx(expected[outcome][0])
            assert o["holdout"] == pytest.approx(expected[outcome][1])
            assert o["incremental"] == pytest.approx(expected[outcome][0] - expected[outcome][1])
            assert o["low"] < o["incremental"] < o["high"]
        assert arm["response"]["method"] == "newcombe" and arm["revenue"]["method"].startswith("bootstrap")
        assert arm["net_profit_per_piece"]["estimate"] == pytest.approx(
            arm["margin"]["incremental"] - SETTINGS.catalog.total
        )
        # matchback credits every mailed member's window revenue (no other campaign): more than the increment
        assert arm["matchback_credited"]["last"] == pytest.approx(arm["revenue_mailed_total"])
    assert payload["total"]["members"]["mailed"] == sum(1 for a, _s in arms.values() if a == "mailed")
    assert [m["model_version"] for m in payload["model_versions"]] == ["v-test"]
    assert payload["matchback"]["lines"]["inferred"] > 0
    text = report_text(report)
    assert "sample ratio: 4 check(s), arms are the sizes they should be" in text
    assert f"{QUARTER}-S0-C" in text


def test_the_report_is_the_same_every_time(engine: Engine) -> None:
    _club(engine, 800)
    with engine.connect() as connection:
        first = campaign_report(connection, QUARTER, SETTINGS).to_json()
        second = campaign_report(connection, 1, SETTINGS).to_json()
    assert first == second


def test_arms_of_the_wrong_size_are_reported_at_the_top(engine: Engine) -> None:
    _club(engine)
    with engine.begin() as connection:
        lost = connection.execute(
            select(CampaignContact.id).where(CampaignContact.arm == "holdout", CampaignContact.segment == 1)
        ).scalars().all()
        connection.execute(delete(CampaignContact).where(CampaignContact.id.in_(lost[: len(lost) // 2])))
        report = campaign_report(connection, QUARTER, SETTINGS)
    payload = report.to_json()
    assert payload["sample_ratio"]["mismatch"] is True
    assert payload["warnings"][0].startswith("SAMPLE RATIO MISMATCH in S1")
    flagged = [c["arm"] for c in payload["sample_ratio"]["checks"] if c["mismatch"]]
    assert flagged == ["S1 segment 1"]
    assert report_text(report).splitlines()[1].startswith("!! SAMPLE RATIO MISMATCH in S1")
