"""Email addresses beyond ASCII, end to end: accepted on the form and the API, delivered by SMTP
(SMTPUTF8 only when the mailbox name needs it), written as valid .eml files; a mail server without
SMTPUTF8 is a clear and final refusal for the one address it cannot take, not a retry loop."""

from __future__ import annotations

import email
import email.policy
import re

import pytest
from conftest import Mailbox, free_port
from helpers import api_person

from queue_service.reference import DEMO_AGDREF_NUMBERS
from queue_service.settings import load_settings
from queue_service.store.keys import PoolKeys

POOL = "01:renewal"
# A mailbox name in Unicode (needs SMTPUTF8), and an ASCII name at an internationalised domain (does not).
UNICODE_NAME = "josé.garcía@exämple.fr"
UNICODE_DOMAIN = "ana@bücher.de"
UNICODE_DOMAIN_ASCII = "ana@xn--bcher-kva.de"  # its A-label (IDNA)


@pytest.fixture
def ascii_only_mailbox(monkeypatch, settings):
    """A loopback SMTP server that does not announce SMTPUTF8 (the session's server does), and the
    settings pointed at it."""
    from aiosmtpd.controller import Controller

    received = Mailbox()
    controller = Controller(received, hostname="127.0.0.1", port=free_port(), enable_SMTPUTF8=False)
    controller.start()
    monkeypatch.setenv("QS_SMTP_PORT", str(controller.port))
    yield received
    controller.stop()


def register_both(client):
    for number, address in enumerate((UNICODE_NAME, UNICODE_DOMAIN)):
        created = client.post("/api/v1/registrations", json=api_person(
            email=address, family_name=["Garcia", "Schmidt"][number], agdref=DEMO_AGDREF_NUMBERS[number + 3]))
        assert created.status_code == 201, created.get_json()["errors"]


def test_both_kinds_of_address_are_delivered_by_a_server_with_smtputf8(client, mailbox, deliver_messages, store):
    register_both(client)
    deliver_messages()
    assert sorted(mailbox.recipients) == sorted([[UNICODE_NAME], [UNICODE_DOMAIN_ASCII]])
    assert sorted(recipient_header(raw) for raw in mailbox.raw) == sorted([UNICODE_NAME, UNICODE_DOMAIN_ASCII])
    assert store.delivery_failures(POOL) == []


def recipient_header(raw: bytes) -> str:
    """The address of a message's To header, checked as valid: no encoded word inside an address
    (RFC 2047, section 5), UTF-8 only for a mailbox name in Unicode (RFC 6532)."""
    text = raw.decode("utf-8")
    assert "=?" not in re.search(r"^To: (.*)$", text, re.MULTILINE).group(1)
    parsed = email.message_from_string(text, policy=email.policy.default.clone(utf8=True))
    (address,) = parsed["To"].addresses
    allowed = {"NonASCIILocalPartDefect"} if not address.username.isascii() else set()
    assert {type(defect).__name__ for defect in parsed["To"].defects} <= allowed and not parsed.defects
    return address.addr_spec


def test_a_server_without_smtputf8_takes_the_idn_address_and_refuses_the_other_once(
        client, ascii_only_mailbox, deliver_messages, store, redis):
    register_both(client)
    assert deliver_messages()
    assert ascii_only_mailbox.recipients == [[UNICODE_DOMAIN_ASCII]]
    (refused,) = store.delivery_failures(POOL)
    assert refused["status"] == "refused" and "SMTPUTF8" in refused["error"]
    assert UNICODE_NAME not in refused["error"]  # no address in the records staff read
    # Final at once: no retry is scheduled for what the server will never take.
    from worker.queues import NOTIFICATIONS, queue

    assert queue(NOTIFICATIONS, redis).scheduled_job_registry.count == 0


def test_eml_files_hold_valid_headers_for_both(client, settings, monkeypatch, deliver_messages):
    monkeypatch.setenv("QS_MAIL_BACKEND", "file")
    register_both(client)
    deliver_messages()
    files = sorted(load_settings().mail_dir.glob("*.eml"))
    assert sorted(recipient_header(path.read_bytes()) for path in files) == sorted([UNICODE_NAME,
                                                                                   UNICODE_DOMAIN_ASCII])


def test_the_registration_keeps_the_address_as_typed(client, store):
    register_both(client)
    emails = {store.registration(store.registration_key_by_ref(POOL, ref)).applicant.email
              for ref in store.redis.hkeys(PoolKeys(POOL).refs) for ref in [ref.decode()]}
    assert emails == {UNICODE_NAME, UNICODE_DOMAIN}
