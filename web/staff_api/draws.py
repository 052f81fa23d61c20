"""A prefecture's draws: listed, read as staff read them (the bias check too), run now, released
after review. Run now and release go through the same functions as the pages (web/staff_actions.py)."""

from __future__ import annotations

import datetime

from flask import jsonify, request
from flask_babel import gettext

from queue_service.draws import Draw, DrawState
from queue_service.draws import schedules as schedule_rules
from queue_service.errors import N_, UnknownDraw, ValidationFailed
from queue_service.pools import PoolId
from queue_service.staff.accounts import Scope
from web import services, staff_actions
from web.api import json_body
from web.applicant import draw_states
from web.staff_api import answer, route

DRAWS_KEPT = 50  # the newest draws of each procedure a list shows
DRAW_EXAMPLE = {
    "draw_id": "01-renewal-20270111T1000",
    "procedure": "renewal",
    "state": "held",
    "state_label": "Held for review",
    "trigger": "schedule",
    "scheduled_at": "2027-01-11T09:00:00+00:00",
    "cutoff_at": "2027-01-11T08:00:00+00:00",
    "announced_at": "2027-01-04T09:12:00+00:00",
    "announced_late": False,
    "frozen_at": "2027-01-11T08:00:02+00:00",
    "drawn_at": "2027-01-11T09:00:01+00:00",
    "committed_at": "2027-01-11T09:00:01+00:00",
    "published_at": None,
    "held_at": "2027-01-11T09:00:02+00:00",
    "entrants": 311,
    "urgent_entrants": 12,
    "slots": 42,
    "winners": 42,
    "offered": 42,
    "offers_deadline": "2027-01-13T09:00:01+00:00",
    "commitment": "5d41402abc4b2a76b9719d911017c592ae9d3f1c8a2b7e44b1c0f2e8d7a6b5c4",
    "entrants_digest": "9b74c9897bac770ffc029102a200c5de2c1f4f5b2e8d7a6b5c4d3e2f1a0b9c8d",
    "bias": [{"test": "registration_time", "p_value": 0.0004, "chi_square": 15.2, "suspicious": True},
             {"test": "channel", "p_value": 0.41, "chi_square": 0.68, "suspicious": False}],
    "held_reason": "Draw 01-renewal-20270111T1000 is held: its winners do not look independent of registration "
                   "time or channel",
    "released_by": None,
    "record": "/api/v1/draws/01-renewal-20270111T1000/record",
}
STATE_QUERY = {"name": "state", "in": "query", "required": False,
               "schema": {"type": "string", "enum": [state.value for state in DrawState]},
               "description": "Only the draws in this state"}
PROCEDURE_QUERY = {"name": "procedure", "in": "query", "required": False, "schema": {"type": "string"},
                   "description": "Only this procedure's draws (all procedures when absent)"}


