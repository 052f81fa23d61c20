"""Draws as scheduled: which are due, their records, and what each would offer.

The clock asks `due_draws` for each pool and claims each draw once (the
record and its job are written in one transaction); the draw job then calls
`record_due_draw`. The lottery itself (queue_service/lottery.py) will fill
the job's body; for now a draw records that it was due and what it offered.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from enum import Enum

from queue_service import schedules
from queue_service.errors import N_, InvalidTransition
from queue_service.schedules import DrawSchedule


class DrawState(str, Enum):
    DUE = "due"  # claimed by the clock (or an admin); its job is queued
    RECORDED = "recorded"  # the job ran: entrants and slots counted


class Trigger(str, Enum):
    SCHEDULE = "schedule"
    ADMIN = "admin"


@dataclass(frozen=True)
class DueDraw:
    prefecture: str
    procedure: str
    draw_id: str
    scheduled_at: datetime.datetime
    trigger: Trigger

    @property
    def pool(self) -> str:
        return f"{self.prefecture}:{self.procedure}"

    def record_fields(self, now: datetime.datetime) -> dict[str, str]:
        return {
            "draw_id": self.draw_id,
            "prefecture": self.prefecture,
            "procedure": self.procedure,
            "scheduled_at": self.scheduled_at.isoformat(),
            "trigger": self.trigger.value,
            "state": DrawState.DUE.value,
            "claimed_at": now.isoformat(),
        }


# At most this many draws of one pool are caught up per clock tick.
CATCH_UP_LIMIT = 100


def due_draws(schedule: DrawSchedule, reconciled_until: datetime.datetime | None, now: datetime.datetime) -> list[DueDraw]:
    """The scheduled draws in (reconciled_until, now]; from the schedule's creation when never reconciled.

    Draws missed while the service was down are caught up, oldest first, at
    most CATCH_UP_LIMIT at a time (see `reconciled_mark`).
    """
    since = reconciled_until or schedule.created_at
    return [
        DueDraw(
            schedule.prefecture,
            schedule.procedure,
            schedules.draw_id(schedule.prefecture, schedule.procedure, moment, schedule.timezone),
            moment,
            Trigger.SCHEDULE,
        )
        for moment in schedules.due_draw_times(schedule, since, now, limit=CATCH_UP_LIMIT)
    ]


def reconciled_mark(due: list[DueDraw], now: datetime.datetime) -> datetime.datetime:
    """How far a pool is reconciled once `due` are claimed: `now`, unless the
    catch-up was cut at the limit, then the last draw claimed."""
    return due[-1].scheduled_at if len(due) >= CATCH_UP_LIMIT else now


def draw_now(schedule: DrawSchedule | None, prefecture: str, procedure: str, timezone: str, now: datetime.datetime) -> DueDraw:
    """A draw an admin runs now, on the same path as scheduled ones (its id is the current minute)."""
    if schedule is None:
        raise InvalidTransition(N_("Set the pool's draw schedule and policy before running a draw."))
    moment = now.replace(second=0, microsecond=0)
    draw_id = schedules.draw_id(prefecture, procedure, moment, timezone)
    return DueDraw(prefecture, procedure, draw_id, moment, Trigger.ADMIN)


def upcoming(store, schedule: DrawSchedule, now: datetime.datetime, count: int = 5) -> list[tuple[datetime.datetime, int]]:
    """The next draws and how many open slots each would offer, as published today."""
    pool = f"{schedule.prefecture}:{schedule.procedure}"
    planned = []
    for moment in schedules.next_draw_times(schedule, now, count):
        start, end = schedules.slot_horizon(schedule, moment)
        planned.append((moment, store.open_slot_count(pool, start, end)))
    return planned


def record_due_draw(store, pool: str, draw_id: str, now: datetime.datetime) -> dict[str, str] | None:
    """The draw job's body for now: count what the draw has, once. A retried job changes nothing."""
    found = store.draw(pool, draw_id)
    if found is None or found["state"] != DrawState.DUE.value:
        return found
    schedule = store.schedule(pool)
    scheduled_at = datetime.datetime.fromisoformat(found["scheduled_at"])
    start, end = schedules.slot_horizon(schedule, scheduled_at)
    changes = {
        "state": DrawState.RECORDED.value,
        "recorded_at": now.isoformat(),
        "slots_offered": str(store.open_slot_count(pool, start, end)),
        "horizon_start": start.isoformat(),
        "horizon_end": end.isoformat(),
        "entrants": str(store.waiting_count(pool)),
    }
    store.update_draw(pool, draw_id, DrawState.DUE.value, changes)
    return store.draw(pool, draw_id)
