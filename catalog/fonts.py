"""The configured fonts, checked before anything is rendered.

WeasyPrint asks fontconfig for a family and, when it is missing or lacks a
character, quietly falls back to another font or draws a box ("tofu") — and
``pdftotext`` still returns the right text, so nothing downstream notices. So
before a document is laid out, every configured family it uses is looked up
with fontconfig (``fc-list``, the lookup WeasyPrint's Pango makes) and every
character about to be set is looked up in that font's character map
(fontTools). A missing font or character is a :class:`FontUnavailableError`
naming the font and the Debian package that brings a font that has it.
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

from recsys.errors import FontUnavailableError

# family (lower case, no blanks) → the Debian package that installs it
PACKAGES: dict[str, str] = {
    "notoserifcjksc": "fonts-noto-cjk",
    "notoserifcjktc": "fonts-noto-cjk",
    "notoserifcjkjp": "fonts-noto-cjk",
    "notoserifcjkkr": "fonts-noto-cjk",
    "notosanscjksc": "fonts-noto-cjk",
    "notosanscjktc": "fonts-noto-cjk",
    "notosanscjkjp": "fonts-noto-cjk",
    "notosanscjkkr": "fonts-noto-cjk",
    "wenquanyizenhei": "fonts-wqy-zenhei",
    "wenquanyimicrohei": "fonts-wqy-microhei",
    "dejavusans": "fonts-dejavu-core",
    "dejavuserif": "fonts-dejavu-core",
    "notoserif": "fonts-noto-core",
    "notosans": "fonts-noto-core",
}
CJK_PACKAGES = "fonts-noto-cjk or fonts-wqy-zenhei"
_REGULAR = ("regular", "book", "normal", "roman", "medium")


def _key(family: str) -> str:
    return re.sub(r"\s+", "", family).lower()


def package_for(family: str) -> str:
    """The Debian package(s) to name in an error about ``family``."""
    return PACKAGES.get(_key(family), CJK_PACKAGES)


@dataclass(frozen=True)
class FontFace:
    family: str
    file: Path
    index: int


def _fc_escape(family: str) -> str:
    return re.sub(r"([\\\-:,])", r"\\\1", family)


@functools.lru_cache(maxsize=32)
def find_face(family: str) -> FontFace | None:
    """The regular face of ``family`` as fontconfig finds it (None: not installed)."""
    fc_list = shutil.which("fc-list")
    if fc_list is None:
        raise FontUnavailableError(
            "cannot check the catalog fonts: fc-list is not installed (Debian package fontconfig)"
        )
    out = subprocess.run(
        [fc_list, "--format=%{file}\t%{index}\t%{style}\n", f":family={_fc_escape(family)}"],
        capture_output=True, text=True, check=False, timeout=60,
    ).stdout
    faces: list[tuple[Path, int, str]] = []
    for line in out.splitlines():
        parts = line.split("\t")
        if len(parts) == 3 and parts[0]:
            faces.append((Path(parts[0]), int(parts[1] or 0), parts[2].lower()))
    if not faces:
        return None
    faces.sort(key=lambda f: (not any(s in f[2].split(",")[0] for s in _REGULAR), str(f[0]), f[1]))
    file, index, _style = faces[0]
    return FontFace(family, file, index)


@functools.lru_cache(maxsize=32)
def font_codepoints(face: FontFace) -> frozenset[int]:
    """Every code point ``face``'s character map gives a glyph."""
    from fontTools.ttLib import TTFont

    try:
        font = TTFont(face.file, fontNumber=face.index, lazy=True)
        cmap = font.getBestCmap() or {}
    except Exception as exc:  # fontTools raises several kinds for an unreadable file
        raise FontUnavailableError(
            f"font {face.family!r} could not be read ({type(exc).__name__} in {face.file.name}): reinstall "
            f"the Debian package {package_for(face.family)}"
        ) from exc
    return frozenset(cmap)


