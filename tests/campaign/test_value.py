"""Member lifetime value: summaries, BG/NBD and Gamma-Gamma likelihoods, fits, forecasts, edge cases."""

from __future__ import annotations

import json
import math
from collections import defaultdict

import numpy as np
import pytest
import scipy.special
from scipy import integrate, stats

from campaign import value
from campaign.value import (
    MODEL_NAME,
    BgNbdParams,
    GammaGammaParams,
    MemberValueModel,
    RfmSummary,
    bgnbd_conditional_expected_purchases,
    bgnbd_expected_purchases,
    bgnbd_log_likelihood,
    bgnbd_probability_alive,
    evaluate_forecast,
    fit_bgnbd,
    fit_gamma_gamma,
    fit_member_value,
    forecast_report,
    gamma_gamma_conditional_expected_value,
    gamma_gamma_log_likelihood,
    naive_rate_forecast,
    purchases_between,
    summarise,
)
from campaign.value_sim import exact_summary, simulate_purchases

# The CDNOW estimates of Fader, Hardie & Lee (2005), time in weeks, rounded to three decimals.
CDNOW = BgNbdParams(r=0.243, alpha=4.414, a=0.793, b=2.426)
CDNOW_SPEND = GammaGammaParams(p=6.25, q=3.74, v=15.44)
# The same purchase process with time in days, for the simulations.
TRUE_DAYS = BgNbdParams(r=0.24, alpha=4.41 * 7, a=0.79, b=2.43)
CUTOFF = 39 * 7.0
END = 78 * 7.0


def _truth() -> dict[str, float]:
    return {
        **dict(zip(BgNbdParams.NAMES, TRUE_DAYS.as_tuple(), strict=True)),
        **dict(zip(GammaGammaParams.NAMES, CDNOW_SPEND.as_tuple(), strict=True)),
    }


# ----------------------------------------------------------------------------- summarise


def test_summarise_counts_purchase_days_nets_returns_and_flags_members_without_purchases() -> None:
    lines = [
        # member 0: two lines on day 1 (one purchase day worth 15), a fully returned day 3,
        # a purchase on day 7, and one after the cutoff (ignored)
        (0, 1.2, 10.0),
        (0, 1.8, 5.0),
        (0, 3.5, 20.0),
        (0, 3.9, -20.0),
        (0, 7.0, 30.0),
        (0, 12.0, 8.0),
        # member 1: a single purchase
        (1, 4.0, 12.0),
        # member 2: only a return
        (2, 2.0, -5.0),
        # member 3: no lines at all
        # member 4: day 5 nets to 15, then day 9
        (4, 2.0, 10.0),
        (4, 5.1, 20.0),
        (4, 5.7, -5.0),
        (4, 9.0, 40.0),
        # member 5: a zero-amount line is not a purchase
        (5, 6.0, 0.0),
    ]
    member, day, amount = (np.array(c) for c in zip(*lines, strict=True))
    s = summarise(member.astype(np.int64), day, amount, n_members=6, cutoff_day=10.0)
    np.testing.assert_array_equal(s.frequency, [1, 0, 0, 0, 2, 0])
    np.testing.assert_array_equal(s.recency, [6.0, 0.0, 0.0, 0.0, 7.0, 0.0])
    np.testing.assert_array_equal(s.age, [9.0, 6.0, 0.0, 0.0, 8.0, 0.0])
    np.testing.assert_allclose(s.monetary, [30.0, 0.0, 0.0, 0.0, 27.5, 0.0])
    np.testing.assert_array_equal(s.has_purchase, [True, True, False, False, True, False])
    assert s.n_members == 6 and s.n_without_purchase == 3

    counts, spent = purchases_between(member.astype(np.int64), day, amount, 6, 10.0, 20.0)
    np.testing.assert_array_equal(counts, [1, 0, 0, 0, 0, 0])
    np.testing.assert_allclose(spent, [8.0, 0, 0, 0, 0, 0])


