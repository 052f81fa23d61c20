"""The policy simulator's staff page, less its routes (web/staff.py): reading the form, queuing the
run as an RQ job, reading the job back, and the charts of a result.

The simulation itself is queue_service/simulator; it runs in the worker
(worker/jobs.run_simulation, queued by name: the web app imports no job), and
the page follows its progress in the job's meta.
"""

from __future__ import annotations

import datetime
import math
import re

from babel.numbers import format_decimal, format_percent
from babel.units import format_unit
from flask_babel import format_date, get_locale, gettext
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from queue_service import simulator
from queue_service.simulator import from_pool
from queue_service.simulator.scenario import ScenarioProblems, read_value
from web import charts
from worker.queues import DEFAULT, queue

#: The job the worker runs (worker/jobs.py), named rather than imported.
JOB_FUNCTION = "worker.jobs.run_simulation"
#: A run of a year for 100,000 people takes about 10 s; a long one on a busy worker, minutes.
JOB_TIMEOUT_SECONDS = 900
#: Results stay a day, long enough to read, print and download them.
RESULT_TTL_SECONDS = 24 * 3600
#: RQ's job ids: a UUID in its usual spelling.
JOB_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")
#: Seeds a person may type.
MAX_SEED = 2**32 - 1
#: Fields of the form that change the starting point, in the order shown.
FORM_PARAMETERS = ("weeks", "arrivals_per_week", "slots_per_week", "draw_every_weeks", "aging", "urgency_share")


def parameter_labels() -> dict[str, str]:
    return {
        "weeks": gettext("Weeks simulated"),
        "arrivals_per_week": gettext("New applicants a week"),
        "slots_per_week": gettext("Slots a week"),
        "draw_every_weeks": gettext("A draw every … weeks"),
        "aging": gettext("Aging: weight = 1 + aging × draws lost"),
        "urgency_share": gettext("Share of slots reserved for urgent renewals (0 to 1)"),
    }


def rule_labels() -> dict[str, str]:
    return {
        "first_come": gettext("First come, first served"),
        "lottery": gettext("Uniform lottery"),
        "policy": gettext("The service's policy"),
    }


def metric_labels() -> dict[str, str]:
    return {
        "failed_attempts_share": gettext("Online booking attempts that fail"),
        "attempts_per_booking": gettext("Online attempts per booking"),
        "served_share": gettext("People with an appointment by the end"),
        "wait_median_days": gettext("Wait to the appointment: median"),
        "wait_p90_days": gettext("Wait: 90th percentile"),
        "wait_p99_days": gettext("Wait: 99th percentile"),
        "wait_max_days": gettext("Wait: longest"),
        "lapsed_renewals_share": gettext("Renewals whose permit lapsed before the appointment"),
        "gave_up_share": gettext("People who gave up"),
        "still_waiting_share": gettext("People still waiting at the end"),
        "resold_slots_share": gettext("Slots captured by bots and resold"),
        "unfilled_slots_share": gettext("Slots left unused"),
        "no_show_slots_share": gettext("Slots lost to no-shows"),
        "bot_requests": gettext("Requests by resellers' bots"),
        "served_share_online": gettext("With an appointment: online applicants"),
        "served_share_counter": gettext("With an appointment: counter applicants"),
        "wait_median_days_online": gettext("Median wait: online applicants"),
        "wait_median_days_counter": gettext("Median wait: counter applicants"),
        "served_8_weeks_early": gettext("Served within 8 weeks: registered in the first half"),
        "served_8_weeks_late": gettext("Served within 8 weeks: registered in the second half"),
        "next_draw_chance": gettext("A newcomer's chance at the next draw (status page)"),
        "days_to_50_percent": gettext("Days until a newcomer's chance passes 50 %"),
        "days_to_90_percent": gettext("Days until a newcomer's chance passes 90 %"),
        "date_50_percent": gettext("Date shown for 50 %"),
        "date_90_percent": gettext("Date shown for 90 %"),
    }


def scenario_title(name: str) -> str:
    """A named scenario in words."""
    return {"ain-2019": gettext("Ain, 2019 (calibrated on the Senate's figure)"),
            "default": gettext("An example prefecture")}.get(name, name)


def scenario_label(name: str, procedures) -> str:
    """What a person reads for a run's starting point: a named scenario in words, a pool's
    ("pool 01:renewal", queue_service/simulator/from_pool.py) by its procedure's label."""
    if name.startswith("pool "):
        code = name.removeprefix("pool ").rpartition(":")[2]
        label = next((procedure.label_fr for procedure in procedures if procedure.code == code), code)
        return gettext("Today's figures of the waiting list “%(name)s”", name=label)
    return gettext("Scenario “%(name)s”", name=scenario_title(name))


def scenario_assumptions() -> dict[str, list[str]]:
    """Each named scenario's assumptions by its label, translated (here rather than in the template:
    Jinja's gettext would read their "%" signs as placeholders)."""
    return {scenario_title(name): [gettext(line) for line in scenario.assumptions]
            for name, scenario in simulator.SCENARIOS.items() if scenario.assumptions}


def starting_points(procedures) -> list[tuple[str, str]]:
    """(value, label) of each starting point: the named scenarios, then each pool of the prefecture."""
    points = [(f"scenario:{name}", scenario_label(name, procedures)) for name in simulator.SCENARIOS]
    points += [(f"pool:{procedure.code}", scenario_label(f"pool {procedure.code}", [procedure]))
               for procedure in procedures]
    return points


def default_values() -> dict[str, str]:
    return {"start": "scenario:ain-2019", "seed": "1", "vary": "", "vary_value": ""}


