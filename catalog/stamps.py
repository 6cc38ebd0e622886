"""What every member's pages share, laid out once per segment and drawn where it goes.

Most of a member's personal pages is the same for all members of a segment: the order form's
frame (rules, headings, labels, empty lines, the notes under it) and each title card of the
quarter's catalog (cover, title, author, blurb, price). Laying those out again for every
member was most of an edition's cost (the form's two tables alone about 45 %). So:

* a **stamp sheet** is laid out once per segment (and PDF profile): one page per stamp — the
  form's frame with sample text set invisibly in its cells (so rows are as tall as when
  filled), each card's *head* (cover, title, author) and *tail* (blurb, price line) —
  and written once; each page becomes a PDF form XObject;
* each title's pre-filled order line and main-selection line (title number, title, price)
  is a stamp too, its cells placed where the frame's cells are (measured on the frames laid
  out alone first): a line then costs the member's page one empty placeholder instead of
  three text boxes;
* what every member of the segment reads word for word — the letter's opening paragraph and
  closing, the picks' heading and introduction, the selection note's heading and explanation
  (:data:`BLOCKS`) — is a stamp too, drawn into an empty block as tall as the text, which keeps
  its role (heading, paragraph) in a tagged PDF;
* a member's pages are laid out with placeholders: the form's frame is an empty box of the
  frame's height with the member's own fields (number, key code, name, address, QR code,
  reply date) placed absolutely where the frame's cells put them, and a placeholder at the
  first cell of each pre-filled and selection line; a card keeps its box and the member's
  reason, with a spacer as tall as the card's head;
* after layout, each placeholder's position (WeasyPrint's anchors) says where its stamp
  goes, and the stamp is drawn there (``cm`` + ``Do``) as the PDF is written.

The result draws the same marks in the same places as laying everything out per member
(tests compare the two page images). A member whose name, address or pre-filled title would
not fit its cell on one line gets the form laid out in full instead.

(Past 400 lines because laying out the stamp sheet, copying its form XObjects into each member's pages and keeping the tagged structure valid are one PDF-writing mechanism over the same object numbers.)
"""

from __future__ import annotations

import re
import unicodedata
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from io import BytesIO
from typing import Any

import pydyf
import segno
from pypdf import PdfReader
from pypdf.generic import (
    ArrayObject,
    DictionaryObject,
    IndirectObject,
    NameObject,
    NumberObject,
    PdfObject,
    StreamObject,
)
from weasyprint.document import Document

from catalog.context import EntryView, MemberView
from catalog.printfile import retag, serialise
from catalog.qr import qr_payload

PX_TO_PT = 0.75  # CSS px → PDF points
MM = 96 / 25.4  # CSS px per mm
FORM_FIELDS = ("no", "key", "name", "addr")
PREFILLED = 3


@dataclass(frozen=True)
class Field:
    """A cell's text box in the form's frame, relative to the frame's top-left (CSS px)."""

    x: float
    y: float
    width: float


@dataclass(frozen=True)
class FormLayout:
    height: float
    fields: dict[str, Field]  # no, key, name, addr, qr, r0-no, r0-title, r0-amount, …


@dataclass(frozen=True)
class CardLayout:
    head: float  # height of the head text (title, author) above the reason


def anchor_boxes(document: Document) -> dict[str, tuple[int, float, float, float, float]]:
    """Every anchor of a laid-out document: page index and box (CSS px)."""
    return {
        name: (number, x1, y1, x2, y2)
        for number, page in enumerate(document.pages)
        for name, (x1, y1, x2, y2) in page.anchors.items()
    }


def form_layouts(document: Document) -> dict[bool, FormLayout]:
    """The order form's two frames on a laid-out stamp sheet (keyed: with a key-code row), each
    field's text box relative to its frame."""
    boxes = anchor_boxes(document)
    forms = {}
    for keyed, suffix in ((True, "key"), (False, "nokey")):
        _n, x0, y0, _x, y_end = boxes[f"S-form-{suffix}"]
        prefix = f"f-{suffix}-"
        fields = {
            name[len(prefix):]: Field(x1 - x0, y1 - y0, x2 - x1)
            for name, (_n, x1, y1, x2, _y2) in boxes.items()
            if name.startswith(prefix)
        }
        forms[keyed] = FormLayout(y_end - y0, fields)
    return forms


