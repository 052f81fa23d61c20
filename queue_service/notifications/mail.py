"""Sending mail: through an SMTP server, or into files for development.

Messages are built here (`new_message`) from the text and HTML the templates
give, and delivered according to the settings (see config/defaults.toml).

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
import functools
import smtplib
import ssl
import uuid
from email.charset import QP, Charset
from email.header import Header
from email.message import EmailMessage, Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import formataddr, format_datetime, make_msgid, parseaddr
from pathlib import Path

import idna

from queue_service.files import private_folder, write_private
from queue_service.settings import Settings


# UTF-8 text quoted-printable (the standard library's default for UTF-8 is base64).
_QUOTED_PRINTABLE_UTF8 = Charset("utf-8")
_QUOTED_PRINTABLE_UTF8.body_encoding = QP


class MailRefused(Exception):
    """The mail server can never take this message as it is (retrying will not help)."""


def deliverable_address(address: str) -> str:
    """`address` as mail servers take it: the domain in its ASCII form (IDNA) when the mailbox
    name is ASCII; unchanged when the mailbox name itself is in Unicode (SMTPUTF8 then)."""
    mailbox, _, domain = address.rpartition("@")
    if not mailbox.isascii() or domain.isascii():
        return address
    return f"{mailbox}@{idna.encode(domain, uts46=True).decode('ascii')}"


def new_message(settings: Settings, to: str, subject: str, text: str, html: str | None = None) -> Message:
    """A message from the service's address, plain text with an optional HTML part.

    Its headers are ASCII (RFC 2047 for a subject in French) unless the
    recipient's mailbox name is in Unicode: then UTF-8 (RFC 6532), since an
    address may not be split into encoded words.

    Built with the standard library's classic API (email.mime, its compat32
    policy) for an ASCII address, which nearly every one is: it stores headers
    as they are given rather than parsing each into objects and folding them
    again, and costs about a third of the modern API's time (a mail went out
    in about 3 ms of CPU, a third of it building the message: docs/operations.md).
    The text goes quoted-printable, readable as it is and safe for any server.
    """
    to = deliverable_address(to)
    if not to.isascii():
        return _unicode_address_message(settings, to, subject, text, html)
    body = _text_part(text, "plain")
    message = body if html is None else MIMEMultipart("alternative", _subparts=[body, _text_part(html, "html")])
    message["From"] = _ascii_address(settings.mail_from)
    message["To"] = to
    message["Subject"] = subject if subject.isascii() else Header(subject, "utf-8")
    message["Date"] = format_datetime(datetime.datetime.now(datetime.timezone.utc))
    message["Message-ID"] = _message_id(settings)
    return message


def _text_part(text: str, subtype: str) -> MIMEText:
    part = MIMEText(text, subtype, "us-ascii" if text.isascii() else _QUOTED_PRINTABLE_UTF8)  # 7bit if ASCII
    del part["MIME-Version"]  # once, in the message's own headers
    return part


@functools.lru_cache(maxsize=4)
def _ascii_address(address: str) -> str:
    """`address` ("Name <mailbox@domain>") with its name in RFC 2047 encoded words if not ASCII."""
    name, mailbox = parseaddr(address)
    return formataddr((name, mailbox), charset="utf-8")


def _message_id(settings: Settings) -> str:
    return make_msgid(domain=parseaddr(settings.mail_from)[1].partition("@")[2] or None)


def _unicode_address_message(settings: Settings, to: str, subject: str, text: str, html: str | None) -> EmailMessage:
    """The message to a mailbox name in Unicode, headers in UTF-8 (RFC 6532): the modern API."""
    message = EmailMessage(policy=email.policy.default.clone(utf8=True))
    message["From"] = settings.mail_from
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = format_datetime(datetime.datetime.now(datetime.timezone.utc))
    message["Message-ID"] = _message_id(settings)
    message.set_content(text)
    if html is not None:
        message.add_alternative(html, subtype="html")
    return message


def send(settings: Settings, message: Message) -> None:
    """Deliver `message`; raises MailRefused if the server can never take it, OSError or
    smtplib.SMTPException if it could not be handed over this time."""
    with Connection(settings) as connection:
        connection.send(message)


def _write_file(folder: Path, message: Message) -> Path:
    private_folder(folder)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S")
    return write_private(folder / f"{stamp}-{uuid.uuid4().hex[:8]}.eml", message.as_bytes())


class Connection:
    """Several messages delivered over one SMTP connection (a send job's batch), so that the
    connection, its greeting, TLS and login are paid once, not per message.

    Opened at the first message and closed (QUIT) at the end of the `with`
    block. A server that drops a connection it kept open between messages (an
    idle timeout, a cap on messages per connection) is reconnected to, once
    for that message. A connection that cannot be opened fails that message,
    and every later one at once with the same error, rather than each waiting
    its own timeout. With the file backend each message goes to its own file.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.client: smtplib.SMTP | None = None
        self.unreachable: Exception | None = None  # the error of a connection that could not be opened

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exception) -> None:
        self.close()

    def send(self, message: Message) -> None:
        """Deliver `message`; raises as `send` does."""
        if self.settings.mail_backend == "file":
            _write_file(self.settings.mail_dir, message)
            return
        kept = self.client is not None
        try:
            self._send(message)
        except (smtplib.SMTPServerDisconnected, OSError):
            self._drop()
            if not kept or self.unreachable is not None:
                raise
            self._send(message)  # the server dropped the connection it had kept: a new one, once

    def close(self) -> None:
        if self.client is None:
            return
        try:
            self.client.quit()
        except (smtplib.SMTPException, OSError):
            pass  # the message went out already; the server may hang up first
        finally:
            self._drop()

    def _send(self, message: Message) -> None:
        if self.client is None:
            self._open()
        try:
            self.client.send_message(message)
        except smtplib.SMTPNotSupportedError:
            # The recipient's mailbox name is in Unicode and the server does not announce SMTPUTF8.
            raise MailRefused("the mail server does not take addresses in Unicode (no SMTPUTF8)") from None

    def _open(self) -> None:
        if self.unreachable is not None:
            raise self.unreachable.with_traceback(None)
        settings = self.settings
        try:
            # Only with TLS: the context loads the system's certificates (about 80 ms a connection).
            if settings.smtp_security == "tls":
                client = smtplib.SMTP_SSL(settings.smtp_host, settings.smtp_port,
                                          timeout=settings.smtp_timeout_seconds, context=ssl.create_default_context())
            else:
                client = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=settings.smtp_timeout_seconds)
            try:
                if settings.smtp_security == "starttls":
                    client.starttls(context=ssl.create_default_context())
                if settings.smtp_username:
                    client.login(settings.smtp_username, settings.smtp_password)
            except BaseException:
                client.close()
                raise
        except (smtplib.SMTPException, OSError) as error:
            self.unreachable = error
            raise
        self.client = client

    def _drop(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None
