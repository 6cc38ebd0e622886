"""``bookclub import`` as a user runs it: exit codes, one-line reasons, counts."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from bookclub_cli.main import app
from recsys.storage.db import make_engine
from recsys.storage.schema import Member, Purchase, Title
from tests.conftest import SHARED_DATA
from tests.recsys.storage.imports.test_formats import CATEGORIES, MEMBERS, TITLES, purchases, write_csv


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("BOOKCLUB_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("BOOKCLUB_SHARED_DATA_DIR", str(SHARED_DATA))
    monkeypatch.delenv("BOOKCLUB_DATABASE_URL", raising=False)
    return tmp_path


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def counts(db: Path) -> dict[str, int]:
    engine = make_engine(f"sqlite:///{db}")
    with engine.connect() as connection:
        out = {m.__name__: connection.execute(select(func.count()).select_from(m)).scalar_one()
               for m in (Member, Title, Purchase)}
    engine.dispose()
    return out


def test_bad_date_on_line_7_exits_nonzero_and_changes_nothing(cli_env: Path) -> None:
    tmp = cli_env
    assert invoke("import", "categories", str(write_csv(tmp / "c.csv", CATEGORIES)))[0] == 0
    assert invoke("import", "members", str(write_csv(
        tmp / "m.csv", MEMBERS, ["member_id", "name", "joined_on", "channel", "city", "birth_year"])))[0] == 0
    assert invoke("import", "titles", str(write_csv(tmp / "t.csv", TITLES[:1] + TITLES[2:],
                                                    ["title_id", "title", "author", "price", "categories", "in_stock"])))[0] == 0
    good = [dict(r, title_id="T1") for r in purchases(10)]
    assert invoke("import", "purchases", str(write_csv(tmp / "good.csv", good)))[0] == 0
    before = counts(tmp / "var" / "bookclub.db")

    bad = [dict(r, line_id=f"N{i}", title_id="T1") for i, r in enumerate(purchases(12))]
    bad[5]["purchased_at"] = "2024-02-30"
    code, output = invoke("import", "purchases", str(write_csv(tmp / "bad.csv", bad)))
    assert code == 1
    assert "bad.csv:7: purchased_at: '2024-02-30' is not an ISO date" in " ".join(output.split())
    assert "nothing was written" in output
    assert counts(tmp / "var" / "bookclub.db") == before

    code, output = invoke("import", "purchases", str(write_csv(tmp / "good.csv", good)))
    assert code == 0 and counts(tmp / "var" / "bookclub.db") == before  # idempotent


def test_missing_file_is_one_line(cli_env: Path) -> None:
    code, output = invoke("import", "members", str(cli_env / "nope.csv"))
    assert code == 1 and "nope.csv: no such file" in output


def test_every_command_has_help() -> None:
    for args in (["--help"], ["import", "--help"], ["import", "purchases", "--help"],
                 ["db", "upgrade", "--help"], ["categories", "load-clc", "--help"],
                 ["demo-data", "--help"], ["quarter", "--help"]):
        code, output = invoke(*args)
        assert code == 0 and "Usage" in output, args
