"""The JSON API, version 1. Errors are RFC 9457 problem documents (see errors.py)."""

from __future__ import annotations


from flask import Blueprint, jsonify, request, url_for
from werkzeug.exceptions import BadRequest

from queue_service import registration as registrations
from queue_service.errors import N_, InvalidLink, InvalidStatusToken, ReplacedLink, ValidationFailed
from queue_service.offers import OfferStatus
from queue_service.pools import PoolId
from queue_service.reference import Prefecture, Procedure, Site
from queue_service.registration import Channel, Registration, identity
from queue_service.registration.proof import verify_proof
from queue_service.registration.tokens import read_status_token
from web import services
from web.extensions import csrf
from web.openapi import openapi_document
from web.proof_of_work import proof_field_checked
from web.registration import (
    confirmation_from_link,
    identity_secret,
    limits,
    now,
    pool_or_404,
    register_applicant,
    signed_proof,
    trusted_public_keys,
)

blueprint = Blueprint("api", __name__, url_prefix="/api/v1")
# The API authenticates with tokens, never with cookies: no CSRF token to send.
csrf.exempt(blueprint)


@blueprint.after_request
def challenge_bearer(response):
    """A 401 says which credentials to send (RFC 9110 §11.6.1): every API credential is a bearer token."""
    if response.status_code == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="api"'
    return response


@blueprint.get("/")
def index():
    return jsonify(
        prefectures=url_for("api.prefectures"),
        procedures=url_for("api.procedures"),
        registrations=url_for("api.create_registration"),
        challenge=url_for("api.challenge"),
        openapi=url_for("api.openapi"),
    )


@blueprint.get("/openapi.json")
def openapi():
    return jsonify(openapi_document())


@blueprint.get("/prefectures")
def prefectures():
    return jsonify(items=[_prefecture(p) for p in services().store.prefectures()])


@blueprint.get("/prefectures/<code>")
def prefecture(code: str):
    store = services().store
    return jsonify(_prefecture(store.prefecture(code)) | {"sites": [site_json(s) for s in store.sites(code)]})


@blueprint.get("/procedures")
def procedures():
    return jsonify(items=[_procedure(p) for p in services().store.procedures()])


def _prefecture(prefecture: Prefecture) -> dict:
    return {"code": prefecture.code, "name": prefecture.name, "timezone": prefecture.timezone}


def _procedure(procedure: Procedure) -> dict:
    return {
        "code": procedure.code,
        "label": {"fr": procedure.label_fr, "en": procedure.label_en},
        "description": {"fr": procedure.description_fr, "en": procedure.description_en},
        "required_fields": [field.value for field in procedure.required_fields],
    }


def site_json(site: Site) -> dict:
    return {
        "id": site.id,
        "name": site.name,
        "kind": site.kind,
        "address": {"street": site.address, "postcode": site.postcode, "city": site.city},
        "opening_hours": [
            {"weekday": h.weekday, "opens": h.opens.isoformat("minutes"), "closes": h.closes.isoformat("minutes")}
            for h in site.opening_hours
        ],
    }


# Registrations -------------------------------------------------------------------


def json_body() -> dict:
    """The request's JSON object, or a 400/422 problem."""
    body = request.get_json(silent=True)
    if body is None:
        raise BadRequest("send a JSON object with Content-Type: application/json")
    if not isinstance(body, dict):
        raise ValidationFailed({"body": "the body must be a JSON object"})
    return body


# The page's form sends one choice as text and none as ""; JSON sends lists, and only lists.
CHOICE_LISTS = {
    "sites": N_("Choose at least one place you can go to."),
    "half_days": N_("Choose at least one half-day when you are free."),
}


def choice_lists_given_as_lists(body: dict) -> dict:
    """The body, if its `sites` and `half_days` (when present) are JSON arrays; else a 422."""
    wrong = {name: message for name, message in CHOICE_LISTS.items() if name in body and not isinstance(body[name], list)}
    if wrong:
        raise ValidationFailed(wrong)
    return body


def _registration(found: Registration) -> dict:
    applicant = found.applicant
    return {
        "ref": found.ref,
        "prefecture": found.key.prefecture,
        "procedure": found.key.procedure,
        "status": found.status.value,
        "channel": found.channel.value,
        "created_at": found.created_at.isoformat(),
        "email_confirmed_at": found.email_confirmed_at.isoformat() if found.email_confirmed_at else None,
        "draws_entered": found.draws_entered,
        "email": applicant.email,
        "pending_email": found.pending_email,
        "phone": applicant.phone,
        "sites": list(applicant.sites),
        "half_days": list(applicant.half_days),
        "language": applicant.language,
        "offer": _offer(found),
    }


