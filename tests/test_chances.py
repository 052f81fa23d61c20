"""Tests of the chance estimates (queue_service.draws.chances).

The estimate is checked against what it approximates: exact values where
they are known (equal weights), and the frequencies of the real draw
(queue_service.draws.lottery) over thousands of seeds.
"""

from __future__ import annotations

import datetime
import hashlib
import math

import numpy as np
import pytest

from queue_service.draws import chances, lottery


def test_equal_weights_give_k_over_n():
    assert chances.inclusion_chances(np.ones(1000), 100) == pytest.approx(np.full(1000, 0.1), abs=1e-12)


def test_chances_sum_to_the_number_of_slots_and_grow_with_weight():
    weights = np.random.default_rng(3).integers(1, 7, size=10_000).astype(float)
    estimate = chances.inclusion_chances(weights, 1234)
    assert estimate.sum() == pytest.approx(1234, rel=1e-9)
    order = np.argsort(weights, kind="stable")
    assert np.all(np.diff(estimate[order]) >= 0)


def test_no_slot_and_more_slots_than_entrants():
    weights = np.array([1.0, 2.0, 3.0])
    assert chances.inclusion_chances(weights, 0).tolist() == [0.0, 0.0, 0.0]
    assert chances.inclusion_chances(weights, 3).tolist() == [1.0, 1.0, 1.0]
    assert chances.inclusion_chances(weights, 10).tolist() == [1.0, 1.0, 1.0]
    assert chances.inclusion_chances(np.array([]), 5).tolist() == []
    assert chances.solve_rate(weights, 0) == 0.0
    assert chances.solve_rate(weights, 3) == math.inf


def test_root_is_found_for_extreme_weights():
    weights = np.array([1e-6] * 5 + [1e6] * 5 + [1.0] * 90)
    for slots in (1, 5, 50, 99):
        rate = chances.solve_rate(weights, slots)
        assert np.sum(-np.expm1(-weights * rate)) == pytest.approx(slots, rel=1e-9)


def test_counts_describe_the_same_pool():
    weights = np.array([1.0, 1.0, 1.0, 2.0, 2.0, 5.0])
    direct = chances.solve_rate(weights, 2)
    compressed = chances.solve_rate(np.array([1.0, 2.0, 5.0]), 2, counts=np.array([3, 2, 1]))
    assert compressed == pytest.approx(direct, rel=1e-12)


def test_bad_weights_are_refused():
    with pytest.raises(ValueError, match="greater than zero"):
        chances.inclusion_chances(np.array([1.0, 0.0]), 1)
    with pytest.raises(ValueError, match="finite"):
        chances.inclusion_chances(np.array([1.0, np.inf]), 1)


def monte_carlo_inclusion(weights: list[str], slot_count: int, draws: int) -> np.ndarray:
    entrants = [lottery.Entrant(f"r{index:04d}", weight) for index, weight in enumerate(weights)]
    index_of = {entrant.ref: index for index, entrant in enumerate(entrants)}
    slots = [lottery.Slot(f"s{number:04d}", "any") for number in range(slot_count)]
    wins = np.zeros(len(weights))
    for draw in range(draws):
        seed = hashlib.sha256(b"chances %d" % draw).digest()
        result = lottery.run_draw(seed, "monte-carlo", entrants, slots)
        wins[[index_of[ref] for ref in result.winner_refs]] += 1
    return wins / draws


@pytest.mark.parametrize(
    "weights, slot_count, tolerance",
    [
        ([str(1 + index % 4) for index in range(200)], 40, 0.006),
        ([("1", "6")[index % 2] for index in range(60)], 20, 0.008),
    ],
)
def test_estimate_agrees_with_the_real_draw(weights, slot_count, tolerance):
    draws = 4000
    frequencies = monte_carlo_inclusion(weights, slot_count, draws)
    values = np.array([float(weight) for weight in weights])
    estimate = chances.inclusion_chances(values, slot_count)
    for weight in np.unique(values):
        same = values == weight
        observed = frequencies[same].mean()  # pooled over entrants of equal weight
        assert abs(observed - estimate[same][0]) < tolerance, (weight, observed, estimate[same][0])


