"""Every command ends with one line saying what is wrong and what to do, and exit 1 — never a
traceback (issue 9, finding 8): an unreachable database, a full disk, a read-only data folder,
a SQLite database locked past its timeout, two imports at once on PostgreSQL, Online Retail
files with a BOM, Latin-1 bytes, a 1 MB field or a truncated gzip. And ``import
online-retail`` / ``shakespeare-and-co`` without a path read BOOKCLUB_SHARED_DATA_DIR (11).

The full disk and the read-only folder are real where the tests may mount a tmpfs (root with
CAP_SYS_ADMIN); elsewhere they are simulated by raising the same OSError (ENOSPC, EROFS) from
the writer — each test says which it did in its name's parameter.
"""

from __future__ import annotations

import errno
import gzip
import os
import shutil
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from sqlalchemy import text
from typer.testing import CliRunner

from bookclub_cli.common import explain
from bookclub_cli.main import app
from recsys.storage.db import make_engine
from tests.conftest import POSTGRES_URL_VAR, ROOT, shared_data

UNREACHABLE = "postgresql://postgres@127.0.0.1:1/bookclub"  # nothing listens on port 1
RETAIL_HEADER = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("BOOKCLUB_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("BOOKCLUB_SHARED_DATA_DIR", str(tmp_path / "shared"))
    monkeypatch.delenv("BOOKCLUB_DATABASE_URL", raising=False)
    return tmp_path


def invoke(*args: str) -> tuple[int, str, BaseException | None]:
    """(exit code, stderr, exception) — what a command printed before failing (a heading, a
    summary) is on stdout; the failure is stderr's one line."""
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stderr, result.exception


def one_line_failure(code: int, stderr: str, exception: BaseException | None) -> str:
    """The exit is 1 by the CLI's own hand, with one line on stderr; returns that line."""
    assert code == 1, stderr
    assert isinstance(exception, SystemExit), repr(exception)  # not a crash the runner caught
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def retail(rows: int, **changes: str) -> str:
    lines = [f"{536365 + i},2{i % 50:04d},MUG {i % 50},2,2011-01-0{i % 9 + 1} 10:00,1.25,{12000 + i % 7},France\n"
             for i in range(rows)]
    for index, line in changes.items():
        lines[int(index.lstrip("_"))] = line
    return RETAIL_HEADER + "".join(lines)


# --- an unreachable database: every command ------------------------------------------------

# what a required parameter gets, by name (a new command's parameters need a line here)
VALUES = {
    "cutoff": "2026-01-01", "quarter": "2026Q1", "scope": "read", "campaign": "hillstrom",
    "member_id": "M1", "version": "v1", "prefix": "bk_x", "reason": "moved", "source": "test",
}
NO_DATABASE = {"models list", "models activate", "models rollback", "recommend"}  # the registry first
NO_DATABASE |= {"simulate", "evaluate-mailing"}  # simulated clubs, in memory
# …run at a small size here (they run whole: only that nothing needs the database is checked)
SMALL = {
    "simulate": ["--quarters", "2", "--members", "2000"],
    "evaluate-mailing": ["--train-members", "2000", "--eval-members", "2000", "--hillstrom", "no-such-file.csv.gz"],
}
SKIP = {"serve"}  # serves with the database down on purpose (/readyz says why)
INPUT_FIRST = {"suppressions import"}  # reads (and here refuses) its file before the database


def leaf_commands() -> Iterator[tuple[list[str], list[str]]]:
    root: Any = typer.main.get_command(app)
    context: Any = type(root).context_class(root)

    def walk(command: Any, path: list[str]) -> Iterator[tuple[list[str], list[str]]]:
        names = command.list_commands(context) if hasattr(command, "list_commands") else []
        if names:
            for name in names:
                yield from walk(command.get_command(context, name), [*path, name])
            return
        args: list[str] = []
        for param in command.params:
            if not param.required:
                continue
            value = VALUES.get(param.name, "x")
            if param.name in ("file", "path", "directory"):
                value = "input.csv"
            args += [value] if not getattr(param, "opts", [""])[0].startswith("-") else [param.opts[0], value]
        yield path, args

    yield from walk(root, [])


def test_every_command_with_an_unreachable_database_says_so_in_one_line(
    env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BOOKCLUB_DATABASE_URL", UNREACHABLE)
    monkeypatch.chdir(env)
    (env / "input.csv").write_text("member_id,name\nM1,Ann\n", encoding="utf-8")
    checked = []
    for path, args in leaf_commands():
        name = " ".join(path)
        if name in SKIP:
            continue
        code, output, exception = invoke(*path, *args, *SMALL.get(name, []))
        if name in NO_DATABASE:
            assert code in (0, 1) and "Traceback" not in output, (name, output, exception)
            assert exception is None or isinstance(exception, SystemExit), (name, repr(exception))
            continue
        line = one_line_failure(code, output, exception)
        if name in INPUT_FIRST:
            continue
        assert "cannot reach postgresql://postgres@127.0.0.1:1/bookclub" in line, (name, line)
        assert "start the database or fix BOOKCLUB_DATABASE_URL" in line, (name, line)
        checked.append(name)
    assert {"db upgrade", "import members", "import online-retail", "train", "quarter", "apikeys list"} <= set(
        checked
    )


# --- a full disk and a read-only data folder ------------------------------------------------


def _mount_tmpfs(where: Path, size: str) -> bool:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                          capture_output=True, check=False)
    return done.returncode == 0


def _umount(where: Path) -> None:
    if subprocess.run(["umount", str(where)], capture_output=True, check=False).returncode != 0:
        subprocess.run(["umount", "-l", str(where)], capture_output=True, check=False)  # busy: detach


@pytest.fixture
def small_disk(env: Path) -> Iterator[Path | None]:
    """A 512 KiB tmpfs (None where mounting is not allowed)."""
    where = env / "small"
    mounted = _mount_tmpfs(where, "512k")
    try:
        yield where if mounted else None
    finally:
        if mounted:
            _umount(where)


def members_csv(path: Path, rows: int, *, bad_every: int = 0) -> Path:
    with path.open("w", encoding="utf-8") as handle:
        handle.write("member_id,name,address,joined_on\n")
        for i in range(rows):
            joined = "2024-13-45" if bad_every and i % bad_every == 0 else "2024-01-02"
            handle.write(f"M{i:07d},Member {i},{'Rue de l’Odéon ' * 8}{i},{joined}\n")
    return path


def run_failing(args: list[str], env_vars: dict[str, str]) -> str:
    """``bookclub ARGS`` in its own process: exit 1 and one line on stderr, which is returned."""
    run = _bookclub(args, env_vars)
    _out, err = run.communicate(timeout=300)
    assert run.returncode == 1 and "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def test_a_full_disk_is_one_line(env: Path, small_disk: Path | None, monkeypatch: pytest.MonkeyPatch) -> None:
    source = members_csv(env / "members.csv", 20_000)
    if small_disk is not None:  # real: the database itself fills the disk
        line = run_failing(["import", "members", str(source)], {"BOOKCLUB_DATA_DIR": str(small_disk)})
        assert "no space left on the device" in line and "free some space" in line
        # and a file the product writes there (the rejects file) fills it too
        bad = members_csv(env / "bad.csv", 20_000, bad_every=1)
        line = run_failing(["import", "members", str(bad)], {
            "BOOKCLUB_DATA_DIR": str(small_disk), "BOOKCLUB_DATABASE_URL": f"sqlite:///{env / 'elsewhere.db'}"})
        assert f"no space left to write {small_disk}/rejects/bad.csv." in line and "free some space" in line
        return
    from recsys.storage.imports import report  # simulated: the rejects writer hits ENOSPC

    def full(*_args: object, **_kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(env / "var" / "rejects" / "x.csv"))

    monkeypatch.setattr(report.RejectsWriter, "write", full)
    line = one_line_failure(*invoke("import", "members", str(members_csv(env / "bad.csv", 3, bad_every=1))))
    assert "no space left on the device writing" in line


def test_a_read_only_data_folder_is_one_line(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    where = env / "ro"
    source = members_csv(env / "members.csv", 10)
    bad = members_csv(env / "bad.csv", 10, bad_every=2)
    if _mount_tmpfs(where, "4m"):
        try:
            data = {"BOOKCLUB_DATA_DIR": str(where)}
            upgrade = _bookclub(["db", "upgrade"], data)
            assert upgrade.wait(timeout=120) == 0, upgrade.communicate()
            subprocess.run(["mount", "-o", "remount,ro", str(where)], check=True, capture_output=True)
            line = run_failing(["import", "members", str(source)], data)  # the SQLite file
            assert "read-only" in line and "BOOKCLUB_DATA_DIR" in line
            line = run_failing(["import", "members", str(bad)],  # the rejects file
                               {**data, "BOOKCLUB_DATABASE_URL": f"sqlite:///{env / 'elsewhere.db'}"})
            assert line.startswith("error: read-only file system: cannot write") and str(where) in line
        finally:
            _umount(where)
        return
    from recsys.storage.imports import report  # simulated: EROFS from the rejects writer

    def read_only(*_args: object, **_kwargs: object) -> None:
        raise OSError(errno.EROFS, "Read-only file system", str(env / "var" / "rejects"))

    monkeypatch.setattr(report.RejectsWriter, "write", read_only)
    line = one_line_failure(*invoke("import", "members", str(bad)))
    assert line.startswith("error: read-only file system: cannot write")


def test_permission_denied_and_other_os_errors_name_the_file() -> None:
    """As root chmod does not stop a write, so the mapping itself is checked here."""
    denied = explain(PermissionError(errno.EACCES, "Permission denied", "/srv/var/models"))
    assert denied is not None and denied.startswith("permission denied: /srv/var/models;")
    assert "BOOKCLUB_DATA_DIR" in denied
    assert explain(OSError(errno.EIO, "Input/output error", "/srv/var/x")) is not None
    assert explain(ValueError("a bug")) is None  # a bug keeps its traceback


# --- locks: SQLite past its timeout, PostgreSQL with two writers ----------------------------


def _bookclub(args: list[str], env_vars: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "bookclub_cli.main", *args], cwd=ROOT, env={**os.environ, **env_vars},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


@pytest.mark.slow
def test_a_sqlite_database_locked_past_the_timeout(env: Path) -> None:
    """Another process holds the write lock for longer than the busy timeout (30 s by default;
    2 s here, BOOKCLUB_SQLITE_BUSY_TIMEOUT_SECONDS)."""
    data = env / "var"
    assert invoke("db", "upgrade")[0] == 0
    holder = sqlite3.connect(data / "bookclub.db", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        run = _bookclub(
            ["import", "members", str(members_csv(env / "m.csv", 5))],
            {"BOOKCLUB_DATA_DIR": str(data), "BOOKCLUB_SQLITE_BUSY_TIMEOUT_SECONDS": "2"},
        )
        _out, err = run.communicate(timeout=300)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert run.returncode == 1 and "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "is locked" in lines[0] and "2 s wait" in lines[0] and "run again" in lines[0], err


@pytest.mark.postgres
def test_two_imports_at_once_on_postgres(env: Path) -> None:
    """The import's INSERT waits on a row another transaction is writing; when that one commits,
    the import fails on the unique key: one line, nothing of it kept, run it again."""
    base = os.environ.get(POSTGRES_URL_VAR)
    if not base:
        pytest.skip(f"{POSTGRES_URL_VAR} is not set: no PostgreSQL to test against")
    admin = make_engine(base, isolation_level="AUTOCOMMIT")
    name = f"bookclub_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = base.rsplit("/", 1)[0] + f"/{name}"
    try:
        settings_env = {"BOOKCLUB_DATABASE_URL": url, "BOOKCLUB_DATA_DIR": str(env / "var")}
        upgrade = _bookclub(["db", "upgrade"], settings_env)
        assert upgrade.wait(timeout=120) == 0, upgrade.communicate()
        engine = make_engine(url)
        other = engine.connect()
        other_tx = other.begin()
        other.execute(text("INSERT INTO members (member_id, name, status) VALUES ('M0000003', 'first', 'active')"))
        run = _bookclub(["import", "members", str(members_csv(env / "m.csv", 5))], settings_env)
        for _ in range(600):  # until the import's backend waits on the row lock (polled, not timed)
            with engine.connect() as probe:
                waiting = probe.execute(text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = :db AND wait_event_type = 'Lock'"
                ), {"db": name}).scalar_one()
            if waiting or run.poll() is not None:
                break
            time.sleep(0.1)
        other_tx.commit()
        other.close()
        _out, err = run.communicate(timeout=120)
        with engine.connect() as probe:
            stored = probe.execute(text("SELECT count(*) FROM members")).scalar_one()
        engine.dispose()
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    assert waiting, err
    assert run.returncode == 1 and "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "another process wrote the same rows at the same time" in lines[0], err
    assert stored == 1  # only the other transaction's row


# --- Online Retail files: BOM, Latin-1, a 1 MB field, a truncated gzip -----------------------


def test_online_retail_with_a_bom_imports(env: Path) -> None:
    path = env / "retail.csv"
    path.write_bytes(b"\xef\xbb\xbf" + retail(30).encode())
    result = CliRunner().invoke(app, ["import", "online-retail", str(path)])
    assert result.exit_code == 0, result.output
    assert "│ purchases │   30 │       30 │" in result.stdout


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("latin1", r"retail.csv.gz:12: byte 0xe9 at column 17 is not UTF-8"),
        ("big_field", r"retail.csv.gz:7: Description: longer than 131,072 characters"),
        ("truncated", r"retail.csv.gz: the gzip file is truncated"),
        ("quote", r"retail.csv.gz:5: Description: a quoted field opens here and never closes"),
    ],
)
def test_broken_online_retail_files_are_one_line(env: Path, case: str, expected: str) -> None:
    body = retail(3000).encode()
    if case == "latin1":
        body = retail(3000, _10="536375,20010,CAF\xe9 MUG,2,2011-01-02 10:00,1.25,12003,France\n").encode(
            "latin-1")
    elif case == "big_field":
        body = retail(3000, _5=f"536370,20005,{'X' * 1_000_000},2,2011-01-07 10:00,1.25,12005,France\n").encode()
    elif case == "quote":
        body = retail(50, _3='536368,20003,"HEART MUG,2,2011-01-04 10:00,1.25,12003,France\n').encode()
    packed = gzip.compress(body)
    if case == "truncated":
        packed = packed[: len(packed) // 2]
    path = env / "retail.csv.gz"
    path.write_bytes(packed)
    line = one_line_failure(*invoke("import", "online-retail", str(path)))
    assert expected.replace(r"\.", ".") in line, line
    assert "nothing was imported" in line


# --- the public data sets come from BOOKCLUB_SHARED_DATA_DIR -------------------------------


def test_online_retail_without_a_path_reads_the_shared_data_dir(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    elsewhere = env / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the old default was relative to the working folder
    target = env / "shared" / "online-retail" / "online_retail.csv.gz"
    target.parent.mkdir(parents=True)
    target.write_bytes(gzip.compress(retail(12).encode()))
    result = CliRunner().invoke(app, ["import", "online-retail"])
    assert result.exit_code == 0, result.output
    assert "│ purchases │   12 │       12 │" in result.stdout


def test_shakespeare_without_a_path_reads_the_shared_data_dir(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(env)
    shared = env / "shared"
    shutil.copytree(shared_data("clc"), shared / "clc")
    sco = shared / "shakespeare-and-co"
    sco.mkdir()
    (sco / "sco_members.csv").write_text(
        "member_id,name,title,gender,membership_years,birth_year,death_year,nationalities,"
        "arrondissement_first_dwelling\nbeach,Sylvia Beach,,Female,1919,1887,1962,United States,6\n",
        encoding="utf-8")
    (sco / "sco_books.csv").write_text(
        "book_id,title,author_id,author_name,year,genres,format,num_borrows,author_gender,author_nationalities\n"
        "joyce-ulysses,Ulysses,joyce,James Joyce,1922,Fiction,Book,1.0,Male,Ireland\n", encoding="utf-8")
    (sco / "sco_borrows.csv").write_text(
        "event_id,member_id,book_id,start_date,end_date,year,month\n"
        "E1,beach,joyce-ulysses,1922-02-02,1922-03-01,1922,2\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["import", "shakespeare-and-co"])
    assert result.exit_code == 0, result.output
    assert "│ purchases         │    1 │        1 │" in result.stdout


# --- dates on the command line: bounded like imported ones --------------------------------


@pytest.mark.parametrize("cutoff", ["9999-12-31", "0001-01-01", "2099-01-01"])
def test_an_absurd_cutoff_is_one_line(env: Path, cutoff: str) -> None:
    """9999-12-31 and 0001-01-01 overflowed the window's arithmetic (OverflowError traceback)."""
    assert invoke("db", "upgrade")[0] == 0
    for command in (["evaluate", "--cutoff", cutoff, "--json"], ["tune", "--cutoff", cutoff]):
        line = one_line_failure(*invoke(*command))
        assert f"--cutoff {cutoff} is" in line and ("in the future" in line or "imports.earliest_date" in line)


def test_demo_data_never_writes_orders_in_the_future(env: Path) -> None:
    line = one_line_failure(*invoke("demo-data", "--members", "5", "--titles", "10", "--end-date", "9999-12-31"))
    assert "--end-date 9999-12-31 is in the future" in line
    line = one_line_failure(*invoke("demo-data", "--members", "5", "--titles", "10", "--years", "99",
                                    "--end-date", "1950-01-01"))
    assert "before 1900-01-01" in line
    code, _err, exception = invoke("demo-data", "--years", "100000")  # was a ValueError traceback
    assert code == 2 and isinstance(exception, SystemExit)
    for option in (["--years", "100000"], ["--members", "0"]):  # the quarter's demo club: the same
        code, _err, exception = invoke("quarter", "--no-serve", *option)
        assert code == 2 and isinstance(exception, SystemExit), (option, repr(exception))


# --- the other CSV reader: the suppression list ---------------------------------------------


def test_suppression_files_get_the_importers_checks(env: Path) -> None:
    """``suppressions import`` read CSV with its own reader: an unmatched quote swallowed the
    rows after it, a NUL was stored on SQLite (and failed PostgreSQL)."""
    assert invoke("db", "upgrade")[0] == 0
    header = "member_id,reason,source,note\n"
    quote = env / "quote.csv"
    quote.write_text(header + 'M1,moved,post,"gone\nM2,moved,post,\nM3,moved,post,\n', encoding="utf-8")
    line = one_line_failure(*invoke("suppressions", "import", str(quote)))
    assert "quote.csv:2: note: a quoted field opens here and never closes" in line
    nul = env / "nul.csv"
    nul.write_text(header + "M1,moved,post,\nM\x002,moved,post,\n", encoding="utf-8")
    line = one_line_failure(*invoke("suppressions", "import", str(nul)))
    assert "nul.csv:3: member_id contains a NUL character" in line and "nothing written" in line


def test_the_issues_unterminated_quote_through_the_cli(env: Path) -> None:
    """``printf 'member_id,name\\nC6,"Gina\\nC7,Hal\\nC8,Ida\\n' > u.csv; bookclub import members u.csv``
    said "read 1, inserted 1" and exited 0."""
    path = env / "u.csv"
    path.write_text('member_id,name\nC6,"Gina\nC7,Hal\nC8,Ida\n', encoding="utf-8")
    line = one_line_failure(*invoke("import", "members", str(path)))
    assert f"{path}:2: name: a quoted field opens here and never closes" in line
    engine = make_engine(f"sqlite:///{env / 'var' / 'bookclub.db'}")
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM members")).scalar_one() == 0
    engine.dispose()
