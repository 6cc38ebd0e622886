"""Where a quarter's PDFs live, and whether one is complete: light enough for the API to
import without the renderer.

Every PDF has a sidecar (``segment-<n>.json``, ``members/<member_id>.json``) written
atomically *after* the PDF, recording its size and SHA-256. A PDF is complete — and may be
served or reused — only when its sidecar is there and both match; a file cut short, empty,
or left without its sidecar by a crash is rendered again, never served.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from catalog.period import Quarter
from recsys.files import sha256_hex
from recsys.settings import Settings


def quarter_dir(settings: Settings, quarter: str) -> Path:
    return settings.catalogs_dir / _quarter_name(quarter)


@lru_cache(maxsize=64)
def _quarter_name(quarter: str) -> str:
    return str(Quarter.parse(quarter))


def catalog_file(quarter: str, segment: int) -> str:
    """The segment catalog's file as the campaign's contacts record it: relative to the catalogs
    folder, ``/``-separated."""
    return f"{_quarter_name(quarter)}/segment-{segment}.pdf"


def edition_file(quarter: str, member_id: str) -> str:
    """A member edition's file as the campaign's contacts record it (a string: it is worked out
    for every one of 1.5M members when contacts are written or read back)."""
    return f"{_quarter_name(quarter)}/members/{member_id}.pdf"


def catalog_path(settings: Settings, quarter: str, segment: int) -> Path:
    return settings.catalogs_dir / catalog_file(quarter, segment)


def edition_path(settings: Settings, quarter: str, member_id: str) -> Path:
    return settings.catalogs_dir / edition_file(quarter, member_id)


def sidecar_path(pdf: Path) -> Path:
    """``x.pdf`` → ``x.json``: what was recorded about ``pdf`` once it was written whole."""
    return pdf.with_suffix(".json")


def lock_path(pdf: Path) -> Path:
    """The lock file that serialises the writers of ``pdf`` (``.locks/<name>.lock`` beside it)."""
    return pdf.parent / ".locks" / f"{pdf.stem}.lock"


def sidecar_record(pdf: bytes, **extra: Any) -> dict[str, Any]:
    return {"size": len(pdf), "sha256": sha256_hex(pdf), **extra}


def sidecar_bytes(pdf: bytes, **extra: Any) -> bytes:
    return sidecar_bytes_of(len(pdf), sha256_hex(pdf), **extra)


def sidecar_bytes_of(size: int, sha256: str, **extra: Any) -> bytes:
    """:func:`sidecar_bytes` of a file whose size and SHA-256 are known already."""
    return json.dumps({"size": size, "sha256": sha256, **extra}, sort_keys=True).encode()


@dataclass(frozen=True)
class CompletePdf:
    data: bytes
    meta: dict[str, Any]

    @property
    def sha256(self) -> str:
        return str(self.meta["sha256"])


def read_sidecar(pdf: Path) -> dict[str, Any] | None:
    try:
        meta = json.loads(sidecar_path(pdf).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def complete_pdf(pdf: Path) -> CompletePdf | None:
    """``pdf``'s bytes and sidecar when its size and SHA-256 match the sidecar, else None."""
    meta = read_sidecar(pdf)
    if meta is None or not isinstance(meta.get("size"), int) or not isinstance(meta.get("sha256"), str):
        return None
    try:
        data = pdf.read_bytes()
    except OSError:
        return None
    if len(data) != meta["size"] or sha256_hex(data) != meta["sha256"]:
        return None
    return CompletePdf(data, meta)


def complete_edition(pdf: Path, segment_pdf: Path | None = None) -> CompletePdf | None:
    """A member edition that is complete and still current: when the segment catalog it was
    merged with (``segment_pdf``, or the ``segment-<n>.pdf`` its sidecar names) has a sidecar
    of its own, the edition's recorded body must be that catalog."""
    edition = complete_pdf(pdf)
    if edition is None:
        return None
    if segment_pdf is None and isinstance(edition.meta.get("segment"), int):
        segment_pdf = pdf.parent.parent / f"segment-{edition.meta['segment']}.pdf"
    if segment_pdf is not None:
        body = read_sidecar(segment_pdf)
        if body is not None and body.get("sha256") != edition.meta.get("body_sha256"):
            return None
    return edition
