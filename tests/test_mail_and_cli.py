"""The `qs` command line, and mail through a real SMTP server on loopback."""

import os
import re
import subprocess
import sys

import pytest
from click.testing import CliRunner

from queue_service import reference
from queue_service.notifications import mail
from queue_service.registration.proof import generate_signing_key
from queue_service.store.keys import PrefectureKeys
from worker.cli import main


@pytest.fixture
def cli_environment(settings):
    """`qs` reads its settings from the environment, which the settings fixture sets."""
    return dict(os.environ)


def run_qs(*arguments):
    return CliRunner().invoke(main, list(arguments), catch_exceptions=False)


def test_load_reference_and_demo_are_safe_to_run_again(cli_environment, store):
    assert run_qs("load-reference").exit_code == 0
    first = run_qs("load-demo")
    again = run_qs("load-demo")
    assert "4 site(s) added" in first.output and "0 site(s) added" in again.output
    assert len(store.prefectures()) == len(reference.PREFECTURES)
    assert [site.id for site in store.sites("01")] == ["bourg", "belley", "gex", "nantua"]


def test_the_demo_pool_draws_and_its_offers_reach_the_development_outbox(cli_environment, store, redis, run_jobs,
                                                                         monkeypatch, make_app):
    import datetime

    from queue_service import draws
    from worker import jobs

    monkeypatch.setenv("QS_MAIL_BACKEND", "file")
    run_qs("load-reference")
    run_qs("load-demo")
    run_qs("load-demo")
    assert store.waiting_count("01:first_request") == 40  # added once
    now = datetime.datetime.now(datetime.timezone.utc)
    schedule = store.schedule("01:first_request")
    due = draws.draw_now(schedule, "01", "first_request", "Europe/Paris", now)
    assert jobs.claim_and_enqueue(redis, schedule, due, now)
    run_jobs()  # the draw, then its messages
    run_jobs()
    assert store.draw("01:first_request", due.draw_id).state is draws.DrawState.PUBLISHED
    offered = len(store.offers("01:first_request"))
    assert offered == 40 or offered == len(store.slots("01:first_request", now, now + datetime.timedelta(days=60)))
    page = make_app(mail_backend="file").test_client().get("/dev/outbox", headers={"Accept-Language": "en"})
    subjects = re.findall(r'<h3 class="fr-h6">([^<]+)</h3>', page.get_data(as_text=True))
    assert len(subjects) == offered and all("drawn" in s or "tiré au sort" in s for s in subjects)


def test_a_bad_setting_stops_the_command_with_its_name(cli_environment, monkeypatch):
    monkeypatch.setenv("QS_SMTP_PORT", "not-a-port")
    result = run_qs("load-reference")
    assert result.exit_code == 1
    assert "QS_SMTP_PORT" in result.output