# A line of the form whose text depends on one title only — a pre-filled order line (title
# number, title, price) or the main selection's — is a stamp per title, drawn at the line's
# first cell: three fewer text boxes to lay out per line and member. Its cells relative to
# the first, as the frame measured them (the same on every line and in both frames, else None).
LINE_FIELDS = {
    "row": (("no", "r{i}-no"), ("", "r{i}-title"), ("amount", "r{i}-amount")),
    "sel": (("no", "sel-no"), ("sel-title", "sel-title"), ("amount", "sel-amount")),
}


def line_stamps(forms: Mapping[bool, FormLayout]) -> dict[str, list[tuple[str, Field]]] | None:
    """Per kind of line (``row``, ``sel``): its cells (css class, text box relative to the first
    cell's top-left); None when the frames' lines are not all alike."""
    found: dict[str, list[tuple[str, Field]]] = {}
    for kind, cells in LINE_FIELDS.items():
        shapes = []
        for layout in forms.values():
            for i in range(PREFILLED if kind == "row" else 1):
                names = [name.format(i=i) for _css, name in cells]
                if not all(n in layout.fields for n in names):
                    return None
                first = layout.fields[names[0]]
                shapes.append([
                    (css, Field(f.x, f.y - first.y, f.width))
                    for (css, _name), f in zip(cells, (layout.fields[n] for n in names), strict=True)
                ])
        if any(_rounded(shape) != _rounded(shapes[0]) for shape in shapes):
            return None
        found[kind] = shapes[0]
    return found


# What every member of a segment reads word for word on their pages (the texts: _macros.html,
# block_text): each is a stamp, drawn into an empty <main> as tall as the block, with the
# block's own margins. (kind, tag, css class, container on the sheet, tagged-PDF role.) The
# selection note's blocks sit in a table cell: stamped only where its width does not depend on
# what is in it (a fixed table layout, two cards a row).
BLOCKS = (
    ("letter-open", "p", "letter-body", "letter", "P"),
    ("closing", "p", "closing", "letter", "P"),
    ("picks-title", "h2", "picks-title", "picks", "H2"),
    ("picks-intro", "p", "picks-intro", "picks", "P"),
    ("sel-title", "h2", "selection-title", "note", "H2"),
    ("sel-why", "p", "selection-why", "note", "P"),
)
BLOCK_ROLES = {f"block-{kind}": role for kind, _tag, _css, _where, role in BLOCKS}


def _rounded(shape: list[tuple[str, Field]]) -> list[tuple[str, float, float, float]]:
    return [(css, round(f.x, 2), round(f.y, 2), round(f.width, 2)) for css, f in shape]


class StampSheet:
    """A segment's stamps: the laid-out sheet (PDF) and where each stamp's origin is."""

    def __init__(
        self, pdf: bytes, document: Document, title_ids: Sequence[str],
        line_texts: Mapping[str, tuple[str, str, str]] | None = None,
        block_texts: tuple[str, str] | None = None,
    ) -> None:
        self.pdf = pdf
        self.reader = PdfReader(BytesIO(pdf))
        self.origins: dict[str, tuple[int, float, float]] = {}  # stamp → page, x, y of its anchor
        boxes = anchor_boxes(document)
        for name, (number, x1, y1, _x2, _y2) in boxes.items():
            if name.startswith("S-"):
                self.origins[name[2:]] = (number, x1, y1)
        self.forms = form_layouts(document)
        self.cards = {
            t: CardLayout(boxes[f"h-{t}"][2] - boxes[f"S-head-{t}"][2]) for t in title_ids
        }
        # each title's pre-filled order line and main-selection line (line_stamps): the texts
        # they print (title number, title, price), for titles whose two lines are on the sheet
        self.line_texts = {
            t: texts for t, texts in (line_texts or {}).items()
            if f"row-{t}" in self.origins and f"sel-{t}" in self.origins
        }
        # the blocks every member of the segment reads (BLOCKS): each one's height, and what
        # they were set from (the segment's name, the letter's opening paragraph)
        self.blocks = {
            kind: boxes[f"S-block-{kind}"][4] - boxes[f"S-block-{kind}"][2]
            for kind, *_rest in BLOCKS if f"S-block-{kind}" in boxes
        }
        self.block_texts = block_texts
        self._xobjects: dict[str, _FormXObject] = {}

    def has_blocks(self, view: MemberView) -> bool:
        """Whether ``view``'s shared blocks read what the sheet's do (its segment, its quarter)."""
        return bool(self.blocks) and self.block_texts == (view.segment_name, view.letter[0] if view.letter else "")

    def has_lines(self, entry: EntryView) -> bool:
        """Whether ``entry``'s order and selection lines can be drawn from the sheet: stamped,
        and printing what the member's own would (number, title, price)."""
        return self.line_texts.get(entry.title_id) == (entry.title_id, entry.title, entry.price)

    def form_xobject(self, stamp: str) -> _FormXObject:
        found = self._xobjects.get(stamp)
        if found is None:
            page_index, _x, _y = self.origins[stamp]
            found = self._xobjects[stamp] = _FormXObject(self.reader, page_index)
        return found