def weekly_draws(count: int, slots: int) -> list[chances.UpcomingDraw]:
    start = datetime.date(2027, 1, 4)
    return [chances.UpcomingDraw(start + datetime.timedelta(weeks=week), slots) for week in range(count)]


def test_projection_without_aging_is_a_repeated_chance():
    pool = np.ones(999)
    draws = weekly_draws(30, 100)
    projection = chances.project_chances(1.0, pool, draws, aging=0.0)
    chance = 0.1  # 100 slots among 1,000 equal weights
    assert projection.next_draw_chance == pytest.approx(chance, abs=1e-12)
    for week, cumulative in enumerate(projection.cumulative, start=1):
        assert cumulative == pytest.approx(1 - (1 - chance) ** week, abs=1e-12)
    # 1 - 0.9**7 = 0.522 is the first above 50 %; 1 - 0.9**22 = 0.902 above 90 %.
    assert projection.date_50 == draws[6].date
    assert projection.date_90 == draws[21].date


def test_aging_brings_the_dates_forward():
    pool = np.random.default_rng(5).integers(1, 4, size=5000).astype(float)
    draws = weekly_draws(104, 50)
    flat = chances.project_chances(1.0, pool, draws, aging=0.0)
    aged = chances.project_chances(1.0, pool, draws, aging=0.5)
    assert aged.next_draw_chance == pytest.approx(flat.next_draw_chance)
    assert all(a >= f for a, f in zip(aged.cumulative, flat.cumulative))
    assert aged.date_50 is not None and aged.date_50 < (flat.date_50 or datetime.date.max)


def test_horizon_too_short_gives_no_date():
    projection = chances.project_chances(1.0, np.ones(100_000), weekly_draws(3, 10), aging=0.0)
    assert projection.date_50 is None and projection.date_90 is None
    assert len(projection.cumulative) == 3
    empty = chances.project_chances(1.0, np.ones(10), [], aging=1.0)
    assert empty.next_draw_chance == 0.0 and empty.date_50 is None


def test_projection_when_everyone_fits():
    projection = chances.project_chances(2.0, np.ones(5), weekly_draws(2, 10), aging=1.0)
    assert projection.next_draw_chance == 1.0
    assert projection.date_50 == projection.date_90 == weekly_draws(1, 10)[0].date


def test_projection_refuses_bad_arguments():
    with pytest.raises(ValueError, match="applicant_weight"):
        chances.project_chances(0.0, np.ones(3), weekly_draws(1, 1), aging=0.0)
    with pytest.raises(ValueError, match="aging"):
        chances.project_chances(1.0, np.ones(3), weekly_draws(1, 1), aging=-1.0)


def weight_class_frequencies(weights: list[str], slot_count: int, draws: int) -> dict[str, float]:
    """How often an entrant of each weight is drawn by the real draw (pooled over the class)."""
    entrants = [lottery.Entrant(f"r{index:06d}", weight) for index, weight in enumerate(weights)]
    slots = [lottery.Slot(f"s{number:06d}", "any") for number in range(slot_count)]
    weight_of = {entrant.ref: entrant.weight for entrant in entrants}
    sizes = {weight: weights.count(weight) for weight in set(weights)}
    wins = dict.fromkeys(sizes, 0)
    for draw in range(draws):
        seed = hashlib.sha256(b"status page %d" % draw).digest()
        for ref in lottery.run_draw(seed, "monte-carlo", entrants, slots).winner_refs:
            wins[weight_of[ref]] += 1
    return {weight: wins[weight] / (sizes[weight] * draws) for weight in sizes}


