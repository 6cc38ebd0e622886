"""The importer on SQLite and PostgreSQL: validation, all-or-nothing, idempotence, counts."""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from recsys.errors import BookclubError, ImportRejectedError
from recsys.storage.categories import load_categories, read_clc
from recsys.storage.imports import KINDS, ImportOptions, ImportSummary, csv_source, import_rows
from recsys.storage.schema import Category, CategoryMapping, Member, Purchase, Title, TitleCategory
from tests.conftest import shared_data

CATEGORIES = [
    {"code": "I", "name": "文学", "parent_code": ""},
    {"code": "I2", "name": "中国文学", "parent_code": "I"},
    {"code": "I24", "name": "小说", "parent_code": "I2"},
    {"code": "K", "name": "历史、地理", "parent_code": ""},
]
MEMBERS = [
    {"member_id": "M1", "name": "王芳", "joined_on": "2020-01-05", "channel": "mail", "city": "北京"},
    {"member_id": "M2", "name": "Li Lei", "joined_on": "2021-03-01", "channel": "web", "birth_year": "2001"},
]
TITLES = [
    {"title_id": "T1", "title": "活着", "author": "余华", "price": "28.00", "categories": "I24;K"},
    {"title_id": "T2", "title": "The Trial", "price": "12.5", "categories": "shop:Novels"},
    {"title_id": "T3", "title": "史记", "categories": "K", "in_stock": "no"},
]


def write_csv(path: Path, rows: list[dict[str, str]], columns: list[str] | None = None) -> Path:
    columns = columns or list(rows[0])
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wt", encoding="utf-8", newline="") as handle:  # type: ignore[operator]
        writer = csv.DictWriter(handle, columns)
        writer.writeheader()
        for row in rows:
            writer.writerow(row)
    return path


def run(engine: Engine, kind: str, path: Path, **options: object) -> ImportSummary:
    spec = KINDS[kind]
    with engine.begin() as connection:
        return import_rows(connection, spec, csv_source(path, spec.required, spec.optional),
                           ImportOptions(**options))  # type: ignore[arg-type]


def count(engine: Engine, model: type) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(model)).scalar_one())


def purchases(n: int, bad: dict[int, dict[str, str]] | None = None) -> list[dict[str, str]]:
    rows = [
        {"line_id": f"O{i // 2}-{i % 2 + 1}", "member_id": f"M{i % 2 + 1}", "title_id": f"T{i % 3 + 1}",
         "purchased_at": f"2024-0{i % 9 + 1}-1{i % 10} 10:00:00", "quantity": "1" if i % 7 else "-1",
         "unit_price": "20.00", "channel": ("mail", "web", "sms", "phone", "email", "shop")[i % 6],
         "order_id": f"O{i // 2}"}
        for i in range(n)
    ]
    for index, change in (bad or {}).items():
        rows[index].update(change)
    return rows


@pytest.fixture
def club(engine: Engine, tmp_path: Path) -> Engine:
    """Categories, a mapping, two members and three titles."""
    run(engine, "categories", write_csv(tmp_path / "categories.csv", CATEGORIES))
    run(engine, "category-mappings", write_csv(tmp_path / "maps.csv", [
        {"scheme": "shop", "label": "Novels", "category_code": "I24"}]))
    run(engine, "members", write_csv(tmp_path / "members.csv", MEMBERS,
                                     ["member_id", "name", "joined_on", "channel", "city", "birth_year"]))
    run(engine, "titles", write_csv(tmp_path / "titles.csv", TITLES,
                                    ["title_id", "title", "author", "price", "categories", "in_stock"]))
    return engine


def test_tree_levels_and_title_categories(club: Engine) -> None:
    with club.connect() as connection:
        levels = dict(connection.execute(select(Category.code, Category.level)).all())
        links = connection.execute(
            select(Title.title_id, TitleCategory.category_code, TitleCategory.is_primary)
            .join(Title, Title.id == TitleCategory.title_key).order_by(Title.title_id, TitleCategory.category_code)
        ).all()
        in_stock = dict(connection.execute(select(Title.title_id, Title.in_stock)).all())
    assert levels == {"I": 1, "I2": 2, "I24": 3, "K": 1}
    assert [tuple(r) for r in links] == [
        ("T1", "I24", True), ("T1", "K", False), ("T2", "I24", True), ("T3", "K", True)]
    assert in_stock == {"T1": True, "T2": True, "T3": False}


