"""The rejects file of an import: complete when it is there, absent when the import failed
before every row was checked (never a partial list of bad rows)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from recsys.errors import ImportRejectedError
from recsys.files import is_temp
from recsys.storage.imports import KINDS, ImportOptions, csv_source, import_rows

ROWS = "member_id,name,joined_on\nM1,Ann,2024-01-02\nM2,Bo,2024-13-45\nM3,Cy,2024-02-03\nM4,Di,yesterday\n"


def _import(engine: Engine, path: Path, rejects: Path) -> None:
    spec = KINDS["members"]
    with engine.begin() as connection:
        import_rows(
            connection, spec, csv_source(path, spec.required, spec.optional),
            ImportOptions(rejects_path=rejects),
        )


def test_a_rejected_file_leaves_a_complete_rejects_file(sqlite_engine: Engine, tmp_path: Path) -> None:
    source = tmp_path / "members.csv"
    source.write_text(ROWS, encoding="utf-8")
    rejects = tmp_path / "rejects" / "members.rejects.csv"
    with pytest.raises(ImportRejectedError):
        _import(sqlite_engine, source, rejects)
    rows = list(csv.DictReader(rejects.open(encoding="utf-8")))
    assert [(r["line"], r["field"]) for r in rows] == [("3", "joined_on"), ("5", "joined_on")]
    assert not [p for p in rejects.parent.iterdir() if is_temp(p)]


def test_an_import_failing_midway_leaves_no_partial_rejects_file(
    sqlite_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import recsys.storage.imports.loader as loader

    def database_gone(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError("the database went away during the checks")

    monkeypatch.setattr(loader, "_run_check", database_gone)
    source = tmp_path / "members.csv"
    source.write_text(ROWS, encoding="utf-8")
    rejects = tmp_path / "rejects" / "members.rejects.csv"
    with pytest.raises(RuntimeError, match="went away"):
        _import(sqlite_engine, source, rejects)
    # the rows parsed so far were bad, but the checks never ran: no file claims to list them all
    assert not rejects.exists()
    assert not rejects.parent.exists() or list(rejects.parent.iterdir()) == []
