"""Fairness checks run on a draw before its result is published.

Why this module exists
----------------------
A lottery can be drawn correctly and still be wrong: in 2012 the US
diversity-visa lottery was voided because a programming error drew over 90 %
of its winners from people who registered in the first two days. Our draw is
reproducible from its public record, but a reproducible bug is still a bug.
So before a result is published the service asks a simple question of it:
*do the winners depend on when people registered, or on how they registered
(online, or at a counter / by phone through an agent)?* If they do, the draw
is held for a person to review instead of being published.

The method, in plain words
--------------------------
1. Split the entrants into groups: ten groups by registration time (the
   earliest tenth, the next tenth, and so on), and one group per channel.
2. Count the winners in each group (``observed``).
3. Work out how many winners each group should get if the draw is fair
   (``expected``). Entrants do not all have the same chance: an entrant who
   has lost earlier draws carries more weight and should win more often. So
   the expected count of a group is the sum of its members' chances, each
   chance computed from the weights by the same estimate the status page
   shows (``chances.inclusion_chances``): find t with
   ``sum_j (1 - exp(-w_j t)) = k``, then ``p_i = 1 - exp(-w_i t)``.
   Without this adjustment, any pool where older registrations carry more
   weight (which is what aging does) would look biased towards early
   registrations, though the draw is perfectly fair.
4. Measure how far the counts are from the expectation with a chi-square
   statistic, ``sum_g (observed_g - expected_g)^2 / variance_g``, where
   ``variance_g = sum_{i in g} p_i (1 - p_i)`` is the variance of a group's
   count under the fair draw. (The textbook Pearson statistic divides by
   ``expected_g`` instead; that assumes each winner is drawn independently
   of the others and overstates the variance when a sizeable share of the
   pool wins, which makes the check blind to part of the bias it is meant to
   find. With 10 % of the pool winning it would lose a tenth of the
   statistic; with half the pool winning, half.) Because the number of
   winners is fixed, the statistic follows a chi-square law with
   ``groups - 1`` degrees of freedom when the draw is fair.
5. Turn the statistic into a p-value: the probability that a fair draw
   deviates at least this much. A p-value below the threshold (0.001) marks
   the test ``suspicious``, and the draw is held for review.

Groups too small for the chi-square law to hold (fewer than 5 expected
winners, or fewer than 5 expected losers) are merged with a neighbour in label
order; if fewer than two groups remain, there is nothing to compare and the
test passes (p-value 1).

Limits
------
- **False alarms are expected, and rare.** The threshold p < 0.001 means that
  about one fair draw in 1,000 is held for review by mistake, for each test.
  ``check_draw`` runs two tests, so about two fair draws in 1,000 are held.
  A held draw is not a voided draw: a person looks at it, re-runs the
  public verification, and publishes it if nothing is wrong.
- **Small bias in small pools goes unseen.** The test finds a gross bias
  (like the 2012 one) in any pool of a few hundred winners; a slight tilt,
  say 2 % more winners in one tenth of a small pool, is within chance and
  will not be flagged.
- **Constraints and priority phases are ignored.** The expected counts come
  from the weights alone, as if every entrant could take any slot. When
  entrants name the sites and half-days they accept, or when an urgency
  quota draws one group first, the true chances differ. If those
  constraints correlate with registration time or channel (for instance,
  early registrants accept only a site that has few slots, or assisted
  registrations are mostly urgent renewals), a fair draw can be flagged. A
  reviewer should read a flag on a constrained draw with that in mind.
- **The chances are an estimate.** ``1 - exp(-w t)`` is within a small
  fraction of a percent of the true inclusion probability for realistic
  pools, far below what the test can detect.
- **Only what is grouped is checked.** A bias along another line (by
  nationality, by site, by the letters of the reference) is not looked for
  here; the public record lets anyone look for it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from queue_service.draws.chances import inclusion_chances

__all__ = [
    "BiasReport",
    "chi_square_p_value",
    "expected_wins",
    "check_groups",
    "registration_time_deciles",
    "check_draw",
    "is_suspicious",
    "SUSPICIOUS_P_VALUE",
    "MIN_EXPECTED",
    "TIME_GROUPS",
]

#: A test whose p-value is below this marks the draw for review: about one
#: fair draw in 1,000 is held by mistake, per test.
SUSPICIOUS_P_VALUE = 1e-3
#: The smallest expected count (of winners, and of losers) a group may have
#: before it is merged with a neighbour: the usual rule of thumb for the
#: chi-square approximation.
MIN_EXPECTED = 5.0
#: Registration times are cut into this many groups of equal size (deciles).
TIME_GROUPS = 10

#: Relative size of the last term at which the series and the continued
#: fraction of the incomplete gamma function stop.
_GAMMA_EPSILON = 1e-16
#: Safety net: both converge in a few hundred steps at most for df <= 100.
_GAMMA_MAX_ITERATIONS = 100_000
#: Stands in for zero in the modified Lentz algorithm.
_TINY = 1e-300


@dataclass(frozen=True)
class BiasReport:
    """The result of one test of a draw.

    ``groups[g]`` is the tuple of labels that were merged into group g (one
    label unless small groups were merged), in label order; ``observed[g]``
    and ``expected[g]`` are its winner counts. ``degrees_of_freedom`` is
    ``len(groups) - 1`` (0 when fewer than two groups remain).
    """

    test: str
    groups: tuple[tuple[Any, ...], ...]
    observed: tuple[int, ...]
    expected: tuple[float, ...]
    chi_square: float
    degrees_of_freedom: int
    p_value: float
    suspicious: bool


# --------------------------------------------------------------------------
# The chi-square tail
# --------------------------------------------------------------------------


def chi_square_p_value(statistic: float, degrees_of_freedom: int) -> float:
    """P(X >= statistic) for X chi-square with ``degrees_of_freedom`` degrees.

    This is the regularised upper incomplete gamma function
    Q(df/2, statistic/2), computed by its power series when x < a + 1 (where
    Q is not small, so 1 - P loses no precision) and by its continued
    fraction otherwise (where the continued fraction converges fast and
    keeps full relative precision deep in the tail).
    """
    if degrees_of_freedom < 1 or int(degrees_of_freedom) != degrees_of_freedom:
        raise ValueError("degrees_of_freedom must be a positive integer")
    if math.isnan(statistic):
        raise ValueError("statistic must be a number")
    if statistic <= 0:
        return 1.0
    if math.isinf(statistic):
        return 0.0
    shape, x = degrees_of_freedom / 2.0, statistic / 2.0
    if x < shape + 1.0:
        return max(0.0, 1.0 - _lower_gamma_series(shape, x))
    return _upper_gamma_continued_fraction(shape, x)


def _log_prefactor(shape: float, x: float) -> float:
    """log(x^a e^(-x) / Gamma(a)), the factor common to the series and the fraction."""
    return shape * math.log(x) - x - math.lgamma(shape)


def _lower_gamma_series(shape: float, x: float) -> float:
    """P(a, x) = x^a e^(-x) / Gamma(a) * sum_n x^n / (a (a+1) ... (a+n))."""
    term = 1.0 / shape
    total = term
    denominator = shape
    for _ in range(_GAMMA_MAX_ITERATIONS):
        denominator += 1.0
        term *= x / denominator
        total += term
        if term < total * _GAMMA_EPSILON:
            return total * math.exp(_log_prefactor(shape, x))
    raise ArithmeticError(f"incomplete gamma series did not converge for a={shape}, x={x}")


def _upper_gamma_continued_fraction(shape: float, x: float) -> float:
    """Q(a, x) = x^a e^(-x) / Gamma(a) * 1/(x+1-a- 1(1-a)/(x+3-a- 2(2-a)/(x+5-a- ...))).

    Evaluated from the front by the modified Lentz method: the fraction is
    b0 + a1/(b1 + a2/(b2 + ...)) with b_n = x + 2n + 1 - a and
    a_n = -n (n - a); C and D carry the ratios of successive convergents.
    """
    b = x + 1.0 - shape
    c = 1.0 / _TINY
    d = 1.0 / b
    fraction = d
    for step in range(1, _GAMMA_MAX_ITERATIONS):
        a_n = -step * (step - shape)
        b += 2.0
        d = a_n * d + b
        if abs(d) < _TINY:
            d = _TINY
        c = b + a_n / c
        if abs(c) < _TINY:
            c = _TINY
        d = 1.0 / d
        change = d * c
        fraction *= change
        if abs(change - 1.0) < _GAMMA_EPSILON:
            return math.exp(_log_prefactor(shape, x)) * fraction
    raise ArithmeticError(f"incomplete gamma fraction did not converge for a={shape}, x={x}")


# --------------------------------------------------------------------------
# Expected and observed winners per group
# --------------------------------------------------------------------------


def expected_wins(weights: np.ndarray, winners: int) -> np.ndarray:
    """Each entrant's chance to be among ``winners`` winners, given the weights."""
    if winners < 0:
        raise ValueError("winners must be >= 0")
    weights = np.asarray(weights, dtype=np.float64)
    if winners == 0:
        return np.zeros_like(weights)
    return inclusion_chances(weights, int(winners))


