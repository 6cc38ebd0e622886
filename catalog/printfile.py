"""One large print file from many laid-out batches of personal pages, written as it goes.

The print stream lays members' pages out a batch at a time (WeasyPrint, PDF/X-4) and joins
the batches into files of thousands of members. :class:`PrintFileWriter` copies each batch's
page objects (and what they use: content streams, fonts, images, colour spaces) into one
file with new object numbers, under one page tree, and writes them out at once, so a file
of any size never sits in memory. Identical streams that need nothing else — the output
intent's ICC profile every batch carries, a cover image two batches both print — are
written once. The document-level parts of a PDF/X-4 file (output intent, XMP metadata with
``GTS_PDFXVersion``, ``Trapped``) come from the first batch; every batch is written with
the same settings, so they hold for all. A member whose pages are odd in number gets a
blank page after them: a duplex press starts every member on a new sheet.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from io import BytesIO
from typing import IO

from pypdf import PdfReader
from pypdf.generic import (
    ArrayObject,
    ByteStringObject,
    DictionaryObject,
    IndirectObject,
    NameObject,
    NullObject,
    NumberObject,
    PdfObject,
    StreamObject,
    TextStringObject,
)

_DOCUMENT_KEYS = ("/OutputIntents", "/Metadata", "/Lang", "/ViewerPreferences")
_PAGE_BOXES = ("/MediaBox", "/CropBox", "/BleedBox", "/TrimBox", "/ArtBox")


@dataclass(frozen=True)
class PlacedMember:
    """Where a member's pages are in the file: ``first``..``last``, 1-based, inclusive."""

    member_id: str
    first: int
    last: int
    blank_added: bool

    @property
    def pages(self) -> int:
        return self.last - self.first + 1


class PrintFileWriter:
    """Writes a PDF to ``handle`` batch by batch (:meth:`add_batch`), then :meth:`close`."""

    def __init__(self, handle: IO[bytes], *, duplex: bool = True, title: str = "") -> None:
        self.handle = handle
        self.duplex = duplex
        self.title = title
        self.offsets: dict[int, int] = {}
        self.position = 0
        self.next_number = 1
        self.catalog_id = self._allocate()
        self.pages_id = self._allocate()
        self.page_ids: list[int] = []
        self.document: DictionaryObject | None = None  # the first batch's catalog entries, remapped
        self.info_id: int | None = None
        self.shared: dict[bytes, int] = {}  # digest of a self-contained stream → its number
        self.batches = 0
        self._write(b"%PDF-1.6\n%\xe2\xe3\xcf\xd3\n")

    def _allocate(self) -> int:
        number = self.next_number
        self.next_number += 1
        return number

    def _write(self, data: bytes) -> None:
        self.handle.write(data)
        self.position += len(data)

    def _object(self, number: int, body: bytes) -> None:
        self.offsets[number] = self.position
        self._write(b"%d 0 obj\n" % number + body + b"\nendobj\n")

    @property
    def page_count(self) -> int:
        return len(self.page_ids)

    def add_batch(self, pdf: bytes, ranges: Sequence[tuple[str, int, int]]) -> list[PlacedMember]:
        """Append the pages of ``pdf``: ``ranges`` are (member_id, first, stop) page indexes
        of the batch, in the order the members go into the file."""
        reader = PdfReader(BytesIO(pdf))
        copier = _BatchCopier(self, reader)
        if self.document is None:
            self._take_document(reader, copier)
        placed: list[PlacedMember] = []
        for member_id, first, stop in ranges:
            if stop <= first:
                raise ValueError(f"member {member_id} has no pages in the batch")
            start = self.page_count + 1
            for index in range(first, stop):
                self.page_ids.append(copier.page(index))
            blank = self.duplex and (stop - first) % 2 == 1
            if blank:
                self.page_ids.append(self._blank_page(reader.pages[stop - 1]))
            placed.append(PlacedMember(member_id, start, self.page_count, blank))
        copier.flush()
        return placed

    def _take_document(self, reader: PdfReader, copier: _BatchCopier) -> None:
        root = reader.trailer["/Root"]
        assert isinstance(root, DictionaryObject)
        document = DictionaryObject()
        for key in _DOCUMENT_KEYS:
            if key in root:
                document[NameObject(key)] = copier.remap(root.raw_get(key))
        self.document = document
        info = reader.trailer.get("/Info")
        if info is not None:
            info = info.get_object()
            assert isinstance(info, DictionaryObject)
            remapped = copier.remap(DictionaryObject(info))
            assert isinstance(remapped, DictionaryObject)
            if self.title:
                remapped[NameObject("/Title")] = TextStringObject(self.title)
            self.info_id = self._allocate()
            self._object(self.info_id, serialise(remapped))

    def _blank_page(self, like: DictionaryObject) -> int:
        page = DictionaryObject()
        page[NameObject("/Type")] = NameObject("/Page")
        page[NameObject("/Parent")] = IndirectObject(self.pages_id, 0, None)
        for key in _PAGE_BOXES:
            if key in like:
                page[NameObject(key)] = ArrayObject(list(like[key]))  # type: ignore[call-overload]
        page[NameObject("/Resources")] = DictionaryObject()
        number = self._allocate()
        self._object(number, serialise(page))
        return number

    def close(self) -> int:
        """The page tree, the catalog and the cross-reference table; the page count."""
        if not self.page_ids:
            raise ValueError("a print file needs at least one page")
        pages = DictionaryObject()
        pages[NameObject("/Type")] = NameObject("/Pages")
        pages[NameObject("/Kids")] = ArrayObject(IndirectObject(n, 0, None) for n in self.page_ids)
        pages[NameObject("/Count")] = NumberObject(len(self.page_ids))
        self._object(self.pages_id, serialise(pages))
        catalog = DictionaryObject(self.document or {})
        catalog[NameObject("/Type")] = NameObject("/Catalog")
        catalog[NameObject("/Pages")] = IndirectObject(self.pages_id, 0, None)
        self._object(self.catalog_id, serialise(catalog))
        size = self.next_number
        xref = self.position
        rows = [b"xref\n0 %d\n" % size, b"0000000000 65535 f \n"]
        for number in range(1, size):
            offset = self.offsets.get(number)
            rows.append(b"%010d 00000 n \n" % offset if offset is not None else b"0000000000 65535 f \n")
        self._write(b"".join(rows))
        trailer = DictionaryObject()
        trailer[NameObject("/Size")] = NumberObject(size)
        trailer[NameObject("/Root")] = IndirectObject(self.catalog_id, 0, None)
        if self.info_id is not None:
            trailer[NameObject("/Info")] = IndirectObject(self.info_id, 0, None)
        file_id = ByteStringObject(secrets.token_bytes(16))
        trailer[NameObject("/ID")] = ArrayObject([file_id, file_id])
        self._write(b"trailer\n" + serialise(trailer) + b"\nstartxref\n%d\n%%%%EOF\n" % xref)
        return len(self.page_ids)


