"""The policy simulator: one scenario under several allocation rules, side by side.

Why this package exists
-----------------------
A prefecture deciding to leave its first-come booking page, or choosing its
draw schedule and policy, needs to see what each choice does to waits,
lapsed renewals and the resale market before it applies it. `simulate` draws
one population and one slot inventory (scenario.py) and runs them under:

- ``first_come``: today's booking page, with resellers' bots and a booking
  cap per email (arms.first_come);
- ``lottery``: the service's draw with equal chances (arms.uniform_policy);
- ``policy``: the service's draw with the scenario's aging, urgent phase and
  site and half-day constraints (arms.service_policy).

The lottery arms call the service's own draw and policy functions, so the
simulator cannot drift from what the service does. Plain functions: the seed
and a progress callback come in as arguments; nothing touches Redis.
docs/simulator.md explains the model for prefecture staff.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from queue_service.simulator import arms
from queue_service.simulator.arms import Outcome
from queue_service.simulator.scenario import (
    AIN_2019_TARGET,
    CHANNELS,
    HOURS_PER_WEEK,
    MAX_PEOPLE,
    SCENARIOS,
    TUNABLE,
    Population,
    Scenario,
    apply_values,
    generate,
    scenario_problems,
)

__all__ = ["RULES", "SCENARIOS", "TUNABLE", "AIN_2019_TARGET", "Scenario", "Result", "simulate", "scenario_problems",
           "to_csv", "METRICS", "MAX_PEOPLE", "apply_values", "table", "format_value", "VARIED", "summary",
           "run_comparison"]

#: The rules compared, in the order they are shown.
RULES = ("first_come", "lottery", "policy")


@dataclass
class Result:
    """A run: its scenario and seed, each rule's figures (METRICS) and weekly series."""

    scenario: Scenario
    seed: int
    people: int
    slots: int
    figures: dict[str, dict[str, float | str | None]]  # rule -> metric -> value
    weekly: dict[str, dict[str, list[float]]]  # rule -> series -> one value a week
    outcomes: dict[str, Outcome]


#: The figures reported for each rule, in order, with what they mean.
METRICS: dict[str, str] = {
    "failed_attempts_share": "share of online booking attempts that fail (no free slot)",
    "attempts_per_booking": "online attempts per appointment booked online",
    "served_share": "share of people with an appointment by the end",
    "wait_median_days": "days from first attempt (or registration) to appointment, median",
    "wait_p90_days": "the same, 90th percentile",
    "wait_p99_days": "the same, 99th percentile",
    "wait_max_days": "the same, maximum",
    "lapsed_renewals_share": "renewals whose permit expired before their appointment (among expiries in the run)",
    "gave_up_share": "share of people who gave up",
    "still_waiting_share": "share still waiting at the end",
    "resold_slots_share": "share of the slots captured by resellers' bots and resold",
    "unfilled_slots_share": "share of the slots nobody booked or won",
    "no_show_slots_share": "share of the slots lost to no-shows",
    "bot_requests": "requests made by the resellers' bots",
    "served_share_online": "served share, online applicants",
    "served_share_counter": "served share, counter applicants",
    "wait_median_days_online": "median wait, online applicants",
    "wait_median_days_counter": "median wait, counter applicants",
    "served_8_weeks_early": "served within 8 weeks, registered in the first half of the run",
    "served_8_weeks_late": "served within 8 weeks, registered in the second half (less the last 8 weeks)",
    "next_draw_chance": "a newcomer's chance at the next draw, as the status page estimates it",
    "days_to_50_percent": "days until a newcomer's chance passes 50 % (status page's estimate)",
    "days_to_90_percent": "days until a newcomer's chance passes 90 % (status page's estimate)",
    "date_50_percent": "the date the status page would show for 50 %",
    "date_90_percent": "the date the status page would show for 90 %",
}


