"""The incremental purchases extract: a warm read equals a cold one, and a changed table is re-read."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
from sqlalchemy import Engine, text

from recsys.storage.bulk import bulk_insert
from recsys.storage.purchase_log import PurchaseLog, read_purchase_log
from training.extract_cache import ExtractCache

T0 = dt.datetime(2024, 3, 1, 12, 30, 15)
COLUMNS = ["id", "line_id", "member_key", "title_key", "quantity", "unit_price", "purchased_at", "channel"]


def _parents(engine: Engine) -> None:
    with engine.begin() as c:
        bulk_insert(
            c,
            "titles",
            ["id", "title_id", "title", "in_stock"],
            [(t, f"T{t}", "书", True) for t in (1, 2, 3)],
        )
        bulk_insert(
            c,
            "members",
            ["id", "member_id", "name", "status"],
            [(m, f"M{m}", "人", "active") for m in (1, 2, 3)],
        )


def _lines(engine: Engine, first: int, n: int, member: int = 1) -> None:
    rows = [
        (i, f"L{i}-{member}", member + i % 2, 1 + i % 3, 1 + i % 4, 10, T0 + dt.timedelta(hours=i), "web")
        for i in range(first, first + n)
    ]
    with engine.begin() as c:
        bulk_insert(c, "purchases", COLUMNS, rows)


def _same(a: PurchaseLog, b: PurchaseLog) -> None:
    assert np.array_equal(a.purchase_id, b.purchase_id)
    for name in ("member_key", "title_key", "quantity", "purchased_at"):
        assert np.array_equal(getattr(a.arrays, name), getattr(b.arrays, name)), name


def test_appended_lines_are_read_alone_and_match_a_cold_read(engine: Engine, tmp_path: Path) -> None:
    _parents(engine)
    _lines(engine, 1, 50)
    cache = ExtractCache(tmp_path / "cache", verify_rows=8)
    with engine.connect() as c:
        first, report = cache.read(c, batch_rows=7)
    assert report.state == "cold" and len(first) == 50
    _lines(engine, 51, 5)
    with engine.connect() as c:
        warm, report = cache.read(c, batch_rows=7)
        cold = read_purchase_log(c)
    assert (report.state, report.cached_rows, report.new_rows) == ("warm", 50, 5)
    _same(warm, cold)
    with engine.connect() as c:  # nothing new: served from the file alone
        again, report = cache.read(c)
    assert (report.state, report.new_rows) == ("warm", 0)
    _same(again, cold)


def test_a_deleted_line_invalidates_the_cache(engine: Engine, tmp_path: Path) -> None:
    _parents(engine)
    _lines(engine, 1, 30)
    cache = ExtractCache(tmp_path / "cache", verify_rows=0)
    with engine.connect() as c:
        cache.read(c)
    with engine.begin() as c:
        c.execute(text("DELETE FROM purchases WHERE id = 12"))
    with engine.connect() as c:
        got, report = cache.read(c)
        cold = read_purchase_log(c)
    assert report.state == "invalidated" and "deleted" in report.reason
    assert 12 not in got.purchase_id.tolist()
    _same(got, cold)


def test_a_refilled_table_with_the_same_ids_invalidates_the_cache(engine: Engine, tmp_path: Path) -> None:
    _parents(engine)
    _lines(engine, 1, 30)
    cache = ExtractCache(tmp_path / "cache")
    with engine.connect() as c:
        cache.read(c)
    with engine.begin() as c:
        c.execute(text("DELETE FROM purchases"))
    _lines(engine, 1, 30, member=2)  # same ids and count, other members
    with engine.connect() as c:
        got, report = cache.read(c)
        cold = read_purchase_log(c)
    assert report.state == "invalidated" and "differ" in report.reason
    _same(got, cold)


def test_an_unreadable_cache_file_is_a_cold_read(engine: Engine, tmp_path: Path) -> None:
    _parents(engine)
    _lines(engine, 1, 10)
    cache = ExtractCache(tmp_path / "cache")
    cache.path.parent.mkdir(parents=True)
    cache.path.write_bytes(b"half a file")
    with engine.connect() as c:
        got, report = cache.read(c)
    assert report.state == "cold" and len(got) == 10


def test_a_cache_file_with_a_changed_byte_is_a_cold_read(engine: Engine, tmp_path: Path) -> None:
    """The .npz's zip CRC catches a changed byte; that must start over, not stop training."""
    _parents(engine)
    _lines(engine, 1, 300)
    cache = ExtractCache(tmp_path / "cache")
    with engine.connect() as c:
        cache.read(c)  # writes the cache
    data = bytearray(cache.path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    cache.path.write_bytes(bytes(data))
    with engine.connect() as c:
        got, report = cache.read(c)
    assert report.state == "cold" and len(got) == 300
