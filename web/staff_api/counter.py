"""The counter: a booking looked up by its code (a scanner), checked in."""

from __future__ import annotations

from flask import jsonify, request

from queue_service import offers as offer_rules
from queue_service.errors import N_, CheckInNeedsOverride, ValidationFailed
from queue_service.staff.accounts import Scope
from web import services
from web.api import json_body
from web.errors import message_of, problem
from web.registration import identity_secret, now
from web.staff_api import answer, json_body_of, route

SITE_QUERY = {"name": "site", "in": "query", "required": False, "schema": {"type": "string"},
              "description": "The counter's site: a booking at another site is flagged (other_site)"}
BOOKING_EXAMPLE = {
    "ref": "01R-7KQ2M9XH4P",
    "status": "confirmed",
    "person": {"family_name": "Benali", "given_names": "Samira", "birth_date": "1991-04-17",
               "nationality": "MA", "agdref": "0123456789"},
    "slot": {"site": "bourg", "starts_at": "2027-01-11T08:20:00+00:00", "counter": 2},
    "warnings": [],
}


def counter_booking(code: str, booking_code: str, site: str | None) -> dict:
    """What a counter reads of a booking: the person to compare with their document, the slot,
    its state and what does not match this counter (offers.booking_warnings)."""
    store = services().store
    prefecture = store.prefecture(code)
    key, _ = offer_rules.find_booking(store, code, booking_code, identity_secret())
    found, offer = store.registration(key), store.offer(key)
    slot = store.slot(key.pool, offer.slot_id)
    warnings = offer_rules.booking_warnings(store, key, site, now(), prefecture.timezone)
    applicant = found.applicant
    return {
        "ref": found.ref,
        "status": offer.status.value,
        "person": {"family_name": applicant.family_name, "given_names": applicant.given_names,
                   "birth_date": applicant.birth_date.isoformat(), "nationality": applicant.nationality,
                   "agdref": applicant.agdref},
        "slot": {"site": slot.site, "starts_at": slot.starts_at.isoformat(), "counter": slot.counter},
        "warnings": [warning.value for warning in warnings],
    }


def counter_site(code: str, site: object) -> str | None:
    if site is None or site == "":
        return None
    if not isinstance(site, str) or site not in {known.id for known in services().store.sites(code)}:
        raise ValidationFailed({"site": N_("Choose one of the prefecture's sites.")})
    return site


@route("/prefectures/<code>/bookings/<booking_code>", "GET", Scope.COUNTER_CHECK_IN,
       summary="A booking looked up by its code at a counter (a scanner)",
       description="The person to compare with their identity document, the slot, the state, and `warnings`: "
                   "not_today, other_site (when ?site= names the counter's site).",
       parameters=(SITE_QUERY,), problems=(422,),
       responses={"200": answer("The booking", example=BOOKING_EXAMPLE)})
def booking(principal, code: str, booking_code: str):
    return jsonify(counter_booking(code, booking_code, counter_site(code, request.args.get("site"))))


@route("/prefectures/<code>/bookings/<booking_code>/check-in", "POST", Scope.COUNTER_CHECK_IN,
       summary="Mark a booking attended, with the counter's rules",
       description="A booking for another day or another site answers 409 (code check-in-needs-override, with "
                   "its `warnings`) unless `override` is true; the override is recorded with the token's account.",
       body=json_body_of({"type": "object", "properties": {"site": {"type": ["string", "null"]},
                                                            "override": {"type": "boolean"}}},
                         example={"site": "bourg", "override": False}),
       responses={"200": answer("The booking, attended", example=BOOKING_EXAMPLE | {"status": "attended"})})
def check_in(principal, code: str, booking_code: str):
    body = json_body()
    site = counter_site(code, body.get("site"))
    override = body.get("override", False)
    if not isinstance(override, bool):
        raise ValidationFailed({"override": N_("Give true or false.")})
    store = services().store
    key, _ = offer_rules.find_booking(store, code, booking_code, identity_secret())
    try:
        offer_rules.check_in(store, key, now(), agent=principal.account_id,
                             timezone=store.prefecture(code).timezone, site=site, override=override)
    except CheckInNeedsOverride as refusal:
        return problem(409, message_of(refusal), code="check-in-needs-override",
                       warnings=[warning.value for warning in refusal.warnings])
    return jsonify(counter_booking(code, booking_code, site))


@route("/prefectures/<code>/bookings/<booking_code>/no-show", "POST", Scope.COUNTER_CHECK_IN,
       summary="Mark a booking a no-show: the person did not come",
       description="Once the appointment has started (before: 409); the same transition, event and count as the "
                   "automatic marking after the slot's end and the grace period, recorded with the token's account. "
                   "A booking already checked in, cancelled or marked answers 409. No request body.",
       responses={"200": answer("The booking, marked a no-show", example=BOOKING_EXAMPLE | {"status": "no_show"})})
def no_show(principal, code: str, booking_code: str):
    store = services().store
    key, _ = offer_rules.find_booking(store, code, booking_code, identity_secret())
    offer_rules.mark_no_show(store, key, now(), agent=principal.account_id)
    return jsonify(counter_booking(code, booking_code, None))
