"""Registrations: how many wait; a person registered at the counter (assisted registration)."""

from __future__ import annotations

from flask import jsonify

from queue_service.errors import N_, ValidationFailed
from queue_service.pools import PoolId
from queue_service.reference import HALF_DAYS, LOCALES
from queue_service.registration import Channel
from queue_service.registration.identity import EMAIL_MAX_LENGTH, NAME_MAX_LENGTH
from queue_service.staff.accounts import Scope
from web import services
from web.api import choice_lists_given_as_lists, json_body
from web.openapi import GIVEN
from web.registration import pool_or_404, register_applicant, status_url
from web.staff_api import answer, json_body_of, route
from web.staff_api import created as created_answer


@route("/prefectures/<code>/registrations", "GET", Scope.READ,
       summary="How many wait in each pool (no personal data)",
       responses={"200": answer("Counts per procedure", example={"renewal": {"waiting": 1204}})})
def registrations(principal, code: str):
    store = services().store
    return jsonify(
        {procedure.code: {"waiting": store.waiting_count(PoolId.of(code, procedure.code))}
         for procedure in store.procedures()}
    )


REGISTRATION_BODY_EXAMPLE = {
    "procedure": "renewal", "family_name": "Benali", "given_names": "Samira", "birth_date": "1991-04-17",
    "nationality": "MA", "phone": "+33612345678", "agdref": "0123456789", "permit_expiry": "2027-02-15",
    "language": "fr", "consent": True,
}
REGISTRATION_BODY = {
    "type": "object",
    "required": ["procedure", "family_name", "given_names", "birth_date", "nationality", "consent"],
    "properties": {
        "prefecture": {"type": "string", "description": "Optional; if given, the code of the address"},
        "procedure": {"type": "string", "enum": ["first_request", "renewal", "permit_pickup", "student"]},
        "family_name": {**GIVEN, "maxLength": NAME_MAX_LENGTH},
        "given_names": {**GIVEN, "maxLength": NAME_MAX_LENGTH},
        "birth_date": {"type": "string", "description": "YYYY-MM-DD or DD/MM/YYYY"},
        "nationality": {**GIVEN, "maxLength": 40, "description": "ISO 3166-1 alpha-2 code (not FR), or 'stateless'"},
        "email": {"type": ["string", "null"], "maxLength": EMAIL_MAX_LENGTH,
                  "description": "Optional at the counter: the email, or the phone, or the printed status page"},
        "phone": {"type": ["string", "null"], "maxLength": 40},
        "agdref": {"type": "string", "maxLength": 40, "description": "10 digits; required for renewal and "
                                                                     "permit_pickup"},
        "permit_expiry": {"type": "string", "maxLength": 40, "description": "Required for renewal"},
        "sites": {"type": "array", "items": {"type": "string"}, "minItems": 1, "description": "Absent means all"},
        "half_days": {"type": "array", "items": {"type": "string", "enum": list(HALF_DAYS)}, "minItems": 1},
        "language": {"type": "string", "enum": list(LOCALES)},
        "consent": {"const": True, "description": "The applicant read the privacy notice and accepts it"},
    },
}
CREATED_EXAMPLE = {
    "ref": "01R-7KQ2M9XH4P",
    "status": "waiting",
    "status_link": "https://rdv.example.gouv.fr/status?t=eyJrIjoi…",
    "proof_link": "https://rdv.example.gouv.fr/status/proof?t=eyJrIjoi…",
}


@route("/prefectures/<code>/registrations", "POST", Scope.REGISTRATIONS_WRITE,
       summary="Register a person at the counter (assisted registration)",
       description="The JSON of the public POST /registrations (its `prefecture` optional here), checked the same "
                   "way (422 with the fields to correct; 409 for a person already registered); the email is "
                   "optional, no proof of work is asked and the public registration limits do not apply. The "
                   "registration is recorded as assisted, with the token's account. Give the person `ref` and "
                   "the private `status_link` (or print it, with `proof_link`).",
       body=json_body_of(REGISTRATION_BODY, example=REGISTRATION_BODY_EXAMPLE), problems=(409,),
       responses={"201": answer("Registered", example=CREATED_EXAMPLE)})
def assisted_registration(principal, code: str):
    body = choice_lists_given_as_lists(json_body())
    if body.get("prefecture") not in (None, code):
        raise ValidationFailed({"prefecture": N_("Leave the prefecture out, or give the one of the address.")})
    procedure_code = body.get("procedure")
    if not isinstance(procedure_code, str):
        raise ValidationFailed({"procedure": N_("Give the procedure's code.")})
    _, procedure, sites = pool_or_404(code, procedure_code)
    created = register_applicant(code, procedure, body, channel=Channel.ASSISTED, agent=principal.account_id,
                                 sites=sites)
    link = services().settings.base_url + status_url(created)
    return created_answer({"ref": created.ref, "status": created.status.value, "status_link": link,
                           "proof_link": link.replace("/status?", "/status/proof?", 1)}, link)