def simulate(scenario: Scenario, seed: int, rules: tuple[str, ...] = RULES,
             progress: Callable[[float, str], None] | None = None) -> Result:
    """Run `scenario` under each rule on the same people and slots. Same seed, same result."""
    problems = scenario_problems(scenario)
    if problems:
        raise ValueError("; ".join(f"{name}: {text}" for name, text in problems.items()))
    unknown = set(rules) - set(RULES)
    if unknown:
        raise ValueError(f"unknown rules: {', '.join(sorted(unknown))}")
    streams = np.random.SeedSequence(seed).spawn(1 + len(RULES))
    population = generate(scenario, np.random.default_rng(streams[0]))
    outcomes: dict[str, Outcome] = {}
    for position, rule in enumerate(rules):
        def step(fraction: float, position=position, rule=rule) -> None:
            if progress is not None:
                progress((position + min(max(fraction, 0.0), 1.0)) / len(rules), rule)

        rng = np.random.default_rng(streams[1 + RULES.index(rule)])
        if rule == "first_come":
            outcomes[rule] = arms.first_come(population, scenario, rng, step)
        elif rule == "lottery":
            outcomes[rule] = arms.lottery_arm(rule, arms.uniform_policy(), population, scenario, rng, step)
        else:
            outcomes[rule] = arms.lottery_arm(rule, arms.service_policy(scenario), population, scenario, rng, step)
        step(1.0)
    return Result(
        scenario=scenario, seed=seed, people=population.size, slots=len(population.slot_release),
        figures={rule: figures(outcome, population, scenario) for rule, outcome in outcomes.items()},
        weekly={rule: weekly_series(outcome, population, scenario) for rule, outcome in outcomes.items()},
        outcomes=outcomes,
    )


def _share(part: float, whole: float) -> float | None:
    return None if whole == 0 else float(part) / float(whole)


def _days(values: np.ndarray, quantile: float) -> float | None:
    return None if values.size == 0 else float(np.quantile(values, quantile)) / 24.0


def figures(outcome: Outcome, population: Population, scenario: Scenario) -> dict[str, float | str | None]:
    """The metrics of one rule (METRICS), from who was served when."""
    end = scenario.weeks * HOURS_PER_WEEK
    served = ~np.isnan(outcome.served_at)
    delay = scenario.appointment_delay_weeks * HOURS_PER_WEEK
    appointment = np.where(served, outcome.served_at + delay, np.inf)
    wait = (appointment - population.arrival)[served]
    gone_at = population.arrival + population.patience
    gave_up = ~served & (gone_at <= end)
    expiring = population.renewal & (population.expiry <= end)
    lapsed = expiring & (appointment > population.expiry)
    online = population.channel == 0
    found: dict[str, float | str | None] = {}
    if outcome.attempts is not None:
        own_bookings = served & ~outcome.via_reseller
        attempts = float(outcome.attempts[online].sum())
        booked = float((own_bookings & online).sum())
        found["failed_attempts_share"] = None if attempts == 0 else max(0.0, 1.0 - booked / attempts)
        found["attempts_per_booking"] = _share(attempts, booked)
    else:
        found["failed_attempts_share"] = None  # one registration, no attempt to fail
        found["attempts_per_booking"] = None
    found["served_share"] = _share(served.sum(), population.size)
    found["wait_median_days"] = _days(wait, 0.5)
    found["wait_p90_days"] = _days(wait, 0.9)
    found["wait_p99_days"] = _days(wait, 0.99)
    found["wait_max_days"] = None if wait.size == 0 else float(wait.max()) / 24.0
    found["lapsed_renewals_share"] = _share(lapsed.sum(), expiring.sum())
    found["gave_up_share"] = _share(gave_up.sum(), population.size)
    found["still_waiting_share"] = _share((~served & ~gave_up).sum(), population.size)
    found["resold_slots_share"] = _share(outcome.via_reseller.sum(), outcome.slots_total)
    found["unfilled_slots_share"] = _share(outcome.slots_unfilled, outcome.slots_total)
    found["no_show_slots_share"] = _share((served & population.no_show).sum(), outcome.slots_total)
    found["bot_requests"] = float(outcome.bot_requests)
    for code, channel in enumerate(CHANNELS):
        members = population.channel == code
        found[f"served_share_{channel}"] = _share((served & members).sum(), members.sum())
        found[f"wait_median_days_{channel}"] = _days((appointment - population.arrival)[served & members], 0.5)
    window = 8 * HOURS_PER_WEEK
    halfway = end / 2
    early = population.arrival < halfway
    late = (population.arrival >= halfway) & (population.arrival < end - window)
    in_time = served & (appointment - population.arrival <= window + delay)
    found["served_8_weeks_early"] = _share((in_time & early).sum(), early.sum())
    found["served_8_weeks_late"] = _share((in_time & late).sum(), late.sum())
    outlook = outcome.outlook or {}
    found["next_draw_chance"] = outlook.get("next_draw_chance")
    found["days_to_50_percent"] = outlook.get("days_50")
    found["days_to_90_percent"] = outlook.get("days_90")
    found["date_50_percent"] = outlook["date_50"].isoformat() if outlook.get("date_50") else None
    found["date_90_percent"] = outlook["date_90"].isoformat() if outlook.get("date_90") else None
    return found


