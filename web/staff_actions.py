"""What a staff page and the staff API both do to schedules and draws, written once.

The pages (web/staff.py) and the API (web/staff_api/) check access their own
way (a session and `allow`, a token and its scope), then call these, so that
the same action gives the same result whichever door it comes through. None
of them checks access: the caller has.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from zoneinfo import ZoneInfo

from queue_service import draws as draw_rules
from queue_service.draws import Draw, DueDraw
from queue_service.draws import schedules as schedule_rules
from queue_service.draws.schedules import DrawSchedule
from queue_service.errors import UnknownDraw, UnknownSchedule
from queue_service.pools import PoolId
from web import services
from worker.jobs import start_draw_now


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def zone_of(schedule: DrawSchedule) -> ZoneInfo:
    return ZoneInfo(schedule.timezone)


def pool_of(code: str, procedure_code: str) -> PoolId:
    """The pool (404 for an unknown prefecture or procedure)."""
    store = services().store
    store.prefecture(code)
    return PoolId.of(code, store.procedure(procedure_code).code)


def save_schedule(code: str, procedure_code: str, values: Mapping[str, object]) -> DrawSchedule:
    """Replace the pool's schedule and policy by the admin's `values` (parse_schedule's plain
    values); ValidationFailed, nothing saved, if one is wrong."""
    store = services().store
    pool = pool_of(code, procedure_code)
    edited = schedule_rules.parse_schedule(values, code, pool.procedure, store.prefecture(code).timezone, now())
    store.save_schedule(edited)
    return edited


def add_draw_date(code: str, procedure_code: str, local_time: object) -> tuple[DrawSchedule, DueDraw]:
    """Add one draw, at the local wall time `local_time`, to the pool's schedule, keeping its
    other draws (schedules.add_draw_date); (the schedule, the draw it adds)."""
    store = services().store
    pool = pool_of(code, procedure_code)
    current = store.schedule(pool)
    if current is None:
        raise UnknownSchedule()
    edited, moment = schedule_rules.add_draw_date(current, local_time, now())
    store.save_schedule(edited)
    return edited, draw_rules.DueDraw(code, pool.procedure, schedule_rules.draw_id(
        code, pool.procedure, moment, edited.timezone), moment, draw_rules.Trigger.SCHEDULE)


def start_run_now(code: str, procedure_code: str, at: datetime.datetime | None = None) -> tuple[DueDraw, bool]:
    """Run a draw of the pool now (worker.jobs.start_draw_now: announced at once, its entries
    closing a short delay later, run then): (the draw, whether this call started it). Its id is its minute, `at` (the minute a confirmation showed, within
    draws.RUN_NOW_CONFIRMATION) or the current one, so a second call in the same minute starts
    nothing: (the same draw, False)."""
    store = services().store
    pool = pool_of(code, procedure_code)
    schedule = store.schedule(pool)
    moment = now()
    due = draw_rules.draw_now(schedule, code, pool.procedure, store.prefecture(code).timezone, moment, at=at)
    return due, start_draw_now(services().redis, schedule, due, moment, services().settings, services().store)


def release_draw(code: str, procedure_code: str, draw_id: str, by: str) -> Draw:
    """Publish a held draw after staff review (`by`: their account); 404 for an unknown draw,
    409 for one not held."""
    store = services().store
    pool = pool_of(code, procedure_code)
    if store.draw(pool, draw_id) is None:
        raise UnknownDraw()
    draw_rules.release_held(store, pool, draw_id, now(), by=by)
    return store.draw(pool, draw_id)