def test_purchases_land_and_reimport_adds_nothing(club: Engine, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "purchases.csv.gz", purchases(40))
    first = run(club, "purchases", path)
    again = run(club, "purchases", path)
    assert (first.read, first.inserted, first.already_present, first.rejected) == (40, 40, 0, 0)
    assert (again.read, again.inserted, again.already_present, again.rejected) == (40, 0, 40, 0)
    assert count(club, Purchase) == 40
    with club.connect() as connection:
        returns = connection.execute(select(func.count()).where(Purchase.quantity < 0)).scalar_one()
    assert returns == 6


def test_bad_date_on_line_7_rejects_whole_file(club: Engine, tmp_path: Path) -> None:
    # line 1 is the header, so row index 5 is line 7
    path = write_csv(tmp_path / "purchases.csv", purchases(20, {5: {"purchased_at": "2024-13-45"}}))
    before = {m.__name__: count(club, m) for m in (Purchase, Member, Title)}
    with pytest.raises(ImportRejectedError) as info:
        run(club, "purchases", path, rejects_path=tmp_path / "rejects.csv")
    message = str(info.value)
    assert "purchases.csv:7: purchased_at:" in message and "'2024-13-45'" in message
    assert {m.__name__: count(club, m) for m in (Purchase, Member, Title)} == before
    rejects = list(csv.DictReader((tmp_path / "rejects.csv").open(encoding="utf-8")))
    assert [(r["line"], r["field"]) for r in rejects] == [("7", "purchased_at")]


def test_unknown_member_and_title_are_errors(club: Engine, tmp_path: Path) -> None:
    rows = purchases(10, {2: {"member_id": "NOBODY"}, 8: {"title_id": "NOTHING"}})
    with pytest.raises(ImportRejectedError, match=r"purchases.csv:4: member_id: unknown member 'NOBODY'"):
        run(club, "purchases", write_csv(tmp_path / "purchases.csv", rows))
    assert count(club, Purchase) == 0


def test_skip_invalid_lands_good_rows_and_counts_add_up(club: Engine, tmp_path: Path) -> None:
    rows = purchases(30, {
        0: {"quantity": "0"},
        3: {"member_id": "NOBODY"},
        4: {"channel": "pigeon", "unit_price": "-3"},
        9: {"line_id": "O0-1"},  # row 0's line id, but row 0 is bad: this one lands
        12: {"line_id": "O1-1"},  # a duplicate of row 2's line id
    })
    summary = run(club, "purchases", write_csv(tmp_path / "p.csv", rows), skip_invalid=True,
                  rejects_path=tmp_path / "rejects.csv")
    assert summary.read == 30 and summary.rejected == 4 and summary.inserted == 26
    assert summary.adds_up()
    rejects = {r["line"]: r for r in csv.DictReader((tmp_path / "rejects.csv").open(encoding="utf-8"))}
    assert set(rejects) == {"2", "5", "6", "14"}
    assert rejects["6"]["field"] == "unit_price;channel"
    assert "duplicate line_id 'O1-1' (first on line 4)" in rejects["14"]["reason"]
    assert count(club, Purchase) == 26


def test_unmapped_label_is_reported(club: Engine, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "t.csv", [{"title_id": "T9", "title": "x", "categories": "shop:Poems"}])
    with pytest.raises(ImportRejectedError, match="label 'Poems' of scheme 'shop' has no category mapping"):
        run(club, "titles", path)


def test_header_errors_name_the_file_and_column(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "m.csv", [{"member_id": "M1", "nmae": "x"}])
    spec = KINDS["members"]
    with pytest.raises(BookclubError, match=r"m.csv:1: header: missing required column\(s\) name; unknown"):
        csv_source(path, spec.required, spec.optional)


def test_category_mapping_to_unknown_code(club: Engine, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "maps.csv", [{"scheme": "s", "label": "l", "category_code": "ZZZ"}])
    with pytest.raises(ImportRejectedError, match="unknown category 'ZZZ'"):
        run(club, "category-mappings", path)
    assert count(club, CategoryMapping) == 1


@pytest.mark.realdata
@pytest.mark.slow
def test_online_retail_every_line_accounted(sqlite_engine: Engine, tmp_path: Path) -> None:
    from recsys.importing.online_retail import import_online_retail

    path = shared_data("online-retail", "online_retail.csv.gz")
    with sqlite_engine.begin() as connection:
        first = import_online_retail(connection, path, ImportOptions())
    with sqlite_engine.begin() as connection:
        again = import_online_retail(connection, path, ImportOptions())
    lines = first[-1]
    assert lines.read == 541_909 and lines.adds_up()
    assert lines.skipped_reasons["no CustomerID (guest checkout: cannot be tied to a member)"] == 135_080
    assert lines.inserted == count(sqlite_engine, Purchase) > 400_000
    assert all(s.inserted == 0 for s in again) and again[-1].read == 541_909 and again[-1].adds_up()


