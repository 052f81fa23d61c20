"""The pre-publication fairness check: p-values, fair draws pass, biased draws are caught.

Draws are simulated with numpy's exponential race (the same sampling as the
real lottery, without the hashing), on fixed seeds, so every run sees the
same draws.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from queue_service.draws import fairness
from queue_service.draws.chances import inclusion_chances
from queue_service.draws.fairness import (
    BiasReport,
    check_draw,
    check_groups,
    chi_square_p_value,
    expected_wins,
    is_suspicious,
    registration_time_deciles,
)
from queue_service.registration import Channel

DAY = 86_400.0
START = 1_790_000_000.0  # some epoch second in 2026
ENTRANTS, WINNERS = 20_000, 2_000


# --------------------------------------------------------------------------
# Helpers: simulated draws
# --------------------------------------------------------------------------


def weighted_draw(rng: np.random.Generator, weights: np.ndarray, winners: int) -> np.ndarray:
    """Who wins an exponential race of ``weights`` for ``winners`` slots."""
    keys = rng.exponential(size=weights.size) / weights
    won = np.zeros(weights.size, dtype=bool)
    won[np.argpartition(keys, winners)[:winners]] = True
    return won


def random_pool(seed: int, entrants: int = ENTRANTS):
    """Registration times over 30 days, 30 % assisted, weights 1..6 at random."""
    rng = np.random.default_rng(seed)
    joined_at = START + rng.uniform(0, 30 * DAY, entrants)
    channels = np.where(rng.random(entrants) < 0.3, "assisted", "online")
    weights = rng.integers(1, 7, entrants).astype(np.float64)
    return rng, joined_at, channels, weights


def aged_weights(joined_at: np.ndarray, aging: float = 0.5) -> np.ndarray:
    """weight = 1 + aging * draws_lost, with a weekly draw: older registrations weigh more."""
    draws_lost = np.floor((joined_at.max() - joined_at) / (7 * DAY))
    return 1.0 + aging * draws_lost


def report_named(reports: list[BiasReport], name: str) -> BiasReport:
    (report,) = [report for report in reports if report.test == name]
    return report


# --------------------------------------------------------------------------
# chi_square_p_value
# --------------------------------------------------------------------------


def closed_form_chi_square_tail(statistic: float, degrees: int) -> float:
    """The chi-square tail from its closed forms, as an independent reference.

    Even df: Q(n, x) = e^(-x) sum_{j<n} x^j / j!  (a Poisson tail).
    Odd df:  Q(n + 1/2, x) = erfc(sqrt x) + e^(-x) sum_{j<n} x^(j+1/2) / Gamma(j + 3/2).
    """
    x = statistic / 2.0
    if x == 0:
        return 1.0
    if degrees % 2 == 0:
        log_terms = [-x]
        for j in range(1, degrees // 2):
            log_terms.append(log_terms[-1] + math.log(x) - math.log(j))
        return math.fsum(math.exp(term) for term in log_terms)
    log_terms = [-x + 0.5 * math.log(x) - math.log(math.sqrt(math.pi) / 2.0)]
    for j in range(1, (degrees - 1) // 2):
        log_terms.append(log_terms[-1] + math.log(x) - math.log(j + 0.5))
    terms = [math.exp(term) for term in log_terms] if degrees > 1 else []
    return math.fsum([math.erfc(math.sqrt(x))] + terms)


@pytest.mark.parametrize(
    "statistic, degrees, expected",
    [
        # Printed quantiles of chi-square tables (rounded to 3 decimals there).
        (3.841, 1, 0.05),
        (6.635, 1, 0.01),
        (10.828, 1, 0.001),
        (5.991, 2, 0.05),
        (18.307, 10, 0.05),
        (23.209, 10, 0.01),
        (27.877, 9, 0.001),
        (124.342, 100, 0.05),
    ],
)
def test_p_values_match_printed_chi_square_tables(statistic, degrees, expected):
    assert chi_square_p_value(statistic, degrees) == pytest.approx(expected, rel=2e-3)


def test_p_values_at_the_edges():
    for degrees in (1, 2, 9, 100):
        assert chi_square_p_value(0.0, degrees) == 1.0
        assert chi_square_p_value(math.inf, degrees) == 0.0
    assert chi_square_p_value(2.0, 2) == pytest.approx(math.exp(-1.0), rel=1e-14)
    assert 0 < chi_square_p_value(500.0, 1) < 1e-100
    assert chi_square_p_value(1e4, 100) < 1e-300
    assert chi_square_p_value(1e-12, 1) == pytest.approx(1.0, abs=1e-6)
    assert chi_square_p_value(1e-12, 1) < 1.0


def test_p_values_match_the_closed_forms_to_1e10_relative():
    statistics = np.concatenate([np.linspace(0.0, 300.0, 301), np.geomspace(1e-6, 1e4, 120)])
    for degrees in range(1, 101):
        for statistic in statistics.tolist():
            reference = closed_form_chi_square_tail(statistic, degrees)
            value = chi_square_p_value(statistic, degrees)
            if reference > 1e-290:
                assert value == pytest.approx(reference, rel=1e-10, abs=0), (statistic, degrees)
            else:
                assert value < 1e-280, (statistic, degrees)


def test_p_values_decrease_with_the_statistic():
    for degrees in (1, 3, 10, 57):
        values = [chi_square_p_value(s, degrees) for s in np.linspace(0.0, 4.0 * degrees + 40.0, 400)]
        assert all(later <= earlier for earlier, later in zip(values, values[1:]))


def test_p_value_refuses_bad_input():
    with pytest.raises(ValueError, match="positive integer"):
        chi_square_p_value(1.0, 0)
    with pytest.raises(ValueError, match="positive integer"):
        chi_square_p_value(1.0, 2.5)
    with pytest.raises(ValueError, match="number"):
        chi_square_p_value(math.nan, 3)


# --------------------------------------------------------------------------
# expected_wins, deciles
# --------------------------------------------------------------------------


def test_expected_wins_are_the_chances_estimate():
    weights = np.array([1.0, 2.0, 3.0, 6.0] * 50)
    chances = expected_wins(weights, 20)
    np.testing.assert_array_equal(chances, inclusion_chances(weights, 20))
    assert chances.sum() == pytest.approx(20.0, rel=1e-9)
    assert np.all(np.diff(chances[:4]) > 0)
    np.testing.assert_array_equal(expected_wins(weights, 0), np.zeros(200))
    np.testing.assert_array_equal(expected_wins(weights, 200), np.ones(200))


def test_deciles_split_distinct_times_into_equal_tenths_in_time_order():
    rng = np.random.default_rng(1)
    joined_at = START + rng.permutation(1000) * 60.0
    labels = registration_time_deciles(joined_at)
    assert labels.dtype.kind == "i"
    np.testing.assert_array_equal(np.bincount(labels), [100] * 10)
    order = np.argsort(joined_at)
    assert np.all(np.diff(labels[order]) >= 0)
    assert labels[np.argmin(joined_at)] == 0 and labels[np.argmax(joined_at)] == 9


def test_deciles_keep_ties_together_whatever_the_input_order():
    joined_at = np.array([5.0] * 6 + [1.0] * 3 + [9.0] * 11)
    labels = registration_time_deciles(joined_at)
    # 3 registered before the 5.0 batch (3 * 10 // 20 = 1), 9 before the 9.0 batch (4).
    assert set(labels[joined_at == 1.0]) == {0}
    assert set(labels[joined_at == 5.0]) == {1}
    assert set(labels[joined_at == 9.0]) == {4}
    permutation = np.random.default_rng(2).permutation(joined_at.size)
    np.testing.assert_array_equal(registration_time_deciles(joined_at[permutation]), labels[permutation])


def test_fewer_than_ten_distinct_times_give_fewer_groups():
    joined_at = np.repeat([START, START + DAY, START + 2 * DAY], [500, 300, 200])
    labels = registration_time_deciles(joined_at)
    assert sorted(set(labels.tolist())) == [0, 5, 8]
    assert registration_time_deciles(np.full(50, START)).tolist() == [0] * 50
    assert registration_time_deciles(np.array([])).size == 0
    with pytest.raises(ValueError, match="finite"):
        registration_time_deciles(np.array([START, math.nan]))


# --------------------------------------------------------------------------
# Fair draws are not flagged; the statistic has the chi-square law
# --------------------------------------------------------------------------


def test_fair_weighted_draws_are_not_flagged():
    flagged = []
    for seed in range(20):
        rng, joined_at, channels, weights = random_pool(seed)
        won = weighted_draw(rng, weights, WINNERS)
        reports = check_draw(joined_at, channels, weights, won)
        assert [report.test for report in reports] == ["registration_time", "channel"]
        time_report, channel_report = reports
        assert time_report.degrees_of_freedom == 9
        assert time_report.groups == tuple((decile,) for decile in range(10))
        assert channel_report.groups == (("assisted",), ("online",))
        assert channel_report.degrees_of_freedom == 1
        for report in reports:
            assert sum(report.observed) == WINNERS
            assert sum(report.expected) == pytest.approx(WINNERS, rel=1e-12)
        if is_suspicious(reports):
            flagged.append(seed)
    assert len(flagged) <= 1, flagged


def test_the_statistic_of_fair_draws_has_the_chi_square_mean_and_variance():
    # A quarter of the pool wins and weights follow registration time. Under
    # a fair draw the statistic is chi-square(9): mean 9, variance 18. The
    # textbook Pearson statistic (dividing by the expected count) would
    # average about 9 * 3/4 here, and unadjusted expectations far more.
    statistics = []
    for seed in range(300):
        rng, joined_at, _, _ = random_pool(1000 + seed, entrants=4000)
        weights = aged_weights(joined_at)
        won = weighted_draw(rng, weights, 1000)
        report = check_groups("registration_time", registration_time_deciles(joined_at), won, weights)
        assert report.degrees_of_freedom == 9
        statistics.append(report.chi_square)
    statistics = np.array(statistics)
    assert abs(statistics.mean() - 9.0) < 4 * math.sqrt(18.0 / statistics.size)
    assert 12.0 < statistics.var() < 26.0
    # About 10 % of fair draws have p < 0.1.
    p_values = [chi_square_p_value(statistic, 9) for statistic in statistics.tolist()]
    assert 0.04 < np.mean(np.array(p_values) < 0.1) < 0.17


def test_aging_correlated_with_time_is_not_flagged_but_would_be_without_the_adjustment():
    for seed in range(5):
        rng, joined_at, channels, _ = random_pool(100 + seed)
        weights = aged_weights(joined_at)  # from 1 (last week) to 3 (four weeks lost)
        won = weighted_draw(rng, weights, WINNERS)
        reports = check_draw(joined_at, channels, weights, won)
        assert not is_suspicious(reports), reports

        deciles = registration_time_deciles(joined_at)
        unadjusted = check_groups("registration_time", deciles, won, np.ones_like(weights))
        assert unadjusted.suspicious
        assert unadjusted.p_value < 1e-20
        # The earliest tenth wins about twice as often as the latest.
        assert unadjusted.observed[0] > 1.6 * unadjusted.observed[-1]


# --------------------------------------------------------------------------
# Biased draws are flagged
# --------------------------------------------------------------------------


def test_winners_taken_mostly_from_the_earliest_fifth_are_flagged():
    for seed in range(5):
        rng, joined_at, channels, weights = random_pool(200 + seed)
        early = joined_at <= np.quantile(joined_at, 0.2)
        # A buggy draw: 60 % of the slots go to a race among the earliest
        # fifth, the rest to a fair race among everyone else.
        won = np.zeros(ENTRANTS, dtype=bool)
        early_index, late_index = np.flatnonzero(early), np.flatnonzero(~early)
        early_winners = int(0.6 * WINNERS)
        won[early_index[weighted_draw(rng, weights[early_index], early_winners)]] = True
        won[late_index[weighted_draw(rng, weights[late_index], WINNERS - early_winners)]] = True
        assert won.sum() == WINNERS

        reports = check_draw(joined_at, channels, weights, won)
        time_report = report_named(reports, "registration_time")
        assert time_report.suspicious and is_suspicious(reports)
        assert time_report.p_value < 1e-50
        assert time_report.observed[0] + time_report.observed[1] == early_winners


def test_a_milder_early_bias_is_still_flagged():
    # One winner in three from the earliest fifth, against one in five if fair.
    rng, joined_at, channels, weights = random_pool(300)
    early = joined_at <= np.quantile(joined_at, 0.2)
    early_index, late_index = np.flatnonzero(early), np.flatnonzero(~early)
    won = np.zeros(ENTRANTS, dtype=bool)
    won[early_index[weighted_draw(rng, weights[early_index], WINNERS // 3)]] = True
    won[late_index[weighted_draw(rng, weights[late_index], WINNERS - WINNERS // 3)]] = True
    assert report_named(check_draw(joined_at, channels, weights, won), "registration_time").suspicious


def test_assisted_registrations_that_never_win_are_flagged():
    rng, joined_at, channels, weights = random_pool(400)
    online = np.flatnonzero(channels == "online")
    won = np.zeros(ENTRANTS, dtype=bool)
    won[online[weighted_draw(rng, weights[online], WINNERS)]] = True

    reports = check_draw(joined_at, channels, weights, won)
    channel_report = report_named(reports, "channel")
    assert channel_report.groups == (("assisted",), ("online",))
    assert channel_report.observed == (0, WINNERS)
    assert channel_report.expected[0] > 500
    assert channel_report.suspicious and channel_report.p_value < 1e-100
    assert not report_named(reports, "registration_time").suspicious
    assert is_suspicious(reports)


def test_channel_enum_members_are_read_by_value():
    rng, joined_at, channels, weights = random_pool(500, entrants=2000)
    won = weighted_draw(rng, weights, 200)
    members = [Channel(value) for value in channels.tolist()]
    from_strings = check_draw(joined_at, channels, weights, won)
    from_members = check_draw(joined_at, members, weights, won)
    assert from_members == from_strings
    assert from_members[1].groups == (("assisted",), ("online",))


# --------------------------------------------------------------------------
# Small groups, degenerate draws, the report
# --------------------------------------------------------------------------


def test_small_groups_are_merged_with_their_smaller_neighbour():
    sizes = {"a": 20, "b": 1000, "c": 1000, "d": 1000, "e": 30, "f": 30}
    labels = np.repeat(list(sizes), list(sizes.values()))
    weights = np.ones(labels.size)
    won = weighted_draw(np.random.default_rng(3), weights, labels.size // 10)
    report = check_groups("site", labels, won, weights)
    # Expected winners: a 2, b 100, c 100, d 100, e 3, f 3. "a" (the
    # smallest) joins its only neighbour; "e" joins "f", the smaller of its
    # two neighbours, and together they expect 6.
    assert report.groups == (("a", "b"), ("c",), ("d",), ("e", "f"))
    assert report.degrees_of_freedom == 3
    assert report.expected == pytest.approx((102.0, 100.0, 100.0, 6.0), rel=1e-9)
    assert sum(report.observed) == won.sum()
    assert report.observed[0] == won[labels == "a"].sum() + won[labels == "b"].sum()
    assert all(expected >= fairness.MIN_EXPECTED for expected in report.expected)


def test_groups_where_almost_everyone_wins_are_merged_too():
    # Ten entrants of huge weight are sure to win: their group has no
    # expected losers, so it cannot vary and is merged.
    weights = np.concatenate([np.full(10, 1e4), np.ones(3000)])
    labels = np.repeat([0, 1, 2], [10, 1500, 1500])
    won = weighted_draw(np.random.default_rng(4), weights, 300)
    report = check_groups("weight", labels, won, weights)
    assert report.groups == ((0, 1), (2,))
    assert math.isfinite(report.chi_square) and report.degrees_of_freedom == 1


def test_fewer_than_two_groups_pass_with_p_value_one():
    weights = np.ones(100)
    won = np.zeros(100, dtype=bool)
    won[:30] = True  # as biased as can be, but there is nothing to compare
    one_label = check_groups("one", np.zeros(100, dtype=int), won, weights)
    assert one_label.groups == ((0,),) and one_label.degrees_of_freedom == 0
    assert one_label.p_value == 1.0 and not one_label.suspicious

    tiny = check_groups("tiny", np.repeat([0, 1], 50), np.arange(100) < 4, weights)
    assert tiny.groups == ((0, 1),) and tiny.p_value == 1.0 and not tiny.suspicious

    nobody = check_groups("none", np.repeat([0, 1], 50), np.zeros(100, dtype=bool), weights)
    assert nobody.p_value == 1.0 and nobody.observed == (0,)

    everybody = check_groups("all", np.repeat([0, 1], 50), np.ones(100, dtype=bool), weights)
    assert everybody.p_value == 1.0 and not everybody.suspicious


def test_threshold_decides_suspicious_and_reports_are_frozen():
    labels = np.repeat([0, 1], 500)
    won = np.zeros(1000, dtype=bool)
    won[:60] = True
    won[500:540] = True  # 60 against 40 where 50 and 50 are expected
    report = check_groups("split", labels, won, np.ones(1000))
    assert report.observed == (60, 40)
    assert report.expected == pytest.approx((50.0, 50.0))
    # (10^2 + 10^2) / (500 * 0.1 * 0.9) = 4.44..., p about 0.035
    assert report.chi_square == pytest.approx(200 / 45)
    assert report.p_value == pytest.approx(chi_square_p_value(200 / 45, 1))
    assert not report.suspicious
    assert check_groups("split", labels, won, np.ones(1000), threshold=0.05).suspicious
    with pytest.raises(dataclasses.FrozenInstanceError):
        report.suspicious = True  # type: ignore[misc]
    assert not is_suspicious([]) and not is_suspicious([report])


def test_misaligned_inputs_are_refused():
    with pytest.raises(ValueError, match="same length"):
        check_groups("x", np.zeros(3), np.zeros(4, dtype=bool), np.ones(3))
    with pytest.raises(ValueError, match="booleans"):
        check_groups("x", np.zeros(3), np.zeros(3), np.ones(3))
    with pytest.raises(ValueError, match="greater than zero"):
        check_groups("x", np.zeros(3), np.array([True, False, False]), np.array([1.0, 0.0, 1.0]))