class _FormXObject:
    """One page of the sheet as a form XObject: its content stream, its bounding box, and only
    the resources its content names (a shared resource dictionary names every image of the
    sheet)."""

    def __init__(self, reader: PdfReader, page_index: int) -> None:
        page = reader.pages[page_index]
        contents = page.raw_get("/Contents")
        stream = contents.get_object()
        assert isinstance(stream, StreamObject)
        data = stream.get_data()
        self.data = zlib.compress(data, 6)
        used = set(re.findall(rb"/([^\s/\[\]()<>{}%]+)\s+(?:Do|gs|sh|scn|SCN)\b", data))
        resources = page["/Resources"]
        assert isinstance(resources, DictionaryObject)
        pruned = DictionaryObject()
        for key, value in resources.items():
            value_obj = value.get_object() if isinstance(value, IndirectObject) else value
            if key in ("/XObject", "/ExtGState", "/Pattern", "/Shading") and isinstance(value_obj, DictionaryObject):
                kept = DictionaryObject()
                for name, ref in value_obj.items():
                    if name[1:].encode() in used:
                        kept[NameObject(name)] = ref
                pruned[NameObject(key)] = kept
            else:
                pruned[NameObject(key)] = value
        self.resources = pruned
        self.bbox = ArrayObject(page["/MediaBox"])  # type: ignore[call-overload]


class _Raw(pydyf.Object):  # type: ignore[misc]
    """An object copied from another PDF, already serialised."""

    def __init__(self, is_stream: bool) -> None:
        super().__init__()
        self.body = b""
        self.is_stream = is_stream

    @property
    def data(self) -> bytes:
        return self.body

    @property
    def compressible(self) -> bool:
        return not self.is_stream


class _Copier:
    """Copies objects of the sheet into a WeasyPrint PDF being written (pydyf), each once."""

    def __init__(self, pdf: pydyf.PDF, reader: PdfReader) -> None:
        self.pdf = pdf
        self.reader = reader
        self.numbers: dict[int, int] = {}
        self.todo: list[tuple[int, _Raw]] = []

    def _number(self, idnum: int) -> int:
        number = self.numbers.get(idnum)
        if number is None:
            obj = self.reader.get_object(idnum)
            raw = _Raw(isinstance(obj, StreamObject))
            self.pdf.add_object(raw)
            number = self.numbers[idnum] = raw.number
            self.todo.append((idnum, raw))
        return number

    def remap(self, obj: PdfObject) -> PdfObject:
        if isinstance(obj, IndirectObject):
            return IndirectObject(self._number(obj.idnum), 0, None)
        if isinstance(obj, DictionaryObject):
            out = DictionaryObject()
            for key, value in obj.items():
                if key == "/Length" and isinstance(obj, StreamObject):
                    continue
                if key in ("/BaseFont", "/FontName") and isinstance(value, NameObject):
                    out[NameObject(key)] = NameObject(retag(value, "stamps"))  # not the page's subset's name
                    continue
                out[NameObject(key)] = self.remap(value)
            return out
        if isinstance(obj, ArrayObject):
            return ArrayObject(self.remap(v) for v in obj)
        return obj

    def flush(self) -> None:
        while self.todo:
            idnum, raw = self.todo.pop()
            obj = self.reader.get_object(idnum)
            assert obj is not None
            remapped = self.remap(obj)
            if isinstance(obj, StreamObject):
                assert isinstance(remapped, DictionaryObject)
                data: bytes = obj._data
                remapped[NameObject("/Length")] = NumberObject(len(data))
                raw.body = serialise(remapped) + b"\nstream\n" + data + b"\nendstream"
            else:
                raw.body = serialise(remapped)


