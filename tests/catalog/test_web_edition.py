"""The web edition (a member's pages merged with the segment body) is one tagged PDF/UA file:
every mark on every page is marked content tied to a structure element of one tree."""

from __future__ import annotations

from pathlib import Path

import pytest
from pypdf import PdfReader
from pypdf.generic import ArrayObject, ContentStream, DictionaryObject, IndirectObject

from catalog.production import render_member_editions, renderer_for
from recsys.storage import segments as segments_db
from tests.catalog.conftest import QUARTER, Club

pytestmark = pytest.mark.slow  # renders PDFs

PAINTING = {b"Tj", b"TJ", b"'", b'"', b"Do", b"f", b"F", b"f*", b"S", b"s", b"B", b"B*", b"b", b"b*", b"sh", b"BI"}


def accessibility_problems(path: Path) -> list[str]:
    """What a PDF/UA checker would say about the tagging (structure, parent tree, marked content)."""
    reader = PdfReader(path)
    root = reader.trailer["/Root"]
    assert isinstance(root, DictionaryObject)
    problems: list[str] = []
    if root.get("/MarkInfo", {}).get("/Marked") not in (True, "true"):  # type: ignore[union-attr]
        problems.append("no MarkInfo/Marked")
    if not root.get("/Lang"):
        problems.append("no /Lang")
    metadata = root["/Metadata"].get_object().get_data().decode()  # type: ignore[union-attr]
    if "pdfuaid:part" not in metadata:
        problems.append("no pdfuaid:part in the XMP metadata")
    if root.get("/ViewerPreferences", {}).get("/DisplayDocTitle") not in (True, "true"):  # type: ignore[union-attr]
        problems.append("no DisplayDocTitle")
    tree_root = root["/StructTreeRoot"]
    assert isinstance(tree_root, DictionaryObject)
    nums = tree_root["/ParentTree"]["/Nums"]  # type: ignore[index]
    entries = {int(nums[i]): nums[i + 1] for i in range(0, len(nums), 2)}  # type: ignore[arg-type, index]
    if list(entries) != sorted(entries):
        problems.append("parent tree keys out of order")
    pages = {p.indirect_reference.idnum: i for i, p in enumerate(reader.pages) if p.indirect_reference}
    seen: set[int] = set()

    def walk(ref: IndirectObject, parent: int) -> None:
        element = ref.get_object()
        if not isinstance(element, DictionaryObject) or element.get("/Type") != "/StructElem":
            return
        if ref.idnum in seen:
            problems.append(f"element {ref.idnum} twice in the tree")
            return
        seen.add(ref.idnum)
        if element.raw_get("/P").idnum != parent:
            problems.append(f"element {ref.idnum}: /P is not its parent")
        page = element.raw_get("/Pg") if "/Pg" in element else None
        if page is not None and page.idnum not in pages:
            problems.append(f"element {ref.idnum}: /Pg is not a page")
        for kid in element.get("/K", []):
            if isinstance(kid, IndirectObject):
                walk(kid, ref.idnum)

    root_ref = root.raw_get("/StructTreeRoot")
    for kid in tree_root["/K"]:  # type: ignore[union-attr]
        walk(kid, root_ref.idnum)
    for number, page in enumerate(reader.pages, start=1):
        contents = page.get_contents()
        if contents is None:
            continue
        depth, mcids, untagged = 0, [], 0
        for operands, operator in ContentStream(contents, reader).operations:
            if operator in (b"BDC", b"BMC"):
                depth += 1
                if operator == b"BDC" and isinstance(operands[1], DictionaryObject) and "/MCID" in operands[1]:
                    mcids.append(int(operands[1]["/MCID"]))
            elif operator == b"EMC":
                depth -= 1
            elif operator in PAINTING and depth == 0 and not _marked_form(page, operator, operands):
                untagged += 1
        if untagged:
            problems.append(f"page {number}: {untagged} marks outside marked content")
        entry = entries.get(int(page.get("/StructParents", -1)))  # type: ignore[call-overload]
        if mcids and entry is None:
            problems.append(f"page {number}: marked content but no parent tree entry")
            continue
        mapped = entry.get_object() if entry is not None else ArrayObject()
        for mcid in mcids:
            element = mapped[mcid].get_object() if mcid < len(mapped) else None
            if not isinstance(element, DictionaryObject) or element.raw_get("/P").idnum not in seen | {root_ref.idnum}:
                problems.append(f"page {number}: MCID {mcid} belongs to no element of the tree")
            elif mcid not in [k for k in element.get("/K", []) if isinstance(k, int)]:
                problems.append(f"page {number}: MCID {mcid} is not among its element's kids")
    if not seen:
        problems.append("an empty structure tree")
    return problems


def _marked_form(page: object, operator: bytes, operands: list[object]) -> bool:
    """A form XObject (a transparency group) whose own content is all marked: drawing it
    outside marked content leaves nothing untagged."""
    if operator != b"Do":
        return False
    xobject = page["/Resources"]["/XObject"][operands[0]].get_object()  # type: ignore[index]
    if xobject.get("/Subtype") != "/Form":
        return False
    depth = 0
    for _operands, op in ContentStream(xobject, None).operations:
        if op in (b"BDC", b"BMC"):
            depth += 1
        elif op == b"EMC":
            depth -= 1
        elif op in PAINTING and depth == 0:
            return False
    return True


def _members(club: Club, n: int) -> list[str]:
    with club.engine.connect() as connection:
        labels = segments_db.member_segment_labels(connection, QUARTER)
    segment = club.plans[0].segment
    return sorted(m for m, s in labels.items() if s == segment)[:n]


@pytest.mark.parametrize("batch", [1, 8], ids=["laid-out-whole", "stamped"])
def test_the_web_edition_is_tagged_pdf_ua(club: Club, tmp_path: Path, batch: int) -> None:
    members = _members(club, batch)
    renderer = renderer_for(club.settings)  # a fresh one: one member is laid out whole, eight stamped
    with club.engine.connect() as connection:
        paths = render_member_editions(
            connection, club.model, club.settings, QUARTER, club.plans, members, renderer=renderer,
            out_dir=tmp_path, web=True,
        )
    body = PdfReader(tmp_path / f"segment-{club.plans[0].segment}.pdf")
    problems = accessibility_problems(tmp_path / f"segment-{club.plans[0].segment}.pdf")
    assert problems == [], problems
    edition = paths[members[-1]]
    assert accessibility_problems(edition) == []
    reader = PdfReader(edition)
    assert len(reader.pages) > len(body.pages)  # the member's pages, then the body
    tree = reader.trailer["/Root"]["/StructTreeRoot"]  # type: ignore[index]
    document = tree["/K"][0].get_object()  # type: ignore[index]
    first = document["/K"][0].get_object()  # the member's pages come first in reading order too
    assert first.raw_get("/Pg").idnum == reader.pages[0].indirect_reference.idnum  # type: ignore[union-attr]
