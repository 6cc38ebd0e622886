"""Engines, sessions and schema upgrades: the one place that opens a database."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from recsys.errors import DatabaseNotReadyError
from recsys.settings import Settings

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any, busy_timeout_seconds: float = 30.0) -> None:
    # WAL lets the API read while an import writes; NORMAL sync is safe with WAL.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA temp_store=FILE")  # staging tables of big imports stay on disk
    cursor.execute("PRAGMA cache_size=-131072")  # 128 MiB page cache: bounded, whatever the file size
    cursor.execute("PRAGMA mmap_size=1073741824")
    cursor.execute(f"PRAGMA busy_timeout={round(busy_timeout_seconds * 1000)}")
    cursor.close()


def make_engine(url: str, *, busy_timeout_seconds: float = 30.0, **kwargs: Any) -> Engine:
    """An engine for ``url``; SQLite files get their folder and tuned PRAGMAs (a writer waits
    ``busy_timeout_seconds`` for another process's lock)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", lambda c, r: _sqlite_pragmas(c, r, busy_timeout_seconds))
        return engine
    if parsed.get_backend_name() == "postgresql" and parsed.get_driver_name() in ("", "psycopg2"):
        url = parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    return create_engine(url, pool_pre_ping=True, **kwargs)


def engine_from_settings(settings: Settings) -> Engine:
    return make_engine(settings.db_url, busy_timeout_seconds=settings.sqlite_busy_timeout_seconds)


def _alembic_config(engine: Engine) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision`` with Alembic (``bookclub db upgrade``)."""
    from alembic import command

    command.upgrade(_alembic_config(engine), revision)


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def check_ready(engine: Engine) -> None:
    """Raise :class:`DatabaseNotReadyError` unless the database answers and has the schema."""
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
            if not inspect(connection).has_table("purchases"):
                raise DatabaseNotReadyError(
                    "the database has no bookclub schema: run `bookclub db upgrade`"
                )
    except OperationalError as exc:
        raise DatabaseNotReadyError(f"database unreachable: {exc.orig}") from exc
