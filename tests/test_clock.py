"""The clock enqueues each periodic run once; the worker runs it; /readyz sees both."""

import datetime
import os
import signal
import subprocess
import sys
import time

from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from queue_service.health import readiness
from worker import clock
from queue_service.store.keys import POOLS_KEY
from worker.queues import DEFAULT, DRAWS, NOTIFICATIONS, queue

UTC = datetime.timezone.utc
START = datetime.datetime(2027, 1, 4, 9, 0, tzinfo=UTC)


def due_ids(moment: datetime.datetime) -> set[str]:
    return {periodic.job_id(periodic.bucket(moment)) for periodic in clock.PERIODIC_JOBS}


def test_two_clocks_ticking_together_enqueue_each_job_once(redis):
    first = clock.tick(redis, START)
    second = clock.tick(redis, START + datetime.timedelta(seconds=1))
    assert set(first) == due_ids(START) and len(first) == len(clock.PERIODIC_JOBS)
    assert second == []
    assert set(queue(DEFAULT, redis).job_ids) | set(queue(DRAWS, redis).job_ids) == set(first)


@hypothesis_settings(max_examples=30, deadline=None)
@given(offsets=st.lists(st.integers(min_value=0, max_value=600), min_size=1, max_size=40))
def test_ticks_in_any_order_enqueue_each_bucket_exactly_once(redis_server, offsets):
    redis_server.flushall()
    enqueued = []
    for offset in offsets:
        enqueued += clock.tick(redis_server, START + datetime.timedelta(seconds=offset))
    expected = set().union(*(due_ids(START + datetime.timedelta(seconds=offset)) for offset in offsets))
    assert sorted(enqueued) == sorted(expected)


def test_the_worker_runs_the_heartbeat_and_readiness_turns_green(redis, store, run_jobs):
    now = datetime.datetime.now(UTC)
    before = readiness(store, now, max_age_seconds=60)
    assert before["ready"] is False
    assert before["checks"]["redis"] == {"ok": True}
    assert before["checks"]["worker"]["ok"] is False

    clock.tick(redis, now)
    assert run_jobs() is True
    after = readiness(store, datetime.datetime.now(UTC), max_age_seconds=60)
    assert after["ready"] is True, after
    assert store.last_worker_heartbeat() >= now


def test_readiness_reports_stale_processes(store):
    long_ago = datetime.datetime.now(UTC) - datetime.timedelta(minutes=10)
    store.record_clock_tick(long_ago)
    store.record_worker_heartbeat(long_ago)
    report = readiness(store, datetime.datetime.now(UTC), max_age_seconds=90)
    assert report["ready"] is False
    assert report["checks"]["clock"]["ok"] is False
    assert report["checks"]["clock"]["age_seconds"] >= 600


