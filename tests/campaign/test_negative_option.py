"""The negative option: who is sent the main selection and why not the others, idempotent auto-ship
lines, the CLI's refusals, and auto-ship lines reported apart from active orders (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from sqlalchemy import Connection, Engine, func, insert, select, update
from typer.testing import CliRunner

from bookclub_cli.main import app
from campaign.contacts import PrintFiles, write_quarter_contacts
from campaign.matchback import run_matchback
from campaign.negative_option import (
    REASONS,
    NegativeOptionError,
    decide_autoships,
    decline,
    run_autoship,
)
from campaign.report import campaign_report
from campaign.report_text import report_text
from demo.respond import SimulatedResponses
from recsys.errors import BookclubError, UnknownMemberError
from recsys.settings import CampaignSettings, Settings
from recsys.storage import selections as selections_db
from recsys.storage.db import make_engine, upgrade
from recsys.storage.purchases import insert_purchase_rows
from recsys.storage.schema import CampaignContact, Member, Purchase, Title
from recsys.storage.selections import MailedSelection
from recsys.storage.shown_titles import ShownTitle, replace_shown_titles
from tests.campaign.club import QUARTER, insert_club

FILES = PrintFiles(member=lambda m: f"{QUARTER}/members/{m}.pdf", segment=lambda s: f"{QUARTER}/segment-{s}.pdf")
IN_HOME = dt.date(2026, 10, 5)
DEADLINE = IN_HOME + dt.timedelta(days=30)
AFTER = DEADLINE + dt.timedelta(days=1)
ON = CampaignSettings(holdout_share=0.25, universal_holdout_share=0.0, response_days=60, late_days=0,
                      margin_rate=0.4, resamples=300, negative_option=True)
PRICES = {"T1": Decimal("20.00"), "T2": Decimal("15.00"), "T3": Decimal("12.50")}


def _at(day: dt.date, hour: int = 10) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour))


def _club(connection: Connection, members: int = 240) -> dict[str, tuple[int, int, str]]:
    """Contacts written; every mailed contact's main selection is T1/T2/T3 by member number.
    Returns member id → (member key, main title key, arm) for every mailed and held-out member."""
    insert_club(connection, members)
    connection.execute(insert(Title), [{"title_id": t, "title": t, "price": p, "in_stock": True}
                                       for t, p in PRICES.items() if t != "T1"])
    write_quarter_contacts(connection, ON, QUARTER, dt.date(2026, 10, 1), files=FILES, in_home=IN_HOME)
    titles = {t: int(k) for t, k in connection.execute(select(Title.title_id, Title.id))}
    out: dict[str, tuple[int, int, str]] = {}
    shown: list[ShownTitle] = []
    for contact_id, campaign_id, member_id, key, arm in connection.execute(
        select(CampaignContact.id, CampaignContact.campaign_id, Member.member_id, Member.id, CampaignContact.arm)
        .join(Member, Member.id == CampaignContact.member_key)
        .where(CampaignContact.arm.in_(("mailed", "holdout")))
    ):
        title_id = f"T{1 + int(member_id[1:]) % 3}"
        if arm == "mailed":  # the rows the edition writes when it renders: here only the main selection
            shown.append(ShownTitle(int(contact_id), int(campaign_id), int(key), title_id, "main", 0))
        out[member_id] = (int(key), titles[title_id], arm)
    assert replace_shown_titles(connection, [s.contact_id for s in shown], shown) == len(shown) > 0
    return out


def _line(line_id: str, member_key: int, title_key: int, at: dt.datetime, price: Decimal | float,
          quantity: int = 1) -> dict[str, object]:
    return {"line_id": line_id, "order_id": line_id, "member_key": member_key, "title_key": title_key,
            "quantity": quantity, "unit_price": Decimal(str(price)), "purchased_at": at, "channel": "mail",
            "key_code": None}


def _mailed(club: dict[str, tuple[int, int, str]]) -> list[str]:
    return sorted(m for m, (_k, _t, arm) in club.items() if arm == "mailed")


def _autoships(connection: Connection) -> dict[int, tuple[int, Decimal]]:
    rows = connection.execute(
        select(Purchase.member_key, Purchase.title_key, Purchase.unit_price).where(Purchase.kind == "autoship")
    )
    return {int(k): (int(t), Decimal(str(p))) for k, t, p in rows}


def _open(club: dict[str, tuple[int, int, str]], connection: Connection) -> list[str]:
    """Mailed members whose membership is open (closed ones are never shipped)."""
    closed = set(connection.scalars(select(Member.member_id).where(Member.status == "closed")))
    return [m for m in _mailed(club) if m not in closed]


# ------------------------------------------------------------------ the decision


def test_off_by_default_ships_nothing(engine: Engine) -> None:
    assert CampaignSettings().negative_option is False
    off = ON.model_copy(update={"negative_option": False})
    with engine.begin() as connection:
        club = _club(connection)
        with pytest.raises(NegativeOptionError, match="negative option is off"):
            run_autoship(connection, QUARTER, off, as_of=AFTER)
        # the pure decision says so for every mailed member too
        mailed = selections_db.mailed_selections(connection, 1, IN_HOME)
        decision = decide_autoships(mailed, declined_on={}, ordered_on={}, shipped=set(), as_of=AFTER, settings=off)
        assert decision.orders == []
        assert decision.counts()["negative_option_off"] == len(_mailed(club)) == len(mailed) > 100
        assert _autoships(connection) == {}


def test_decline_and_orders_of_the_main_title_ship_nothing_others_ship_once(engine: Engine) -> None:
    with engine.begin() as connection:
        club = _club(connection)
        mailed = _open(club, connection)
        declined, declined_late, ordered, ordered_late, owned, other_title, closing = (
            mailed[0:5], mailed[5:8], mailed[8:14], mailed[14:16], mailed[16:18], mailed[18:22], mailed[22:24]
        )
        # closed after the mailing (closed members are not mailed at all)
        connection.execute(update(Member).where(Member.member_id.in_(closing)).values(status="closed"))
        for m in declined:
            decline(connection, QUARTER, m, ON, source="phone", at=_at(IN_HOME + dt.timedelta(days=3)))
        for m in declined_late:
            result = decline(connection, QUARTER, m, ON, source="web", at=_at(DEADLINE + dt.timedelta(days=1)))
            assert result.recorded and result.after_deadline
        # a second decline keeps the first
        assert not decline(connection, QUARTER, declined[0], ON, source="card", at=_at(IN_HOME)).recorded
        lines = []
        for i, m in enumerate(ordered):  # the deadline day itself still counts as in time
            key, title, _arm = club[m]
            lines.append(_line(f"O{i}", key, title, _at(DEADLINE if i == 0 else IN_HOME + dt.timedelta(days=i)), 20))
        for i, m in enumerate(ordered_late):
            key, title, _arm = club[m]
            lines.append(_line(f"L{i}", key, title, _at(AFTER, 8), 20))
        for i, m in enumerate(owned):
            key, title, _arm = club[m]
            lines.append(_line(f"W{i}", key, title, _at(IN_HOME - dt.timedelta(days=200)), 20))
        for i, m in enumerate(other_title):  # ordered something else: still shipped
            key, title, _arm = club[m]
            other = next(t for _k, t, _a in club.values() if t != title)
            lines.append(_line(f"X{i}", key, other, _at(IN_HOME + dt.timedelta(days=2)), 20))
        insert_purchase_rows(connection, lines)

        run = run_autoship(connection, QUARTER, ON, as_of=AFTER + dt.timedelta(days=1))
        counts = run.decision.counts()
        assert set(counts) == set(REASONS)
        assert counts["declined"] == len(declined) and counts["declined_late"] == len(declined_late)
        assert counts["ordered"] == len(ordered) and counts["ordered_late"] == len(ordered_late)
        assert counts["owned"] == len(owned)
        assert counts["member_closed"] == len(closing)
        shipped = _autoships(connection)
        blocked = {club[m][0] for m in declined + declined_late + ordered + ordered_late + owned + closing}
        expected = {club[m][0] for m in mailed} - blocked
        assert set(shipped) == expected and counts["ship"] == run.written == len(expected)
        # each member got their own main selection at its price; held-out members got nothing
        for m in mailed:
            key, title, _arm = club[m]
            if key in shipped:
                assert shipped[key] == (title, PRICES[next(t for t, k in _title_keys(connection).items() if k == title)])
        assert not {k for k, _t, arm in club.values() if arm == "holdout"} & set(shipped)
        assert run.revenue == pytest.approx(float(sum(p for _t, p in shipped.values())))

        # idempotent: a second run ships nothing twice, whatever the day
        again = run_autoship(connection, QUARTER, ON, as_of=AFTER + dt.timedelta(days=20))
        assert again.written == 0 and again.decision.orders == []
        assert again.decision.counts()["already_shipped"] == len(expected)
        assert _autoships(connection) == shipped
        n = connection.execute(select(func.count()).select_from(Purchase).where(Purchase.kind == "autoship"))
        assert n.scalar_one() == len(expected)


def _title_keys(connection: Connection) -> dict[str, int]:
    return {t: int(k) for t, k in connection.execute(select(Title.title_id, Title.id))}


def test_notice_too_short_ships_nothing_and_counts_it(engine: Engine) -> None:
    short = ON.model_copy(update={"reply_days": 7, "negative_option_notice_days": 10})
    with engine.begin() as connection:
        club = _club(connection)
        run = run_autoship(connection, QUARTER, short, as_of=IN_HOME + dt.timedelta(days=8))
        assert run.written == 0 and run.decision.orders == []
        assert run.decision.counts()["notice_too_short"] == len(_mailed(club))
        assert _autoships(connection) == {}
        # exactly at the notice period it ships
        enough = short.model_copy(update={"negative_option_notice_days": 7})
        shipped = run_autoship(connection, QUARTER, enough, as_of=IN_HOME + dt.timedelta(days=8))
        assert shipped.written == len(_open(club, connection)) > 0


def test_nothing_ships_before_the_deadline_and_a_dry_run_writes_nothing(engine: Engine) -> None:
    with engine.begin() as connection:
        club = _club(connection)
        with pytest.raises(NegativeOptionError, match=f"reply deadline is {DEADLINE}"):
            run_autoship(connection, QUARTER, ON, as_of=DEADLINE)
        dry = run_autoship(connection, QUARTER, ON, as_of=AFTER, dry_run=True)
        assert len(dry.decision.orders) == len(_open(club, connection)) and dry.written == 0
        assert _autoships(connection) == {}
        assert "would ship" in dry.summary()


def test_the_price_billed_is_the_price_the_edition_printed(engine: Engine) -> None:
    """A price changed after the edition was printed does not reach the member's bill: the main
    selection's row keeps the printed price (migration 0011); a row without one (written before)
    bills today's."""
    with engine.begin() as connection:
        club = _club(connection)
        mailed = _open(club, connection)
        printed, unpriced = mailed[0], mailed[1]
        contact_of = dict(connection.execute(
            select(Member.member_id, CampaignContact.id).join(Member, Member.id == CampaignContact.member_key)
            .where(CampaignContact.arm == "mailed", Member.member_id.in_([printed, unpriced]))
        ).all())  # fmt: skip
        campaign_id = connection.execute(select(CampaignContact.campaign_id).limit(1)).scalar_one()
        title_of = {m: f"T{1 + int(m[1:]) % 3}" for m in (printed, unpriced)}
        rows = [
            ShownTitle(int(contact_of[m]), int(campaign_id), club[m][0], title_of[m], "main", 0,
                       PRICES[title_of[m]] if m == printed else None)
            for m in (printed, unpriced)
        ]  # fmt: skip
        replace_shown_titles(connection, [r.contact_id for r in rows], rows)
        connection.execute(update(Title).values(price=Decimal("99.00")))  # the prices rise after printing
        run_autoship(connection, QUARTER, ON, as_of=AFTER)
        billed = _autoships(connection)
    assert billed[club[printed][0]] == (club[printed][1], PRICES[title_of[printed]])
    assert billed[club[unpriced][0]] == (club[unpriced][1], Decimal("99.00"))


