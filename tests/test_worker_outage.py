"""The worker and the clock outlive Redis: killed (SIGKILL) and started again, it finds them working.

Each runs as its own process (`qs worker`, `qs clock`) against a redis-server
of the test's own; the heartbeat is not starved by a backlog of mail.
"""

from __future__ import annotations

import datetime
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import redis as redis_py
from helpers import free_port
from rq import Retry, SimpleWorker
from rq.job import Job, JobStatus

from queue_service import reference
from queue_service import registration as registrations
from queue_service.registration.agdref import UploadedRecords
from queue_service.store import Store
from worker import clock, jobs
from worker.outage import StoppableWorker, cut_off_jobs_put_back
from worker.queues import NOTIFICATIONS, QUEUE_NAMES, all_queues, queue

PROJECT = Path(__file__).resolve().parent.parent
OUTAGE_SECONDS = 3.5  # as long as each outage of the operator's probe


def start(command: str, redis_url: str, tmp_path, **environment) -> subprocess.Popen:
    env = dict(os.environ, QS_REDIS_URL=redis_url, PYTHONPATH=str(PROJECT), **environment)
    log = open(tmp_path / f"{command}.log", "wb")
    return subprocess.Popen([sys.executable, "-m", "worker.cli", command], cwd=PROJECT, env=env,
                            stdout=log, stderr=subprocess.STDOUT)


def stop(process: subprocess.Popen, tmp_path, command: str) -> str:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    return (tmp_path / f"{command}.log").read_text()


