"""The clock process: every few seconds it enqueues whatever is due.

Periodic jobs come from one list. Each run of a job has a deterministic id
(its name and time bucket) and is claimed in Redis before it is enqueued, so
two clocks running at once, or a clock restarted mid-bucket, enqueue it once.
"""

from __future__ import annotations

import datetime
import logging
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass

import redis

from queue_service import draws
from queue_service.draws import schedules
from queue_service.store import Store
from worker import jobs
from worker.queues import DEFAULT, queue

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
    PeriodicJob("heartbeat", jobs.heartbeat, every_seconds=30),
    PeriodicJob("purge-registrations", jobs.purge_registrations, every_seconds=600),
    PeriodicJob("offer-rounds", jobs.offer_rounds, every_seconds=60),
    PeriodicJob("dispatch-notifications", jobs.dispatch_notifications, every_seconds=30),
)


def tick(connection: redis.Redis, now: datetime.datetime, periodic_jobs=PERIODIC_JOBS) -> list[str]:
    """Record the tick, enqueue the draws and periodic jobs due at `now`; returns the ids enqueued."""
    store = Store(connection)
    store.record_clock_tick(now)
    enqueued = reconcile_draws(connection, store, now)
    for periodic in periodic_jobs:
        bucket = periodic.bucket(now)
        # The claim outlives the bucket, so a late duplicate clock cannot re-enqueue it.
        if store.claim_periodic_run(periodic.name, bucket, ttl_seconds=periodic.every_seconds * 4):
            job_id = periodic.job_id(bucket)
            queue(periodic.queue_name, connection).enqueue(
                periodic.function, job_id=job_id, result_ttl=periodic.every_seconds * 4
            )
            enqueued.append(job_id)
    return enqueued


def reconcile_draws(connection: redis.Redis, store: Store, now: datetime.datetime) -> list[str]:
    """Claim and enqueue every scheduled draw due by `now`, each exactly once, and announce the next one.

    Each pool remembers how far it was reconciled; a draw missed while the
    service was down is caught up. Two clocks compute the same draws; the
    claim (record + job in one transaction) lets only one enqueue each.
    """
    enqueued = []
    for pool in store.scheduled_pools():
        schedule = store.schedule(pool)
        if schedule is None:
            continue
        due = draws.due_draws(schedule, store.reconciled_until(pool), now)
        for draw in due:
            if jobs.claim_and_enqueue(connection, schedule, draw, now):
                enqueued.append(draw.draw_id)
        store.advance_reconciled(pool, draws.reconciled_mark(due, now))
        coming = draws.next_draw(schedule, now)
        if coming is not None:
            draws.announce(store, schedule, coming, now)  # the seed's commitment is public ahead of the cutoff
            if now >= schedules.entry_cutoff(schedule, coming.scheduled_at):
                jobs.claim_and_enqueue_freeze(connection, coming, now)  # entries close: fix the entrants
    return enqueued


def run(connection: redis.Redis, interval_seconds: float) -> None:
    """Tick every `interval_seconds` until SIGTERM or SIGINT."""
    stop = threading.Event()

    def request_stop(signum, frame):
        log.info("clock: stopping on signal %s", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    log.info("clock: ticking every %s s", interval_seconds)
    while not stop.is_set():
        try:
            for job_id in tick(connection, datetime.datetime.now(datetime.timezone.utc)):
                log.info("clock: enqueued %s", job_id)
        except redis.RedisError as error:
            # Redis may restart; the clock keeps trying rather than dying.
            log.error("clock: Redis unavailable (%s); retrying", error)
        stop.wait(interval_seconds)
    log.info("clock: stopped")