def test_replies_and_orders_count_on_the_clubs_day_at_the_deadline(engine: Engine) -> None:
    """``replied_at`` and ``purchased_at`` are stored UTC; the deadline is a day of the club's calendar
    (``campaign.timezone``). At the day boundary: a decline at 23:30 on the deadline day in New York
    (04:30 UTC the day after) is in time there; one at 00:30 the day after in Shanghai (16:30 UTC on
    the deadline day) is late there — the UTC date says the opposite of both."""
    new_york = ON.model_copy(update={"timezone": "America/New_York"})
    shanghai = ON.model_copy(update={"timezone": "Asia/Shanghai"})
    next_day = DEADLINE + dt.timedelta(days=1)
    with engine.begin() as connection:
        club = _club(connection)
        a, b, c = _open(club, connection)[:3]
        # a: 23:30 on the deadline day in New York, given as an aware time (stored as UTC)
        ny_evening = dt.datetime.combine(DEADLINE, dt.time(23, 30), tzinfo=ZoneInfo("America/New_York"))
        first = decline(connection, QUARTER, a, new_york, source="phone", at=ny_evening)
        assert first.recorded and not first.after_deadline
        assert decline(connection, QUARTER, a, shanghai, source="phone", at=ny_evening).after_deadline
        # b: 16:30 UTC on the deadline day = 00:30 the next day in Shanghai
        late_in_shanghai = dt.datetime.combine(DEADLINE, dt.time(16, 30))
        assert decline(connection, QUARTER, b, shanghai, source="web", at=late_in_shanghai).after_deadline
        # c orders the main selection at 03:00 UTC the day after = 22:00 on the deadline day in New York
        key, title, _arm = club[c]
        insert_purchase_rows(connection, [_line("C1", key, title, dt.datetime.combine(next_day, dt.time(3)), 20)])
        stored = selections_db.replies(connection, 1)
        assert stored[club[a][0]].replied_at == dt.datetime.combine(next_day, dt.time(4, 30))  # naive UTC

        def reasons(settings: CampaignSettings) -> tuple[str, str, str]:
            run = run_autoship(connection, QUARTER, settings, as_of=next_day + dt.timedelta(days=1), dry_run=True)
            return run.decision.reasons[club[a][0]], run.decision.reasons[club[b][0]], run.decision.reasons[club[c][0]]

        assert reasons(new_york) == ("declined", "declined", "ordered")
        assert reasons(shanghai) == ("declined_late", "declined_late", "ordered_late")
        assert reasons(ON) == ("declined_late", "declined", "ordered_late")  # UTC unless set