def weekly_series(outcome: Outcome, population: Population, scenario: Scenario) -> dict[str, list[float]]:
    """Per week: appointments given to people, bought from resellers, and people waiting at its end."""
    weeks = scenario.weeks
    served = ~np.isnan(outcome.served_at)
    week_of = np.floor(np.where(served, outcome.served_at, 0) / HOURS_PER_WEEK).astype(np.int64)
    week_of = np.clip(week_of, 0, weeks - 1)
    own = np.bincount(week_of[served & ~outcome.via_reseller], minlength=weeks)[:weeks]
    resold = np.bincount(week_of[served & outcome.via_reseller], minlength=weeks)[:weeks]
    gone_at = population.arrival + population.patience
    served_at = np.where(served, outcome.served_at, np.inf)
    waiting = []
    for week in range(weeks):
        moment = (week + 1) * HOURS_PER_WEEK
        waiting.append(int(np.sum((population.arrival <= moment) & (served_at > moment) & (gone_at > moment))))
    return {"served": own.tolist(), "resold": resold.tolist(), "waiting": waiting}


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}" if math.isfinite(value) else ""
    return str(value)


def to_csv(result: Result) -> str:
    """One row a metric, one column a rule (empty where a figure does not apply), then the
    scenario's parameters and the seed, so that a file says how it was made."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    rules = list(result.figures)
    writer.writerow(["metric", *rules])
    for metric in METRICS:
        writer.writerow([metric, *[_cell(result.figures[rule].get(metric)) for rule in rules]])
    writer.writerow(["people", *[result.people] * len(rules)])
    writer.writerow(["slots", *[result.slots] * len(rules)])
    writer.writerow(["seed", *[result.seed] * len(rules)])
    writer.writerow(["scenario", *[result.scenario.name] * len(rules)])
    for name in TUNABLE:
        writer.writerow([f"param:{name}", *[getattr(result.scenario, name)] * len(rules)])
    return text.getvalue()


#: Metrics shown as percentages, and those that are dates or counts.
PERCENT_METRICS = frozenset(name for name in METRICS if "share" in name or name.startswith("served_")
                            or name == "next_draw_chance")


def format_value(metric: str, value) -> str:
    """A figure as a person reads it: "76.5 %", "21 d", "—" where it does not apply."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    if isinstance(value, str):
        return value
    if metric in PERCENT_METRICS:
        return f"{100 * value:.1f} %"
    if metric == "bot_requests":
        return f"{value:,.0f}"
    if metric.endswith("_days") or metric.startswith("days_") or "_days_" in metric:
        return f"{value:.0f} d"
    return f"{value:.1f}"


def table(result: Result) -> list[list[str]]:
    """The side-by-side table: a header, then one row a metric (formatted)."""
    rules = list(result.figures)
    rows = [["metric", *rules]]
    for metric in METRICS:
        rows.append([metric, *[format_value(metric, result.figures[rule].get(metric)) for rule in rules]])
    return rows


#: The parameters the staff page varies one at a time.
VARIED = ("slots_per_week", "draw_every_weeks", "aging", "urgency_share")


def summary(result: Result) -> dict:
    """A run as plain data (for a job's result and a page): figures, weekly series, table, CSV."""
    return {
        "scenario": result.scenario.name,
        "seed": result.seed,
        "weeks": result.scenario.weeks,
        "people": result.people,
        "slots": result.slots,
        "figures": result.figures,
        "weekly": result.weekly,
        "table": table(result),
        "csv": to_csv(result),
    }


def run_comparison(scenario: Scenario, seed: int, vary: tuple[str, float] | None = None,
                   progress: Callable[[float], None] | None = None) -> dict:
    """The scenario under every rule and, with `vary` (a parameter of VARIED and its other value),
    the same people's scenario with that one value changed; as plain data (summary)."""
    runs = [scenario]
    if vary is not None:
        name, value = vary
        if name not in VARIED:
            raise ValueError(f"{name} is not a parameter the comparison varies")
        changed, problems = apply_values(scenario, {name: value})
        if changed is None:
            raise ValueError("; ".join(f"{key} {text}" for key, text in problems.items()))
        runs.append(changed)
    done = []
    for position, run in enumerate(runs):
        def step(fraction: float, rule: str, position=position) -> None:
            if progress is not None:
                progress((position + fraction) / len(runs))

        done.append(summary(simulate(run, seed, progress=step)))
    return {"base": done[0], "varied": done[1] if vary is not None else None,
            "vary": list(vary) if vary is not None else None}
