"""The whole loop, many times: contacts → simulated responses → matchback → report, through the
database. The report's 95 % intervals must cover the simulated truth at least 93 % of the time
and its estimates must be unbiased (the statistics alone have their own coverage test in
test_simulate.py; this one checks that nothing on the way — contacts, windows, order lines,
outcomes per contact — bends them)."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest
from sqlalchemy import Engine

from campaign.contacts import PrintFiles, write_quarter_contacts
from campaign.effects import OUTCOMES
from campaign.matchback import run_matchback
from campaign.report import campaign_report
from demo.respond import simulate_responses
from recsys.errors import BookclubError
from recsys.settings import CampaignSettings
from recsys.storage import club as club_db
from tests.campaign.club import QUARTER, insert_club

FILES = PrintFiles(member=lambda m: f"{QUARTER}/members/{m}.pdf", segment=lambda s: f"{QUARTER}/segment-{s}.pdf")
SETTINGS = CampaignSettings(
    holdout_share=0.3, universal_holdout_share=0.0, response_days=90, late_days=0, resamples=1000
)
BASE = dt.date(2030, 1, 1)


def test_only_a_demo_club_gets_simulated_responses(sqlite_engine: Engine) -> None:
    with sqlite_engine.begin() as connection:
        insert_club(connection, 50)
        write_quarter_contacts(connection, SETTINGS, QUARTER, BASE, files=FILES, in_home=BASE)
        with pytest.raises(BookclubError, match="only into a generated demo club"):
            simulate_responses(connection, QUARTER, sections={}, plan_titles={0: ["T1"]}, margin_rate=0.35)


@pytest.mark.slow
def test_the_loop_covers_the_simulated_truth_and_is_unbiased(sqlite_engine: Engine) -> None:
    replications, members = 300, 1_500
    with sqlite_engine.begin() as connection:
        insert_club(connection, members, segments=1)
        club_db.mark_demo(connection, "coverage test club")
    covered = dict.fromkeys(OUTCOMES, 0)
    errors: dict[str, list[float]] = {name: [] for name in OUTCOMES}
    for i in range(replications):
        name = f"R{i:03d}"
        in_home = BASE + dt.timedelta(days=100 * i)  # windows never overlap
        with sqlite_engine.begin() as connection:
            write_quarter_contacts(connection, SETTINGS, QUARTER, BASE, files=FILES, in_home=in_home, name=name)
            simulated = simulate_responses(
                connection, name, sections={0: []}, plan_titles={0: ["T1"]}, margin_rate=SETTINGS.margin_rate,
                seed=10_000 + i,
            )
            run_matchback(connection, name)
            report = campaign_report(connection, name, SETTINGS)
        [arm] = report.arms
        truth = simulated.truth[arm.treatment.id]
        assert not report.mismatch
        for outcome in OUTCOMES:
            effect = arm.effect.outcome(outcome)
            covered[outcome] += effect.low <= truth[outcome] <= effect.high
            errors[outcome].append(effect.incremental - truth[outcome])
    print(f"\nthe loop through the database: {replications} campaigns of {members} members, 30 % held out")
    for outcome in OUTCOMES:
        error = np.asarray(errors[outcome])
        se = error.std(ddof=1) / math.sqrt(replications)
        print(f"{outcome:<9} coverage {covered[outcome] / replications:.3f}  mean error {error.mean():+.5f} (se {se:.5f})")
    for outcome in OUTCOMES:
        assert covered[outcome] / replications >= 0.93, outcome
        error = np.asarray(errors[outcome])
        assert abs(error.mean()) <= 3 * error.std(ddof=1) / math.sqrt(replications), f"{outcome}: biased"