def test_decline_errors_name_what_is_wrong(engine: Engine) -> None:
    with engine.begin() as connection:
        club = _club(connection)
        held = next(m for m, (_k, _t, arm) in club.items() if arm == "holdout")
        with pytest.raises(UnknownMemberError, match="no member 'NOBODY'"):
            decline(connection, QUARTER, "NOBODY", ON, source="phone", at=_at(IN_HOME))
        with pytest.raises(BookclubError, match=f"member {held} was not mailed"):
            decline(connection, QUARTER, held, ON, source="phone", at=_at(IN_HOME))
        with pytest.raises(BookclubError, match="--source is empty"):
            decline(connection, QUARTER, _mailed(club)[0], ON, source=" ", at=_at(IN_HOME))


def test_the_decision_on_its_own() -> None:
    def member(key: int, **change: object) -> MailedSelection:
        values: dict[str, object] = {
            "member_key": key, "member_id": f"M{key}", "member_status": "active", "contact_id": key,
            "in_home": IN_HOME, "title_key": 7, "price": Decimal("9.99"), "in_stock": True,
        }
        values.update(change)
        return MailedSelection(**values)  # type: ignore[arg-type]

    mailed = [
        member(1), member(2, title_key=None), member(3, in_stock=False), member(4, price=None),
        member(5, in_home=IN_HOME + dt.timedelta(days=5)),  # its own deadline has not passed
        member(6), member(7),
    ]
    decision = decide_autoships(
        mailed, declined_on={6: DEADLINE}, ordered_on={7: [IN_HOME]}, shipped=set(), as_of=AFTER, settings=ON,
    )
    assert decision.reasons == {
        1: "ship", 2: "no_main_selection", 3: "out_of_stock", 4: "no_price", 5: "deadline_not_passed",
        6: "declined", 7: "ordered",
    }
    assert [(o.member_key, o.title_key, o.unit_price, o.shipped_on) for o in decision.orders] == [
        (1, 7, Decimal("9.99"), AFTER)
    ]


