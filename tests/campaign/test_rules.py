"""Contact rules and suppression: examples, and Hypothesis looking for a plan that breaks a rule."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from campaign.rules import (
    NO_END,
    ContactHistory,
    ContactRules,
    FrequencyCap,
    MailOption,
    QuietPeriod,
    Spacing,
    SuppressionList,
    eligibility,
    scope_of,
    violations,
)

IN_HOME = dt.date(2026, 10, 1)
DAY = IN_HOME.toordinal()
OPTIONS = (MailOption("catalog", "C1"), MailOption("postcard", "P1"), MailOption("email", "E1"))
KIND_CODES = {"catalog": "C0", "postcard": "P0", "email": "E0"}


def history(*pieces: tuple[int, int, str]) -> ContactHistory:
    """(member, days from the in-home date, kind) → a history with the kind's old edition code."""
    return ContactHistory(
        np.array([p[0] for p in pieces], dtype=np.int64),
        np.array([DAY + p[1] for p in pieces], dtype=np.int64),
        [p[2] for p in pieces],
        [KIND_CODES[p[2]] for p in pieces],
    )


def suppressions(*entries: tuple[int, str, int, int | None]) -> SuppressionList:
    """(member, reason, start offset, end offset or None) with the reason's default scope."""
    return SuppressionList(
        np.array([e[0] for e in entries], dtype=np.int64),
        [e[1] for e in entries],
        [scope_of(e[1]) for e in entries],
        np.array([DAY + e[2] for e in entries], dtype=np.int64),
        np.array([NO_END if e[3] is None else DAY + e[3] for e in entries], dtype=np.int64),
    )


def allowed(n: int, rules: ContactRules, hist: ContactHistory, supp: SuppressionList, **kw: object) -> np.ndarray:
    return eligibility(n, OPTIONS, IN_HOME, rules, hist, supp, **kw).allowed  # type: ignore[arg-type]


def test_suppression_scopes_dates_and_the_members_own_record() -> None:
    supp = suppressions((0, "deceased", -400, None), (1, "moved", -10, 20), (2, "do_not_email", -1, None),
                        (3, "bad_address", 1, None), (4, "do_not_mail", -30, 0))  # fmt: skip
    got = allowed(7, ContactRules(), ContactHistory.empty(), supp,
                  closed=np.array([0, 0, 0, 0, 0, 1, 0], bool), no_address=np.array([0, 0, 0, 0, 0, 0, 1], bool))
    assert got.tolist() == [
        [False, False, False],  # deceased: nothing
        [False, False, True],  # moved, still: e-mail only
        [True, True, False],  # asked for no e-mail
        [True, True, True],  # bad address from tomorrow
        [True, True, True],  # do-not-mail ended on the in-home day (ends exclusive)
        [False, False, False],  # closed
        [False, False, True],  # no postal address
    ]
    result = eligibility(7, OPTIONS, IN_HOME, ContactRules(), ContactHistory.empty(), supp,
                         closed=np.array([0, 0, 0, 0, 0, 1, 0], bool))  # fmt: skip
    assert result.member_reason()[0] == "suppressed: deceased"
    assert result.counts()["suppressed: moved"] == {"pairs": 2, "members": 0}
    with pytest.raises(ValueError, match="unknown suppression reason"):
        scope_of("on holiday")


def test_quiet_periods_absolute_and_yearly_across_new_year() -> None:
    winter = QuietPeriod("12-20", "01-05")
    assert winter.contains(dt.date(2026, 12, 31)) and winter.contains(dt.date(2027, 1, 5))
    assert not winter.contains(dt.date(2027, 1, 6)) and not winter.contains(dt.date(2026, 12, 19))
    rules = ContactRules(quiet=(QuietPeriod("2026-09-28", "2026-10-02", frozenset({"catalog"})),))
    assert allowed(1, rules, ContactHistory.empty(), SuppressionList.empty()).tolist() == [[False, True, True]]
    with pytest.raises(ValueError):
        QuietPeriod("12-20", "2027-01-05")
    with pytest.raises(ValueError):
        QuietPeriod("2026-10-02", "2026-10-01")


def test_spacing_counts_the_planned_piece_in_both_roles() -> None:
    rules = ContactRules(spacing=(Spacing("postcard", "catalog", 14),))
    hist = history((0, -13, "catalog"), (1, -14, "catalog"), (2, 5, "postcard"), (3, 14, "postcard"))
    got = allowed(4, rules, hist, SuppressionList.empty())
    assert got[:, 1].tolist() == [False, True, True, True]  # a postcard 13 days after a catalog: no
    assert got[:, 0].tolist() == [True, True, False, True]  # a catalog 5 days before a scheduled postcard: no
    by_code = ContactRules(spacing=(Spacing("E1", "C0", 7),))
    assert allowed(1, by_code, history((0, -3, "catalog")), SuppressionList.empty()).tolist() == [[True, True, False]]


