"""A scenario that starts from a pool's real figures: its arrivals, slots, schedule and policy.

The staff page offers it so that a prefecture varies one parameter of what it
runs today rather than of an invented scenario. Read from the daily counters
(queue_service/metrics) and the schedule; nothing reads registrations one by one.
"""

from __future__ import annotations

import datetime
import math

from queue_service import metrics
from queue_service.draws import schedules
from queue_service.draws.schedules import DrawSchedule
from queue_service.metrics import Event
from queue_service.simulator.scenario import SCENARIOS, Scenario

#: Weeks of counters the figures are averaged over.
WEEKS_READ = 8


def scenario_from_figures(base: Scenario, name: str, registered: int, slots_offered: int, weeks: int,
                          schedule: DrawSchedule | None, now: datetime.datetime) -> Scenario:
    """`base` with the pool's weekly arrivals and slots (counted over `weeks`), the spacing of its
    next draws and its policy's aging and urgent phase; `base`'s values where the pool has none."""
    changes: dict[str, object] = {"name": name, "start": now.date() - datetime.timedelta(days=now.weekday())}
    if registered:
        changes["arrivals_per_week"] = registered / weeks
    if slots_offered:
        changes["slots_per_week"] = max(1, round(slots_offered / weeks))
    if schedule is not None:
        policy = schedule.policy
        changes.update(aging=float(policy.aging), urgency_share=float(policy.urgency_share),
                       urgency_window_days=int(policy.urgency_window_days))
        times = schedules.next_draw_times(schedule, now, count=5)
        if len(times) >= 2:
            days = (times[-1] - times[0]).total_seconds() / 86400 / (len(times) - 1)
            changes["draw_every_weeks"] = min(13, max(1, math.floor(days / 7 + 0.5)))
    return base.with_values(**changes)


def scenario_from_pool(store, pool: str, timezone: str, now: datetime.datetime,
                       base: Scenario | None = None) -> Scenario:
    """The scenario of a pool ("01:first_request") from its last WEEKS_READ weeks of counters."""
    today = datetime.date.fromisoformat(metrics.stats_day(now, timezone))
    daily = store.stats_days(pool, today - datetime.timedelta(days=7 * WEEKS_READ - 1), today)
    registered = sum(values.get(Event.REGISTERED.value, 0) for values in daily.values())
    offered = sum(values.get(Event.SLOTS_OFFERED.value, 0) for values in daily.values())
    return scenario_from_figures(base or SCENARIOS["default"], f"pool {pool}", registered, offered, WEEKS_READ,
                                 store.schedule(pool), now)