def _summarise_by_loop(
    member: np.ndarray, day: np.ndarray, amount: np.ndarray, n: int, cutoff: float
) -> list[tuple[int, float, float, float, bool]]:
    net: dict[int, dict[int, float]] = defaultdict(lambda: defaultdict(float))
    for i, t, a in zip(member.tolist(), day.tolist(), amount.tolist(), strict=True):
        if t < cutoff:
            net[i][math.floor(t)] += a
    out = []
    for i in range(n):
        days = sorted((d, v) for d, v in net[i].items() if v > 0)
        if not days:
            out.append((0, 0.0, 0.0, 0.0, False))
            continue
        x = len(days) - 1
        monetary = sum(v for _, v in days[1:]) / x if x else 0.0
        out.append((x, float(days[-1][0] - days[0][0]), cutoff - days[0][0], monetary, True))
    return out


def test_summarise_agrees_with_a_plain_loop_on_random_lines() -> None:
    rng = np.random.default_rng(3)
    n, lines = 300, 5000
    member = rng.integers(0, n, lines)
    day = rng.uniform(-20.0, 200.0, lines)
    amount = np.round(rng.normal(20.0, 15.0, lines), 2)  # about 10 % negative
    s = summarise(member, day, amount, n, 150.5)
    expected = _summarise_by_loop(member, day, amount, n, 150.5)
    np.testing.assert_array_equal(s.frequency, [e[0] for e in expected])
    np.testing.assert_allclose(s.recency, [e[1] for e in expected])
    np.testing.assert_allclose(s.age, [e[2] for e in expected])
    np.testing.assert_allclose(s.monetary, [e[3] for e in expected], rtol=1e-12)
    np.testing.assert_array_equal(s.has_purchase, [e[4] for e in expected])


