"""A scenario: who arrives when, what they need, what the prefecture publishes.

Every figure of a scenario is a parameter; `generate` turns one into the
arrays the arms share (queue_service/simulator/__init__.py runs them on the
same people and the same slots). Randomness comes in as a numpy Generator.
"""

from __future__ import annotations

import dataclasses
import datetime
import math
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from queue_service.errors import N_
from queue_service.reference import HALF_DAYS

HOURS_PER_WEEK = 168.0
MORNINGS = tuple(day for day in HALF_DAYS if day.endswith("-am"))
CHANNELS = ("online", "counter")
RELEASE_PATTERNS = ("fixed", "trickle")


#: At most this many applicants, or slots, in one run (a worker's memory and a page's patience).
MAX_PEOPLE = 2_000_000


class ScenarioProblems(ValueError):
    """A scenario's values that cannot run, by parameter."""

    def __init__(self, problems: dict[str, str]):
        super().__init__("; ".join(f"{name}: {text}" for name, text in problems.items()))
        self.problems = problems


@dataclass(frozen=True)
class Scenario:
    """The parameters of one simulation. Times are in weeks or hours from the start (a Monday, 00:00)."""

    name: str = "custom"
    start: datetime.date = datetime.date(2026, 1, 5)
    weeks: int = 52
    # Demand.
    arrivals_per_week: float = 1900.0
    rush_weeks: tuple[int, int] = (35, 40)  # [first, last] weeks of a rush (September's students)
    rush_factor: float = 1.5  # arrivals are multiplied by this during the rush
    renewal_share: float = 0.4  # share of arrivals renewing a permit, with an expiry date
    renewal_lead_weeks: tuple[float, float] = (4.0, 16.0)  # permit expires this long after arrival (uniform)
    counter_share: float = 0.15  # share who come through the counter (or phone) rather than online
    constrained_share: float = 0.3  # share naming one site or mornings only
    give_up_share: float = 0.3  # share who give up...
    give_up_weeks: float = 8.0  # ...after this many weeks without an appointment
    no_show_share: float = 0.08
    # Supply.
    slots_per_week: int = 1500
    sites: tuple[str, ...] = ("prefecture", "sub-prefecture")
    release: str = "fixed"  # "fixed": at release_hours; "trickle": hourly, working hours, Monday to Friday
    release_hours: tuple[float, ...] = (8.0, 80.0)  # hours from Monday 00:00 (Monday 8:00, Thursday 8:00)
    appointment_delay_weeks: float = 2.0  # an appointment is this long after its booking or its draw
    # First come, first served.
    human_attempts_per_day: float = 3.0  # online applicants' tries at the booking page
    counter_attempts_per_day: float = 0.3  # those who need a counter or a phone call
    bot_poll_seconds: float = 5.0  # resellers' bots poll this often: they see a release first
    reseller_accounts: int = 40  # email addresses the resellers book with
    cap_per_email: int = 2  # bookings an email may make per week (the ministry's cap)
    buyer_share: float = 0.1  # share of applicants who would pay a reseller
    # Lottery.
    draw_every_weeks: int = 1
    draw_hour: float = 10.0  # hours from Monday 00:00
    aging: float = 0.5
    urgency_window_days: int = 60
    urgency_share: float = 0.1
    assumptions: tuple[str, ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        problems = scenario_problems(self)
        if problems:
            raise ScenarioProblems(problems)

    def with_values(self, **values) -> Scenario:
        return dataclasses.replace(self, **values)


#: Parameters a person may change from the page or the command line: name -> (type, low, high).
TUNABLE: dict[str, tuple[type, float, float]] = {
    "weeks": (int, 1, 260),
    "arrivals_per_week": (float, 0, 100_000),
    "slots_per_week": (int, 0, 100_000),
    "renewal_share": (float, 0, 1),
    "counter_share": (float, 0, 1),
    "give_up_share": (float, 0, 1),
    "give_up_weeks": (float, 0.5, 260),
    "no_show_share": (float, 0, 1),
    "human_attempts_per_day": (float, 0.01, 1000),
    "reseller_accounts": (int, 0, 100_000),
    "cap_per_email": (int, 0, 1000),
    "buyer_share": (float, 0, 1),
    "draw_every_weeks": (int, 1, 13),
    "aging": (float, 0, 10),
    "urgency_share": (float, 0, 1),
}


def scenario_problems(scenario: Scenario) -> dict[str, str]:
    """What is wrong with a scenario's values, by parameter (empty when it can run)."""
    problems = {}
    for name, (kind, low, high) in TUNABLE.items():
        value = getattr(scenario, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and value != int(value)):
            problems[name] = f"must be {'a whole number' if kind is int else 'a number'}"
        elif not low <= value <= high:
            problems[name] = f"must be from {low:g} to {high:g}"
    if scenario.release not in RELEASE_PATTERNS:
        problems["release"] = f"must be one of {', '.join(RELEASE_PATTERNS)}"
    if not scenario.release_hours or any(not 0 <= hour < HOURS_PER_WEEK for hour in scenario.release_hours):
        problems["release_hours"] = "each must be an hour of the week, from 0 to 167"
    if not 0 <= scenario.draw_hour < HOURS_PER_WEEK:
        problems["draw_hour"] = "must be an hour of the week, from 0 to 167"
    if not scenario.sites:
        problems["sites"] = "name at least one site"
    if not problems and float(weekly_arrivals(scenario).sum()) > MAX_PEOPLE:
        problems["arrivals_per_week"] = f"gives more than {MAX_PEOPLE:,} applicants over the weeks simulated"
    if not problems and scenario.slots_per_week * scenario.weeks > MAX_PEOPLE:
        problems["slots_per_week"] = f"gives more than {MAX_PEOPLE:,} slots over the weeks simulated"
    low, high = scenario.renewal_lead_weeks
    if not 0 <= low <= high:
        problems["renewal_lead_weeks"] = "must be two numbers, the first not above the second"
    return problems


def read_value(name: str, raw: object) -> tuple[int | float | None, str | None]:
    """One TUNABLE parameter from text (a form, a command line) or a number: (value, None), or
    (None, the problem) when it is unknown, unreadable or out of range."""
    if name not in TUNABLE:
        return None, "is not a parameter one can change"
    kind, low, high = TUNABLE[name]
    try:
        number = float(raw) if isinstance(raw, (int, float)) else float(str(raw).strip().replace(",", "."))
    except ValueError:
        return None, "must be a number"
    if not math.isfinite(number) or (kind is int and number != int(number)):
        return None, f"must be {'a whole number' if kind is int else 'a number'}"
    if not low <= number <= high:
        return None, f"must be from {low:g} to {high:g}"
    return (int(number) if kind is int else number), None


def apply_values(base: Scenario, values: Mapping[str, object]) -> tuple[Scenario | None, dict[str, str]]:
    """`base` with some TUNABLE parameters changed (read_value); (None, {name: problem}) when a
    value cannot be read or the scenario they make cannot run."""
    problems: dict[str, str] = {}
    changes: dict[str, object] = {}
    for name, raw in values.items():
        value, problem = read_value(name, raw)
        if problem:
            problems[name] = problem
        else:
            changes[name] = value
    if problems:
        return None, problems
    try:
        return base.with_values(**changes), {}
    except ScenarioProblems as refused:
        return None, refused.problems


@dataclass(frozen=True)
class Population:
    """Everyone who arrives during the run, and every slot published, as columns.

    Person i arrives at ``arrival[i]`` (hours from the start); ``expiry[i]``
    is when their permit expires (inf for a first request); ``patience[i]``
    is how long they wait before giving up (inf: they never do);
    ``accept_code[i]`` indexes ``accept_choices`` (sites, half-days named).
    Slot j is released at ``slot_release[j]`` (hours), at ``slot_site[j]`` on
    half-day ``slot_half_day[j]`` (indexes into scenario.sites and HALF_DAYS).
    """

    arrival: np.ndarray
    renewal: np.ndarray
    expiry: np.ndarray
    channel: np.ndarray  # index into CHANNELS
    patience: np.ndarray
    no_show: np.ndarray
    buyer: np.ndarray
    accept_code: np.ndarray
    accept_choices: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...]
    slot_release: np.ndarray
    slot_site: np.ndarray
    slot_half_day: np.ndarray

    @property
    def size(self) -> int:
        return len(self.arrival)