def eventually(check, seconds: float = 30.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if check():
                return True
        except redis_py.ConnectionError:
            pass
        time.sleep(0.2)
    return False


def test_the_worker_survives_redis_restarts_and_runs_a_job_enqueued_after(settings, killable_redis, tmp_path):
    connection = redis_py.Redis.from_url(killable_redis.url)
    store = Store(connection)
    worker = start("worker", killable_redis.url, tmp_path)
    try:
        queue("default", connection).enqueue(jobs.heartbeat, job_id="before")
        assert eventually(lambda: store.last_worker_heartbeat() is not None), "the worker never ran a job"
        for outage in range(2):
            # Killed while a job runs: RQ's own worker then dies writing the job's end.
            queue("default", connection).enqueue(time.sleep, 1.5, job_id=f"busy-{outage}")
            assert eventually(lambda: queue("default", connection).started_job_registry.count == 1, 10)
            killable_redis.kill()
            time.sleep(OUTAGE_SECONDS)
            assert worker.poll() is None, f"the worker exited ({worker.returncode}) during outage {outage + 1}"
            killable_redis.start()
            connection = redis_py.Redis.from_url(killable_redis.url)
            store = Store(connection)
            seen = store.last_worker_heartbeat()
            time.sleep(0.1)
            queue("default", connection).enqueue(jobs.heartbeat, job_id=f"after-{outage}")
            assert eventually(lambda: store.last_worker_heartbeat() != seen), f"no job ran after restart {outage + 1}"
        assert worker.poll() is None
    finally:
        output = stop(worker, tmp_path, "worker")
    assert worker.returncode == 0, output
    ours = [line for line in output.splitlines() if "worker: Redis unavailable" in line]
    assert len(ours) == 2, output  # once per outage, never once per retry


def test_a_job_the_outage_cut_off_runs_again_as_soon_as_redis_is_back(settings, killable_redis, tmp_path):
    """RQ's worker dies with Redis while a job runs, and the job is left "started". It must run
    again once Redis answers, not when RQ's clean-up finds it expired (a minute and a half later,
    at a clean-up that comes every ten minutes)."""
    connection = redis_py.Redis.from_url(killable_redis.url)
    worker = start("worker", killable_redis.url, tmp_path)
    try:
        queue("default", connection).enqueue(time.sleep, 1.5, job_id="cut-off", retry=Retry(max=1))
        assert eventually(lambda: Job.fetch("cut-off", connection).get_status() == JobStatus.STARTED, 10)
        killable_redis.kill()
        time.sleep(OUTAGE_SECONDS)  # the job's sleep ends meanwhile: its end cannot be written
        killable_redis.start()
        connection = redis_py.Redis.from_url(killable_redis.url)
        assert Job.fetch("cut-off", connection).get_status() == JobStatus.STARTED
        assert eventually(lambda: Job.fetch("cut-off", connection).get_status() == JobStatus.FINISHED, 20), \
            "the job cut off by the outage did not run again"
        assert Job.fetch("cut-off", connection).retries_left == 0, "it ran again as a retry"
    finally:
        output = stop(worker, tmp_path, "worker")
    assert worker.returncode == 0, output


@pytest.mark.parametrize("when", ["idle", "running a job"])
def test_jobs_scheduled_for_later_run_after_redis_restarts(settings, killable_redis, tmp_path, when):
    """RQ's scheduler (a process of the worker's) dies with Redis; a new one must take over once
    Redis answers, or delayed jobs (the retries of mail and draws) wait for RQ's next
    maintenance, ten minutes later."""
    connection = redis_py.Redis.from_url(killable_redis.url)
    worker = start("worker", killable_redis.url, tmp_path)
    try:
        queue("default", connection).enqueue(jobs.heartbeat, job_id="before")
        assert eventually(lambda: Store(connection).last_worker_heartbeat() is not None), "the worker never ran a job"
        if when == "running a job":
            queue("default", connection).enqueue(time.sleep, 1.5, job_id="busy")
            assert eventually(lambda: Job.fetch("busy", connection).get_status() == JobStatus.STARTED, 10)
        killable_redis.kill()
        time.sleep(OUTAGE_SECONDS)
        killable_redis.start()
        connection = redis_py.Redis.from_url(killable_redis.url)
        queue("default", connection).enqueue_in(datetime.timedelta(seconds=1), jobs.heartbeat, job_id="later")
        assert eventually(lambda: connection.exists(Job.key_for("later")) and
                          Job.fetch("later", connection).get_status() == JobStatus.FINISHED, 20), \
            "the job scheduled for a second later never ran"
    finally:
        output = stop(worker, tmp_path, "worker")
    assert worker.returncode == 0, output


@pytest.mark.parametrize("cut", ["after its execution was registered", "as RQ's worker took it", "as it was popped"])
def test_a_job_taken_but_not_started_when_redis_went_away_goes_back_to_its_queue(redis, cut):
    """RQ's worker pops a job from its queue, reads it, registers its execution, then forks the
    job's process, which marks it started. Redis going away in between left the job in no
    queue (RQ's clean-up drops a registered execution whose job is not "started"): the
    confirmation email it was to send was never sent."""
    default = queue("default", redis)
    default.enqueue(jobs.heartbeat, job_id="taken")
    worker = StoppableWorker(QUEUE_NAMES, connection=redis)
    if cut == "as it was popped":  # the outage came before RQ's worker had read the job
        worker.queue_class.lpop([default.key], None, connection=redis)
    else:
        job, _ = worker.dequeue_job_and_maintain_ttl(timeout=None)
        if cut == "after its execution was registered":
            worker.prepare_execution(job)  # as RQ's worker does before it forks the job's process
    assert default.count == 0 and Job.fetch("taken", redis).get_status() == JobStatus.QUEUED
    assert cut_off_jobs_put_back(worker) == ["taken"]
    assert default.job_ids == ["taken"] and default.started_job_registry.get_job_ids() == []
    assert cut_off_jobs_put_back(worker) == [], "put back once"
    SimpleWorker(all_queues(redis), connection=redis).work(burst=True)
    assert Store(redis).last_worker_heartbeat() is not None, "the job put back ran"


def register_one_person(store: Store, settings) -> None:
    """Ain's reference data and one registration of its first-request pool: its confirmation
    link waits in the pool's outbox."""
    store.load_reference(reference.PREFECTURES, reference.PROCEDURES)
    store.add_missing_sites(reference.DEMO_SITES)
    now = datetime.datetime.now(datetime.timezone.utc)
    form = {"family_name": "Outage", "given_names": "Test", "birth_date": "1990-01-01", "nationality": "MA",
            "email": "outage@example.org", "phone": "+33612000001", "consent": "yes", "sites": ["bourg"]}
    applicant = registrations.parse_applicant(form, reference.procedure_by_code("first_request"), ["bourg"],
                                              now.date())
    registrations.register(store, "01", "first_request", applicant, now=now, rng=random.Random(1),
                           identity_secret=settings.identity_key.encode(),
                           limits=registrations.Limits(4, datetime.timedelta(hours=24)),
                           records=UploadedRecords(store, settings.identity_key.encode()))


class KillsRedisOnDelivery:
    """An SMTP server's handler that accepts a message and, as it does, kills Redis and starts
    it again `down_seconds` later: the moment between a message sent and its delivery recorded."""

    def __init__(self, redis_process, down_seconds: float) -> None:
        self.redis_process = redis_process
        self.down_seconds = down_seconds
        self.received: list[str] = []
        self.restarts: list[threading.Thread] = []

    async def handle_DATA(self, server, session, envelope):
        self.received.append(envelope.rcpt_tos[0])
        if len(self.received) == 1:
            self.redis_process.kill()
            restart = threading.Timer(self.down_seconds, self.redis_process.start)
            restart.start()
            self.restarts.append(restart)
        return "250 Message accepted for delivery"


def test_a_message_sent_just_before_redis_goes_away_is_not_sent_again(settings, killable_redis, monkeypatch):
    """The send job records each delivery so that its retry sends nothing twice; Redis going
    away between the message leaving and its record made the job fail, and its retry sent
    the message again. The record waits for Redis instead."""
    from aiosmtpd.controller import Controller

    connection = redis_py.Redis.from_url(killable_redis.url)
    store = Store(connection)
    register_one_person(store, settings)
    assert jobs.dispatch_pool(connection, store, "01:first_request") == 1
    (message_text,) = queue(NOTIFICATIONS, connection).jobs[0].args[2]  # a batch of one
    handler = KillsRedisOnDelivery(killable_redis, down_seconds=OUTAGE_SECONDS)
    smtp = Controller(handler, hostname="127.0.0.1", port=free_port())
    smtp.start()
    monkeypatch.setenv("QS_SMTP_PORT", str(smtp.port))
    try:
        try:
            SimpleWorker(all_queues(connection), connection=connection).work(burst=True)
        except redis_py.ConnectionError:
            pass  # RQ's worker writing the job's end while Redis is away: what matters is the delivery's record
        for restart in handler.restarts:
            restart.join()
        delivery = store.delivery("01:first_request", json.loads(message_text)["id"], "email")
        assert delivery is not None and delivery["status"] == "sent", delivery
        # The job's retry, or the same message dispatched again, sends nothing more.
        queue(NOTIFICATIONS, connection).enqueue(jobs.send_notification, "01", "first_request", message_text)
        SimpleWorker(all_queues(connection), connection=connection).work(burst=True)
    finally:
        smtp.stop()
    assert handler.received == ["outage@example.org"]


class SilentServer:
    """A TCP server on loopback that accepts connections and never answers, until `hang_up`:
    a client that sends it a command is held there, then cut off."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.reached = threading.Event()
        self.connections: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        try:
            while True:
                connection, _ = self.listener.accept()
                self.connections.append(connection)
                self.reached.set()
        except OSError:
            return  # hung up

    def hang_up(self) -> None:
        self.listener.close()
        for connection in self.connections:
            connection.shutdown(socket.SHUT_RDWR)
            connection.close()
        self.thread.join(timeout=5)


def test_a_dispatch_cut_off_by_an_outage_leaves_no_lock_behind(settings, killable_redis):
    """The dispatcher holds the pool's outbox lock (for at most two minutes) while it hands the
    messages to send jobs. Redis going away then left the lock held: once Redis was back, the
    pool's messages waited up to two minutes. The dispatcher waits for Redis to release it.

    It is held mid-dispatch by queueing its jobs through a server that does not answer, while
    the test kills Redis (the lock's) and starts it again."""
    connection = redis_py.Redis.from_url(killable_redis.url)
    store = Store(connection)
    register_one_person(store, settings)
    silent = SilentServer()
    held = redis_py.Redis.from_url(f"redis://127.0.0.1:{silent.port}/0", socket_timeout=30)  # as connect() makes them
    outcome = []
    dispatcher = threading.Thread(target=lambda: outcome.append(run_caught(
        lambda: jobs.dispatch_pool(held, store, "01:first_request"))))
    dispatcher.start()
    assert silent.reached.wait(10), "the dispatcher never reached its queue"
    assert store.lock_outbox("01:first_request") is None, "the dispatcher holds the lock"
    killable_redis.kill()
    restart = threading.Timer(OUTAGE_SECONDS, killable_redis.start)
    restart.start()
    silent.hang_up()  # the dispatch fails (the queueing connection dropped) while Redis is away
    restart.join()
    dispatcher.join(timeout=90)
    assert isinstance(outcome[0], redis_py.ConnectionError), outcome
    assert jobs.dispatch_pool(connection, store, "01:first_request") == 1, "the lock was left behind"


def run_caught(function):
    """What `function` returns, or the exception it raised."""
    try:
        return function()
    except Exception as error:  # noqa: BLE001 -- handed to the test to check
        return error


def test_the_clock_ticks_again_after_redis_restarts(settings, killable_redis, tmp_path):
    connection = redis_py.Redis.from_url(killable_redis.url)
    process = start("clock", killable_redis.url, tmp_path, QS_CLOCK_INTERVAL_SECONDS="0.3")
    try:
        assert eventually(lambda: Store(connection).last_clock_tick() is not None), "the clock never ticked"
        killable_redis.kill()
        time.sleep(OUTAGE_SECONDS)
        assert process.poll() is None, "the clock exited during the outage"
        killable_redis.start()
        restarted = datetime.datetime.now(datetime.timezone.utc)
        connection = redis_py.Redis.from_url(killable_redis.url)
        assert eventually(lambda: (Store(connection).last_clock_tick() or restarted) > restarted), "no tick after"
    finally:
        output = stop(process, tmp_path, "clock")
    assert process.returncode == 0, output
    assert output.count("clock: Redis unavailable") == 1, output
    assert output.count("clock: Redis is back") == 1, output


def test_the_heartbeat_is_not_starved_by_a_mail_backlog(redis):
    for number in range(20):
        queue(NOTIFICATIONS, redis).enqueue(jobs.heartbeat, job_id=f"mail-{number}")  # stands for a send job
    assert Store(redis).last_worker_heartbeat() is None
    clock.tick(redis, datetime.datetime.now(datetime.timezone.utc), periodic_jobs=clock.PERIODIC_JOBS[:1])
    SimpleWorker(all_queues(redis), connection=redis).work(burst=True, max_jobs=1)
    assert Store(redis).last_worker_heartbeat() is not None
    assert queue(NOTIFICATIONS, redis).count == 20, "the heartbeat ran first, ahead of the backlog"
