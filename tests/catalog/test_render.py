"""Segment catalogs read back from the PDF: pages, table of contents, Chinese text, assets."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader

from catalog.context import catalog_view, initials, placeholder_cover
from catalog.fetcher import AssetFetcher
from catalog.production import render_segment_catalogs, titles_by_id
from catalog.render import Renderer
from tests.catalog.conftest import QUARTER, Club

pytestmark = pytest.mark.slow  # renders PDFs (a few seconds each)

MM = 72 / 25.4


@pytest.fixture(scope="module")
def catalog_pdf(club: Club, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Club]:
    out = tmp_path_factory.mktemp("catalogs")
    with club.engine.connect() as connection:
        paths = render_segment_catalogs(
            connection, club.settings, QUARTER, club.plans[:1], out_dir=out
        )
    return paths[0], club


def _texts(path: Path) -> list[str]:
    """Each page's text in reading layout (pdftotext -layout), so contents lines keep their numbers."""
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils) is not installed")
    run = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True)
    return run.stdout.split("\f")[: len(PdfReader(path).pages)]


def test_cover_toc_sections_and_order_form(catalog_pdf: tuple[Path, Club]) -> None:
    path, club = catalog_pdf
    texts = _texts(path)
    plan = club.plans[0]
    assert len(texts) >= 4
    assert QUARTER[:4] in texts[0] and plan.segment_name.split(" ")[0] in texts[0]
    assert "目录" in texts[1]
    assert "订购单" in texts[-1]


def test_toc_page_numbers_are_the_pages_sections_start_on(catalog_pdf: tuple[Path, Club]) -> None:
    path, club = catalog_pdf
    texts = _texts(path)
    toc = texts[1]
    for section in club.plans[0].sections:
        match = re.search(re.escape(section.name) + r"\s*\(\d+\)\s*(\d+)", toc)
        assert match, f"{section.name} not in the table of contents"
        listed = int(match[1])
        first = next(i + 1 for i in range(2, len(texts)) if section.name in texts[i])
        assert listed == first, f"{section.name}: contents say page {listed}, it starts on {first}"
        assert texts[listed - 1].strip().endswith(str(listed))  # the printed page number


def test_chinese_titles_come_back_as_text(catalog_pdf: tuple[Path, Club]) -> None:
    path, club = catalog_pdf
    with club.engine.connect() as connection:
        titles = titles_by_id(connection, QUARTER)
    text = re.sub(r"\s+", "", "".join(_texts(path)))
    assert "\ufffd" not in text
    chinese = [titles[t].title for t in club.plans[0].title_ids if re.search(r"[\u4e00-\u9fff]", titles[t].title)]
    assert chinese
    for title in chinese:
        assert re.sub(r"\s+", "", title) in text


def test_fonts_are_the_configured_cjk_face(catalog_pdf: tuple[Path, Club]) -> None:
    path, _club = catalog_pdf
    fonts: set[str] = set()
    for page in PdfReader(path).pages:
        resources: Any = page["/Resources"]
        for font in resources.get("/Font", {}).values():
            fonts.add(str(font.get_object()["/BaseFont"]))
    families = {f.split("+", 1)[-1] for f in fonts}
    assert families <= {"Noto-Serif-CJK-SC", "Noto-Serif-CJK-SC-Bold"}, families  # no fallback faces


def test_a5_with_bleed_and_crop_marks(club: Club, tmp_path: Path) -> None:
    settings = club.settings.model_copy(
        update={"catalog": club.settings.catalog.model_copy(update={"page_size": "A5", "bleed": True})}
    )
    with club.engine.connect() as connection:
        path = render_segment_catalogs(connection, settings, QUARTER, club.plans[1:2], out_dir=tmp_path)[1]
    page = PdfReader(path).pages[0]
    trim = [float(x) for x in page.trimbox]
    media = [float(x) for x in page.mediabox]
    assert (trim[2] - trim[0]) == pytest.approx(148 * MM, abs=0.5)
    assert (trim[3] - trim[1]) == pytest.approx(210 * MM, abs=0.5)
    assert media[2] - media[0] > trim[2] - trim[0] + 5 * MM  # bleed and room for the marks


def test_only_the_projects_assets_are_fetched(club: Club) -> None:
    renderer = Renderer.create()
    with club.engine.connect() as connection:
        titles = titles_by_id(connection, QUARTER)
    view = catalog_view(club.plans[0], titles, None, club_name="c", order_address="a", font="Noto Serif CJK SC")
    from catalog.render import catalog_html

    html = catalog_html(view, club.settings.catalog).replace(
        "</body>", '<img src="file:///etc/hostname"><img src="http://example.com/x.png"></body>'
    )
    document = renderer.layout(html)
    assert document.pages
    assert set(renderer.fetcher.refused) == {"file:///etc/hostname", "http://example.com/x.png"}
    assert AssetFetcher().allows((Path(__file__).parents[2] / "catalog/static/catalog.css").as_uri())


def test_placeholder_covers_carry_initials() -> None:
    assert initials("《活着》") == "活着"
    assert initials("The Old Man and the Sea") == "TO"
    assert placeholder_cover("活着", "I", "文学", "Noto Sans CJK SC").startswith("data:image/svg+xml;base64,")
