"""Text messages: the file and "none" backends, the Twilio adapter against a
Twilio-like HTTP server on loopback, the SMS settings and `qs send-test-sms`."""

from __future__ import annotations

import base64
import datetime
import json
import logging
import pickle
import threading
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from click.testing import CliRunner

from queue_service.errors import SettingsError, SmsNotSent
from queue_service.notifications import sms
from queue_service.settings import load_settings
from worker.cli import main

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "twilio-test-auth-token"
SERVICE_SID = "MG" + "fedcba9876543210" * 2
SENDER = "+33700000001"
NUMBER = "+33612345678"
TEXT = "Vous avez gagné un rendez-vous : réf. 01R-7K3Q9X — confirmez avant jeudi."
MESSAGE_SID = "SM" + "5" * 32
MESSAGES_PATH = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"


# A Twilio-like server -------------------------------------------------------------


@dataclass
class FakeTwilio:
    """A Messaging API on loopback: checks what Twilio checks, keeps what it receives."""

    url: str = ""
    received: list[dict] = field(default_factory=list)
    status: int = 201
    answer: dict = field(default_factory=lambda: {"sid": MESSAGE_SID, "status": "queued"})
    hang: bool = False  # accept the request and never answer
    release: threading.Event = field(default_factory=threading.Event)

    def refuse(self, status: int, code: int | None, message: str | None) -> None:
        """Answer the next requests with an error, in Twilio's form when `message` is given."""
        self.status = status
        self.answer = {} if message is None else {"code": code, "message": message, "status": status}


class TwilioHandler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        twilio: FakeTwilio = self.server.twilio
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode("utf-8")
        twilio.received.append({
            "method": self.command,
            "path": self.path,
            "content_type": self.headers.get("Content-Type"),
            "fields": urllib.parse.parse_qsl(body, keep_blank_values=True),
        })
        if twilio.hang:
            twilio.release.wait(10)
            return
        expected = "Basic " + base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
        if self.headers.get("Authorization") != expected:
            self.reply(401, {"code": 20003, "message": "Authenticate", "status": 401})
        elif self.path != MESSAGES_PATH:
            self.reply(404, {"code": 20404, "message": "The requested resource was not found", "status": 404})
        else:
            self.reply(twilio.status, twilio.answer)

    def reply(self, status: int, answer: dict) -> None:
        payload = json.dumps(answer).encode() if answer else b"<html>Bad gateway</html>"
        self.send_response(status)
        self.send_header("Content-Type", "application/json" if answer else "text/html")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format, *args) -> None:  # keep the test output clean
        pass


@pytest.fixture
def twilio(monkeypatch):
    # A developer's proxy variables must not send loopback requests elsewhere.
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    server = ThreadingHTTPServer(("127.0.0.1", 0), TwilioHandler)
    server.twilio = FakeTwilio(url=f"http://127.0.0.1:{server.server_port}")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.twilio
    server.twilio.release.set()
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def load(tmp_path, **variables):
    return load_settings(environ={"QS_DATA_DIR": str(tmp_path), "QS_ENV": "test", **variables})


TWILIO_VARIABLES = {
    "QS_SMS_BACKEND": "twilio",
    "QS_TWILIO_ACCOUNT_SID": ACCOUNT_SID,
    "QS_TWILIO_AUTH_TOKEN": AUTH_TOKEN,
    "QS_TWILIO_FROM": SENDER,
}


@pytest.fixture
def twilio_settings(tmp_path, twilio):
    return load(tmp_path, **TWILIO_VARIABLES, QS_TWILIO_BASE_URL=twilio.url + "/", QS_SMS_TIMEOUT_SECONDS="2")


# The file and "none" backends ---------------------------------------------------------


def test_file_backend_writes_one_readable_file_per_message(tmp_path):
    settings = load(tmp_path)
    before = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    first = sms.send(settings, NUMBER, TEXT)
    second = sms.send(settings, NUMBER, "Deuxième message")
    assert settings.sms_backend == "file" and settings.sms_dir == tmp_path / "sms"
    assert first != second and len(list(settings.sms_dir.glob("*.txt"))) == 2
    headers, _, text = (settings.sms_dir / f"{first}.txt").read_text(encoding="utf-8").partition("\n\n")
    fields = dict(line.split(": ", 1) for line in headers.splitlines())
    assert fields["To"] == NUMBER and text == TEXT + "\n"
    assert before <= datetime.datetime.fromisoformat(fields["Date"]) <= datetime.datetime.now(datetime.timezone.utc)


def test_none_backend_sends_nothing_and_returns_an_empty_id(tmp_path):
    settings = load(tmp_path, QS_SMS_BACKEND="none")
    assert sms.send(settings, NUMBER, TEXT) == ""
    assert not settings.sms_dir.exists()


