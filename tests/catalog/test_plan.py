"""The catalog plan as pure data: quotas, author cap, each title once, promotions,
exclusions, new releases, reproducibility."""

from __future__ import annotations

from collections import Counter

import pytest

from catalog.plan import Candidate, CatalogPlan, PlanRules, build_plan

SECTIONS = {"B": "B 哲学、宗教", "I": "I 文学", "K": "K 历史、地理", "T": "T 工业技术"}


def _club() -> tuple[list[Candidate], dict[str, float]]:
    """20 titles per section; 5 authors per section; every 4th title new; a known score order."""
    candidates, scores = [], {}
    for s, section in enumerate(SECTIONS):
        for i in range(20):
            title_id = f"{section}{i:02d}"
            candidates.append(Candidate(title_id, f"{section}-author{i % 5}", section, i % 4 == 0))
            scores[title_id] = 1.0 - i / 100 - s / 1000
    return candidates, scores


WEIGHTS = {"I": 0.6, "K": 0.25, "B": 0.1, "T": 0.05}


def _plan(rules: PlanRules, **kwargs: object) -> CatalogPlan:
    candidates, scores = _club()
    return build_plan(candidates, scores, WEIGHTS, SECTIONS, rules, **kwargs)  # type: ignore[arg-type]


def test_quotas_follow_affinity_within_min_and_max() -> None:
    plan = _plan(PlanRules(titles=40, max_per_author=10, min_per_section=4, max_per_section=20,
                           new_release_share=0))
    sizes = {s.code: len(s.entries) for s in plan.sections}
    assert sum(sizes.values()) == 40
    assert all(4 <= n <= 20 for n in sizes.values())
    assert sizes["I"] > sizes["K"] > sizes["B"] >= sizes["T"] == 4
    assert [s.code for s in plan.sections] == ["B", "I", "K", "T"]  # CLC order


def test_sections_beyond_what_the_minimums_allow_are_left_out() -> None:
    plan = _plan(PlanRules(titles=8, min_per_section=4, max_per_section=8, new_release_share=0))
    assert [s.code for s in plan.sections] == ["I", "K"]  # the segment's two strongest


def test_at_most_m_titles_per_author_and_each_title_once() -> None:
    plan = _plan(PlanRules(titles=40, max_per_author=2, min_per_section=4, max_per_section=20))
    authors = Counter(tid[0] + str(int(tid[1:]) % 5) for tid in plan.title_ids)
    assert max(authors.values()) <= 2
    assert len(plan.title_ids) == len(set(plan.title_ids)) == 40  # others fill the capped places


def test_promotions_are_included_and_exclusions_never() -> None:
    plan = _plan(
        PlanRules(titles=24, max_per_author=3, min_per_section=4, max_per_section=12),
        must_include=["T19", "B18", "NOPE", "I03"],
        exclude=["I00", "I01", "I03"],
    )
    ids = set(plan.title_ids)
    assert {"T19", "B18"} <= ids  # the worst-scored titles, there because promoted
    assert not ids & {"I00", "I01", "I03"}
    promoted = {e.title_id for s in plan.sections for e in s.entries if e.promoted}
    assert promoted == {"T19", "B18"}
    assert dict(plan.dropped) == {
        "I03": "promoted but out of stock or excluded",
        "NOPE": "promoted but not in this quarter's titles",
    }


def test_out_of_stock_titles_are_excluded() -> None:
    candidates, scores = _club()
    candidates = [Candidate(c.title_id, c.author, c.section, c.is_new, in_stock=c.title_id != "I00")
                  for c in candidates]
    plan = build_plan(candidates, scores, WEIGHTS, SECTIONS, PlanRules(titles=20))
    assert "I00" not in plan.title_ids and "I01" in plan.title_ids


def _new(plan: CatalogPlan) -> int:
    return sum(e.is_new for s in plan.sections for e in s.entries)


def test_new_release_share_is_met() -> None:
    rules = PlanRules(titles=40, max_per_author=10, min_per_section=4, max_per_section=20,
                      new_release_share=0.3)
    assert _new(_plan(rules)) >= 12
    # Every new title that fits: 5 per section, but T's quota is 4 → 19.
    assert _new(_plan(PlanRules(**{**rules.__dict__, "new_release_share": 1.0}))) == 19


def test_titles_are_ordered_by_score_within_sections() -> None:
    plan = _plan(PlanRules(titles=40))
    for section in plan.sections:
        scores = [e.score for e in section.entries]
        assert scores == sorted(scores, reverse=True)


def test_plan_is_reproducible_and_survives_json() -> None:
    rules = PlanRules(titles=30, max_per_author=2)
    first = _plan(rules, quarter="2026Q4", segment=1, model_version="v1", settings_digest="abc")
    second = _plan(rules, quarter="2026Q4", segment=1, model_version="v1", settings_digest="abc")
    assert first.to_json() == second.to_json()
    assert CatalogPlan.from_json(first.to_json()) == first


def test_a_small_club_gives_a_smaller_catalog_not_an_error() -> None:
    candidates, scores = _club()
    plan = build_plan(candidates[:6], scores, WEIGHTS, SECTIONS, PlanRules(titles=120))
    assert len(plan.title_ids) == 6


@pytest.mark.parametrize("titles", [4, 17, 60, 80])
def test_catalog_size_is_exact_when_there_are_enough_titles(titles: int) -> None:
    plan = _plan(PlanRules(titles=titles, max_per_author=4, min_per_section=1, max_per_section=20))
    assert len(plan.title_ids) == titles


def test_sections_left_out_for_their_minimum_fill_places_still_free() -> None:
    # two sections of 4 titles and a minimum of 4: both minimums do not fit in 5 places,
    # so the weaker section gives its best title rather than leaving the catalog short
    candidates = [Candidate(f"{s}{i}", f"{s}-a{i}", s, False) for s in ("I", "K") for i in range(4)]
    scores = {c.title_id: 1.0 - int(c.title_id[1:]) / 10 for c in candidates}
    rules = PlanRules(titles=5, min_per_section=4, max_per_section=8, new_release_share=0)
    plan = build_plan(candidates, scores, {"I": 0.7, "K": 0.3}, SECTIONS, rules)
    assert len(plan.title_ids) == 5
    assert {s.code: [e.title_id for e in s.entries] for s in plan.sections} == {
        "I": ["I0", "I1", "I2", "I3"], "K": ["K0"]}
