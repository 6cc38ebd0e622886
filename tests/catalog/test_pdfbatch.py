"""A batch's objects as qpdf writes them, renumbered as bytes (catalog/pdfbatch.py)."""

from __future__ import annotations

from io import BytesIO

import pikepdf

from catalog.pdfbatch import NULL, PdfBatch, ref, references, renumber


def _batch_pdf() -> bytes:
    pdf = pikepdf.new()
    font = pdf.make_indirect(pikepdf.Dictionary(
        Type=pikepdf.Name.Font, Subtype=pikepdf.Name.Type0, BaseFont=pikepdf.Name("/ABCDEF+NotoSerifCJK"),
    ))
    for text in ("first", "second"):
        pdf.add_blank_page(page_size=(200, 200))
        page = pdf.pages[-1]
        page.obj.Resources = pikepdf.Dictionary(Font=pikepdf.Dictionary(F1=font))
        page.obj.Contents = pdf.make_stream(b"BT /F1 12 Tf (" + text.encode() + b") Tj ET")
        # strings that look like references, and one that looks like a font name
        page.obj.Alt = pikepdf.String("see 1 0 R (and 2 0 R) \\ /BaseFont /ABCDEF+X")
        page.obj.Hex = pikepdf.String("中文 3 0 R")
    first, second = pdf.pages[0].obj, pdf.pages[1].obj
    first.Annots = pikepdf.Array([pdf.make_indirect(pikepdf.Dictionary(Dest=pikepdf.Array([second])))])
    out = BytesIO()
    pdf.save(out)
    return out.getvalue()


def test_references_in_strings_and_names_are_left_alone() -> None:
    text = rb"<< /A (x 1 0 R \) 2 0 R \\) /B <feff0031> /C [ 12 0 R 7 0 R ] /F12 /D 3 0 R >>"
    assert references(text) == (12, 7, 3)
    out = renumber(text, lambda n: ref(n + 100))
    assert out == rb"<< /A (x 1 0 R \) 2 0 R \\) /B <feff0031> /C [ 112 0 R 107 0 R ] /F12 /D 103 0 R >>"


def test_font_subset_tags_are_replaced_only_as_font_names() -> None:
    text = b"<< /BaseFont /ABCDEF+Noto /FontName /ABCDEF+Noto /Other /ABCDEF+Noto /S (/BaseFont /ABCDEF+) >>"
    out = renumber(text, ref, lambda tag: b"ZZZZZZ")
    assert out == b"<< /BaseFont /ZZZZZZ+Noto /FontName /ZZZZZZ+Noto /Other /ABCDEF+Noto /S (/BaseFont /ABCDEF+) >>"


def test_a_batch_renumbered_reads_back_with_the_same_pages_and_strings() -> None:
    batch = PdfBatch(_batch_pdf())
    assert len(batch) == 2
    page = batch.page(0, drop=("/Annots",))
    assert b"/Parent" not in page.text and b"/Annots" not in page.text
    closure = batch.closure(page.refs)
    assert not set(closure) & batch.page_set  # a page is reached only as a root
    # the objects renumbered past 1000 and written as a PDF of their own: same text, same font
    offset = 1000
    out = bytearray(b"%PDF-1.7\n")
    offsets = {}

    def number(n: int) -> bytes:
        return NULL if n in batch.page_set else ref(n + offset)

    for n in closure:
        offsets[n + offset] = len(out)
        out += b"%d 0 obj\n" % (n + offset) + batch.object_at(n).renumbered(number) + b"\nendobj\n"
    offsets[1], offsets[2] = len(out), 0
    out += b"1 0 obj\n<< /Type /Pages /Kids [ 3 0 R ] /Count 1 >>\nendobj\n"
    offsets[3] = len(out)
    out += b"3 0 obj\n" + page.renumbered(number)[:-2] + b" /Parent 1 0 R >>\nendobj\n"
    offsets[2] = len(out)
    out += b"2 0 obj\n<< /Type /Catalog /Pages 1 0 R >>\nendobj\n"
    xref = len(out)
    size = max(offsets) + 1
    out += b"xref\n0 %d\n0000000000 65535 f \n" % size
    for n in range(1, size):
        out += b"%010d 00000 n \n" % offsets[n] if n in offsets else b"0000000000 65535 f \n"
    out += b"trailer\n<< /Size %d /Root 2 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (size, xref)
    with pikepdf.open(BytesIO(bytes(out))) as read:
        assert read.check_pdf_syntax() == []
        [only] = read.pages
        assert str(only.obj.Alt) == "see 1 0 R (and 2 0 R) \\ /BaseFont /ABCDEF+X"
        assert str(only.obj.Hex) == "中文 3 0 R"
        assert str(only.obj.Resources.Font.F1.BaseFont) == "/ABCDEF+NotoSerifCJK"
        assert only.obj.Resources.Font.F1.objgen[0] > offset
        assert only.obj.Contents.read_bytes() == b"BT /F1 12 Tf (first) Tj ET"
