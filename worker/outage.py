"""Riding out a Redis outage, and a worker's death: nothing is lost, nothing left half-run.

Redis restarts (a deploy, a crash, a failover) must not stop the processes
that depend on it: they wait with growing pauses, log once when Redis goes
away and once when it is back, and carry on where they were.

A worker may also die (SIGKILL, out of memory, a host lost) in the middle of a
job. RQ then finds the job abandoned, once its worker has sent no heartbeat for
a while, and runs it again if it has retries left. The worker here makes that
"while" short (ABANDONED_AFTER_SECONDS instead of RQ's minute and a half, and a
clean-up every MAINTENANCE_SECONDS instead of RQ's ten minutes), and never lets
a job run on unwatched: the process running a job (RQ's work horse) dies with
its worker, and a worker that RQ gave up on during an outage waits for its
running job to end before taking another.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
import threading
import time

import redis
from rq import Worker

# Pauses between attempts to reach Redis: from half a second, doubling, to at most this.
FIRST_WAIT_SECONDS = 0.5
LONGEST_WAIT_SECONDS = 15.0
# The errors that mean "Redis is not there (yet)", as opposed to a bug in a command.
UNREACHABLE = (redis.ConnectionError, redis.TimeoutError)

# A worker running a job writes a heartbeat this often (RQ's job_monitoring_interval; RQ: 30 s)...
JOB_HEARTBEAT_SECONDS = 5
# ...and its job counts as abandoned when no heartbeat came for this long after the last
# interval (RQ: 60 s). Long enough for Redis to be busy with a draw's commit (seconds).
ABANDONED_AFTER_SECONDS = 20
# How often a worker runs RQ's clean-up, which retries abandoned jobs, and the longest it
# waits for a job before it looks again (RQ: ten minutes, and 405 s).
MAINTENANCE_SECONDS = 15


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
    quitting"). A job it was running is let run to its end first. One that
    failed for want of Redis stays in RQ's started registry and, once
    abandoned (ABANDONED_AFTER_SECONDS), RQ's clean-up retries it if it has
    retries left (draws and mail have), or marks it failed (the periodic jobs
    run again at their next bucket anyway).
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
        if worker.horse_pid:
            # RQ gave up while a job ran: let it end (its own timeout bounds it) before the
            # next worker takes another, rather than leave it running unwatched.
            outage.logger.warning("worker: waiting for the job still running (pid %d) to end", worker.horse_pid)
            worker.wait_for_horse()
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
    """RQ's worker, telling whether it stopped because it was asked to (SIGTERM, Ctrl-C), and
    whose dead jobs are found and run again within a minute or so (see the module's doc)."""

    stop_requested = False

    def __init__(self, queues, **options) -> None:
        # RQ waits for a job worker_ttl - 15 seconds at most: MAINTENANCE_SECONDS.
        super().__init__(queues, job_monitoring_interval=JOB_HEARTBEAT_SECONDS,
                         maintenance_interval=MAINTENANCE_SECONDS, worker_ttl=MAINTENANCE_SECONDS + 15, **options)

    def handle_warm_shutdown_request(self) -> None:
        self.stop_requested = True
        super().handle_warm_shutdown_request()

    def get_heartbeat_ttl(self, job, working_time: float = 0.0) -> int:
        """How long a running job's registration lasts unless renewed: as in RQ, with
        ABANDONED_AFTER_SECONDS of grace instead of 60."""
        if job.timeout and job.timeout > 0:
            return int(min(job.timeout - working_time, self.job_monitoring_interval)) + ABANDONED_AFTER_SECONDS
        return self.job_monitoring_interval + ABANDONED_AFTER_SECONDS

    def main_work_horse(self, job, queue) -> None:
        """The forked process that runs a job: it dies with its worker (RQ's would run on,
        with nobody renewing its registration, and be run a second time alongside)."""
        die_with_parent(self.pid)
        super().main_work_horse(job, queue)


# prctl(2): deliver this signal to the calling process when its parent dies.
PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int) -> None:
    """Have the kernel SIGKILL this process when its parent (`parent_pid`) dies. Linux only;
    elsewhere a job may outlive a killed worker, as it does with RQ alone."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        logging.getLogger("qs").warning("worker: a job's process cannot be tied to its worker (errno %d)",
                                        ctypes.get_errno())
    elif os.getppid() != parent_pid:  # the worker died before the tie was made
        os._exit(1)


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
