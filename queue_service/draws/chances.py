"""Chance estimates for applicants: the next draw, and when the odds pass 50 % and 90 %.

Why this module exists
----------------------
The service promises never to answer "try again later" without a date. The
status page therefore shows each applicant their chance at the next draw and
the dates by which their chance of having been drawn passes 50 % and 90 %.
The exact inclusion probabilities of weighted sampling without replacement
have no closed form, but the exponential race that the draw uses
(``lottery.py``) gives a close one: entrant i is drawn roughly when its
exponential clock rings before a common time t, chosen so that k clocks ring
on average::

    find t with  sum_j (1 - exp(-w_j t)) = k,   then  p_i ~= 1 - exp(-w_i t).

This is exact for equal weights in the limit of large pools and within a
fraction of a percent for realistic pools (tests/test_chances.py compares it
with the real draw). One root-find over numpy arrays, no simulation.

The projection over upcoming draws assumes the rest of the pool is
stationary: as many people join as leave, with the same weights, so only the
applicant's own weight changes (it grows by ``aging`` at every lost draw).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

__all__ = ["solve_rate", "inclusion_chances", "UpcomingDraw", "UrgentPhase", "Projection", "project_chances"]

#: Relative width of the bracket at which the root-find stops.
RATE_TOLERANCE = 1e-12
#: Safety net: Newton with bisection converges in far fewer steps.
MAX_ITERATIONS = 200


def _check_weights(weights: np.ndarray) -> np.ndarray:
    weights = np.asarray(weights, dtype=np.float64)
    if weights.ndim != 1:
        raise ValueError("weights must be a one-dimensional array")
    if weights.size and not (np.all(np.isfinite(weights)) and np.all(weights > 0)):
        raise ValueError("weights must be finite and greater than zero")
    return weights


def _expected_drawn(weights: np.ndarray, counts: np.ndarray, rate: float) -> tuple[float, float]:
    """sum c (1 - e^(-w t)) and its derivative in t."""
    decay = np.exp(-weights * rate)
    expected = float(np.sum(counts * -np.expm1(-weights * rate)))
    slope = float(np.sum(counts * weights * decay))
    return expected, slope


def solve_rate(weights: np.ndarray, slots: int, counts: np.ndarray | None = None) -> float:
    """The t with sum_j counts_j (1 - exp(-w_j t)) = slots (0 if no slot, inf if all win).

    ``counts`` lets a pool be given as distinct weights with multiplicities.
    The function is increasing and concave in t, so Newton's method from
    below never overshoots; a bracket [low, high] with bisection guards the
    cases where steps become tiny.
    """
    weights = _check_weights(weights)
    counts = np.ones_like(weights) if counts is None else np.asarray(counts, dtype=np.float64)
    population = float(counts.sum())
    if slots <= 0:
        return 0.0
    if slots >= population:
        return math.inf
    low, high = 0.0, _upper_bracket(weights, counts, slots)
    rate = slots / float(np.sum(counts * weights))  # first Newton step from 0
    for _ in range(MAX_ITERATIONS):
        expected, slope = _expected_drawn(weights, counts, rate)
        if expected < slots:
            low = rate
        else:
            high = rate
        if high - low <= RATE_TOLERANCE * high:
            break
        step = rate + (slots - expected) / slope if slope > 0 else math.nan
        rate = step if low < step < high else (low + high) / 2
    return (low + high) / 2


def _upper_bracket(weights: np.ndarray, counts: np.ndarray, slots: int) -> float:
    """A t where at least ``slots`` clocks are expected to have rung."""
    high = slots / float(np.sum(counts * weights))
    while _expected_drawn(weights, counts, high)[0] < slots:
        high *= 2
    return high


def inclusion_chances(weights: np.ndarray, slots: int) -> np.ndarray:
    """Estimated chance of each entrant to be among the ``slots`` drawn."""
    weights = _check_weights(weights)
    if slots >= weights.size:
        return np.ones_like(weights)
    rate = solve_rate(weights, slots)
    return -np.expm1(-weights * rate)


@dataclass(frozen=True)
class UpcomingDraw:
    """A scheduled draw: when, and how many slots it gives away."""

    date: Any  # a date or datetime; returned as given
    slots: int


@dataclass(frozen=True)
class UrgentPhase:
    """The draws' priority phase (queue_service/draws/__init__.py): the urgent group is drawn
    first, for at most floor(share x slots) slots, then everyone left shares the rest.

    ``fraction`` is the share of the other entrants in the urgent group (taken
    with the same weights as the pool); the applicant is urgent from upcoming
    draw number ``applicant_urgent_from`` on (None: never).
    """

    share: float
    fraction: float
    applicant_urgent_from: int | None = None


@dataclass(frozen=True)
class Projection:
    """What the status page shows about the coming draws.

    ``cumulative[j]`` is the chance of having been drawn by draw j; the dates
    are those of the first draws where it reaches 50 % and 90 %, or None if
    that does not happen within the draws given.
    """

    next_draw_chance: float
    cumulative: tuple[float, ...]
    date_50: Any | None
    date_90: Any | None


def project_chances(
    applicant_weight: float,
    pool_weights: np.ndarray,
    upcoming_draws: Sequence[UpcomingDraw],
    aging: float,
    pool_counts: np.ndarray | None = None,
    urgent: UrgentPhase | None = None,
) -> Projection:
    """Chance at the next draw and the dates the cumulative chance passes 50 % and 90 %.

    ``pool_weights`` are the weights of the other entrants (not the
    applicant), taken as the pool of every upcoming draw. Before draw j the
    applicant has lost j draws, so their weight is
    ``applicant_weight + aging * j``. With ``pool_counts``, ``pool_weights``
    are distinct weights and ``pool_counts`` how many entrants have each (a
    pool of a million is then a handful of numbers). With ``urgent``, each
    draw has the priority phase it describes.
    """
    if not (math.isfinite(applicant_weight) and applicant_weight > 0):
        raise ValueError("applicant_weight must be finite and greater than zero")
    if not (math.isfinite(aging) and aging >= 0):
        raise ValueError("aging must be finite and >= 0")
    if pool_counts is None:
        distinct, counts = np.unique(_check_weights(pool_weights), return_counts=True)
    else:
        distinct, counts = _check_weights(pool_weights), np.asarray(pool_counts, dtype=np.float64)
        if counts.shape != distinct.shape or np.any(counts < 0):
            raise ValueError("pool_counts must give a count >= 0 for each weight")
    not_drawn_yet = 1.0
    cumulative, chances = [], []
    for draws_lost, draw in enumerate(upcoming_draws):
        weight = applicant_weight + aging * draws_lost
        if urgent is None:
            chance = _chance_in_pool(weight, distinct, counts, draw.slots)
        else:
            is_urgent = urgent.applicant_urgent_from is not None and draws_lost >= urgent.applicant_urgent_from
            chance = _chance_with_phase(weight, is_urgent, distinct, counts, draw.slots, urgent)
        chances.append(chance)
        not_drawn_yet *= 1.0 - chance
        cumulative.append(1.0 - not_drawn_yet)
    return Projection(
        next_draw_chance=chances[0] if chances else 0.0,
        cumulative=tuple(cumulative),
        date_50=_first_date_reaching(0.5, cumulative, upcoming_draws),
        date_90=_first_date_reaching(0.9, cumulative, upcoming_draws),
    )


def _chance_in_pool(weight: float, distinct: np.ndarray, counts: np.ndarray, slots: int) -> float:
    """The applicant's chance in the pool plus themselves."""
    weights = np.append(distinct, weight)
    multiplicities = np.append(counts.astype(np.float64), 1.0)
    rate = solve_rate(weights, slots, multiplicities)
    return 1.0 if rate == math.inf else float(-np.expm1(-weight * rate))