def moment(value: datetime.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def draw_summary(record: Draw) -> dict:
    """A draw in a list: what the schedule page's table shows, and its address."""
    return {
        "draw_id": record.draw_id,
        "procedure": record.procedure,
        "state": record.state.value,
        "trigger": record.trigger.value,
        "scheduled_at": record.scheduled_at.isoformat(),
        "entrants": record.entrants,
        "slots": record.slots,
        "offered": record.offered,
        "url": f"/api/v1/staff/prefectures/{record.prefecture}/draws/{record.draw_id}",
    }


def draw_json(record: Draw) -> dict:
    """A draw as staff read it: its steps, counts, commitment and the bias check, with the
    reason it is held as the schedule page says it. The seed stays secret until publication
    (the public record has it then)."""
    held = record.state is DrawState.HELD
    return {
        "draw_id": record.draw_id,
        "procedure": record.procedure,
        "state": record.state.value,
        "state_label": draw_states()[record.state],
        "trigger": record.trigger.value,
        **{name: moment(getattr(record, name)) for name in (
            "scheduled_at", "cutoff_at", "announced_at")},
        "announced_late": record.announced_late,
        **{name: moment(getattr(record, name)) for name in (
            "frozen_at", "drawn_at", "committed_at", "published_at", "held_at")},
        **{name: getattr(record, name) for name in ("entrants", "urgent_entrants", "slots", "winners", "offered")},
        "offers_deadline": moment(record.offers_deadline),
        "commitment": record.commitment,
        "entrants_digest": record.entrants_digest,
        "bias": [dict(test) for test in record.bias_check] if record.bias_check is not None else None,
        "held_reason": gettext("Draw %(id)s is held: its winners do not look independent of registration time or "
                               "channel", id=record.draw_id) if held else None,
        "released_by": record.released_by,
        "record": f"/api/v1/draws/{record.draw_id}/record",
    }


def found_draw(code: str, draw_id: str) -> Draw:
    """The prefecture's draw of this id (404 for another prefecture's or an unknown one)."""
    try:
        prefecture, procedure, _ = schedule_rules.parse_draw_id(draw_id)
    except ValueError:
        raise UnknownDraw() from None
    record = services().store.draw(PoolId.of(code, procedure), draw_id) if prefecture == code else None
    if record is None:
        raise UnknownDraw()
    return record


@route("/prefectures/<code>/draws", "GET", Scope.READ, summary="Its draws, newest first",
       description=f"The {DRAWS_KEPT} newest draws of each procedure (or of `procedure`), with their states; "
                   "`state` keeps those in one state. 404 for an unknown procedure, 422 for an unknown state.",
       parameters=(PROCEDURE_QUERY, STATE_QUERY), problems=(422,),
       responses={"200": answer("Its draws", example={"items": [
           {key: DRAW_EXAMPLE[key] for key in ("draw_id", "procedure", "state", "trigger", "scheduled_at",
                                               "entrants", "slots", "offered")}
           | {"url": "/api/v1/staff/prefectures/01/draws/01-renewal-20270111T1000"}]})})
def draws(principal, code: str):
    store = services().store
    state = request.args.get("state")
    if state is not None and state not in {known.value for known in DrawState}:
        raise ValidationFailed({"state": N_("Choose one of the draw states.")})
    procedure = request.args.get("procedure")
    procedures = [store.procedure(procedure).code] if procedure is not None else [
        known.code for known in store.procedures()]
    found = [record for code_of_procedure in procedures
             for record in store.draws(PoolId.of(code, code_of_procedure), limit=DRAWS_KEPT)
             if state is None or record.state.value == state]
    found.sort(key=lambda record: record.scheduled_at, reverse=True)
    return jsonify(items=[draw_summary(record) for record in found])


@route("/prefectures/<code>/draws/<draw_id>", "GET", Scope.READ, summary="A draw, as staff read it",
       description="Its state and the time of each step, entrants, slots, winners, offers, its commitment and the "
                   "bias check (`bias`: each test's p-value; a draw with a suspicious test is held, `held_reason` "
                   "says why, until an admin releases it). The seed and winners are in the public `record` once "
                   "published.",
       responses={"200": answer("The draw", example=DRAW_EXAMPLE)})
def draw(principal, code: str, draw_id: str):
    return jsonify(draw_json(found_draw(code, draw_id)))


@route("/prefectures/<code>/schedules/<procedure>/run", "POST", Scope.DRAWS_RUN,
       summary="Run a draw now",
       description="Starts a draw as the page's \"Run a draw now\" does: it is announced at once, its seed's "
                   "`commitment` public, and its entries close `entries_close_at` (run_now_entry_delay_seconds "
                   "later: everyone waiting then enters); it runs right after, like a scheduled draw, so the "
                   "commitment always comes before the entrants are fixed. The draw is named by its minute: `at` "
                   "(ISO 8601, within the last 15 minutes; without an offset, the prefecture's local time) or, "
                   "without a body or `at`, the current minute, so the same request twice in one minute starts one "
                   "draw (`started` false the second time). An Idempotency-Key makes a repeat safe beyond the "
                   "minute. 409 without a schedule, or for an `at` too old or ahead.",
       body={"required": False, "content": {"application/json": {
           "schema": {"type": "object", "properties": {"at": {"type": ["string", "null"]}}},
           "example": {"at": "2027-01-11T10:42:00+01:00"}}}},
       responses={"202": answer("The draw, announced; Location: the draw", example={
           "draw_id": "01-renewal-20270111T1042", "started": True, "state": "scheduled",
           "commitment": "9b1c0f6e4e0d4b7a2f5d8c3e1a6b9d0c7e2f4a5b8c1d3e6f9a0b2c4d6e8f1a3b",
           "announced_at": "2027-01-11T09:42:31+00:00", "entries_close_at": "2027-01-11T09:43:31+00:00",
           "url": "/api/v1/staff/prefectures/01/draws/01-renewal-20270111T1042"})})
def run_draw_now(principal, code: str, procedure: str):
    at = requested_minute(code, json_body().get("at") if request.get_data() else None)
    due, started = staff_actions.start_run_now(code, procedure, at=at)
    location = f"/api/v1/staff/prefectures/{code}/draws/{due.draw_id}"
    record = services().store.draw(due.pool, due.draw_id)
    response = jsonify(draw_id=due.draw_id, started=started, state=record.state.value, commitment=record.commitment,
                       announced_at=record.announced_at.isoformat(), entries_close_at=record.cutoff_at.isoformat(),
                       url=location)
    response.status_code = 202
    response.headers["Location"] = location
    return response


def requested_minute(code: str, text: object) -> datetime.datetime | None:
    """The minute a run-now request names (local time without an offset), or None without one."""
    if text is None:
        return None
    try:
        if not isinstance(text, str):
            raise ValueError
        moment = datetime.datetime.fromisoformat(text)
        if moment.tzinfo is None:
            return schedule_rules.local_to_utc(moment, services().store.prefecture(code).timezone)
        return moment
    except (ValueError, OverflowError):
        raise ValidationFailed({"at": N_("Give a time in ISO 8601, such as 2027-01-11T10:42:00+01:00.")}) from None


@route("/prefectures/<code>/draws/<draw_id>/release", "POST", Scope.DRAWS_RUN,
       summary="Release a held draw after review",
       description="Publishes the record (seed, winners) of a draw the bias check held, as the schedule page's "
                   "button does; the token's account is recorded as `released_by`. 409 for a draw that is not held.",
       responses={"200": answer("The draw, published", example=DRAW_EXAMPLE | {
           "state": "published", "state_label": "Published", "held_reason": None,
           "published_at": "2027-01-11T11:20:00+00:00", "released_by": "admin01"})})
def release_draw(principal, code: str, draw_id: str):
    record = found_draw(code, draw_id)
    return jsonify(draw_json(staff_actions.release_draw(code, record.procedure, draw_id, by=principal.account_id)))
