"""The five import formats by name."""

from __future__ import annotations

from recsys.storage.imports.spec import ImportKind, RowInvalid, RowTuple, make_stage
from recsys.storage.imports.title_kind import TITLES
from recsys.storage.imports.trade_kinds import MEMBERS, PURCHASES
from recsys.storage.imports.tree_kinds import CATEGORIES, CATEGORY_MAPPINGS

KINDS: dict[str, ImportKind] = {
    k.name: k for k in (CATEGORIES, CATEGORY_MAPPINGS, MEMBERS, TITLES, PURCHASES)
}

__all__ = [
    "CATEGORIES",
    "CATEGORY_MAPPINGS",
    "KINDS",
    "MEMBERS",
    "PURCHASES",
    "TITLES",
    "ImportKind",
    "RowInvalid",
    "RowTuple",
    "make_stage",
]
