"""Draw schedules and policies: read, replaced, one explicit draw added.

The values are those of the schedule page's form, read by the same parser
(queue_service.draws.schedules.parse_schedule) through the same function as
the page (web/staff_actions.py); what GET answers can be sent back by PUT.
"""

from __future__ import annotations

from flask import jsonify

from queue_service import draws as draw_rules
from queue_service.draws import schedules as schedule_rules
from queue_service.draws.schedules import DrawSchedule, schedule_to_dict
from queue_service.errors import UnknownSchedule
from queue_service.offers import OfferTiming
from queue_service.pools import PoolId
from queue_service.staff.accounts import Scope
from web import services, staff_actions
from web.api import json_body
from web.staff_api import answer, created, json_body_of, route

SCHEDULE_EXAMPLE = {
    "cron": "0 10 * * MON",
    "dates": ["2027-01-13 14:00"],
    "cutoff_minutes": 60,
    "horizon_from_days": 7,
    "horizon_to_days": 28,
    "confirmation_hours": 48,
    "aging": 0.5,
    "urgency_window_days": 60,
    "urgency_share": 0.1,
    "constraints_apply": True,
    "declined_returns_to_pool": True,
    "expired_returns_to_pool": True,
}
SCHEDULE_ANSWER_EXAMPLE = SCHEDULE_EXAMPLE | {
    "procedure": "renewal",
    "timezone": "Europe/Paris",
    "created_at": "2027-01-04T09:12:00+00:00",
    "next_draws": [
        {"draw_id": "01-renewal-20270111T1000", "at": "2027-01-11 10:00",
         "scheduled_at": "2027-01-11T09:00:00+00:00", "slots": 42},
        {"draw_id": "01-renewal-20270113T1400", "at": "2027-01-13 14:00",
         "scheduled_at": "2027-01-13T13:00:00+00:00", "slots": 8},
    ],
}


def number_or_text(kind: str, low: float, high: float, description: str) -> dict:
    return {"type": [kind, "string"], "minimum": low, "maximum": high,
            "description": description + " (a number, or its text)"}


def switch(description: str) -> dict:
    return {"type": ["boolean", "null"], "description": description + " (null or absent: the default, true)"}


SCHEDULE_SCHEMA = {
    "type": "object",
    "description": "A cron expression, explicit dates, or both; every setting left out takes its default. "
                   "The answer's read-only members (procedure, timezone, created_at, next_draws) are ignored.",
    "properties": {
        "cron": {"type": ["string", "null"], "description": "Five fields, in the prefecture's local time: "
                 "`0 10 * * MON` is every Monday at 10:00. At most one draw an hour on average."},
        "dates": {"type": ["array", "null"], "maxItems": schedule_rules.MAX_DATES, "items": {"type": "string"},
                  "description": "Explicit draws, local time, `YYYY-MM-DD HH:MM`, each in the next two years."},
        "cutoff_minutes": number_or_text("integer", 0, schedule_rules.MAX_CUTOFF_MINUTES,
                                         "Entries close this many minutes before a draw"),
        "horizon_from_days": number_or_text("integer", 0, schedule_rules.MAX_HORIZON_DAYS - 1,
                                            "A draw offers slots from this many days after it"),
        "horizon_to_days": number_or_text("integer", 1, schedule_rules.MAX_HORIZON_DAYS,
                                          "… up to this many days after it"),
        "confirmation_hours": number_or_text("integer", schedule_rules.MIN_CONFIRMATION_HOURS,
                                             schedule_rules.MAX_CONFIRMATION_HOURS, "Hours a winner has to confirm"),
        "aging": number_or_text("number", 0, schedule_rules.MAX_AGING, "weight = 1 + aging × draws lost"),
        "urgency_window_days": number_or_text("integer", 0, schedule_rules.MAX_URGENCY_WINDOW_DAYS,
                                              "A renewal whose permit expires within this many days is urgent"),
        "urgency_share": number_or_text("number", 0, 1, "The share of a draw's slots kept for urgent entrants"),
        "constraints_apply": switch("Respect the sites and half-days applicants chose"),
        "declined_returns_to_pool": switch("A winner who declines keeps their place and weight"),
        "expired_returns_to_pool": switch("A winner who does not answer in time goes back to the waiting list"),
    },
}
ADDED_DRAW_EXAMPLE = {"draw_id": "01-renewal-20270113T1400", "at": "2027-01-13 14:00",
                      "scheduled_at": "2027-01-13T13:00:00+00:00", "schedule": SCHEDULE_ANSWER_EXAMPLE}


