"""Fast merging of member pages in front of a shared body, as PDF incremental updates.

``pypdf.PdfWriter.append`` copies every object of the body for every member:
with a 40-page body that is most of an edition's cost. Here the body's bytes
are kept as they are and each edition appends one incremental update (PDF
32000-1 §7.5.6): the member's page objects and their resources, a new
version of the body's page-tree root with the member's pages first, and a
cross-reference stream whose ``/Prev`` points at the body's. The member
batch's objects are parsed and serialised once (pypdf) with their numbers
shifted past the body's, so writing an edition is a byte concatenation.
"""

from __future__ import annotations

import re
import struct
from io import BytesIO
from pathlib import Path

from pypdf import PdfReader
from pypdf.generic import (
    ArrayObject,
    DictionaryObject,
    IndirectObject,
    NameObject,
    NullObject,
    NumberObject,
    PdfObject,
    StreamObject,
)

from recsys.files import atomic_write_bytes, sha256_hex

_STARTXREF = re.compile(rb"startxref\s+(\d+)\s+%%EOF\s*$")


class BodyTemplate:
    """The shared body: its bytes, page-tree root and trailer, read once."""

    def __init__(self, pdf: bytes) -> None:
        match = _STARTXREF.search(pdf[-64:])
        if match is None:
            raise ValueError("the body PDF has no startxref at its end")
        self.sha256 = sha256_hex(pdf)  # of the segment catalog as stored (its sidecar's)
        self.data = pdf if pdf.endswith(b"\n") else pdf + b"\n"
        self.prev = int(match[1])
        reader = PdfReader(BytesIO(pdf))
        trailer = reader.trailer
        self.size = int(trailer["/Size"])  # type: ignore[call-overload]
        self.root = trailer.raw_get("/Root")
        self.info = trailer.raw_get("/Info") if "/Info" in trailer else None
        self.doc_id = trailer.get("/ID")
        catalog = trailer["/Root"]
        assert isinstance(catalog, DictionaryObject)
        pages_ref = catalog.raw_get("/Pages")
        if not isinstance(pages_ref, IndirectObject):
            raise ValueError("the body's page tree root is not an indirect object")
        self.pages_id = pages_ref.idnum
        pages = pages_ref.get_object()
        assert isinstance(pages, DictionaryObject)
        self.pages = pages
        kids = pages["/Kids"]
        assert isinstance(kids, ArrayObject)
        self.kids: list[IndirectObject] = list(kids)
        self.count: int = int(pages["/Count"])  # type: ignore[call-overload]

    @property
    def page_count(self) -> int:
        return self.count


def _serialise(obj: PdfObject) -> bytes:
    stream = BytesIO()
    obj.write_to_stream(stream)
    return stream.getvalue()


