"""The console's reads and the audit log on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Engine, inspect

from recsys.storage import apikeys, audit, console_reads, members, purchases
from tests.api import club


def test_audit_log_table_is_migrated_and_keeps_who_what_when_why(engine: Engine) -> None:
    assert "audit_log" in inspect(engine).get_table_names()
    with engine.begin() as connection:
        first = audit.record_action(
            connection, actor_prefix="abcd1234", actor_label="王芳", role="admin", action="model.activate",
            target="v2", reason="更好的 ndcg", detail={"from": "v1", "to": "v2"},
        )
        for n in range(3):
            audit.record_action(
                connection, actor_prefix="abcd1234", actor_label=None, role="editions", action="proof.mark",
                target=f"2026Q4/M0{n}", reason="ok",
            )
    with engine.connect() as connection:
        newest = audit.recent_actions(connection, limit=2)
        assert [e.target for e in newest] == ["2026Q4/M02", "2026Q4/M01"]
        older = audit.recent_actions(connection, before_id=newest[-1].id, limit=10)
        assert [e.target for e in older] == ["2026Q4/M00", "v2"]
        assert older[-1] == first and first.detail == {"from": "v1", "to": "v2"} and first.actor_label == "王芳"
        assert [e.target for e in audit.actions_on(connection, "proof.", "2026Q4/M01")] == ["2026Q4/M01"]
        assert audit.actions_on(connection, "proof.", "2026Q4/M0_") == []  # no LIKE wildcards


def test_key_by_prefix_sees_revocation(engine: Engine) -> None:
    with engine.begin() as connection:
        _key, info = apikeys.create_key(connection, "editions", "call centre")
    with engine.begin() as connection:
        found = apikeys.key_by_prefix(connection, info.prefix)
        assert found is not None and found.scope == "editions" and found.revoked_at is None
        apikeys.revoke_key(connection, info.prefix)
        revoked = apikeys.key_by_prefix(connection, info.prefix)
        assert revoked is not None and revoked.revoked_at is not None
        assert apikeys.key_by_prefix(connection, "ffffffff") is None


def test_member_search_history_paging_and_counters(engine: Engine) -> None:
    with engine.begin() as connection:
        club.insert_club(connection)
    with engine.connect() as connection:
        assert [m.member_id for m in members.search_members(connection, "M0", limit=4)] == ["M01", "M02", "M03", "M04"]
        assert [m.member_id for m in members.search_members(connection, "M0", after="M04", limit=4)] == ["M05", "M06"]
        assert [m.member_id for m in members.search_members(connection, "李")] == ["M02"]
        assert [m.member_id for m in members.search_members(connection, "%")] == []
        key = members.find_member(connection, "M02")
        assert key is not None
        seen, before = [], None
        while True:
            page = purchases.member_lines_page(connection, key.key, before=before, limit=2)
            seen += page
            if len(page) < 2:
                break
            before = (page[-1].purchased_at, page[-1].id)
        assert [line.line_id for line in seen] == sorted(
            (f"L{n:03d}" for n, p in enumerate(club.PURCHASES, start=1) if p[0] == "M02"),
            key=lambda line_id: -club.PURCHASES[int(line_id[1:]) - 1][3],
        )
        now = club.T0 + dt.timedelta(days=28)
        counters = console_reads.club_counters(connection, now, dt.date(2026, 1, 1))
        assert counters.lines_7d == sum(1 for p in club.PURCHASES if p[3] >= 21)
        assert counters.members_active_12m == 4 and counters.titles_in_stock == 12
        alerts = console_reads.data_alerts(connection, club.TRAINED_UNTIL - dt.timedelta(days=2))
        assert alerts.members_without_purchases == 2 and alerts.titles_without_category == 0
        assert alerts.lines_after_model == sum(1 for p in club.PURCHASES if p[3] >= 26)
        assert console_reads.monthly_units(connection, "T01", club.T0) == {"2026-01": 3, "2026-02": -1}  # the return
        assert [r.quarter for r in console_reads.member_segment_history(connection, key.key - 1)] == ["2026Q1", "2025Q4"]
        assert console_reads.segment_transitions(connection, "2025Q4", "2026Q1") == {(0, 1): 1}
        mailing = list(console_reads.mailing_rows(connection, "2026Q1", 1, batch=1))
        assert [r.member_id for r in mailing] == ["M01"] and mailing[0].complete
        assert [t.title_id for t in console_reads.search_titles(connection, "余华")] == ["T01", "T02", "T03", "T99"]