@pytest.mark.parametrize(
    ("member", "day", "amount", "n", "match"),
    [
        ([], [], [], 3, "empty"),
        ([0, 1], [1.0], [2.0, 3.0], 3, "one length"),
        ([0, 3], [1.0, 2.0], [2.0, 3.0], 3, r"\[0, 3\)"),
        ([0, -1], [1.0, 2.0], [2.0, 3.0], 3, r"\[0, 3\)"),
        ([0.0, 1.0], [1.0, 2.0], [2.0, 3.0], 3, "integer"),
        ([0, 1], [1.0, math.nan], [2.0, 3.0], 3, "finite"),
        ([0, 1], [1.0, 2.0], [2.0, math.inf], 3, "finite"),
        ([0], [1.0], [2.0], 0, "n_members"),
    ],
)
def test_summarise_rejects_bad_input_with_a_clear_error(
    member: list[float], day: list[float], amount: list[float], n: int, match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        summarise(
            np.array(member, dtype=np.int64 if member and isinstance(member[0], int) else None),
            day,
            amount,
            n,
            10.0,
        )


# ----------------------------------------------------------------------------- BG/NBD formulas


def _bgnbd_likelihood_longhand(
    r: float, alpha: float, a: float, b: float, x: int, t_x: float, big_t: float
) -> float:
    """FHL (2005) eq. (6) term by term, with the Beta and Gamma functions as in the paper."""
    beta = math.gamma(a) * math.gamma(b) / math.gamma(a + b)
    beta_x = math.gamma(a) * math.gamma(b + x) / math.gamma(a + b + x)
    nbd = math.gamma(r + x) * math.pow(alpha, r) / math.gamma(r)
    alive = beta_x / beta * nbd / math.pow(alpha + big_t, r + x)
    if x == 0:
        return alive
    beta_dead = math.gamma(a + 1) * math.gamma(b + x - 1) / math.gamma(a + b + x)
    return alive + beta_dead / beta * nbd / math.pow(alpha + t_x, r + x)


def test_bgnbd_log_likelihood_of_the_cdnow_parameters_matches_the_paper_formula_written_out() -> None:
    # (x, t_x, T) in weeks, CDNOW-like customers: no repeat, a few repeats, a heavy buyer.
    data = [
        (0, 0.0, 38.86),
        (2, 30.43, 38.86),
        (1, 1.71, 38.86),
        (7, 29.43, 32.71),
        (0, 0.0, 27.0),
        (26, 35.14, 38.86),
    ]
    x, t_x, big_t = (np.array(c, dtype=float) for c in zip(*data, strict=True))
    ours = bgnbd_log_likelihood(CDNOW, x, t_x, big_t)
    longhand = [
        math.log(_bgnbd_likelihood_longhand(*CDNOW.as_tuple(), int(xi), ti, Ti)) for xi, ti, Ti in data
    ]
    np.testing.assert_allclose(ours, longhand, rtol=1e-10)
    assert ours.sum() == pytest.approx(sum(longhand), rel=1e-10)


def test_bgnbd_expectations_match_the_published_cdnow_figures() -> None:
    # Hardie's BG/NBD spreadsheet for CDNOW: E[X(t)] at these t (weeks), and the conditional
    # expectation for a customer with x = 2, t_x = 30.43, T = 38.86 over the next 39 weeks.
    # The parameters above are rounded to three decimals, hence the tolerance.
    t = np.array([0.1429, 1.0, 3.0, 31.8571, 32.0, 78.0])
    published = np.array([0.0078, 0.0532, 0.1506, 1.0405, 1.0437, 1.8576])
    np.testing.assert_allclose(bgnbd_expected_purchases(CDNOW, t), published, rtol=2.5e-3, atol=5e-5)
    conditional = bgnbd_conditional_expected_purchases(CDNOW, 39.0, [2], [30.43], [38.86])
    assert conditional[0] == pytest.approx(1.226, abs=1e-3)


def test_conditional_expectation_is_eq9_for_a_member_just_acquired_and_grows_with_frequency() -> None:
    t = 39.0
    assert bgnbd_conditional_expected_purchases(CDNOW, t, [0], [0.0], [0.0])[0] == pytest.approx(
        bgnbd_expected_purchases(CDNOW, t)[0], rel=1e-12
    )
    x = np.arange(0, 30)
    e = bgnbd_conditional_expected_purchases(CDNOW, t, x, np.where(x > 0, 30.0, 0.0), np.full(30, 32.0))
    assert np.all(np.diff(e[1:]) > 0)
    # Members without repeat purchases: the longer the silence, the fewer purchases expected.
    silent = bgnbd_conditional_expected_purchases(
        CDNOW, t, np.zeros(5), np.zeros(5), [1.0, 5.0, 10.0, 20.0, 40.0]
    )
    assert np.all(np.diff(silent) < 0) and np.all(silent > 0)


def _untransformed_eq10(p: BgNbdParams, t: float, x: float, t_x: float, big_t: float) -> float:
    r, alpha, a, b = p.as_tuple()
    with np.errstate(all="ignore"):
        hyp = scipy.special.hyp2f1(r + x, b + x, a + b + x - 1, t / (alpha + big_t + t))
        numerator = (a + b + x - 1) / (a - 1) * (1 - ((alpha + big_t) / (alpha + big_t + t)) ** (r + x) * hyp)
        denominator = 1 + (x > 0) * a / (b + max(x, 1) - 1) * ((alpha + big_t) / (alpha + t_x)) ** (r + x)
        return float(numerator / denominator)


def test_conditional_expectation_matches_the_mixture_integral_and_survives_large_arguments() -> None:
    cases = [  # (x, t_x, T, t): ordinary members, then heavy buyers with a short history and long horizons
        (0, 0.0, 10.0, 39.0),
        (3, 20.0, 30.0, 39.0),
        (12, 35.0, 38.0, 100.0),
        (60, 5.0, 6.0, 500.0),
        (544, 0.04, 0.13, 1000.0),
        (2000, 1.0, 1.2, 5000.0),
    ]
    for x, t_x, big_t, t in cases:
        ours = bgnbd_conditional_expected_purchases(CDNOW, t, [x], [t_x], [big_t])[0]
        p_alive = bgnbd_probability_alive(CDNOW, [x], [t_x], [big_t])[0]
        integral = p_alive * value._mixture_integral(*CDNOW.as_tuple(), t, float(x), big_t)
        assert math.isfinite(ours) and ours >= 0
        assert ours == pytest.approx(integral, rel=1e-6, abs=1e-300), (x, t_x, big_t, t)
        untransformed = _untransformed_eq10(CDNOW, t, x, t_x, big_t)
        if math.isfinite(untransformed) and x < 50:
            assert ours == pytest.approx(untransformed, rel=1e-8)
    # The textbook form breaks down there; the guarded one does not.
    assert not math.isfinite(_untransformed_eq10(CDNOW, 1000.0, 544, 0.04, 0.13))


def test_conditional_expectation_falls_back_to_the_integral_when_hyp2f1_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    x = np.array([0.0, 2.0, 7.0, 26.0])
    t_x = np.array([0.0, 30.43, 29.43, 35.14])
    big_t = np.array([38.86, 38.86, 32.71, 38.86])
    good = bgnbd_conditional_expected_purchases(CDNOW, 39.0, x, t_x, big_t)
    monkeypatch.setattr(scipy.special, "hyp2f1", lambda *args: np.full(np.shape(args[-1]), np.nan))
    fallback = bgnbd_conditional_expected_purchases(CDNOW, 39.0, x, t_x, big_t)
    np.testing.assert_allclose(fallback, good, rtol=1e-6)


def test_conditional_expectation_is_continuous_through_a_equal_one() -> None:
    x, t_x, big_t = np.array([0.0, 3.0]), np.array([0.0, 20.0]), np.array([25.0, 30.0])

    def at(a: float) -> np.ndarray:
        return bgnbd_conditional_expected_purchases(BgNbdParams(0.5, 5.0, a, 2.0), 40.0, x, t_x, big_t)

    exact_one = at(1.0)
    assert np.all(np.isfinite(exact_one))
    np.testing.assert_allclose(exact_one, (at(1.001) + at(0.999)) / 2, rtol=1e-6)
    np.testing.assert_allclose(at(1.0 + 3e-7), exact_one, rtol=1e-6)


def test_probability_alive_follows_its_formula() -> None:
    r, alpha, a, b = CDNOW.as_tuple()
    x, t_x, big_t = 2, 30.43, 38.86
    longhand = 1 / (1 + a / (b + x - 1) * ((alpha + big_t) / (alpha + t_x)) ** (r + x))
    got = bgnbd_probability_alive(CDNOW, [x, 0, 500], [t_x, 0.0, 1.0], [big_t, 10.0, 300.0])
    assert got[0] == pytest.approx(longhand, rel=1e-12)
    assert got[1] == 1.0  # no repeat purchase: the BG/NBD member cannot have dropped out
    assert 0.0 <= got[2] < 1e-100  # 500 purchases, then 299 silent days: gone (no overflow)


def test_bgnbd_gradient_matches_finite_differences() -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 10, 200).astype(float)
    big_t = rng.uniform(1, 40, 200)
    t_x = np.where(x > 0, rng.uniform(0, 1, 200) * big_t, 0.0)
    theta = np.log(np.array(CDNOW.as_tuple()))
    _, grad = value._bgnbd_ll_and_grad(theta, x, t_x, big_t, want_grad=True)
    assert grad is not None
    for j in range(4):
        step = np.zeros(4)
        step[j] = 1e-6
        plus = value._bgnbd_ll_and_grad(theta + step, x, t_x, big_t, want_grad=False)[0].sum()
        minus = value._bgnbd_ll_and_grad(theta - step, x, t_x, big_t, want_grad=False)[0].sum()
        assert grad[j].sum() == pytest.approx((plus - minus) / 2e-6, rel=1e-5)


