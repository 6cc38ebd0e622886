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
        self.structure = _Structure.of(reader)

    @property
    def page_count(self) -> int:
        return self.count


class _Structure:
    """A tagged PDF's structure tree as WeasyPrint writes it: a root, one ``/Document``
    element holding the page-level elements, and a parent tree (``Nums``) keyed by each
    page's ``/StructParents`` (then its annotations')."""

    def __init__(self, root_id: int, document_id: int, document: DictionaryObject, tree_id: int,
                 tree: DictionaryObject, nums: ArrayObject) -> None:
        self.root_id = root_id
        self.document_id = document_id
        self.document = document
        self.tree_id = tree_id
        self.tree = tree
        self.nums = nums
        keys = [int(nums[i]) for i in range(0, len(nums), 2)]
        self.next_key = max(keys, default=-1) + 1
        # serialised once: an edition writes new versions of both with the member's in front
        kids = document.raw_get("/K")
        kids = kids.get_object() if isinstance(kids, IndirectObject) else kids
        self.kids_bytes = b" ".join(_serialise(k) for k in kids) if isinstance(kids, ArrayObject) else b""
        self.document_head = _without(document, "/K")
        self.nums_bytes = b" ".join(_serialise(v) for v in nums)
        self.tree_head = _without(tree, "/Nums")

    @classmethod
    def of(cls, reader: PdfReader) -> _Structure | None:
        catalog = reader.trailer["/Root"]
        assert isinstance(catalog, DictionaryObject)
        root_ref = catalog.raw_get("/StructTreeRoot") if "/StructTreeRoot" in catalog else None
        if not isinstance(root_ref, IndirectObject):
            return None
        root = root_ref.get_object()
        assert isinstance(root, DictionaryObject)
        tree_ref = root.raw_get("/ParentTree") if "/ParentTree" in root else None
        raw_kids = root.raw_get("/K") if "/K" in root else None
        raw_kids = raw_kids.get_object() if isinstance(raw_kids, IndirectObject) else raw_kids
        first = raw_kids[0] if isinstance(raw_kids, ArrayObject) and len(raw_kids) == 1 else None
        if not isinstance(first, IndirectObject) or not isinstance(tree_ref, IndirectObject):
            return None  # not the shape WeasyPrint writes: left as it is
        document = first.get_object()
        tree = tree_ref.get_object()
        assert isinstance(document, DictionaryObject) and isinstance(tree, DictionaryObject)
        nums = tree.get("/Nums")
        if not isinstance(nums, ArrayObject):
            return None
        return cls(root_ref.idnum, first.idnum, document, tree_ref.idnum, tree, nums)


def _without(obj: DictionaryObject, key: str) -> bytes:
    """``obj`` serialised without ``key`` and without its closing ``>>`` (to append to)."""
    out = DictionaryObject({NameObject(k): v for k, v in obj.items() if k != key})
    data = _serialise(out).rstrip()
    assert data.endswith(b">>")
    return data[:-2]


