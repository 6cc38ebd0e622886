"""Members' own buying: auto-ship lines (the negative option) and their returns are left out of the
RFM of the segmentation, the category units behind the edition affinity, and the value model's
lines — one SQL test (``line_kinds.active_order_line``), on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from decimal import Decimal

import numpy as np
import pytest
from sqlalchemy import Connection, Engine, select, text

from recsys.storage import line_kinds, selections
from recsys.storage.bulk import bulk_insert
from recsys.storage.mailing import category_units
from recsys.storage.purchase_log import newest_purchase, read_line_amounts, to_epoch
from recsys.storage.purchases import primary_category_units, rfm_aggregates
from recsys.storage.schema import Purchase, table_of
from recsys.storage.selections import AutoshipOrder, write_autoships
from tests.conftest import scratch_postgres

AS_OF = dt.datetime(2026, 10, 1)
SINCE = AS_OF - dt.timedelta(days=365)
DAY = dt.timedelta(days=1)

# member 1 buys on their own and is auto-shipped T2 (kept); member 2 only ever gets auto-ships,
# one kept and one sent back; member 3 returns an order of their own; member 4 buys nothing
OWN = [  # line id, member, title, quantity, price, when
    ("O1", 1, 1, 2, "10.00", AS_OF - 200 * DAY),
    ("O2", 1, 1, 1, "10.00", AS_OF - 100 * DAY),
    ("O3", 3, 1, 1, "30.00", AS_OF - 50 * DAY),
    ("O3-back", 3, 1, -1, "30.00", AS_OF - 45 * DAY),
    ("O4", 3, 2, 1, "8.00", AS_OF - 400 * DAY),  # outside the RFM window, inside the affinity's
]
SHIPPED = [  # campaign, member, title, day
    (1, 1, 2, AS_OF - 20 * DAY),
    (1, 2, 2, AS_OF - 20 * DAY),
    (2, 2, 1, AS_OF - 90 * DAY),
]
RETURNED = [("A-back", 2, 1, -1, "15.00", AS_OF - 80 * DAY)]  # member 2 sends campaign 2's back


def _club(connection: Connection) -> None:
    bulk_insert(connection, "categories", ["code", "name", "parent_code", "level"],
                [("I", "文学", None, 1), ("K", "历史", None, 1)])
    bulk_insert(connection, "titles", ["id", "title_id", "title", "price", "in_stock"],
                [(1, "T1", "一", Decimal("10.00"), True), (2, "T2", "二", Decimal("15.00"), True)])
    bulk_insert(connection, "title_categories", ["title_key", "category_code", "is_primary"],
                [(1, "I", True), (2, "K", True)])
    bulk_insert(connection, "members", ["id", "member_id", "name", "status"],
                [(k, f"M{k}", f"member {k}", "active") for k in range(1, 5)])
    bulk_insert(
        connection, "purchases",
        ["line_id", "order_id", "member_key", "title_key", "quantity", "unit_price", "purchased_at", "channel"],
        [(line, line, m, t, q, Decimal(p), at, "web") for line, m, t, q, p, at in OWN + RETURNED],
    )
    for campaign, member, title, at in SHIPPED:
        write_autoships(connection, campaign, [AutoshipOrder(member, title, Decimal("15.00"), at.date())])


def test_rfm_leaves_auto_ships_and_their_returns_out(engine: Engine) -> None:
    with engine.begin() as connection:
        _club(connection)
        rfm = rfm_aggregates(connection, AS_OF, SINCE)
    row = {m: i for i, m in enumerate(rfm.member_ids)}
    # member 1: two own orders (the later 100 days ago); the kept auto-ship 20 days ago is not "recent"
    assert (rfm.recency_days[row["M1"]], rfm.frequency[row["M1"]], rfm.monetary[row["M1"]]) == (100, 2, 30.0)
    # member 2 never ordered anything: as if they had no history at all
    assert (rfm.recency_days[row["M2"]], rfm.frequency[row["M2"]], rfm.monetary[row["M2"]]) == (-1, 0, 0.0)
    # member 3's own return is their own: netted
    assert (rfm.recency_days[row["M3"]], rfm.frequency[row["M3"]], rfm.monetary[row["M3"]]) == (45, 1, 0.0)
    assert rfm.recency_days[row["M4"]] == -1


def test_category_units_leave_auto_ships_and_their_returns_out(engine: Engine) -> None:
    with engine.begin() as connection:
        _club(connection)
        units = category_units(connection, AS_OF - 730 * DAY, AS_OF)
        listed = sorted(primary_category_units(connection, AS_OF - 730 * DAY, AS_OF))
    got = sorted((int(k), units.codes[int(c)], float(n)) for k, c, n in zip(units.member_key, units.code, units.units,
                                                                             strict=True))
    # member 1: 3 units of I (no K: the auto-shipped T2); member 2: nothing; member 3: I nets to 0, K 1
    assert got == [(1, "I", 3.0), (3, "K", 1.0)]
    assert listed == [(1, "I", 3), (3, "K", 1)]


def test_the_value_models_lines_are_the_active_order_lines(engine: Engine) -> None:
    """``own_orders`` (raw SQL on the driver) selects the same lines as the SQL expression the report
    uses; without it every line is read."""
    with engine.begin() as connection:
        _club(connection)
        purchases = table_of(Purchase)
        active = connection.execute(
            select(purchases.c.member_key, purchases.c.purchased_at, purchases.c.quantity * purchases.c.unit_price)
            .where(line_kinds.active_order_line(purchases))
        ).all()
        own = read_line_amounts(connection, own_orders=True)
        every = read_line_amounts(connection)
        newest_own, newest = newest_purchase(connection, own_orders=True), newest_purchase(connection)
    assert len(every) == len(OWN) + len(RETURNED) + len(SHIPPED)
    assert len(own) == len(OWN) == len(active)
    expected = sorted((int(m), to_epoch(at if isinstance(at, dt.datetime) else dt.datetime.fromisoformat(at)),
                       float(v)) for m, at, v in active)
    got = sorted(zip(own.member_key.tolist(), own.purchased_at.tolist(), own.amount.tolist(), strict=True))
    assert [(m, v) for m, _t, v in got] == [(m, v) for m, _t, v in expected]
    np.testing.assert_allclose([t for _m, t, _v in got], [t for _m, t, _v in expected])
    assert newest == AS_OF - 20 * DAY  # the auto-ships
    assert newest_own == AS_OF - 45 * DAY  # member 3's own return


def test_campaign_lookups_find_exactly_the_campaigns_auto_ships(engine: Engine) -> None:
    """Campaign 1's lines and not those of 10, 11 or 100 (whose ids share the characters), nor an
    order line whose id merely looks like an auto-ship's."""
    _check_lookups(engine)