def _offer(found: Registration) -> dict | None:
    """The registration's latest offer or booking, as its offer page shows it."""
    from web.offers import appointment

    shown = appointment(found)
    if shown is None:
        return None
    offer = shown["offer"]
    return {
        "status": offer.status.value,
        "starts_at": shown["slot"].starts_at.isoformat(),
        "ends_at": shown["slot"].ends_at.isoformat(),
        "site": shown["slot"].site,
        "deadline": offer.deadline.isoformat(),
        "booking_code": shown["code"],
        "cancel_by": shown["cancel_by"].isoformat() if offer.status is OfferStatus.CONFIRMED else None,
    }


@blueprint.get("/challenge")
def challenge():
    """A fresh proof-of-work challenge (ALTCHA): its solution, sent as `altcha` with a registration
    or an email change, opens the generous per-address limit (web/proof_of_work.py)."""
    from web.proof_of_work import new_challenge

    return jsonify(new_challenge())


@blueprint.post("/registrations")
def create_registration():
    body = proof_field_checked(choice_lists_given_as_lists(json_body()))
    prefecture, procedure = body.get("prefecture"), body.get("procedure")
    if not isinstance(prefecture, str) or not isinstance(procedure, str):
        raise ValidationFailed({"prefecture": "give the prefecture and procedure codes as text"})
    _, found_procedure, sites = pool_or_404(prefecture, procedure)  # as the page: 404 without open sites
    created = register_applicant(prefecture, found_procedure, body, channel=Channel.ONLINE, sites=sites)
    response = jsonify(
        ref=created.ref,
        status=created.status.value,
        confirm_by=created.confirm_by.isoformat(),
        message="We sent a confirmation link to the email address; the registration enters the waiting list when it is opened.",
    )
    response.status_code = 201
    return response


@blueprint.post("/registrations/recover")
def recover_links():
    """Send the links of the registrations using an email address to it again; the same answer
    whether or not any does."""
    email = json_body().get("email")
    try:
        registrations.recover(services().store, email if isinstance(email, str) else "",
                              identity_secret=identity_secret(), now=now())
    except identity.InvalidField as error:
        raise ValidationFailed({error.field: error.message}) from None
    response = jsonify(message="If a registration uses this address, its links were sent to it.")
    response.status_code = 202
    return response


@blueprint.post("/registrations/confirm")
def confirm_registration():
    """Confirm the email with the token of the emailed link; returns the private status token."""
    token = json_body().get("token")
    key, email = confirmation_from_link(token if isinstance(token, str) else "")
    confirmed = registrations.confirm_email(services().store, key, email, now())
    token = registrations.status_link_token(services().settings.secret_key, confirmed)
    return jsonify(_registration(confirmed) | {"status_token": token})


