"""A laid-out batch of member pages, read once with qpdf and kept as object bytes to renumber.

Both the web editions (:mod:`catalog.pdfmerge`) and the print stream (:mod:`catalog.printfile`)
copy the objects of a batch WeasyPrint wrote — pages, content streams, fonts, images, tagged
structure — into another PDF under new numbers. Parsing the batch was most of that copy's
cost with pypdf, which builds a Python object for every token; qpdf (pikepdf) parses it in
C++ and writes each object back as PDF syntax (a web edition's merge 17.6 → 4.3 ms of CPU, a
member's copy into a print file 11.3 → 1.6 ms, on the demo club: docs/benchmarks.md). Each
object is kept as that syntax (:class:`BatchObject`): renumbering it is one regular
expression over bytes (:meth:`BatchObject.renumbered`), its stream data is copied as stored.

The expression is safe on what qpdf writes: a literal string is written with ``(``, ``)`` and
``\\`` escaped, so strings are matched (and left alone) before references are; names and
numbers cannot end in ``N G R``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from io import BytesIO

import pikepdf

# a literal string, a hex string, a reference (group 1), a font name's subset tag (groups 2-3)
_TOKENS = re.compile(
    rb"\((?:[^\\()]|\\.)*\)|<[0-9A-Fa-f\s]*>|(?<![\w.+-])(\d+) \d+ R(?![\w])|/(BaseFont|FontName) /([A-Z]{6})\+",
    re.S,
)

NULL = b"null"


@dataclass(frozen=True)
class BatchObject:
    """One object of the batch: its PDF syntax (a stream's dictionary without ``/Length``),
    its stream data as stored (still encoded) or None, and the objects it refers to."""

    text: bytes
    data: bytes | None
    refs: tuple[int, ...]

    def renumbered(self, number: Callable[[int], bytes], font_tag: Callable[[bytes], bytes] | None = None) -> bytes:
        """The object's body with each reference ``N 0 R`` replaced by ``number(N)`` (a
        reference or ``null``) and, given ``font_tag``, each font subset's tag replaced."""
        text = renumber(self.text, number, font_tag) if self.refs or font_tag is not None else self.text
        if self.data is None:
            return text
        assert text.endswith(b">>")
        return text[:-2] + b" /Length %d >>\nstream\n" % len(self.data) + self.data + b"\nendstream"


def renumber(
    text: bytes, number: Callable[[int], bytes], font_tag: Callable[[bytes], bytes] | None = None
) -> bytes:
    """``text`` (PDF syntax as qpdf writes it) with each reference ``N G R`` replaced by
    ``number(N)`` and, given ``font_tag``, each ``/BaseFont`` or ``/FontName`` subset tag."""

    def token(match: re.Match[bytes]) -> bytes:
        if match[1] is not None:
            return number(int(match[1]))
        if match[2] is not None and font_tag is not None:
            return b"/%s /%s+" % (match[2], font_tag(match[3]))
        return match[0]

    return _TOKENS.sub(token, text)


def references(text: bytes) -> tuple[int, ...]:
    return tuple(int(m[1]) for m in _TOKENS.finditer(text) if m[1] is not None)


def ref(number: int) -> bytes:
    return b"%d 0 R" % number


@dataclass(frozen=True)
class StructureOfBatch:
    """A tagged batch's structure tree as WeasyPrint writes it (see
    :class:`catalog.pdfmerge._Structure`): its root, its one document element's page-level
    elements with the page each starts on, and the parent tree's entries by key."""

    root_id: int
    document_id: int
    tops: tuple[tuple[int, int | None], ...]  # (element, its /Pg) in order
    entries: dict[int, bytes]  # parent-tree key → its value's syntax


