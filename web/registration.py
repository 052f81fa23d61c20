"""Applicant pages: register, confirm the email, see the status, change, withdraw, prove.

Each handler parses the request, checks the link's token, calls one function
of queue_service.registration, and renders. Private links carry their token
in the query string (`?t=`), which the access log leaves out.
"""

from __future__ import annotations

import datetime
import json
import secrets

from flask import Blueprint, Response, g, redirect, render_template, request, url_for
from flask_babel import get_locale, gettext

from queue_service import draws as draw_rules
from queue_service import registration as registrations
from queue_service.errors import ContactCapReached, DuplicateRegistration, UnknownProcedure, ValidationFailed
from queue_service.metrics import statistics
from queue_service.offers import OfferTiming
from queue_service.reference import HALF_DAYS, Procedure
from queue_service.registration import Channel, Registration, identity
from queue_service.registration.agdref import UploadedRecords
from queue_service.registration.proof import load_signing_key, public_key_text, sign_proof, verify_proof
from queue_service.registration.tokens import (
    RegistrationKey,
    read_confirmation_token,
    read_status_token,
)
from queue_service.store.reference import UNREAD
from web import services
from web.errors import translated
from web.i18n import speak_applicants_language

blueprint = Blueprint("registration", __name__)

# Fields a multiple choice form sends a marker for, so that "none ticked"
# (an error) is told apart from "field absent" (all, in the JSON API).
CHOICE_FIELDS = ("sites", "half_days")


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def limits() -> registrations.Limits:
    settings = services().settings
    return registrations.Limits(
        contacts_per_pool=settings.contacts_per_pool,
        confirmation_window=datetime.timedelta(hours=settings.confirmation_link_hours),
    )


def identity_secret() -> bytes:
    return services().settings.identity_key.encode()


def form_values() -> dict[str, object]:
    """The submitted form, with the multiple choices as lists."""
    values: dict[str, object] = {name: value for name, value in request.form.items() if name not in CHOICE_FIELDS}
    for name in CHOICE_FIELDS:
        if request.form.get(f"{name}_shown"):
            values[name] = request.form.getlist(name)
    return values


def half_day_options() -> list[tuple[str, str]]:
    """(code, "Monday morning") for each half-day, in the page's language."""
    days = {
        "mon": gettext("Monday"),
        "tue": gettext("Tuesday"),
        "wed": gettext("Wednesday"),
        "thu": gettext("Thursday"),
        "fri": gettext("Friday"),
    }
    parts = {"am": gettext("morning"), "pm": gettext("afternoon")}
    return [(code, f"{days[code[:3]]} {parts[code[4:]]}") for code in HALF_DAYS]


def site_options(sites) -> list[tuple[str, str]]:
    return [(site.id, f"{site.name}, {site.city}") for site in sites]


def pool_or_404(code: str, procedure_code: str) -> tuple:
    # The reference version, if the registration budgets read it in their call (web/budgets.py).
    version = g.get("reference_version", UNREAD)
    prefecture, procedure, sites = services().store.pool_reference(code, procedure_code, version)
    if not sites:
        raise UnknownProcedure()  # a prefecture without sites takes no registrations yet
    return prefecture, procedure, sites


def register_applicant(code: str, procedure: Procedure, form: dict, *, channel: Channel, agent: str | None = None,
                       sites: list | None = None):
    """Parse and register; shared by the page, the API and the agent's counter. `sites`: the
    prefecture's, as pool_or_404 found them (read again if not given)."""
    store = services().store
    site_ids = [site.id for site in (store.sites(code) if sites is None else sites) if not site.closed]
    applicant = registrations.parse_applicant(
        form, procedure, site_ids, now().date(), email_required=channel is Channel.ONLINE
    )
    created = registrations.register(
        store,
        code,
        procedure.code,
        applicant,
        now=now(),
        rng=secrets.SystemRandom(),
        identity_secret=identity_secret(),
        limits=limits(),
        records=UploadedRecords(store, identity_secret()),
        channel=channel,
        agent=agent,
    )
    return created


@blueprint.route("/p/<code>/<procedure_code>/register", methods=["GET", "POST"])
def register(code: str, procedure_code: str):
    _, procedure, sites = pool_or_404(code, procedure_code)
    errors: dict[str, str] = {}
    values: dict[str, object] = {"language": str(get_locale())}
    if request.method == "POST":
        values = form_values()
        created, errors = attempt_registration(code, procedure, values, channel=Channel.ONLINE, sites=sites)
        if created:
            return redirect(url_for("registration.registered", code=code, procedure_code=procedure.code, ref=created.ref))
    return render_registration_form(code, procedure, values, errors)


def attempt_registration(code: str, procedure: Procedure, values: dict, **how) -> tuple[Registration | None, dict]:
    """Register from a form: the registration, or the errors to show on the form."""
    try:
        return register_applicant(code, procedure, values, **how), {}
    except ValidationFailed as failure:
        return None, translated(failure.errors)
    except (DuplicateRegistration, ContactCapReached) as refusal:
        return None, {"form": gettext(refusal.message)}


