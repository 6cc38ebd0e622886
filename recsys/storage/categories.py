"""The category tree: loading the CLC and reading the tree back."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, select

from recsys.errors import BookclubError
from recsys.storage.bulk import insert_ignoring_conflicts
from recsys.storage.schema import Category, table_of


@dataclass(frozen=True)
class CategoryNode:
    code: str
    name: str
    parent_code: str | None
    level: int


def clc_file(clc_dir: Path, all_levels: bool) -> Path:
    return clc_dir / ("clc_all_levels.csv" if all_levels else "clc_level1_2.csv")


def read_clc(path: Path) -> list[CategoryNode]:
    """Nodes of the CLC file at ``path``, parents before children."""
    if not path.exists():
        raise BookclubError(f"CLC file not found: {path} (set BOOKCLUB_SHARED_DATA_DIR)")
    nodes: list[CategoryNode] = []
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        for row in reader:
            code = (row.get("code") or "").strip()
            name = (row.get("name") or "").strip()
            if not code or not name:
                raise BookclubError(f"{path}:{reader.line_num}: code and name are required")
            parent = (row.get("parent_code") or "").strip() or None
            level = int(row["level"]) if row.get("level") else (1 if parent is None else 2)
            nodes.append(CategoryNode(code, name, parent, level))
    nodes.sort(key=lambda n: n.level)
    return nodes


def load_categories(connection: Connection, nodes: list[CategoryNode]) -> int:
    """Insert ``nodes`` (parents first), keeping codes already present; return how many were new."""
    rows = [
        {"code": n.code, "name": n.name, "parent_code": n.parent_code, "level": n.level}
        for n in nodes
    ]
    inserted = 0
    for start in range(0, len(rows), 5_000):
        inserted += insert_ignoring_conflicts(connection, table_of(Category), rows[start : start + 5_000])
    return inserted


def category_tree(connection: Connection) -> dict[str, CategoryNode]:
    """Every category by code."""
    result = connection.execute(
        select(Category.code, Category.name, Category.parent_code, Category.level)
    )
    return {code: CategoryNode(code, name, parent, level) for code, name, parent, level in result}


def ancestors(tree: dict[str, CategoryNode], code: str) -> list[str]:
    """``code`` and its parents up to the root, nearest first."""
    path: list[str] = []
    current: str | None = code
    while current is not None and current in tree and current not in path:
        path.append(current)
        current = tree[current].parent_code
    return path


def category_codes(connection: Connection) -> set[str]:
    return set(connection.scalars(select(Category.code)))


def category_name(connection: Connection, code: str) -> str | None:
    return connection.scalar(select(Category.name).where(Category.code == code))


def ensure_categories(connection: Connection, clc_path: Path) -> set[str]:
    """The category codes present; loads the CLC file first if there are none."""
    codes = category_codes(connection)
    if not codes:
        load_categories(connection, read_clc(clc_path))
        codes = category_codes(connection)
    return codes