@pytest.mark.realdata
def test_shakespeare_and_co(engine: Engine, tmp_path: Path) -> None:
    from recsys.importing.shakespeare import import_shakespeare_and_co

    directory = shared_data("shakespeare-and-co")
    with engine.begin() as connection:
        load_categories(connection, read_clc(shared_data("clc", "clc_level1_2.csv")))
        summaries = import_shakespeare_and_co(connection, directory, shared_data("clc"), ImportOptions())
    borrows = summaries[-1]
    assert borrows.read == 21_200 and borrows.adds_up() and borrows.inserted > 21_000
    assert count(engine, Member) == 5_204 and count(engine, Title) == 6_009
    with engine.connect() as connection:
        fiction = connection.execute(
            select(func.count()).where(TitleCategory.category_code == "I14", TitleCategory.is_primary)
        ).scalar_one()
    assert fiction > 2_500


def test_category_cycles_and_orphans_are_rejected_not_lost(engine: Engine, tmp_path: Path) -> None:
    rows = [
        {"code": "A", "name": "a", "parent_code": "B"},
        {"code": "B", "name": "b", "parent_code": "A"},  # A and B form a cycle
        {"code": "C", "name": "c", "parent_code": ""},
        {"code": "P", "name": "p", "parent_code": "ZZ"},  # unknown parent
        {"code": "K", "name": "k", "parent_code": "P"},  # under a rejected parent
    ]
    path = write_csv(tmp_path / "tree.csv", rows)
    with pytest.raises(ImportRejectedError, match="4 bad row"):
        run(engine, "categories", path)
    summary = run(engine, "categories", path, skip_invalid=True, rejects_path=tmp_path / "r.csv")
    assert (summary.read, summary.inserted, summary.already_present, summary.rejected) == (5, 1, 0, 4)
    rejects = {r["line"]: r["reason"] for r in csv.DictReader((tmp_path / "r.csv").open(encoding="utf-8"))}
    assert set(rejects) == {"2", "3", "5", "6"}
    assert "unknown parent category 'ZZ'" in rejects["5"] and "does not reach the tree" in rejects["6"]
    assert count(engine, Category) == 1


def test_a_line_failing_two_checks_counts_once(club: Engine, tmp_path: Path) -> None:
    rows = purchases(3, {1: {"line_id": "O0-1", "member_id": "NOBODY"}})  # duplicate and unknown
    summary = run(club, "purchases", write_csv(tmp_path / "p.csv", rows), skip_invalid=True)
    assert (summary.read, summary.inserted, summary.rejected) == (3, 2, 1) and summary.adds_up()


def test_short_rows_and_blank_lines(club: Engine, tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text(
        "line_id,member_id,title_id,purchased_at,quantity,order_id\n"
        "L1,M1,T1,2024-01-01,1,\"multi\nline\"\n"
        "\n"
        "L2,M1,T2,2024-01-02\n",
        encoding="utf-8",
    )
    with pytest.raises(ImportRejectedError, match=r"p.csv:5: quantity: is required"):
        run(club, "purchases", path)


def test_repeated_header_column(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text("member_id,name,name\nM1,a,b\n", encoding="utf-8")
    with pytest.raises(BookclubError, match="column\\(s\\) name appear more than once"):
        csv_source(path, KINDS["members"].required, KINDS["members"].optional)


def test_a_large_import_gathers_the_planners_statistics_on_postgresql(
    club: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bulk import leaves PostgreSQL's planner with row counts (ANALYZE: pg_class.reltuples,
    written in the import's transaction), not a guess until autovacuum comes by; below the
    threshold nothing is gathered (reltuples stays -1, "never analyzed")."""
    from recsys.storage.imports import loader

    def estimate() -> float | None:
        with club.connect() as connection:
            if connection.dialect.name != "postgresql":
                return None
            return float(connection.exec_driver_sql(
                "SELECT reltuples FROM pg_class WHERE relname = 'purchases'"
            ).scalar_one())  # fmt: skip

    monkeypatch.setattr(loader, "ANALYZE_AFTER_ROWS", 30)
    run(club, "purchases", write_csv(tmp_path / "small.csv", purchases(20)))
    assert estimate() in (None, -1.0)  # 20 lines: below the threshold
    summary = run(club, "purchases", write_csv(tmp_path / "p.csv", purchases(60)))
    assert summary.inserted == 40  # the first 20 are there already
    assert estimate() in (None, 60.0)
