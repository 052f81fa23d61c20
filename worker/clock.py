"""The clock process: every few seconds it enqueues whatever is due.

Periodic jobs come from one list. Each run of a job has a deterministic id
(its name and time bucket) and is claimed in Redis before it is enqueued, so
two clocks running at once, or a clock restarted mid-bucket, enqueue it once.
More often (settings.dispatch_interval_seconds), it reads the outboxes'
lengths and queues their dispatch when a message waits, claimed the same way.
"""

from __future__ import annotations

import datetime
import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis

from queue_service import draws
from queue_service.draws import schedules
from queue_service.store import Store
from worker import jobs
from worker.outage import UNREACHABLE, Outage, wait_for_redis
from worker.queues import DEFAULT, DRAWS, NOTIFICATIONS, queue

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PeriodicJob:
    """A job the clock enqueues once every `every_seconds`."""

    name: str
    function: Callable[[], object]
    every_seconds: int
    queue_name: str = DEFAULT

    def bucket(self, now: datetime.datetime) -> int:
        """The number of the period `now` falls in; one run per bucket."""
        return int(now.timestamp()) // self.every_seconds

    def job_id(self, bucket: int) -> str:
        return f"periodic-{self.name}-{bucket}"


PERIODIC_JOBS = (
    # On the first queue served, so that no backlog of mail or housekeeping delays it
    # (readiness would then call a busy worker dead).
    PeriodicJob("heartbeat", jobs.heartbeat, every_seconds=30, queue_name=DRAWS),
    PeriodicJob("purge-registrations", jobs.purge_registrations, every_seconds=600),
    PeriodicJob("offer-rounds", jobs.offer_rounds, every_seconds=60),
)


def dispatch_job(every_seconds: int) -> PeriodicJob:
    """The dispatch of the outboxes: at most once every `every_seconds`, on the notifications
    queue (served before housekeeping), and only while a message waits (dispatch_waiting)."""
    return PeriodicJob("dispatch-notifications", jobs.dispatch_notifications, every_seconds, NOTIFICATIONS)


def tick(
    connection: redis.Redis, now: datetime.datetime, periodic_jobs=PERIODIC_JOBS, data: redis.Redis | None = None
) -> list[str]:
    """Record the tick, enqueue the draws and periodic jobs due at `now`; returns the ids enqueued.
    `connection` is the queues' Redis, `data` the data's (the same by default)."""
    store = Store(data if data is not None else connection)
    store.record_clock_tick(now)
    enqueued = reconcile_draws(connection, store, now)
    for periodic in periodic_jobs:
        job_id = enqueue_once(connection, store, periodic, now)
        if job_id is not None:
            enqueued.append(job_id)
    return enqueued


def dispatch_waiting(
    connection: redis.Redis, now: datetime.datetime, every_seconds: int, data: redis.Redis | None = None
) -> str | None:
    """Queue one dispatch of the outboxes if any holds a message, once per `every_seconds`;
    returns its job id, or None.

    Called every few seconds: with nothing to send, it costs one read of the
    pools and one pipelined read of their outboxes' lengths, and queues nothing.
    """
    store = Store(data if data is not None else connection)
    if not any(store.outbox_lengths().values()):
        return None
    return enqueue_once(connection, store, dispatch_job(every_seconds), now)


def enqueue_once(connection: redis.Redis, store: Store, periodic: PeriodicJob, now: datetime.datetime) -> str | None:
    """Enqueue `periodic`'s run for the bucket `now` falls in, unless it was claimed already; its id, or None."""
    bucket = periodic.bucket(now)
    # The claim outlives the bucket, so a late duplicate clock cannot re-enqueue it.
    if not store.claim_periodic_run(periodic.name, bucket, ttl_seconds=periodic.every_seconds * 4):
        return None
    job_id = periodic.job_id(bucket)
    queue(periodic.queue_name, connection).enqueue(
        periodic.function, job_id=job_id, result_ttl=periodic.every_seconds * 4
    )
    return job_id


def reconcile_draws(connection: redis.Redis, store: Store, now: datetime.datetime) -> list[str]:
    """Claim and enqueue every draw due by `now`, each exactly once, and announce the next one.

    Each pool remembers how far it was reconciled; a draw missed while the
    service was down is caught up. Two clocks compute the same draws; the
    claim (record + job in one transaction) lets only one enqueue each. The
    draws admins ran now, whose entries have closed, are claimed the same way.
    """
    enqueued = []
    for pool in store.scheduled_pools():
        for draw_id in store.draws_to_run(pool, now):
            if jobs.claim_draw_to_run(connection, pool, draw_id, now, store):
                enqueued.append(draw_id)
        schedule = store.schedule(pool)
        if schedule is None:
            continue
        due = draws.due_draws(schedule, store.reconciled_until(pool), now)
        for draw in due:
            if jobs.claim_and_enqueue(connection, schedule, draw, now, store):
                enqueued.append(draw.draw_id)
        store.advance_reconciled(pool, draws.reconciled_mark(due, now))
        coming = draws.next_draw(schedule, now)
        if coming is not None:
            draws.announce(store, schedule, coming, now)  # the seed's commitment is public ahead of the cutoff
            # (Announced after its scheduled cutoff, it closed its entries at that announcement: closed either way.)
            if now >= schedules.entry_cutoff(schedule, coming.scheduled_at):
                jobs.claim_and_enqueue_freeze(connection, coming, now, store)  # entries close: fix the entrants
    return enqueued


def run(
    connection: redis.Redis, interval_seconds: float, dispatch_every_seconds: int, data: redis.Redis | None = None
) -> None:
    """Tick every `interval_seconds`, and look for messages to dispatch every
    `dispatch_every_seconds`, until SIGTERM or SIGINT. `connection`: the queues' Redis;
    `data`: the data's, when another."""
    stop = threading.Event()

    def request_stop(signum, frame):
        log.info("clock: stopping on signal %s", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    log.info("clock: ticking every %s s, dispatching messages every %s s", interval_seconds, dispatch_every_seconds)
    next_tick = next_dispatch = time.monotonic()
    outage = Outage("clock", log)
    while not stop.is_set():
        now = datetime.datetime.now(datetime.timezone.utc)
        try:
            if time.monotonic() >= next_tick:
                next_tick = time.monotonic() + interval_seconds
                for job_id in tick(connection, now, data=data):
                    log.info("clock: enqueued %s", job_id)
            if time.monotonic() >= next_dispatch:
                next_dispatch = time.monotonic() + dispatch_every_seconds
                if (job_id := dispatch_waiting(connection, now, dispatch_every_seconds, data)) is not None:
                    log.debug("clock: enqueued %s", job_id)  # every few seconds while messages flow
        except UNREACHABLE as error:
            # Redis may restart; the clock waits for it rather than dying, and logs once.
            outage.failed(error)
            wait_for_redis(connection, stop, outage)
            if data is not None:
                wait_for_redis(data, stop, outage)
            continue
        except redis.RedisError:
            log.exception("clock: Redis refused a command; trying again at the next tick")
        else:
            outage.recovered()
        stop.wait(max(0.0, min(next_tick, next_dispatch) - time.monotonic()))
    log.info("clock: stopped")
