from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Engine

from recsys.storage.bulk import bulk_insert
from recsys.storage.purchase_log import (
    newest_purchase,
    read_members,
    read_purchase_log,
    read_purchases,
    read_title_categories,
    titles_sold_before,
    to_epoch,
)

T0 = dt.datetime(2024, 3, 1, 12, 30, 15)


def _load(engine: Engine) -> None:
    with engine.begin() as c:
        bulk_insert(c, "categories", ["code", "name", "parent_code", "level"], [("I", "文学", None, 1)])
        bulk_insert(
            c,
            "titles",
            ["id", "title_id", "title", "in_stock"],
            [(1, "T1", "一", True), (2, "T2", "二", True)],
        )
        bulk_insert(c, "title_categories", ["title_key", "category_code", "is_primary"], [(1, "I", True)])
        bulk_insert(
            c,
            "members",
            ["id", "member_id", "name", "status"],
            [(1, "M1", "甲", "active"), (2, "M2", "乙", "active")],
        )
        rows = [
            (1, "L1", 1, 1, 2, 10, T0, "web"),
            (2, "L2", 1, 2, -1, 10, T0 + dt.timedelta(days=1), "shop"),
            (3, "L3", 2, 2, 1, 10, T0 + dt.timedelta(days=40), "mail"),
            (4, "L4", 2, 1, 1, 10, T0 - dt.timedelta(days=400), "mail"),
        ]
        bulk_insert(
            c,
            "purchases",
            [
                "id",
                "line_id",
                "member_key",
                "title_key",
                "quantity",
                "unit_price",
                "purchased_at",
                "channel",
            ],
            rows,
        )


def test_window_streams_into_arrays(engine: Engine) -> None:
    _load(engine)
    with engine.connect() as c:
        got = read_purchases(c, T0 - dt.timedelta(days=1), T0 + dt.timedelta(days=30), batch_rows=1)
        everything = read_purchases(c, None, T0 + dt.timedelta(days=365))
        assert newest_purchase(c) == T0 + dt.timedelta(days=40)
        assert sorted(titles_sold_before(c, T0).tolist()) == [1]
        assert read_title_categories(c) == [(1, "I", True)]
        assert read_members(c).ids == ["M1", "M2"]
    order = got.purchased_at.argsort()
    assert got.member_key[order].tolist() == [1, 1]
    assert got.title_key[order].tolist() == [1, 2]
    assert got.quantity[order].tolist() == [2, -1]
    assert got.purchased_at[order][0] == pytest.approx(to_epoch(T0), abs=1e-3)
    assert len(everything) == 4
    newest = got.newest()
    assert newest is not None
    assert abs((newest - (T0 + dt.timedelta(days=1))).total_seconds()) < 1e-3


def _more(engine: Engine, rows: list[tuple[int, int, int, int, dt.datetime]]) -> None:
    with engine.begin() as c:
        bulk_insert(
            c,
            "purchases",
            ["id", "line_id", "member_key", "title_key", "quantity", "unit_price", "purchased_at", "channel"],
            [(i, f"L{i}", m, t, q, 10, at, "web") for i, m, t, q, at in rows],
        )


def test_log_reads_id_ranges_in_id_order_with_microseconds(engine: Engine) -> None:
    _load(engine)
    odd = T0 + dt.timedelta(days=2, microseconds=123_456)
    _more(engine, [(7, 2, 1, 3, odd), (9, 1, 2, -2, T0 + dt.timedelta(days=3))])
    with engine.connect() as c:
        everything = read_purchase_log(c, batch_rows=2)  # ids 1-4, 7, 9 over several ranges
        newer = read_purchase_log(c, after_id=3, upto_id=7)
        window = read_purchase_log(c, start=T0, end=T0 + dt.timedelta(days=3), batch_rows=3)
    assert everything.purchase_id.tolist() == [1, 2, 3, 4, 7, 9]
    assert everything.arrays.member_key.tolist() == [1, 1, 2, 2, 2, 1]
    assert everything.arrays.quantity.tolist() == [2, -1, 1, 1, 3, -2]
    assert everything.arrays.purchased_at[4] == pytest.approx(to_epoch(odd), abs=1e-5)
    assert newer.purchase_id.tolist() == [4, 7]
    assert window.purchase_id.tolist() == [1, 2, 7]
    assert window.max_id() == 7
    cut = everything.window(T0, T0 + dt.timedelta(days=3))
    assert cut.title_key.tolist() == window.arrays.title_key.tolist()
