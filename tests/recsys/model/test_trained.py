"""The served model, trained on a synthetic club whose right answers are known."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import Engine

from recsys.errors import UnknownCategoryError, UnknownTitleError
from recsys.model.trained import TrainedModel
from recsys.settings import Settings, TrainingSettings
from tests.training.synthetic import Club, make_club
from training.pipeline import run_training
from training.registry import ModelRegistry

FAST = TrainingSettings(factors=16, iterations=10, threads=1)


@pytest.fixture
def trained(sqlite_engine: Engine, tmp_path) -> tuple[TrainedModel, Club]:  # type: ignore[no-untyped-def]
    club = make_club(sqlite_engine, members=160)
    settings = Settings(data_dir=tmp_path / "var", training=FAST)
    # trained up to the cutoff: the new titles have had no sales yet
    run_training(sqlite_engine, settings, cutoff=club.cutoff)
    return ModelRegistry(settings.models_dir).load(), club


def test_known_member_gets_own_taste_with_history_reasons(trained) -> None:  # type: ignore[no-untyped-def]
    model, club = trained
    member = "M00001"
    recs = model.recommend(member, limit=10)
    assert len(recs) == 10
    leaves = [club.title_leaf[r.title_id] for r in recs]
    assert leaves.count(club.taste[member]) >= 7
    history = [r for r in recs if r.reason_kind == "history"]
    assert history and history[0].reason.startswith("because you bought 《")
    bought = set(model.parts.member_titles[model.parts.members.find(member)].indices.tolist())
    assert all(model.parts.titles.find(t) not in bought for r in history for t in [r.title_id])
    assert all(model.parts.titles.find(b) in bought for r in history for b in r.because)
    scores = [r.score for r in recs]
    assert scores == sorted(scores, reverse=True)


def test_new_titles_rank_on_the_same_scale(trained) -> None:  # type: ignore[no-untyped-def]
    model, club = trained
    member = "M00002"  # reads K2
    new_in_taste = [t for t in club.new_title_ids if club.title_leaf[t] == club.taste[member]]
    recs = model.recommend(member, limit=5, only_title_ids=club.new_title_ids)
    assert {r.title_id for r in recs[:3]} == set(new_in_taste)
    assert recs[0].reason_kind == "new_in_category"
    assert recs[0].reason == "new in K2 中国史, a class you read" and recs[0].because == ("K2",)
    # a new title's score is the mean of its category's titles with sales (linear model)
    warm = [
        t for t, leaf in club.title_leaf.items() if leaf == "K2" and t not in club.new_title_ids
    ]
    sold = [t for t in warm if model.parts.placement[model.parts.titles.find(t)] == -2]
    scores = model.score_titles([member], [new_in_taste[0], *sold])
    assert scores[0, 0] == pytest.approx(scores[0, 1:].mean(), rel=1e-4)


def test_cold_members_get_popularity_in_their_categories(trained) -> None:  # type: ignore[no-untyped-def]
    model, club = trained
    assert not model.knows_member("NEW-1")
    recs = model.recommend("NEW-1", limit=5, declared_categories=["K5"])
    assert all(club.title_leaf[r.title_id] == "K5" for r in recs)
    assert recs[0].reason_kind == "category_popular" and "K5" in recs[0].reason
    plain = model.recommend("NEW-2", limit=3)
    assert plain[0].reason_kind == "popular"


def test_filters_and_recent_purchases(trained) -> None:  # type: ignore[no-untyped-def]
    model, club = trained
    member = "M00003"
    first = model.recommend(member, limit=3)
    recs = model.recommend(member, limit=5, exclude_title_ids=[first[0].title_id], category="K")
    assert first[0].title_id not in {r.title_id for r in recs}
    assert all(club.title_leaf[r.title_id].startswith("K") for r in recs)
    with pytest.raises(UnknownCategoryError):
        model.recommend(member, category="Z9")
    recent = [(first[0].title_id, 1.0), (first[1].title_id, 2.0)]
    after = model.recommend(member, limit=10, recent=recent)
    assert not {first[0].title_id, first[1].title_id} & {r.title_id for r in after}


def test_categories_similar_and_added_titles(trained) -> None:  # type: ignore[no-untyped-def]
    model, club = trained
    affinity = model.category_affinity("M00001")
    assert max(affinity, key=affinity.get) == "I"
    assert affinity["I22"] > affinity["I24"]
    members, codes, matrix = model.affinity_matrix()
    assert matrix.shape == (len(members), len(codes))
    popular = model.popular_in_category("I24", limit=4)
    assert all(club.title_leaf[t] == "I24" for t, _ in popular)
    assert [s for _, s in popular] == sorted((s for _, s in popular), reverse=True)
    similar = model.similar_titles("TK5-000", limit=5)
    assert sum(club.title_leaf[t] == "K5" for t, _ in similar) >= 3
    with pytest.raises(UnknownTitleError):
        model.similar_titles("nope")
    factors = model.member_factors()
    assert isinstance(factors, np.memmap) and not factors.flags.writeable
    model.add_titles([("FRESH-1", ["I22"])])
    recs = model.recommend("M00001", limit=3, only_title_ids=["FRESH-1", "TK5-001"])
    assert recs[0].title_id == "FRESH-1" and recs[0].reason_kind == "new_in_category"
    assert model.similar_titles("FRESH-1", limit=3)


def test_a_title_mask_excludes_like_the_ids_it_holds(trained) -> None:  # type: ignore[no-untyped-def]
    model, _club = trained
    member = "M00001"
    ids = [r.title_id for r in model.recommend(member, limit=3)]
    mask = model.title_mask([ids[0], ids[1], "NOT-A-TITLE"])
    assert ids[0] in mask and "NOT-A-TITLE" in mask and ids[2] not in mask and len(mask) == 3
    plus = mask.plus([ids[2], ids[0]])
    assert ids[2] in plus and len(plus) == 4 and ids[2] not in mask
    by_mask = [r.title_id for r in model.recommend(member, limit=5, exclude_title_ids=plus)]
    by_ids = [r.title_id for r in model.recommend(member, limit=5, exclude_title_ids=set(ids))]
    assert by_mask == by_ids and not set(ids) & set(by_mask)
