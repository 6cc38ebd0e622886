"""A model's files on disk: write a :class:`ModelParts` into a directory and read it back.

Member factors are a plain ``.npy`` so every API worker can ``np.load(...,
mmap_mode="r")`` the same pages. ``meta.json`` records parameters, the data
snapshot and metrics; it is written last, so a directory without it is not a
model (the registry writes into a temporary directory and renames it anyway).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from recsys.affinity import AffinityProfile, CategoryIndex
from recsys.errors import ModelNotFoundError
from recsys.idmap import IdMap
from recsys.trained_model import ModelParts, TrainedModel

META = "meta.json"


def write_parts(parts: ModelParts, directory: Path, meta: dict[str, Any]) -> None:
    """Write every array of ``parts`` and then ``meta.json`` into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    parts.members.save(directory / "member_ids.npy")
    parts.titles.save(directory / "title_ids.npy")
    np.save(directory / "member_factors.npy", np.ascontiguousarray(parts.member_factors))
    np.save(directory / "title_factors.npy", np.ascontiguousarray(parts.title_factors))
    sp.save_npz(directory / "member_titles.npz", parts.member_titles, compressed=False)
    sp.save_npz(directory / "title_categories.npz", parts.title_categories, compressed=False)
    np.savez(directory / "categories.npz", **parts.categories.to_arrays())  # type: ignore[arg-type]
    parts.affinity.save(directory / "affinity.npz")
    np.save(directory / "popularity.npy", parts.popularity)
    np.save(directory / "placement.npy", parts.placement)
    (directory / "title_names.json").write_text(
        json.dumps(parts.title_names, ensure_ascii=False), encoding="utf-8"
    )
    full = dict(meta)
    full.update(
        kind=parts.kind,
        params=parts.params,
        thin_history=parts.thin_history,
        min_titles=parts.min_titles,
        members=len(parts.members),
        titles=len(parts.titles),
    )
    (directory / META).write_text(json.dumps(full, indent=2, ensure_ascii=False), encoding="utf-8")


def read_meta(directory: Path) -> dict[str, Any]:
    path = directory / META
    if not path.exists():
        raise ModelNotFoundError(f"{directory} is not a complete model (no {META})")
    meta: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return meta


def read_model(directory: Path, *, threads: int = 1) -> TrainedModel:
    """The model in ``directory``; member factors memory-mapped read-only."""
    meta = read_meta(directory)
    with np.load(directory / "categories.npz") as arrays:
        categories = CategoryIndex.from_arrays(dict(arrays))
    parts = ModelParts(
        kind=str(meta["kind"]),
        params=dict(meta["params"]),
        members=IdMap.load(directory / "member_ids.npy"),
        titles=IdMap.load(directory / "title_ids.npy"),
        title_names=json.loads((directory / "title_names.json").read_text(encoding="utf-8")),
        member_factors=np.load(directory / "member_factors.npy", mmap_mode="r"),
        title_factors=np.load(directory / "title_factors.npy"),
        member_titles=sp.load_npz(directory / "member_titles.npz").tocsr(),
        categories=categories,
        title_categories=sp.load_npz(directory / "title_categories.npz").tocsr(),
        affinity=AffinityProfile.load(directory / "affinity.npz"),
        popularity=np.load(directory / "popularity.npy"),
        placement=np.load(directory / "placement.npy"),
        thin_history=float(meta.get("thin_history", 3.0)),
        min_titles=int(meta.get("min_titles", 3)),
        threads=threads,
    )
    trained_until = dt.datetime.fromisoformat(str(meta["trained_until"]))
    return TrainedModel(parts, str(meta["version"]), trained_until)
