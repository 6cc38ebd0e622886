"""The uplift feature "how much the member should like their edition's titles": ranks of the
scores of the model that planned each quarter's catalogs, wired into the mailing plan."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pytest
from sqlalchemy import Engine

from campaign.contacts import PrintFiles, write_quarter_contacts
from campaign.edition_scores import edition_title_scores, rank_quantile
from campaign.mailing_plan import plan_mailing
from recsys.errors import BookclubError, ModelNotFoundError
from recsys.settings import CampaignSettings, MailingSettings, Settings
from recsys.storage import plans as plans_db
from tests.campaign.club import add_lines, insert_club, member_id, segment_with_rfm

PAST, NOW = "2026Q3", "2026Q4"
IN_HOME = dt.date(2026, 7, 1)
N = 2_400
FILES = PrintFiles(member=lambda m: f"{PAST}/members/{m}.pdf", segment=lambda s: f"{PAST}/segment-{s}.pdf")
PLAN = json.dumps({"sections": [{"code": "I", "entries": [{"title_id": "T1"}]}]})


def keen(i: int) -> bool:
    """Members who like this catalog's titles — and whom a catalog moves; nothing else they
    have (segment, tier, R/F/M, value) tells them apart."""
    return i % 7 == 0


class Model:
    """Scores T1 high for the keen members; remembers what it scored."""

    version = "v-test"

    def __init__(self) -> None:
        self.asked: list[str] = []

    def score_titles(self, member_ids: Sequence[str], title_ids: Sequence[str]) -> npt.NDArray[np.float32]:
        self.asked.extend(member_ids)
        keen_rows = [keen(int(m[1:])) for m in member_ids]
        return np.array([[2.0 if k else 0.3] * len(title_ids) for k in keen_rows], dtype=np.float32)


def test_rank_quantile_known_answers() -> None:
    assert rank_quantile(np.array([3.0, 1.0, 2.0])).tolist() == [1.0, 0.0, 0.5]
    # ties share their mean rank: ranks 0,1 → 0.5 and 2,3 → 2.5, over 3
    assert rank_quantile(np.array([5.0, 5.0, 9.0, 9.0])).tolist() == pytest.approx([0.5 / 3, 0.5 / 3, 2.5 / 3, 2.5 / 3])
    assert rank_quantile(np.array([-np.inf, 1.0])).tolist() == [0.0, 1.0]
    assert rank_quantile(np.array([7.0])).tolist() == [0.5]


def test_scores_come_from_the_model_that_planned_the_catalogs(sqlite_engine: Engine) -> None:
    with sqlite_engine.begin() as connection:
        insert_club(connection, 40, quarter=NOW)
        for s in range(4):
            plans_db.store_plan(connection, NOW, s, "v-planned", f"h{s}", PLAN)
    model, versions = Model(), []

    def source(version: str) -> Model:
        versions.append(version)
        return model

    ids = [member_id(i) for i in range(40)]
    with sqlite_engine.connect() as connection:
        scores, why = edition_title_scores(connection, NOW, ids, np.arange(40) % 4, source)
        assert why is None and versions == ["v-planned"]  # loaded once, for every segment
        assert scores is not None and sorted(model.asked) == ids
        assert (scores[[keen(i) for i in range(40)]] > 0.5).all() and (scores[[not keen(i) for i in range(40)]] < 0.5).all()

        def gone(version: str) -> Model:
            raise ModelNotFoundError(f"no model version {version!r}")

        scores, why = edition_title_scores(connection, NOW, ids, np.arange(40) % 4, gone)
        assert scores is None and why is not None and "v-planned" in why and "cannot be loaded" in why
        assert edition_title_scores(connection, "2027Q1", ids, np.arange(40) % 4, source) == (
            None, "no catalog plans for 2027Q1")  # fmt: skip


def build(engine: Engine, settings: Settings) -> None:
    rng = np.random.default_rng(11)
    with engine.begin() as connection:
        insert_club(connection, N, quarter=PAST)
        segment_with_rfm(connection, N, NOW)
        for quarter in (PAST, NOW):
            for s in range(4):
                plans_db.store_plan(connection, quarter, s, "v-test", f"h{s}", PLAN)
        result = write_quarter_contacts(connection, settings.campaign, PAST, IN_HOME, files=FILES, in_home=IN_HOME)
        lines = []
        for i in range(N):
            mid = member_id(i)
            for j in range(2 + i % 3):
                lines.append((f"H{i}-{j}", mid, dt.datetime(2025, 1, 5) + dt.timedelta(days=int(rng.integers(0, 500))),
                              20.0, None))  # fmt: skip
            mailed = result.plan.arm[i] == "mailed"
            if rng.random() < 0.10 + (0.5 if mailed and keen(i) else 0.0):
                lines.append((f"R{i}", mid, dt.datetime(2026, 7, 10) + dt.timedelta(days=int(rng.integers(0, 60))),
                              30.0, None))  # fmt: skip
        add_lines(connection, lines)


@pytest.mark.slow
def test_the_plan_finds_the_members_who_like_the_titles(engine: Engine, tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(data_dir=tmp_path, campaign=CampaignSettings(holdout_share=0.25, universal_holdout_share=0.0),
                        mailing=MailingSettings(edition_title_scores=True))  # fmt: skip
    build(engine, settings)
    keen_rows = np.array([keen(i) for i in range(N)])
    model = Model()
    with engine.connect() as connection:
        scored = plan_mailing(connection, settings, NOW, dt.date(2026, 10, 1), models=lambda v: model)
        blind = plan_mailing(connection, settings, NOW, dt.date(2026, 10, 1))
    assert not any("title scores left out" in n for n in scored.notes)
    assert any("title scores left out (½ for every member): no model source given" in n for n in blind.notes)
    index = {m: i for i, m in enumerate(scored.member_id)}
    rows = np.array([index[member_id(i)] for i in range(N)])
    planned = scored.decision.choice[rows] >= 0
    # with the scores, the keen members are planned and hardly anyone else
    assert planned[keen_rows].mean() > 0.8 and planned[~keen_rows].mean() < 0.1
    # without them the plan cannot tell them apart: it mails much the same share of both, or nobody
    blind_planned = blind.decision.choice[rows] >= 0
    assert abs(blind_planned[keen_rows].mean() - blind_planned[~keen_rows].mean()) < 0.3
    # a version no longer kept: the feature is left out, the plan still made
    with engine.connect() as connection:
        def gone(version: str) -> Model:
            raise BookclubError("gone")

        kept_out = plan_mailing(connection, settings, NOW, dt.date(2026, 10, 1), models=gone)
        off = settings.model_copy(update={"mailing": MailingSettings()})  # the default: not used
        unused = plan_mailing(connection, off, NOW, dt.date(2026, 10, 1), models=lambda v: model)
    assert any("cannot be loaded (gone)" in n for n in kept_out.notes)
    assert "edition title scores not used (mailing.edition_title_scores is off)" in unused.notes
    assert np.array_equal(unused.decision.choice, blind.decision.choice)