def _references(obj: PdfObject) -> list[IndirectObject]:
    out: list[IndirectObject] = []
    stack: list[object] = [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, IndirectObject):
            out.append(item)
        elif isinstance(item, DictionaryObject):
            stack.extend(item.values())
        elif isinstance(item, ArrayObject):
            stack.extend(item)
    return out


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
        # tagged (PDF/UA) body and pages: the member's structure goes in front of the body's
        mine = _Structure.of(self.reader)
        self.structure = mine if mine is not None and body.structure is not None else None
        self.tops: dict[str, list[int]] = {}  # member → their page-level structure elements
        self.parent_entries: dict[int, PdfObject] = {}  # page id → its parent-tree entry
        self.struct_parents: dict[int, int] = {}  # page id → its key in the edition
        for member_id, (first, stop) in ranges.items():
            pages = [self.reader.pages[i].indirect_reference.idnum for i in range(first, stop)]  # type: ignore[union-attr]
            roots = list(pages)
            if self.structure is not None:
                roots += self._structure_of(member_id, pages)
            self.closures[member_id] = (pages, sorted(self._closure(roots)))

    def _structure_of(self, member_id: str, pages: list[int]) -> list[int]:
        """The member's page-level structure elements and parent-tree entries (to copy)."""
        assert self.structure is not None and self.body.structure is not None
        wanted = set(pages)
        tops = []
        for kid in self.structure.document.raw_get("/K"):
            element = kid.get_object()
            page = element.raw_get("/Pg") if isinstance(element, DictionaryObject) and "/Pg" in element else None
            if isinstance(kid, IndirectObject) and isinstance(page, IndirectObject) and page.idnum in wanted:
                tops.append(kid.idnum)
        self.tops[member_id] = tops
        nums = self.structure.nums
        entries = {int(nums[i]): nums[i + 1] for i in range(0, len(nums), 2)}
        extra: list[int] = []
        for index, page_id in enumerate(pages):
            page = self.reader.get_object(page_id)
            assert isinstance(page, DictionaryObject)
            key = page.get("/StructParents")
            if key is None:
                continue
            entry = entries.get(int(key))
            if entry is not None:
                self.parent_entries[page_id] = entry
                extra += [v.idnum for v in _references(entry)]
            self.struct_parents[page_id] = self.body.structure.next_key + index
        return tops + extra

    def _remap(self, obj: PdfObject, is_page: bool = False, page_id: int = 0) -> PdfObject:
        if isinstance(obj, IndirectObject):
            if self.structure is not None and self.body.structure is not None:
                if obj.idnum == self.structure.document_id:  # a top element's parent
                    return IndirectObject(self.body.structure.document_id, 0, None)
                if obj.idnum == self.structure.root_id:
                    return IndirectObject(self.body.structure.root_id, 0, None)
            if obj.idnum in self.page_ids:
                return NullObject()  # a link to another member's page: dropped
            return IndirectObject(obj.idnum + self.offset, 0, None)
        if isinstance(obj, DictionaryObject):
            out = DictionaryObject()  # a stream's dictionary; its data is written apart
            for key, value in obj.items():
                if is_page and key == "/Parent":
                    out[NameObject(key)] = IndirectObject(self.body.pages_id, 0, None)
                elif is_page and key == "/StructParents":
                    if page_id in self.struct_parents:
                        out[NameObject(key)] = NumberObject(self.struct_parents[page_id])
                elif is_page and key == "/Annots":
                    continue  # print pages: no links
                elif key == "/Length" and isinstance(obj, StreamObject):
                    continue
                elif key == "/Pg" and isinstance(value, IndirectObject):  # a structure element's page
                    out[NameObject(key)] = IndirectObject(value.idnum + self.offset, 0, None)
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
        remapped = self._remap(obj, is_page, idnum)
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
        """Every object ``pages`` (and structure elements) need, not following a page's
        parent and links nor a structure element's parent (the batch's document element)."""
        seen: set[int] = set()
        if self.structure is not None:
            seen |= {self.structure.document_id, self.structure.root_id}
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
                        if key == "/P" and item.get("/Type") == "/StructElem":
                            continue
                        stack.append(value)
                elif isinstance(item, ArrayObject):
                    stack.extend(item)
        if self.structure is not None:
            seen -= {self.structure.document_id, self.structure.root_id}
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
        if self.structure is not None and body.structure is not None:
            for number, data in self._structure_update(member_id, pages):
                offsets[number] = len(out)
                out += f"{number} 0 obj\n".encode() + data + b"\nendobj\n"
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

    def _structure_update(self, member_id: str, pages: list[int]) -> list[tuple[int, bytes]]:
        """New versions of the body's document element (the member's elements first) and
        parent tree (the member's pages' entries after the body's keys), as object bodies."""
        body = self.body.structure
        assert body is not None
        tops = b" ".join(b"%d 0 R" % (t + self.offset) for t in self.tops[member_id])
        document = body.document_head + b" /K [" + tops + b" " + body.kids_bytes + b"] >>"
        entries = [
            b"%d %s" % (self.struct_parents[page_id], _serialise(self._remap(self.parent_entries[page_id])))
            for page_id in pages
            if page_id in self.parent_entries and page_id in self.struct_parents
        ]
        tree = body.tree_head + b" /Nums [" + body.nums_bytes + b" " + b" ".join(entries) + b"] >>"
        return [(body.document_id, document), (body.tree_id, tree)]

    def write(self, member_id: str, path: Path) -> Path:
        """This member's edition at ``path``, written atomically (complete or not at all)."""
        return atomic_write_bytes(path, self.edition(member_id))