@dataclass(frozen=True)
class Placement:
    stamp: str
    dx: float  # CSS px: where the stamp's origin lands minus where it was on the sheet
    dy: float
    role: str = "Div"  # its structure element's type in a tagged PDF


@dataclass(frozen=True)
class QrDraw:
    """A QR code drawn as filled squares into its placeholder box (CSS px from the page's
    top-left): the same marks as the ``<img>`` of segno's SVG, without parsing a path."""

    x: float
    y: float
    size: float
    payload: str
    page_height: float


QR_BORDER = 2  # modules of quiet zone inside the 22 mm box, as qr_data_url's SVG
QR_DARK = b"0.0667 0.0667 0.0667 rg"  # #111


def placements(
    document: Document, wanted: Mapping[str, str], sheet: StampSheet, qr_codes: Mapping[str, str] | None = None
) -> list[list[Placement | QrDraw]]:
    """Per page of ``document``: the stamps its placeholders (anchor → stamp) ask for, and the
    QR codes (anchor → payload)."""
    qr_codes = qr_codes or {}
    out: list[list[Placement | QrDraw]] = []
    found = 0
    for page in document.pages:
        here: list[Placement | QrDraw] = []
        for name, (x, y, x2, _y2) in page.anchors.items():
            stamp = wanted.get(name)
            if stamp is not None:
                _page, x0, y0 = sheet.origins[stamp]
                here.append(Placement(stamp, x - x0, y - y0, BLOCK_ROLES.get(stamp, "Div")))
                found += 1
            elif (payload := qr_codes.get(name)) is not None:
                here.append(QrDraw(x, y, x2 - x, payload, page.height))
                found += 1
        out.append(here)
    if found != len(wanted) + len(qr_codes):
        raise RuntimeError(f"{len(wanted) + len(qr_codes) - found} stamp placeholder(s) were not laid out")
    return out


def qr_ops(draw: QrDraw) -> bytes:
    """PDF operators filling the dark modules of ``draw``'s code, one rectangle per run."""
    matrix = segno.make_qr(draw.payload, error="m").matrix
    module = draw.size / (len(matrix) + 2 * QR_BORDER)
    rects = []
    for row, line in enumerate(matrix):
        top = draw.y + (QR_BORDER + row) * module
        bottom = (draw.page_height - top - module) * PX_TO_PT
        col = 0
        while col < len(line):
            if line[col]:
                start = col
                while col < len(line) and line[col]:
                    col += 1
                left = (draw.x + (QR_BORDER + start) * module) * PX_TO_PT
                rects.append(b"%.3f %.3f %.3f %.3f re" % (left, bottom, (col - start) * module * PX_TO_PT, module * PX_TO_PT))
            else:
                col += 1
    return b"q " + QR_DARK + b" " + b" ".join(rects) + b" f Q"


