"""Fast merging of member pages in front of a shared body, as PDF incremental updates.

``pypdf.PdfWriter.append`` copies every object of the body for every member:
with a 40-page body that is most of an edition's cost. Here the body's bytes
are kept as they are and each edition appends one incremental update (PDF
32000-1 §7.5.6): the member's page objects and their resources, a new
version of the body's page-tree root with the member's pages first, and a
cross-reference stream whose ``/Prev`` points at the body's. The member
batch is parsed once (qpdf, :mod:`catalog.pdfbatch`) and each object renumbered
past the body's once, as bytes, so writing an edition is a byte concatenation.
The body, read once per segment, is read with pypdf.
"""

from __future__ import annotations

import hashlib
import re
import struct
from collections.abc import Callable
from io import BytesIO
from pathlib import Path

from pypdf import PdfReader
from pypdf.generic import (
    ArrayObject,
    DictionaryObject,
    IndirectObject,
    NameObject,
    NumberObject,
    PdfObject,
)

from catalog.pdfbatch import NULL, BatchObject, PdfBatch, ref, references, renumber
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
        self.digest = hashlib.sha256(self.data)  # an edition's hash goes on from here
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


def _serialise(obj: PdfObject) -> bytes:
    stream = BytesIO()
    obj.write_to_stream(stream)
    return stream.getvalue()


