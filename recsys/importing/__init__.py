"""Validated, streaming, all-or-nothing bulk import of the club's CSV files.

``import_rows(connection, kind, csv_source(path, …), options)`` is the one entry point
for the generic formats; the real-data adapters (:mod:`.online_retail`,
:mod:`.shakespeare`) translate other files into the same row streams.
"""

from recsys.importing.loader import ImportOptions, import_rows
from recsys.importing.report import ImportSummary, RowError
from recsys.importing.source import RowSource, csv_source
from recsys.importing.specs import KINDS, ImportKind

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