def render_registration_form(code: str, procedure: Procedure, values: dict, errors: dict, *, assisted: bool = False):
    """The registration form, online or at an agent's counter (email optional there)."""
    store = services().store
    open_sites = [site for site in store.sites(code) if not site.closed]
    status = (409 if "form" in errors else 422) if errors else 200
    return (
        render_template(
            "register.html",
            prefecture=store.prefecture(code),
            procedure=procedure,
            sites=open_sites,
            half_days=HALF_DAYS,
            site_options=site_options(open_sites),
            half_day_options=half_day_options(),
            nationalities=identity.nationality_choices(str(get_locale())),
            retention_days=services().settings.closed_retention_days,
            values=values,
            errors=errors,
            assisted=assisted,
        ),
        status,
    )


@blueprint.get("/p/<code>/<procedure_code>/registered")
def registered(code: str, procedure_code: str):
    prefecture, procedure, _ = pool_or_404(code, procedure_code)
    ref = request.args.get("ref", "")[:20]
    return render_template(
        "registered.html",
        prefecture=prefecture,
        procedure=procedure,
        ref=ref,
        hours=services().settings.confirmation_link_hours,
    )


def confirmation_from_link(token: str) -> tuple[RegistrationKey, str]:
    """The registration and address a confirmation link is for; InvalidLink, ExpiredLink,
    RegistrationNotFound or InvalidTransition (an address changed since) otherwise."""
    settings = services().settings
    window = datetime.timedelta(hours=settings.confirmation_link_hours)
    key, link_print = read_confirmation_token(settings.secret_key, token, now(), window)
    found = registrations.load(services().store, key)
    return key, registrations.email_for_link(found, link_print, identity_secret())


@blueprint.route("/confirm", methods=["GET", "POST"])
def confirm():
    """The link in the confirmation email. GET only shows a button: mail
    scanners that open links must not confirm in the applicant's place."""
    token = request.values.get("t", "")
    key, email = confirmation_from_link(token)
    found = registrations.load(services().store, key)
    speak_applicants_language(found)
    if request.method == "GET":
        return render_template("confirm.html", token=token, registration=found)
    confirmed = registrations.confirm_email(services().store, key, email, now())
    return redirect(status_url(confirmed))


def event_label(kind: str) -> str:
    labels = {
        "registered": gettext("Registered"),
        "email_confirmed": gettext("Email confirmed: entered the waiting list"),
        "preferences_changed": gettext("Preferences changed"),
        "email_changed": gettext("Email address changed"),
        "withdrawn": gettext("Withdrawn"),
        "standby_offer": gettext("Offered an appointment freed by another winner (standby)"),
        "offer_confirmed": gettext("Appointment confirmed"),
        "offer_declined": gettext("Offer declined"),
        "offer_expired": gettext("Offer expired without an answer"),
        "booking_cancelled": gettext("Appointment cancelled"),
        "slot_cancelled": gettext("Appointment cancelled by the prefecture; back in the waiting list"),
        "attended": gettext("Came to the appointment"),
        "no_show": gettext("Did not come to the appointment"),
    }
    return labels.get(kind, kind)


def history_for_display(key: RegistrationKey) -> list[dict]:
    return [
        {"at": datetime.datetime.fromisoformat(event["at"]), "label": event_label(event["kind"])}
        for event in services().store.history(key)
    ]


def status_url(registration: Registration, endpoint: str = "registration.status") -> str:
    """The registration's current private status link (older ones stop working when the email changes)."""
    return url_for(endpoint, t=registrations.status_link_token(services().settings.secret_key, registration))


def registration_from_link() -> tuple[str, Registration]:
    token = request.values.get("t", "")
    key, link_version = read_status_token(services().settings.secret_key, token)
    found = registrations.load_from_link(services().store, key, link_version)
    speak_applicants_language(found)
    return token, found


@blueprint.get("/status")
def status():
    token, found = registration_from_link()
    return render_status(token, found)


def render_status(token: str, found: Registration, errors: dict[str, str] | None = None, notice: str | None = None):
    store = services().store
    key = found.key
    schedule = store.schedule(key.pool)
    timing = OfferTiming.from_settings(services().settings)  # the draws' slots as their freezes count them
    active = schedule is not None and schedule.active
    next_draw = draw_rules.upcoming(store, schedule, now(), count=1, timing=timing) if active else []
    outlook = statistics.applicant_outlook(store, found, schedule, now(), timing)
    return (
        render_template(
            "status.html",
            token=token,
            registration=found,
            prefecture=store.prefecture(key.prefecture),
            procedure=store.procedure(key.procedure),
            site_options=site_options(store.sites(key.prefecture)),
            half_day_options=half_day_options(),
            history=history_for_display(key),
            editable=found.status in registrations.EDITABLE,
            next_draw=next_draw[0] if next_draw else None,
            outlook=outlook,
            policy=schedule.policy if schedule else None,
            errors=errors or {},
            notice=notice,
        ),
        422 if errors else 200,
    )


