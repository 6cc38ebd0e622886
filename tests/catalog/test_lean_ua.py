"""The lean user-agent stylesheet (catalog.render.LeanHTML): the same pages as WeasyPrint's own,
with fewer computed styles."""

from __future__ import annotations

from pathlib import Path

import pytest

import catalog.render as render_module
from catalog.member_edition import member_views
from catalog.member_pages import render_member_pages, stamp_sheet
from catalog.production import render_segment_catalogs, renderer_for
from catalog.render import LeanHTML, lean_ua_stylesheet
from tests.catalog.conftest import QUARTER, Club, assert_same_pages, first_members

pytestmark = pytest.mark.slow  # renders PDFs


def test_the_installed_weasyprint_gets_the_lean_sheet() -> None:
    # None would mean WeasyPrint's sheet changed and every document pays for the six
    # pseudo-elements again: look at the rules in catalog.render and adapt them
    assert lean_ua_stylesheet() is not None
    sheets = LeanHTML(string="<p>x</p>")._ua_stylesheets()
    assert sheets[0] is lean_ua_stylesheet()


def test_no_style_for_pseudo_elements_nobody_draws(monkeypatch: pytest.MonkeyPatch) -> None:
    import weasyprint.css as css

    created: list[str | None] = []
    original = css.ComputedStyle.__init__

    def counting(self: object, parent: object, cascaded: object, pseudo_type: str | None, *args: object) -> None:
        created.append(pseudo_type)
        original(self, parent, cascaded, pseudo_type, *args)

    monkeypatch.setattr(css.ComputedStyle, "__init__", counting)
    renderer = render_module.Renderer.create()
    renderer.layout("<ol><li>一</li><li>二</li></ol><p>三</p>")
    assert "marker" in created  # the list items keep their markers
    assert not {"footnote-call", "footnote-marker", "note-call", "note-marker", "note-callback"} & set(created)
    assert created.count("marker") == 2  # the two list items only, not every element


def test_lean_and_stock_sheets_draw_the_same_pages(
    club: Club, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = club.settings
    plan = club.plans[0]
    ids, titles, rows, picks = first_members(club, plan, 3)
    views = member_views(
        [rows[m] for m in ids], picks, plan, titles, settings.catalog, QUARTER,
        key_codes=dict.fromkeys(ids, f"{QUARTER}-S{plan.segment}-C"),
    )

    def documents(folder: Path) -> tuple[bytes, bytes]:
        renderer = renderer_for(settings)  # tagged (PDF/UA) web-edition pages
        sheet = stamp_sheet(plan, titles, settings.catalog, renderer)
        pages = render_member_pages(views, settings.catalog, renderer, sheet).pdf
        with club.engine.connect() as connection:  # a segment catalog: lists, table of contents
            path = render_segment_catalogs(connection, settings, QUARTER, club.plans[:1], out_dir=folder)[0]
        return pages, path.read_bytes()

    lean = documents(tmp_path / "lean")
    monkeypatch.setattr(LeanHTML, "_ua_stylesheets", lambda self, forms=False: [render_module.HTML._ua_stylesheets(self, forms)[0]])
    stock = documents(tmp_path / "stock")
    for i, (a, b) in enumerate(zip(stock, lean, strict=True)):
        assert_same_pages(a, b, tmp_path / str(i))