def test_caps_count_pieces_in_any_window_containing_the_new_one() -> None:
    rules = ContactRules(caps=(FrequencyCap(2, 30, frozenset({"catalog", "postcard"})),))
    hist = history((0, -29, "catalog"), (1, -30, "catalog"), (1, -45, "postcard"), (2, -20, "email"),
                   (2, -10, "email"), (3, 20, "catalog"), (3, 25, "postcard"), (4, -29, "catalog"),
                   (4, 29, "catalog"))  # fmt: skip
    got = allowed(5, rules, hist, SuppressionList.empty())
    # member 0: one catalog inside the window → two with the new one, allowed
    # member 3: two pieces scheduled 20 and 25 days ahead → three in one window, not for post
    # member 4: pieces 29 days before and after: no 30-day window holds all three, allowed
    assert got.tolist() == [[True, True, True], [True, True, True], [True, True, True],
                            [False, False, True], [True, True, True]]  # fmt: skip
    one = ContactRules(caps=(FrequencyCap(1, 30),))
    assert allowed(1, one, history((0, -3, "email")), SuppressionList.empty()).tolist() == [[False, False, False]]


# ----------------------------------------------------------------------------- properties

LABELS = [*KIND_CODES, *KIND_CODES.values(), *(o.code for o in OPTIONS)]


@st.composite
def worlds(draw: st.DrawFn) -> dict[str, object]:
    n = draw(st.integers(1, 8))
    pieces = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(-120, 60),
                                     st.sampled_from(sorted(KIND_CODES))), max_size=20))  # fmt: skip
    kinds = st.frozensets(st.sampled_from(sorted(KIND_CODES)), max_size=2)
    caps = draw(st.lists(st.builds(FrequencyCap, st.integers(1, 3), st.integers(1, 120), kinds), max_size=2))
    spacing = draw(st.lists(st.builds(Spacing, st.sampled_from(LABELS), st.sampled_from(LABELS),
                                      st.integers(1, 60)), max_size=2))  # fmt: skip
    quiet = []
    for offset, length, kind_set, yearly in draw(
        st.lists(st.tuples(st.integers(-10, 10), st.integers(0, 10), kinds, st.booleans()), max_size=2)
    ):
        a, b = IN_HOME + dt.timedelta(days=offset), IN_HOME + dt.timedelta(days=offset + length)
        fmt = "%m-%d" if yearly else "%Y-%m-%d"
        quiet.append(QuietPeriod(a.strftime(fmt), b.strftime(fmt), kind_set))
    entries = draw(st.lists(st.tuples(st.integers(0, n - 1), st.sampled_from(["deceased", "moved", "do_not_mail",
                                                                              "do_not_email", "bad_address"]),
                                      st.integers(-50, 5), st.one_of(st.none(), st.integers(-5, 50))),
                            max_size=4))  # fmt: skip
    return {
        "n": n,
        "rules": ContactRules(tuple(caps), tuple(quiet), tuple(spacing)),
        "history": history(*pieces),
        "suppressions": suppressions(*entries),
        "closed": draw(st.lists(st.booleans(), min_size=n, max_size=n)),
        "no_address": draw(st.lists(st.booleans(), min_size=n, max_size=n)),
    }


@settings(max_examples=300, deadline=None)
@given(worlds())
def test_an_option_is_allowed_exactly_when_sending_it_breaks_no_rule(world: dict) -> None:
    n = world["n"]
    result = eligibility(
        n, OPTIONS, IN_HOME, world["rules"], world["history"], world["suppressions"],
        closed=np.array(world["closed"]), no_address=np.array(world["no_address"]),
    )  # fmt: skip
    for member in range(n):
        for j in range(len(OPTIONS)):
            chosen = [-1] * n
            chosen[member] = j
            broken = violations(
                chosen, OPTIONS, IN_HOME, world["rules"], world["history"], world["suppressions"],
                closed=world["closed"], no_address=world["no_address"],
            )  # fmt: skip
            assert bool(result.allowed[member, j]) == (not broken), (member, OPTIONS[j], broken)
            if broken:
                assert result.reasons[result.blocked_by[member, j]] in {v.rule for v in broken}


@settings(max_examples=200, deadline=None)
@given(worlds(), st.data())
def test_any_plan_built_from_the_allowed_options_breaks_no_rule(world: dict, data: st.DataObject) -> None:
    n = world["n"]
    result = eligibility(
        n, OPTIONS, IN_HOME, world["rules"], world["history"], world["suppressions"],
        closed=np.array(world["closed"]), no_address=np.array(world["no_address"]),
    )  # fmt: skip
    chosen = []
    for member in range(n):
        ok = [j for j in range(len(OPTIONS)) if result.allowed[member, j]]
        chosen.append(data.draw(st.sampled_from([-1, *ok])))
    assert violations(
        chosen, OPTIONS, IN_HOME, world["rules"], world["history"], world["suppressions"],
        closed=world["closed"], no_address=world["no_address"],
    ) == []  # fmt: skip
    reasons = result.member_reason()
    counts = result.counts()
    assert sum(c["members"] for c in counts.values()) == sum(r is not None for r in reasons)
