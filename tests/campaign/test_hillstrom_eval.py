"""A policy learned on one half of a randomized e-mail test and valued (IPW and DR) on the other:
on a planted file where the answer is known, and on the real Hillstrom file."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from campaign.hillstrom_data import load_hillstrom
from campaign.hillstrom_eval import HILLSTROM_CANDIDATES, evaluate_hillstrom
from tests.conftest import shared_data

COLUMNS = ("recency", "history_segment", "history", "mens", "womens", "zip_code", "newbie", "channel", "segment",
           "visit", "conversion", "spend")  # fmt: skip


def _planted(path: Path, n: int, seed: int) -> Path:
    """Hillstrom's columns, arms at random; the men's e-mail moves men's buyers, the women's
    e-mail women's buyers, each from 5 % to 30 % visits, a third of visitors buy for 50."""
    rng = np.random.default_rng(seed)
    arms = ("No E-Mail", "Mens E-Mail", "Womens E-Mail")
    with gzip.open(path, "wt", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for _ in range(n):
            mens = int(rng.random() < 0.5)
            arm = int(rng.integers(0, 3))
            moved = (arm == 1 and mens) or (arm == 2 and not mens)
            visit = rng.random() < (0.30 if moved else 0.05)
            conversion = visit and rng.random() < 1 / 3
            writer.writerow([
                int(rng.integers(1, 13)), "1) $0 - $100", f"{rng.uniform(30, 900):.2f}", mens, 1 - mens,
                str(rng.choice(["Urban", "Surburban", "Rural"])), int(rng.integers(0, 2)),
                str(rng.choice(["Phone", "Web", "Multichannel"])), arms[arm], int(visit), int(conversion),
                f"{50.0 * conversion:.2f}",
            ])  # fmt: skip
    return path


def test_the_learned_policy_finds_a_planted_effect(tmp_path: Path) -> None:
    path = _planted(tmp_path / "planted.csv.gz", 6_000, seed=1)
    result = evaluate_hillstrom(path, seed=0, outcome="spend", resamples=400)
    assert result.members_learned == result.members_evaluated == 3_000
    assert set(result.selection) == set(HILLSTROM_CANDIDATES)
    assert result.chosen in ("via conversion", "via visit")  # chosen on the learning half
    # each member gets the edition that moves them: about half each, nobody left out
    assert result.policy_mix["No E-Mail"] == 0 and 0.35 < result.policy_mix["Mens E-Mail"] < 0.65
    # truth: 50/3 · 0.30 = 5.0 per member for the policy, 2.9 for one edition to everyone
    for estimator in ("ipw", "dr"):
        for rival in ("both editions to everyone", "no e-mail"):
            c = result.comparison(rival, estimator)
            assert c.low > 0.3, (estimator, c)
    assert abs(result.policy_value - 5.0) < 1.0 and abs(result.policy_value_dr - 5.0) < 1.0
    learned = result.qini[result.chosen]
    assert learned["Mens E-Mail qini"] is not None and learned["Mens E-Mail qini"] > 0.1
    # the gain seen is large: fewer members than this half would show it; +5 % would take many more
    seen = result.members_needed["dr: both editions to everyone, the gain seen"]
    small = result.members_needed["dr: both editions to everyone, +5 %"]
    assert seen is not None and small is not None and seen < 3_000 < small
    json.dumps(result.to_json())


def test_bad_rows_and_candidates_are_named(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv.gz"
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write(",".join(COLUMNS) + "\n")
        handle.write("3,x,abc,1,0,Urban,0,Web,Mens E-Mail,0,0,0\n")
    with pytest.raises(ValueError, match="line 2"):
        load_hillstrom(path)
    with pytest.raises(ValueError, match="unknown candidate"):
        evaluate_hillstrom(path, candidates=("via spend",))


@pytest.mark.slow
def test_hillstrom_spend_policy_learned_on_one_half_valued_on_the_other() -> None:
    result = evaluate_hillstrom(shared_data("hillstrom", "hillstrom.csv.gz"), seed=0, outcome="spend",
                                resamples=1000)  # fmt: skip
    print(json.dumps(result.to_json(), indent=1))
    assert result.members_learned == result.members_evaluated == 32_000
    assert result.chosen in HILLSTROM_CANDIDATES and set(result.selection) == set(HILLSTROM_CANDIDATES)
    for estimator in ("ipw", "dr"):
        assert result.comparison("no e-mail", estimator).low > 0  # e-mail pays, whatever the policy
    # DR and IPW estimate the same value; DR's interval is no wider
    assert abs(result.policy_value_dr - result.policy_value) < 0.1
    ipw, dr = (result.comparison("both editions to everyone", e) for e in ("ipw", "dr"))
    assert dr.high - dr.low <= 1.02 * (ipw.high - ipw.low)
    # spend is too noisy for 32,000 customers to show a +5 % gain over the men's e-mail to everyone
    needed = [c["members needed for +5 % over the better edition (dr)"] for c in result.candidates.values()]
    assert all(n is None or n > 64_000 for n in needed)
    for rows in result.qini.values():
        assert {"Mens E-Mail qini", "Mens E-Mail auuc", "Womens E-Mail qini", "Womens E-Mail auuc"} <= set(rows)


@pytest.mark.slow
def test_the_command_runs_several_splits_both_directions_with_ipw_and_dr(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``bookclub evaluate-mailing --halves 0,1 --swap``: one entry per split and outcome, each with
    both directions pooled; the table prints IPW and DR side by side."""
    from typer.testing import CliRunner

    from bookclub_cli.main import app
    from campaign import hillstrom_eval

    done: dict[tuple[Any, ...], Any] = {}
    real = hillstrom_eval.repeated_halves

    def once(path: Path, seeds: Any, **kw: Any) -> Any:  # the table's run reuses the JSON run's figures
        key = (path, tuple(seeds), *sorted(kw.items()))
        return done[key] if key in done else done.setdefault(key, real(path, seeds, **kw))

    monkeypatch.setattr(hillstrom_eval, "repeated_halves", once)
    path = _planted(tmp_path / "planted.csv.gz", 1_600, seed=2)
    args = ["evaluate-mailing", "--hillstrom", str(path), "--halves", "0,1", "--swap",
            "--train-members", "1000", "--eval-members", "1000"]  # fmt: skip
    env = {"BOOKCLUB_DATA_DIR": str(tmp_path / "var")}
    runner = CliRunner()
    result = runner.invoke(app, [*args, "--json"], env=env)
    assert result.exit_code == 0, result.output
    hill = json.loads(result.stdout)["hillstrom"]
    assert [(h["seed"], h["outcome"]) for h in hill] == [(0, "spend × 1"), (1, "spend × 1"), (0, "visit"), (1, "visit")]
    for h in hill:
        assert h["both_directions"] is not None and h["both_directions"]["members_evaluated"] == 1_600
        assert {"ipw", "dr"} <= set(h["against"])
    table = runner.invoke(app, args, env=env)
    assert table.exit_code == 0, table.output
    assert "split 1, both directions pooled" in table.stdout and "gain DR" in table.stdout
    bad = runner.invoke(app, [*args[:3], "--halves", "0,x"], env=env)
    assert bad.exit_code != 0 and "--halves" in bad.output
