"""A model's files on disk: write a :class:`ModelParts` into a directory and read it back.

Format 2: every big read-only array is a plain ``.npy`` that every API worker
opens with ``np.load(..., mmap_mode="r")``, so the workers share one copy in the
page cache: member and title factors, the member × title confidence matrix
(``member_titles.{data,indices,indptr}.npy``) and the member × category
affinity (``affinity.{data,indices,indptr,totals}.npy``). Format 1 (those two
matrices as ``.npz``, read into each worker's memory) is still read.
``meta.json`` records the format, parameters, the data snapshot, metrics and,
under ``files``, the size and sha256 of every other file as written; it is
written last (to a temporary name, fsynced, renamed), so a directory without it
is not a model (the registry writes into a temporary directory and renames it
anyway). :func:`verify_artifact` checks a directory against those checksums and
loads it before the registry lets it become active; :func:`read_model` checks
the sizes (a stat per file), so a truncated file is named, not mapped.
Artifacts written before checksums are verified by loading every file.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import mmap
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from recsys.affinity import AffinityProfile, CategoryIndex
from recsys.errors import BookclubError, ModelNotFoundError
from recsys.idmap import IdMap
from recsys.model.parts import ModelParts
from recsys.model.trained import TrainedModel

META = "meta.json"
FORMAT = 2  # meta["format"]; a model without it is format 1
FILES = "files"  # meta[FILES]: {file name: {"size": bytes, "sha256": hex}} of every other file
UNCHECKED = (
    "loaded every file (an artifact written before checksums: a truncated or unreadable file "
    "is caught, a changed byte inside an array is not)"
)
CHECKED = "sha256 and size of every file match, and the model loads"


class ModelFormatError(ModelNotFoundError):
    """A model directory written by a newer bookclub than this one."""


class ModelCorruptError(BookclubError):
    """A model's files are not what was written: one is missing, truncated, changed or unreadable.

    ``file`` is the file's name inside the version directory (never a server path).
    """

    def __init__(self, version: str, file: str, reason: str) -> None:
        super().__init__(
            f"model {version} is damaged: {file}: {reason} "
            "(activate another version, or retrain with `bookclub train`)"
        )
        self.version, self.file, self.reason = version, file, reason


def _digest(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _checksums(directory: Path) -> dict[str, dict[str, Any]]:
    """Size and sha256 of every file in ``directory`` but meta.json, each fsynced first."""
    files: dict[str, dict[str, Any]] = {}
    for path in sorted(directory.iterdir()):
        if path.name == META or not path.is_file():
            continue
        _fsync(path)
        files[path.name] = {"size": path.stat().st_size, "sha256": _digest(path)}
    return files


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
    if parts.similarity is not None:  # item-kNN: titles × titles
        _save_csr(directory, "similarity", sp.csr_matrix(parts.similarity))
    (directory / "title_names.json").write_text(
        json.dumps(parts.title_names, ensure_ascii=False), encoding="utf-8"
    )
    full = dict(meta)
    full.update(
        format=FORMAT,
        files=_checksums(directory),
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
    if parts.similarity is not None:
        full["similarity_shape"] = list(parts.similarity.shape)
    tmp = directory / f".{META}.tmp"
    with tmp.open("w", encoding="utf-8") as handle:
        handle.write(json.dumps(full, indent=2, ensure_ascii=False))
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, directory / META)
    _fsync(directory)


def read_meta(directory: Path) -> dict[str, Any]:
    path = directory / META
    if not path.exists():
        raise ModelNotFoundError(f"{directory} is not a complete model (no {META})")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelCorruptError(directory.name, META, f"not readable JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise ModelCorruptError(directory.name, META, "not a JSON object")
    return meta


def _recorded(directory: Path, meta: dict[str, Any]) -> dict[str, dict[str, Any]] | None:
    files = meta.get(FILES)
    if files is None:
        return None
    if not isinstance(files, dict) or not all(
        isinstance(v, dict) and isinstance(v.get("size"), int) and isinstance(v.get("sha256"), str)
        for v in files.values()
    ):
        raise ModelCorruptError(directory.name, META, f"its '{FILES}' record is malformed")
    return files


def check_sizes(directory: Path, meta: dict[str, Any]) -> None:
    """Every recorded file is there with its recorded size (a stat each: cheap enough per load)."""
    for name, record in (_recorded(directory, meta) or {}).items():
        try:
            size = (directory / name).stat().st_size
        except FileNotFoundError:
            raise ModelCorruptError(directory.name, name, "missing") from None
        if size != record["size"]:
            raise ModelCorruptError(
                directory.name, name, f"{size:,} bytes where {record['size']:,} were written"
            )


def _load_file(path: Path) -> None:
    """Read ``path`` the way the model will: raise if it is truncated or unreadable."""
    if path.suffix == ".npy":
        array = np.load(path, mmap_mode="r", allow_pickle=False)
        del array
    elif path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as arrays:  # zip CRCs catch changed bytes
            for key in arrays.files:
                arrays[key]
    elif path.suffix == ".json":
        json.loads(path.read_text(encoding="utf-8"))


def _check_parts(version: str, parts: ModelParts) -> None:
    """The arrays agree with each other (the files were written from one model)."""
    members, titles = len(parts.members), len(parts.titles)
    rows: list[tuple[str, int, int, str]] = [
        ("member_factors.npy", parts.member_factors.shape[0], members, "members"),
        ("title_factors.npy", parts.title_factors.shape[0], titles, "titles"),
        ("member_titles", parts.member_titles.shape[0], members, "members"),
        ("member_titles", parts.member_titles.shape[1], titles, "titles"),
        ("member_titles", len(parts.member_titles.indptr), members + 1, "row pointers"),
        ("member_titles", int(parts.member_titles.indptr[-1]), len(parts.member_titles.indices), "entries"),
        ("affinity", parts.affinity.member_weights.shape[0], members, "members"),
        ("title_names.json", len(parts.title_names), titles, "titles"),
        ("popularity.npy", len(parts.popularity), titles, "titles"),
        ("placement.npy", len(parts.placement), titles, "titles"),
        ("title_categories.npz", parts.title_categories.shape[0], titles, "titles"),
        ("title_factors.npy", parts.title_factors.shape[1], parts.member_factors.shape[1], "factors"),
    ]
    if parts.similarity is not None:
        rows += [
            ("similarity", parts.similarity.shape[0], titles, "titles"),
            ("similarity", len(parts.similarity.indptr), parts.similarity.shape[0] + 1, "row pointers"),
            ("similarity", int(parts.similarity.indptr[-1]), len(parts.similarity.indices), "entries"),
        ]
    elif parts.kind in ("item_knn", "blend"):
        raise ModelCorruptError(version, META, f"a {parts.kind!r} model without its similarity")
    for name, found, wanted, what in rows:
        if found != wanted:
            raise ModelCorruptError(version, name, f"{found:,} {what} where the model has {wanted:,}")


def verify_artifact(directory: Path, version: str | None = None) -> str:
    """Check a model directory before it may become active; return how it was checked.

    With checksums (every artifact written since they were added): each file's size
    and sha256 against ``meta.json``; without (older artifacts): every file is loaded.
    Then the model is loaded, its arrays checked against each other and asked for one
    recommendation. Raise :class:`ModelCorruptError` naming the first broken file.
    ``version`` names the model in messages (default: the directory's name).
    """
    version = version or directory.name
    try:
        return _verify(directory, version)
    except ModelCorruptError as exc:
        if exc.version == version:
            raise
        raise ModelCorruptError(version, exc.file, exc.reason) from None


def check_files(directory: Path) -> bool:
    """Every recorded file has its recorded size and sha256; False when nothing is recorded
    (an artifact written before checksums). Raise :class:`ModelCorruptError` naming the first
    that differs. Hashing runs at disk or page-cache speed (about 2 GB/s here)."""
    meta = read_meta(directory)
    recorded = _recorded(directory, meta)
    if recorded is None:
        return False
    check_sizes(directory, meta)
    for name, record in sorted(recorded.items()):
        if _digest(directory / name) != record["sha256"]:
            raise ModelCorruptError(
                directory.name, name, "its content differs from the sha256 written when it was saved"
            )
    return True


def _verify(directory: Path, version: str) -> str:
    if check_files(directory):
        how = CHECKED
    else:
        for path in sorted(directory.iterdir()):
            if path.is_file() and path.name != META:
                try:
                    _load_file(path)
                except Exception as exc:
                    raise ModelCorruptError(version, path.name, _reason(exc)) from None
        how = UNCHECKED
    try:
        model = read_model(directory)
        _check_parts(version, model.parts)
        if len(model.parts.members):
            model.recommend(model.parts.members.to_id(0), limit=1)
    except (ModelCorruptError, ModelFormatError):
        raise
    except Exception as exc:
        raise ModelCorruptError(version, _culprit(exc), _reason(exc)) from None
    return how


def _culprit(exc: BaseException) -> str:
    """The file an exception names, by its name only; else the model as a whole."""
    name = getattr(exc, "filename", None)
    if isinstance(name, str | os.PathLike):
        return Path(name).name
    if isinstance(exc, KeyError):
        return META
    return "the model's arrays"


def _reason(exc: BaseException) -> str:
    """An exception's message without server paths."""
    text = str(exc).splitlines()[0][:300] if str(exc) else ""
    return (type(exc).__name__ + ": " + _PATH.sub(r"\1", text)).rstrip(": ")


_PATH = re.compile(r"(?<![\w.])/(?:[^\s'\"/]+/)*([^\s'\"/]*)")  # an absolute path -> its last part


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
    """The model in ``directory``; its big arrays memory-mapped read-only (format 2).

    Recorded file sizes are checked first (:func:`check_sizes`), so a truncated file is
    a :class:`ModelCorruptError` naming it; :func:`verify_artifact` checks contents."""
    meta = read_meta(directory)
    check_sizes(directory, meta)
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
        similarity=_load_csr(directory, "similarity", (int(meta["similarity_shape"][0]), int(meta["similarity_shape"][1])))
        if "similarity_shape" in meta
        else None,
    )
    trained_until = dt.datetime.fromisoformat(str(meta["trained_until"]))
    return TrainedModel(parts, str(meta["version"]), trained_until)
