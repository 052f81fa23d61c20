"""Sending mail: through an SMTP server, or into files for development.

Messages are built by the caller as `email.message.EmailMessage`; this module
only delivers them, according to the settings (see config/defaults.toml).
"""

from __future__ import annotations

import datetime
import smtplib
import ssl
import uuid
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from pathlib import Path

from queue_service.files import private_folder, write_private
from queue_service.settings import Settings


def new_message(settings: Settings, to: str, subject: str, text: str, html: str | None = None) -> EmailMessage:
    """A message from the service's address, plain text with an optional HTML part."""
    message = EmailMessage()
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
    """Deliver `message`; raises OSError or smtplib.SMTPException if it could not be handed over."""
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
        client.send_message(message)
