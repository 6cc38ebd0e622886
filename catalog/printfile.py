"""One large print file from many laid-out batches of personal pages, written as it goes.

The print stream lays members' pages out a batch at a time (WeasyPrint, PDF/X-4) and joins
the batches into files of thousands of members. :class:`PrintFileWriter` copies each batch's
page objects (and what they use: content streams, fonts, images, colour spaces) into one
file with new object numbers, under one page tree, and writes them out at once, so a file
of any size never sits in memory. A batch is read once with qpdf (:mod:`catalog.pdfbatch`)
and its objects renumbered as bytes. Identical streams that need nothing else — the output
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

import pikepdf
from pypdf.generic import (
    ArrayObject,
    ByteStringObject,
    DictionaryObject,
    IndirectObject,
    NameObject,
    NumberObject,
    PdfObject,
)

from catalog.pdfbatch import NULL, PdfBatch, ref, renumber

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
        self.document: list[bytes] | None = None  # the first batch's catalog entries, renumbered
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
        batch = PdfBatch(pdf)
        copier = _BatchCopier(self, batch)
        if self.document is None:
            self._take_document(batch, copier)
        placed: list[PlacedMember] = []
        for member_id, first, stop in ranges:
            if stop <= first:
                raise ValueError(f"member {member_id} has no pages in the batch")
            start = self.page_count + 1
            for index in range(first, stop):
                self.page_ids.append(copier.page(index))
            blank = self.duplex and (stop - first) % 2 == 1
            if blank:
                self.page_ids.append(self._blank_page(batch, stop - 1))
            placed.append(PlacedMember(member_id, start, self.page_count, blank))
        copier.flush()
        return placed

    def _take_document(self, batch: PdfBatch, copier: _BatchCopier) -> None:
        document = []
        for key in _DOCUMENT_KEYS:
            text = batch.catalog_entry(key)
            if text is not None:
                document.append(key.encode() + b" " + renumber(text, copier.number))
        self.document = document
        info = batch.info()
        if info is not None:
            if self.title:
                info.Title = pikepdf.String(self.title)
            self.info_id = self._allocate()
            self._object(self.info_id, renumber(info.unparse(), copier.number))

    def _blank_page(self, batch: PdfBatch, like: int) -> int:
        """A blank page with the boxes of the batch's page ``like``."""
        boxes = [
            key.encode() + b" " + text for key in _PAGE_BOXES if (text := batch.page_entry(like, key)) is not None
        ]
        page = b"<< /Type /Page /Parent %d 0 R %s /Resources << >> >>" % (self.pages_id, b" ".join(boxes))
        number = self._allocate()
        self._object(number, page)
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
        entries = b" ".join(self.document or [])
        self._object(self.catalog_id, b"<< /Type /Catalog /Pages %d 0 R %s >>" % (self.pages_id, entries))
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

    def __init__(self, writer: PrintFileWriter, batch: PdfBatch) -> None:
        self.writer = writer
        self.batch = batch
        writer.batches += 1
        self.salt = f"batch-{writer.batches}"
        self.numbers: dict[int, int] = {}  # batch number → file number
        self.todo: list[int] = []

    def number(self, idnum: int) -> bytes:
        """The reference that replaces the batch's ``idnum`` in the file (null for a page:
        print pages carry no links)."""
        if idnum in self.batch.page_set:
            return NULL
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
        return ref(number)

    def _shared_digest(self, idnum: int) -> bytes | None:
        """A digest for a stream that refers to nothing else (written once per file)."""
        obj = self.batch.object_at(idnum)
        if obj.data is None or obj.refs:
            return None
        digest = hashlib.sha256(obj.text)
        digest.update(obj.data)
        return digest.digest()

    def font_tag(self, tag: bytes) -> bytes:
        return subset_tag(tag.decode(), self.salt).encode()

    def page(self, index: int) -> int:
        page = self.batch.page(index, drop=("/Annots", "/StructParents", "/Tabs"))
        text = page.renumbered(self.number)
        assert text.endswith(b">>")
        number = self.writer._allocate()
        self.writer._object(number, text[:-2] + b" /Parent %d 0 R >>" % self.writer.pages_id)
        self.flush()
        return number

    def flush(self) -> None:
        """Write every object reached so far (and what those reach)."""
        while self.todo:
            idnum = self.todo.pop()
            body = self.batch.object_at(idnum).renumbered(self.number, self.font_tag)
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
    return "/" + subset_tag(match[1], salt) + name[7:]


def subset_tag(tag: str, salt: str) -> str:
    """The six capital letters that replace a subset's ``tag`` for ``salt``."""
    digest = hashlib.sha256(f"{salt}:{tag}".encode()).digest()
    return "".join(chr(65 + b % 26) for b in digest[:6])


def serialise(obj: PdfObject) -> bytes:
    stream = BytesIO()
    obj.write_to_stream(stream)
    return stream.getvalue()