def test_unreachable_redis_is_reported_clearly(cli_environment, monkeypatch):
    from conftest import free_port

    monkeypatch.setenv("QS_REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    result = run_qs("load-reference")
    assert result.exit_code == 1 and "cannot reach Redis" in result.output


def test_check_config_hides_secrets(cli_environment, monkeypatch):
    monkeypatch.setenv("QS_TWILIO_AUTH_TOKEN", "twilio-token-not-shown")
    result = run_qs("check-config")
    assert result.exit_code == 0
    assert cli_environment["QS_SECRET_KEY"] not in result.output and "twilio-token-not-shown" not in result.output
    assert "secret_key = (set)" in result.output and "twilio_auth_token = (set)" in result.output
    assert "Redis: ok" in result.output


def test_test_mail_reaches_the_smtp_server(cli_environment, mailbox):
    result = run_qs("send-test-mail", "applicant@example.org")
    assert result.exit_code == 0, result.output
    assert mailbox.recipients == [["applicant@example.org"]]
    message = mailbox.messages[0]
    assert message["Subject"] == "Test message / Message de test"
    assert "Les réglages du courrier fonctionnent." in message.get_payload(decode=True).decode()


def test_a_refused_connection_is_a_clear_failure(cli_environment, monkeypatch, mailbox):
    from conftest import free_port

    monkeypatch.setenv("QS_SMTP_PORT", str(free_port()))
    result = run_qs("send-test-mail", "applicant@example.org")
    assert result.exit_code == 1 and "could not send" in result.output
    assert mailbox.messages == []


def test_html_and_text_parts_arrive_intact(settings, mailbox):
    message = mail.new_message(settings, "a@example.org", "Objet : été", "Texte — ça marche", "<p>ça marche</p>")
    mail.send(settings, message)
    received = mailbox.messages[0]
    assert received.is_multipart()
    parts = {p.get_content_type(): p.get_payload(decode=True).decode() for p in received.walk() if not p.is_multipart()}
    assert "Texte — ça marche" in parts["text/plain"] and "<p>ça marche</p>" in parts["text/html"]
    assert received["Message-ID"].endswith("@rdv.example.fr>")


def test_a_message_to_an_ascii_address_is_seven_bit_and_reads_back_as_written(settings, mailbox):
    """Built with the classic API (a third of the modern one's CPU): headers in RFC 2047 words,
    UTF-8 text quoted-printable, ASCII text as it is; one MIME-Version, at the top."""
    import email
    import email.policy

    sender = settings.replace(mail_from="Préfecture – rendez-vous <rdv@rdv.example.fr>")
    long_subject = "Votre inscription à la liste d’attente de la préfecture de l’Ain : confirmez-la " * 2
    message = mail.new_message(sender, "a@example.org", long_subject, "Cliquez : https://rdv.example.fr/c?t=a",
                               "<p>L’Ain — المواعيد</p>")
    mail.send(sender, message)
    wire = mailbox.raw[0]
    assert wire.isascii() and wire.count(b"MIME-Version") == 1
    assert all(len(line) <= 998 for line in wire.splitlines())
    received = email.message_from_bytes(wire, policy=email.policy.default)
    assert received["Subject"] == long_subject
    assert received["From"].addresses[0].display_name == "Préfecture – rendez-vous"
    assert received.get_body(("plain",)).get_content().rstrip() == "Cliquez : https://rdv.example.fr/c?t=a"
    html = received.get_body(("html",))
    assert html["Content-Transfer-Encoding"] == "quoted-printable" and html.get_content() == "<p>L’Ain — المواعيد</p>"


def test_plain_smtp_loads_no_certificates(settings, mailbox, monkeypatch):
    """A TLS context loads the system's certificate store, about 80 ms: every send job paid
    it, without TLS too, and one worker sent half as many messages a second."""
    import ssl

    def refuse(*arguments, **options):
        raise AssertionError("a TLS context built to send without TLS")

    monkeypatch.setattr(ssl, "create_default_context", refuse)
    mail.send(settings, mail.new_message(settings, "a@example.org", "Hello", "Body"))
    assert len(mailbox.messages) == 1


def test_file_backend_writes_eml_files(settings):
    file_settings = settings.replace(mail_backend="file")
    mail.send(file_settings, mail.new_message(file_settings, "a@example.org", "Hello", "Body"))
    files = list(file_settings.mail_dir.glob("*.eml"))
    assert len(files) == 1 and b"Subject: Hello" in files[0].read_bytes()


def test_dev_refuses_to_run_in_production(tmp_path):
    environment = dict(
        os.environ,
        QS_ENV="production",
        QS_DATA_DIR=str(tmp_path),
        QS_SECRET_KEY="k" * 40,
        QS_IDENTITY_KEY="k" * 40,
        QS_PROOF_SIGNING_KEY=generate_signing_key(),
        QS_MAIL_BACKEND="smtp",
        QS_REDIS_URL="redis://127.0.0.1:1/0",
        QS_SMS_BACKEND="none",
        QS_BASE_URL="https://rdv.example.fr",
        QS_LEGAL_PUBLISHER="Préfecture de l'Ain",
        QS_LEGAL_HOST="An host, its address",
    )
    completed = subprocess.run(
        [sys.executable, "-m", "worker.cli", "dev"], env=environment, capture_output=True, text=True, timeout=60
    )
    assert completed.returncode == 1 and "for development" in completed.stderr


def test_import_agdref_replaces_the_known_numbers(cli_environment, store, tmp_path):
    from queue_service.registration.agdref import UploadedRecords

    run_qs("load-reference")
    numbers = tmp_path / "numbers.txt"
    numbers.write_text("# exported 2027-01-04\n0123456789\n01 2345 6780\n\n")
    result = run_qs("import-agdref", "01", str(numbers))
    assert result.exit_code == 0 and "2 AGDREF number(s)" in result.output
    records = UploadedRecords(store, cli_environment["QS_IDENTITY_KEY"].encode())
    assert records.is_known("01", "0123456780") and not records.is_known("01", "0100000001")
    stored = [member for key in store.redis.scan_iter(PrefectureKeys("01").agdref + "*") for member in store.redis.smembers(key)]
    assert len(stored) == 2 and not any(b"0123456789" in member for member in stored)


def test_import_agdref_refuses_a_file_with_bad_lines_and_changes_nothing(cli_environment, store, tmp_path):
    run_qs("load-reference")
    run_qs("load-demo")
    numbers = tmp_path / "numbers.txt"
    numbers.write_text("0123456789\nnot a number\n12\n")
    result = run_qs("import-agdref", "01", str(numbers))
    assert result.exit_code == 1 and "line(s) 2, 3" in result.output
    assert store.agdref_count("01") == len(reference.DEMO_AGDREF_NUMBERS)


def test_generated_signing_keys_are_accepted_by_the_settings(tmp_path):
    from queue_service.registration.proof import load_signing_key

    first, second = run_qs("generate-signing-key").output.strip(), run_qs("generate-signing-key").output.strip()
    assert first != second
    load_signing_key(first)
