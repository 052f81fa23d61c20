"""Chaos: Redis killed (SIGKILL) five times under registration load, and nothing is lost.

The service runs as in production, three processes of their own (gunicorn
with the app, `qs worker`, `qs clock`), on a redis-server started with
config/redis.conf (append-only file, `appendfsync always`: a write is in the
file, fsynced, before Redis answers it). Eight clients register distinct
applicants through the API while the test kills Redis and starts it again on
the same port and folder. Then the test waits for the mail to drain and checks:

- every registration answered 201 is in Redis (none of them lost);
- no answer is a 500 (a 503 with Retry-After is what an outage should give);
- the web, the worker and the clock are still running;
- every registration in Redis got its confirmation email exactly once, at
  the loopback SMTP server, and no other address got one.

A request whose answer was lost (Redis wrote the registration, then died
before answering: the client gets a 503) still registered its applicant: such
a registration is in Redis, so it must get its email like the others. An
applicant neither answered 201 nor in Redis must get none.

SIGKILL ends the Redis process, not the machine: what Redis had written to
the file is in the kernel's cache and survives even without fsync. What
`appendfsync always` adds, surviving a power cut, is not tested here.
"""

from __future__ import annotations

import collections
import dataclasses
import http.client
import json
import os
import secrets
import subprocess
import sys
import threading
import time

import pytest
import redis as redis_py
from helpers import api_person, free_port, stop_processes

from queue_service import reference
from queue_service.registration.proof import generate_signing_key
from queue_service.settings import PROJECT_ROOT
from queue_service.store import Store
from queue_service.store.keys import PoolKeys
from worker.queues import NOTIFICATIONS, queue

pytestmark = pytest.mark.slow

POOL = "01:first_request"
CLIENTS = 8
# Each client sends at most this many registrations a second. One worker sends
# about ten emails a second on a 2-core machine: more load would only make the
# test wait longer for its mail, not test more.
PACE_PER_CLIENT = 1.5
KILLS = 5
# Killed, then started again after this long; with its start-up Redis answers
# nothing for about a second more (the operator's probe: about 3.5 s in all).
DOWN_SECONDS = 2.0
UP_SECONDS = 3.5  # answering, between two kills
# Then the test waits for the mail while it keeps coming: a message missing when
# none has come for STALLED_SECONDS is stuck (a retry comes 10 s after a failure).
STALLED_SECONDS = 30.0
DRAIN_LIMIT_SECONDS = 180.0
# Once every expected email came and nothing is left to send, a duplicate would come within this.
QUIET_SECONDS = 3.0


@dataclasses.dataclass(frozen=True)
class Attempt:
    """One registration sent by a client, and what came back."""

    email: str
    status: int | str  # the HTTP status, or the name of the error when no answer came
    ref: str | None
    retry_after: str | None
    seconds: float


def applicant(number: int) -> dict:
    """A distinct person for each number (names take letters only)."""
    letters = "".join(chr(ord("a") + int(digit)) for digit in f"{number:05d}")
    return api_person(procedure="first_request", family_name=f"Chaos {letters.capitalize()}", given_names="Test",
                      email=f"chaos{number}@example.org", phone=f"+33612{number:06d}")


# The three processes -----------------------------------------------------------------


def service_environment(tmp_path, redis_url: str, smtp_port: int, web_port: int) -> dict[str, str]:
    """The settings of the three processes, as QS_* variables (none of the developer's shell)."""
    environment = {name: value for name, value in os.environ.items()
                   if not name.startswith("QS_") and name != "REDIS_URL"}
    secret = secrets.token_hex(32)
    return environment | {
        "PYTHONPATH": str(PROJECT_ROOT),
        "TMPDIR": str(tmp_path),  # nothing written outside the test's folder
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prometheus"),
        "QS_ENV": "test",
        "QS_DATA_DIR": str(tmp_path / "var"),
        "QS_REDIS_URL": redis_url,
        "QS_SECRET_KEY": secret,
        "QS_IDENTITY_KEY": secret,
        "QS_PROOF_SIGNING_KEY": generate_signing_key(),
        "QS_MAIL_BACKEND": "smtp",
        "QS_SMTP_HOST": "127.0.0.1",
        "QS_SMTP_PORT": str(smtp_port),
        "QS_SMS_BACKEND": "none",
        "QS_BIND": f"127.0.0.1:{web_port}",
        "QS_WEB_WORKERS": "2",
        "QS_CLOCK_INTERVAL_SECONDS": "1",
        "QS_DISPATCH_INTERVAL_SECONDS": "1",
        # The load comes from one address and is meant to pass: the limits are not what is tested here.
        "QS_RATE_LIMIT_DEFAULT": "1000000 per minute",
        "QS_RATE_LIMIT_REGISTRATION": "1000000 per hour",
        "QS_RATE_LIMIT_REGISTRATION_EMAIL": "1000000 per hour",
        "QS_RATE_LIMIT_REGISTRATION_UNPROVEN": "1000000 per hour",
    }