# ----------------------------------------------------------------------------- Gamma-Gamma formulas


def test_gamma_gamma_likelihood_is_the_mixture_of_gammas() -> None:
    p, q, v = CDNOW_SPEND.as_tuple()
    for x, m in [(1, 20.0), (3, 35.5), (10, 12.0)]:
        # The mean of x Gamma(p, rate ν) spends is Gamma(px, rate xν); ν ~ Gamma(q, rate v).
        def joint(nu: float, x: int = x, m: float = m) -> float:
            return float(stats.gamma.pdf(m, p * x, scale=1 / (x * nu)) * stats.gamma.pdf(nu, q, scale=1 / v))

        density, _ = integrate.quad(joint, 0, np.inf, limit=200)
        ours = gamma_gamma_log_likelihood(CDNOW_SPEND, [x], [m])[0]
        assert ours == pytest.approx(math.log(density), rel=1e-7)


def test_gamma_gamma_conditional_value_shrinks_towards_the_population_mean() -> None:
    p, q, v = CDNOW_SPEND.as_tuple()
    population = p * v / (q - 1)
    got = gamma_gamma_conditional_expected_value(CDNOW_SPEND, [0, 1, 5, 1000], [0.0, 60.0, 60.0, 60.0])
    assert got[0] == pytest.approx(population)
    weight = p * 1 / (p * 1 + q - 1)
    assert got[1] == pytest.approx((1 - weight) * population + weight * 60.0)
    assert population < got[1] < got[2] < got[3] < 60.0 and got[3] == pytest.approx(60.0, rel=1e-3)


