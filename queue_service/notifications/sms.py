"""Sending text messages (SMS): through Twilio, into files for development, or not at all.

The caller writes the text; this module only delivers it, according to the
settings (see config/defaults.toml). Numbers arrive in E.164 form, as
identity.clean_phone stores them. Logs and errors show a masked number and
never the text: both are personal data.
"""

from __future__ import annotations

import base64
import datetime
import http.client
import json
import logging
import re
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

from queue_service.errors import SmsNotSent
from queue_service.files import private_folder, write_private
from queue_service.settings import Settings

log = logging.getLogger(__name__)

# "+" then the country code and the number, 15 digits at most (ITU E.164).
E164 = re.compile(r"\+[1-9][0-9]{5,14}")
# Twilio's Messaging API: create a Message resource in the account.
TWILIO_MESSAGES_PATH = "/2010-04-01/Accounts/{account_sid}/Messages.json"


def send(settings: Settings, to: str, text: str) -> str:
    """Send `text` to the E.164 number `to`; return the provider's message id.

    The "none" backend sends nothing and returns "". Raises SmsNotSent when
    the number is malformed, the provider refuses or cannot be reached; its
    `retryable` says whether sending again later may work. A retry after a
    timeout may deliver the message twice: Twilio has no idempotency key.
    """
    if settings.sms_backend == "none":
        log.info("sms: disabled (sms_backend = none); nothing sent to %s", mask_number(to))
        return ""
    if not E164.fullmatch(to):
        raise SmsNotSent(f"not a phone number in E.164 form: {mask_number(to)}", retryable=False)
    if settings.sms_backend == "file":
        message_id = _write_file(settings.sms_dir, to, text)
    else:
        try:
            message_id = _send_twilio(settings, to, text)
        except SmsNotSent as error:
            log.warning("sms: not sent to %s: %s", mask_number(to), error)
            raise
    log.info("sms: sent to %s via %s, id %s", mask_number(to), settings.sms_backend, message_id)
    return message_id


def mask_number(number: str) -> str:
    """The number with all but its first three and last two characters hidden: +33*******78."""
    if len(number) < 8:
        return "*" * len(number)
    return number[:3] + "*" * (len(number) - 5) + number[-2:]


def _write_file(folder: Path, to: str, text: str) -> str:
    """One .txt file per message, for a developer to read; its name is the message id."""
    private_folder(folder)
    now = datetime.datetime.now(datetime.timezone.utc)
    message_id = f"{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    content = f"To: {to}\nDate: {now.isoformat(timespec='seconds')}\nId: {message_id}\n\n{text}\n"
    write_private(folder / f"{message_id}.txt", content.encode("utf-8"))
    return message_id


def _send_twilio(settings: Settings, to: str, text: str) -> str:
    account_sid = settings.twilio_account_sid
    url = settings.twilio_base_url + TWILIO_MESSAGES_PATH.format(account_sid=urllib.parse.quote(account_sid))
    fields = {"To": to, "Body": text}
    if settings.twilio_messaging_service_sid:
        fields["MessagingServiceSid"] = settings.twilio_messaging_service_sid
    else:
        fields["From"] = settings.twilio_from
    credentials = base64.b64encode(f"{account_sid}:{settings.twilio_auth_token}".encode()).decode("ascii")
    request = urllib.request.Request(
        url,
        data=urllib.parse.urlencode(fields).encode("ascii"),
        method="POST",
        headers={
            "Authorization": f"Basic {credentials}",
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=settings.sms_timeout_seconds) as response:
            answer = response.read()
    except urllib.error.HTTPError as error:
        with error:
            raise _refusal(error.code, error.read(), to) from None
    except urllib.error.URLError as error:  # the server could not be reached: refused, unknown host, TLS
        raise SmsNotSent(f"Twilio could not be reached: {error.reason}", retryable=True) from error
    except (OSError, http.client.HTTPException) as error:  # a timeout or a broken answer
        raise SmsNotSent(f"Twilio could not be reached: {error!r}", retryable=True) from error
    message_id = _json_object(answer).get("sid")
    if not isinstance(message_id, str) or not message_id:
        # Twilio may have taken the message: sending again could send it twice.
        raise SmsNotSent("Twilio accepted the request but its answer has no message sid", retryable=False)
    return message_id


def _refusal(status: int, answer: bytes, to: str) -> SmsNotSent:
    """The error for an HTTP error answer, with Twilio's code and message when it sent them."""
    retryable = status == 429 or status >= 500
    error = _json_object(answer)
    if "message" not in error:
        return SmsNotSent(f"Twilio answered HTTP {status}", retryable=retryable)
    # Twilio's messages may quote the number ("The 'To' number +33... is not valid").
    reason = str(error["message"]).replace(to, mask_number(to))
    return SmsNotSent(f"Twilio refused the message (HTTP {status}, error {error.get('code')}): {reason}",
                      retryable=retryable)


def _json_object(answer: bytes) -> dict:
    try:
        parsed = json.loads(answer)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}