def check_groups(
    name: str,
    labels: np.ndarray,
    won: np.ndarray,
    weights: np.ndarray,
    threshold: float = SUSPICIOUS_P_VALUE,
    min_expected: float = MIN_EXPECTED,
) -> BiasReport:
    """Do the winners fall into the groups ``labels`` as the weights say they should?

    ``labels[i]`` is the group of entrant i, ``won[i]`` whether they won and
    ``weights[i]`` their weight in the draw. See the module docstring for the
    method.
    """
    labels = np.asarray(labels)
    won = np.asarray(won)
    weights = np.asarray(weights, dtype=np.float64)
    if labels.ndim != 1 or won.shape != labels.shape or weights.shape != labels.shape:
        raise ValueError("labels, won and weights must be one-dimensional and of the same length")
    if won.dtype != np.bool_:
        raise ValueError("won must be an array of booleans")
    winners = int(np.count_nonzero(won))
    chances = expected_wins(weights, winners)
    # The estimate sums to the winner count up to the root-find's tolerance;
    # rescaling makes the expected counts add up to the observed total exactly.
    total = float(chances.sum())
    if total > 0:
        chances = chances * (winners / total)

    group_labels, group_of = np.unique(labels, return_inverse=True)
    group_count = group_labels.size
    observed = np.bincount(group_of, weights=won.astype(np.float64), minlength=group_count)
    expected = np.bincount(group_of, weights=chances, minlength=group_count)
    variance = np.bincount(group_of, weights=chances * (1.0 - chances), minlength=group_count)
    entrants = np.bincount(group_of, minlength=group_count).astype(np.float64)

    groups = [[label.item() if hasattr(label, "item") else label] for label in group_labels]
    merged = _merge_small_groups(
        groups, observed.tolist(), expected.tolist(), variance.tolist(), entrants.tolist(), min_expected
    )
    groups, observed_list, expected_list, variance_list = merged

    if len(groups) < 2:
        statistic, degrees, p_value = 0.0, 0, 1.0
    else:
        statistic = math.fsum(
            (count - mean) ** 2 / spread for count, mean, spread in zip(observed_list, expected_list, variance_list)
        )
        degrees = len(groups) - 1
        p_value = chi_square_p_value(statistic, degrees)
    return BiasReport(
        test=name,
        groups=tuple(tuple(group) for group in groups),
        observed=tuple(int(round(count)) for count in observed_list),
        expected=tuple(float(mean) for mean in expected_list),
        chi_square=float(statistic),
        degrees_of_freedom=degrees,
        p_value=float(p_value),
        suspicious=bool(p_value < threshold),
    )