# ------------------------------------------------------------------ reported apart


def test_autoship_revenue_is_left_out_of_the_active_effect_and_reported_with_its_return_rate(engine: Engine) -> None:
    rng = np.random.default_rng(3)
    with engine.begin() as connection:
        club = _club(connection, members=800)
        # active orders in the response window: mailed members buy more
        lines = []
        for i, (_m, (key, title, arm)) in enumerate(sorted(club.items())):
            if rng.random() < (0.35 if arm == "mailed" else 0.2):
                day = IN_HOME + dt.timedelta(days=int(rng.integers(0, 60)))
                other = title + 1 if title < max(t for _k, t, _a in club.values()) else title - 1
                lines.append(_line(f"A{i}", key, other, _at(day), float(rng.integers(10, 40))))
        insert_purchase_rows(connection, lines)
        run_matchback(connection, QUARTER)
        before = campaign_report(connection, QUARTER, ON)
        assert before.autoship is not None and before.autoship.lines == 0
        assert "nothing shipped yet" in report_text(before)

        run = run_autoship(connection, QUARTER, ON, as_of=AFTER)
        shipped = _autoships(connection)
        assert run.written == len(shipped) > 100
        # every fourth auto-shipped member sends it back (an ordinary negative line, after the shipment)
        back = sorted(shipped)[::4]
        insert_purchase_rows(connection, [
            _line(f"R{k}", k, shipped[k][0], _at(AFTER + dt.timedelta(days=9)), shipped[k][1], quantity=-1)
            for k in back
        ])
        run_matchback(connection, QUARTER)
        after = campaign_report(connection, QUARTER, ON)

    # the active orders' effect is exactly what it was: auto-ships and their returns are not in it
    assert [a.to_json() for a in after.arms] == [a.to_json() for a in before.arms]
    assert (after.total is None) == (before.total is None)
    if after.total is not None and before.total is not None:
        assert after.total.to_json() == before.total.to_json()
    assert after.matchback.revenue == before.matchback.revenue and after.matchback.lines == before.matchback.lines

    section = after.autoship
    assert section is not None and section.enabled
    billed = float(sum(p for _t, p in shipped.values()))
    returned = float(sum(shipped[k][1] for k in back))
    assert section.lines == section.members == section.units == len(shipped)
    assert section.billed == pytest.approx(billed) and section.returned_value == pytest.approx(returned)
    assert section.returned_units == len(back)
    assert section.return_rate is not None
    assert section.return_rate.estimate == pytest.approx(len(back) / len(shipped))
    assert section.return_rate.low < section.return_rate.estimate < section.return_rate.high
    # against the holdout: held-out members have no auto-ship, mailed members the net auto-ship revenue
    assert section.effect is not None and section.total is not None
    revenue = section.effect.revenue
    assert revenue.holdout == 0.0
    assert revenue.mailed == pytest.approx((billed - returned) / section.mailed_members)
    assert revenue.low <= revenue.incremental <= revenue.high
    assert section.effect.margin.mailed == pytest.approx(0.4 * revenue.mailed)
    # active + auto-ship: the pooled active effect plus the auto-ship per piece
    if after.total is not None:
        assert section.total.revenue.incremental == pytest.approx(
            after.total.revenue.incremental + revenue.incremental
        )
    assert section.matched_lines == len(shipped) + len(back)
    assert section.matched_value == pytest.approx(billed - returned)

    text = report_text(after)
    assert "effect per arm (active orders, mailed vs holdout" in text
    assert f"{len(shipped):,} main selection(s) shipped" in text and "return rate 2" in text
    assert "held-out members get no edition and so no auto-ship" in text
    payload = after.to_json()["autoship"]
    assert payload["lines"] == len(shipped) and payload["returned_units"] == len(back)
    assert payload["net_revenue"] == pytest.approx(billed - returned)


