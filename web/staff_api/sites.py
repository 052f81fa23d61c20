"""The prefecture's sites: listed, created, edited (reopened), closed, deleted.

A site travels as GET shows it (`site_json`): its address as an object and its
opening hours as a list of periods, so that what GET returns can be PUT back
unchanged. `site_values` turns that JSON into the values the page's form gives
the domain (queue_service.inventory.sites.parse_site), so that both are checked
by the same rules; the domain's field names are then renamed to the JSON's.
"""

from __future__ import annotations

import re

from flask import jsonify, url_for

from queue_service import inventory
from queue_service.errors import N_, ValidationFailed
from queue_service.inventory import sites as site_rules
from queue_service.reference import SITE_KINDS
from queue_service.staff.accounts import Scope
from web import services
from web.api import json_body, site_json
from web.registration import now
from web.staff_api import answer, created, json_body_of, route

CLOCK_TIME = re.compile(r"[0-9]{2}:[0-9]{2}")
PERIOD_ERROR = N_("Give each period as {\"weekday\": 0 to 6, \"opens\": \"HH:MM\", \"closes\": \"HH:MM\"}, "
                  "a day's periods in order and not overlapping.")
# The domain's name of a field, and the JSON's.
JSON_FIELDS = {"address": "address.street", "postcode": "address.postcode", "city": "address.city"}

PERIOD_SCHEMA = {
    "type": "object",
    "properties": {
        "weekday": {"type": "integer", "minimum": 0, "maximum": 6, "description": "0 = Monday … 6 = Sunday"},
        "opens": {"type": "string", "pattern": "^[0-9]{2}:[0-9]{2}$", "description": "Local time, HH:MM"},
        "closes": {"type": "string", "pattern": "^[0-9]{2}:[0-9]{2}$", "description": "Local time, HH:MM"},
    },
    "required": ["weekday", "opens", "closes"],
}
SITE_PROPERTIES = {
    "name": {"type": "string", "description": "1 to 120 characters"},
    "kind": {"type": ["string", "null"], "enum": [*SITE_KINDS, None],
             "description": f"Absent or null: {site_rules.DEFAULT_KIND}"},
    "address": {
        "type": "object",
        "properties": {"street": {"type": "string", "description": "1 to 120 characters"},
                       "postcode": {"type": "string", "description": "5 digits"},
                       "city": {"type": "string", "description": "1 to 120 characters"}},
        "required": ["street", "postcode", "city"],
    },
    "opening_hours": {"type": "array", "items": PERIOD_SCHEMA,
                      "description": "Every period of the week; a weekday without one is closed"},
    "closed": {"type": "boolean", "description": "A closed site takes no new slots and is not offered to "
                                                 "applicants; absent: false (open)"},
}
SITE_SCHEMA = {"type": "object", "properties": SITE_PROPERTIES, "required": ["name", "address"]}
NEW_SITE_SCHEMA = {
    "type": "object",
    "properties": {"id": {"type": "string",
                          "description": "2 to 20 lower-case letters or digits, starting with a letter"}}
    | SITE_PROPERTIES,
    "required": ["id", "name", "address"],
}
SITE_EXAMPLE = {
    "name": "Sous-préfecture de Gex",
    "kind": "sub_prefecture",
    "address": {"street": "26 rue Charles Harent", "postcode": "01170", "city": "Gex"},
    "opening_hours": [{"weekday": 0, "opens": "09:00", "closes": "12:00"},
                      {"weekday": 0, "opens": "13:30", "closes": "16:30"},
                      {"weekday": 3, "opens": "09:00", "closes": "12:00"}],
    "closed": False,
}
SHOWN_EXAMPLE = {"id": "gex"} | SITE_EXAMPLE


def shown(site) -> dict:
    return site_json(site) | {"closed": site.closed}


def site_values(body: dict) -> dict[str, object]:
    """A site's JSON as the values parse_site reads (as forms.site_values gives a form's);
    a wrong shape is a ValidationFailed naming the JSON's fields."""
    errors: dict[str, str] = {}
    address = body.get("address", {})
    if not isinstance(address, dict):
        errors["address"] = N_("Give the address as {\"street\": …, \"postcode\": …, \"city\": …}.")
        address = {}
    kind = body.get("kind")
    if kind is not None and kind not in SITE_KINDS:
        errors["kind"] = N_("Choose the kind of site.")
    closed = body.get("closed", False)
    if not isinstance(closed, bool):
        errors["closed"] = N_("Give true or false.")
    periods = body.get("opening_hours", [])
    days: dict[int, list[tuple[str, str]]] = {weekday: [] for weekday in range(7)}
    if not isinstance(periods, list) or not all(_is_period(period) for period in periods):
        errors["opening_hours"] = PERIOD_ERROR
    else:
        for period in periods:
            days[period["weekday"]].append((period["opens"], period["closes"]))
    if errors:
        raise ValidationFailed(errors)
    values = {name: body.get(name) for name in ("id", "name", "kind")}
    values |= {"address": address.get("street"), "postcode": address.get("postcode"), "city": address.get("city"),
               "closed": closed}
    values |= {site_rules.hours_field(weekday): ", ".join(f"{opens}-{closes}" for opens, closes in sorted(day))
               for weekday, day in days.items()}
    return values


