"""A worker's title cache (api.recommending.TitleShelf) follows the database: prices, stock
and new titles every minute without rebuilding what did not change; whole records less often.
On SQLite and PostgreSQL (``title_stock`` casts prices in SQL)."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, delete, func, insert, select, update

from api import recommending
from api.recommending import TitleShelf
from recsys import serving
from recsys.storage.schema import Title
from tests.api.conftest import with_club


@pytest.fixture
def club_engine(engine: Engine) -> Engine:
    """This module runs on SQLite and PostgreSQL."""
    return with_club(engine)


def test_the_minutely_re_read_takes_prices_stock_and_new_titles_and_keeps_the_rest(
    client: TestClient, club_engine: Engine
) -> None:
    holder = client.app.state.holder  # type: ignore[attr-defined]
    shelf = TitleShelf(club_engine, holder.serving().model, ttl=0.0)
    before = shelf.current()
    cached = before.title_json(before.details["T01"])  # a fragment the shelf now holds
    shelf._reread()
    same = shelf.current()
    assert same.details is before.details and same.fragments["T01"] is cached  # nothing changed
    with club_engine.begin() as connection:
        connection.execute(update(Title).where(Title.title_id == "T02").values(price=Decimal("1.25"), title="新名"))
        connection.execute(update(Title).where(Title.title_id == "T05").values(in_stock=True))
        key = connection.scalar(select(func.max(Title.id))) + 1  # the club's keys are explicit
        connection.execute(
            insert(Title).values(id=key, title_id="T77", title="新书", price=Decimal("9.90"), in_stock=True)
        )
    shelf._reread()
    after = shelf.current()
    assert after.details["T02"].price == 1.25 and after.details["T02"].title == before.details["T02"].title
    assert after.details["T05"].in_stock and "T05" not in after.out_of_stock
    assert after.details["T77"].title == "新书" and after.details["T77"].price == 9.9
    assert after.details["T03"] is before.details["T03"]  # unchanged records kept, and their JSON
    assert after.fragments["T01"] is cached and "T02" not in after.fragments
    assert json.loads(after.title_json(after.details["T02"]) + b"}")["price"] == 1.25
    shelf.full_every = 0.0  # the whole records, as every SHELF_FULL_SECONDS
    shelf._reread()
    assert shelf.current().details["T02"].title == "新名"
    with club_engine.begin() as connection:
        connection.execute(delete(Title).where(Title.title_id == "T77"))
    shelf.full_every = 3600.0
    shelf._reread()
    assert "T77" not in shelf.current().details and "T02" in shelf.current().details


def test_read_page_by_page_it_is_the_whole_read(
    client: TestClient, club_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = client.app.state.holder.serving().model  # type: ignore[attr-defined]
    with club_engine.connect() as connection:
        whole = serving.read_shelf(connection, model)
    monkeypatch.setattr(recommending, "SHELF_PAGE", 3)  # the club's titles over several pages
    monkeypatch.setattr(recommending, "SHELF_RECORDS_PAGE", 2)
    shelf = TitleShelf(club_engine, model, ttl=0.0)
    paged = shelf._read()  # the whole records again, as every SHELF_FULL_SECONDS
    assert paged.details == whole.details and len(whole.details) > 3 * 3
    assert sorted(paged.out_of_stock) == sorted(whole.out_of_stock)
    with club_engine.begin() as connection:
        connection.execute(update(Title).where(Title.title_id.in_(["T01", "T12"])).values(in_stock=False))
    shelf._reread()  # prices and stock, page by page
    with club_engine.connect() as connection:
        assert shelf.current().details == serving.read_shelf(connection, model).details