def _number_error(name: str) -> str:
    kind, low, high = simulator.TUNABLE[name]
    if kind is int:
        return gettext("Give a whole number from %(low)s to %(high)s.", low=f"{low:g}", high=f"{high:g}")
    return gettext("Give a number from %(low)s to %(high)s.", low=f"{low:g}", high=f"{high:g}")


def too_many_message() -> str:
    return gettext("With the other values, this gives more than %(count)s applicants or slots, or cannot run.",
                   count=f"{simulator.MAX_PEOPLE:,}")


def read_form(form, store, code: str, timezone: str, now: datetime.datetime):
    """(scenario, seed, vary, errors) from the form; errors name the fields to correct."""
    errors: dict[str, str] = {}
    start = form.get("start", "")
    known = {value for value, _ in starting_points(store.procedures())}
    scenario = None
    if start not in known:
        errors["start"] = gettext("Choose a starting point from the list.")
    elif start.startswith("scenario:"):
        scenario = simulator.SCENARIOS[start.partition(":")[2]]
    else:
        procedure = start.partition(":")[2]
        try:
            scenario = from_pool.scenario_from_pool(store, f"{code}:{procedure}", timezone, now)
        except ScenarioProblems:  # a pool so busy that a year of it is more than a run may hold
            errors["start"] = too_many_message()
    seed_text = form.get("seed", "").strip()
    seed = int(seed_text) if seed_text.isascii() and seed_text.isdigit() and int(seed_text) <= MAX_SEED else None
    if seed is None:
        errors["seed"] = gettext("Give a whole number from 0 to %(high)s.", high=MAX_SEED)
    changes = {name: form.get(name, "").strip() for name in FORM_PARAMETERS if form.get(name, "").strip()}
    for name, value in changes.items():
        if read_value(name, value)[1]:
            errors[name] = _number_error(name)
    vary = None
    vary_name, vary_value = form.get("vary", ""), form.get("vary_value", "").strip()
    if vary_name:
        if vary_name not in simulator.VARIED:
            errors["vary"] = gettext("Choose a parameter from the list.")
        elif read_value(vary_name, vary_value)[1]:
            errors["vary_value"] = _number_error(vary_name)
        else:
            vary = (vary_name, float(vary_value.replace(",", ".")))
    if errors or scenario is None:
        return None, None, None, errors
    changed, problems = simulator.apply_values(scenario, changes)
    if changed is not None and vary is not None:
        problems = {("vary_value" if name == vary[0] else name): text
                    for name, text in simulator.apply_values(changed, {vary[0]: vary[1]})[1].items()}
    if changed is None or problems:
        return None, None, None, {name if name in FORM_PARAMETERS or name == "vary_value" else "start":
                                  too_many_message() for name in problems}
    return changed, seed, vary, {}


def start_job(connection, code: str, scenario, seed: int, vary) -> str:
    """Queue the run; its id names the result page."""
    job = queue(DEFAULT, connection).enqueue(
        JOB_FUNCTION, scenario, seed, vary, job_timeout=JOB_TIMEOUT_SECONDS, result_ttl=RESULT_TTL_SECONDS,
        failure_ttl=RESULT_TTL_SECONDS, meta={"prefecture": code, "progress": 0.0},
    )
    return job.id


def find_job(connection, code: str, job_id: str) -> Job | None:
    """The simulation job of that id started for this prefecture, or None."""
    if not JOB_ID.match(job_id):
        return None
    try:
        job = Job.fetch(job_id, connection=connection)
    except NoSuchJobError:
        return None
    if job.func_name != JOB_FUNCTION or job.meta.get("prefecture") != code:
        return None
    return job


def job_view(job: Job) -> dict:
    """What the page shows of a job: its state, progress and, once done, its result."""
    status = job.get_status(refresh=True)
    job.refresh()
    return {
        "id": job.id,
        "done": status == JobStatus.FINISHED,
        "failed": status in (JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED),
        "progress": float(job.meta.get("progress", 0.0)),
        "result": job.return_value() if status == JobStatus.FINISHED else None,
    }


def result_charts(run: dict) -> dict[str, charts.Chart]:
    """Per rule: appointments given each week (bars, those bought from resellers included) and
    people waiting at the end of each week (line)."""
    found = {}
    for rule, series in run["weekly"].items():
        labels = [gettext("W%(number)s", number=week + 1) for week in range(len(series["waiting"]))]
        given = [served + resold for served, resold in zip(series["served"], series["resold"])]
        found[rule] = charts.chart(labels, bars=given, line=series["waiting"])
    found["resold"] = charts.chart(
        [gettext("W%(number)s", number=week + 1) for week in range(len(run["weekly"]["first_come"]["resold"]))],
        bars=run["weekly"]["first_come"]["resold"]) if "first_come" in run["weekly"] else None
    return found


def shown_value(metric: str, value) -> str:
    """A figure as the reader writes it ("76,6 %", "18 j", "6 janvier 2020" in French); a dash
    where it does not apply. simulator.format_value is the command line's English."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    locale = get_locale()
    if metric.startswith("date_"):
        return format_date(datetime.date.fromisoformat(value), "long")
    if metric in simulator.PERCENT_METRICS:
        return format_percent(round(value, 3), locale=locale, decimal_quantization=False)
    if "days" in metric:
        return format_unit(round(value), "duration-day", length="short", locale=locale)
    if metric == "bot_requests":
        return format_decimal(round(value), locale=locale)
    return format_decimal(round(value, 1), locale=locale, decimal_quantization=False)


def rows(run: dict) -> list[tuple[str, list[str]]]:
    """The result table: a translated label and the formatted figure of each rule, per metric."""
    labels = metric_labels()
    return [(labels[metric], [shown_value(metric, run["figures"][rule].get(metric)) for rule in run["figures"]])
            for metric in simulator.METRICS]
