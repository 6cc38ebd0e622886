"""Plans for the demo club, scored by the trained model: stored and reproducible."""

from __future__ import annotations

from collections import Counter

from catalog.period import Quarter
from catalog.planning import plan_quarter, section_of, sections_to_split, stored_plans
from catalog.segments import SegmentProfile
from recsys.storage.categories import CategoryNode
from recsys.storage.titles import titles_for_quarter
from tests.catalog.conftest import QUARTER, Club


def test_a_plan_per_segment_with_each_title_once(club: Club) -> None:
    assert [p.segment for p in club.plans] == [0, 1, 2]
    with club.engine.connect() as connection:
        titles = {t.title_id: t for t in titles_for_quarter(connection, Quarter.parse(QUARTER).end)}
    for plan in club.plans:
        ids = plan.title_ids
        assert len(ids) == len(set(ids)) == 16
        assert all(titles[t].in_stock for t in ids)
        authors = Counter(titles[t].author for t in ids)
        assert max(authors.values()) <= 2
        codes = [s.code for s in plan.sections]
        assert codes == sorted(codes)  # CLC order
        assert plan.model_version == club.model.version


def test_plans_differ_by_segment(club: Club) -> None:
    first_sections = [tuple(s.code for s in p.sections[:1]) for p in club.plans]
    assert len({tuple(p.title_ids) for p in club.plans}) == 3, first_sections


def test_plans_are_stored_and_reproducible(club: Club) -> None:
    with club.engine.connect() as connection:
        stored = stored_plans(connection, QUARTER)
    assert [p.to_json() for p in stored] == [p.to_json() for p in club.plans]
    with club.engine.begin() as connection:
        again = plan_quarter(connection, club.model, club.settings, QUARTER)
    assert [p.to_json() for p in again] == [p.to_json() for p in club.plans]


def test_new_releases_unknown_to_the_model_are_planned(club: Club) -> None:
    new = [e for p in club.plans for s in p.sections for e in s.entries if e.is_new]
    assert new, "no new release in any plan"


def test_an_oversized_section_is_split_one_level_down() -> None:
    tree = {
        "I": CategoryNode("I", "文学", None, 1),
        "I2": CategoryNode("I2", "中国文学", "I", 2),
        "I247": CategoryNode("I247", "小说", "I2", 3),
        "K": CategoryNode("K", "历史、地理", None, 1),
    }
    profile = SegmentProfile(0, "文学", 10, {}, 0.0, 0.0, [], {"I": 0.8, "K": 0.2, "I2": 0.5})
    split = sections_to_split(profile, tree, level=1, titles=120, largest=30)
    assert split == {"I"}
    assert section_of("I247", tree, 1, split) == "I2"
    assert section_of("I247", tree, 1) == "I"
    assert section_of("K", tree, 1, split) == "K"
    assert section_of(None, tree, 1) == "~"
