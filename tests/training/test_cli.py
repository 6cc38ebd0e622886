"""``bookclub train / evaluate / tune / recommend / models`` through Typer's runner."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import typer
from sqlalchemy import Engine
from typer.testing import CliRunner

from bookclub_cli import common, recommend_cmd, train_cmd, tune_cmd
from tests.training.synthetic import Club


@pytest.fixture
def cli(
    club: Club, sqlite_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> typer.Typer:
    monkeypatch.setenv("BOOKCLUB_DATABASE_URL", str(sqlite_engine.url))
    monkeypatch.setenv("BOOKCLUB_DATA_DIR", str(tmp_path / "var"))
    for key, value in {
        "FACTORS": "16",
        "ITERATIONS": "8",
        "BPR_ITERATIONS": "20",
        "THREADS": "1",
    }.items():
        monkeypatch.setenv(f"BOOKCLUB_TRAINING__{key}", value)
    app = typer.Typer()
    for module in (train_cmd, tune_cmd, recommend_cmd):
        module.register(app)
    return app


def test_evaluate_json_is_one_object(cli: typer.Typer, club: Club) -> None:
    result = CliRunner().invoke(
        cli, ["evaluate", "--cutoff", club.cutoff.date().isoformat(), "--json"]
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["cutoff"] == club.cutoff.date().isoformat() and out["k"] == 20
    assert set(out["results"]) == {"als", "bpr", "popularity", "category_popularity", "item_knn", "blend"}
    assert "recall@20" in out["results"]["als"] and "ndcg@20" in out["results"]["als"]
    assert set(out["new_titles"]["als"]) == {"recall@20"}


def test_train_recommend_models(cli: typer.Typer) -> None:
    runner = CliRunner()
    first = runner.invoke(cli, ["train", "--evaluate"])
    assert first.exit_code == 0, first.output
    assert "status: active (first model)" in first.stdout
    second = runner.invoke(cli, ["train", "--promote", "never"])
    assert "status: candidate" in second.stdout
    listing = runner.invoke(cli, ["models", "list", "--json"])
    infos = json.loads(listing.stdout)
    assert [i["status"] for i in infos] == ["active", "candidate"]
    assert runner.invoke(cli, ["models", "activate", infos[1]["version"]]).exit_code == 0
    rolled = runner.invoke(cli, ["models", "rollback"])
    assert rolled.exit_code == 0 and infos[0]["version"] in rolled.stdout
    recs = runner.invoke(cli, ["recommend", "M00001", "--limit", "3"])
    assert recs.exit_code == 0, recs.output
    assert "because you bought" in recs.stdout or "new in" in recs.stdout


def test_errors_are_one_line_and_non_zero(cli: typer.Typer) -> None:
    runner = CliRunner()
    bad = runner.invoke(cli, ["evaluate", "--cutoff", "soon"])
    assert bad.exit_code == 1
    assert "not a date" in bad.output and "Traceback" not in bad.output
    none = runner.invoke(cli, ["models", "rollback"])
    assert none.exit_code == 1 and "no earlier active model" in none.output
    missing = runner.invoke(cli, ["recommend", "M00001"])
    assert missing.exit_code == 1 and "bookclub train" in missing.output


def test_evaluate_prints_intervals_and_differences(cli: typer.Typer, club: Club, monkeypatch: pytest.MonkeyPatch) -> None:
    # wide enough for a row on one line: set on the console itself, which keeps a width it found in
    # the environment when it was made (under pytest-xdist a worker's COLUMNS) over COLUMNS later
    monkeypatch.setattr(common.console, "_width", 400)
    result = CliRunner().invoke(cli, ["evaluate", "--cutoff", club.cutoff.date().isoformat()])
    assert result.exit_code == 0, result.output
    assert "95 % interval" in result.stdout and "paired differences" in result.stdout
    assert "warm (history in the window, scored)" in result.stdout
    assert re.search(r"0\.\d{4} \[0\.\d{4}, 0\.\d{4}\]", result.stdout)


def test_evaluate_folds_json(cli: typer.Typer, club: Club) -> None:
    result = CliRunner().invoke(cli, ["evaluate", "--cutoff", club.cutoff.date().isoformat(), "--folds", "2", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert [f["end"] for f in out["folds"]][-1] == club.cutoff.date().isoformat()
    assert out["members"]["warm"] == sum(f["members"]["warm"] for f in out["folds"])
    assert set(out["intervals"]) == set(out["results"]) and out["served"] == "als"


def test_tune_then_train_serves_the_choice(cli: typer.Typer, club: Club) -> None:
    runner = CliRunner()
    tuned = runner.invoke(cli, ["tune", "--cutoff", club.cutoff.date().isoformat(), "--budget", "0", "--folds", "2",
                                "--seeds", "1", "--json"])  # fmt: skip
    assert tuned.exit_code == 0, tuned.output
    record = json.loads(tuned.stdout)
    assert {p["kind"] for p in record["points"]} == {"als", "bpr", "popularity", "category_popularity", "item_knn", "blend"}
    assert [p["kind"] for p in record["points"]][-3:] == ["blend"] * 3  # budget 0: the first round, then the blend
    trained = runner.invoke(cli, ["train"])
    assert trained.exit_code == 0, trained.output
    listing = json.loads(runner.invoke(cli, ["models", "list", "--json"]).stdout)
    assert len(listing) == 1
    evaluated = json.loads(runner.invoke(cli, ["evaluate", "--cutoff", club.cutoff.date().isoformat(), "--json"]).stdout)
    assert evaluated["served"] == record["served"]
