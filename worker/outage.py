"""Riding out a Redis outage: the worker and the clock wait and reconnect, forever.

Redis restarts (a deploy, a crash, a failover) must not stop the processes
that depend on it: they wait with growing pauses, log once when Redis goes
away and once when it is back, and carry on where they were.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time

import redis
from rq import Worker

# Pauses between attempts to reach Redis: from half a second, doubling, to at most this.
FIRST_WAIT_SECONDS = 0.5
LONGEST_WAIT_SECONDS = 15.0
# The errors that mean "Redis is not there (yet)", as opposed to a bug in a command.
UNREACHABLE = (redis.ConnectionError, redis.TimeoutError)


class Outage:
    """Remembers whether Redis is away, so that an outage is logged once, not once per retry."""

    def __init__(self, process: str, logger: logging.Logger) -> None:
        self.process = process
        self.logger = logger
        self.since: float | None = None

    def failed(self, error: Exception) -> None:
        if self.since is None:
            self.since = time.monotonic()
            self.logger.error("%s: Redis unavailable (%s); waiting for it to come back", self.process, error)

    def recovered(self) -> None:
        if self.since is not None:
            self.logger.warning("%s: Redis is back after %.1f s", self.process, time.monotonic() - self.since)
            self.since = None


def wait_for_redis(connection: redis.Redis, stop: threading.Event, outage: Outage) -> bool:
    """Ping Redis with growing pauses until it answers (True) or `stop` is set (False)."""
    wait = FIRST_WAIT_SECONDS
    while not stop.is_set():
        try:
            connection.ping()
        except UNREACHABLE as error:
            outage.failed(error)
            stop.wait(wait)
            wait = min(wait * 2, LONGEST_WAIT_SECONDS)
        else:
            outage.recovered()
            return True
    return False


def run_worker(connection: redis.Redis, burst: bool, logging_level: str) -> None:
    """Run an RQ worker on every queue, starting a new one whenever Redis took the last one down.

    RQ's worker waits for Redis only while it is waiting for a job; an outage
    anywhere else in its loop ends it ("found an unhandled exception,
    quitting"). A job it was running stays in RQ's started registry and, once
    its execution expires, RQ's clean-up requeues it if it has retries left
    (draws and mail have), or marks it failed (the periodic jobs run again at
    their next bucket anyway).
    """
    from worker.queues import all_queues

    outage = Outage("worker", logging.getLogger("qs"))
    logging.getLogger("rq.worker").addFilter(FoldRetries(outage))
    stop = threading.Event()
    while True:
        worker = StoppableWorker(all_queues(connection), connection=connection)
        try:
            worker.work(burst=burst, with_scheduler=True, logging_level=logging_level)
        except UNREACHABLE as error:  # from RQ's teardown, which writes to Redis
            outage.failed(error)
        if worker.stop_requested:
            return
        signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
        signal.signal(signal.SIGINT, lambda signum, frame: stop.set())
        try:
            connection.ping()
        except UNREACHABLE as error:
            outage.failed(error)
        else:
            if burst:
                return
            outage.logger.warning("worker: RQ's worker stopped; starting another")
            stop.wait(FIRST_WAIT_SECONDS)
        if stop.is_set() or not wait_for_redis(connection, stop, outage):
            return


class StoppableWorker(Worker):
    """RQ's worker, telling whether it stopped because it was asked to (SIGTERM, Ctrl-C)."""

    stop_requested = False

    def handle_warm_shutdown_request(self) -> None:
        self.stop_requested = True
        super().handle_warm_shutdown_request()


class FoldRetries(logging.Filter):
    """Folds RQ's "could not connect to Redis instance ... retrying" lines, one per retry, into the
    outage's single line; its next other line says Redis answered again."""

    def __init__(self, outage: Outage) -> None:
        super().__init__()
        self.outage = outage

    def filter(self, record: logging.LogRecord) -> bool:
        if "could not connect to Redis" in str(record.msg):
            self.outage.failed(record.args[1] if isinstance(record.args, tuple) and len(record.args) > 1 else "")
            return False
        if record.levelno < logging.WARNING and record.process == os.getpid():  # work as usual, not a horse's line
            self.outage.recovered()
        return True