def test_a_number_not_in_e164_form_is_refused_for_good_before_any_request(twilio_settings, twilio):
    with pytest.raises(SmsNotSent) as refused:
        sms.send(twilio_settings, "0612345678", TEXT)
    assert refused.value.retryable is False and "E.164" in str(refused.value)
    assert twilio.received == []


# Twilio ---------------------------------------------------------------------------


def test_twilio_gets_a_form_post_with_basic_auth_and_returns_the_message_sid(twilio_settings, twilio):
    assert sms.send(twilio_settings, NUMBER, TEXT) == MESSAGE_SID
    [request] = twilio.received
    assert request["method"] == "POST" and request["path"] == MESSAGES_PATH
    assert request["content_type"] == "application/x-www-form-urlencoded"
    assert sorted(request["fields"]) == sorted([("To", NUMBER), ("From", SENDER), ("Body", TEXT)])


def test_a_messaging_service_replaces_the_sender_number(tmp_path, twilio):
    settings = load(
        tmp_path, **TWILIO_VARIABLES | {"QS_TWILIO_FROM": ""}, QS_TWILIO_MESSAGING_SERVICE_SID=SERVICE_SID,
        QS_TWILIO_BASE_URL=twilio.url,
    )
    assert sms.send(settings, NUMBER, TEXT) == MESSAGE_SID
    assert sorted(twilio.received[0]["fields"]) == sorted(
        [("To", NUMBER), ("MessagingServiceSid", SERVICE_SID), ("Body", TEXT)]
    )


def test_a_bad_number_is_a_permanent_refusal_with_twilios_reason(twilio_settings, twilio, caplog):
    twilio.refuse(400, 21211, f"The 'To' number {NUMBER} is not a valid phone number.")
    with caplog.at_level(logging.INFO, logger="queue_service.notifications.sms"), pytest.raises(SmsNotSent) as refused:
        sms.send(twilio_settings, NUMBER, TEXT)
    reason = str(refused.value)
    assert refused.value.retryable is False
    assert "HTTP 400" in reason and "21211" in reason and "is not a valid phone number" in reason
    # Twilio quoted the number: neither the error nor the log repeats it whole.
    assert NUMBER not in reason and sms.mask_number(NUMBER) in reason
    assert NUMBER not in caplog.text and TEXT not in caplog.text and "21211" in caplog.text


def test_wrong_credentials_are_a_permanent_refusal(tmp_path, twilio):
    settings = load(tmp_path, **TWILIO_VARIABLES | {"QS_TWILIO_AUTH_TOKEN": "wrong"}, QS_TWILIO_BASE_URL=twilio.url)
    with pytest.raises(SmsNotSent) as refused:
        sms.send(settings, NUMBER, TEXT)
    assert refused.value.retryable is False and "HTTP 401" in str(refused.value) and "20003" in str(refused.value)


@pytest.mark.parametrize(
    ("status", "code", "message", "retryable"),
    [
        (429, 20429, "Too Many Requests", True),
        (500, 20500, "Internal Server Error", True),
        (503, None, None, True),  # a proxy's page, not Twilio's JSON
        (404, 20404, "The requested resource was not found", False),
    ],
)
def test_server_errors_and_rate_limits_are_retryable_other_refusals_are_not(
    twilio_settings, twilio, status, code, message, retryable
):
    twilio.refuse(status, code, message)
    with pytest.raises(SmsNotSent) as refused:
        sms.send(twilio_settings, NUMBER, TEXT)
    assert refused.value.retryable is retryable
    assert f"HTTP {status}" in str(refused.value)
    assert len(twilio.received) == 1


