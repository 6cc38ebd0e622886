"""Stamped member pages (the form's frame and the title cards laid out once, drawn per member)
look the same as member pages laid out whole."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
import segno

from catalog.member_edition import member_views
from catalog.member_pages import render_member_pages, stamp_sheet
from catalog.production import renderer_for, titles_by_id
from catalog.render import PER_MEMBER_DATA_URL
from catalog.stamps import Field, FormLayout, QrDraw, line_stamps, qr_ops, stamp_views
from tests.catalog.conftest import QUARTER, Club, assert_looks_alike, first_members, page_images

pytestmark = pytest.mark.slow  # renders PDFs


def test_stamped_pages_look_like_pages_laid_out_whole(club: Club, tmp_path: Path) -> None:
    settings = club.settings
    plan = club.plans[0]
    ids, titles, rows, picks = first_members(club, plan, 3)
    codes = {ids[0]: f"{QUARTER}-S{plan.segment}-C", ids[1]: f"{QUARTER}-S{plan.segment}-C"}  # one without
    long_address = dataclasses.replace(rows[ids[1]], address="很长的地址" * 20)  # will not fit one line
    members = [rows[ids[0]], long_address, rows[ids[2]]]
    views = member_views(members, picks, plan, titles, settings.catalog, QUARTER, key_codes=codes)
    renderer = renderer_for(settings)
    sheet = stamp_sheet(plan, titles, settings.catalog, renderer)
    assert sheet is not None
    stamped_views = stamp_views(views, sheet)
    forms = stamped_views.forms
    assert forms[ids[0]] is not None and forms[ids[2]] is not None
    assert forms[ids[1]] is None  # the long address: this member's form is laid out whole
    assert any(stamp.startswith("head-") for stamp in stamped_views.wanted.values())
    whole = render_member_pages(views, settings.catalog, renderer)
    stamped = render_member_pages(views, settings.catalog, renderer, sheet)
    assert stamped.ranges == whole.ranges
    # the members' QR codes (SVG, laid out whole) are not kept in the renderer's image cache —
    # they were, ~8,000 objects a member for the worker's life — while the shared covers are
    cached = list(renderer.image_cache)
    assert not [k for k in cached if k.startswith(PER_MEMBER_DATA_URL)]
    assert any(k.startswith("data:image/svg+xml;base64,") for k in cached)
    before, after = page_images(whole.pdf, tmp_path, "whole", 100), page_images(stamped.pdf, tmp_path, "stamped", 100)
    assert len(before) == len(after) == 6
    assert_looks_alike(before, after)


def test_a_batch_of_one_is_laid_out_whole_until_the_sheet_exists(club: Club) -> None:
    renderer = renderer_for(club.settings)
    plan = club.plans[0]
    with club.engine.connect() as connection:
        titles = titles_by_id(connection, QUARTER)
    assert stamp_sheet(plan, titles, club.settings.catalog, renderer, members=1) is None
    sheet = stamp_sheet(plan, titles, club.settings.catalog, renderer, members=20)
    assert sheet is not None
    assert stamp_sheet(plan, titles, club.settings.catalog, renderer, members=1) is sheet


def test_the_qr_code_is_drawn_module_for_module() -> None:
    payload = f"M0000042 {QUARTER}-S1-C"
    ops = qr_ops(QrDraw(x=100, y=200, size=83.15, payload=payload, page_height=1122.5))
    matrix = segno.make_qr(payload, error="m").matrix
    module = 83.15 / (len(matrix) + 4) * 0.75
    drawn = set()
    for x, y, w, _h in re.findall(rb"([\d.]+) ([\d.]+) ([\d.]+) ([\d.]+) re", ops):
        col = round((float(x) - 100 * 0.75) / module) - 2
        row = round(((1122.5 - 200) * 0.75 - float(y)) / module) - 3
        drawn |= {(row, col + i) for i in range(round(float(w) / module))}
    dark = {(r, c) for r, line in enumerate(matrix) for c, v in enumerate(line) if v}
    assert drawn == dark


def test_one_collection_pauses_the_collector_and_collects_the_documents_garbage() -> None:
    import gc
    import weakref

    from catalog.render import one_collection

    class Node:
        def __init__(self) -> None:
            self.me = self  # a cycle: only the collector frees it

    made: list[weakref.ref[Node]] = []

    @one_collection()
    def lay_out() -> bool:
        made.append(weakref.ref(Node()))
        return gc.isenabled()

    assert gc.isenabled()
    assert lay_out() is False  # paused inside
    assert gc.isenabled()  # and back on after
    assert made[0]() is None  # the document's garbage went at the end, not at some later collection
    gc.disable()
    try:
        assert lay_out() is False and not gc.isenabled()  # a caller's own setting is left alone
        assert made[1]() is not None  # nor collected for it
    finally:
        gc.enable()
        gc.collect()


def test_freezing_again_lets_a_former_jobs_state_go() -> None:
    import gc
    import weakref

    from catalog.render import freeze_long_lived

    class State:
        def __init__(self) -> None:
            self.me = self  # cyclic: only the collector frees it

    state = State()
    gone = weakref.ref(state)
    try:
        freeze_long_lived()
        del state  # the job's state dropped, still frozen
        gc.collect()
        assert gone() is not None
        freeze_long_lived()  # the next job's
        assert gone() is None
    finally:
        gc.unfreeze()


def _frame(shift: float = 0.0) -> FormLayout:
    fields = {"sel-no": Field(10, 50, 40), "sel-title": Field(60, 50, 90), "sel-amount": Field(160, 50, 30)}
    for i in range(3):
        y = 100 + 20 * i
        fields |= {f"r{i}-no": Field(10, y, 40), f"r{i}-title": Field(60, y + (shift if i == 2 else 0), 90),
                   f"r{i}-amount": Field(160, y, 30)}
    return FormLayout(200, fields)


def test_line_stamps_only_when_every_line_is_alike() -> None:
    cells = line_stamps({True: _frame(), False: _frame()})
    assert cells is not None
    assert cells["row"] == [("no", Field(10, 0, 40)), ("", Field(60, 0, 90)), ("amount", Field(160, 0, 30))]
    assert [css for css, _f in cells["sel"]] == ["no", "sel-title", "amount"]
    # a third line whose title sits 1 px lower: a stamp laid out on the first would misplace it
    assert line_stamps({True: _frame(), False: _frame(shift=1.0)}) is None
