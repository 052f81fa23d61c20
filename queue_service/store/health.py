"""What the readiness checks and /metrics read about the processes: the clock's tick,
the worker's heartbeat, which periodic runs were claimed, and how long jobs take.

Global keys (no pool), written by the clock and the worker, never by a script.
"""

from __future__ import annotations

import datetime

import redis

from queue_service.store.keys import CLOCK_TICK_KEY, JOB_DURATIONS_KEY, WORKER_HEARTBEAT_KEY, periodic_run_key
from queue_service.store.times import utc_from, utc_text


class HealthStore:
    """The processes' liveness and the jobs' durations (one part of Store)."""

    redis: redis.Redis  # set by Store.__init__ (store/__init__.py)

    def ping(self) -> bool:
        return bool(self.redis.ping())

    def record_clock_tick(self, now: datetime.datetime) -> None:
        self.redis.set(CLOCK_TICK_KEY, utc_text(now))

    def last_clock_tick(self) -> datetime.datetime | None:
        return utc_from(self.redis.get(CLOCK_TICK_KEY))

    def record_worker_heartbeat(self, now: datetime.datetime) -> None:
        self.redis.set(WORKER_HEARTBEAT_KEY, utc_text(now))

    def last_worker_heartbeat(self) -> datetime.datetime | None:
        return utc_from(self.redis.get(WORKER_HEARTBEAT_KEY))

    def claim_periodic_run(self, name: str, bucket: int, ttl_seconds: int) -> bool:
        """True for the first caller to claim this run of a periodic job, False for any other."""
        key = periodic_run_key(name, bucket)
        return bool(self.redis.set(key, "1", nx=True, ex=ttl_seconds))

    def record_job_duration(self, name: str, seconds: float, bounds: tuple[float, ...]) -> None:
        """One more run of job `name` taking `seconds`, as a cumulative histogram over `bounds`."""
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.hincrby(JOB_DURATIONS_KEY, name, 1)
            pipe.hincrbyfloat(JOB_DURATIONS_KEY, f"{name}:sum", seconds)
            for bound in bounds:
                if seconds <= bound:
                    pipe.hincrby(JOB_DURATIONS_KEY, f"{name}:le:{bound}", 1)
            pipe.execute()

    def job_durations(self) -> dict[str, str]:
        return {name.decode(): value.decode() for name, value in self.redis.hgetall(JOB_DURATIONS_KEY).items()}