class _BatchCopier:
    """Copies objects of one batch into the writer under new numbers (each object once)."""

    def __init__(self, writer: PrintFileWriter, reader: PdfReader) -> None:
        self.writer = writer
        self.reader = reader
        writer.batches += 1
        self.salt = f"batch-{writer.batches}"
        self.numbers: dict[int, int] = {}  # batch number → file number
        self.todo: list[int] = []
        self.page_numbers = {
            page.indirect_reference.idnum for page in reader.pages if page.indirect_reference is not None
        }

    def _number(self, idnum: int) -> int:
        number = self.numbers.get(idnum)
        if number is None:
            shared = self._shared_digest(idnum)
            if shared is not None and shared in self.writer.shared:
                number = self.writer.shared[shared]
            else:
                number = self.writer._allocate()
                if shared is not None:
                    self.writer.shared[shared] = number
                self.todo.append(idnum)
            self.numbers[idnum] = number
        return number

    def _shared_digest(self, idnum: int) -> bytes | None:
        """A digest for a stream that refers to nothing else (written once per file)."""
        obj = self.reader.get_object(idnum)
        if not isinstance(obj, StreamObject) or _has_references(obj):
            return None
        digest = hashlib.sha256(serialise(_without_length(obj)))
        digest.update(obj._data)
        return digest.digest()

    def remap(self, obj: PdfObject) -> PdfObject:
        if isinstance(obj, IndirectObject):
            if obj.idnum in self.page_numbers:
                return NullObject()  # a link to a page: print pages carry none
            return IndirectObject(self._number(obj.idnum), 0, None)
        if isinstance(obj, DictionaryObject):
            out = DictionaryObject()
            for key, value in obj.items():
                if key == "/Length" and isinstance(obj, StreamObject):
                    continue
                if key in _FONT_NAME_KEYS and isinstance(value, NameObject):
                    out[NameObject(key)] = NameObject(retag(value, self.salt))
                    continue
                out[NameObject(key)] = self.remap(value)
            return out
        if isinstance(obj, ArrayObject):
            return ArrayObject(self.remap(v) for v in obj)
        return obj

    def page(self, index: int) -> int:
        page = self.reader.pages[index]
        out = DictionaryObject()
        for key, value in page.items():
            if key in ("/Parent", "/Annots", "/StructParents", "/Tabs"):
                continue
            out[NameObject(key)] = self.remap(value)
        out[NameObject("/Parent")] = IndirectObject(self.writer.pages_id, 0, None)
        number = self.writer._allocate()
        self.writer._object(number, serialise(out))
        self.flush()
        return number

    def flush(self) -> None:
        """Write every object reached so far (and what those reach)."""
        while self.todo:
            idnum = self.todo.pop()
            obj = self.reader.get_object(idnum)
            assert obj is not None
            remapped = self.remap(obj)
            if isinstance(obj, StreamObject):
                assert isinstance(remapped, DictionaryObject)
                data: bytes = obj._data  # as stored, still encoded
                remapped[NameObject("/Length")] = NumberObject(len(data))
                body = serialise(remapped) + b"\nstream\n" + data + b"\nendstream"
            else:
                body = serialise(remapped)
            self.writer._object(self.numbers[idnum], body)


_SUBSET = re.compile(r"^/([A-Z]{6})\+")
_FONT_NAME_KEYS = ("/BaseFont", "/FontName")


def retag(name: str, salt: str) -> str:
    """A font subset's name (``/ABCDEF+Family``) with a tag of its own for ``salt``.

    WeasyPrint derives the six-letter tag from the font's description, not from the glyphs a
    subset holds, so every document's subset of a face has the same name; joined into one
    file, different subsets with one name are what a press's font cache may mix up."""
    match = _SUBSET.match(name)
    if match is None:
        return name
    digest = hashlib.sha256(f"{salt}:{match[1]}".encode()).digest()
    return "/" + "".join(chr(65 + b % 26) for b in digest[:6]) + name[7:]


def serialise(obj: PdfObject) -> bytes:
    stream = BytesIO()
    obj.write_to_stream(stream)
    return stream.getvalue()


def _has_references(obj: PdfObject) -> bool:
    stack: list[object] = [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, IndirectObject):
            return True
        if isinstance(item, DictionaryObject):
            stack.extend(item.values())
        elif isinstance(item, ArrayObject):
            stack.extend(item)
    return False


def _without_length(obj: StreamObject) -> DictionaryObject:
    out = DictionaryObject()
    for key, value in obj.items():
        if key != "/Length":
            out[NameObject(key)] = value
    return out