def _is_period(period: object) -> bool:
    return (isinstance(period, dict) and type(period.get("weekday")) is int and 0 <= period["weekday"] <= 6
            and all(isinstance(period.get(name), str) and CLOCK_TIME.fullmatch(period[name])
                    for name in ("opens", "closes")))


def json_errors(failure: ValidationFailed) -> ValidationFailed:
    """The domain's refusal with the JSON's field names (hours_0 … hours_6 are opening_hours)."""
    renamed = {}
    for field, message in failure.errors.items():
        if field.startswith("hours_"):
            renamed["opening_hours"] = PERIOD_ERROR
        else:
            renamed[JSON_FIELDS.get(field, field)] = message
    return ValidationFailed(renamed)


def site_address(code: str, site_id: str) -> str:
    return url_for("staff_api.site", code=code, site_id=site_id)


@route("/prefectures/<code>/sites", "GET", Scope.READ, summary="The prefecture's sites",
       responses={"200": answer("Its sites, closed ones included", example={"items": [SHOWN_EXAMPLE]})})
def sites(principal, code: str):
    return jsonify(items=[shown(site) for site in services().store.sites(code)])


@route("/prefectures/<code>/sites/<site_id>", "GET", Scope.READ, summary="One site",
       responses={"200": answer("The site, in the shape PUT takes back", example=SHOWN_EXAMPLE)})
def site(principal, code: str, site_id: str):
    return jsonify(shown(inventory.existing_site(services().store, code, site_id)))


@route("/prefectures/<code>/sites", "POST", Scope.SITES_WRITE, summary="Create a site",
       description="The same checks as the staff page: an identifier not taken yet, a name, a street address, "
                   "a 5-digit postcode, a town, opening hours in order and not overlapping within a day.",
       body=json_body_of(NEW_SITE_SCHEMA, example={"id": "gex"} | SITE_EXAMPLE),
       responses={"201": answer("The site created (its address in Location)", example=SHOWN_EXAMPLE)})
def create_site(principal, code: str):
    values = site_values(json_body())
    try:
        new = inventory.create_site(services().store, code, values)
    except ValidationFailed as failure:
        raise json_errors(failure) from None
    return created(shown(new), site_address(code, new.id))


@route("/prefectures/<code>/sites/<site_id>", "PUT", Scope.SITES_WRITE, summary="Replace a site (reopen one)",
       description="The whole site, as GET shows it (without `id`, which never changes): what is absent is empty, "
                   "and `closed` absent or false reopens a closed site.",
       body=json_body_of(SITE_SCHEMA, example=SITE_EXAMPLE),
       responses={"200": answer("The site as saved", example=SHOWN_EXAMPLE)})
def edit_site(principal, code: str, site_id: str):
    values = site_values(json_body())
    try:
        edited = inventory.edit_site(services().store, code, site_id, values)
    except ValidationFailed as failure:
        raise json_errors(failure) from None
    return jsonify(shown(edited))


@route("/prefectures/<code>/sites/<site_id>/close", "POST", Scope.SITES_WRITE, summary="Close a site",
       description="It takes no new slots and is not offered to new applicants; its slots and history stay. "
                   "Reopen it with PUT and `closed: false`.",
       responses={"200": answer("The site, closed", example=SHOWN_EXAMPLE | {"closed": True})})
def close_site(principal, code: str, site_id: str):
    return jsonify(shown(inventory.close_site(services().store, code, site_id)))


@route("/prefectures/<code>/sites/<site_id>", "DELETE", Scope.SITES_WRITE, summary="Delete a site",
       description="Only a site without future slots (cancelled ones aside): otherwise 409; close it instead.",
       responses={"204": {"description": "Deleted"}})
def delete_site(principal, code: str, site_id: str):
    inventory.delete_site(services().store, code, site_id, now())
    return "", 204
