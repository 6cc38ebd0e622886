"""Validated, streaming, all-or-nothing bulk import of the club's CSV files: the write
path of storage.

``source`` reads a CSV (one reader for every file the product reads), ``fields`` parses a
value, ``spec`` describes a format and ``tree_kinds`` / ``title_kind`` / ``trade_kinds`` are
the five formats (row parser, staging table, set-based checks, landing), ``loader`` drives
parse → stage → check → land inside the caller's transaction, ``report`` counts and writes
the rejects. ``import_rows(connection, kind, csv_source(path, …), options)`` is the one
entry point; the adapters in :mod:`recsys.importing` translate public data sets into the
same row streams.
"""

from recsys.storage.imports.loader import ImportOptions, import_rows
from recsys.storage.imports.report import ImportSummary, RowError
from recsys.storage.imports.source import RowSource, csv_source
from recsys.storage.imports.specs import KINDS, ImportKind

__all__ = [
    "KINDS",
    "ImportKind",
    "ImportOptions",
    "ImportSummary",
    "RowError",
    "RowSource",
    "csv_source",
    "import_rows",
]