@blueprint.post("/status/preferences")
def update_preferences():
    token, found = registration_from_link()
    site_ids = [site.id for site in services().store.sites(found.key.prefecture)]
    try:
        updated = registrations.update_preferences(
            services().store,
            found.key,
            form_values(),
            site_ids,
            identity_secret=identity_secret(),
            limits=limits(),
            now=now(),
        )
    except ValidationFailed as failure:
        return render_status(token, found, errors=translated(failure.errors))
    return render_status(token, updated, notice=gettext("Your preferences are saved."))


@blueprint.route("/recover", methods=["GET", "POST"])
def recover():
    """Ask for one's links again by email. The answer is the same whether or not a
    registration uses the address: it tells nobody who is registered."""
    email = request.form.get("email", "").strip() if request.method == "POST" else ""
    if request.method == "GET":
        return render_template("recover.html", email="", errors={}, sent=False)
    try:
        registrations.recover(services().store, email, identity_secret=identity_secret(), now=now())
    except identity.InvalidField as error:
        errors = {error.field: gettext(error.message)}
        return render_template("recover.html", email=email, errors=errors, sent=False), 422
    return render_template("recover.html", email=email, errors={}, sent=True)


@blueprint.post("/status/email")
def change_email():
    token, found = registration_from_link()
    try:
        updated, _ = registrations.request_email_change(
            services().store, found.key, request.form.get("email", ""), now(), identity_secret=identity_secret()
        )
    except ValidationFailed as failure:
        return render_status(token, found, errors=translated(failure.errors))
    notice = gettext("We sent a link to your new address. Your email changes when you open it.")
    return render_status(token, updated, notice=notice)


@blueprint.route("/email/confirm", methods=["GET", "POST"])
def confirm_email_change():
    token = request.values.get("t", "")
    key, email = confirmation_from_link(token)
    found = registrations.load(services().store, key)
    speak_applicants_language(found)
    if request.method == "GET":
        return render_template("confirm_email_change.html", token=token, registration=found, email=email)
    changed = registrations.confirm_email_change(
        services().store, key, email, identity_secret=identity_secret(), limits=limits(), now=now()
    )
    return redirect(status_url(changed))


@blueprint.route("/status/withdraw", methods=["GET", "POST"])
def withdraw():
    token, found = registration_from_link()
    if request.method == "GET":
        return render_template("withdraw.html", token=token, registration=found)
    withdrawn = registrations.withdraw(services().store, found.key, now())
    return render_status(token, withdrawn, notice=gettext("You have left the waiting list."))


# Proof of registration --------------------------------------------------------


def signed_proof(found: Registration) -> dict:
    store = services().store
    statement = registrations.proof_statement(
        found, store.history(found.key), store.draws_entered(found), store.prefecture(found.key.prefecture).name, now()
    )
    return sign_proof(load_signing_key(services().settings.proof_signing_key), statement)


def trusted_public_keys() -> list[str]:
    return [public_key_text(load_signing_key(services().settings.proof_signing_key))]


@blueprint.get("/status/proof")
def proof_page():
    token, found = registration_from_link()
    document = signed_proof(found)
    return render_template(
        "proof.html",
        token=token,
        registration=found,
        statement=document["statement"],
        document=document,
        history=history_for_display(found.key),
        issued_at=datetime.datetime.fromisoformat(document["statement"]["issued_at"]),
        procedure=services().store.procedure(found.key.procedure),
        timezone=services().store.prefecture(found.key.prefecture).timezone,
    )


@blueprint.get("/status/proof.json")
def proof_download():
    _, found = registration_from_link()
    body = json.dumps(signed_proof(found), ensure_ascii=False, indent=2)
    filename = f"proof-{found.ref}.json"
    return Response(
        body,
        mimetype="application/json",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@blueprint.route("/verify", methods=["GET", "POST"])
def verify():
    """Anyone (a lawyer, a court) checks a proof of registration here."""
    result = None
    if request.method == "POST":
        upload = request.files.get("file")
        text = upload.read().decode("utf-8", "replace") if upload and upload.filename else request.form.get("proof", "")
        try:
            document = json.loads(text)
        except (ValueError, RecursionError):
            document = None
        result = verify_proof(document, trusted_public_keys())
    return render_template("verify.html", result=result, public_key=trusted_public_keys()[0]), (
        422 if result is not None and not result.valid else 200
    )


@blueprint.get("/legal")
def legal_notice():
    settings = services().settings
    return render_template("legal.html", publisher=settings.legal_publisher, host=settings.legal_host)


@blueprint.get("/accessibility")
def accessibility():
    return render_template("accessibility.html")


@blueprint.get("/privacy")
def privacy():
    settings = services().settings
    return render_template(
        "privacy.html",
        hours=settings.confirmation_link_hours,
        retention_days=settings.closed_retention_days,
    )

