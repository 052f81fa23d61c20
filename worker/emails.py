"""The messages sent to applicants, rendered in their language.

Templates live in web/templates/email (a .txt and an .html per kind) and are
translated with the web app's catalogues, but rendered here without Flask, so
that the worker can send them. They never carry identity numbers or birth
dates: only the public reference, the pool and the links.
"""

from __future__ import annotations

import datetime
import functools

import jinja2
from babel.support import Translations
from email.message import EmailMessage

from queue_service import mail
from queue_service.registration import Registration, email_print
from queue_service.settings import PROJECT_ROOT, Settings
from queue_service.store import Store
from queue_service.tokens import confirmation_token, status_token

TEMPLATES = PROJECT_ROOT / "web" / "templates" / "email"
TRANSLATIONS = PROJECT_ROOT / "web" / "translations"
KINDS = ("confirm", "registered", "email_change", "withdrawn")


@functools.cache
def _environment(language: str) -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(["html"]),
        extensions=["jinja2.ext.i18n"],
        undefined=jinja2.StrictUndefined,
    )
    translations = Translations.load(str(TRANSLATIONS), [language], domain="messages")
    environment.install_gettext_translations(translations, newstyle=True)
    return environment


def compose(
    settings: Settings, store: Store, registration: Registration, kind: str, now: datetime.datetime
) -> EmailMessage:
    """The message of `kind` for `registration`, to its email address (or its new one)."""
    if kind not in KINDS:
        raise ValueError(f"unknown message kind {kind!r}")
    key = registration.key
    language = registration.applicant.language
    procedure = store.procedure(key.procedure)
    recipient = registration.pending_email if kind == "email_change" else registration.applicant.email
    context = {
        "ref": registration.ref,
        "prefecture": store.prefecture(key.prefecture).name,
        "procedure": procedure.label_en if language == "en" else procedure.label_fr,
        "hours": settings.confirmation_link_hours,
        "status_link": f"{settings.base_url}/status?t={status_token(settings.secret_key, key)}",
    }
    link_print = email_print(settings.identity_key.encode(), key.pool, recipient) if recipient else ""
    if kind == "confirm":
        token = confirmation_token(settings.secret_key, key, link_print, registration.created_at)
        context["link"] = f"{settings.base_url}/confirm?t={token}"
    elif kind == "email_change":
        token = confirmation_token(settings.secret_key, key, link_print, now)
        context["link"] = f"{settings.base_url}/email/confirm?t={token}"
    environment = _environment(language)
    subject = environment.get_template(f"{kind}.subject.txt").render(context).strip()
    text = environment.get_template(f"{kind}.txt").render(context)
    html = environment.get_template(f"{kind}.html").render(context)
    return mail.new_message(settings, recipient, subject, text, html)
