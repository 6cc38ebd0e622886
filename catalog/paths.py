"""Where a quarter's PDFs live: light enough for the API to import without the renderer."""

from __future__ import annotations

from pathlib import Path

from catalog.period import Quarter
from recsys.settings import Settings


def quarter_dir(settings: Settings, quarter: str) -> Path:
    return settings.catalogs_dir / str(Quarter.parse(quarter))


def catalog_path(settings: Settings, quarter: str, segment: int) -> Path:
    return quarter_dir(settings, quarter) / f"segment-{segment}.pdf"


def edition_path(settings: Settings, quarter: str, member_id: str) -> Path:
    return quarter_dir(settings, quarter) / "members" / f"{member_id}.pdf"