def needs_glyph(char: str) -> bool:
    """Characters that are drawn: not spaces, controls or format characters."""
    return not char.isspace() and unicodedata.category(char) not in ("Cc", "Cf", "Zs", "Zl", "Zp")


class _Text(HTMLParser):
    """The text of an HTML document that is set on the page, with its offset in the source."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("style", "script", "title"):
            self._skip += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "script", "title") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.chunks.append(data)


def html_text(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    parser.close()
    return "\n".join(parser.chunks)


@functools.lru_cache(maxsize=4)
def stylesheet_text(css: str) -> str:
    """The strings a stylesheet sets with ``content: "…"`` (running heads, form titles)."""
    return "\n".join(re.findall(r'content:[^;}]*?"([^"]*)"', css))


@dataclass(frozen=True)
class FontUse:
    """A configured family, and the setting that names it (for the error message)."""

    family: str
    setting: str


def require_fonts(
    fonts: Sequence[FontUse], text: str, locate: Callable[[str], str | None] | None = None
) -> None:
    """Every family in ``fonts`` installed, and every character of ``text`` in one of them.

    ``locate(char)`` says where a missing character is (``"member M01's pages"``) for the error.
    """
    covered: set[int] = set()
    for use in fonts:
        if not use.family:
            continue
        face = find_face(use.family)
        if face is None:
            package = package_for(use.family)
            raise FontUnavailableError(
                f"font {use.family!r} ({use.setting}) is not installed: install the Debian package "
                f"{package} (apt-get install {package}) or set "
                f"BOOKCLUB_{use.setting.upper().replace('.', '__')} to an installed family (see fc-list)"
            )
        covered |= font_codepoints(face)
    missing = [c for c in set(text) if ord(c) not in covered and needs_glyph(c)]
    if not missing:
        return
    position, char = min((text.index(c), c) for c in missing)
    names = " / ".join(repr(u.family) for u in fonts if u.family)
    settings = ", ".join(u.setting for u in fonts if u.family)
    where = locate(char) if locate is not None else None
    raise FontUnavailableError(
        f"font {names} ({settings}) has no glyph for U+{ord(char):04X} "
        f"{unicodedata.name(char, '(unnamed)')} in {_context(text, position)!r}"
        + (f" ({where})" if where else "")
        + f": install a font that has it (Debian: {CJK_PACKAGES}) and configure it, or correct the text"
        + (f"; {len(missing) - 1} more character(s) missing" if len(missing) > 1 else "")
    )


def require_drawn(fonts: Iterable[object]) -> None:
    """After WeasyPrint has drawn a document: no character was set as an empty box. Each
    of its fonts records the characters it had no glyph for (``Font.missing``); any at all
    is a FontUnavailableError naming the font and the characters."""
    for font in fonts:
        missing = getattr(font, "missing", None) or {}
        if not missing:
            continue
        family = str(getattr(font, "family", "?"))
        chars = ", ".join(
            f"U+{int(c):04X} {unicodedata.name(chr(int(c)), '(unnamed)')}" for c in sorted(missing)[:5]
        )
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise FontUnavailableError(
            f"font {family!r} has no glyph for {chars}{more}: they would print as empty boxes; "
            f"install a font that has them (Debian: {CJK_PACKAGES}) and configure it, or correct the text"
        )


def _context(text: str, position: int, width: int = 12) -> str:
    start = max(0, position - width)
    snippet = text[start : position + width + 1]
    return re.sub(r"\s+", " ", snippet).strip()


def member_locator(html: str) -> Callable[[str], str | None]:
    """``locate`` for a batch of member pages: the member whose section holds the character."""

    def locate(char: str) -> str | None:
        position = html.find(char)
        at = html.rfind('id="m-', 0, position) if position >= 0 else -1
        if at < 0:
            return None
        end = html.find('"', at + 6)
        return f"member {html[at + 6 : end]}'s pages"

    return locate
