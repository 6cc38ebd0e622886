"""``bookclub simulate --quarters N``: the decision against a mail-all control arm, quarter by quarter."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from campaign.year_sim import simulate_year


def test_a_year_of_decisions_beats_the_mail_all_control() -> None:
    rows = simulate_year(members=6_000, quarters=3, seed=2)
    assert [(r.quarter, r.arm) for r in rows] == [
        (q, arm) for q in (1, 2, 3) for arm in ("policy", "mail-all control")
    ]
    policy = [r for r in rows if r.arm == "policy"]
    control = [r for r in rows if r.arm != "policy"]
    assert policy[0].how == "randomized test" and policy[1].how.startswith("decision")
    for p, c in zip(policy[1:], control[1:], strict=True):
        assert p.profit_per_member > c.profit_per_member + 0.3
        assert p.profit_per_piece > c.profit_per_piece
        # the control arm mails catalogs only, to everyone but its random holdout
        assert set(c.pieces) == {"catalog", "postcard", "email"} and c.pieces["postcard"] == c.pieces["email"] == 0
        assert 0.9 * c.members < c.pieces["catalog"] < c.members
        assert p.profit == pytest.approx(p.incremental_margin - p.cost)
    with pytest.raises(ValueError):
        simulate_year(members=10)


def test_bookclub_simulate_json() -> None:
    from bookclub_cli.main import app

    out = CliRunner().invoke(app, ["simulate", "--quarters", "2", "--members", "3000", "--json"])
    assert out.exit_code == 0, out.output
    body = json.loads(out.stdout)
    assert [q["quarter"] for q in body["quarters"]] == [1, 1, 2, 2]
    assert body["costs"]["catalog"] == pytest.approx(2.5)
    text = CliRunner().invoke(app, ["simulate", "--quarters", "2", "--members", "3000"])
    assert text.exit_code == 0 and "mail-all control" in text.stdout