# ----------------------------------------------------------------------------- fitting on simulated data


def test_parameters_are_recovered_within_their_95_percent_intervals() -> None:
    sim = simulate_purchases(10_000, TRUE_DAYS, CDNOW_SPEND, end_day=CUTOFF, acquisition_days=84.0, seed=1)
    model = fit_member_value(exact_summary(sim, CUTOFF))
    assert model.purchases.converged and model.spend.converged
    assert not model.purchases.warnings and not model.spend.warnings
    estimates = {**model.purchases.estimates, **model.spend.estimates}
    for name, truth in _truth().items():
        e = estimates[name]
        assert e.contains(truth), f"{name}: {truth} outside [{e.lower:.4g}, {e.upper:.4g}]"
        assert e.lower < e.value < e.upper
        assert e.upper / e.lower < 2.0, f"{name}: interval [{e.lower:.4g}, {e.upper:.4g}] is too wide"
        assert e.standard_error > 0


def test_intervals_cover_the_truth_about_95_percent_of_the_time() -> None:
    truth = _truth()
    runs = 100
    covered = dict.fromkeys(truth, 0)
    for seed in range(runs):
        sim = simulate_purchases(2_000, TRUE_DAYS, CDNOW_SPEND, end_day=CUTOFF, seed=5000 + seed)
        model = fit_member_value(exact_summary(sim, CUTOFF))
        estimates = {**model.purchases.estimates, **model.spend.estimates}
        for name, true_value in truth.items():
            covered[name] += estimates[name].contains(true_value)
    # Binomial(100, 0.95): 85 is 4.6 standard deviations below the mean.
    for name, n in covered.items():
        assert 85 <= n <= 100, f"{name}: the interval covered the truth {n} times in {runs}"


def test_holdout_forecast_is_within_ten_percent_and_beats_the_naive_baseline() -> None:
    sim = simulate_purchases(20_000, TRUE_DAYS, CDNOW_SPEND, end_day=END, acquisition_days=84.0, seed=7)
    args = (sim.member_index, sim.purchased_at_days, sim.amount, sim.n_members)
    summary = summarise(*args, CUTOFF)
    model = fit_member_value(summary)
    horizon = END - CUTOFF
    actual, actual_value = purchases_between(*args, CUTOFF, END)
    purchases, expected_value = model.predict(summary, horizon)
    assert purchases.sum() == pytest.approx(actual.sum(), rel=0.10)
    assert expected_value.sum() == pytest.approx(actual_value.sum(), rel=0.10)
    report = forecast_report(model, summary, horizon, actual)
    assert report.members == 20_000 and report.actual_purchases == actual.sum()
    assert abs(report.relative_error) < 0.10
    assert report.mae < 0.9 * report.baseline_mae
    assert report.mae == pytest.approx(evaluate_forecast(purchases, actual))


