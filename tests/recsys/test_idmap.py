from __future__ import annotations

from pathlib import Path

import pytest

from recsys.idmap import IdMap


def test_ids_sorted_unique_and_round_trip(tmp_path: Path) -> None:
    ids = IdMap.from_ids(["M3", "M1", "会员2", "M1"])
    assert len(ids) == 3
    assert ids.all_ids() == ["M1", "M3", "会员2"]
    assert ids.to_idx(["M3", "M1"]).tolist() == [1, 0]
    assert ids.to_id(2) == "会员2"
    ids.save(tmp_path / "ids.npy")
    loaded = IdMap.load(tmp_path / "ids.npy")
    assert loaded.find("会员2") == 2 and "M3" in loaded


def test_unknown_ids() -> None:
    ids = IdMap.from_ids(["b", "d"])
    assert ids.find_many(["a", "b", "c", "e"]).tolist() == [-1, 0, -1, -1]
    with pytest.raises(KeyError, match="c"):
        ids.to_idx(["b", "c"])
    assert IdMap.from_ids([]).find("x") == -1


def test_rejects_unsorted_array() -> None:
    import numpy as np

    with pytest.raises(ValueError, match="sorted"):
        IdMap(np.array([b"b", b"a"]))