def _chance_with_phase(
    weight: float, is_urgent: bool, distinct: np.ndarray, counts: np.ndarray, slots: int, urgent: UrgentPhase
) -> float:
    """The applicant's chance when the urgent group is drawn first (the same exponential race).

    Phase 1 draws the urgent entrants whose clocks ring before t1, where t1
    gives the phase's cap; the last phase draws everyone left whose clock rings
    before t2, where t2 completes the slots. If the urgent winners and the
    others ringing before t1 already exceed the slots, the others share what the
    cap leaves (t2 < t1); otherwise t2 > t1 and the whole pool shares the slots
    as without a phase. An urgent applicant wins before max(t1, t2), anyone else before t2.
    """
    cap = math.floor(urgent.share * slots)
    fraction = min(max(urgent.fraction, 0.0), 1.0)
    urgent_counts = np.append(counts * fraction, 1.0 if is_urgent else 0.0)
    general_counts = np.append(counts * (1.0 - fraction), 0.0 if is_urgent else 1.0)
    weights = np.append(distinct, weight)
    if cap <= 0 or urgent_counts.sum() <= 0 or slots <= 0:
        return _chance_in_pool(weight, distinct, counts, slots)
    everyone = urgent_counts + general_counts
    if slots >= everyone.sum():
        return 1.0
    urgent_drawn = min(cap, urgent_counts.sum())
    rate_1 = solve_rate(weights, cap, urgent_counts) if cap < urgent_counts.sum() else math.inf
    general_by_t1 = 0.0 if rate_1 == math.inf else float(np.sum(general_counts * -np.expm1(-weights * rate_1)))
    if rate_1 == math.inf or urgent_drawn + general_by_t1 >= slots:
        rate_2 = solve_rate(weights, max(slots - urgent_drawn, 0.0), general_counts) if general_counts.sum() else 0.0
        if is_urgent:
            return 1.0 if rate_1 == math.inf else float(-np.expm1(-weight * max(rate_1, rate_2)))
        return 1.0 if rate_2 == math.inf else float(-np.expm1(-weight * rate_2))
    rate_2 = solve_rate(weights, slots, everyone)
    return 1.0 if rate_2 == math.inf else float(-np.expm1(-weight * rate_2))


def _first_date_reaching(level: float, cumulative: list[float], draws: Sequence[UpcomingDraw]):
    for chance, draw in zip(cumulative, draws):
        if chance >= level:
            return draw.date
    return None