def test_the_report_has_no_autoship_section_when_off_and_nothing_shipped(engine: Engine) -> None:
    with engine.begin() as connection:
        _club(connection)
        report = campaign_report(connection, QUARTER, ON.model_copy(update={"negative_option": False}))
    assert report.autoship is None and report.to_json()["autoship"] is None
    assert "auto-ship" not in report_text(report)


# ------------------------------------------------------------------ the CLI


def test_cli_refuses_in_one_line_then_ships_and_declines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOOKCLUB_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.delenv("BOOKCLUB_DATABASE_URL", raising=False)
    monkeypatch.delenv("BOOKCLUB_CAMPAIGN__NEGATIVE_OPTION", raising=False)
    settings = Settings(data_dir=tmp_path / "var")
    engine = make_engine(settings.db_url)
    upgrade(engine)
    with engine.begin() as connection:
        club = _club(connection)
    engine.dispose()
    mailed = _mailed(club)
    runner = CliRunner()

    off = runner.invoke(app, ["campaigns", "autoship", "--campaign", QUARTER, "--as-of", str(AFTER)])
    assert off.exit_code == 1 and "negative option is off" in off.output
    assert len([line for line in off.output.splitlines() if line.strip()]) == 1

    monkeypatch.setenv("BOOKCLUB_CAMPAIGN__NEGATIVE_OPTION", "true")
    early = runner.invoke(app, ["campaigns", "autoship", "--campaign", QUARTER, "--as-of", str(DEADLINE)])
    assert early.exit_code == 1 and f"reply deadline is {DEADLINE}" in " ".join(early.output.split())

    declined = runner.invoke(app, ["campaigns", "decline", mailed[1], "--campaign", QUARTER, "--source", "phone"])
    assert declined.exit_code == 0 and f"member {mailed[1]} declined" in declined.output
    unknown = runner.invoke(app, ["campaigns", "decline", "NOBODY", "--campaign", QUARTER])
    assert unknown.exit_code == 1 and "no member 'NOBODY'" in unknown.output

    # the decline is dated today, after this campaign's deadline: still honoured
    dry = runner.invoke(app, ["campaigns", "autoship", "--campaign", QUARTER, "--as-of", str(AFTER), "--dry-run"])
    assert dry.exit_code == 0 and "would ship" in dry.output and "declined_late 1" in " ".join(dry.output.split())
    shipped = runner.invoke(app, ["campaigns", "autoship", "--campaign", QUARTER, "--as-of", str(AFTER)])
    assert shipped.exit_code == 0 and "line(s) written" in shipped.output
    engine = make_engine(settings.db_url)
    with engine.connect() as connection:
        n = len(_autoships(connection))
        assert n == len(_open(club, connection)) - 1
    engine.dispose()
    assert f"shipped {n:,} main selection(s)" in " ".join(shipped.output.split())


