"""A5 personal pages: the letter and the order form do not fit one A5 page, so the form has a
page of its own, whole — laid out whole and stamped. (Before, the form's lines ran over onto
the next page: the part a member fills in and sends back came in two pieces.)"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from catalog.member_pages import render_member_pages, stamp_sheet
from catalog.production import renderer_for
from tests.catalog.conftest import Club, selection_views

pytestmark = pytest.mark.slow  # renders PDFs


def _page_texts(pdf: bytes, folder: Path) -> list[str]:
    if not shutil.which("pdftotext"):
        pytest.fail("pdftotext (poppler-utils) is needed: ./run.sh installs it")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "pages.pdf"
    path.write_bytes(pdf)
    text = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True).stdout
    return text.split("\f")


@pytest.mark.parametrize("size", ["A5", "A4"])
def test_the_order_form_is_whole_on_one_page(club: Club, tmp_path: Path, size: str) -> None:
    plan, titles, views = selection_views(club, 2)
    assert all(v.main is not None and v.reply_by is not None for v in views)  # the tallest form
    settings = club.settings.catalog.model_copy(update={"page_size": size})
    renderer = renderer_for(club.settings)
    for how, sheet in (("whole", None), ("stamped", stamp_sheet(plan, titles, settings, renderer))):
        pages = render_member_pages(views, settings, renderer, sheet)
        texts = _page_texts(pages.pdf, tmp_path / f"{size}-{how}")
        for view in views:
            first, last = pages.ranges[view.member_id]
            own = texts[first:last]
            with_form = [i for i, text in enumerate(own) if "Order form" in text]
            assert len(with_form) == 1, (size, how, view.member_id, with_form)
            form = own[with_form[0]]
            assert "Total" in form and "Signature" in form, (size, how, "the form ran over its page")
            assert view.member_id in form and view.reply_by_iso in form
            picks = next(i for i, text in enumerate(own) if "Picked for you" in text)
            assert picks > with_form[0]
            # A4: letter and form share the first page; A5: the letter alone, then the form
            assert with_form[0] == (0 if size == "A4" else 1), (size, how)
            assert "Dear" in own[0]
