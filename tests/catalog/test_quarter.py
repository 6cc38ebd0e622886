"""The quarter as one function: from an empty database to catalogs and editions, reading the
category tree, the quarter's titles and the segment profiles once, writing each profile once."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader
from sqlalchemy import Engine, event

from demo.generate import DemoSpec
from quarterly.run import run_quarter
from recsys.settings import CatalogSettings, SegmentSettings, Settings, TrainingSettings
from recsys.storage import segments as segments_db
from recsys.storage.db import make_engine
from tests.conftest import SHARED_DATA, shared_data


@pytest.fixture
def statements() -> Iterator[list[str]]:
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(" ".join(statement.split()))

    event.listen(Engine, "before_cursor_execute", record)
    yield seen
    event.remove(Engine, "before_cursor_execute", record)


@pytest.mark.slow
def test_the_quarter_runs_from_an_empty_database_and_reads_each_input_once(
    tmp_path: Path, statements: list[str]
) -> None:
    shared_data("clc", "clc_level1_2.csv")
    settings = Settings(
        data_dir=tmp_path / "var",
        shared_data_dir=SHARED_DATA,
        training=TrainingSettings(factors=8, iterations=5, threads=1),
        segments=SegmentSettings(clusters=3, kmeans_init=2),
        catalog=CatalogSettings(titles_per_catalog=16, min_per_section=2, max_per_section=8, picks_per_member=4),
    )
    spec = DemoSpec(members=300, titles=120, years=2, seed=3, end_date=dt.date(2026, 11, 20))
    said: list[str] = []

    def say(message: str) -> None:
        said.append(message)
        statements.append(f"-- {message}")

    result = run_quarter(settings, "2026Q4", members_for_editions=2, demo=spec, train=True, say=say)

    assert result.data is not None and result.data.demo is not None and result.data.categories_loaded > 0
    assert result.data.members == 300
    assert result.trained is not None and result.trained.info.status == "active"
    assert len(result.catalogs) == len(result.plans) == 3
    assert len(result.editions) == 2
    for path in [*result.catalogs.values(), *result.editions.values()]:
        assert len(PdfReader(path).pages) > 2
    assert any("demo club" in line for line in said)

    # reads and writes once the data and the model are in place
    start = next(i for i, s in enumerate(statements) if s.startswith("-- segments, catalog plans"))
    statements = statements[start:]
    quarter_titles = [s for s in statements if re.search(r"FROM titles WHERE .*published_on", s)]
    assert len(quarter_titles) == 1, quarter_titles
    trees = [s for s in statements if re.match(r"SELECT categories\.code, categories\.name, categories\.parent_code", s)]
    assert len(trees) == 1, trees
    stored_profiles = [s for s in statements if re.match(r"SELECT segments\.segment, segments\.name", s)]
    assert stored_profiles == []  # the profiles come from segmentation, not read back
    # each profile written once, complete (typical titles included), never updated afterwards
    assert not [s for s in statements if s.startswith("UPDATE segments")]
    with make_engine(settings.db_url).connect() as connection:
        stored = segments_db.segments_of_quarter(connection, "2026Q4")
    assert len(stored) == 3
    assert all(json.loads(row["profile_json"])["typical_titles"] for row in stored)
