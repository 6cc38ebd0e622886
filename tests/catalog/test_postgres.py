"""Segments and plans on PostgreSQL give what they give on SQLite for the same club and model."""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
from sqlalchemy import Engine

from catalog.planning import plan_quarter, stored_plans
from catalog.segments import segment_quarter
from demo.generate import DemoSpec
from demo.load import load_demo
from recsys.storage.purchases import rfm_aggregates
from recsys.storage.segments import member_segment_labels, segments_of_quarter
from tests.catalog.conftest import QUARTER, Club
from tests.conftest import shared_data


def test_segments_and_plans_match_sqlite(club: Club, postgres_engine: Engine) -> None:
    spec = DemoSpec(members=300, titles=160, years=2, seed=5, end_date=dt.date(2026, 11, 20))
    load_demo(postgres_engine, spec, shared_data("clc", "clc_level1_2.csv"))
    as_of, since = dt.datetime(2026, 11, 21), dt.datetime(2024, 11, 21)
    with club.engine.connect() as lite, postgres_engine.connect() as pg:
        rfm_lite, rfm_pg = rfm_aggregates(lite, as_of, since), rfm_aggregates(pg, as_of, since)
    for name in (f.name for f in dataclasses.fields(rfm_lite)):
        left, right = getattr(rfm_lite, name), getattr(rfm_pg, name)
        assert (left == right) if isinstance(left, list) else np.allclose(left, right), name

    with postgres_engine.begin() as connection:
        result = segment_quarter(connection, club.model, club.settings.segments, QUARTER)
    assert result.tier_counts == club.segmentation.tier_counts
    assert [p.size for p in result.profiles] == [p.size for p in club.segmentation.profiles]
    with postgres_engine.connect() as connection:
        labels = member_segment_labels(connection, QUARTER)
        stored = segments_of_quarter(connection, QUARTER)
    with club.engine.connect() as connection:
        assert labels == member_segment_labels(connection, QUARTER)
    assert len(stored) == len(result.profiles)

    with postgres_engine.begin() as connection:
        plans = plan_quarter(connection, club.model, club.settings, QUARTER)
    assert [p.title_ids for p in plans] == [p.title_ids for p in club.plans]
    with postgres_engine.connect() as connection:
        assert [p.title_ids for p in stored_plans(connection, QUARTER)] == [p.title_ids for p in plans]
