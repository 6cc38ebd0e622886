"""Segmentation of the demo club: stored per quarter, profiled, stable across quarters."""

from __future__ import annotations

import numpy as np
from sqlalchemy import func, select

from catalog.rfm import pareto_check
from catalog.segments import stored_profiles
from recsys.storage import segments as segments_db
from recsys.storage.schema import MemberSegment, Segment
from tests.catalog.conftest import PREVIOUS, QUARTER, Club


def test_every_member_gets_a_tier_and_a_segment(club: Club) -> None:
    result = club.segmentation
    with club.engine.connect() as connection:
        stored = connection.execute(
            select(func.count()).select_from(MemberSegment).where(MemberSegment.quarter == QUARTER)
        ).scalar_one()
        tiers = {tier: n for tier, n in connection.execute(
            select(MemberSegment.tier, func.count()).where(MemberSegment.quarter == QUARTER)
            .group_by(MemberSegment.tier)
        )}
    assert stored == result.members == sum(p.size for p in result.profiles)
    assert tiers == result.tier_counts
    assert set(tiers) <= {"core", "regular", "occasional", "lapsed"}
    assert [p.segment for p in result.profiles] == [0, 1, 2]


def test_profiles_are_readable_and_stored(club: Club) -> None:
    with club.engine.connect() as connection:
        profiles = stored_profiles(connection, QUARTER)
        names = [n for (n,) in connection.execute(select(Segment.name).where(Segment.quarter == QUARTER))]
    assert profiles == club.segmentation.profiles
    assert len(set(names)) == len(names) == 3
    for profile in profiles:
        assert profile.name and all("\u4e00" <= ch <= "\u9fff" or ch in " ·()0123456789" for ch in profile.name)
        assert profile.top_categories and profile.top_categories[0].name  # CLC names
        assert sum(profile.tier_mix.values()) == profile.size
        assert profile.typical_titles and profile.typical_titles[0]["copies"] > 0
        assert profile.average_spend >= 0


def test_the_80_20_figure_matches_the_stored_spend(club: Club) -> None:
    with club.engine.connect() as connection:
        spend = np.array([m for (m,) in connection.execute(
            select(MemberSegment.monetary).where(MemberSegment.quarter == QUARTER))])
    check = pareto_check(spend)
    assert club.segmentation.pareto.top_share_of_buyers == check.top_share_of_buyers
    assert 0.2 < check.top_share_of_buyers <= 1.0


def test_segments_keep_their_labels_from_one_quarter_to_the_next(club: Club) -> None:
    # Same model, one quarter on: the clusters are the same groups of members,
    # so alignment must give every member last quarter's label.
    with club.engine.connect() as connection:
        before = segments_db.member_segment_labels(connection, PREVIOUS)
        after = segments_db.member_segment_labels(connection, QUARTER)
    assert club.segmentation.compared == len(before) > 0
    moved = sum(before[m] != after[m] for m in before if m in after)
    assert moved == club.segmentation.moved
    assert moved <= 0.05 * len(before)
