"""training.compare: the seeded stratified sample and the stored metrics of two versions."""

from __future__ import annotations

import random

from training.compare import metric_differences, simple_sample, stratified_sample


def test_the_sample_takes_at_most_per_cell_from_each_segment_and_tier_the_same_whatever_the_order() -> None:
    rows = [(f"M{n:03d}", n % 3, ("core", "lapsed")[n % 2]) for n in range(200)]
    sample = stratified_sample(rows, 5, seed=7)
    cells: dict[tuple[int, str], list[str]] = {}
    for m in sample:
        cells.setdefault((m.segment, m.tier), []).append(m.member_id)
    assert sorted(cells) == [(s, t) for s in range(3) for t in ("core", "lapsed")]
    assert all(len(ids) == 5 and ids == sorted(ids) for ids in cells.values())
    assert all((int(m.member_id[1:]) % 3, ("core", "lapsed")[int(m.member_id[1:]) % 2]) == (m.segment, m.tier) for m in sample)
    shuffled = rows[:]
    random.Random(1).shuffle(shuffled)
    assert stratified_sample(shuffled, 5, seed=7) == sample
    assert stratified_sample(rows, 5, seed=8) != sample
    small = stratified_sample(rows[:4], 5, seed=7)  # fewer than per_cell: all of them
    assert sorted(m.member_id for m in small) == ["M000", "M001", "M002", "M003"]
    assert simple_sample([r[0] for r in rows], 10, 3) == simple_sample([r[0] for r in reversed(rows)], 10, 3)
    assert len(set(simple_sample([r[0] for r in rows], 10, 3))) == 10


def _meta(cutoff: str, ndcg: float, low: float, high: float, paired: float | None) -> dict[str, object]:
    evaluation: dict[str, object] = {
        "cutoff": cutoff, "k": 20, "served": "als",
        "intervals": {"als": {"ndcg@20": [low, high]}, "popularity": {"ndcg@20": [0.0, 0.1]}},
        "differences": {},
    }  # fmt: skip
    if paired is not None:
        evaluation["differences"] = {"als": {"against": "popularity", "ndcg@20": {"mean": paired, "low": paired - 0.01, "high": paired + 0.01}}}
    return {"kind": "als", "metrics": {"ndcg@20": ndcg, "coverage@20": 0.5}, "evaluation": evaluation}


def test_metric_differences_read_each_versions_served_interval_and_paired_difference() -> None:
    rows = {r.metric: r for r in metric_differences(_meta("2026-01-01", 0.2, 0.15, 0.25, 0.05), _meta("2026-01-01", 0.3, 0.26, 0.34, None))}
    ndcg = rows["ndcg@20"]
    assert ndcg.a_interval == (0.15, 0.25) and ndcg.b_interval == (0.26, 0.34)
    assert abs((ndcg.difference or 0) - 0.1) < 1e-12 and ndcg.intervals_overlap is False
    assert ndcg.a_paired is not None and ndcg.a_paired.against == "popularity" and ndcg.b_paired is None
    cover = rows["coverage@20"]
    assert cover.difference == 0.0 and cover.a_interval is None and cover.intervals_overlap is None
    assert list(rows) == ["ndcg@20", "coverage@20"]
    old = {"metrics": {"ndcg@20": 0.1}}  # a version trained before evaluations stored intervals
    assert metric_differences(old, old)[0].a_interval is None


def test_the_paired_difference_is_against_popularity_when_the_evaluation_stored_it() -> None:
    meta = _meta("2026-01-01", 0.2, 0.15, 0.25, 0.05)  # best other: "popularity" in differences
    evaluation = meta["evaluation"]
    assert isinstance(evaluation, dict)
    evaluation["differences"]["als"]["against"] = "bpr"
    evaluation["versus_popularity"] = {"als": {"ndcg@20": {"mean": 0.08, "low": 0.06, "high": 0.1}}}
    row = metric_differences(meta, meta)[0]
    assert row.a_paired is not None and (row.a_paired.against, row.a_paired.mean) == ("popularity", 0.08)
    del evaluation["versus_popularity"]
    row = metric_differences(meta, meta)[0]
    assert row.a_paired is not None and (row.a_paired.against, row.a_paired.mean) == ("bpr", 0.05)