def test_simulator_agrees_with_the_population_expectation() -> None:
    # Members all acquired at (almost) day 0 and followed for t days: mean repeat purchases = eq. (9).
    t = 365.0
    sim = simulate_purchases(100_000, TRUE_DAYS, CDNOW_SPEND, end_day=t, acquisition_days=1e-9, seed=11)
    observed = exact_summary(sim, t).frequency.mean()
    assert observed == pytest.approx(bgnbd_expected_purchases(TRUE_DAYS, t)[0], rel=0.03)
    again = simulate_purchases(100_000, TRUE_DAYS, CDNOW_SPEND, end_day=t, acquisition_days=1e-9, seed=11)
    np.testing.assert_array_equal(again.purchased_at_days, sim.purchased_at_days)


# ----------------------------------------------------------------------------- the model object


@pytest.fixture(scope="module")
def fitted() -> tuple[MemberValueModel, RfmSummary]:
    sim = simulate_purchases(5_000, TRUE_DAYS, CDNOW_SPEND, end_day=CUTOFF, seed=2)
    summary = summarise(sim.member_index, sim.purchased_at_days, sim.amount, sim.n_members + 3, CUTOFF)
    return fit_member_value(summary), summary


def test_members_without_a_purchase_get_population_level_predictions(
    fitted: tuple[MemberValueModel, RfmSummary],
) -> None:
    model, summary = fitted
    purchases, expected_value = model.predict(summary, 180.0)
    assert np.all(np.isfinite(purchases)) and np.all(np.isfinite(expected_value))
    flagged = ~summary.has_purchase
    assert flagged[-3:].all()  # the three members without lines
    population = bgnbd_expected_purchases(model.purchases.params, 180.0)[0]
    np.testing.assert_allclose(purchases[flagged], population, rtol=1e-12)
    np.testing.assert_allclose(
        expected_value[flagged], population * model.spend.params.population_mean, rtol=1e-12
    )
    np.testing.assert_array_equal(model.probability_alive(summary)[flagged], 1.0)
    no_repeat = summary.has_purchase & (summary.frequency == 0)
    assert no_repeat.sum() > 100
    assert np.all(purchases[no_repeat] > 0) and np.all(purchases[no_repeat] < population)


