"""A job cut off by its worker's death (SIGKILL) or by Redis going away is run again, never
lost; a draw completes once; a message is delivered once, except in the one window no
sender can close: the SMTP server took the message and the worker died before recording it.

Workers run as real `qs worker` processes; mail goes to a real SMTP server on loopback that
can hold its answer to a message (DATA) until the test has killed what it means to kill.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import os
import random
import signal
import subprocess
import sys
import threading
import time
from email import message_from_bytes
from email.header import decode_header, make_header
from pathlib import Path

import psutil
import pytest
import redis as redis_py
from conftest import free_port
from rq.job import Job, JobStatus

from queue_service import draws, reference
from queue_service import registration as reg
from queue_service.reference import procedure_by_code
from queue_service.registration.agdref import UploadedRecords
from queue_service.store import Store
from worker import jobs
from worker.queues import NOTIFICATIONS, queue

pytestmark = [pytest.mark.slow, pytest.mark.timeout(400)]

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))
from bench import pool as bench_pool  # noqa: E402

POOL = "01:first_request"
UTC = datetime.timezone.utc
# From a worker's death to its job running again: abandoned after about 25 s (a message, sent
# in the worker's process: its 60 s timeout and 20 s), found by the
# next clean-up (every 15 s), then RQ's retry interval (mail: 10 s; draws: 60 s).
RETRIED_WITHIN_SECONDS = 150


class HoldingMailbox:
    """An SMTP server's handler that holds its answer to the first `hold` messages until
    released. It keeps the first one held, as a server that takes a message on receipt and
    answers after; it drops the others, as one that takes it only as it answers, to a client
    that has gone."""

    def __init__(self, hold: int) -> None:
        self.hold = hold
        self.held_ids: list[str] = []
        self.messages = []
        self.release = threading.Event()

    async def handle_DATA(self, server, session, envelope):
        message = message_from_bytes(envelope.content)
        if len(self.held_ids) < self.hold:
            self.held_ids.append(message_id_of(message))
            if len(self.held_ids) == 1:
                self.messages.append(message)
            while not self.release.is_set():
                await asyncio.sleep(0.05)
            return "250 Message accepted for delivery" if len(self.held_ids) == 1 else "451 Try again later"
        self.messages.append(message)
        return "250 Message accepted for delivery"

    def count(self, message_id: str) -> int:
        return sum(message_id_of(message) == message_id for message in self.messages)


def message_id_of(email) -> str:
    """The outbox message an email was sent for (its X-QS-Message header, which a long id folds)."""
    return str(make_header(decode_header(email["X-QS-Message"])))


@pytest.fixture
def holding_smtp():
    """Start a holding SMTP server on loopback: holding_smtp(hold) -> (handler, port)."""
    from aiosmtpd.controller import Controller

    controllers = []

    def start(hold: int):
        handler = HoldingMailbox(hold)
        controller = Controller(handler, hostname="127.0.0.1", port=free_port())
        controller.start()
        controllers.append((controller, handler))
        return handler, controller.port

    yield start
    for controller, handler in controllers:
        handler.release.set()
        controller.stop()


class Workers:
    """`qs worker` processes started by one test, each logging to a file; every process they
    ran is remembered, so that the test ends with none of them left."""

    def __init__(self, tmp_path: Path, **environment: str) -> None:
        self.tmp_path = tmp_path
        self.environment = dict(os.environ, PYTHONPATH=str(PROJECT), **environment)
        self.started: list[subprocess.Popen] = []
        self.seen: dict[int, psutil.Process] = {}

    def start(self) -> subprocess.Popen:
        with open(self.tmp_path / f"worker-{len(self.started)}.log", "wb") as log:
            process = subprocess.Popen([sys.executable, "-m", "worker.cli", "worker"], cwd=PROJECT,
                                       env=self.environment, stdout=log, stderr=subprocess.STDOUT)
        self.started.append(process)
        return process

    def horse_of(self, worker: subprocess.Popen) -> psutil.Process | None:
        """The process running the worker's job: RQ's work horse, the child in a group of its own."""
        children = psutil.Process(worker.pid).children()
        self.seen.update((child.pid, child) for child in children)
        horses = [child for child in children if os.getpgid(child.pid) == child.pid]
        return horses[0] if horses else None

    def logs(self) -> str:
        return "".join(path.read_text(errors="replace") for path in sorted(self.tmp_path.glob("worker-*.log")))

    def stop(self) -> None:
        for process in self.started:
            if process.poll() is None:
                self.seen.update((child.pid, child) for child in psutil.Process(process.pid).children(recursive=True))
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        for process in self.seen.values():  # RQ's scheduler of a killed worker, left running
            try:
                process.kill()
            except psutil.NoSuchProcess:
                pass


@pytest.fixture
def workers(tmp_path):
    started = []

    def start(**environment) -> Workers:
        started.append(Workers(tmp_path, **environment))
        return started[-1]

    yield start
    for group in started:
        group.stop()


def eventually(check, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return False


def sign_up(store: Store, settings, number: int, procedure: str = "first_request"):
    """Register a person in Ain's first-request pool (or `procedure`'s), now: her confirmation
    link waits in the outbox."""
    now = datetime.datetime.now(UTC)
    form = {"family_name": f"Haddad {chr(65 + number)}", "given_names": "Rania", "birth_date": "1993-04-12",
            "nationality": "LB", "email": f"rania{number}@example.org", "phone": f"06 44 55 66 {70 + number}",
            "consent": "yes", "language": "en"}
    applicant = reg.parse_applicant(form, procedure_by_code(procedure), ["bourg", "gex"], now.date())
    secret = settings.identity_key.encode()
    return reg.register(store, "01", procedure, applicant, now=now, rng=random.Random(number),
                        identity_secret=secret, limits=reg.Limits(4, datetime.timedelta(hours=24)),
                        records=UploadedRecords(store, secret))


def delivered(store: Store, message_id: str, pool: str = POOL) -> bool:
    return (store.delivery(pool, message_id, "email") or {}).get("status") == "sent"


def all_jobs_done(connection, queue_name: str) -> bool:
    """Nothing of the queue waits, runs or waits for a retry (read without RQ's clean-up)."""
    found = queue(queue_name, connection)
    return (found.count == 0 and found.started_job_registry.get_job_count(cleanup=False) == 0
            and found.scheduled_job_registry.get_job_count(cleanup=False) == 0)


def test_send_jobs_cut_off_by_killed_workers_are_sent_again_once_each_but_for_a_taken_message(
        redis, store, reference_data, settings, holding_smtp, workers):
    # In two pools: a pool's messages go in one send job (worker/jobs.py SEND_BATCH), and each
    # worker is to be cut off in the middle of its own.
    pools = {POOL: "first_request", "01:student": "student"}
    for number, procedure in enumerate(pools.values()):
        sign_up(store, settings, number, procedure)
    pool_of = {message["id"]: pool for pool in pools for message in store.outbox(pool)}
    messages = list(pool_of)
    assert len(messages) == 2
    mailbox, port = holding_smtp(hold=2)
    pair = workers(QS_SMTP_PORT=str(port))
    killed = [pair.start(), pair.start()]
    queue(NOTIFICATIONS, redis).enqueue(jobs.dispatch_notifications)
    # Each worker is in the middle of a send, waiting for the server's answer.
    assert eventually(lambda: len(mailbox.held_ids) == 2, 60), pair.logs()
    # A message is sent in the worker's own process (worker/queues.py, IN_PROCESS_QUEUES): no
    # process of its own to outlive the worker.
    assert [pair.horse_of(worker) for worker in killed] == [None, None], pair.logs()

    for worker in killed:
        worker.kill()
        worker.wait()
    mailbox.release.set()  # the server ends the two sessions; their clients are dead
    taken, dropped = mailbox.held_ids
    assert not delivered(store, taken, pool_of[taken]) and not delivered(store, dropped, pool_of[dropped])

    killed_at = time.monotonic()
    pair.start()
    assert eventually(lambda: all(delivered(store, message, pool_of[message]) for message in messages),
                      RETRIED_WITHIN_SECONDS), \
        pair.logs()
    print(f"both messages recorded as sent {time.monotonic() - killed_at:.0f} s after the kill")
    assert eventually(lambda: all_jobs_done(redis, NOTIFICATIONS), 30), pair.logs()
    # Delivered once when the server had not taken it; twice when the server took it and the
    # worker died before it could record the delivery (at-least-once: docs/operations.md).
    assert mailbox.count(dropped) == 1
    assert mailbox.count(taken) == 2
    assert len(mailbox.messages) == 3


def test_a_draw_cut_off_by_a_killed_worker_is_resumed_and_completes_once(
        redis, store, reference_data, settings, workers):
    now = datetime.datetime.now(UTC)
    pool = "01:renewal"
    # Slots from three days ahead, in a two-week horizon: every one of them leaves the winners
    # time to answer (booking_cancel_notice_hours, draw_min_answer_hours), whatever the hour
    # and the weekday the test runs on (two days ahead, at 8:00, lost the first day's slots
    # when run after 20:00, and a Friday when run on a Thursday).
    schedule = dataclasses.replace(
        bench_pool.schedule("01", "renewal", now - datetime.timedelta(days=30), constrained=False),
        horizon_to_days=14)
    store.save_schedule(schedule)
    # Enough entrants for the draw's first step (the freeze) to last about a second.
    bench_pool.waiting_list(store, "01", "renewal", 50_000, draw_at=now, rng=random.Random(7), constrained=False)
    bench_pool.week_of_slots(store, "01", "renewal", 20,
                             first_day=(now + datetime.timedelta(days=3)).replace(hour=8, minute=0))
    waiting_before = store.waiting_count(pool)
    due = draws.draw_now(schedule, "01", "renewal", "Europe/Paris", now)
    assert jobs.claim_and_enqueue(redis, schedule, due, now)
    job_id = f"draw-{due.draw_id}"

    group = workers(QS_MAIL_BACKEND="file")
    worker = group.start()
    assert eventually(lambda: group.horse_of(worker) is not None, 60), group.logs()
    horse = group.horse_of(worker)
    time.sleep(0.3)  # into the freeze
    worker.kill()
    worker.wait()
    psutil.wait_procs([horse], timeout=5)
    assert not horse.is_running() or horse.status() == psutil.STATUS_ZOMBIE
    state = store.draw(pool, due.draw_id).state
    assert state in (draws.DrawState.SCHEDULED, draws.DrawState.FROZEN, draws.DrawState.DRAWN), state
    assert Job.fetch(job_id, connection=redis).get_status() is JobStatus.STARTED

    killed_at = time.monotonic()
    group.start()
    assert eventually(lambda: store.draw(pool, due.draw_id).state is draws.DrawState.PUBLISHED,
                      RETRIED_WITHIN_SECONDS), group.logs()
    print(f"draw published {time.monotonic() - killed_at:.0f} s after the kill (cut off when {state.value})")
    job = Job.fetch(job_id, connection=redis)
    assert eventually(lambda: job.get_status() is JobStatus.FINISHED, 30), group.logs()
    assert job.retries_left == 2  # RQ found it abandoned and ran it again: one retry spent

    # Applied once: its offers, one per slot, each slot and person once, the pool's waiting
    # list shortened by as many, the cutoff committed once.
    record = store.draw(pool, due.draw_id)
    offers = {rid: offer for rid, offer in store.offers(pool).items() if offer.draw_id == due.draw_id}
    assert len(offers) == record.offered == 20
    assert len({offer.slot_id for offer in offers.values()}) == 20
    assert sorted(m["registration_id"] for m in draws.offer_messages(store, pool, due.draw_id)) == sorted(offers)
    assert store.waiting_count(pool) == waiting_before - 20
    assert store.committed_draw_cutoffs(pool).count(record.cutoff_at.timestamp()) == 1


def test_a_send_job_that_loses_redis_after_sending_records_it_when_redis_is_back_and_sends_once(
        settings, killable_redis, holding_smtp, workers):
    connection = redis_py.Redis.from_url(killable_redis.url)
    store = Store(connection)
    store.load_reference(reference.PREFECTURES, reference.PROCEDURES)
    store.add_missing_sites(reference.DEMO_SITES)
    sign_up(store, settings, 0)
    (message,) = store.outbox(POOL)
    mailbox, port = holding_smtp(hold=1)  # the server takes the message, then answers late
    group = workers(QS_SMTP_PORT=str(port), QS_REDIS_URL=killable_redis.url)
    worker = group.start()
    queue(NOTIFICATIONS, connection).enqueue(jobs.dispatch_notifications)
    assert eventually(lambda: mailbox.held_ids == [message["id"]], 60), group.logs()
    time.sleep(1.5)  # the send job's queueing reaches the append-only file (synced every second)

    killable_redis.kill()
    mailbox.release.set()  # the message is sent while Redis is away: its delivery cannot be recorded
    time.sleep(3)
    assert worker.poll() is None
    killable_redis.start()
    connection = redis_py.Redis.from_url(killable_redis.url)
    store = Store(connection)
    assert eventually(lambda: delivered(store, message["id"]), 60), group.logs()
    assert eventually(lambda: all_jobs_done(connection, NOTIFICATIONS), 60), group.logs()
    assert mailbox.count(message["id"]) == 1
    assert "waiting for it to come back" in group.logs()
