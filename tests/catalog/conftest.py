"""A small demo club, a really trained model, its segments and plans — built once per session.

300 members and 160 titles (demo.generate), trained with implicit ALS (training.pipeline),
segmented for 2026Q3 and 2026Q4 into 3 segments, planned at 16 titles a catalog so
rendering tests stay a few seconds each.
"""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageChops
from sqlalchemy import Connection, Engine

from campaign.contacts import PrintFiles, write_quarter_contacts
from catalog.context import MemberView
from catalog.member_edition import edition_batch, member_picks
from catalog.paths import catalog_file, edition_file
from catalog.period import Quarter
from catalog.plan import CatalogPlan
from catalog.planning import plan_quarter
from catalog.production import titles_by_id
from catalog.segments import SegmentationResult, segment_quarter
from demo.generate import DemoSpec
from demo.load import load_demo
from recsys.model.trained import TrainedModel
from recsys.settings import CampaignSettings, CatalogSettings, SegmentSettings, Settings, TrainingSettings
from recsys.storage import members as members_db
from recsys.storage import segments as segments_db
from recsys.storage.db import make_engine, upgrade
from recsys.storage.members import MemberRecord
from recsys.storage.titles import TitleRecord
from tests.conftest import shared_data
from training.pipeline import run_training
from training.registry import ModelRegistry

QUARTER = "2026Q4"
PREVIOUS = "2026Q3"


@dataclass
class Club:
    settings: Settings
    engine: Engine
    model: TrainedModel
    previous: SegmentationResult
    segmentation: SegmentationResult
    plans: list[CatalogPlan]


def club_settings(data_dir: object) -> Settings:
    return Settings(
        data_dir=data_dir,
        training=TrainingSettings(factors=8, iterations=6, threads=1),
        segments=SegmentSettings(clusters=3, kmeans_init=4),
        catalog=CatalogSettings(
            titles_per_catalog=16, min_per_section=2, max_per_section=8, max_per_author=2,
            members_per_batch=4, picks_per_member=4,
        ),
    )


def first_members(
    club: Club, plan: CatalogPlan, n: int
) -> tuple[list[str], dict[str, TitleRecord], dict[str, MemberRecord], dict[str, list[tuple[str, str]]]]:
    """The first ``n`` members of ``plan``'s segment: their ids, the quarter's titles, their
    records and their picks."""
    with club.engine.connect() as connection:
        labels = segments_db.member_segment_labels(connection, QUARTER)
        ids = sorted(m for m, s in labels.items() if s == plan.segment)[:n]
        titles = titles_by_id(connection, QUARTER)
        rows = members_db.members_by_id(connection, ids)
        picks = member_picks(connection, club.model, plan, titles, ids, club.settings.catalog.picks_per_member)
    return ids, titles, rows, picks


def selection_views(club: Club, n: int = 3) -> tuple[CatalogPlan, dict[str, TitleRecord], list[MemberView]]:
    """The first ``n`` members of a segment whose editions carry a main selection and a reply
    deadline (the tallest order form): the plan, the quarter's titles and their views."""
    plan = club.plans[2]
    with club.engine.connect() as connection:
        ids = segments_db.members_of_segment(connection, QUARTER, plan.segment)[:n]
        titles = titles_by_id(connection, QUARTER)
        rows = members_db.members_by_id(connection, ids)
        views = edition_batch(connection, club.model, club.settings, QUARTER, plan, titles, [rows[m] for m in ids]).views
    return plan, titles, views


def page_images(pdf: bytes, folder: Path, name: str, dpi: int = 80) -> list[Image.Image]:
    """The pages of ``pdf`` as grey images (``pdftoppm``; written under ``folder`` as ``name-N.png``)."""
    tool = shutil.which("pdftoppm")
    if tool is None:
        pytest.fail("pdftoppm (poppler-utils) is needed: ./run.sh installs it")
    source = folder / f"{name}.pdf"
    source.write_bytes(pdf)
    subprocess.run([tool, "-r", str(dpi), "-gray", "-png", str(source), str(folder / name)], check=True)
    return [Image.open(p).convert("L") for p in sorted(folder.glob(f"{name}-*.png"))]


def assert_same_pages(a: bytes, b: bytes, folder: Path, dpi: int = 80) -> None:
    """``a`` and ``b`` draw the same pixels on every page."""
    folder.mkdir(parents=True, exist_ok=True)
    before, after = page_images(a, folder, "a", dpi), page_images(b, folder, "b", dpi)
    assert before and len(before) == len(after)
    for number, (x, y) in enumerate(zip(before, after, strict=True), start=1):
        assert x.size == y.size
        assert ImageChops.difference(x, y).getbbox() is None, f"page {number} differs"


def assert_looks_alike(whole: list[Image.Image], stamped: list[Image.Image]) -> None:
    """Stamped pages against the same pages laid out whole: anti-aliasing at most (the QR code's
    squares are filled rectangles, not SVG strokes: its edges shade differently). A card or a field
    out of place differs by thousands of pixels; a stray light rule (a stamp drawing a row's border
    where its own row ended) by a long run of faint pixels in one row."""
    assert whole and len(whole) == len(stamped)
    for number, (a, b) in enumerate(zip(whole, stamped, strict=True), start=1):
        assert a.size == b.size
        diff = ImageChops.difference(a, b)
        strong = diff.point(lambda v: 255 if v > 64 else 0).histogram()[255]
        assert strong <= a.size[0] * a.size[1] // 1000, f"page {number}: {strong} pixels differ"
        worst = int((np.asarray(diff) > 16).sum(axis=1).max())
        assert worst <= a.size[0] // 5, f"page {number}: {worst} pixels of one row differ (a stray rule?)"
        assert ImageChops.difference(b, Image.new("L", b.size, 255)).getbbox() is not None  # not blank


def mail_everyone(connection: Connection, settings: Settings, quarter: str) -> None:
    """The quarter's campaign with every segmented member mailed their own edition (no holdout:
    these tests are about rendering; the holdouts have tests of their own in tests/campaign)."""
    files = PrintFiles(member=partial(edition_file, quarter), segment=partial(catalog_file, quarter))
    nobody_held = CampaignSettings(holdout_share=1e-12, universal_holdout_share=0.0)
    write_quarter_contacts(connection, nobody_held, quarter, Quarter.parse(quarter).start, files=files)


@pytest.fixture(scope="session")
def club(tmp_path_factory: pytest.TempPathFactory) -> Club:
    clc = shared_data("clc", "clc_level1_2.csv")
    root = tmp_path_factory.mktemp("catalog-club")
    settings = club_settings(root / "var")
    engine = make_engine(settings.db_url)
    upgrade(engine)
    spec = DemoSpec(members=300, titles=160, years=2, seed=5, end_date=dt.date(2026, 11, 20))
    load_demo(engine, spec, clc)
    run_training(engine, settings, promote="force")
    model = ModelRegistry(settings.models_dir).load()
    with engine.begin() as connection:
        previous = segment_quarter(connection, model, settings.segments, PREVIOUS)
    with engine.begin() as connection:
        segmentation = segment_quarter(connection, model, settings.segments, QUARTER)
    with engine.begin() as connection:
        plans = plan_quarter(connection, model, settings, QUARTER)
    with engine.begin() as connection:  # the campaign: every member mailed (rendering needs the contacts)
        mail_everyone(connection, settings, QUARTER)
    return Club(settings, engine, model, previous, segmentation, plans)
