"""A bulk load into an empty club: constraints and indexes are set aside and come back whole."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Engine, text

from recsys.storage import club as club_db
from recsys.storage.bulk import bulk_insert


def _constraints(engine: Engine) -> set[str]:
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            sql = (
                "SELECT conname FROM pg_constraint WHERE conrelid IN "
                "('purchases'::regclass, 'member_categories'::regclass)"
            )
            names = set(connection.scalars(text(sql)))
            return names | set(connection.scalars(text("SELECT indexname FROM pg_indexes WHERE tablename = 'purchases'")))
        return set(connection.scalars(text("SELECT name FROM sqlite_master WHERE tbl_name = 'purchases'")))


def _member_and_title(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO members (id, member_id, name, joined_on, channel, status) "
                "VALUES (1, 'M1', 'Ann', '2024-01-01', 'web', 'active')"
            )
        )
        connection.execute(
            text(
                "INSERT INTO titles (id, title_id, title, price, in_stock) "
                "VALUES (1, 'T1', 'A book', 10.00, true)"
            )
        )


COLUMNS = ("line_id", "order_id", "member_key", "title_key", "quantity", "unit_price", "purchased_at", "channel")
AT = dt.datetime(2026, 1, 2, 3, 4, 5)


def test_constraints_and_indexes_come_back_after_the_load(engine: Engine) -> None:
    before = _constraints(engine)
    assert any(name.startswith("ix_purchases") for name in before)
    _member_and_title(engine)
    with engine.begin() as connection, club_db.purchase_indexes_deferred(connection):
        bulk_insert(connection, "purchases", COLUMNS, [("O1-1", "O1", 1, 1, 1, 10.0, AT, "web")])
    assert _constraints(engine) == before
    with engine.connect() as connection:
        assert connection.scalar(text("SELECT count(*) FROM purchases")) == 1


@pytest.mark.postgres
def test_a_line_naming_no_member_fails_the_load_at_the_end_and_leaves_nothing(postgres_engine: Engine) -> None:
    _member_and_title(postgres_engine)
    before = _constraints(postgres_engine)
    rows = [("O1-1", "O1", 1, 1, 1, 10.0, AT, "web"), ("O2-1", "O2", 99, 1, 1, 10.0, AT, "web")]
    with (
        pytest.raises(Exception, match="fk_purchases_member_key_members"),
        postgres_engine.begin() as connection,
        club_db.purchase_indexes_deferred(connection),
    ):
        bulk_insert(connection, "purchases", COLUMNS, rows)
    assert _constraints(postgres_engine) == before
    with postgres_engine.connect() as connection:
        assert connection.scalar(text("SELECT count(*) FROM purchases")) == 0


@pytest.mark.postgres
def test_a_duplicate_line_id_fails_the_load_at_the_end(postgres_engine: Engine) -> None:
    _member_and_title(postgres_engine)
    rows = [("O1-1", "O1", 1, 1, 1, 10.0, AT, "web"), ("O1-1", "O1", 1, 1, 2, 10.0, AT, "web")]
    with (
        pytest.raises(Exception, match="uq_purchases_line_id"),
        postgres_engine.begin() as connection,
        club_db.purchase_indexes_deferred(connection),
    ):
        bulk_insert(connection, "purchases", COLUMNS, rows)
    with postgres_engine.connect() as connection:
        assert connection.scalar(text("SELECT count(*) FROM purchases")) == 0


@pytest.mark.postgres
def test_the_planner_has_statistics_after_a_bulk_load(postgres_engine: Engine) -> None:
    _member_and_title(postgres_engine)
    reltuples = text("SELECT reltuples FROM pg_class WHERE relname = 'purchases'")
    with postgres_engine.begin() as connection:
        bulk_insert(connection, "purchases", COLUMNS, [("O1-1", "O1", 1, 1, 1, 10.0, AT, "web")])
        assert connection.scalar(reltuples) == -1  # never analyzed: the planner guesses
        club_db.analyze_club(connection)
    with postgres_engine.connect() as connection:
        assert connection.scalar(reltuples) == 1
