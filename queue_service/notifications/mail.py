"""Sending mail: through an SMTP server, or into files for development.

Messages are built by the caller as `email.message.EmailMessage`; this module
only delivers them, according to the settings (see config/defaults.toml).

Addresses beyond ASCII are delivered as they can be: an ASCII mailbox name at
an internationalised domain (ana@bücher.de) goes to the domain's ASCII form
(ana@xn--bcher-kva.de), which every mail server takes; a mailbox name in
Unicode (josé@exemple.fr) needs a server that announces SMTPUTF8 (RFC 6531),
and its message is written with UTF-8 headers (RFC 6532). A server without
SMTPUTF8 cannot take it at all: that is a refusal (MailRefused), not a fault
to retry.
"""

from __future__ import annotations

import datetime
import email.policy
import smtplib
import ssl
import uuid
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from pathlib import Path

import idna

from queue_service.files import private_folder, write_private
from queue_service.settings import Settings


class MailRefused(Exception):
    """The mail server can never take this message as it is (retrying will not help)."""


def deliverable_address(address: str) -> str:
    """`address` as mail servers take it: the domain in its ASCII form (IDNA) when the mailbox
    name is ASCII; unchanged when the mailbox name itself is in Unicode (SMTPUTF8 then)."""
    mailbox, _, domain = address.rpartition("@")
    if not mailbox.isascii() or domain.isascii():
        return address
    return f"{mailbox}@{idna.encode(domain, uts46=True).decode('ascii')}"


def new_message(settings: Settings, to: str, subject: str, text: str, html: str | None = None) -> EmailMessage:
    """A message from the service's address, plain text with an optional HTML part.

    Its headers are ASCII (RFC 2047 for a subject in French) unless the
    recipient's mailbox name is in Unicode: then UTF-8 (RFC 6532), since an
    address may not be split into encoded words.
    """
    to = deliverable_address(to)
    message = EmailMessage(policy=email.policy.default if to.isascii() else email.policy.default.clone(utf8=True))
    message["From"] = settings.mail_from
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = format_datetime(datetime.datetime.now(datetime.timezone.utc))
    message["Message-ID"] = make_msgid(domain=parseaddr(settings.mail_from)[1].partition("@")[2] or None)
    message.set_content(text)
    if html is not None:
        message.add_alternative(html, subtype="html")
    return message


def send(settings: Settings, message: EmailMessage) -> None:
    """Deliver `message`; raises MailRefused if the server can never take it, OSError or
    smtplib.SMTPException if it could not be handed over this time."""
    if settings.mail_backend == "file":
        _write_file(settings.mail_dir, message)
    else:
        _send_smtp(settings, message)


def _write_file(folder: Path, message: EmailMessage) -> Path:
    private_folder(folder)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S")
    return write_private(folder / f"{stamp}-{uuid.uuid4().hex[:8]}.eml", message.as_bytes())


def _send_smtp(settings: Settings, message: EmailMessage) -> None:
    # Only with TLS: the context loads the system's certificates (about 80 ms a message).
    if settings.smtp_security == "tls":
        client = smtplib.SMTP_SSL(settings.smtp_host, settings.smtp_port, timeout=settings.smtp_timeout_seconds,
                                  context=ssl.create_default_context())
    else:
        client = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=settings.smtp_timeout_seconds)
    with client:
        if settings.smtp_security == "starttls":
            client.starttls(context=ssl.create_default_context())
        if settings.smtp_username:
            client.login(settings.smtp_username, settings.smtp_password)
        try:
            client.send_message(message)
        except smtplib.SMTPNotSupportedError:
            # The recipient's mailbox name is in Unicode and the server does not announce SMTPUTF8.
            raise MailRefused("the mail server does not take addresses in Unicode (no SMTPUTF8)") from None
