"""Text every database can store: one check for imports, the API's bodies and its parameters.

PostgreSQL's ``text`` cannot hold a NUL character (U+0000), and neither database driver
can encode a lone UTF-16 surrogate (U+D800–U+DFFF, which JSON's ``\\ud800`` escapes can
produce). Such a value is refused where it comes in — a row error in an import, a 422 in
the API — so that SQLite and PostgreSQL answer the same, instead of SQLite storing it and
PostgreSQL failing with a 500.
"""

from __future__ import annotations

import re

# JSON Schema / OpenAPI ``pattern`` of a string free of NUL (the API documents it on every
# string parameter; surrogates cannot be written in a pattern, they are checked in code).
NO_NUL_PATTERN = r"^[^\x00]*$"

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def unstorable(value: str) -> str | None:
    """Why ``value`` cannot be stored as text, or None when it can."""
    found = _UNSTORABLE.search(value)
    if found is None:
        return None
    char = found.group()
    position = found.start() + 1
    if char == "\x00":
        return f"contains a NUL character (U+0000) at position {position}: remove it"
    return f"contains a lone surrogate (U+{ord(char):04X}) at position {position}: not valid Unicode text"


def has_unstorable(value: str) -> bool:
    return _UNSTORABLE.search(value) is not None