class MemberBatch:
    """A batch of member pages, read once (:class:`catalog.pdfbatch.PdfBatch`, qpdf) and each
    object renumbered past ``body``'s objects as bytes once."""

    def __init__(self, pdf: bytes, ranges: dict[str, tuple[int, int]], body: BodyTemplate) -> None:
        self.body = body
        self.batch = PdfBatch(pdf)
        self.offset = body.size  # new number = old number + offset
        self.objects: dict[int, bytes] = {}  # objects that refer to no page, renumbered once
        # tagged (PDF/UA) body and pages: the member's structure goes in front of the body's
        self.structure = self.batch.structure() if body.structure is not None else None
        self.tops: dict[str, list[int]] = {}  # member → their page-level structure elements
        self.parent_entries: dict[int, bytes] = {}  # page id → its parent-tree entry
        self.struct_parents: dict[int, int] = {}  # page id → its key in the edition
        self.members: dict[str, tuple[list[int], list[BatchObject], list[int]]] = {}
        stop = {self.structure.document_id, self.structure.root_id} if self.structure is not None else set()
        for member_id, (first, last) in ranges.items():
            pages = self.batch.page_ids[first:last]
            page_objects = [self.batch.page(i, drop=("/Annots", "/StructParents")) for i in range(first, last)]
            roots = [r for p in page_objects for r in p.refs]
            if self.structure is not None:
                roots += self._structure_of(member_id, first, pages)
            self.members[member_id] = (pages, page_objects, self.batch.closure(roots, stop))

    def _structure_of(self, member_id: str, first: int, pages: list[int]) -> list[int]:
        """The member's page-level structure elements and parent-tree entries (to copy)."""
        assert self.structure is not None and self.body.structure is not None
        wanted = set(pages)
        tops = [element for element, page in self.structure.tops if page in wanted]
        self.tops[member_id] = tops
        extra: list[int] = []
        for index, page_id in enumerate(pages):
            key = self.batch.page_int(first + index, "/StructParents")
            if key is None:
                continue
            entry = self.structure.entries.get(key)
            if entry is not None:
                self.parent_entries[page_id] = entry
                extra += references(entry)
            self.struct_parents[page_id] = self.body.structure.next_key + index
        return tops + extra

    def _numbering(self, own_pages: set[int]) -> Callable[[int], bytes]:
        """New numbers: past the body's; the batch's structure root and document element are
        the body's; a link to a page not the member's own is dropped."""
        offset, page_set = self.offset, self.batch.page_set
        special: dict[int, bytes] = {}
        if self.structure is not None and self.body.structure is not None:
            special[self.structure.document_id] = ref(self.body.structure.document_id)
            special[self.structure.root_id] = ref(self.body.structure.root_id)

        def number(n: int) -> bytes:
            found = special.get(n)
            if found is not None:
                return found
            if n in page_set and n not in own_pages:
                return NULL
            return ref(n + offset)

        return number

    def _object_bytes(self, idnum: int, number: Callable[[int], bytes]) -> bytes:
        cached = self.objects.get(idnum)
        if cached is not None:
            return cached
        obj = self.batch.object_at(idnum)
        out = b"%d 0 obj\n" % (idnum + self.offset) + obj.renumbered(number) + b"\nendobj\n"
        if not self.batch.page_set.intersection(obj.refs):
            self.objects[idnum] = out
        return out

    def edition(self, member_id: str) -> bytes:
        """The body with this member's pages in front, as one PDF."""
        return self.body.data + self.increment(member_id)

    def increment(self, member_id: str) -> bytes:
        """What follows the body's bytes in this member's edition (the incremental update)."""
        body = self.body
        pages, page_objects, closure = self.members[member_id]
        number = self._numbering(set(pages))
        out = bytearray()
        base = len(body.data)  # offsets in the cross-reference stream count from the file's start
        offsets: dict[int, int] = {}
        for page_id, page in zip(pages, page_objects, strict=True):
            text = page.renumbered(number)
            assert text.endswith(b">>")
            text = text[:-2] + b" /Parent %d 0 R" % body.pages_id
            if page_id in self.struct_parents:
                text += b" /StructParents %d" % self.struct_parents[page_id]
            offsets[page_id + self.offset] = base + len(out)
            out += b"%d 0 obj\n" % (page_id + self.offset) + text + b" >>\nendobj\n"
        for idnum in closure:
            offsets[idnum + self.offset] = base + len(out)
            out += self._object_bytes(idnum, number)
        tree = DictionaryObject(body.pages)
        tree[NameObject("/Kids")] = ArrayObject(
            [IndirectObject(p + self.offset, 0, None) for p in pages]
            + [IndirectObject(k.idnum, 0, None) for k in body.kids]
        )
        tree[NameObject("/Count")] = NumberObject(body.count + len(pages))
        offsets[body.pages_id] = base + len(out)
        out += f"{body.pages_id} 0 obj\n".encode() + _serialise(tree) + b"\nendobj\n"
        if self.structure is not None and body.structure is not None:
            for key, data in self._structure_update(member_id, pages, number):
                offsets[key] = base + len(out)
                out += f"{key} 0 obj\n".encode() + data + b"\nendobj\n"
        xref_id = max(max(offsets) + 1, body.size)
        offsets[xref_id] = base + len(out)
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

    def _structure_update(
        self, member_id: str, pages: list[int], number: Callable[[int], bytes]
    ) -> list[tuple[int, bytes]]:
        """New versions of the body's document element (the member's elements first) and
        parent tree (the member's pages' entries after the body's keys), as object bodies."""
        body = self.body.structure
        assert body is not None
        tops = b" ".join(b"%d 0 R" % (t + self.offset) for t in self.tops[member_id])
        document = body.document_head + b" /K [" + tops + b" " + body.kids_bytes + b"] >>"
        entries = [
            b"%d %s" % (self.struct_parents[page_id], renumber(self.parent_entries[page_id], number))
            for page_id in pages
            if page_id in self.parent_entries and page_id in self.struct_parents
        ]
        tree = body.tree_head + b" /Nums [" + body.nums_bytes + b" " + b" ".join(entries) + b"] >>"
        return [(body.document_id, document), (body.tree_id, tree)]

    def write(self, member_id: str, path: Path) -> Path:
        """This member's edition at ``path``, written atomically (complete or not at all)."""
        return atomic_write_bytes(path, self.edition(member_id))

    def edition_digest(self, increment: bytes) -> tuple[int, str]:
        """The size and SHA-256 of the edition the body and ``increment`` make, the body
        hashed once (hashing each 1.4 MB edition whole was ~1 % of its CPU)."""
        digest = self.body.digest.copy()
        digest.update(increment)
        return len(self.body.data) + len(increment), digest.hexdigest()