class PdfBatch:
    """The batch's pages and objects (each read once, on first use)."""

    def __init__(self, pdf: bytes) -> None:
        self.pdf = pikepdf.open(BytesIO(pdf))
        pages = self.pdf.pages
        self.page_objects = [page.obj for page in pages]
        self.page_ids = [page.objgen[0] for page in self.page_objects]
        self.page_set = frozenset(self.page_ids)
        self._objects: dict[int, BatchObject] = {}

    def __len__(self) -> int:
        return len(self.page_ids)

    def object_at(self, number: int) -> BatchObject:
        found = self._objects.get(number)
        if found is None:
            found = self._objects[number] = _read(self.pdf.get_object(number, 0))
        return found

    def page(self, index: int, drop: Iterable[str] = ()) -> BatchObject:
        """Page ``index`` without the keys ``drop`` (its ``/Parent`` is always left out: the
        page goes under another page tree)."""
        left_out = {"/Parent", *drop}
        page = pikepdf.Dictionary({k: v for k, v in self.page_objects[index].items() if k not in left_out})
        text = page.unparse()
        return BatchObject(text, None, references(text))

    def page_int(self, index: int, key: str) -> int | None:
        """Page ``index``'s entry ``key`` when it is a whole number (``/StructParents``)."""
        value = self.page_objects[index].get(key)  # pikepdf gives a PDF integer as an int
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    def page_entry(self, index: int, key: str) -> bytes | None:
        """The syntax of page ``index``'s entry ``key`` (arrays and dictionaries written whole)."""
        value = self.page_objects[index].get(key)
        return None if value is None else value.unparse()

    def catalog_entry(self, key: str) -> bytes | None:
        value = self.pdf.Root.get(key)
        if value is None:
            return None
        return value.unparse()

    def info(self) -> pikepdf.Dictionary | None:
        info = self.pdf.trailer.get("/Info")
        return None if info is None else pikepdf.Dictionary(dict(info.items()))  # a copy to change

    def closure(self, roots: Iterable[int], stop: Iterable[int] = ()) -> list[int]:
        """Every object ``roots`` reach, not through a page (a page is reached only as a root)
        nor ``stop``, in ascending order."""
        seen = set(stop)
        out: set[int] = set()
        todo = [r for r in roots]
        while todo:
            number = todo.pop()
            if number in seen:
                continue
            seen.add(number)
            out.add(number)
            for target in self.object_at(number).refs:
                if target not in seen and target not in self.page_set:
                    todo.append(target)
        return sorted(out)

    def structure(self) -> StructureOfBatch | None:
        root = self.pdf.Root.get("/StructTreeRoot")
        if root is None or not root.is_indirect:
            return None
        tree = root.get("/ParentTree")
        kids = root.get("/K")
        if isinstance(kids, pikepdf.Array):
            kids = kids[0] if len(kids) == 1 else None
        if tree is None or kids is None or not kids.is_indirect or not tree.is_indirect:
            return None
        nums = tree.get("/Nums")
        if not isinstance(nums, pikepdf.Array):
            return None
        document = kids
        tops: list[tuple[int, int | None]] = []
        children = document.get("/K")
        for kid in children if isinstance(children, pikepdf.Array) else ():
            if not kid.is_indirect:
                continue
            page = kid.get("/Pg") if isinstance(kid, pikepdf.Dictionary) else None
            tops.append((kid.objgen[0], page.objgen[0] if page is not None and page.is_indirect else None))
        entries = {int(nums[i]): nums[i + 1].unparse() for i in range(0, len(nums) - 1, 2)}
        return StructureOfBatch(root.objgen[0], document.objgen[0], tuple(tops), entries)


def _read(obj: pikepdf.Object) -> BatchObject:
    if isinstance(obj, pikepdf.Stream):
        data = obj.read_raw_bytes()
        text = pikepdf.Dictionary({k: v for k, v in obj.stream_dict.items() if k != "/Length"}).unparse()
        return BatchObject(text, data, references(text))
    text = obj.unparse(resolved=True)
    return BatchObject(text, None, references(text))

