"""Model files: format 2 memory-maps every big array; format 1 is still read; newer is refused;
checksums are written with every artifact and checked before it is trusted."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from sqlalchemy import Engine

from recsys.settings import Settings, TrainingSettings
from tests.training.synthetic import make_club
from training.artifact import (
    CHECKED,
    FORMAT,
    META,
    UNCHECKED,
    ModelCorruptError,
    ModelFormatError,
    read_model,
    verify_artifact,
)
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
    del meta["format"], meta["files"]  # format 1 came before checksums
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


def test_every_file_is_recorded_with_its_size_and_sha256(model_dir: Path) -> None:
    meta = json.loads((model_dir / META).read_text())
    files = {p.name for p in model_dir.iterdir()} - {META}
    assert set(meta["files"]) == files and "member_factors.npy" in files
    for name, record in meta["files"].items():
        data = (model_dir / name).read_bytes()
        assert record == {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    assert verify_artifact(model_dir) == CHECKED


def test_a_truncated_file_is_named_when_the_model_is_read(model_dir: Path) -> None:
    path = model_dir / "member_titles.indices.npy"
    path.write_bytes(path.read_bytes()[:-8])
    with pytest.raises(ModelCorruptError) as caught:
        read_model(model_dir)
    assert caught.value.file == "member_titles.indices.npy" and "bytes where" in caught.value.reason


def test_a_changed_byte_is_found_by_its_checksum(model_dir: Path) -> None:
    read_model(model_dir)  # a flipped byte inside an array still maps and loads...
    path = model_dir / "member_factors.npy"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    read_model(model_dir)
    with pytest.raises(ModelCorruptError, match=r"member_factors\.npy: its content differs"):
        verify_artifact(model_dir)  # ...only the checksum tells


def test_unreadable_meta_is_named(model_dir: Path) -> None:
    (model_dir / META).write_text('{"format": 2, "files": ')
    with pytest.raises(ModelCorruptError, match=r"meta\.json: not readable JSON"):
        read_model(model_dir)


def test_without_checksums_every_file_is_loaded(model_dir: Path) -> None:
    meta = json.loads((model_dir / META).read_text())
    del meta["files"]
    (model_dir / META).write_text(json.dumps(meta))
    assert verify_artifact(model_dir) == UNCHECKED
    (model_dir / "title_categories.npz").write_bytes(b"PK\x03\x04 not a zip")
    with pytest.raises(ModelCorruptError) as caught:
        verify_artifact(model_dir)
    assert caught.value.file == "title_categories.npz" and str(model_dir) not in str(caught.value)


def test_arrays_that_disagree_are_refused(model_dir: Path) -> None:
    """Files that each load but were not written together (one from another model)."""
    meta = json.loads((model_dir / META).read_text())
    del meta["files"]
    (model_dir / META).write_text(json.dumps(meta))
    np.save(model_dir / "popularity.npy", np.zeros(3, dtype=np.float32))
    with pytest.raises(ModelCorruptError, match=r"popularity.npy: 3 titles where the model has"):
        verify_artifact(model_dir)
