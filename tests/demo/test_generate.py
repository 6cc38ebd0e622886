"""The demo club: seeded, believable in the ways the recommender and segments rely on."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import Engine, func, insert, inspect, select, text
from typer.testing import CliRunner

from demo import generate as demo
from demo.generate import (
    DemoChunk,
    DemoMembers,
    DemoSpec,
    DemoTitles,
    club_categories,
    generate_members,
    generate_titles,
    purchase_chunks,
)
from demo.load import DemoDataExistsError, load_demo, top_share
from recsys.storage.categories import read_clc
from recsys.storage.schema import CHANNELS, ContactTitle, Member, Purchase, Title, TitleCategory
from tests.conftest import shared_data

END = dt.date(2026, 11, 22)
SPEC = DemoSpec(members=3_000, titles=600, years=3, seed=7, end_date=END)


def _clc() -> Path:
    return shared_data("clc", "clc_level1_2.csv")


def _club(spec: DemoSpec) -> tuple[DemoTitles, DemoMembers, DemoChunk]:
    codes = {node.code for node in read_clc(_clc())}
    titles = generate_titles(spec, club_categories(codes))
    members = generate_members(spec, titles)
    chunks = list(purchase_chunks(spec, titles, members))
    fields: dict[str, Any] = {
        name: (
            [x for c in chunks for x in getattr(c, name)]
            if name == "member_id"
            else np.concatenate([getattr(c, name) for c in chunks])
        )
        for name in DemoChunk.__dataclass_fields__
    }
    merged = DemoChunk(**fields)
    return titles, members, merged


@pytest.fixture(scope="module")
def club() -> tuple[DemoTitles, DemoMembers, DemoChunk]:
    return _club(SPEC)


def test_same_seed_same_club_and_another_seed_another(
    club: tuple[DemoTitles, DemoMembers, DemoChunk],
) -> None:
    titles, members, lines = club
    titles2, members2, lines2 = _club(SPEC)
    assert titles.title == titles2.title and titles.title_id == titles2.title_id
    assert np.array_equal(members.joined_day, members2.joined_day)
    for name in ("member_key", "title_key", "quantity", "unit_cents", "purchased_at", "channel"):
        assert np.array_equal(getattr(lines, name), getattr(lines2, name)), name
    assert list(lines.name) == list(lines2.name)
    other_titles, _, other_lines = _club(DemoSpec(**{**SPEC.__dict__, "seed": 8}))
    assert other_titles.title != titles.title
    assert not np.array_equal(other_lines.title_key[:1000], lines.title_key[:1000])


def test_orders_span_all_channels_with_a_few_returns(
    club: tuple[DemoTitles, DemoMembers, DemoChunk],
) -> None:
    _, _, lines = club
    assert set(np.unique(lines.channel).tolist()) == set(range(len(CHANNELS)))
    returns = lines.quantity < 0
    assert 0.005 < returns.mean() < 0.03
    assert lines.is_return[returns].all() and (lines.quantity[~returns] > 0).all()
    assert abs(len(lines.quantity) - SPEC.target_lines) < 0.1 * SPEC.target_lines


def test_members_buy_mostly_in_their_favourite_categories(
    club: tuple[DemoTitles, DemoMembers, DemoChunk],
) -> None:
    titles, members, lines = club
    fav = members.favourites[lines.member_key - 1]
    title_cats = np.stack([titles.primary_cat, titles.second_cat], axis=1)[lines.title_key - 1]
    hit = ((fav[:, :, None] == title_cats[:, None, :]) & (fav[:, :, None] >= 0)).any(axis=(1, 2))
    assert 0.78 < hit.mean() < 0.92
    counts = (members.favourites >= 0).sum(axis=1)
    assert counts.min() == 1 and counts.max() == 3


def test_sales_are_skewed_over_titles_and_members(
    club: tuple[DemoTitles, DemoMembers, DemoChunk],
) -> None:
    titles, members, lines = club
    units = np.bincount(lines.title_key - 1, np.maximum(lines.quantity, 0), minlength=len(titles))
    top_tenth = np.sort(units)[::-1][: len(titles) // 10].sum() / units.sum()
    assert top_tenth > 0.45
    revenue = np.bincount(
        lines.member_key - 1, lines.quantity * lines.unit_cents, minlength=len(members)
    )
    assert 0.65 < top_share(revenue.astype(np.int64), 0.2) < 0.9


def test_lines_respect_release_join_and_window(
    club: tuple[DemoTitles, DemoMembers, DemoChunk],
) -> None:
    titles, members, lines = club
    day = lines.purchased_at.astype("datetime64[D]").astype(np.int64)
    assert (day >= SPEC.start_day).all() and (day <= SPEC.end_day).all()
    sold = ~lines.is_return
    assert (titles.published_day[lines.title_key[sold] - 1] <= day[sold]).all()
    assert (members.joined_day[lines.member_key[sold] - 1] <= day[sold]).all()
    # unit price near the list price
    ratio = lines.unit_cents / titles.price_cents[lines.title_key - 1]
    assert ratio.min() >= 0.74 and ratio.max() <= 1.01


def test_catalogue_has_unsold_new_releases_and_quarterly_releases(
    club: tuple[DemoTitles, DemoMembers, DemoChunk],
) -> None:
    titles, _, lines = club
    units = np.bincount(lines.title_key - 1, minlength=len(titles))
    fresh = titles.published_day > SPEC.end_day - demo.UNSOLD_DAYS
    assert fresh.sum() > 0 and (units[fresh] == 0).all()
    quarters = np.unique(
        titles.published_day[titles.published_day >= SPEC.start_day]
        .astype("datetime64[D]")
        .astype("datetime64[M]")
        .astype(np.int64)
        // 3
    )
    assert len(quarters) >= 4 * SPEC.years
    assert {"zh", "en"} <= set(titles.language.tolist())
    assert (~titles.in_stock).any() and titles.in_stock.mean() > 0.9
    assert titles.price_cents.min() >= 1500 and titles.price_cents.max() <= 39800


def test_chunks_number_orders_uniquely(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(demo, "CHUNK_MEMBERS", 300)
    _, _, lines = _club(DemoSpec(members=1_000, titles=200, seed=3, end_date=END))
    ids = {
        (r, o, n)
        for r, o, n in zip(
            lines.is_return.tolist(), lines.order_no.tolist(), lines.line_no.tolist(), strict=True
        )
    }
    assert len(ids) == len(lines.order_no)
    assert len(lines.member_id) == len(set(lines.member_id)) == 1_000


def test_loads_with_integrity_and_refuses_a_second_load(engine: Engine) -> None:
    spec = DemoSpec(members=400, titles=120, years=2, seed=5, end_date=END)
    summary = load_demo(engine, spec, _clc())
    assert summary.counts["members"] == 400 and summary.counts["titles"] == 120
    with engine.connect() as connection:
        orphans = connection.scalar(text(
            "SELECT count(*) FROM purchases p LEFT JOIN members m ON m.id = p.member_key "
            "LEFT JOIN titles t ON t.id = p.title_key WHERE m.id IS NULL OR t.id IS NULL"
        ))  # fmt: skip
        assert orphans == 0
        primaries = connection.execute(
            select(TitleCategory.title_key, func.count()).where(TitleCategory.is_primary)
            .group_by(TitleCategory.title_key)
        ).all()  # fmt: skip
        assert len(primaries) == 120 and {n for _, n in primaries} == {1}
        line_id, order_id = connection.execute(
            select(Purchase.line_id, Purchase.order_id).where(Purchase.quantity < 0).limit(1)
        ).one()
        assert order_id and line_id.startswith(order_id + "-")
        assert summary.counts["purchases"] == connection.scalar(
            select(func.count()).select_from(Purchase)
        )
    index_names = {ix["name"] for ix in inspect(engine).get_indexes("purchases")}
    assert {"ix_purchases_title_key", "ix_purchases_member_key_purchased_at"} <= index_names
    with pytest.raises(DemoDataExistsError, match="--replace"):
        load_demo(engine, spec, _clc())
    with engine.begin() as connection:  # what an old club's edition showed: no foreign keys reach it
        connection.execute(insert(ContactTitle).values(
            contact_id=1, campaign_id=1, member_key=1, title_key=1, role="main", position=0
        ))  # fmt: skip
    again = load_demo(engine, spec, _clc(), replace=True)
    assert again.counts == summary.counts
    with engine.connect() as connection:  # else the new club's contact 1 would inherit it
        assert connection.scalar(select(func.count()).select_from(ContactTitle)) == 0
    with engine.begin() as connection:  # the id sequences moved past the demo's keys
        connection.execute(insert(Member).values(member_id="X1", name="新会员", status="active"))
        connection.execute(insert(Title).values(title_id="X1", title="新书", in_stock=True))


def test_cli_demo_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bookclub_cli.main import app

    monkeypatch.setenv("BOOKCLUB_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("BOOKCLUB_SHARED_DATA_DIR", str(_clc().parent.parent))
    monkeypatch.delenv("BOOKCLUB_DATABASE_URL", raising=False)
    runner = CliRunner()
    args = ["demo-data", "--members", "200", "--titles", "60", "--end-date", "2026-06-30"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "purchases" in first.output and "2026-06-30" in first.output
    second = runner.invoke(app, args)
    assert second.exit_code == 1 and "--replace" in second.output
    assert runner.invoke(app, [*args, "--replace"]).exit_code == 0