class MemberBatch:
    """A batch of member pages, renumbered past ``body``'s objects and serialised once."""

    def __init__(self, pdf: bytes, ranges: dict[str, tuple[int, int]], body: BodyTemplate) -> None:
        self.body = body
        self.reader = PdfReader(BytesIO(pdf))
        self.offset = body.size  # new number = old number + offset
        self.objects: dict[int, bytes] = {}
        self.closures: dict[str, tuple[list[int], list[int]]] = {}
        page_ids = {self.reader.pages[i].indirect_reference.idnum for i in range(len(self.reader.pages))}  # type: ignore[union-attr]
        self.page_ids = page_ids
        for member_id, (first, stop) in ranges.items():
            pages = [self.reader.pages[i].indirect_reference.idnum for i in range(first, stop)]  # type: ignore[union-attr]
            self.closures[member_id] = (pages, sorted(self._closure(pages)))

    def _remap(self, obj: PdfObject, is_page: bool = False) -> PdfObject:
        if isinstance(obj, IndirectObject):
            if obj.idnum in self.page_ids:
                return NullObject()  # a link to another member's page: dropped
            return IndirectObject(obj.idnum + self.offset, 0, None)
        if isinstance(obj, DictionaryObject):
            out = DictionaryObject()  # a stream's dictionary; its data is written apart
            for key, value in obj.items():
                if is_page and key == "/Parent":
                    out[NameObject(key)] = IndirectObject(self.body.pages_id, 0, None)
                elif is_page and key == "/Annots":
                    continue  # print pages: no links
                elif key == "/Length" and isinstance(obj, StreamObject):
                    continue
                else:
                    out[NameObject(key)] = self._remap(value)
            return out
        if isinstance(obj, ArrayObject):
            return ArrayObject(self._remap(v) for v in obj)
        return obj

    def _object_bytes(self, idnum: int) -> bytes:
        cached = self.objects.get(idnum)
        if cached is not None:
            return cached
        obj = self.reader.get_object(idnum)
        assert obj is not None
        is_page = idnum in self.page_ids
        remapped = self._remap(obj, is_page)
        head = f"{idnum + self.offset} 0 obj\n".encode()
        if isinstance(obj, StreamObject):
            assert isinstance(remapped, DictionaryObject)
            data: bytes = obj._data  # the stream as stored (still encoded)
            remapped[NameObject("/Length")] = NumberObject(len(data))
            body = _serialise(remapped) + b"\nstream\n" + data + b"\nendstream"
        else:
            body = _serialise(remapped)
        out = head + body + b"\nendobj\n"
        self.objects[idnum] = out
        return out

    def _closure(self, pages: list[int]) -> set[int]:
        seen: set[int] = set()
        todo = list(pages)
        while todo:
            idnum = todo.pop()
            if idnum in seen:
                continue
            seen.add(idnum)
            obj = self.reader.get_object(idnum)
            stack: list[object] = [obj]
            is_page = idnum in pages
            while stack:
                item = stack.pop()
                if isinstance(item, IndirectObject):
                    if item.idnum not in seen and item.idnum not in self.page_ids:
                        todo.append(item.idnum)
                elif isinstance(item, DictionaryObject):
                    for key, value in item.items():
                        if is_page and item is obj and key in ("/Parent", "/Annots"):
                            continue
                        stack.append(value)
                elif isinstance(item, ArrayObject):
                    stack.extend(item)
        return seen

    def edition(self, member_id: str) -> bytes:
        """The body with this member's pages in front, as one PDF."""
        body = self.body
        pages, closure = self.closures[member_id]
        out = bytearray(body.data)
        offsets: dict[int, int] = {}
        for idnum in closure:
            offsets[idnum + self.offset] = len(out)
            out += self._object_bytes(idnum)
        tree = DictionaryObject(body.pages)
        tree[NameObject("/Kids")] = ArrayObject(
            [IndirectObject(p + self.offset, 0, None) for p in pages]
            + [IndirectObject(k.idnum, 0, None) for k in body.kids]
        )
        tree[NameObject("/Count")] = NumberObject(body.count + len(pages))
        offsets[body.pages_id] = len(out)
        out += f"{body.pages_id} 0 obj\n".encode() + _serialise(tree) + b"\nendobj\n"
        xref_id = max(max(offsets) + 1, body.size)
        offsets[xref_id] = len(out)
        numbers = sorted(offsets)
        index: list[int] = []
        for n in numbers:  # runs of consecutive numbers
            if index and index[-2] + index[-1] == n:
                index[-1] += 1
            else:
                index += [n, 1]
        rows = b"".join(struct.pack(">BIH", 1, offsets[n], 0) for n in numbers)
        trailer = DictionaryObject()
        trailer[NameObject("/Type")] = NameObject("/XRef")
        trailer[NameObject("/Size")] = NumberObject(xref_id + 1)
        trailer[NameObject("/W")] = ArrayObject([NumberObject(1), NumberObject(4), NumberObject(2)])
        trailer[NameObject("/Index")] = ArrayObject(NumberObject(i) for i in index)
        trailer[NameObject("/Prev")] = NumberObject(body.prev)
        trailer[NameObject("/Root")] = IndirectObject(body.root.idnum, 0, None)
        if body.info is not None:
            trailer[NameObject("/Info")] = IndirectObject(body.info.idnum, 0, None)
        if body.doc_id is not None:
            trailer[NameObject("/ID")] = body.doc_id
        trailer[NameObject("/Length")] = NumberObject(len(rows))
        out += f"{xref_id} 0 obj\n".encode() + _serialise(trailer)
        out += b"\nstream\n" + rows + b"\nendstream\nendobj\n"
        out += f"startxref\n{offsets[xref_id]}\n%%EOF\n".encode()
        return bytes(out)

    def write(self, member_id: str, path: Path) -> Path:
        """This member's edition at ``path``, written atomically (complete or not at all)."""
        return atomic_write_bytes(path, self.edition(member_id))
