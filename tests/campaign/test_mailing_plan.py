"""A quarter's mailing planned from the club's own earlier campaign (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import numpy as np
import pytest
from sqlalchemy import Engine

from campaign.contacts import PrintFiles, write_quarter_contacts
from campaign.mailing_plan import plan_mailing
from campaign.suppression import SuppressionEntry, add_suppression_entries
from recsys.errors import BookclubError
from recsys.settings import CampaignSettings, MailingSettings, Settings
from recsys.storage import plans as plans_db
from tests.campaign.club import add_lines, insert_club, member_id, segment_with_rfm

PAST, NOW = "2026Q3", "2026Q4"
IN_HOME = dt.date(2026, 7, 1)
N = 3_000
FILES = PrintFiles(member=lambda m: f"{PAST}/members/{m}.pdf", segment=lambda s: f"{PAST}/segment-{s}.pdf")


def persuadable(i: int) -> bool:
    """Members the catalog moves: segment 1 (i % 4 == 1); the rest buy as often mailed or not."""
    return i % 4 == 1


def build(engine: Engine, settings: Settings) -> dict[str, str]:
    rng = np.random.default_rng(5)
    with engine.begin() as connection:
        insert_club(connection, N, quarter=PAST)
        segment_with_rfm(connection, N, NOW)
        for s in range(4):
            plans_db.store_plan(connection, NOW, s, "v", f"h{s}", "{}")
        result = write_quarter_contacts(connection, settings.campaign, PAST, IN_HOME, files=FILES, in_home=IN_HOME)
        lines = []
        for i in range(N):
            mid = member_id(i)
            for j in range(2 + i % 3):  # a history before the campaign (repeat buyers for the value model)
                lines.append((f"H{i}-{j}", mid, dt.datetime(2025, 1, 5) + dt.timedelta(days=int(rng.integers(0, 500))),
                              20.0, None))  # fmt: skip
            mailed = result.plan.arm[i] == "mailed"
            p = 0.10 + (0.45 if mailed and persuadable(i) else 0.0)
            if rng.random() < p:
                lines.append((f"R{i}", mid, dt.datetime(2026, 7, 10) + dt.timedelta(days=int(rng.integers(0, 60))),
                              30.0, None))  # fmt: skip
        add_lines(connection, lines)
        add_suppression_entries(connection, [SuppressionEntry(member_id(9), "deceased", "registry", dt.date(2026, 1, 1))])
    return {mid: arm for mid, arm in zip(result.plan.audience.member_id, result.plan.arm, strict=True)}


def test_plan_learns_from_the_holdout_and_mails_whom_the_catalog_moves(engine: Engine, tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(data_dir=tmp_path, campaign=CampaignSettings(holdout_share=0.2, universal_holdout_share=0.0))
    build(engine, settings)
    with engine.connect() as connection:
        plan = plan_mailing(connection, settings, NOW, dt.date(2026, 10, 1), budget=1_500.0)
    assert plan.options == ("catalog",)
    assert set(plan.not_offered) == {"postcard", "email"} and "no randomized history" in plan.not_offered["email"]
    assert plan.learned_from[PAST] > 2_000
    d = plan.decision
    # the budget binds: 600 catalogs at 2.50 planned (held-out members' would-be pieces included)
    assert d.cost <= 1_500.0 + 1e-6 and d.pieces()["catalog"] == 600 and d.info["binding"] == ["budget"]
    arms = {plan.member_id[i]: a for i, (_k, a, _e, _r) in enumerate(plan.member_arms())}
    mailed = np.array([arms[member_id(i)] == "mailed" for i in range(N)])
    moved = np.array([persuadable(i) for i in range(N)])
    assert mailed[moved].mean() > 0.5 and mailed[~moved].mean() < 0.05
    # reasons for everyone left out: suppression, the member's record, the holdout, the budget or no profit
    reasons = d.reasons()
    assert reasons["suppressed: deceased"] == 1 and reasons["member closed"] > 0 and reasons["holdout"] > 0
    assert set(reasons) <= {"suppressed: deceased", "member closed", "no postal address", "holdout", "budget",
                            "no expected profit"}  # fmt: skip
    assert arms[member_id(9)] == "suppressed"
    # fewer pieces than mailing everyone, for more expected incremental margin net of cost
    planned, everyone = plan.planned, plan.everyone
    assert planned["pieces"] < everyone["pieces"] and planned["profit"] > everyone["profit"]
    body = plan.to_json()
    assert body["mail_depth"]["break_even_depth"] > 0 and body["rules"]["suppressed: deceased"]["members"] == 1


def test_plan_needs_a_randomized_history(sqlite_engine: Engine, tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(data_dir=tmp_path, mailing=MailingSettings())
    with sqlite_engine.begin() as connection:
        insert_club(connection, 50, quarter=NOW)
    with sqlite_engine.connect() as connection, pytest.raises(BookclubError, match="no earlier campaign"):
        plan_mailing(connection, settings, NOW, dt.date(2026, 10, 1))
    with sqlite_engine.connect() as connection, pytest.raises(BookclubError, match="no segments"):
        plan_mailing(connection, settings, "2027Q1", dt.date(2027, 1, 1))


def test_bookclub_campaigns_plan_with_a_budget(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    from bookclub_cli.main import app
    from recsys.storage.db import make_engine, upgrade

    data = tmp_path / "var"
    settings = Settings(data_dir=data, campaign=CampaignSettings(holdout_share=0.2, universal_holdout_share=0.0))
    engine = make_engine(settings.db_url)
    upgrade(engine)
    build(engine, settings)
    engine.dispose()
    monkeypatch.setenv("BOOKCLUB_DATA_DIR", str(data))
    monkeypatch.setenv("BOOKCLUB_CAMPAIGN__HOLDOUT_SHARE", "0.2")
    monkeypatch.setenv("BOOKCLUB_CAMPAIGN__UNIVERSAL_HOLDOUT_SHARE", "0")
    monkeypatch.setenv("COLUMNS", "160")
    out = CliRunner().invoke(app, ["campaigns", "plan", "--quarter", NOW, "--budget", "1500", "--max-pieces", "500"])
    assert out.exit_code == 0, out.output
    assert "decision by expected incremental profit" in out.stdout and "a catalog to everyone" in out.stdout
    assert "not mailed" in out.stdout and "break-even" in out.stdout
    assert (data / "catalogs" / NOW / "mail-depth.svg").read_text(encoding="utf-8").startswith("<svg")
    body = __import__("json").loads((data / "catalogs" / NOW / "mailing-plan.json").read_text(encoding="utf-8"))
    assert sum(body["planned_pieces"].values()) == 500 and "max pieces" in body["binding"]


def test_the_quarter_is_written_from_the_plan(engine: Engine, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """write_quarter_contacts with the whole settings: contacts from the decision, the same seeded
    holdout, 'not_mailed' with reason codes, every contact with its expected profit and value."""
    from sqlalchemy import select

    from campaign.contact_plan import holdout_rule
    from campaign.holdouts import assign_holdouts
    from recsys.storage import campaigns as campaigns_db
    from recsys.storage.schema import CampaignContact, Member

    settings = Settings(data_dir=tmp_path, campaign=CampaignSettings(holdout_share=0.2, universal_holdout_share=0.0))
    build(engine, settings)
    now_files = PrintFiles(member=lambda m: f"{NOW}/members/{m}.pdf", segment=lambda s: f"{NOW}/segment-{s}.pdf")
    with engine.begin() as connection:
        result = write_quarter_contacts(connection, settings, NOW, dt.date(2026, 10, 1), files=now_files, budget=1_500.0)
        again = write_quarter_contacts(connection, settings, NOW, dt.date(2026, 10, 1), files=now_files)
    assert result.mailing is not None and result.fallback is None
    assert again.written == 0 and again.mailing is None  # nothing left to plan: the contacts stand
    plan = result.mailing
    assert plan.in_home == result.campaign.in_home_date
    with engine.connect() as connection:
        rows = connection.execute(
            select(
                Member.member_id, CampaignContact.arm, CampaignContact.reason, CampaignContact.expected_profit,
                CampaignContact.p_alive, CampaignContact.expected_value, CampaignContact.cost, CampaignContact.file,
            )
            .join(Member, Member.id == CampaignContact.member_key)
            .where(CampaignContact.campaign_id == result.campaign.id)
        ).all()  # fmt: skip
        editions = campaigns_db.editions(connection, result.campaign.id)
    contacts = {r[0]: r[1:] for r in rows}
    assert len(contacts) == N
    arms = plan.arms()
    index = {m: i for i, m in enumerate(plan.member_id)}
    for m, (arm, reason, profit, p_alive, value, cost, file) in contacts.items():
        i = index[m]
        assert arm == arms.arm[i]
        assert profit == pytest.approx(arms.expected_profit[i])
        assert p_alive is not None and 0 <= p_alive <= 1 and value is not None and value >= 0
        if arm == "mailed":
            assert reason is None and float(cost) == pytest.approx(2.5) and file == f"{NOW}/members/{m}.pdf"
            assert profit > 0
        else:
            assert float(cost) == 0 and file is None and reason
    counts = Counter(arm for arm, *_ in contacts.values())
    assert counts["mailed"] == plan.planned["pieces"] and counts["not_mailed"] > 0 and counts["holdout"] > 0
    reasons = Counter(r[1] for r in contacts.values() if r[0] == "not_mailed")
    assert set(reasons) <= {"budget", "no expected profit"} and reasons["budget"] > 0
    assert contacts[member_id(9)][:2] == ("suppressed", "suppressed: deceased")
    # the holdout is the campaign's own seeded draw, among the members the plan would have mailed
    assert plan.holdout is not None
    held = plan.holdout.held
    audience_held = assign_holdouts(
        result.plan.audience.member_id, result.plan.audience.segment, result.plan.audience.tier,
        holdout_rule(settings.campaign), result.campaign.seed,
    ).held  # fmt: skip
    assert np.array_equal(held, audience_held)
    would = plan.decision.choice >= 0
    assert {contacts[m][0] for m in np.asarray(plan.member_id)[would & held]} == {"holdout"}
    assert {contacts[m][0] for m in np.asarray(plan.member_id)[would & ~held]} == {"mailed"}
    assert [e.kind for e in editions] == ["catalog"] * 4  # only the catalog was learned, one edition a segment
    lines = "\n".join(result.summary())
    assert "planned by expected incremental profit" in lines and "saved against mailing everyone" in lines
    saved = result.savings()
    assert saved is not None and saved["planned"]["pieces"] < saved["everyone"]["pieces"]
    assert saved["planned"]["profit"] > saved["everyone"]["profit"]


def test_edition_affinity_is_the_share_of_units_in_the_segments_catalog_sections(engine: Engine) -> None:
    """Known answer: segment 0's catalog has section I2, segment 1's K; units by primary category."""
    import json
    from decimal import Decimal

    from sqlalchemy import insert, select

    from campaign.mailing_plan import edition_affinity
    from recsys.storage import mailing as mailing_db
    from recsys.storage.schema import Category, Member, Title, TitleCategory

    with engine.begin() as connection:
        insert_club(connection, 4, segments=2, quarter=NOW)  # members 0, 2 in segment 0; 1, 3 in segment 1
        connection.execute(insert(Category), [
            {"code": "I", "name": "文学", "parent_code": None, "level": 1},
            {"code": "I2", "name": "中国文学", "parent_code": "I", "level": 2},
            {"code": "K", "name": "历史", "parent_code": None, "level": 1},
        ])  # fmt: skip
        for title_id, code in (("TI", "I2"), ("TK", "K"), ("TX", "I")):
            connection.execute(insert(Title).values(title_id=title_id, title=title_id, price=Decimal("10"), in_stock=True))
            key = connection.execute(select(Title.id).where(Title.title_id == title_id)).scalar_one()
            connection.execute(insert(TitleCategory).values(title_key=key, category_code=code, is_primary=True))
        for s, codes in ((0, ["I2"]), (1, ["K"])):
            plans_db.store_plan(connection, NOW, s, "v", f"h{s}", json.dumps({"sections": [{"code": c} for c in codes]}))
        keys = {m: k for m, k in connection.execute(select(Member.member_id, Member.id))}
        titles = {t: k for t, k in connection.execute(select(Title.title_id, Title.id))}
        lines = [  # (member, title, quantity, when)
            (0, "TI", 3, dt.datetime(2026, 5, 1)), (0, "TK", 1, dt.datetime(2026, 5, 2)),  # 3 of 4 in I2
            (1, "TI", 2, dt.datetime(2026, 5, 1)), (1, "TK", 2, dt.datetime(2026, 6, 1)),  # 2 of 4 in K
            (2, "TX", 5, dt.datetime(2026, 6, 1)),  # class I is not inside section I2
            (3, "TK", 4, dt.datetime(2023, 1, 1)),  # more than two years before: not counted
            (0, "TK", 9, dt.datetime(2026, 10, 2)),  # after the quarter's start: not counted
        ]  # fmt: skip
        from recsys.storage.bulk import bulk_insert

        bulk_insert(
            connection, "purchases",
            ("line_id", "order_id", "member_key", "title_key", "quantity", "unit_price", "purchased_at", "channel"),
            [(f"A{j}", f"A{j}", keys[member_id(m)], titles[t], q, Decimal("10"), at, "mail")
             for j, (m, t, q, at) in enumerate(lines)],
        )  # fmt: skip
    with engine.connect() as connection:
        segments = mailing_db.segment_features(connection, NOW)
        affinity = edition_affinity(connection, NOW, dt.date(2026, 10, 1), segments)
    by_member = dict(zip(segments.member_key.tolist(), affinity.tolist(), strict=True))
    assert [by_member[keys[member_id(i)]] for i in range(4)] == pytest.approx([0.75, 0.5, 0.0, 0.0])
