"""A model's files on disk: write a :class:`ModelParts` into a directory and read it back.

Format 2: every big read-only array is a plain ``.npy`` that every API worker
opens with ``np.load(..., mmap_mode="r")``, so the workers share one copy in the
page cache: member and title factors, the member × title confidence matrix
(``member_titles.{data,indices,indptr}.npy``) and the member × category
affinity (``affinity.{data,indices,indptr,totals}.npy``). Format 1 (those two
matrices as ``.npz``, read into each worker's memory) is still read.
``meta.json`` records the format, parameters, the data snapshot and metrics; it
is written last, so a directory without it is not a model (the registry writes
into a temporary directory and renames it anyway).
"""

from __future__ import annotations

import datetime as dt
import json
import mmap
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from recsys.affinity import AffinityProfile, CategoryIndex
from recsys.errors import ModelNotFoundError
from recsys.idmap import IdMap
from recsys.model.parts import ModelParts
from recsys.model.trained import TrainedModel

META = "meta.json"
FORMAT = 2  # meta["format"]; a model without it is format 1


class ModelFormatError(ModelNotFoundError):
    """A model directory written by a newer bookclub than this one."""


def _save_csr(directory: Path, name: str, matrix: sp.csr_matrix) -> None:
    for field in ("data", "indices", "indptr"):
        np.save(directory / f"{name}.{field}.npy", np.ascontiguousarray(getattr(matrix, field)))


def _random_access(array: np.ndarray) -> np.ndarray:
    """Tell the kernel a mapped array is read a row here and there: no readahead around each
    fault, so a worker's RSS holds the rows it used, not 128 KiB around each of them."""
    mapped = getattr(array, "_mmap", None)  # np.memmap keeps its mmap.mmap here
    if mapped is not None and hasattr(mmap, "MADV_RANDOM"):
        mapped.madvise(mmap.MADV_RANDOM)
    return array


def _load_csr(directory: Path, name: str, shape: tuple[int, int]) -> sp.csr_matrix:
    """A CSR matrix over read-only memory maps (never written: nothing sorts it in place)."""
    data, indices, indptr = (
        _random_access(np.load(directory / f"{name}.{field}.npy", mmap_mode="r"))
        for field in ("data", "indices", "indptr")
    )
    matrix = sp.csr_matrix(shape, dtype=data.dtype)
    matrix.data, matrix.indices, matrix.indptr = data, indices, indptr
    matrix.has_sorted_indices = True  # written from a canonical matrix: do not re-check
    return matrix


def write_parts(parts: ModelParts, directory: Path, meta: dict[str, Any]) -> None:
    """Write every array of ``parts`` and then ``meta.json`` into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    parts.members.save(directory / "member_ids.npy")
    parts.titles.save(directory / "title_ids.npy")
    np.save(directory / "member_factors.npy", np.ascontiguousarray(parts.member_factors))
    np.save(directory / "title_factors.npy", np.ascontiguousarray(parts.title_factors))
    _save_csr(directory, "member_titles", sp.csr_matrix(parts.member_titles))
    sp.save_npz(directory / "title_categories.npz", parts.title_categories, compressed=False)
    np.savez(directory / "categories.npz", **parts.categories.to_arrays())  # type: ignore[arg-type]
    affinity = parts.affinity
    _save_csr(directory, "affinity", sp.csr_matrix(affinity.member_weights))
    np.save(directory / "affinity.totals.npy", np.ascontiguousarray(affinity.member_totals))
    np.save(directory / "popularity.npy", parts.popularity)
    np.save(directory / "placement.npy", parts.placement)
    (directory / "title_names.json").write_text(
        json.dumps(parts.title_names, ensure_ascii=False), encoding="utf-8"
    )
    full = dict(meta)
    full.update(
        format=FORMAT,
        member_titles_shape=list(parts.member_titles.shape),
        affinity_shape=list(affinity.member_weights.shape),
        affinity_global_share=[float(v) for v in affinity.global_share],
        affinity_prior=float(affinity.prior),
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


def _read_matrices(directory: Path, meta: dict[str, Any]) -> tuple[sp.csr_matrix, AffinityProfile]:
    """(member_titles, affinity): memory-mapped from format 2, read into memory from format 1."""
    version = int(meta.get("format", 1))
    if version > FORMAT:
        raise ModelFormatError(
            f"{directory} is a format-{version} model; this bookclub reads up to format {FORMAT}: "
            "upgrade bookclub or retrain the model with this version"
        )
    if version == 1:
        member_titles = sp.load_npz(directory / "member_titles.npz").tocsr()
        return member_titles, AffinityProfile.load(directory / "affinity.npz")
    shape = meta["affinity_shape"]
    affinity = AffinityProfile(
        _load_csr(directory, "affinity", (int(shape[0]), int(shape[1]))),
        _random_access(np.load(directory / "affinity.totals.npy", mmap_mode="r")),
        np.asarray(meta["affinity_global_share"], dtype=np.float32),
        float(meta["affinity_prior"]),
    )
    rows, cols = meta["member_titles_shape"]
    return _load_csr(directory, "member_titles", (int(rows), int(cols))), affinity


def read_model(directory: Path, *, threads: int = 1) -> TrainedModel:
    """The model in ``directory``; its big arrays memory-mapped read-only (format 2)."""
    meta = read_meta(directory)
    member_titles, affinity = _read_matrices(directory, meta)
    members = IdMap.load(directory / "member_ids.npy")
    _random_access(members.ids)  # binary searches
    with np.load(directory / "categories.npz") as arrays:
        categories = CategoryIndex.from_arrays(dict(arrays))
    parts = ModelParts(
        kind=str(meta["kind"]),
        params=dict(meta["params"]),
        members=members,
        titles=IdMap.load(directory / "title_ids.npy"),
        title_names=json.loads((directory / "title_names.json").read_text(encoding="utf-8")),
        member_factors=_random_access(np.load(directory / "member_factors.npy", mmap_mode="r")),
        title_factors=np.load(directory / "title_factors.npy", mmap_mode="r"),
        member_titles=member_titles,
        categories=categories,
        title_categories=sp.load_npz(directory / "title_categories.npz").tocsr(),
        affinity=affinity,
        popularity=np.load(directory / "popularity.npy"),
        placement=np.load(directory / "placement.npy"),
        thin_history=float(meta.get("thin_history", 3.0)),
        min_titles=int(meta.get("min_titles", 3)),
        threads=threads,
    )
    trained_until = dt.datetime.fromisoformat(str(meta["trained_until"]))
    return TrainedModel(parts, str(meta["version"]), trained_until)
