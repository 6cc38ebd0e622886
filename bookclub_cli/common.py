"""What every command shares: settings, the engine, progress bars and error exits."""

from __future__ import annotations

import csv
import errno
import functools
import gzip
import sqlite3
import sys
import zlib
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import click
import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlalchemy.exc import TimeoutError as SATimeoutError

from recsys.errors import BookclubError
from recsys.settings import Settings
from recsys.storage.db import engine_from_settings

console = Console()
err_console = Console(stderr=True)

P = ParamSpec("P")
R = TypeVar("R")


def load_settings() -> Settings:
    return Settings()


def open_engine(settings: Settings) -> Engine:
    return engine_from_settings(settings)


def progress() -> Progress:
    """A progress bar that stays quiet when stderr is not a terminal."""
    return Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=False,
        disable=not sys.stderr.isatty(),
    )


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print a one-line reason on stderr and return the exit to raise."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def _database() -> str:
    """The configured database, for a message (password hidden), or a neutral phrase."""
    try:
        return make_url(Settings().db_url).render_as_string(hide_password=True)
    except Exception:  # the settings themselves may be what is broken
        return "the database"


def _busy_timeout() -> float:
    """The configured SQLite lock wait, for a message (the default when the settings are broken)."""
    try:
        return Settings().sqlite_busy_timeout_seconds
    except Exception:
        return 30.0


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _file(exc: OSError) -> str:
    return str(exc.filename) if exc.filename is not None else "a file"


def _os_error(exc: OSError) -> str:
    code = exc.errno
    if code in (errno.ENOSPC, errno.EDQUOT):
        return f"no space left on the device writing {_file(exc)}: free some space and run again"
    if code == errno.EROFS:
        return (
            f"read-only file system: cannot write {_file(exc)}; make the data folder writable "
            "or point BOOKCLUB_DATA_DIR at a writable one"
        )
    if code in (errno.EACCES, errno.EPERM):
        return (
            f"permission denied: {_file(exc)}; give this user write access to the data folder "
            "or point BOOKCLUB_DATA_DIR at a writable one"
        )
    if code == errno.ENOENT:
        return f"file not found: {_file(exc)}"
    if code == errno.EIO:
        return f"input/output error on {_file(exc)}: the disk or network share failed; check it and run again"
    return f"{exc.strerror or _first_line(exc)}: {_file(exc)}"


def _sqlite_error(orig: sqlite3.Error) -> str:
    name = getattr(orig, "sqlite_errorname", "") or ""
    text = _first_line(orig)
    where = _database()
    if name.startswith("SQLITE_BUSY") or name.startswith("SQLITE_LOCKED") or "locked" in text:
        return (
            f"{where} is locked: another process (an import, a training run?) held it longer than the "
            f"{_busy_timeout():g} s wait; let it finish and run again"
        )
    if name.startswith("SQLITE_FULL") or "disk is full" in text:
        return f"no space left on the device for {where}: free some space and run again (nothing was kept)"
    if name.startswith("SQLITE_READONLY") or "readonly" in text:
        return (
            f"{where} cannot be written (read-only file or folder): make the data folder writable "
            "or point BOOKCLUB_DATA_DIR at a writable one"
        )
    if name.startswith("SQLITE_CANTOPEN") or "unable to open" in text:
        return (
            f"cannot open {where} (its folder is missing, read-only or not ours): check BOOKCLUB_DATA_DIR "
            "and BOOKCLUB_DATABASE_URL"
        )
    if name.startswith("SQLITE_IOERR") or "I/O error" in text:
        return f"input/output error on {where} (a full or failing disk?): check it and run again"
    if name.startswith("SQLITE_CORRUPT") or name.startswith("SQLITE_NOTADB"):
        return f"{where} is damaged or not a database ({text}): restore it from a backup"
    return f"database error on {where}: {text}"