@pytest.fixture
def icu_engine() -> Iterator[Engine]:
    """A PostgreSQL database with a non-C collation (ICU en-US: ';' sorts before ':' there)."""
    options = "TEMPLATE template0 ENCODING 'UTF8' LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'"
    with scratch_postgres(options, unreachable="has no database with an ICU collation") as engine:
        yield engine


@pytest.mark.postgres
def test_campaign_lookups_hold_under_a_non_c_collation(icu_engine: Engine) -> None:
    """Under ICU en-US the database's own order is not byte order ('autoship:1:5' sorts after
    'autoship:1;'): the lookups compare in "C" order and still find exactly the campaign's lines."""
    with icu_engine.connect() as connection:
        assert not connection.execute(text("SELECT 'autoship:1:5' < 'autoship:1;'")).scalar_one()
    _check_lookups(icu_engine)


def _check_lookups(engine: Engine) -> None:
    with engine.begin() as connection:
        _club(connection)
        for campaign in (10, 11, 100):
            write_autoships(connection, campaign, [AutoshipOrder(3, 2, Decimal("15.00"), AS_OF.date())])
        bulk_insert(
            connection, "purchases",
            ["line_id", "order_id", "member_key", "title_key", "quantity", "unit_price", "purchased_at", "channel"],
            [("autoship:1:4", None, 4, 1, 1, Decimal("10.00"), AS_OF, "web")],  # an imported order, kind 'order'
        )
        assert selections.shipped_member_keys(connection, 1) == {1, 2}
        assert selections.shipped_member_keys(connection, 10) == {3}
        assert selections.shipped_member_keys(connection, 2) == {2}
        assert selections.shipped_member_keys(connection, 3) == set()
        lines = selections.autoship_lines(connection, 2)
        assert lines.member_key.tolist() == [2] and lines.returned_units.tolist() == [1]
        assert len(selections.autoship_lines(connection, 1)) == 2