def test_a_closed_port_is_a_retryable_failure(tmp_path):
    from conftest import free_port

    settings = load(tmp_path, **TWILIO_VARIABLES, QS_TWILIO_BASE_URL=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(SmsNotSent) as refused:
        sms.send(settings, NUMBER, TEXT)
    assert refused.value.retryable is True and "could not be reached" in str(refused.value)
    assert "refused" in str(refused.value).lower()


def test_no_answer_within_the_timeout_is_a_retryable_failure(tmp_path, twilio):
    twilio.hang = True
    settings = load(tmp_path, **TWILIO_VARIABLES, QS_TWILIO_BASE_URL=twilio.url, QS_SMS_TIMEOUT_SECONDS="0.3")
    started = datetime.datetime.now()
    with pytest.raises(SmsNotSent) as refused:
        sms.send(settings, NUMBER, TEXT)
    assert refused.value.retryable is True and "timed out" in str(refused.value)
    assert (datetime.datetime.now() - started).total_seconds() < 3


def test_a_success_without_a_sid_is_not_retried(twilio_settings, twilio):
    twilio.answer = {"status": "queued"}
    with pytest.raises(SmsNotSent) as refused:
        sms.send(twilio_settings, NUMBER, TEXT)
    assert refused.value.retryable is False and "no message sid" in str(refused.value)


def test_logs_show_a_masked_number_and_never_the_text(twilio_settings, twilio, caplog):
    with caplog.at_level(logging.INFO, logger="queue_service.notifications.sms"):
        sms.send(twilio_settings, NUMBER, TEXT)
    assert "+33*******78" in caplog.text and MESSAGE_SID in caplog.text
    assert NUMBER not in caplog.text and TEXT not in caplog.text


def test_the_error_keeps_its_retryable_flag_through_pickle():
    error = pickle.loads(pickle.dumps(SmsNotSent("Twilio answered HTTP 503", retryable=True)))
    assert isinstance(error, SmsNotSent) and error.retryable is True and str(error) == "Twilio answered HTTP 503"


@pytest.mark.parametrize(
    ("number", "masked"), [("+33612345678", "+33*******78"), ("+447911123456", "+44********56"), ("06", "**")]
)
def test_mask_number_keeps_the_country_code_and_the_last_two_digits_only(number, masked):
    assert sms.mask_number(number) == masked


# Settings ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"QS_SMS_BACKEND": "sms"}, "QS_SMS_BACKEND"),
        ({"QS_SMS_TIMEOUT_SECONDS": "ten"}, "QS_SMS_TIMEOUT_SECONDS"),
        ({"QS_SMS_TIMEOUT_SECONDS": "0"}, "QS_SMS_TIMEOUT_SECONDS"),
        ({"QS_TWILIO_BASE_URL": "api.twilio.com"}, "QS_TWILIO_BASE_URL"),
        ({"QS_TWILIO_ACCOUNT_SID": ""}, "QS_TWILIO_ACCOUNT_SID"),
        ({"QS_TWILIO_ACCOUNT_SID": "SK" + "0" * 32}, "QS_TWILIO_ACCOUNT_SID"),  # an API key pasted instead
        ({"QS_TWILIO_AUTH_TOKEN": ""}, "QS_TWILIO_AUTH_TOKEN"),
        ({"QS_TWILIO_FROM": ""}, "QS_TWILIO_FROM"),
        ({"QS_TWILIO_MESSAGING_SERVICE_SID": "MG123"}, "QS_TWILIO_MESSAGING_SERVICE_SID"),
    ],
)
def test_a_bad_sms_setting_stops_loading_and_names_the_setting(tmp_path, changes, named):
    with pytest.raises(SettingsError, match=named):
        load(tmp_path, **TWILIO_VARIABLES | changes)


def test_twilio_settings_load_with_a_messaging_service_and_no_sender(tmp_path):
    settings = load(
        tmp_path, **TWILIO_VARIABLES | {"QS_TWILIO_FROM": ""}, QS_TWILIO_MESSAGING_SERVICE_SID=SERVICE_SID,
        QS_TWILIO_BASE_URL="https://api.twilio.com/",
    )
    assert settings.twilio_messaging_service_sid == SERVICE_SID
    assert settings.twilio_base_url == "https://api.twilio.com"
    assert AUTH_TOKEN not in repr(settings)


def test_the_file_backend_needs_no_twilio_account(tmp_path):
    settings = load(tmp_path, QS_TWILIO_ACCOUNT_SID="not checked", QS_TWILIO_FROM="")
    assert settings.sms_backend == "file"


# qs send-test-sms ---------------------------------------------------------------------


@pytest.fixture
def twilio_environment(settings, twilio, monkeypatch):
    """`qs` reads the environment: the test settings plus a Twilio account on the fake server."""
    for name, value in TWILIO_VARIABLES.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("QS_TWILIO_BASE_URL", twilio.url)
    return twilio


def run_qs(*arguments):
    return CliRunner().invoke(main, list(arguments), catch_exceptions=False)


def test_test_sms_reaches_twilio(twilio_environment):
    result = run_qs("send-test-sms", "06 12 34 56 78")
    assert result.exit_code == 0, result.output
    assert f"Sent to {NUMBER} via twilio (message id {MESSAGE_SID})" in result.output
    fields = dict(twilio_environment.received[0]["fields"])
    assert fields["To"] == NUMBER and "Les réglages SMS fonctionnent." in fields["Body"]


def test_a_refused_test_sms_is_a_clear_failure(twilio_environment):
    twilio_environment.refuse(400, 21610, "Attempt to send to unsubscribed recipient")
    result = run_qs("send-test-sms", NUMBER)
    assert result.exit_code == 1
    assert "could not send" in result.output and "unsubscribed recipient" in result.output


def test_a_test_sms_to_a_landline_is_refused_before_sending(twilio_environment):
    result = run_qs("send-test-sms", "01 23 45 67 89")
    assert result.exit_code == 1 and "not a mobile phone number" in result.output
    assert twilio_environment.received == []


def test_a_test_sms_with_sms_disabled_says_nothing_was_sent(twilio_environment, monkeypatch):
    monkeypatch.setenv("QS_SMS_BACKEND", "none")
    result = run_qs("send-test-sms", NUMBER)
    assert result.exit_code == 0 and "nothing was sent" in result.output
    assert twilio_environment.received == []
