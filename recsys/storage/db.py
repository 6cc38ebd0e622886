"""Engines, sessions and schema upgrades: the one place that opens a database."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import (
    CompoundSelect,
    Connection,
    Dialect,
    Engine,
    Select,
    create_engine,
    event,
    inspect,
    text,
)
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


class DriverQuery:
    """A SELECT of the hot path, run on the driver's own cursor where that is the same query.

    ``connection.execute(statement)`` costs ~0.05 ms of Python per call around the query itself
    (the statement's cache key, the compiled-cache lookup, the execution context, the result
    object): as much again as psycopg's own work for the recommendation route's one query, on
    the worker's busiest thread. On an autocommit psycopg connection (the API's kept connections,
    ``api/recommending.py``) :meth:`all` sends the statement compiled once for the dialect straight
    to a psycopg cursor, prepared server-side at once (``prepare=True``: parsed and planned once
    per connection). That is the same SQL with the same parameters; it is taken only when
    SQLAlchemy would convert no parameter and no result value for this dialect (checked when
    compiled), so the rows are the same. A driver error goes through SQLAlchemy's own handling:
    the same wrapped exception, and a connection the server dropped is invalidated
    (``connection_invalidated``). Anything else (SQLite, a connection in a transaction) runs
    through ``connection.execute``.
    """

    def __init__(self, statement: Select[Any] | CompoundSelect[Any]) -> None:
        self.statement = statement
        self._compiled: dict[str, tuple[str, dict[str, Any]] | None] = {}

    def _driver_form(self, dialect: Dialect) -> tuple[str, dict[str, Any]] | None:
        """(SQL, the statement's own parameter values) for psycopg, None if SQLAlchemy would
        convert a parameter or a result value (or expand a parameter) for this dialect."""
        key = f"{dialect.name}+{dialect.driver}"
        if key in self._compiled:
            return self._compiled[key]
        form: tuple[str, dict[str, Any]] | None = None
        if dialect.driver == "psycopg":
            compiled = self.statement.compile(dialect=dialect)
            names = compiled.bind_names
            plain = not compiled.positional and all(
                not b.expanding and b.type.dialect_impl(dialect).bind_processor(dialect) is None for b in names
            )
            plain = plain and all(
                c.type.dialect_impl(dialect).result_processor(dialect, None) is None
                for c in self.statement.selected_columns
            )
            if plain:
                # the values the statement carries itself (the CASE's 1 and 0), not those asked for
                defaults = {name: b.effective_value for b, name in names.items() if not b.required}
                form = (compiled.string, defaults)
        self._compiled[key] = form
        return form

    def all(self, connection: Connection, params: Mapping[str, Any]) -> Sequence[Sequence[Any]]:
        """Every row of the statement with ``params``, as tuples (or ``Row`` objects)."""
        dialect = connection.dialect
        if dialect.driver == "psycopg":
            driver_connection = connection.connection.driver_connection
            form = self._driver_form(dialect)
            if form is not None and getattr(driver_connection, "autocommit", False):
                sql, defaults = form
                values = {**defaults, **params}
                cursor = None
                try:
                    cursor = driver_connection.cursor()  # type: ignore[union-attr]
                    cursor.execute(sql, values, prepare=True)
                    rows: list[tuple[Any, ...]] = cursor.fetchall()
                    return rows
                except dialect.loaded_dbapi.Error as exc:
                    # wrapped, and the connection invalidated if the server dropped it, as
                    # Connection.execute does
                    connection._handle_dbapi_exception(exc, sql, values, cursor, None)
                finally:
                    if cursor is not None:
                        cursor.close()
        return connection.execute(self.statement, params).all()


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
