"""Training never reaches past now, and never publishes a model of next to nothing (issue 9,
finding 4): a line stored in the future (from before dates were bounded) is left out with a
warning — ``9999-12-31`` used to crash every run with OverflowError, ``2099`` to cut off in
2099 and publish (and activate) a model of one order line."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest
import typer
from sqlalchemy import Engine
from typer.testing import CliRunner

from bookclub_cli import train_cmd
from recsys.errors import TrainingError
from recsys.settings import Settings
from recsys.storage.purchases import insert_purchase_rows
from tests.training.synthetic import Club, make_club
from training.pipeline import run_training
from training.registry import ModelRegistry


def store_line(engine: Engine, line_id: str, moment: dt.datetime, member_key: int = 1, title_key: int = 1) -> None:
    """A line written straight to the table, as lines were before imports bounded dates."""
    with engine.begin() as connection:
        insert_purchase_rows(connection, [{
            "line_id": line_id, "order_id": line_id, "member_key": member_key, "title_key": title_key,
            "quantity": 1, "unit_price": Decimal("10.00"), "purchased_at": moment, "channel": "web",
        }])


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


@pytest.mark.parametrize("moment", [dt.datetime(9999, 12, 31, 23, 59, 59), dt.datetime(2099, 6, 1)])
def test_a_line_in_the_future_is_left_out_with_a_warning(
    club: Club, sqlite_engine: Engine, fast_settings: Settings, moment: dt.datetime
) -> None:
    store_line(sqlite_engine, "FUTURE-1", moment)
    before = now()
    result = run_training(sqlite_engine, fast_settings, promote="force")
    snap = result.training.snapshot
    assert before <= dt.datetime.fromisoformat(snap.cutoff) <= now()
    assert snap.purchase_rows > 1000  # the club's lines of the last three years, not the one line
    assert snap.newest_purchase is not None and snap.newest_purchase < before.isoformat()
    assert len(result.warnings) == 1 and f"dated {moment:%Y-%m-%d}" in result.warnings[0]
    assert "left out of training" in result.warnings[0]


def test_an_explicit_cutoff_in_the_future_trains_up_to_now(
    club: Club, sqlite_engine: Engine, fast_settings: Settings
) -> None:
    result = run_training(sqlite_engine, fast_settings, cutoff=dt.datetime(2999, 1, 1), promote="force")
    assert dt.datetime.fromisoformat(result.training.snapshot.cutoff) <= now()
    assert "is in the future: training up to now" in result.warnings[0]


def test_too_little_data_is_refused_and_nothing_becomes_active(
    sqlite_engine: Engine, fast_settings: Settings
) -> None:
    make_club(sqlite_engine, members=2, lines_per_member=4, start=dt.datetime(2025, 1, 1), days=100)
    registry = ModelRegistry(fast_settings.models_dir)
    with pytest.raises(TrainingError, match=r"too little data to train on: \d+ order line\(s\) from 2 member"):
        run_training(sqlite_engine, fast_settings, promote="force")
    assert registry.active_version() is None and registry.list() == []
    # the minimum is a setting: lowered, the same data trains
    fast_settings.training.min_order_lines, fast_settings.training.min_members = 1, 1
    assert run_training(sqlite_engine, fast_settings).info.status == "active"


def test_the_2099_case_on_an_otherwise_empty_window_is_refused(
    sqlite_engine: Engine, fast_settings: Settings
) -> None:
    """Before: cutoff 2099, a window of one line, published and active as the first model.
    Now the window ends now, and holds none of the club's old lines: nothing to train on."""
    make_club(sqlite_engine, members=10, lines_per_member=5, start=dt.datetime(2015, 1, 1), days=200)
    store_line(sqlite_engine, "FUTURE-1", dt.datetime(2099, 1, 1))
    with pytest.raises(TrainingError, match="no purchases between"):
        run_training(sqlite_engine, fast_settings)
    assert ModelRegistry(fast_settings.models_dir).active_version() is None


def test_the_cli_says_why_in_one_line(
    sqlite_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_club(sqlite_engine, members=2, lines_per_member=4, start=dt.datetime(2025, 1, 1), days=100)
    store_line(sqlite_engine, "FUTURE-1", dt.datetime(9999, 12, 31))
    monkeypatch.setenv("BOOKCLUB_DATABASE_URL", str(sqlite_engine.url))
    monkeypatch.setenv("BOOKCLUB_DATA_DIR", str(tmp_path / "var"))
    app = typer.Typer()
    train_cmd.register(app)
    refused = CliRunner().invoke(app, ["train"])
    assert refused.exit_code == 1 and isinstance(refused.exception, SystemExit)
    assert "too little data to train on" in refused.output and "training.min_order_lines" in refused.output
    monkeypatch.setenv("BOOKCLUB_TRAINING__MIN_ORDER_LINES", "1")
    monkeypatch.setenv("BOOKCLUB_TRAINING__MIN_MEMBERS", "1")
    monkeypatch.setenv("BOOKCLUB_TRAINING__THREADS", "1")
    trained = CliRunner().invoke(app, ["train"])
    assert trained.exit_code == 0, trained.output
    assert "warning:" in trained.output and "dated 9999-12-31" in trained.output
