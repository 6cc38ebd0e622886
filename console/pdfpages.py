"""A PDF's page count without parsing the whole file: the preflight counts the pages of every
member edition of a quarter (``/Root`` → ``/Pages`` → ``/Count``).

pypdf finds an object kept in an object stream by parsing every object before it (0.1–0.2 s
for an edition merged with its segment catalog); here the cross-reference sections (tables or
streams, following ``/Prev``) give the object's place and only that object is read. Anything
this reader does not follow (an encrypted file, a predictor on the cross-reference stream, a
broken file) is handed to pypdf, so the answer is pypdf's either way.
"""

from __future__ import annotations

import re
import zlib
from pathlib import Path

_STARTXREF = re.compile(rb"startxref\s+(\d+)")
_INT = re.compile(rb"\d+")
_REF = rb"\s+(\d+)\s+\d+\s+R"


class _Unsupported(Exception):
    pass


def _dict_int(body: bytes, key: bytes) -> int | None:
    found = re.search(rb"/" + key + rb"\s+(\d+)(?![\d.])(?!\s+\d+\s+R)", body)
    return None if found is None else int(found.group(1))


def _dict_ref(body: bytes, key: bytes) -> int | None:
    found = re.search(rb"/" + key + _REF, body)
    return None if found is None else int(found.group(1))


def _array(body: bytes, key: bytes) -> list[int] | None:
    found = re.search(rb"/" + key + rb"\s*\[([^\]]*)\]", body)
    return None if found is None else [int(v) for v in _INT.findall(found.group(1))]


def _stream(data: bytes, at: int, head: bytes) -> bytes:
    """The decoded stream of the object whose dictionary ``head`` ends right before ``at``."""
    if b"/DecodeParms" in head or b"/Encrypt" in head:
        raise _Unsupported("predictor or encryption")
    length = _dict_int(head, b"Length")
    start = data.index(b"stream", at) + len(b"stream")
    start += 2 if data[start : start + 2] == b"\r\n" else 1
    raw = data[start : start + length] if length is not None else data[start : data.index(b"endstream", start)]
    if b"/FlateDecode" in head:
        return zlib.decompressobj().decompress(raw)  # bytes after the stream's end are ignored
    if b"/Filter" in head:
        raise _Unsupported("filter")
    return raw


def _object_at(data: bytes, offset: int) -> tuple[bytes, int]:
    """(the object's dictionary or value text, where it ends) of the object starting at ``offset``."""
    found = re.compile(rb"\d+\s+\d+\s+obj").match(data, offset)
    if found is None:
        raise _Unsupported("no object at offset")
    start = found.end()
    end = min(i for i in (data.find(b"stream", start), data.find(b"endobj", start)) if i >= 0)
    return data[start:end], end


class _Xref:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.entries: dict[int, tuple[int, int, int]] = {}  # object → (type, field 2, field 3), newest wins
        self.root: int | None = None
        tail = data[-2048:]
        starts = _STARTXREF.findall(tail)
        if not starts:
            raise _Unsupported("no startxref")
        offset: int | None = int(starts[-1])
        seen: set[int] = set()
        while offset is not None and offset not in seen:
            seen.add(offset)
            offset = self._section(offset)
        if self.root is None:
            raise _Unsupported("no /Root")

    def _section(self, offset: int) -> int | None:
        data = self.data
        if data.startswith(b"xref", offset):
            at = offset + 4
            trailer = data.index(b"trailer", at)
            rows = data[at:trailer].split()
            i = 0
            while i < len(rows):
                first, count = int(rows[i]), int(rows[i + 1])
                i += 2
                for n in range(count):
                    place, _gen, kind = rows[i], rows[i + 1], rows[i + 2]
                    i += 3
                    if kind == b"n":
                        self.entries.setdefault(first + n, (1, int(place), 0))
                    else:
                        self.entries.setdefault(first + n, (0, 0, 0))
            head = data[trailer : data.find(b"startxref", trailer)]
        else:
            head, end = _object_at(data, offset)
            if b"/XRef" not in head:
                raise _Unsupported("not a cross-reference stream")
            widths = _array(head, b"W")
            size = _dict_int(head, b"Size")
            if widths is None or len(widths) != 3 or size is None:
                raise _Unsupported("cross-reference stream without /W or /Size")
            index = _array(head, b"Index") or [0, size]
            rows_bytes = _stream(data, end, head)
            step, pos = sum(widths), 0
            for first, count in zip(index[0::2], index[1::2], strict=True):
                for n in range(count):
                    row = rows_bytes[pos : pos + step]
                    pos += step
                    fields: list[int] = []
                    at = 0
                    for w in widths:
                        fields.append(int.from_bytes(row[at : at + w], "big") if w else (1 if not fields else 0))
                        at += w
                    self.entries.setdefault(first + n, (fields[0], fields[1], fields[2]))
        if self.root is None:
            self.root = _dict_ref(head, b"Root")
        return _dict_int(head, b"Prev")

    def object_text(self, number: int) -> bytes:
        """The text of object ``number`` (its dictionary), wherever it is kept."""
        kind, one, _two = self.entries.get(number, (0, 0, 0))
        if kind == 1:
            return _object_at(self.data, one)[0]
        if kind == 2:
            head, end = _object_at(self.data, self._offset(one))
            body = _stream(self.data, end, head)
            n, first = _dict_int(head, b"N"), _dict_int(head, b"First")
            if n is None or first is None:
                raise _Unsupported("object stream without /N or /First")
            pairs = [int(v) for v in _INT.findall(body[:first])][: 2 * n]
            offsets = dict(zip(pairs[0::2], pairs[1::2], strict=True))
            if number not in offsets:
                raise _Unsupported("object not in its stream")
            starts = sorted(offsets.values())
            begin = first + offsets[number]
            later = [s for s in starts if s > offsets[number]]
            return body[begin : first + later[0]] if later else body[begin:]
        raise _Unsupported(f"object {number} is free or missing")

    def _offset(self, number: int) -> int:
        kind, one, _two = self.entries.get(number, (0, 0, 0))
        if kind != 1:
            raise _Unsupported("object stream not at an offset")
        return one


def _fast_count(data: bytes) -> int:
    xref = _Xref(data)
    assert xref.root is not None
    pages = _dict_ref(xref.object_text(xref.root), b"Pages")
    if pages is None:
        raise _Unsupported("catalog without /Pages")
    count = _dict_int(xref.object_text(pages), b"Count")
    if count is None:
        raise _Unsupported("page tree without /Count")
    return count


def page_count(path: Path) -> int:
    """The number of pages of the PDF at ``path`` (pypdf's answer, found faster)."""
    data = path.read_bytes()
    try:
        return _fast_count(data)
    except (_Unsupported, ValueError, IndexError, zlib.error):
        from io import BytesIO

        from pypdf import PdfReader

        return len(PdfReader(BytesIO(data)).pages)
