"""members.member_snapshot: the recommendation route's one query, on a kept autocommit connection
(on PostgreSQL straight to psycopg: recsys.storage.db.DriverQuery) and in a transaction
(SQLAlchemy Core), SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Engine, bindparam, event, select, text
from sqlalchemy.exc import DBAPIError

from recsys.storage.db import DriverQuery
from recsys.storage.members import MemberSnapshot, SnapshotLine, member_snapshot
from recsys.storage.schema import Member
from tests.api import club

SINCE = club.T0 + dt.timedelta(days=10)  # lines after it are "recent"


@pytest.fixture
def club_engine(engine: Engine) -> Engine:
    with engine.begin() as connection:
        club.insert_club(connection)
    return engine


def _same(snapshot: MemberSnapshot | None) -> tuple[int, list[SnapshotLine], list[str]] | None:
    """Lines come in no particular order."""
    return None if snapshot is None else (snapshot.key, sorted(snapshot.lines), snapshot.declared)


def test_a_kept_autocommit_connection_reads_what_a_transaction_reads(club_engine: Engine) -> None:
    members = [m for m, _name, _declared in club.MEMBERS] + ["NOPE"]
    with club_engine.connect() as connection:
        in_transaction = {m: member_snapshot(connection, m, SINCE) for m in members}
    with club_engine.connect().execution_options(isolation_level="AUTOCOMMIT") as kept:
        for _ in range(2):  # the second time on PostgreSQL: the statement prepared
            assert {m: _same(member_snapshot(kept, m, SINCE)) for m in members} == {
                m: _same(s) for m, s in in_transaction.items()
            }
    assert in_transaction["NOPE"] is None
    m01 = in_transaction["M01"]
    assert m01 is not None and m01.key == 1 and m01.declared == ["I247"]
    expected = [(t, q, day > 10) for m, t, q, day in club.PURCHASES if m == "M01"]
    assert sorted(m01.lines) == sorted(SnapshotLine(*line) for line in expected)
    assert _same(in_transaction["M05"]) == (5, [], ["I247"])  # no purchases, a declared category
    assert _same(in_transaction["M06"]) == (6, [], [])


@pytest.mark.postgres
def test_on_postgresql_a_kept_connection_runs_it_prepared_without_sqlalchemy(postgres_engine: Engine) -> None:
    with postgres_engine.begin() as connection:
        club.insert_club(connection)
    executed: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        executed.append(statement)

    event.listen(postgres_engine, "before_cursor_execute", seen)
    try:
        with postgres_engine.connect().execution_options(isolation_level="AUTOCOMMIT") as kept:
            assert member_snapshot(kept, "M01", SINCE) is not None
            assert executed == []  # straight to psycopg
            prepared = kept.execute(text("SELECT statement FROM pg_prepared_statements")).scalars().all()
            assert len([s for s in prepared if "UNION ALL" in s]) == 1  # at its first use
        executed.clear()
        with postgres_engine.connect() as connection:  # in a transaction: through SQLAlchemy
            assert member_snapshot(connection, "M01", SINCE) is not None
            assert len(executed) == 1 and "UNION ALL" in executed[0]
    finally:
        event.remove(postgres_engine, "before_cursor_execute", seen)


@pytest.mark.postgres
def test_on_postgresql_a_connection_the_server_dropped_is_invalidated(postgres_engine: Engine) -> None:
    """As Connection.execute does: the API's retry on a new connection depends on it."""
    with postgres_engine.begin() as connection:
        club.insert_club(connection)
    kept = postgres_engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    assert member_snapshot(kept, "M01", SINCE) is not None
    pid = kept.execute(text("SELECT pg_backend_pid()")).scalar_one()
    with postgres_engine.connect() as other:
        other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    with pytest.raises(DBAPIError) as raised:
        member_snapshot(kept, "M01", SINCE)
    assert raised.value.connection_invalidated and kept.invalidated
    kept.close()


def test_a_statement_sqlalchemy_must_expand_goes_through_sqlalchemy(club_engine: Engine) -> None:
    query = DriverQuery(
        select(Member.member_id).where(Member.member_id.in_(bindparam("ids", expanding=True))).order_by(Member.id)
    )
    with club_engine.connect().execution_options(isolation_level="AUTOCOMMIT") as kept:
        rows = query.all(kept, {"ids": ["M02", "M04", "NOPE"]})
    assert [tuple(r) for r in rows] == [("M02",), ("M04",)]