class StampFinisher:
    """WeasyPrint ``finisher``: draws the stamps onto the pages before the PDF is written."""

    def __init__(self, sheet: StampSheet, pages: list[list[Placement | QrDraw]]) -> None:
        self.sheet = sheet
        self.pages = pages

    def __call__(self, _document: Document, pdf: pydyf.PDF) -> None:
        copier = _Copier(pdf, self.sheet.reader)
        names: dict[str, bytes] = {}
        kids = pdf.pages["Kids"]
        page_numbers = [int(kids[i]) for i in range(0, len(kids), 3)]
        if len(page_numbers) != len(self.pages):
            raise RuntimeError("stamped pages do not match the document's pages")
        tags = _StructureTags(pdf) if "StructTreeRoot" in pdf.catalog else None
        for page_index, (number, placed) in enumerate(zip(page_numbers, self.pages, strict=True)):
            if not placed:
                continue
            page = pdf.objects[number]
            stream = pdf.objects[_object_number(page["Contents"])]
            resources = pdf.objects[_object_number(page["Resources"])]
            slots = tags.placeholders(number) if tags is not None else []
            if tags is not None and len(slots) != len(placed):
                raise RuntimeError(f"page {page_index + 1}: {len(placed)} stamps but {len(slots)} tagged placeholders")
            ops = [b"Q"]  # the page's own drawing ends in its own (flipped) space
            for i, p in enumerate(placed):
                if isinstance(p, QrDraw):
                    drawing = qr_ops(p)
                else:
                    name = names.get(p.stamp)
                    if name is None:
                        name = names[p.stamp] = b"st%d" % len(names)
                        resources["XObject"][name.decode()] = self._add_form(pdf, copier, p.stamp)
                    drawing = b"q 1 0 0 1 %.3f %.3f cm /%s Do Q" % (p.dx * PX_TO_PT, -p.dy * PX_TO_PT, name)
                if tags is not None:
                    drawing = tags.mark(page_index, slots[i], p, drawing)
                ops.append(drawing)
            stream.stream.insert(0, b"q")
            stream.stream.extend(ops)
        copier.flush()

    def _add_form(self, pdf: pydyf.PDF, copier: _Copier, stamp: str) -> bytes:
        xobject = self.sheet.form_xobject(stamp)
        head = DictionaryObject()
        head[NameObject("/Type")] = NameObject("/XObject")
        head[NameObject("/Subtype")] = NameObject("/Form")
        head[NameObject("/BBox")] = xobject.bbox
        head[NameObject("/Resources")] = copier.remap(xobject.resources)
        head[NameObject("/Filter")] = NameObject("/FlateDecode")
        head[NameObject("/Length")] = NumberObject(len(xobject.data))
        raw = _Raw(True)
        raw.body = serialise(head) + b"\nstream\n" + xobject.data + b"\nendstream"
        pdf.add_object(raw)
        return bytes(raw.reference)


class _StructureTags:
    """A tagged document's structure (WeasyPrint's, before it is written): each placeholder
    is a ``<main>`` element — a ``/Part`` structure element, in the page's reading order —
    which becomes the structure element of the stamp drawn there: the stamp's drawing is
    marked content with the next MCID of the page, tied to that element and to the page's
    entry in the parent tree. (A stamp sheet is laid out untagged: its forms carry no marked
    content of their own.)"""

    def __init__(self, pdf: pydyf.PDF) -> None:
        self.pdf = pdf
        root = pdf.objects[_object_number(pdf.catalog["StructTreeRoot"])]
        self.parent_tree = pdf.objects[_object_number(root["ParentTree"])]
        self.by_page: dict[int, list[Any]] = {}
        for kid in root["K"]:
            self._walk(pdf.objects[_object_number(kid)])

    def _walk(self, element: Any) -> None:
        if element.get("S") == "/Part":
            self.by_page.setdefault(_object_number(element["Pg"]), []).append(element)
        for kid in element.get("K", ()):
            if isinstance(kid, bytes | str) and not isinstance(kid, int):
                child = self.pdf.objects[_object_number(kid)]
                if isinstance(child, pydyf.Dictionary) and child.get("Type") == "/StructElem":
                    self._walk(child)

    def placeholders(self, page_number: int) -> list[Any]:
        return self.by_page.get(page_number, [])

    def mark(self, page_index: int, element: Any, placement: Placement | QrDraw, drawing: bytes) -> bytes:
        nums = self.parent_tree["Nums"]
        mcids = nums[nums.index(page_index) + 1]
        mcid = len(mcids)
        mcids.append(element.reference)
        element["K"].append(mcid)
        if isinstance(placement, QrDraw):
            element["S"] = "/Figure"
            element["Alt"] = pydyf.String(f"QR code: {placement.payload}")
            tag = b"Figure"
        else:  # a block's heading or paragraph, else a Div (a card's half, the form, a line)
            element["S"] = f"/{placement.role}"
            tag = placement.role.encode()
        return b"/%s <</MCID %d>> BDC %s EMC" % (tag, mcid, drawing)


def _object_number(reference: bytes | str) -> int:
    text = reference.decode() if isinstance(reference, bytes) else reference
    return int(text.split()[0])


# ---- what the member's page asks for -------------------------------------------------------


def width_em(text: str) -> float:
    """An upper bound of ``text``'s width in em: wide characters 1, capitals and symbols 0.8,
    the rest 0.62."""
    width = 0.0
    for ch in text:
        if unicodedata.east_asian_width(ch) in ("W", "F"):
            width += 1.0
        elif ch.isupper() or ch in "@%&WMmw—…":
            width += 0.8
        else:
            width += 0.62
    return width


def fits(text: str, field: Field, font_pt: float) -> bool:
    return width_em(text) * font_pt / PX_TO_PT <= field.width * 0.97