def _plan(connection: Connection, sql: str) -> str:
    if connection.dialect.name == "postgresql":
        connection.execute(text("ANALYZE purchases"))
        connection.execute(text("SET LOCAL enable_seqscan = off"))  # is an index usable at all? (tiny table)
        return "\n".join(str(r[0]) for r in connection.execute(text(f"EXPLAIN {sql}")))
    return "\n".join(str(r[-1]) for r in connection.execute(text(f"EXPLAIN QUERY PLAN {sql}")))


def _sql(connection: Connection, statement: object) -> str:
    compiled = statement.compile(dialect=connection.dialect, compile_kwargs={"literal_binds": True})  # type: ignore[attr-defined]
    return str(compiled)


def test_the_lookups_read_an_index_not_the_whole_table(engine: Engine) -> None:
    """A campaign's auto-ship lines come from an index (migration 0012), and so does the return test's
    probe: neither scans every order line."""
    with engine.begin() as connection:
        _club(connection)
        purchases = table_of(Purchase)
        lookup = _plan(connection, _sql(connection, select(purchases.c.member_key).where(
            selections._campaign_autoships(connection, purchases, 1))))
        returns = _plan(connection, _sql(connection, select(purchases.c.id).where(
            purchases.c.quantity < 0, line_kinds.active_order_line(purchases))))
    partial = re.compile(r"\bix_purchases_autoship\b(?!_)")
    if engine.dialect.name == "postgresql":
        assert "ix_purchases_autoship_line_id" in lookup and "Seq Scan" not in lookup, lookup
    else:
        assert re.search(r"SEARCH purchases USING INDEX \S+ \(line_id>\? AND line_id<\?\)", lookup), lookup
    assert partial.search(returns), returns


def test_a_return_of_an_own_order_after_an_auto_ship_is_the_members_own(engine: Engine) -> None:
    """Member 4 is sent T1 and keeps it, later orders another copy and sends that back: the
    return is of their own order (their buying nets to nothing), not of the auto-ship."""
    with engine.begin() as connection:
        _club(connection)
        write_autoships(connection, 3, [AutoshipOrder(4, 1, Decimal("15.00"), (AS_OF - 90 * DAY).date())])
        bulk_insert(
            connection, "purchases",
            ["line_id", "order_id", "member_key", "title_key", "quantity", "unit_price", "purchased_at", "channel"],
            [(line, line, 4, 1, q, Decimal("10.00"), at, "web")
             for line, q, at in (("O5", 1, AS_OF - 60 * DAY), ("O5-back", -1, AS_OF - 55 * DAY))],
        )  # fmt: skip
        purchases = table_of(Purchase)
        active = set(connection.scalars(select(purchases.c.line_id).where(line_kinds.active_order_line(purchases))))
        per_line = set(connection.scalars(
            select(purchases.c.line_id).where(line_kinds.active_order_line(purchases, per_line=True))))  # fmt: skip
        rfm = rfm_aggregates(connection, AS_OF, SINCE)
        shipped = selections.autoship_lines(connection, 3)
    assert active == per_line == {line for line, *_ in OWN} | {"O5", "O5-back"}  # A-back is still campaign 2's
    m4 = rfm.member_ids.index("M4")
    assert (rfm.recency_days[m4], rfm.frequency[m4], rfm.monetary[m4]) == (55, 1, 0.0)
    assert shipped.member_key.tolist() == [4] and shipped.returned_units.tolist() == [0]  # the auto-ship was kept
