"""Model files: format 2 memory-maps every big array; format 1 is still read; newer is refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from sqlalchemy import Engine

from recsys.settings import Settings, TrainingSettings
from tests.training.synthetic import make_club
from training.artifact import FORMAT, META, ModelFormatError, read_model
from training.pipeline import run_training
from training.registry import ModelRegistry


@pytest.fixture
def model_dir(sqlite_engine: Engine, tmp_path: Path) -> Path:
    make_club(sqlite_engine, members=60)
    training = TrainingSettings(factors=8, iterations=4, threads=1)
    settings = Settings(data_dir=tmp_path / "var", training=training)
    result = run_training(sqlite_engine, settings, promote="force")
    return ModelRegistry(settings.models_dir).versions_dir / result.info.version


def test_big_arrays_are_shared_read_only_maps(model_dir: Path) -> None:
    assert json.loads((model_dir / META).read_text())["format"] == FORMAT
    model = read_model(model_dir)
    p = model.parts
    for array in (
        p.member_factors,
        p.title_factors,
        p.member_titles.data,
        p.member_titles.indices,
        p.member_titles.indptr,
        p.affinity.member_weights.data,
        p.affinity.member_totals,
    ):
        assert isinstance(array, np.memmap) and not array.flags.writeable
    member = p.members.to_id(0)
    assert model.recommend(member, limit=5)
    assert model.category_affinity(member)


def test_format_1_models_still_load_the_same(model_dir: Path, tmp_path: Path) -> None:
    new = read_model(model_dir)
    old_dir = tmp_path / "old"
    old_dir.mkdir()
    for path in model_dir.iterdir():
        if not path.name.startswith(("member_titles.", "affinity.")):
            (old_dir / path.name).write_bytes(path.read_bytes())
    sp.save_npz(old_dir / "member_titles.npz", sp.csr_matrix(new.parts.member_titles), compressed=False)
    new.parts.affinity.save(old_dir / "affinity.npz")
    meta = json.loads((old_dir / META).read_text())
    del meta["format"]
    (old_dir / META).write_text(json.dumps(meta))
    old = read_model(old_dir)
    member = new.parts.members.to_id(3)
    assert [r.title_id for r in old.recommend(member, limit=5)] == [
        r.title_id for r in new.recommend(member, limit=5)
    ]
    assert old.category_affinity(member) == new.category_affinity(member)


def test_a_newer_format_is_refused_with_what_to_do(model_dir: Path) -> None:
    meta = json.loads((model_dir / META).read_text())
    meta["format"] = FORMAT + 1
    (model_dir / META).write_text(json.dumps(meta))
    with pytest.raises(ModelFormatError, match="upgrade bookclub or retrain"):
        read_model(model_dir)