@dataclass(frozen=True)
class FormFill:
    """The form of one member as placed text over the stamped frame (CSS px)."""

    anchor: str
    height: float
    fields: list[tuple[str, Field, str]]  # css class, where, text
    qr: Field
    qr_anchor: str
    qr_payload: str
    lines: tuple[tuple[str, Field, str], ...] = ()  # placeholder anchor, where, stamp (a title's line)


@dataclass(frozen=True)
class CardFill:
    head_anchor: str
    tail_anchor: str
    head: float


@dataclass(frozen=True)
class BlockFill:
    anchor: str
    height: float


@dataclass(frozen=True)
class StampedViews:
    forms: dict[str, FormFill | None]  # member → placed form fields (None: the form laid out whole)
    cards: dict[tuple[str, str], CardFill]  # (member, title) → the card's placeholders
    wanted: dict[str, str]  # placeholder anchor → stamp
    qr_codes: dict[str, str]  # QR placeholder anchor → payload
    blocks: dict[str, dict[str, BlockFill]] = field(default_factory=dict)  # member → kind → placeholder


def stamp_views(views: Iterable[MemberView], sheet: StampSheet) -> StampedViews:
    """Per member: the form's placed fields (None: the full form, a field would not fit), per
    (member, title): the card's placeholders; anchor → stamp and anchor → QR payload for
    :func:`placements`."""
    forms: dict[str, FormFill | None] = {}
    cards: dict[tuple[str, str], CardFill] = {}
    wanted: dict[str, str] = {}
    qr_codes: dict[str, str] = {}
    blocks: dict[str, dict[str, BlockFill]] = {}
    for view in views:
        if sheet.has_blocks(view):
            fills = blocks[view.member_id] = {
                kind: BlockFill(f"B-{view.member_id}-{kind}", height)
                for kind, height in sheet.blocks.items()
                if view.main is not None or not kind.startswith("sel-")  # the note is there with a selection only
            }
            wanted.update((fill.anchor, f"block-{kind}") for kind, fill in fills.items())
        forms[view.member_id] = form = _form_fill(view, sheet)
        if form is not None:
            wanted[form.anchor] = "form-key" if view.key_code else "form-nokey"
            qr_codes[form.qr_anchor] = form.qr_payload
            wanted.update((anchor, stamp) for anchor, _where, stamp in form.lines)
        for i, entry in enumerate(view.picks):
            card = CardFill(f"K-{view.member_id}-{i}", f"L-{view.member_id}-{i}", sheet.cards[entry.title_id].head)
            cards[(view.member_id, entry.title_id)] = card
            wanted[card.head_anchor] = f"head-{entry.title_id}"
            wanted[card.tail_anchor] = f"tail-{entry.title_id}"
    return StampedViews(forms, cards, wanted, qr_codes, blocks)


def _form_fill(view: MemberView, sheet: StampSheet) -> FormFill | None:
    layout = sheet.forms[bool(view.key_code)]
    f = layout.fields
    texts: list[tuple[str, str, str, float]] = [
        ("member-no", "no", view.member_id, 12), ("", "name", view.name, 8.5),
        ("", "addr", " · ".join(view.address_lines), 8.5),
    ]
    if view.key_code:
        texts.insert(1, ("key-code", "key", view.key_code, 11))
    lines = []
    for i, entry in enumerate(view.prefilled[:PREFILLED]):
        row = [
            ("no", f"r{i}-no", entry.title_id, 8.5), ("", f"r{i}-title", entry.title, 8.5),
            ("amount", f"r{i}-amount", entry.price, 8.5),
        ]
        if sheet.has_lines(entry):  # checked for fit, drawn from the title's line stamp
            if not all(fits(text, f[name], size) for _css, name, text, size in row):
                return None
            lines.append((f"R-{view.member_id}-{i}", f[f"r{i}-no"], f"row-{entry.title_id}"))
        else:
            texts += row
    if len(view.prefilled) > PREFILLED:
        return None
    fields = []
    for css, name, text, size in texts:
        if not fits(text, f[name], size):
            return None
        fields.append((css, f[name], text))
    return FormFill(
        f"F-{view.member_id}", layout.height, fields, f["qr"], f"Q-{view.member_id}",
        qr_payload(view.member_id, view.key_code), tuple(lines),
    )

