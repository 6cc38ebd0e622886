"""Shared fixtures: a fresh database on SQLite and, when reachable, PostgreSQL.

PostgreSQL tests read ``BOOKCLUB_TEST_POSTGRES_URL`` (``.ci/run`` sets it) and
skip with the reason when it is unset; each test gets its own database, dropped
afterwards, so no run depends on what another left.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from recsys.settings import Settings
from recsys.storage.db import make_engine, upgrade

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("BOOKCLUB_SHARED_DATA_DIR", ROOT.parent / "shared" / "data"))
POSTGRES_URL_VAR = "BOOKCLUB_TEST_POSTGRES_URL"


def shared_data(*parts: str) -> Path:
    """A path under ../shared/data, or skip the test with the reason."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data not found at {path} (clone with ../shared beside the project)")
    return path


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'bookclub.db'}")
    upgrade(engine)
    yield engine
    engine.dispose()


@contextmanager
def scratch_postgres(options: str = "", unreachable: str = "unreachable") -> Iterator[Engine]:
    """A new PostgreSQL database at the migrations' head (``CREATE DATABASE … options``), dropped
    afterwards; the test is skipped, with the reason, without a server or one that refuses
    ``options`` (``unreachable`` says what was wanted)."""
    base_url = os.environ.get(POSTGRES_URL_VAR)
    if not base_url:
        pytest.skip(f"{POSTGRES_URL_VAR} is not set: no PostgreSQL to test against")
    admin = make_engine(base_url, isolation_level="AUTOCOMMIT")
    name = f"bookclub_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}" {options}'.rstrip()))
    except Exception as exc:  # server down (or the options refused): say so rather than error
        admin.dispose()
        pytest.skip(f"PostgreSQL at {POSTGRES_URL_VAR} {unreachable}: {exc}")
    url = make_url(base_url).set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url)
    try:
        upgrade(engine)
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def postgres_engine() -> Iterator[Engine]:
    with scratch_postgres() as engine:
        yield engine


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest) -> Engine:
    """The same test on SQLite and on PostgreSQL."""
    return request.getfixturevalue(f"{request.param}_engine")  # type: ignore[no-any-return]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "var", shared_data_dir=SHARED_DATA)
