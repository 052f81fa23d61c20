"""Development only: read the messages the service "sent" (the file mail and SMS backends write them under var/).

Registered by create_app only outside production and with the file mail
backend, so a developer running `make run` can follow a demo draw's
messages in the browser.
"""

from __future__ import annotations

import email
import email.policy
from pathlib import Path

from flask import Blueprint, abort, render_template

from web import services

blueprint = Blueprint("development", __name__, url_prefix="/dev")
SHOWN = 100


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