def schedule_json(schedule: DrawSchedule) -> dict:
    """A pool's schedule as an admin edits it (schedules.editable_values: PUT takes it back), with
    its next draws and the open slots each would offer today, as the schedule page shows them."""
    zone = staff_actions.zone_of(schedule)
    now = staff_actions.now()
    upcoming = draw_rules.upcoming(services().store, schedule, now,
                                   timing=OfferTiming.from_settings(services().settings))
    return {
        **schedule_rules.editable_values(schedule, now),
        "procedure": schedule.procedure,
        "timezone": schedule.timezone,
        "created_at": schedule.created_at.isoformat(),
        "next_draws": [
            {"draw_id": schedule_rules.draw_id(schedule.prefecture, schedule.procedure, moment, schedule.timezone),
             "at": f"{moment.astimezone(zone):%Y-%m-%d %H:%M}", "scheduled_at": moment.isoformat(), "slots": slots}
            for moment, slots in upcoming
        ],
    }


def schedule_location(code: str, procedure: str) -> str:
    return f"/api/v1/staff/prefectures/{code}/schedules/{procedure}"


@route("/prefectures/<code>/schedules", "GET", Scope.READ, summary="Its draw schedules and policies",
       responses={"200": answer("Each procedure's schedule, or null")})
def schedules(principal, code: str):
    store = services().store
    found = {}
    for procedure in store.procedures():
        schedule = store.schedule(PoolId.of(code, procedure.code))
        found[procedure.code] = schedule_to_dict(schedule) if schedule else None
    return jsonify(found)


@route("/prefectures/<code>/schedules/<procedure>", "GET", Scope.READ,
       summary="One waiting list's draw schedule and policy",
       description="The values of the schedule page's form (dates still to come, in local time), which PUT takes "
                   "back as they are, and the next draws with the open slots each would offer today. 404 (code "
                   "unknown-schedule) while the waiting list has no schedule.",
       responses={"200": answer("The schedule", example=SCHEDULE_ANSWER_EXAMPLE)})
def schedule(principal, code: str, procedure: str):
    current = services().store.schedule(staff_actions.pool_of(code, procedure))
    if current is None:
        raise UnknownSchedule()
    return jsonify(schedule_json(current))


@route("/prefectures/<code>/schedules/<procedure>", "PUT", Scope.SCHEDULES_WRITE,
       summary="Replace a waiting list's draw schedule and policy",
       description="As the schedule page's form does, with the same checks: a wrong value is a 422 naming each "
                   "wrong field, and nothing changes. The new schedule starts now: a draw whose time has passed "
                   "is not run again.",
       body=json_body_of(SCHEDULE_SCHEMA, example=SCHEDULE_EXAMPLE),
       responses={"200": answer("The schedule saved", example=SCHEDULE_ANSWER_EXAMPLE)})
def replace_schedule(principal, code: str, procedure: str):
    return jsonify(schedule_json(staff_actions.save_schedule(code, procedure, json_body())))


@route("/prefectures/<code>/schedules/<procedure>/draws", "POST", Scope.SCHEDULES_WRITE,
       summary="Add one explicit draw to a waiting list's schedule",
       description="The cron expression, the other dates and the settings stay as they are. `at` is the "
                   "prefecture's local time, `YYYY-MM-DD HH:MM` (or with a T); it must be in the future and within "
                   "two years, and a schedule holds at most 100 dates to come (422 otherwise). A time the schedule "
                   "already gives adds nothing. Location: the schedule.",
       body=json_body_of({"type": "object", "required": ["at"], "properties": {"at": {"type": "string"}}},
                         example={"at": "2027-01-13T14:00"}),
       responses={"201": answer("The draw added, and the schedule", example=ADDED_DRAW_EXAMPLE)})
def add_draw(principal, code: str, procedure: str):
    edited, added = staff_actions.add_draw_date(code, procedure, json_body().get("at"))
    return created({"draw_id": added.draw_id,
                    "at": f"{added.scheduled_at.astimezone(staff_actions.zone_of(edited)):%Y-%m-%d %H:%M}",
                    "scheduled_at": added.scheduled_at.isoformat(), "schedule": schedule_json(edited)},
                   schedule_location(code, edited.procedure))