def _merge_small_groups(
    groups: list[list[Any]],
    observed: list[float],
    expected: list[float],
    variance: list[float],
    entrants: list[float],
    min_expected: float,
) -> tuple[list[list[Any]], list[float], list[float], list[float]]:
    """Merge groups too small for the chi-square law into a neighbour, smallest first.

    A group is too small when fewer than ``min_expected`` winners or losers
    are expected in it (the two cells of its row in the groups x
    {won, lost} table), or when its count cannot vary at all. The smallest
    such group (the earliest in label order on a tie) is merged with the
    smaller of its two neighbours (the earlier on a tie), and so on until
    every group is large enough or one group is left. The result depends only
    on the inputs, never on chance.
    """

    def size(index: int) -> float:
        return min(expected[index], entrants[index] - expected[index])

    def too_small(index: int) -> bool:
        return size(index) < min_expected or variance[index] <= 0.0

    while len(groups) > 1:
        small = [index for index in range(len(groups)) if too_small(index)]
        if not small:
            break
        index = min(small, key=lambda candidate: (size(candidate), candidate))
        neighbours = [other for other in (index - 1, index + 1) if 0 <= other < len(groups)]
        other = min(neighbours, key=lambda candidate: (size(candidate), candidate))
        left, right = min(index, other), max(index, other)
        groups[left] = groups[left] + groups[right]
        for column in (observed, expected, variance, entrants):
            column[left] += column[right]
            del column[right]
        del groups[right]
    return groups, observed, expected, variance