def test_to_json_has_the_model_params_and_intervals_and_round_trips(
    fitted: tuple[MemberValueModel, RfmSummary],
) -> None:
    model, summary = fitted
    data = json.loads(json.dumps(model.to_json()))
    assert data["model"] == MODEL_NAME == "bg/nbd+gamma-gamma"
    assert set(data["params"]) == {"r", "alpha", "a", "b", "p", "q", "v"}
    for name, (lo, hi) in data["intervals"].items():
        assert lo < data["params"][name] < hi
    again = MemberValueModel.from_json(data)
    for a, b in zip(model.predict(summary, 90.0), again.predict(summary, 90.0), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_q_at_most_one_values_members_at_their_own_or_the_pooled_mean(
    fitted: tuple[MemberValueModel, RfmSummary],
) -> None:
    model, summary = fitted
    spend = value.GammaGammaFit(GammaGammaParams(2.0, 0.8, 10.0), {}, 0.0, 1, True)
    heavy_tailed = MemberValueModel(model.purchases, spend, pooled_mean_spend=33.0)
    per_purchase = heavy_tailed.expected_average_value(summary)
    repeat = summary.has_purchase & (summary.frequency > 0)
    np.testing.assert_array_equal(per_purchase[repeat], summary.monetary[repeat])
    np.testing.assert_array_equal(per_purchase[~repeat], 33.0)


# ----------------------------------------------------------------------------- edge cases


def test_a_single_member_with_repeat_purchases_is_fitted_with_warnings_and_finite_predictions() -> None:
    summary = summarise(
        np.zeros(4, dtype=np.int64), [1.0, 20.0, 41.0, 70.0], [10.0, 12.0, 8.0, 20.0], 1, 100.0
    )
    assert (summary.frequency[0], summary.recency[0], summary.age[0]) == (3, 69.0, 99.0)
    assert summary.monetary[0] == pytest.approx(40.0 / 3)
    model = fit_member_value(summary)
    purchases, expected_value = model.predict(summary, 99.0)
    assert np.isfinite(purchases[0]) and 0 < purchases[0] < 10
    assert expected_value[0] == pytest.approx(purchases[0] * 40.0 / 3, rel=1e-3)
    assert model.spend.warnings  # one member cannot identify three spend parameters
    json.dumps(model.to_json())  # unidentified intervals are null, not NaN


def test_a_history_of_one_purchase_summarises_but_cannot_be_fitted() -> None:
    summary = summarise(np.array([2]), [5.5], [19.9], 3, 30.0)
    np.testing.assert_array_equal(summary.has_purchase, [False, False, True])
    assert (summary.frequency[2], summary.recency[2], summary.age[2], summary.monetary[2]) == (
        0,
        0.0,
        25.0,
        0.0,
    )
    with pytest.raises(ValueError, match="repeat purchase"):
        fit_member_value(summary)


def test_members_with_no_repeat_purchases_only_cannot_be_fitted() -> None:
    member = np.arange(50, dtype=np.int64)
    summary = summarise(member, np.linspace(0, 40, 50), np.full(50, 10.0), 50, 60.0)
    assert summary.frequency.sum() == 0
    with pytest.raises(ValueError, match="repeat purchase"):
        fit_bgnbd(summary)
    with pytest.raises(ValueError, match="repeat purchase"):
        fit_gamma_gamma(summary)


def test_all_zero_amounts_mean_no_purchases_and_a_clear_error() -> None:
    member = np.repeat(np.arange(10, dtype=np.int64), 3)
    summary = summarise(member, np.tile([1.0, 5.0, 9.0], 10), np.zeros(30), 10, 20.0)
    assert summary.n_without_purchase == 10
    with pytest.raises(ValueError, match="no member has a purchase"):
        fit_member_value(summary)


def test_summary_from_arrays_validates() -> None:
    s = RfmSummary.from_arrays([0, 2], [0.0, 5.0], [3.0, 9.0], [0.0, 12.5])
    assert s.has_purchase.all() and s.monetary[1] == 12.5
    with pytest.raises(ValueError, match="recency"):
        RfmSummary.from_arrays([1], [10.0], [5.0], [3.0])
    with pytest.raises(ValueError, match="monetary"):
        RfmSummary.from_arrays([1], [1.0], [5.0], [0.0])
    with pytest.raises(ValueError, match="whole"):
        RfmSummary.from_arrays([1.5], [1.0], [5.0], [2.0])


# ----------------------------------------------------------------------------- evaluation


def test_evaluate_forecast_and_the_naive_baseline() -> None:
    assert evaluate_forecast([1.0, 2.0, 0.5], [0, 4, 0.5]) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        evaluate_forecast([1.0], [1.0, 2.0])
    with pytest.raises(ValueError):
        evaluate_forecast([], [])
    summary = RfmSummary(
        frequency=np.array([4, 0, 0]),
        recency=np.array([80.0, 0.0, 0.0]),
        age=np.array([100.0, 50.0, 0.0]),
        monetary=np.array([10.0, 0.0, 0.0]),
        has_purchase=np.array([True, True, False]),
        cutoff_day=100.0,
    )
    np.testing.assert_allclose(naive_rate_forecast(summary, 50.0), [2.0, 0.0, 0.0])