# ------------------------------------------------------------------ the demo club


def test_the_demo_club_declines_and_returns_auto_ships_only_when_the_option_is_on(engine: Engine) -> None:
    from demo.respond import DECLINE_SHARE, RETURN_SHARE, simulate_responses
    from recsys.storage import club as club_db

    def respond(settings: CampaignSettings | None) -> SimulatedResponses:
        return simulate_responses(connection, QUARTER, sections={}, plan_titles={0: ["T1"]}, margin_rate=0.4,
                                  negative_option=settings)

    with engine.begin() as connection:
        club = _club(connection, members=1_200)
        club_db.mark_demo(connection, "negative option demo")
        off = respond(ON.model_copy(update={"negative_option": False}))
        assert off.lines > 0 and (off.declines, off.autoships, off.autoship_returns) == (0, 0, 0)
        assert _autoships(connection) == {}
        on = respond(ON)
        mailed = len(_mailed(club))
        assert on.lines == 0  # the orders were written by the first call
        assert abs(on.declines / mailed - DECLINE_SHARE) < 0.06
        assert 0 < on.autoships < mailed - on.declines and len(_autoships(connection)) == on.autoships
        assert abs(on.autoship_returns / on.autoships - RETURN_SHARE) < 0.07
        again = respond(ON)
        assert (again.declines, again.autoships, again.autoship_returns) == (0, 0, 0)
        run_matchback(connection, QUARTER)
        report = campaign_report(connection, QUARTER, ON)
    assert report.autoship is not None and report.autoship.lines == on.autoships
    assert report.autoship.returned_units == on.autoship_returns
