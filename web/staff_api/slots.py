"""The prefecture's slots: listed, published from an opening template or a CSV file, cancelled.

Publishing goes through the same domain functions as the staff page
(queue_service.inventory.publish_from_template and publish_from_csv), with one
difference the API needs: a CSV file with a wrong row publishes nothing
(the page publishes the good rows and lists the others), so that a refusal
changes nothing and the corrected file can be sent again.
"""

from __future__ import annotations

import datetime
import re
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from flask import jsonify, request, url_for
from flask_babel import gettext

from queue_service import inventory
from queue_service import offers as offer_rules
from queue_service.errors import N_, InvalidText, ValidationFailed
from queue_service.inventory import slots as slot_rules
from queue_service.pools import PoolId
from queue_service.staff.accounts import Scope
from web import services
from web.api import json_body
from web.decoding import NOT_TEXT
from web.errors import message_of, problem
from web.registration import now
from web.staff_api import answer, json_body_of, route

# How many overlapping pairs a refusal lists (the page shows as many).
CONFLICTS_SHOWN = 20
# The longest period GET lists at once, in days.
MAX_LISTED_DAYS = 366
DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")

SLOT_EXAMPLE = {
    "id": "bourg-renewal-20270111T0900-c1",
    "site": "bourg",
    "procedure": "renewal",
    "starts_at": "2027-01-11T08:00:00+00:00",
    "duration_minutes": 30,
    "counter": 1,
    "status": "open",
}
PUBLISHED_EXAMPLE = {"published": 1, "items": [SLOT_EXAMPLE]}
TEMPLATE_SCHEMA = {
    "type": "object",
    "properties": {
        "site": {"type": "string", "description": "One of the prefecture's open sites"},
        "procedure": {"type": "string", "description": "A procedure code (renewal, first_request…)"},
        "first_day": {"type": "string", "description": "YYYY-MM-DD, not before today (the prefecture's)"},
        "last_day": {"type": "string", "description": "YYYY-MM-DD, at most 92 days after first_day"},
        "weekdays": {"type": "array", "minItems": 1, "items": {"type": ["integer", "string"]},
                     "description": "0 = Monday … 6 = Sunday, or mon … sun"},
        "opens": {"type": "string", "description": "Local time HH:MM"},
        "closes": {"type": "string", "description": "Local time HH:MM, after opens"},
        "appointment_minutes": {"type": ["integer", "string"],
                                "description": f"{slot_rules.MIN_APPOINTMENT_MINUTES} to "
                                               f"{slot_rules.MAX_APPOINTMENT_MINUTES} (a number or its digits)"},
        "counters": {"type": ["integer", "string"],
                     "description": f"1 to {slot_rules.MAX_COUNTERS} (a number or its digits): appointments side "
                                    "by side, at counters 1 to counters"},
    },
    "required": ["site", "procedure", "first_day", "last_day", "weekdays", "opens", "closes",
                 "appointment_minutes", "counters"],
}
TEMPLATE_EXAMPLE = {"site": "bourg", "procedure": "renewal", "first_day": "2027-01-11", "last_day": "2027-01-15",
                    "weekdays": ["mon", "tue", "thu"], "opens": "09:00", "closes": "12:00",
                    "appointment_minutes": 30, "counters": 2}
CSV_EXAMPLE = ("site;procedure;date;start;duration_minutes;counter\n"
               "bourg;renewal;2027-01-11;09:00;30;1\n"
               "bourg;renewal;11/01/2027;09:30;30;1\n")
OVERLAP_DESCRIPTION = ("Slots that overlap one another, or slots already published at the same counter of the "
                       "site (whatever their procedure), are a 422 problem with code `slots-overlap` and "
                       "`conflicts` (the first 20 pairs, `conflict_count` in all); nothing is published.")


def slot_json(slot) -> dict:
    return {
        "id": slot.id,
        "site": slot.site,
        "procedure": slot.procedure,
        "starts_at": slot.starts_at.isoformat(),
        "duration_minutes": slot.duration_minutes,
        "counter": slot.counter,
        "status": slot.status.value,
    }


