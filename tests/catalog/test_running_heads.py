"""The personal pages' running heads with a fixed width (catalog.member_pages.running_head_css):
the same pages as the two boxes sharing the width by measuring, and no fixed width when the
heads would not fit side by side."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

import catalog.member_pages as member_pages
from catalog.context import MemberView
from catalog.member_edition import member_views
from catalog.member_pages import render_member_pages, running_head_css, stamp_sheet
from catalog.production import renderer_for
from recsys.settings import CatalogSettings
from recsys.storage.titles import TitleRecord
from tests.catalog.conftest import QUARTER, Club, assert_same_pages, first_members

pytestmark = pytest.mark.slow  # renders PDFs


def _views(club: Club, n: int = 3) -> tuple[list[MemberView], dict[str, TitleRecord]]:
    plan = club.plans[0]
    ids, titles, rows, picks = first_members(club, plan, n)
    views = member_views(
        [rows[m] for m in ids], picks, plan, titles, club.settings.catalog, QUARTER,
        key_codes=dict.fromkeys(ids, f"{QUARTER}-S{plan.segment}-C"),
    )
    return views, titles


def test_fixed_and_measured_running_heads_draw_the_same_pages(
    club: Club, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    views, titles = _views(club)
    # a long member number and a long club name, still side by side on A4
    views[1] = dataclasses.replace(views[1], member_id="M-" + "7" * 24)
    views[2] = dataclasses.replace(views[2], club_name="书友会 Book Club of the Western Hills 西山读书会")
    settings = club.settings.catalog
    assert "@top-left" in running_head_css(views, settings) and "@top-right" in running_head_css(views, settings)

    def pages(renderer_settings: CatalogSettings) -> bytes:
        renderer = renderer_for(club.settings)  # tagged (PDF/UA) web-edition pages
        sheet = stamp_sheet(club.plans[0], titles, renderer_settings, renderer)
        return render_member_pages(views, renderer_settings, renderer, sheet).pdf

    measuring = _count_measuring(monkeypatch)
    fixed = pages(settings)
    assert measuring == []  # the heads were not measured: the rule took effect
    monkeypatch.setattr(member_pages, "running_head_css", lambda _views, _settings: "")
    measured = pages(settings)
    assert len(measuring) == 2 * len(views)  # each personal page's top row, measured
    assert_same_pages(measured, fixed, tmp_path / "a4")


def _count_measuring(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Calls of WeasyPrint's margin-box width sharing that measure a box (a generated box of auto width)."""
    import weasyprint.layout.page as page

    calls: list[object] = []
    original = page.compute_variable_dimension

    def counting(context: object, side_boxes: list[Any], vertical: bool, available: float) -> None:
        if any(box.is_generated and box.width == "auto" for box in side_boxes):  # measured (min/max content)
            calls.append(side_boxes)
        original(context, side_boxes, vertical, available)

    monkeypatch.setattr(page, "compute_variable_dimension", counting)
    return calls


def test_a5_pages_keep_their_heads_too(club: Club, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    views, _titles = _views(club, 2)
    a5 = club.settings.catalog.model_copy(update={"page_size": "A5"})
    assert "@top-right" in running_head_css(views, a5)
    renderer = renderer_for(club.settings)
    fixed = render_member_pages(views, a5, renderer).pdf
    monkeypatch.setattr(member_pages, "running_head_css", lambda _views, _settings: "")
    measured = render_member_pages(views, a5, renderer).pdf
    assert_same_pages(measured, fixed, tmp_path / "a5")


def test_heads_that_would_not_fit_side_by_side_are_left_to_weasyprint(club: Club) -> None:
    views, _titles = _views(club, 2)
    settings = club.settings.catalog
    long_club = [dataclasses.replace(views[0], club_name="书友会" * 30), views[1]]
    assert running_head_css(long_club, settings) == ""
    long_number = [views[0], dataclasses.replace(views[1], member_id="M" * 90)]
    assert running_head_css(long_number, settings) == ""
    # the A5 page area is narrower: a club name that fits on A4 does not there
    middling = [dataclasses.replace(views[0], club_name="书友会" * 12)]
    assert running_head_css(middling, settings) != ""
    assert running_head_css(middling, settings.model_copy(update={"page_size": "A5"})) == ""
    assert running_head_css([], settings) == ""

