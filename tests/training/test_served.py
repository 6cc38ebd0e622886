"""A served model for every recommender ``bookclub tune`` may choose: item-kNN (no factors),
the ALS + item-kNN blend, popularity and category popularity — trained, saved, loaded and
asked through the one serving path, with reasons, new titles and cold start."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import Engine

from recsys import serving
from recsys.serving import RecommendationQuery
from recsys.settings import Settings, TrainingSettings
from recsys.storage.bulk import bulk_insert
from tests.training.conftest import FAST
from tests.training.synthetic import Club, make_club
from training.pipeline import run_training
from training.registry import ModelRegistry


def served(engine: Engine, tmp_path: Path, kind: str, club: Club) -> Settings:
    settings = Settings(data_dir=tmp_path / "var", training=TrainingSettings(**FAST, model=kind))
    result = run_training(engine, settings, cutoff=club.cutoff, with_evaluation=True, promote="force")
    assert result.info.status == "active"
    return settings


def ask(engine: Engine, settings: Settings, member: str, **query: object) -> serving.MemberRecommendations:
    registry = ModelRegistry(settings.models_dir)
    with engine.connect() as connection:
        model = registry.load_prepared(connection)
        q = RecommendationQuery(in_stock_only=False, **query)  # type: ignore[arg-type]
        return serving.recommend(connection, model, member, q)


def test_item_knn_is_served_with_similarity_reasons(sqlite_engine: Engine, tmp_path: Path) -> None:
    club = make_club(sqlite_engine, members=160)
    settings = served(sqlite_engine, tmp_path, "item_knn", club)
    model = ModelRegistry(settings.models_dir).load()
    assert model.parts.kind == "item_knn" and model.parts.member_factors.shape[1] == 0
    member = "M00001"
    result = ask(sqlite_engine, settings, member, limit=10)
    titles = [r.title_id for r, _ in result.items]
    assert len(titles) == 10 and not result.cold_start
    assert [club.title_leaf[t] for t in titles].count(club.taste[member]) >= 7
    history = [r for r, _ in result.items if r.reason_kind == "history"]
    assert history and history[0].reason.startswith("because you bought 《")
    row = model.parts.member_titles[model.parts.members.find(member)]
    bought = set(row.indices.tolist())
    sim = model.parts.similarity
    assert sim is not None
    for rec in history:
        t = model.parts.titles.find(rec.title_id)
        assert t not in bought
        causes = [model.parts.titles.find(b) for b in rec.because]
        assert all(c in bought for c in causes)
        # the first cause contributes most: confidence × similarity, over the member's history
        contrib = {j: float(row[0, j]) * float(sim[j, t]) for j in bought}
        assert contrib[causes[0]] == pytest.approx(max(contrib.values()))
    # new titles (no sales before the cutoff) are placed in their category and can be picked
    # (asked of the model itself: through serving, the member's purchases after the cutoff count)
    new = model.recommend("M00002", limit=3, only_title_ids=club.new_title_ids)
    assert [club.title_leaf[r.title_id] for r in new] == [club.taste["M00002"]] * 3
    assert new[0].reason_kind == "new_in_category"
    similar = model.similar_titles(titles[0], limit=5)
    assert similar and titles[0] not in [t for t, _ in similar]
    scores = model.score_titles([member, "nobody"], titles[:3])
    assert scores.shape == (2, 3) and np.all(np.isfinite(scores))


def test_the_blend_is_served_with_reasons_from_either_component(sqlite_engine: Engine, tmp_path: Path) -> None:
    club = make_club(sqlite_engine, members=160)
    settings = Settings(data_dir=tmp_path / "var", training=TrainingSettings(**FAST, model="blend", blend_weight=0.5))
    result = run_training(sqlite_engine, settings, cutoff=club.cutoff, with_evaluation=True, promote="force")
    assert result.info.status == "active" and result.evaluation is not None
    assert "blend" in result.evaluation.results
    model = ModelRegistry(settings.models_dir).load()
    parts = model.parts
    assert parts.kind == "blend" and parts.similarity is not None and parts.member_factors.shape[1] == FAST["factors"]
    assert parts.params["weight"] == 0.5 and parts.params["als"]["factors"] == FAST["factors"]
    assert parts.params["item_knn"]["neighbours"] == FAST["knn_neighbours"]
    member = "M00001"
    answer = ask(sqlite_engine, settings, member, limit=10)
    titles = [r.title_id for r, _ in answer.items]
    assert len(titles) == 10 and not answer.cold_start
    assert [club.title_leaf[t] for t in titles].count(club.taste[member]) >= 7
    history = [r for r, _ in answer.items if r.reason_kind == "history"]
    assert history and history[0].reason.startswith("because you bought 《")
    bought = set(parts.member_titles[parts.members.find(member)].indices.tolist())
    assert all(parts.titles.find(b) in bought for r in history for b in r.because)
    # the reasons are the component's that adds more to each title's score: with the weight at
    # 1 (ALS alone) they are ALS's decomposition, at 0 item-kNN's contributions
    recs = {}
    for weight in (1.0, 0.0):
        parts.params["weight"] = weight
        recs[weight] = model.recommend(member, limit=10)
    parts.params["weight"] = 0.5
    sim = parts.similarity
    row = parts.member_titles[parts.members.find(member)]
    for rec in recs[0.0]:
        if rec.reason_kind == "history":
            t = parts.titles.find(rec.title_id)
            contrib = {j: float(row[0, j]) * float(sim[j, t]) for j in bought}
            assert contrib[parts.titles.find(rec.because[0])] == pytest.approx(max(contrib.values()))
    assert [r.title_id for r in recs[1.0]] != [r.title_id for r in recs[0.0]]
    # a filter keeps the order of what it keeps (the two scales are set before any filter)
    some = titles[::2]
    assert [r.title_id for r in model.recommend(member, limit=10, only_title_ids=some)] == some
    # new titles placed in their category, recent purchases folded in, likeness and scores
    new = model.recommend("M00002", limit=3, only_title_ids=club.new_title_ids)
    assert [club.title_leaf[r.title_id] for r in new] == [club.taste["M00002"]] * 3
    assert new[0].reason_kind == "new_in_category"
    after = model.recommend(member, limit=10, recent=[(titles[0], 1.0)])
    assert titles[0] not in [r.title_id for r in after]
    similar = model.similar_titles(titles[0], limit=5)
    assert similar and titles[0] not in [t for t, _ in similar]
    scores = model.score_titles([member, "nobody"], titles[:3])
    assert scores.shape == (2, 3) and np.all(np.isfinite(scores))
    # catalog planning scores members in chunks: the same as one member at a time
    members = parts.members.all_ids()[:40]
    together = model.score_titles(members, titles)
    alone = np.vstack([model.score_titles([m], titles) for m in members])
    np.testing.assert_allclose(together, alone, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", ["popularity", "category_popularity"])
def test_popularity_kinds_are_served(sqlite_engine: Engine, tmp_path: Path, kind: str) -> None:
    club = make_club(sqlite_engine, members=120)
    settings = served(sqlite_engine, tmp_path, kind, club)
    model = ModelRegistry(settings.models_dir).load()
    result = ask(sqlite_engine, settings, "M00003", limit=8)
    assert len(result.items) == 8
    assert {r.reason_kind for r, _ in result.items} <= {"popular", "category_popular", "new_in_category"}
    leaves = [club.title_leaf[r.title_id] for r, _ in result.items]
    if kind == "category_popularity":  # the member's own sub-class first
        assert leaves.count(club.taste["M00003"]) >= 6
    else:  # the same best-sellers for everyone with history
        other = [r.title_id for r, _ in ask(sqlite_engine, settings, "M00004", limit=8).items]
        bought = set()
        for m in ("M00003", "M00004"):
            row = model.parts.member_titles[model.parts.members.find(m)]
            bought |= {model.parts.titles.to_id(int(i)) for i in row.indices}
        top = [t for t in (r.title_id for r, _ in result.items) if t not in bought]
        assert top[:3] == [t for t in other if t not in bought][:3]


def test_cold_start_is_the_same_for_every_kind(sqlite_engine: Engine, tmp_path: Path) -> None:
    """A member without purchases who declared K5 gets K5's best-sellers from any served kind."""
    club = make_club(sqlite_engine, members=120)
    with sqlite_engine.begin() as connection:
        bulk_insert(connection, "members", ["id", "member_id", "name", "status"], [(900, "C1", "c", "active")])
        bulk_insert(connection, "member_categories", ["member_key", "category_code"], [(900, "K5")])
    answers = {}
    for kind in ("als", "item_knn", "blend", "popularity"):
        settings = served(sqlite_engine, tmp_path / kind, kind, club)
        result = ask(sqlite_engine, settings, "C1", limit=5)
        assert result.cold_start
        answers[kind] = [r.title_id for r, _ in result.items]
        assert all(club.title_leaf[t] == "K5" for t in answers[kind])
    assert answers["als"] == answers["item_knn"] == answers["blend"] == answers["popularity"]