def published(code: str, slots: list) -> tuple:
    """201, the slots published, and where to list them."""
    response = jsonify(published=len(slots), items=[slot_json(slot) for slot in slots])
    response.status_code = 201
    if slots:
        zone = ZoneInfo(services().store.prefecture(code).timezone)
        days = {"from": min(slot.starts_at for slot in slots).astimezone(zone).date().isoformat(),
                "to": max(slot.starts_at for slot in slots).astimezone(zone).date().isoformat()}
        response.headers["Location"] = url_for("staff_api.slots", code=code) + "?" + urlencode(days)
    return response


def overlap_problem(overlap: inventory.SlotsOverlap):
    return problem(422, message_of(overlap), code="slots-overlap",
                   errors=[{"field": field, "message": gettext(message)} for field, message in overlap.errors.items()],
                   conflicts=[{"slot": slot_json(slot), "overlaps": slot_json(other)}
                              for slot, other in overlap.conflicts[:CONFLICTS_SHOWN]],
                   conflict_count=len(overlap.conflicts))


# Listing ----------------------------------------------------------------------------------


def day_parameter(name: str, description: str) -> dict:
    return {"name": name, "in": "query", "required": False, "schema": {"type": "string", "format": "date"},
            "description": description}


LIST_PARAMETERS = (
    {"name": "days", "in": "query", "required": False, "schema": {"type": "string"},
     "description": "Without from and to: how many days from now (1 to 366; 30 when absent or not a number)"},
    day_parameter("from", "First day, YYYY-MM-DD on the prefecture's clock (default: today)"),
    day_parameter("to", "Last day included, YYYY-MM-DD (default: 14 days after from; at most 366 days after)"),
    {"name": "site", "in": "query", "required": False, "schema": {"type": "string"},
     "description": "Only this site's slots"},
    {"name": "procedure", "in": "query", "required": False, "schema": {"type": "string"},
     "description": "Only this procedure's slots"},
)


def query_day(name: str, errors: dict[str, str]) -> datetime.date | None:
    text = request.args.get(name)
    if text is None:
        return None
    try:
        day = datetime.date.fromisoformat(text) if DAY.fullmatch(text) else None
    except ValueError:
        day = None
    if day is None:
        errors[name] = N_("Enter a date as YYYY-MM-DD.")
    elif abs((day - datetime.date.today()).days) > slot_rules.MAX_DAYS_AHEAD:
        errors[name] = N_("Enter a date within five years of today.")
        day = None
    return day


def listing_filters(code: str) -> tuple[datetime.date | None, datetime.date | None, str | None, str | None]:
    """The query's days (None, None without from and to), site and procedure; 422 when wrong."""
    store, errors = services().store, {}
    first, last = query_day("from", errors), query_day("to", errors)
    site = request.args.get("site") or None
    if site is not None and site not in {known.id for known in store.sites(code)}:
        errors["site"] = N_("Choose one of the prefecture's sites.")
    procedure = request.args.get("procedure") or None
    if procedure is not None and procedure not in {known.code for known in store.procedures()}:
        errors["procedure"] = N_("Choose one of the procedures.")
    if not errors and (first or last):
        first = first or now().astimezone(ZoneInfo(store.prefecture(code).timezone)).date()
        last = last or first + datetime.timedelta(days=14)
        if last < first:
            errors["to"] = N_("The last day cannot be before the first day.")
        elif (last - first).days > MAX_LISTED_DAYS:
            errors["to"] = N_("List at most 366 days at once.")
    if errors:
        raise ValidationFailed(errors)
    return first, last, site, procedure


@route("/prefectures/<code>/slots", "GET", Scope.READ, summary="Its slots, by days, site and procedure",
       description="With `from` or `to`, the slots of those days on the prefecture's clock, as the staff page "
                   "lists them; without, those of the next `days` days from now.",
       parameters=LIST_PARAMETERS, problems=(422,),
       responses={"200": answer("Its slots, soonest first", example={"items": [SLOT_EXAMPLE]})})