# --------------------------------------------------------------------------
# The two tests run on every draw
# --------------------------------------------------------------------------


def registration_time_deciles(joined_at: np.ndarray) -> np.ndarray:
    """Label each entrant with the tenth of the pool, by registration time, it belongs to.

    Entrant i gets ``floor(10 * r / N)``, where r is the number of entrants
    who registered strictly before it. Entrants who registered at the same
    instant therefore share a label, whatever order they are given in, and
    the labels are ordered like the times. With fewer than ten distinct
    times there are fewer labels; a large tie can leave some labels unused.
    """
    joined_at = np.asarray(joined_at, dtype=np.float64)
    if joined_at.ndim != 1:
        raise ValueError("joined_at must be a one-dimensional array")
    if not np.all(np.isfinite(joined_at)):
        raise ValueError("joined_at must hold finite times")
    population = joined_at.size
    if population == 0:
        return np.zeros(0, dtype=np.int64)
    distinct, time_of, counts = np.unique(joined_at, return_inverse=True, return_counts=True)
    registered_before = np.concatenate(([0], np.cumsum(counts)[:-1]))
    labels_of_time = (TIME_GROUPS * registered_before) // population
    return labels_of_time[time_of].astype(np.int64)


def check_draw(
    joined_at: np.ndarray,
    channels: Sequence[str] | np.ndarray,
    weights: np.ndarray,
    won: np.ndarray,
    threshold: float = SUSPICIOUS_P_VALUE,
) -> list[BiasReport]:
    """The two tests run on every draw: by registration time, and by channel.

    The arrays are aligned: entrant i registered at ``joined_at[i]`` (epoch
    seconds) through ``channels[i]`` ("online" or "assisted"; a
    ``registration.Channel`` works too), drew with ``weights[i]`` and won if
    ``won[i]``.
    """
    return [
        check_groups("registration_time", registration_time_deciles(joined_at), won, weights, threshold),
        check_groups("channel", _channel_labels(channels), won, weights, threshold),
    ]


def _channel_labels(channels: Sequence[str] | np.ndarray) -> np.ndarray:
    # numpy turns a str Enum into its str() ("Channel.ONLINE" cut short), not
    # its value, so enum members are unwrapped first.
    if isinstance(channels, np.ndarray) and channels.dtype.kind == "U":
        return channels
    return np.array([getattr(channel, "value", channel) for channel in channels], dtype=str)


def is_suspicious(reports: Sequence[BiasReport]) -> bool:
    """True if any test marks the draw for review."""
    return any(report.suspicious for report in reports)
