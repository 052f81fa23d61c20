"""Pages for a drawn applicant: the offer (confirm or decline), then the booking
(code, QR code, calendar file, cancellation). The counter's check-in is a staff
page (web/staff.py).

The applicant reaches these pages with their private status link (`t`), from
the message that announced the offer or from the status page; an SMS carries
a short link instead (`/o/<code>`, queue_service/notifications/short_links.py),
which leads to the offer page.
"""

from __future__ import annotations

import dataclasses
import io

import segno
from flask import Blueprint, Response, redirect, render_template, request, url_for
from flask_babel import get_locale, gettext

from queue_service import offers as offer_rules
from queue_service.errors import InvalidTransition, QueueServiceError
from queue_service.notifications import short_links
from web import services
from web.registration import identity_secret, now, registration_from_link, status_url

blueprint = Blueprint("offers", __name__)


def timing() -> offer_rules.OfferTiming:
    return offer_rules.OfferTiming.from_settings(services().settings)


def appointment(found) -> dict | None:
    """What the offer pages show of the registration's latest offer, or None without one."""
    store = services().store
    offer = store.offer(found.key)
    if offer is None:
        return None
    slot = store.slot(found.key.pool, offer.slot_id)
    if slot is None:
        return None
    prefecture = store.prefecture(found.key.prefecture)
    shown = offer_rules.display(offer, slot, timing(), prefecture.timezone, now())
    return {
        "offer": offer,
        "slot": slot,
        "site": store.site(found.key.prefecture, slot.site),
        **dataclasses.asdict(shown),
        "prefecture": prefecture,
        "procedure": store.procedure(found.key.procedure),
        "documents": offer_rules.documents_to_bring(found.key.procedure),
    }


def render_offer(token: str, found, notice: str | None = None, error: str | None = None, status: int = 200):
    return render_template(
        "offer.html", token=token, registration=found, appointment=appointment(found), notice=notice, error=error
    ), status


@blueprint.get("/o/<code>")
def short_link(code: str):
    """An SMS's short link: on to the offer page (303), or a page in the reader's language saying
    the link is unknown (404) or has expired (410), and nothing more."""
    return redirect(short_links.resolve(services().store, code, now()), code=303)


@blueprint.get("/offer")
def offer_page():
    token, found = registration_from_link()
    return render_offer(token, found)


@blueprint.post("/offer/confirm")
def confirm_offer():
    token, found = registration_from_link()
    try:
        offer_rules.confirm(services().store, found.key, identity_secret(), now())
    except QueueServiceError as refused:
        return render_offer(token, found, error=gettext(refused.detail or refused.message), status=refused.http_status)
    return redirect(url_for("offers.offer_page", t=token, done="booked"))


@blueprint.route("/offer/decline", methods=["GET", "POST"])
def decline_offer():
    token, found = registration_from_link()
    if request.method == "GET":
        return render_template("offer_decline.html", token=token, registration=found,
                               appointment=appointment(found), schedule=services().store.schedule(found.key.pool))
    try:
        offer_rules.decline(services().store, found.key, services().store.schedule(found.key.pool), now())
    except QueueServiceError as refused:
        return render_offer(token, found, error=gettext(refused.detail or refused.message), status=refused.http_status)
    return redirect(status_url(found))


@blueprint.route("/booking/cancel", methods=["GET", "POST"])
def cancel_booking():
    token, found = registration_from_link()
    if request.method == "GET":
        return render_template("booking_cancel.html", token=token, registration=found, appointment=appointment(found))
    try:
        offer_rules.cancel_booking(services().store, found.key, timing(), now())
    except QueueServiceError as refused:
        return render_offer(token, found, error=gettext(refused.detail or refused.message), status=refused.http_status)
    return redirect(status_url(found))


def booked_appointment():
    token, found = registration_from_link()
    shown = appointment(found)
    if shown is None or shown["offer"].status is not offer_rules.OfferStatus.CONFIRMED:
        raise InvalidTransition(gettext("This registration has no booked appointment."))
    return found, shown


@blueprint.get("/booking/qr.svg")
def booking_qr():
    """The booking code as a QR code, for the agent's scanner (it types the code into the check-in form)."""
    _, shown = booked_appointment()
    svg = io.BytesIO()
    segno.make(shown["offer"].booking_code, error="m").save(svg, kind="svg", scale=6, border=2, xmldecl=False)
    return Response(svg.getvalue(), mimetype="image/svg+xml")  # no-store: web/security.py


@blueprint.get("/booking/appointment.ics")
def booking_calendar():
    found, shown = booked_appointment()
    site = shown["site"]
    location = f"{site.name}, {site.address}, {site.postcode} {site.city}" if site else shown["slot"].site
    procedure = shown["procedure"]
    summary = gettext("Prefecture appointment: %(procedure)s",
                      procedure=procedure.label_fr if str(get_locale()) == "fr" else gettext(procedure.label_en))
    description = gettext("Booking code: %(code)s. Bring this code and your identity document.", code=shown["code"])
    calendar = offer_rules.calendar_file(
        uid=f"{found.key.pool}-{found.key.registration_id}-{shown['slot'].id}@queue-service",
        starts_at=shown["slot"].starts_at, ends_at=shown["slot"].ends_at, summary=summary,
        location=location, description=description, stamp=now(),
    )
    return Response(calendar, mimetype="text/calendar", headers={
        "Content-Disposition": f'attachment; filename="appointment-{found.ref}.ics"',
    })  # no-store: web/security.py
