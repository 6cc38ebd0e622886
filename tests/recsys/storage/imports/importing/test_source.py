"""A broken file is rejected whole, naming the line (issue 9, findings 2 and 8): an unmatched
quote, text after a closing quote, a field over the csv limit, bytes that are not UTF-8, a
truncated or corrupt gzip. What is fine stays fine: quoted line breaks, doubled quotes, a BOM."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from recsys.errors import BookclubError
from recsys.importing.online_retail import NO_CUSTOMER, import_online_retail
from recsys.storage.imports import KINDS, ImportOptions, ImportSummary, csv_source, import_rows
from recsys.storage.imports.source import MAX_FIELD, read_csv
from recsys.storage.schema import Member, Purchase, Title

UNTERMINATED = 'member_id,name\nC6,"Gina\nC7,Hal\nC8,Ida\n'  # the file


def members(engine: Engine, path: Path) -> ImportSummary:
    spec = KINDS["members"]
    with engine.begin() as connection:
        return import_rows(connection, spec, csv_source(path, spec.required, spec.optional), ImportOptions())


def count(engine: Engine, model: type) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(model)).scalar_one())


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8", newline="")
    return path


def test_unterminated_quote_rejects_the_file_at_the_line_it_opened(engine: Engine, tmp_path: Path) -> None:
    path = write(tmp_path / "u.csv", UNTERMINATED)
    with pytest.raises(BookclubError, match=r"u\.csv:2: name: a quoted field opens here and never closes"):
        members(engine, path)
    assert count(engine, Member) == 0


def test_unterminated_quote_in_a_long_file_is_found_at_its_line(sqlite_engine: Engine, tmp_path: Path) -> None:
    # the runaway field passes the csv field limit long before the end of the file
    rows = "".join(f"C{i},Name {i}\n" for i in range(10, 30_000))
    path = write(tmp_path / "long.csv", 'member_id,name\nC1,Ann\nC2,"Bo\n' + rows)
    with pytest.raises(BookclubError, match=r"long\.csv:3: name: a quoted field opens here and runs past"):
        members(sqlite_engine, path)
    assert count(sqlite_engine, Member) == 0


def test_a_stray_quote_closing_lines_later_is_reported_where_it_opened(tmp_path: Path) -> None:
    path = write(tmp_path / "s.csv", 'member_id,name\nC6,"Gina\nC7,Hal\nC8,"Ida"x\n')
    with pytest.raises(BookclubError, match=r"s\.csv:2: name: a quoted field opens here and closes on line 4"):
        list(read_csv(path).rows())


def test_text_after_a_closing_quote_names_line_and_field(tmp_path: Path) -> None:
    path = write(tmp_path / "t.csv", 'member_id,name,city\nC1,Ann,Oslo\nC2,"Bo"b,Rome\n')
    with pytest.raises(BookclubError, match=r"t\.csv:3: name: text after the closing quote"):
        list(read_csv(path).rows())


def test_quoted_line_breaks_and_doubled_quotes_still_work(engine: Engine, tmp_path: Path) -> None:
    path = write(
        tmp_path / "ok.csv",
        'member_id,name,address\nC1,"Ann ""Nan"" Lee","1 Rue Bonaparte\nParis"\n\nC2,Bo,\nC3,"Cy,\r\nJr",x\n',
    )
    summary = members(engine, path)
    assert (summary.read, summary.inserted, summary.rejected) == (3, 3, 0)
    with engine.connect() as connection:
        got = dict(connection.execute(select(Member.member_id, Member.address)).all())
        names = dict(connection.execute(select(Member.member_id, Member.name)).all())
    assert got["C1"] == "1 Rue Bonaparte\nParis" and names["C1"] == 'Ann "Nan" Lee'
    assert names["C3"] == "Cy,\r\nJr"
    assert [r.line for r in read_csv(path).rows()] == [2, 5, 6]  # blank line 4 skipped, counted


def test_a_field_over_the_csv_limit_is_one_error_with_its_line(tmp_path: Path) -> None:
    path = write(tmp_path / "big.csv", "member_id,name\nC1,Ann\nC2," + "x" * (1 << 20) + "\n")
    with pytest.raises(BookclubError, match=rf"big\.csv:3: name: longer than {MAX_FIELD:,} characters"):
        list(read_csv(path).rows())


def test_bom_is_dropped_and_latin1_is_named_by_line(sqlite_engine: Engine, tmp_path: Path) -> None:
    bom = tmp_path / "bom.csv"
    bom.write_bytes(b"\xef\xbb\xbfmember_id,name\nC1,Ann\n")
    assert members(sqlite_engine, bom).inserted == 1
    latin = tmp_path / "latin.csv"
    latin.write_bytes(b"member_id,name\n" + b"".join(b"C%d,Name\n" % i for i in range(2, 3000)) + b"C9,Jos\xe9\n")
    with pytest.raises(BookclubError, match=r"latin\.csv:3000: byte 0xe9 at column 7 is not UTF-8.*iconv"):
        members(sqlite_engine, latin)
    assert count(sqlite_engine, Member) == 1


def test_truncated_and_corrupt_gzip(tmp_path: Path) -> None:
    whole = gzip.compress(("member_id,name\n" + "".join(f"C{i},N{i}\n" for i in range(50_000))).encode())
    cut = tmp_path / "cut.csv.gz"
    cut.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(BookclubError, match=r"cut\.csv\.gz: the gzip file is truncated.*after line \d+"):
        list(read_csv(cut).rows())
    bad = tmp_path / "bad.csv.gz"
    bad.write_bytes(b"\x1f\x8b" + b"\x00" * 64)
    with pytest.raises(BookclubError, match=r"bad\.csv\.gz: the gzip file is corrupt"):
        list(read_csv(bad).rows())


# --- Online Retail: the same reader, so the same faults; no line passes for a guest checkout --

RETAIL_HEADER = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"


def retail_line(invoice: int, code: str, customer: str, description: str = "MUG") -> str:
    return f"{invoice},{code},{description},2,2011-01-0{invoice % 9 + 1} 10:00,1.25,{customer},France\n"


def test_online_retail_unterminated_quote_is_not_counted_as_guest_checkouts(
    engine: Engine, tmp_path: Path
) -> None:
    good = "".join(retail_line(500 + i, f"2{i:04d}", str(12000 + i % 5)) for i in range(20))
    broken = retail_line(600, "30000", "12001", '"HEART MUG') + good
    path = write(tmp_path / "retail.csv", RETAIL_HEADER + good + broken)
    with engine.begin() as connection, pytest.raises(BookclubError, match=r"retail\.csv:22: Description: a quoted"):
        import_online_retail(connection, path, ImportOptions())
    assert count(engine, Purchase) == count(engine, Member) == count(engine, Title) == 0
    fixed = write(tmp_path / "fixed.csv", RETAIL_HEADER + good + retail_line(600, "30000", ""))
    with engine.begin() as connection:
        summaries = import_online_retail(connection, fixed, ImportOptions())
    lines = summaries[-1]
    assert lines.read == 21 and lines.skipped_reasons == {NO_CUSTOMER: 1} and lines.inserted == 20


def test_online_retail_with_a_bom_and_gzip(sqlite_engine: Engine, tmp_path: Path) -> None:
    body = RETAIL_HEADER + "".join(retail_line(500 + i, f"2{i:04d}", "12000") for i in range(5))
    path = tmp_path / "retail.csv.gz"
    path.write_bytes(gzip.compress(b"\xef\xbb\xbf" + body.encode()))
    with sqlite_engine.begin() as connection:
        summaries = import_online_retail(connection, path, ImportOptions())
    assert summaries[-1].inserted == 5 and summaries[-1].adds_up()