def slots(principal, code: str):
    first, last, site, procedure = listing_filters(code)
    store = services().store
    if first is not None:
        listed = inventory.listed_slots(store, code, first, last, site=site, procedure=procedure)
    else:
        start = now()
        days = request.args.get("days", "30")
        end = start + datetime.timedelta(days=min(int(days), 366) if re.fullmatch(r"[0-9]{1,4}", days) else 30)
        listed = [slot for slot in store.prefecture_slots(code, start, end)
                  if site in (None, slot.site) and procedure in (None, slot.procedure)]
    return jsonify(items=[slot_json(slot) for slot in listed])


# Publishing -------------------------------------------------------------------------------


@route("/prefectures/<code>/slots/publish", "POST", Scope.SLOTS_WRITE,
       summary="Publish slots from an opening template",
       description="The staff page's template: at one open site, for one procedure, every chosen weekday from "
                   "first_day to last_day, appointments of appointment_minutes from opens to closes (local time) "
                   "at counters 1 to counters. At most 5,000 slots. " + OVERLAP_DESCRIPTION,
       body=json_body_of(TEMPLATE_SCHEMA, example=TEMPLATE_EXAMPLE),
       responses={"201": answer("The slots published (Location lists their days)", example=PUBLISHED_EXAMPLE)})
def publish(principal, code: str):
    values = json_body()
    try:
        created = inventory.publish_from_template(services().store, code, values, now())
    except inventory.SlotsOverlap as overlap:
        return overlap_problem(overlap)
    return published(code, created)


@route("/prefectures/<code>/slots/import", "POST", Scope.SLOTS_WRITE, summary="Publish the slots of a CSV file",
       description="The staff page's file, sent as the body with Content-Type text/csv (UTF-8): columns site, "
                   "procedure, date (YYYY-MM-DD or DD/MM/YYYY), start (HH:MM, local), duration_minutes, counter, "
                   "in any order, separated by , or ;. A wrong row publishes nothing: 422 problem with code "
                   "`slot-rows-wrong` and `rows` (line, message in English). " + OVERLAP_DESCRIPTION,
       body={"required": True, "content": {"text/csv": {"schema": {"type": "string"}, "example": CSV_EXAMPLE}}},
       problems=(415,),
       responses={"201": answer("The slots published (Location lists their days)", example=PUBLISHED_EXAMPLE)})
def import_csv(principal, code: str):
    if request.mimetype != "text/csv":
        return problem(415, gettext("Send the file with Content-Type: text/csv."), code="unsupported-media-type")
    text = request.get_data().decode("utf-8", "replace")
    if NOT_TEXT.search(text):
        raise InvalidText("body")
    try:
        created, _ = inventory.publish_from_csv(services().store, code, text, now(), keep_good_rows=False)
    except inventory.SlotsOverlap as overlap:
        return overlap_problem(overlap)
    except inventory.SlotRowsWrong as wrong:
        return problem(422, message_of(wrong), code="slot-rows-wrong",
                       errors=[{"field": field, "message": gettext(message)} for field, message in wrong.errors.items()],
                       rows=[{"line": row.line, "message": row.message} for row in wrong.rows])
    return published(code, created)


@route("/prefectures/<code>/slots/<procedure>/<slot_id>/cancel", "POST", Scope.SLOTS_WRITE,
       summary="Cancel a slot",
       description="As on the staff page: an open slot is withdrawn; an offered or booked one's holder is told "
                   "(by the outbox) and goes back to the waiting list. A slot already cancelled, or whose "
                   "appointment is over, is a 409.",
       responses={"200": answer("The slot, cancelled, and the status it had",
                                example={"slot": SLOT_EXAMPLE | {"status": "cancelled"}, "previous_status": "booked"})})
def cancel_slot(principal, code: str, procedure: str, slot_id: str):
    store = services().store
    store.procedure(procedure)  # 404 for an unknown procedure
    pool = PoolId.of(code, procedure)
    previous = offer_rules.cancel_slot(store, pool, slot_id, now())
    return jsonify(slot=slot_json(store.slot(pool, slot_id)), previous_status=previous.value)