def test_clock_process_ticks_then_stops_cleanly_on_sigterm(redis, redis_url, store, tmp_path, reference_data):
    register(store)  # a confirmation link waits in the outbox
    environment = dict(os.environ, QS_REDIS_URL=redis_url, QS_DATA_DIR=str(tmp_path), QS_CLOCK_INTERVAL_SECONDS="0.2",
                       QS_DISPATCH_INTERVAL_SECONDS="1")
    process = subprocess.Popen(
        [sys.executable, "-m", "worker.cli", "clock"], env=environment, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 20
        while (store.last_clock_tick() is None or not len(queue(NOTIFICATIONS, redis))) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert store.last_clock_tick() is not None
    finally:
        process.send_signal(signal.SIGTERM)
        _, errors = process.communicate(timeout=20)
    assert process.returncode == 0, errors
    assert "clock: stopped" in errors
    names = {job_id.rsplit("-", 1)[0] for name in (DEFAULT, DRAWS) for job_id in queue(name, redis).job_ids}
    assert names == {f"periodic-{periodic.name}" for periodic in clock.PERIODIC_JOBS}
    dispatches = {job_id.rsplit("-", 1)[0] for job_id in queue(NOTIFICATIONS, redis).job_ids}
    assert dispatches == {"periodic-dispatch-notifications"}


# Messages: the outboxes read every few seconds, dispatched only when one waits ----------------


def register(store):
    """One online registration in Ain's first-request pool (the reference_data fixture): its
    confirmation link waits in the outbox."""
    import random

    from queue_service import registration as reg
    from queue_service.reference import procedure_by_code
    from queue_service.registration.agdref import UploadedRecords

    secret = b"clock-test-secret"
    form = {"family_name": "Tran", "given_names": "Minh", "birth_date": "1987-07-07", "nationality": "VN",
            "email": "minh@example.org", "phone": "06 70 80 90 10", "consent": "yes"}
    now = datetime.datetime.now(UTC)
    applicant = reg.parse_applicant(form, procedure_by_code("first_request"), ["bourg"], now.date())
    return reg.register(store, "01", "first_request", applicant, now=now, rng=random.Random(2), identity_secret=secret,
                        limits=reg.Limits(4, datetime.timedelta(hours=24)), records=UploadedRecords(store, secret))


def test_the_clock_dispatches_only_while_a_message_waits_once_per_period(redis, store, reference_data, run_jobs,
                                                                        mailbox):
    for pool in ("01:renewal", "69:renewal", "75:student"):
        store.redis.sadd(POOLS_KEY, pool)  # pools with empty outboxes
    redis.config_resetstat()
    assert clock.dispatch_waiting(redis, START, every_seconds=3) is None
    used = {name.removeprefix("cmdstat_"): stats["calls"] for name, stats in redis.info("commandstats").items()}
    # Nothing to send costs one read of the pools and one pipelined read of their outboxes' lengths.
    assert {name: calls for name, calls in used.items() if name not in ("config", "config|resetstat", "info")} == {
        "smembers": 1, "llen": 3}
    assert len(queue(NOTIFICATIONS, redis)) == 0

    register(store)
    first = clock.dispatch_waiting(redis, START, every_seconds=3)
    assert first == clock.dispatch_job(3).job_id(clock.dispatch_job(3).bucket(START))
    assert clock.dispatch_waiting(redis, START + datetime.timedelta(seconds=1), every_seconds=3) is None  # another clock
    assert queue(NOTIFICATIONS, redis).job_ids == [first]
    run_jobs()
    assert len(mailbox.messages) == 1 and store.outbox_lengths()["01:first_request"] == 0
    assert clock.dispatch_waiting(redis, START + datetime.timedelta(seconds=3), every_seconds=3) is None


def test_worker_process_runs_queued_jobs_in_burst_mode(redis, redis_url, store, tmp_path):
    clock.tick(redis, datetime.datetime.now(UTC))
    environment = dict(os.environ, QS_REDIS_URL=redis_url, QS_DATA_DIR=str(tmp_path))
    completed = subprocess.run(
        [sys.executable, "-m", "worker.cli", "worker", "--burst"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 0, completed.stderr
    assert store.last_worker_heartbeat() is not None


# Draws: each scheduled draw enqueued exactly once ------------------------------------------

PARIS_SCHEDULE_START = datetime.datetime(2027, 1, 1, tzinfo=UTC)


def weekly_schedule(store, prefecture="01", cron="0 10 * * MON,THU"):
    from queue_service.draws.schedules import DrawSchedule

    schedule = DrawSchedule(
        prefecture=prefecture, procedure="renewal", timezone="Europe/Paris", cron=cron, created_at=PARIS_SCHEDULE_START
    )
    store.save_schedule(schedule)
    return schedule


@hypothesis_settings(max_examples=25, deadline=None)
@given(
    steps=st.lists(
        st.tuples(
            st.sampled_from(["clock A", "clock B", "restart"]),
            st.integers(min_value=0, max_value=4 * 24 * 3600),  # time passing before the step
        ),
        min_size=1,
        max_size=30,
    )
)
def test_clocks_ticking_restarting_and_racing_enqueue_each_draw_exactly_once(redis_server, steps):
    from queue_service.draws import schedules
    from queue_service.store import Store
    from queue_service.store.keys import PoolKeys
    from worker.queues import DRAWS

    redis_server.flushall()
    store = Store(redis_server)
    schedule = weekly_schedule(store)
    moment = last_tick = PARIS_SCHEDULE_START
    enqueued = []
    for action, seconds in steps:
        moment += datetime.timedelta(seconds=seconds)
        if action == "restart":
            # A crash that lost the reconciliation mark: the clock starts over from the schedule's creation.
            redis_server.delete(PoolKeys("01:renewal").reconciled)
            continue
        enqueued += clock.reconcile_draws(redis_server, store, moment)
        last_tick = moment
    expected = [
        schedules.draw_id("01", "renewal", t, "Europe/Paris")
        for t in schedules.due_draw_times(schedule, PARIS_SCHEDULE_START, last_tick, limit=10_000)
    ]
    assert sorted(enqueued) == sorted(expected)
    assert len(enqueued) == len(set(enqueued))
    # (A freeze job may be queued too, when the last tick falls between the next draw's cutoff and its time.)
    assert len([job for job in queue(DRAWS, redis_server).job_ids if job.startswith("draw-")]) == len(expected)


def test_two_clocks_and_two_workers_for_real_run_each_draw_once(redis, redis_url, store, tmp_path):
    """Two `qs clock` and two `qs worker` processes on the test Redis, for a few seconds."""
    from rq.registry import FinishedJobRegistry

    from queue_service.draws import DrawState
    from queue_service.draws.schedules import DrawSchedule
    from worker.queues import DRAWS

    now = datetime.datetime.now(UTC).replace(second=0, microsecond=0)
    dates = tuple(now - datetime.timedelta(minutes=minutes) for minutes in range(1, 13))
    store.save_schedule(
        DrawSchedule(prefecture="01", procedure="renewal", timezone="Europe/Paris", cron=None, dates=dates,
                     created_at=now - datetime.timedelta(hours=1))
    )
    environment = dict(os.environ, QS_REDIS_URL=redis_url, QS_DATA_DIR=str(tmp_path), QS_CLOCK_INTERVAL_SECONDS="0.2")
    processes = [
        subprocess.Popen([sys.executable, "-m", "worker.cli", command], env=environment,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for command in ("clock", "clock", "worker", "worker")
    ]
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            states = [draw.state for draw in store.draws("01:renewal")]
            if len(states) == len(dates) and set(states) == {DrawState.PUBLISHED}:
                break
            time.sleep(0.2)
        time.sleep(1)  # let any duplicate show up
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            process.wait(timeout=30)
    draws = store.draws("01:renewal")
    assert len(draws) == len(dates) and {draw.state for draw in draws} == {DrawState.PUBLISHED}
    finished = [job_id for job_id in FinishedJobRegistry(DRAWS, connection=redis).get_job_ids()
                if not job_id.startswith("periodic-heartbeat-")]  # the heartbeat shares the first queue
    assert sorted(finished) == sorted(f"draw-{draw.draw_id}" for draw in draws)
    assert len(queue(DRAWS, redis)) == 0