@pytest.mark.parametrize(
    "pool_size, slot_count, draws",
    [
        (1_000, 100, 1500),
        (100_000, 8_000, 30),
    ],
)
def test_status_page_estimate_agrees_with_the_real_draw_within_two_points(pool_size, slot_count, draws):
    """The next-draw chance as the status page computes it (the pool as distinct weights and their
    counts, the applicant taken out of it) against a Monte Carlo of queue_service.draws.lottery."""
    rng = np.random.default_rng(pool_size)
    # Mixed weights, as aging 1 gives after up to five lost draws: most people are new.
    weights = [str(w) for w in rng.choice([1, 2, 3, 4, 6], size=pool_size, p=[0.5, 0.2, 0.15, 0.1, 0.05])]
    observed = weight_class_frequencies(weights, slot_count, draws)
    distinct = sorted(set(weights), key=float)
    counts = np.array([weights.count(weight) for weight in distinct], dtype=float)
    for index, weight in enumerate(distinct):
        others = counts.copy()
        others[index] -= 1  # the applicant is not among the others
        projection = chances.project_chances(float(weight), np.array([float(w) for w in distinct]),
                                             [chances.UpcomingDraw(datetime.date(2027, 1, 5), slot_count)],
                                             aging=1.0, pool_counts=others)
        assert abs(projection.next_draw_chance - observed[weight]) <= 0.02, (weight, projection, observed[weight])


def test_pool_counts_must_match_the_weights():
    with pytest.raises(ValueError, match="pool_counts"):
        chances.project_chances(1.0, np.array([1.0, 2.0]), weekly_draws(1, 1), aging=0.0, pool_counts=np.array([3.0]))


@pytest.mark.parametrize("pool_size, slot_count, draws", [(1_000, 200, 1500), (100_000, 8_000, 30)])
def test_the_urgent_phase_estimate_agrees_with_the_real_draw(pool_size, slot_count, draws):
    """With an urgent group drawn first for 20 % of the slots (as draws.freeze sets it up): urgent
    entrants win far more often, the others a little less, and the estimate follows both."""
    rng = np.random.default_rng(pool_size + 1)
    weights = [str(w) for w in rng.choice([1, 2, 3, 4, 6], size=pool_size, p=[0.5, 0.2, 0.15, 0.1, 0.05])]
    # 6 % of each weight class is urgent (the estimate takes the urgent group with the pool's weights);
    # few: the phase lifts their chance well above the rest.
    urgent = np.zeros(pool_size, dtype=bool)
    for weight in set(weights):
        members = [index for index, w in enumerate(weights) if w == weight]
        urgent[members[: round(0.06 * len(members))]] = True
    entrants = [lottery.Entrant(f"r{index:06d}", weight, "urgent" if urgent[index] else None)
                for index, weight in enumerate(weights)]
    slots = [lottery.Slot(f"s{number:06d}", "any") for number in range(slot_count)]
    phases = [lottery.Phase("urgent", math.floor(0.2 * slot_count))]
    wins, sizes = {}, {}
    for entrant in entrants:
        sizes[(entrant.weight, entrant.group)] = sizes.get((entrant.weight, entrant.group), 0) + 1
    for draw in range(draws):
        seed = hashlib.sha256(b"urgent %d" % draw).digest()
        group_of = {e.ref: (e.weight, e.group) for e in entrants}
        for ref in lottery.run_draw(seed, "monte-carlo", entrants, slots, phases).winner_refs:
            wins[group_of[ref]] = wins.get(group_of[ref], 0) + 1
    distinct = sorted(set(weights), key=float)
    counts = np.array([weights.count(weight) for weight in distinct], dtype=float)
    fraction = urgent.mean()
    for (weight, group), size in sizes.items():
        observed = wins.get((weight, group), 0) / (size * draws)
        others = counts.copy()
        others[distinct.index(weight)] -= 1
        phase = chances.UrgentPhase(0.2, fraction, 0 if group else None)
        projection = chances.project_chances(float(weight), np.array([float(w) for w in distinct]),
                                             [chances.UpcomingDraw(datetime.date(2027, 1, 5), slot_count)],
                                             aging=1.0, pool_counts=others, urgent=phase)
        assert abs(projection.next_draw_chance - observed) <= 0.02, (weight, group, projection.next_draw_chance, observed)
