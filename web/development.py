"""Development only: read the messages the service "sent" (the file mail and SMS backends write them under var/).

Registered by create_app only outside production and with the file mail
backend, so a developer running `make run` can follow a demo draw's
messages in the browser. They hold everyone's private links: the pages
answer only requests made on this machine, straight to the app, and are a
404 for anyone else, as if they did not exist.
"""

from __future__ import annotations

import email
import email.policy
import ipaddress
from pathlib import Path

from flask import Blueprint, abort, render_template, request

from web import services

blueprint = Blueprint("development", __name__, url_prefix="/dev")
SHOWN = 100
# A proxy on this machine makes every visitor look local; it says so with one of these.
FORWARDING_HEADERS = ("Forwarded", "X-Forwarded-For", "X-Real-IP")


def from_this_machine() -> bool:
    """The request comes from a loopback address (127.0.0.0/8, ::1) and through no proxy."""
    try:
        address = ipaddress.ip_address(request.remote_addr or "")
    except ValueError:
        return False
    return address.is_loopback and not any(name in request.headers for name in FORWARDING_HEADERS)


@blueprint.before_request
def only_from_this_machine():
    if services().settings.is_production or not from_this_machine():
        abort(404)


def _newest(folder: Path, pattern: str) -> list[Path]:
    return sorted(folder.glob(pattern), reverse=True)[:SHOWN] if folder.is_dir() else []


@blueprint.get("/outbox")
def outbox():
    """The latest messages, newest first: mail with its subject and text, SMS with its text."""
    settings = services().settings
    mails = []
    for path in _newest(settings.mail_dir, "*.eml"):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        body = message.get_body(preferencelist=("plain",))
        mails.append({"name": path.name, "to": message["To"], "subject": message["Subject"], "date": message["Date"],
                      "text": body.get_content() if body else ""})
    texts = [{"name": path.name, "text": path.read_text(encoding="utf-8")} for path in _newest(settings.sms_dir, "*.txt")]
    return render_template("dev_outbox.html", mails=mails, texts=texts)


@blueprint.get("/outbox/<name>")
def message_html(name: str):
    """One mail's HTML part, as the applicant would see it."""
    path = services().settings.mail_dir / name
    if "/" in name or not name.endswith(".eml") or not path.is_file():
        abort(404)
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    body = message.get_body(preferencelist=("html", "plain"))
    return body.get_content() if body else "", 200, {"Content-Type": f"{body.get_content_type()}; charset=utf-8"}
