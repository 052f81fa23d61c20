"""What Flask-Limiter counts requests by, beyond the client address, and which it counts."""

from __future__ import annotations

from flask import request
from flask_limiter.util import get_remote_address

from queue_service.errors import InvalidText
from queue_service.registration import identity
from web import services

# A registration refused as a duplicate, or an email change refused as a conflict.
CONFLICT = 409


def email_in_request() -> str:
    """The email address a registration is for, as a keyed hash (never the address
    itself in Redis); the client address when there is none or it is not valid (a body
    that is not valid Unicode is refused by the view, 400, unless a budget is spent: 429)."""
    try:
        payload = request.get_json(silent=True) if request.is_json else request.form
    except InvalidText:
        return get_remote_address()
    text = payload.get("email") if hasattr(payload, "get") else None
    if isinstance(text, str):
        try:
            secret = services().settings.identity_key.encode()
            return "email:" + identity.contact_fingerprint(secret, "rate-limit", "email", text)
        except identity.InvalidField:
            pass
    return get_remote_address()


def accepted_or_duplicate(response) -> bool:
    """Whether a request spends registration budget: it was accepted (a registration made,
    an email change asked: 2xx, or the form's redirect) or refused as a duplicate (409).
    A form sent back with mistakes (422), a request refused for its input (400, 404)
    or turned away (429, 503) spends nothing."""
    return response.status_code < 400 or response.status_code == CONFLICT


def leaves_registrations_alone() -> bool:
    """A change of the API's registration (PATCH) that asks no new email: preferences only,
    outside the registration budget."""
    if request.method != "PATCH":
        return False
    try:
        body = request.get_json(silent=True)
    except InvalidText:
        return True  # refused by the view (400) whatever the limits say
    return not (isinstance(body, dict) and "email" in body)
