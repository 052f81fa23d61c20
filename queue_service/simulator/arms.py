"""The allocation rules compared: first come, first served, and the service's lottery.

Each arm takes the same Population (scenario.generate) and returns an
Outcome: when each person got an appointment, through whom, and what the
slots became. The lottery arms run the service's own draw: the policy's
weights, urgent group and constraints (queue_service/draws/__init__.py), the
phases, and lottery.run_draw on columns, the path a real draw takes after
its freeze. Only what happens around a draw (arrivals, give-ups) is modelled
here. Chances are those of queue_service/draws/chances.py, as the status
page computes them.
"""

from __future__ import annotations

import datetime
import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from queue_service import draws as draw_rules
from queue_service.draws import chances, lottery, schedules
from queue_service.draws.schedules import DrawPolicy
from queue_service.reference import slot_class
from queue_service.simulator.scenario import HALF_DAYS, HOURS_PER_WEEK, Population, Scenario, accepts_matrix

Progress = Callable[[float], None]
TIMEZONE = "Europe/Paris"
# The simulated pool's codes, in draw ids ("sim-sim-20190107T1000").
POOL_CODE = "sim"


@dataclass
class Outcome:
    """What one rule did with the people and slots of a run (hours from the start; nan: never)."""

    rule: str
    served_at: np.ndarray  # when the booking was made or the draw won
    via_reseller: np.ndarray  # the appointment was bought from a reseller
    attempts: np.ndarray | None  # booking attempts each person made (None: a lottery, one registration)
    slots_total: int
    slots_unfilled: int
    bot_requests: float = 0.0
    chance_rows: list[tuple] = field(default_factory=list)  # draw, weight, urgent, entrants, winners, predicted
    outlook: dict | None = None  # the status page's estimate for a newcomer after the last draw


def _hours_to_datetime(start: datetime.date, hours: float) -> datetime.datetime:
    midnight = datetime.datetime.combine(start, datetime.time(), tzinfo=schedules.UTC)
    return midnight + datetime.timedelta(hours=hours)


# First come, first served -------------------------------------------------------------