def weekly_arrivals(scenario: Scenario) -> np.ndarray:
    """Expected arrivals of each week, the rush included."""
    weeks = np.arange(scenario.weeks)
    first, last = scenario.rush_weeks
    in_rush = (weeks >= first) & (weeks <= last)
    return scenario.arrivals_per_week * np.where(in_rush, scenario.rush_factor, 1.0)


def release_times(scenario: Scenario) -> np.ndarray:
    """The hours of the week at which slots are released."""
    if scenario.release == "fixed":
        return np.array(sorted(scenario.release_hours), dtype=np.float64)
    return np.array([day * 24.0 + hour for day in range(5) for hour in range(8, 18)], dtype=np.float64)


def accept_choices(scenario: Scenario) -> tuple[tuple[tuple[str, ...], tuple[str, ...]], ...]:
    """(sites, half-days) people name: any (both empty: no constraint), one site, or mornings only."""
    everywhere = tuple(scenario.sites)
    return ((), ()), *(((site,), HALF_DAYS) for site in everywhere), (everywhere, MORNINGS)


def generate(scenario: Scenario, rng: np.random.Generator) -> Population:
    """Draw the people and the slots of a run (the same for every arm)."""
    counts = rng.poisson(weekly_arrivals(scenario))
    week_of = np.repeat(np.arange(scenario.weeks), counts)
    size = len(week_of)
    arrival = np.sort((week_of + rng.random(size)) * HOURS_PER_WEEK)
    renewal = rng.random(size) < scenario.renewal_share
    low, high = scenario.renewal_lead_weeks
    lead = rng.uniform(low, high, size) * HOURS_PER_WEEK
    expiry = np.where(renewal, arrival + lead, np.inf)
    channel = (rng.random(size) < scenario.counter_share).astype(np.int8)
    patience = np.where(rng.random(size) < scenario.give_up_share, scenario.give_up_weeks * HOURS_PER_WEEK, np.inf)
    no_show = rng.random(size) < scenario.no_show_share
    buyer = rng.random(size) < scenario.buyer_share
    choices = accept_choices(scenario)
    constrained = rng.random(size) < scenario.constrained_share
    accept_code = np.where(constrained, rng.integers(1, len(choices), size), 0).astype(np.int32)
    offsets = release_times(scenario)
    per_week = scenario.slots_per_week
    # Each week's slots spread evenly over its release times, the remainder to the first ones.
    batch = np.full(len(offsets), per_week // len(offsets))
    batch[: per_week % len(offsets)] += 1
    week_offsets = np.repeat(offsets, batch)
    slot_release = (np.arange(scenario.weeks)[:, None] * HOURS_PER_WEEK + week_offsets[None, :]).ravel()
    slot_count = len(slot_release)
    slot_site = rng.integers(0, len(scenario.sites), slot_count).astype(np.int32)
    slot_half_day = rng.integers(0, len(HALF_DAYS), slot_count).astype(np.int32)
    return Population(
        arrival=arrival, renewal=renewal, expiry=expiry, channel=channel, patience=patience, no_show=no_show,
        buyer=buyer, accept_code=accept_code, accept_choices=choices, slot_release=slot_release,
        slot_site=slot_site, slot_half_day=slot_half_day,
    )


def accepts_matrix(population: Population, scenario: Scenario) -> np.ndarray:
    """accepts[choice, site, half_day]: whether people of that choice can attend such a slot."""
    matrix = np.zeros((len(population.accept_choices), len(scenario.sites), len(HALF_DAYS)), dtype=bool)
    for code, (sites, half_days) in enumerate(population.accept_choices):
        for site_index, site in enumerate(scenario.sites):
            for day_index, day in enumerate(HALF_DAYS):
                matrix[code, site_index, day_index] = not sites or (site in sites and day in half_days)
    return matrix


# Named scenarios ---------------------------------------------------------------------------

AIN_2019_ASSUMPTIONS = (  # shown translated on the staff page (messages catalogue), in English by qs simulate
    N_("ASSUMPTIONS, not measurements: only the three-quarters failure figure comes from the record "
       "(Senate written question on the prefecture of Ain, first half of 2019); every number below was "
       "chosen so that first come, first served reproduces it (docs/simulator.md)."),
    N_("Demand: 1,000 new applicants a week, x1.5 during a September rush (weeks 35 to 40), about 1,060 a "
       "week over the year; 30 % are renewals whose permit expires 4 to 16 weeks after their first try."),
    N_("Capacity: 1,050 slots a week (demand over capacity about 1.0 over the year, 1.4 during the rush), "
       "released twice a week (Monday and Thursday 8:00), the appointment two weeks after the booking."),
    N_("People: online applicants try the booking page 0.7 times a day (about five tries a week); those "
       "who depend on a counter or a phone line (15 %) manage once every ten days; giving up after 6 weeks: "
       "30 %; not showing up: 8 %; able to attend only one site or only mornings: 30 %."),
    N_("Resellers: 30 email addresses polling every 5 seconds, capped at 2 bookings an email a week, "
       "selling to the applicants willing to pay (10 %)."),
    N_("The failure share counts people's online attempts, not bots' requests (which fail almost always "
       "and are reported apart)."),
)

SCENARIOS: dict[str, Scenario] = {
    "default": Scenario(name="default"),
    "ain-2019": Scenario(
        name="ain-2019",
        start=datetime.date(2019, 1, 7),
        weeks=52,
        arrivals_per_week=1000.0,
        rush_weeks=(35, 40),
        rush_factor=1.5,
        renewal_share=0.3,
        renewal_lead_weeks=(4.0, 16.0),
        counter_share=0.15,
        constrained_share=0.3,
        give_up_share=0.3,
        give_up_weeks=6.0,
        no_show_share=0.08,
        slots_per_week=1050,
        release="fixed",
        release_hours=(8.0, 80.0),
        appointment_delay_weeks=2.0,
        human_attempts_per_day=0.7,
        counter_attempts_per_day=0.1,
        bot_poll_seconds=5.0,
        reseller_accounts=30,
        cap_per_email=2,
        buyer_share=0.1,
        draw_every_weeks=1,
        aging=0.5,
        urgency_window_days=60,
        urgency_share=0.1,
        assumptions=AIN_2019_ASSUMPTIONS,
    ),
}

#: The band the calibrated scenario must reproduce: three quarters of attempts fail, within 5 points.
AIN_2019_TARGET = (0.70, 0.80)