def bearer_registration() -> Registration:
    """The registration whose private status token is given as `Authorization: Bearer <token>`."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise InvalidStatusToken()
    try:
        key, link_version = read_status_token(services().settings.secret_key, token.strip())
        return registrations.load_from_link(services().store, key, link_version)
    except (InvalidLink, ReplacedLink):  # a token replaced by an email change is no credential either
        raise InvalidStatusToken() from None


@blueprint.post("/registration/offer")
def answer_offer():
    """Confirm or decline the pending offer ({"answer": "confirm" | "decline"}), or cancel the booking ("cancel")."""
    from queue_service import offers as offer_rules
    from web.offers import timing

    found = bearer_registration()
    store = services().store
    answer = json_body().get("answer")
    if answer == "confirm":
        offer_rules.confirm(store, found.key, identity_secret(), now())
    elif answer == "decline":
        offer_rules.decline(store, found.key, store.schedule(found.key.pool), now())
    elif answer == "cancel":
        offer_rules.cancel_booking(store, found.key, timing(), now())
    else:
        raise ValidationFailed({"answer": "give \"confirm\", \"decline\" or \"cancel\""})
    return jsonify(_registration(registrations.load(store, found.key)))


@blueprint.route("/registration", methods=["GET", "PATCH", "DELETE"])
def my_registration():
    found = bearer_registration()
    store = services().store
    if request.method == "PATCH":
        found = update_my_registration(found, proof_field_checked(choice_lists_given_as_lists(json_body())))
    elif request.method == "DELETE":
        found = registrations.withdraw(store, found.key, now())
    return jsonify(_registration(found))


def update_my_registration(found: Registration, body: dict) -> Registration:
    """Apply a PATCH: preferences, then the email change; bad input changes nothing."""
    store = services().store
    email = body.get("email")
    if "email" in body:
        try:
            identity.clean_email(email if isinstance(email, str) else "")
        except identity.InvalidField as error:
            raise ValidationFailed({error.field: error.message}) from None
    preference_names = ("phone", "sites", "half_days")
    if any(name in body for name in preference_names):
        current = {"phone": found.applicant.phone, "sites": list(found.applicant.sites),
                   "half_days": list(found.applicant.half_days)}
        preferences = {name: body.get(name, value) for name, value in current.items()}
        site_ids = [site.id for site in store.sites(found.key.prefecture)]
        found = registrations.update_preferences(
            store, found.key, preferences, site_ids, identity_secret=identity_secret(), limits=limits(), now=now()
        )
    if "email" in body:
        found, _ = registrations.request_email_change(store, found.key, email, now(), identity_secret=identity_secret())
    return found


@blueprint.get("/registration/proof")
def my_proof():
    return jsonify(signed_proof(bearer_registration()))


@blueprint.post("/proofs/verify")
def verify():
    result = verify_proof(json_body(), trusted_public_keys())
    return jsonify(valid=result.valid, reason=result.reason, statement=result.statement)


@blueprint.get("/proofs/public-key")
def proof_public_key():
    from queue_service.registration.proof import key_id

    public_key = trusted_public_keys()[0]
    return jsonify(algorithm="Ed25519", encoding="base64url", public_key=public_key, key_id=key_id(public_key))


# Public statistics --------------------------------------------------------------------------


@blueprint.get("/prefectures/<code>/statistics")
def prefecture_statistics(code: str):
    """The public statistics of a prefecture (the page /p/<code>/statistics, as JSON)."""
    from queue_service.errors import UnknownPrefecture
    from queue_service.metrics import statistics as stats

    if len(code) > 3:
        raise UnknownPrefecture()
    store = services().store
    summary = stats.public_summary(store, store.prefecture(code), now())
    return jsonify(public_statistics_json(summary))


def public_statistics_json(summary: dict) -> dict:
    def draw(row: dict) -> dict:
        return {
            "draw_id": row["draw_id"],
            "scheduled_at": row["scheduled_at"].isoformat(),
            "state": row["state"].value,
            "commitment": row["commitment"],
            "entrants": row["entrants"],
            "slots": row["slots"],
            "offered": row["offered"],
            "record": url_for("api.draw_record", draw_id=row["draw_id"]),
            "page": url_for("applicant.draw_page", draw_id=row["draw_id"]),
        }

    return {
        "prefecture": _prefecture(summary["prefecture"]),
        "generated_at": summary["generated_at"].isoformat(),
        "pools": [
            {
                "procedure": pool["procedure"].code,
                "waiting": pool["waiting"],
                "slots_offered_total": pool["slots_offered_total"],
                "slots_offered_per_week": [
                    {"week_of": monday.isoformat(), "slots_offered": count} for monday, count in pool["slots_offered_per_week"]
                ],
                "draws_committed": pool["draws_committed"],
                "median_wait_days": pool["median_wait_days"],
                "renewals_served_before_expiry": pool["renewals_served_before_expiry"],
                "draws": [draw(row) for row in pool["draws"]],
            }
            for pool in summary["pools"]
        ],
    }


# Draws (public) --------------------------------------------------------------------------


def draw_pool(draw_id: str) -> str:
    from queue_service.draws.schedules import parse_draw_id
    from queue_service.errors import UnknownDraw

    try:
        prefecture, procedure, _ = parse_draw_id(draw_id)
    except ValueError:
        raise UnknownDraw() from None
    return PoolId.of(prefecture, procedure)


@blueprint.get("/draws/<draw_id>/record")
def draw_record(draw_id: str):
    """The public record of a draw (DESIGN.md): anyone can verify it with `python -m queue_service.verify`."""
    from queue_service import draws

    response = jsonify(draws.public_record(services().store, draw_pool(draw_id), draw_id))
    response.headers["Content-Disposition"] = f'inline; filename="{draw_id}.json"'
    return response