def first_come(population: Population, scenario: Scenario, rng: np.random.Generator,
               progress: Progress | None = None) -> Outcome:
    """Slots released on a booking page; the first to look after a release takes them.

    At each release, resellers' bots (polling every few seconds, so first)
    book for the applicants who pay them, within their weekly cap (accounts x
    bookings per email); the slots left go to people in the order of their
    next look at the page (an exponential clock at their polling rate), each
    taking a slot they can attend. A person's attempts are their polling rate
    times the hours they spent trying (from arrival to booking, giving up or
    the end); one of them succeeded if they booked themselves.
    """
    size = population.size
    served_at = np.full(size, np.nan)
    via_reseller = np.zeros(size, dtype=bool)
    gone_at = population.arrival + population.patience
    rate = np.where(population.channel == 0, scenario.human_attempts_per_day, scenario.counter_attempts_per_day) / 24.0
    accepts = accepts_matrix(population, scenario)
    bot_capacity = scenario.reseller_accounts * scenario.cap_per_email
    bot_used: dict[int, int] = {}
    times, firsts = np.unique(population.slot_release, return_index=True)
    bounds = list(firsts) + [len(population.slot_release)]
    unfilled = 0
    for batch, moment in enumerate(times.tolist()):
        slots = np.arange(bounds[batch], bounds[batch + 1])
        reach = int(np.searchsorted(population.arrival, moment, side="right"))
        waiting = np.flatnonzero(np.isnan(served_at[:reach]) & (gone_at[:reach] > moment))
        week = int(moment // HOURS_PER_WEEK)
        buyers = waiting[population.buyer[waiting]]
        bot_bookings = min(len(slots), bot_capacity - bot_used.get(week, 0), len(buyers))
        if bot_bookings > 0:
            chosen = rng.choice(buyers, size=bot_bookings, replace=False)
            served_at[chosen] = moment
            via_reseller[chosen] = True
            bot_used[week] = bot_used.get(week, 0) + bot_bookings
            waiting = waiting[~via_reseller[waiting]]
        left = np.zeros((len(scenario.sites), len(HALF_DAYS)), dtype=np.int64)
        np.add.at(left, (population.slot_site[slots[bot_bookings:]], population.slot_half_day[slots[bot_bookings:]]), 1)
        unfilled += _race(waiting, moment, rate, population.accept_code, accepts, left, served_at, gone_at, rng)
        if progress is not None and batch % 8 == 0:
            progress(batch / len(times))
    end = scenario.weeks * HOURS_PER_WEEK
    stopped = np.fmin(np.fmin(np.where(np.isnan(served_at), np.inf, served_at), gone_at), end)
    attempts = rate * np.maximum(stopped - population.arrival, 0.0)
    return Outcome(
        rule="first_come", served_at=served_at, via_reseller=via_reseller, attempts=attempts,
        slots_total=len(population.slot_release), slots_unfilled=unfilled,
        bot_requests=scenario.reseller_accounts * end * 3600.0 / scenario.bot_poll_seconds,
    )


def _race(waiting: np.ndarray, moment: float, rate: np.ndarray, accept_code: np.ndarray, accepts: np.ndarray,
          left: np.ndarray, served_at: np.ndarray, gone_at: np.ndarray, rng: np.random.Generator) -> int:
    """People look at the page in the order of their next attempt; each takes a slot they can
    attend while any is left, unless they have given up before that attempt. Returns the slots
    nobody took."""
    remaining = int(left.sum())
    if remaining == 0 or len(waiting) == 0:
        return remaining
    next_look = rng.exponential(1.0, len(waiting)) / rate[waiting]
    order = np.argsort(next_look, kind="stable")
    for position in order.tolist():
        person = int(waiting[position])
        if moment + next_look[position] >= gone_at[person]:
            continue
        fits = np.flatnonzero((left > 0).ravel() & accepts[accept_code[person]].ravel())
        if fits.size == 0:
            continue
        left.ravel()[fits[0]] -= 1
        served_at[person] = moment + next_look[position]
        remaining -= 1
        if remaining == 0:
            break
    return remaining


# The lottery ------------------------------------------------------------------------


def uniform_policy() -> DrawPolicy:
    """The plain lottery: equal chances, no urgent phase, any slot for anyone."""
    return DrawPolicy(aging=0.0, urgency_window_days=0, urgency_share=0.0, constraints_apply=False)


def service_policy(scenario: Scenario) -> DrawPolicy:
    """The service's policy with the scenario's aging and urgent phase, constraints applied."""
    return DrawPolicy(aging=scenario.aging, urgency_window_days=scenario.urgency_window_days,
                      urgency_share=scenario.urgency_share, constraints_apply=True)


@dataclass(frozen=True)
class DrawInputs:
    """One simulated draw's inputs, as the service's lottery takes them."""

    entrants: lottery.EntrantColumns
    slots: lottery.SlotColumns
    phases: list[lottery.Phase]


def draw_inputs(population: Population, scenario: Scenario, policy: DrawPolicy, people: np.ndarray,
                draws_lost: np.ndarray, slot_indices: np.ndarray, scheduled_at: datetime.datetime,
                refs: list[str]) -> DrawInputs:
    """The entrants and slots of a draw, built by the service's rules (entrant_weight,
    entrant_group, entrant_accepts, draw_phases), each once per distinct value."""
    lost_values, weight_codes = np.unique(draws_lost[people], return_inverse=True)
    weights = tuple(draw_rules.entrant_weight(policy, int(lost)) for lost in lost_values)
    expiry_hours = population.expiry[people]
    expiry_days = np.where(np.isfinite(expiry_hours), np.floor(np.nan_to_num(expiry_hours, posinf=0.0) / 24.0), -1)
    day_values, day_codes = np.unique(expiry_days.astype(np.int64), return_inverse=True)
    groups: list[str | None] = [None]
    group_of_day = []
    for day in day_values.tolist():
        expiry = None if day < 0 else scenario.start + datetime.timedelta(days=day)
        group = draw_rules.entrant_group(policy, expiry, scheduled_at, TIMEZONE)
        if group not in groups:
            groups.append(group)
        group_of_day.append(groups.index(group))
    accept_sets: list[tuple[str, ...] | None] = []
    for sites, half_days in population.accept_choices:
        accept_sets.append(draw_rules.entrant_accepts(policy, sites, half_days))
    distinct_sets = list(dict.fromkeys(accept_sets))
    accept_of_choice = np.array([distinct_sets.index(found) for found in accept_sets], dtype=np.int32)
    entrants = lottery.EntrantColumns(
        refs=[refs[person] for person in people.tolist()],
        weights=weights,
        weight_codes=weight_codes.astype(np.int32),
        groups=tuple(groups),
        group_codes=np.array(group_of_day, dtype=np.int32)[day_codes] if len(people) else np.zeros(0, np.int32),
        accept_sets=tuple(distinct_sets),
        accept_codes=accept_of_choice[population.accept_code[people]],
    )
    class_names = [[slot_class(site, day) for day in HALF_DAYS] for site in scenario.sites]
    slots = lottery.SlotColumns(
        ids=[f"s{index:07d}" for index in slot_indices.tolist()],
        classes=[class_names[site][day] for site, day in zip(population.slot_site[slot_indices].tolist(),
                                                             population.slot_half_day[slot_indices].tolist())],
    )
    return DrawInputs(entrants, slots, draw_rules.draw_phases(policy, entrants, len(slots)))


def lottery_arm(rule: str, policy: DrawPolicy, population: Population, scenario: Scenario,
                rng: np.random.Generator, progress: Progress | None = None, check_chances: bool = True) -> Outcome:
    """Draws every `draw_every_weeks` weeks among everyone waiting at the cutoff (an hour before),
    of the slots released since the previous draw; a winner's appointment follows the draw."""
    size = population.size
    served_at = np.full(size, np.nan)
    draws_lost = np.zeros(size, dtype=np.int64)
    gone_at = population.arrival + population.patience
    refs = [f"R{index:07d}" for index in range(size)]
    draw_weeks = list(range(0, scenario.weeks, scenario.draw_every_weeks))
    previous = -math.inf
    unfilled = 0
    chance_rows: list[tuple] = []
    last_pool = None
    for number, week in enumerate(draw_weeks):
        moment = week * HOURS_PER_WEEK + scenario.draw_hour
        cutoff = moment - 1.0
        scheduled_at = _hours_to_datetime(scenario.start, moment)
        slot_indices = np.flatnonzero((population.slot_release > previous) & (population.slot_release <= moment))
        previous = moment
        reach = int(np.searchsorted(population.arrival, cutoff, side="right"))
        people = np.flatnonzero(np.isnan(served_at[:reach]) & (gone_at[:reach] > cutoff))
        if len(slot_indices) == 0 or len(people) == 0:
            unfilled += len(slot_indices)
            continue
        inputs = draw_inputs(population, scenario, policy, people, draws_lost, slot_indices, scheduled_at, refs)
        draw_id = schedules.draw_id(POOL_CODE, POOL_CODE, scheduled_at, TIMEZONE)
        result = lottery.run_draw(rng.bytes(lottery.SEED_BYTES), draw_id, inputs.entrants, inputs.slots,
                                  inputs.phases)
        winners = people[np.array(result.winner_indices, dtype=np.int64)]
        if check_chances:
            chance_rows += _chance_rows(number, inputs, policy, result.winner_indices, scheduled_at)
        served_at[winners] = moment
        draws_lost[people] += 1
        draws_lost[winners] -= 1
        unfilled += len(slot_indices) - len(winners)
        last_pool = (people, inputs, moment)
        if progress is not None:
            progress((number + 1) / len(draw_weeks))
    outcome = Outcome(rule=rule, served_at=served_at, via_reseller=np.zeros(size, dtype=bool), attempts=None,
                      slots_total=len(population.slot_release), slots_unfilled=unfilled, chance_rows=chance_rows)
    if last_pool is not None:
        people, inputs, moment = last_pool
        still = people[np.isnan(served_at[people]) & (gone_at[people] > moment)]
        outcome.outlook = newcomer_outlook(scenario, policy, inputs, draws_lost[still], moment)
    return outcome


def _urgent_phase(policy: DrawPolicy, inputs: DrawInputs, applicant_urgent_from: int | None):
    """The priority phase as the status page describes it (metrics/statistics.urgent_phase)."""
    if not (policy.urgency_window_days and policy.urgency_share):
        return None
    urgent = len(inputs.entrants.members(draw_rules.URGENT_GROUP))
    fraction = urgent / len(inputs.entrants) if len(inputs.entrants) else 0.0
    if fraction == 0 and applicant_urgent_from is None:
        return None
    return chances.UrgentPhase(policy.urgency_share, fraction, applicant_urgent_from)


def _chance_rows(number: int, inputs: DrawInputs, policy: DrawPolicy, winner_indices, scheduled_at) -> list[tuple]:
    """Per (weight, urgent) group of entrants: how many, how many won, and the chance the status
    page's estimator (chances.project_chances) gave each of them for this draw."""
    entrants = inputs.entrants
    values = entrants.weight_values()
    urgent_codes = [code for code, name in enumerate(entrants.groups) if name == draw_rules.URGENT_GROUP]
    is_urgent = np.isin(entrants.group_codes, urgent_codes)
    won = np.zeros(len(entrants), dtype=bool)
    won[np.array(winner_indices, dtype=np.int64)] = True
    distinct, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    upcoming = [chances.UpcomingDraw(scheduled_at, len(inputs.slots))]
    rows = []
    for position, weight in enumerate(distinct.tolist()):
        for urgent in (False, True):
            members = (inverse == position) & (is_urgent == urgent)
            count = int(members.sum())
            if count == 0:
                continue
            others = counts.astype(np.float64)
            others[position] -= 1  # the others: the pool less the applicant
            projection = chances.project_chances(
                weight, distinct, upcoming, policy.aging, pool_counts=others,
                urgent=_urgent_phase(policy, inputs, 0 if urgent else None))
            rows.append((number, weight, urgent, count, int(won[members].sum()), projection.next_draw_chance))
    return rows


def newcomer_outlook(scenario: Scenario, policy: DrawPolicy, inputs: DrawInputs, waiting_lost: np.ndarray,
                     moment: float) -> dict:
    """What the status page would tell someone joining after the last draw: the chance at the next
    draw and the dates their chance passes 50 % and 90 %, the pool taken as those still waiting
    after that draw (with their draws lost) and the scenario's slots per draw."""
    lost_values, counts = np.unique(waiting_lost, return_counts=True)
    distinct = np.array([float(draw_rules.entrant_weight(policy, int(lost))) for lost in lost_values.tolist()])
    if not distinct.size:
        distinct, counts = np.array([1.0]), np.array([0])
    per_draw = scenario.slots_per_week * scenario.draw_every_weeks
    step = scenario.draw_every_weeks * HOURS_PER_WEEK
    upcoming = [chances.UpcomingDraw(_hours_to_datetime(scenario.start, moment + step * (index + 1)), per_draw)
                for index in range(52)]
    projection = chances.project_chances(float(draw_rules.entrant_weight(policy, 0)), distinct, upcoming,
                                         policy.aging, pool_counts=counts.astype(np.float64),
                                         urgent=_urgent_phase(policy, inputs, None))
    now = _hours_to_datetime(scenario.start, moment)
    return {
        "next_draw_chance": projection.next_draw_chance,
        "date_50": projection.date_50.date() if projection.date_50 else None,
        "date_90": projection.date_90.date() if projection.date_90 else None,
        "days_50": (projection.date_50 - now).days if projection.date_50 else None,
        "days_90": (projection.date_90 - now).days if projection.date_90 else None,
    }