# Set in the environment of the processes the test starts, which their children inherit:
# whatever still runs with it at the end is the test's to kill.
RUN_MARKER = "QUEUE_SERVICE_CHAOS_RUN"


@pytest.fixture
def service(tmp_path, production_redis, smtp_server):
    """Web (gunicorn, as the Procfile), worker and clock on the test's Redis; each is
    stopped at the end with SIGTERM, and any process of theirs still running then with SIGKILL."""
    controller, _ = smtp_server
    store = Store(redis_py.Redis.from_url(production_redis.url))
    store.load_reference(reference.PREFECTURES, reference.PROCEDURES)
    store.add_missing_sites(reference.DEMO_SITES)
    (tmp_path / "prometheus").mkdir()
    web_port = free_port()
    marker = secrets.token_hex(8)
    environment = service_environment(tmp_path, production_redis.url, controller.port, web_port)
    environment[RUN_MARKER] = marker
    commands = {
        # gunicorn's control socket would be $HOME/.gunicorn/gunicorn.ctl, shared by every gunicorn of the user.
        "web": [sys.executable, "-m", "gunicorn", "--config", "config/gunicorn.conf.py",
                "--control-socket", str(tmp_path / "gunicorn.ctl"), "web:create_app()"],
        "worker": [sys.executable, "-m", "worker.cli", "worker"],
        "clock": [sys.executable, "-m", "worker.cli", "clock"],
    }
    processes = {}
    try:
        for name, command in commands.items():
            with open(tmp_path / f"{name}.log", "wb") as log:
                processes[name] = subprocess.Popen(command, cwd=PROJECT_ROOT, env=environment, stdout=log,
                                                   stderr=subprocess.STDOUT)
        yield processes, web_port
    finally:
        stop_processes(processes.values(), RUN_MARKER, marker)


def get(port: int, path: str) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path)
        return connection.getresponse().status
    except OSError:
        return 0
    finally:
        connection.close()


def wait_until(check, seconds: float, pause: float = 0.2) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(pause)
    return False


# The load ------------------------------------------------------------------------------


def register_until(stop: threading.Event, port: int, first: int, attempts: list[Attempt]) -> None:
    """Register applicants first, first + CLIENTS, ... one after the other until `stop`."""
    number = first
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    while not stop.is_set():
        person = applicant(number)
        started = time.monotonic()
        try:
            connection.request("POST", "/api/v1/registrations", json.dumps(person),
                               {"Content-Type": "application/json", "Accept-Language": "en"})
            response = connection.getresponse()
            body = response.read()
            status, retry_after = response.status, response.getheader("Retry-After")
        except (OSError, http.client.HTTPException) as error:
            connection.close()
            status, retry_after, body = type(error).__name__, None, b""
        ref = json.loads(body)["ref"] if status == 201 else None
        seconds = time.monotonic() - started
        attempts.append(Attempt(person["email"], status, ref, retry_after, seconds))
        number += CLIENTS
        stop.wait(max(0.0, 1 / PACE_PER_CLIENT - seconds))


def kill_and_restart(server, outages: list[float]) -> None:
    """SIGKILL Redis, leave it down DOWN_SECONDS, start it on the same port and folder;
    records how long it answered nothing."""
    killed = time.monotonic()
    server.kill()
    time.sleep(DOWN_SECONDS)
    server.start()  # returns once it answers PING (its append-only file loaded)
    outages.append(time.monotonic() - killed)


# Reading the outcome -------------------------------------------------------------------


def registered_emails(store: Store) -> dict[str, list[str]]:
    """Email address → refs of the pool's registrations, as Redis has them."""
    found = collections.defaultdict(list)
    for ref, registration_id in store.redis.hgetall(PoolKeys(POOL).refs).items():
        registration = store.registration(store.registration_key_by_ref(POOL, ref.decode()))
        found[registration.applicant.email].append(ref.decode())
    return found


def nothing_left_to_send(store: Store) -> bool:
    """No message in the outbox, and no send job queued, running or waiting to be retried."""
    notifications = queue(NOTIFICATIONS, store.redis)
    try:
        return not (store.outbox_length(POOL) or notifications.count
                    or notifications.started_job_registry.get_job_count(cleanup=False)
                    or notifications.scheduled_job_registry.get_job_count(cleanup=False))
    except redis_py.ConnectionError:
        return False