# PostgreSQL SQLSTATEs a user can act on (https://www.postgresql.org/docs/current/errcodes-appendix.html)
_PG_STATES = {
    "40001": "a concurrent transaction conflicted with this one (two imports at once?): nothing of this "
    "run was kept; run it again",
    "40P01": "a concurrent transaction deadlocked with this one (two imports at once?): nothing of this "
    "run was kept; run it again",
    "55P03": "another process holds a lock this run needs (an import or a migration?): wait for it to "
    "finish and run again",
    "23505": "another process wrote the same rows at the same time (two imports at once?): nothing of "
    "this run was kept; run it again (importing again adds nothing)",
    "53100": "the database server's disk is full: free space on it and run again (nothing was kept)",
    "53200": "the database server is out of memory: try again later or with a smaller batch",
    "53300": "the database server has too many connections: try again shortly",
    "25006": "the database refuses writes (a read-only server or replica): point BOOKCLUB_DATABASE_URL at "
    "the primary",
    "42501": "the database user may not do this (permission denied): grant it or use another user",
    "57014": "the database cancelled the statement (a timeout?): run again",
    "57P01": "the database server shut down during the run: start it and run again",
    "3D000": "the database named in BOOKCLUB_DATABASE_URL does not exist: create it, then run "
    "`bookclub db upgrade`",
    "28P01": "the database refused the password: fix BOOKCLUB_DATABASE_URL",
    "28000": "the database refused this user: fix BOOKCLUB_DATABASE_URL",
}


def _postgres_error(orig: Exception) -> str:
    state = getattr(orig, "sqlstate", None) or ""
    where = _database()
    if state in _PG_STATES:
        return f"{_PG_STATES[state]} ({where})"
    if not state or state.startswith("08"):  # no answer at all, or the connection broke
        return (
            f"cannot reach {where}: {_first_line(orig)}; start the database or fix BOOKCLUB_DATABASE_URL"
        )
    return f"database error on {where}: {_first_line(orig)} (SQLSTATE {state})"


def _database_error(exc: Exception) -> str:
    orig = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    if isinstance(orig, sqlite3.Error):
        return _sqlite_error(orig)
    if type(orig).__module__.split(".")[0] == "psycopg":
        return _postgres_error(orig)
    return f"database error on {_database()}: {_first_line(orig)}"


def explain(exc: BaseException) -> str | None:
    """One line saying what is wrong and what to do, for a failure a user can act on;
    None for anything else (a bug: its traceback is worth more than a guess)."""
    if isinstance(exc, BookclubError):
        cause = exc.__cause__
        if isinstance(cause, DBAPIError | sqlite3.Error) or type(cause).__module__.split(".")[0] == "psycopg":
            return _database_error(cause)  # type: ignore[arg-type]  # e.g. check_ready's "unreachable"
        return str(exc)
    if isinstance(exc, DBAPIError | sqlite3.Error) or type(exc).__module__.split(".")[0] == "psycopg":
        return _database_error(exc)  # type: ignore[arg-type]
    if isinstance(exc, SATimeoutError):
        return f"no free connection to {_database()} in time: too much at once; run again"
    if isinstance(exc, ArgumentError | NoSuchModuleError):
        return f"BOOKCLUB_DATABASE_URL is not a usable database URL ({_first_line(exc)})"
    if isinstance(exc, ValidationError):
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:3]
        )
        return f"invalid setting: {problems} (check the BOOKCLUB_… environment variables)"
    if isinstance(exc, UnicodeDecodeError):
        return (
            f"a file is not UTF-8 text ({exc.reason} at byte {exc.start}): convert it to UTF-8, "
            "e.g. `iconv -f latin1 -t utf-8`"
        )
    if isinstance(exc, EOFError | gzip.BadGzipFile | zlib.error):
        return f"a compressed (gzip) file is truncated or corrupt ({_first_line(exc)}): copy or download it again"
    if isinstance(exc, csv.Error):
        return f"malformed CSV: {_first_line(exc)}"
    if isinstance(exc, OSError):
        return _os_error(exc)
    if isinstance(exc, MemoryError):
        return "out of memory: close other programs or use a machine with more memory"
    return None


def cli_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn every failure a user can act on into one line on stderr and exit 1: domain errors,
    an unreachable, locked or full database, a full or read-only disk, a broken file
    (see :func:`explain`); anything else is a bug and keeps its traceback."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except KeyboardInterrupt:
            raise fail("interrupted", 130) from None
        except (typer.Exit, typer.Abort, click.exceptions.ClickException):
            raise
        except Exception as exc:
            message = explain(exc)
            if message is None:
                raise
            raise fail(" ".join(part.strip() for part in message.splitlines() if part.strip())) from None

    return wrapper
