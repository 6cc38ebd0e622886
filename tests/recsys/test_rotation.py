"""Rotation on the one serving path: titles shown lately stay out when something close replaces
them, and come back when nothing does (recsys.serving.rotate, recommend_for_member)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import pytest

from recsys.serving import RecommendationQuery, make_shelf, recommend_for_member, rotate, scores_close
from recsys.storage.members import MemberSnapshot
from recsys.storage.titles import TitleRecord


def ranked(*pairs: tuple[str, float]) -> list[tuple[str, float]]:
    return list(pairs)


def ids(rows: Sequence[tuple[str, float]], kept: list[int] | None) -> list[str]:
    assert kept is not None
    return [rows[i][0] for i in kept]


def test_nothing_shown_is_the_ranking_cut_at_the_limit() -> None:
    rows = ranked(("A", 1.0), ("B", 0.9), ("C", 0.8))
    assert ids(rows, rotate(rows, (), 0.9, 2, complete=False)) == ["A", "B"]


def test_a_shown_title_is_replaced_by_an_unshown_one_that_scores_close() -> None:
    rows = ranked(("A", 1.0), ("B", 0.95), ("C", 0.5))
    # B scores 95 % of A (>= 90 %): A rotates out, B and then C fill the list
    assert ids(rows, rotate(rows, {"A"}, 0.9, 2, complete=True)) == ["B", "C"]


def test_a_shown_title_comes_back_when_nothing_scores_close() -> None:
    rows = ranked(("A", 1.0), ("B", 0.85), ("C", 0.5))
    # the best unshown title scores 85 % < 90 %: A keeps its place
    assert ids(rows, rotate(rows, {"A"}, 0.9, 2, complete=True)) == ["A", "B"]
    # with a looser tolerance (80 %) B is close enough and A rotates out
    assert ids(rows, rotate(rows, {"A"}, 0.8, 2, complete=True)) == ["B", "C"]


def test_each_dropped_title_needs_a_replacement_of_its_own() -> None:
    rows = ranked(("A", 1.0), ("B", 0.99), ("C", 0.95))
    # C can replace A or B, not both: A rotates out (the first met), B comes back
    assert ids(rows, rotate(rows, {"A", "B"}, 0.9, 2, complete=True)) == ["B", "C"]


def test_the_replacement_is_looked_for_below_the_shown_title_only() -> None:
    rows = ranked(("A", 1.0), ("B", 0.2), ("C", 0.19))
    # B shown: C scores 95 % of it, so C replaces B; A (not shown) stays first
    assert ids(rows, rotate(rows, {"B"}, 0.9, 2, complete=True)) == ["A", "C"]


def test_a_cut_ranking_asks_for_more_when_the_rule_needs_it() -> None:
    rows = ranked(("A", 1.0), ("B", 0.99))
    assert rotate(rows, {"A", "B"}, 0.9, 2, complete=False) is None
    assert ids(rows, rotate(rows, {"A", "B"}, 0.9, 2, complete=True)) == ["A", "B"]


@pytest.mark.parametrize(
    ("alternative", "score", "tolerance", "close"),
    [(0.9, 1.0, 0.9, True), (0.89, 1.0, 0.9, False), (-1.1, -1.0, 0.9, True), (-1.11, -1.0, 0.9, False),
     (1.0, 1.0, 1.0, True), (0.999, 1.0, 1.0, False)],
)
def test_scores_close_is_a_share_of_the_score(alternative: float, score: float, tolerance: float, close: bool) -> None:
    assert scores_close(alternative, score, tolerance) is close


# ---- through recommend_for_member ---------------------------------------------------------


@dataclass(frozen=True)
class Scored:
    title_id: str
    score: float
    reason: str = "r"
    reason_kind: str = "similar"
    because: tuple[str, ...] = ()
    reason_zh: str = "理由"


class FixedScores:
    """A model whose scores are given: the serving path's rules are what is tested."""

    version = "fixed"
    trained_until = dt.datetime(2026, 1, 1)

    def __init__(self, scores: dict[str, float]) -> None:
        self.scores = scores
        self.asked: list[int] = []

    def recommend(
        self,
        member_id: str,
        *,
        limit: int = 20,
        recent: Sequence[tuple[str, float]] = (),
        exclude_title_ids: Collection[str] = (),
        only_title_ids: Collection[str] | None = None,
        category: str | None = None,
        declared_categories: Sequence[str] = (),
    ) -> list[Scored]:
        self.asked.append(limit)
        allowed = [
            t for t in self.scores
            if t not in exclude_title_ids and (only_title_ids is None or t in only_title_ids)
        ]
        best = sorted(allowed, key=lambda t: -self.scores[t])[:limit]
        return [Scored(t, self.scores[t]) for t in best]

    def add_titles(self, titles: Sequence[tuple[str, Sequence[str]]]) -> None:
        return None


def _shelf(model: FixedScores, out_of_stock: Collection[str] = ()) -> object:
    details = {
        t: TitleRecord(t, t, None, 10.0, t not in out_of_stock, ("I",)) for t in model.scores
    }
    return make_shelf(model, details, ["I"])


def _ask(model: FixedScores, query: RecommendationQuery, out_of_stock: Collection[str] = ()) -> list[str]:
    snapshot = MemberSnapshot("M1", (), ())
    result = recommend_for_member(model, "M1", snapshot, query, shelf=_shelf(model, out_of_stock))  # type: ignore[arg-type]
    return [r.title_id for r, _record in result.items]


def test_the_serving_path_rotates_out_what_was_shown() -> None:
    model = FixedScores({"A": 1.0, "B": 0.97, "C": 0.95, "D": 0.94, "E": 0.5})
    assert _ask(model, RecommendationQuery(limit=3)) == ["A", "B", "C"]
    shown = RecommendationQuery(limit=3, rotate_out={"A", "B"}, rotation_tolerance=0.9)
    assert _ask(model, shown) == ["C", "D", "E"]  # A and B replaced by C and D, E fills the list


def test_the_serving_path_brings_a_shown_title_back_when_nothing_is_close() -> None:
    model = FixedScores({"A": 1.0, "B": 0.6, "C": 0.5})
    shown = RecommendationQuery(limit=2, rotate_out={"A"}, rotation_tolerance=0.9)
    assert _ask(model, shown) == ["A", "B"]


def test_an_out_of_stock_title_is_no_replacement() -> None:
    model = FixedScores({"A": 1.0, "B": 0.98, "C": 0.5})
    shown = RecommendationQuery(limit=2, rotate_out={"A"}, rotation_tolerance=0.9)
    assert _ask(model, shown, out_of_stock={"B"}) == ["A", "C"]


def test_the_serving_path_fetches_deeper_when_the_rule_needs_it() -> None:
    scores = {f"S{i:02d}": 1.0 - i * 0.001 for i in range(30)}
    scores |= {f"N{i:02d}": 0.95 - i * 0.001 for i in range(10)}
    model = FixedScores(scores)
    shown = RecommendationQuery(limit=5, rotate_out={f"S{i:02d}" for i in range(30)}, rotation_tolerance=0.9)
    got = _ask(model, shown)
    assert got == ["N00", "N01", "N02", "N03", "N04"]