def wait_for_mail(store: Store, mailbox, expected: set[str]) -> bool:
    """Wait until every address of `expected` got its email and nothing is left to send; False
    once no email came for STALLED_SECONDS while some were missing, or after DRAIN_LIMIT_SECONDS."""
    started = last_progress = time.monotonic()
    received = 0
    while time.monotonic() - started < DRAIN_LIMIT_SECONDS:
        addresses = {address for recipients in list(mailbox.recipients) for address in recipients}
        if expected <= addresses and nothing_left_to_send(store):
            return True
        if len(mailbox.recipients) > received:
            received, last_progress = len(mailbox.recipients), time.monotonic()
        elif time.monotonic() - last_progress > STALLED_SECONDS:
            return False
        time.sleep(0.5)
    return False


@pytest.mark.timeout(420)  # its own limits come first: ready 60 s, load 35 s, mail 180 s, stopping 30 s
def test_registrations_survive_five_redis_kills_and_each_email_goes_out_once(
    production_redis, service, mailbox, tmp_path
):
    processes, port = service
    assert wait_until(lambda: get(port, "/readyz") == 200, 60), "the service never became ready"
    store = Store(redis_py.Redis.from_url(production_redis.url))
    assert store.redis.config_get("appendfsync") == {"appendfsync": "always"}, "not config/redis.conf's durability"

    attempts: list[Attempt] = []
    outages: list[float] = []
    stop = threading.Event()
    clients = [threading.Thread(target=register_until, args=(stop, port, first, attempts)) for first in range(CLIENTS)]
    began = time.monotonic()
    for client in clients:
        client.start()
    try:
        for _ in range(KILLS):
            time.sleep(UP_SECONDS)
            kill_and_restart(production_redis, outages)
            assert all(process.poll() is None for process in processes.values()), "a process exited"
        time.sleep(UP_SECONDS)
    finally:
        stop.set()
        for client in clients:
            client.join(timeout=90)
    load_seconds = time.monotonic() - began

    statuses = collections.Counter(attempt.status for attempt in attempts)
    acknowledged = {attempt.email: attempt.ref for attempt in attempts if attempt.status == 201}
    in_redis = registered_emails(store)
    expected = set(in_redis)
    drain_started = time.monotonic()
    drained = wait_for_mail(store, mailbox, expected)
    drain_seconds = time.monotonic() - drain_started
    time.sleep(QUIET_SECONDS)  # a duplicate sent late would arrive now
    emails = collections.Counter(address for recipients in mailbox.recipients for address in recipients)

    print(f"\nchaos: {len(attempts)} registrations attempted in {load_seconds:.1f} s by {CLIENTS} clients, "
          f"{len(acknowledged)} acknowledged (201); statuses {dict(sorted(statuses.items(), key=str))}")
    print(f"chaos: Redis killed {len(outages)} times, unanswering for "
          f"{', '.join(f'{seconds:.2f}' for seconds in outages)} s")
    print(f"chaos: {len(in_redis)} registrations in Redis ({len(set(in_redis) - set(acknowledged))} of them "
          f"not answered 201); {sum(emails.values())} emails to {len(emails)} addresses; "
          f"mail drained {drain_seconds:.1f} s after the load stopped{'' if drained else ' (NOT drained)'}")
    slow = sorted(attempt.seconds for attempt in attempts)
    worker_log = (tmp_path / "worker.log").read_text()
    print(f"chaos: answer time median {slow[len(slow) // 2]:.3f} s, max {slow[-1]:.2f} s; worker: "
          f"{worker_log.count('was cut off by the outage; put back')} jobs cut off and put back, "
          f"{worker_log.count('delivery is recorded when it is back')} deliveries recorded after the outage")

    assert len(outages) == KILLS
    assert statuses[500] == 0, "a 500 under Redis outages"
    assert set(statuses) <= {201, 503}, statuses
    assert all(attempt.retry_after for attempt in attempts if attempt.status == 503), "a 503 without Retry-After"
    lost = [email for email, ref in acknowledged.items() if ref not in in_redis.get(email, [])]
    assert not lost, f"{len(lost)} acknowledged registrations lost, e.g. {lost[:5]}"
    assert all(len(refs) == 1 for refs in in_redis.values()), "a person registered twice"
    for name, process in processes.items():
        assert process.poll() is None, f"{name} exited ({process.returncode})"
    assert drained, f"mail stuck or not drained: {len(expected - set(emails))} missing"
    assert not set(emails) - expected, "an email for a registration that is not in Redis"
    assert all(message["X-QS-Message"].startswith("confirm:") for message in mailbox.messages)
    twice = {address: count for address, count in emails.items() if count > 1}
    assert not twice, f"{len(twice)} addresses got more than one email, e.g. {list(twice.items())[:5]}"
    assert set(emails) == expected
