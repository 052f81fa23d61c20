"""Keys that Flask-Limiter counts requests by, beyond the client address."""

from __future__ import annotations

from flask import request
from flask_limiter.util import get_remote_address

from queue_service.registration import identity
from web import services


def email_in_request() -> str:
    """The email address a registration is for, as a keyed hash (never the address
    itself in Redis); the client address when there is none or it is not valid."""
    payload = request.get_json(silent=True) if request.is_json else request.form
    text = payload.get("email") if hasattr(payload, "get") else None
    if isinstance(text, str):
        try:
            secret = services().settings.identity_key.encode()
            return "email:" + identity.contact_fingerprint(secret, "rate-limit", "email", text)
        except identity.InvalidField:
            pass
    return get_remote_address()
