"""``bookclub apikeys create|list`` with the editions scope."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from bookclub_cli.main import app
from recsys.storage.apikeys import verify_key
from recsys.storage.db import make_engine


def test_create_an_editions_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOOKCLUB_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.delenv("BOOKCLUB_DATABASE_URL", raising=False)
    runner = CliRunner()
    result = runner.invoke(app, ["apikeys", "create", "--scope", "editions", "--label", "mail house"])
    assert result.exit_code == 0, result.output
    key = next(line for line in result.output.splitlines() if line.startswith("bk_"))
    engine = make_engine(f"sqlite:///{tmp_path / 'var' / 'bookclub.db'}")
    with engine.connect() as connection:
        info = verify_key(connection, key)
    engine.dispose()
    assert info is not None and info.scope == "editions"
    listed = runner.invoke(app, ["apikeys", "list"])
    assert listed.exit_code == 0 and "editions" in listed.output and key not in listed.output
    wrong = runner.invoke(app, ["apikeys", "create", "--scope", "print"])
    assert wrong.exit_code == 1 and "read, editions, admin" in wrong.output
