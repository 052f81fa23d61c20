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
from rq import Queue, Worker
from rq.exceptions import NoSuchJobError
from rq.job import JobStatus
from rq.utils import as_text, parse_composite_key
from rq.worker import WorkerStatus

from worker.queues import IN_PROCESS_QUEUES

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
    quitting"). A job it was running is let run to its end first. Once Redis
    answers, the job it had taken is put back (cut_off_jobs_put_back): RQ
    would retry a job left "started" only once its execution expired, at a
    clean-up that comes every ten minutes, and would drop one not started yet.
    A job whose worker died (SIGKILL) is found abandoned after
    ABANDONED_AFTER_SECONDS and retried by the next worker's clean-up if it
    has retries left (draws and mail have).
    """
    from worker.queues import QUEUE_NAMES

    outage = Outage("worker", logging.getLogger("qs"))
    logging.getLogger("rq.worker").addFilter(FoldRetries(outage))
    stop = threading.Event()
    while True:
        worker = StoppableWorker(QUEUE_NAMES, connection=connection)
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
        if stop.is_set() or not recover(worker, connection, stop, outage):
            return


def recover(worker: StoppableWorker, connection: redis.Redis, stop: threading.Event, outage: Outage) -> bool:
    """Once the stopped worker's job process has ended and Redis answers, put back what that
    worker had taken (cut_off_jobs_put_back) and free its scheduler's locks for the next
    worker's; False if `stop` was set first."""
    if worker.horse_pid:
        outage.logger.warning("worker: waiting for the job in progress (process %d) to end", worker.horse_pid)
        try:
            os.waitpid(worker.horse_pid, 0)
        except ChildProcessError:
            pass  # ended and reaped already
    while wait_for_redis(connection, stop, outage):
        try:
            for job_id in cut_off_jobs_put_back(worker):
                outage.logger.warning("worker: job %s was cut off by the outage; put back", job_id)
            if worker.scheduler is not None:
                # Its process is gone (the worker's teardown stopped it); its locks, left to expire,
                # would keep the next worker's scheduler out for a minute.
                worker.scheduler.release_locks()
            return True
        except UNREACHABLE as error:
            outage.failed(error)
    return False


def cut_off_jobs_put_back(worker: StoppableWorker) -> list[str]:
    """The jobs `worker` (stopped, its job process ended) had taken and not finished, put
    back; their ids.

    A job that started is retried if it has retries left, or else failed, by
    RQ's own clean-up: its execution is marked expired (it is: the worker that
    ran it is gone), which is all that clean-up waits for. A job taken from its
    queue that never started (the outage came in between) goes back to its
    queue as it was: RQ would drop it, and the message it was to send with it.
    """
    connection = worker.connection
    taken = {parse_composite_key(as_text(key))[0]: key for key in connection.smembers(worker.executions_key)}
    if TakingQueue.taken_job_id is not None:
        taken.setdefault(TakingQueue.taken_job_id, None)
    put_back = []
    for job_id, execution_key in taken.items():
        try:
            job = worker.job_class.fetch(job_id, connection=connection, serializer=worker.serializer)
        except NoSuchJobError:
            continue
        registry = job.started_job_registry
        queue = Queue(job.origin, connection=connection, job_class=worker.job_class, serializer=worker.serializer)
        status = job.get_status()
        if status == JobStatus.STARTED and execution_key is not None:
            connection.zadd(registry.key, {execution_key: 0}, xx=True)
            registry.cleanup()
        elif status == JobStatus.QUEUED and connection.lpos(queue.key, job_id) is None:
            queue.enqueue_job(job)
            if execution_key is not None:
                connection.zrem(registry.key, execution_key)
        else:
            continue  # it ended after all (its process wrote its end once Redis was back), or waits its turn
        put_back.append(job_id)
    connection.delete(worker.executions_key)
    TakingQueue.taken_job_id = None
    return put_back


class TakingQueue(Queue):
    """RQ's queue, remembering the job this process last took from a queue (RQ's worker pops it
    with `lpop`) until the worker has run it.

    Between taking a job and registering its execution RQ's worker asks Redis
    a few things; an outage there leaves the job in no queue and no registry,
    and only this process knows it was taken (cut_off_jobs_put_back).
    """

    taken_job_id: str | None = None

    @classmethod
    def lpop(cls, queue_keys, timeout, connection=None):
        taken = super().lpop(queue_keys, timeout, connection=connection)
        if taken is not None:
            TakingQueue.taken_job_id = as_text(taken[1])
        return taken


class StoppableWorker(Worker):
    """RQ's worker, telling whether it stopped because it was asked to (SIGTERM, Ctrl-C), and
    whose dead jobs are found and run again within a minute or so (see the module's doc), and
    that starts a new scheduler process as soon as its own died (Redis went away under it).

    RQ's scheduler process moves jobs whose time has come (the retries of
    mail and draws) to their queue; RQ starts another only at the worker's
    maintenance, every ten minutes.
    """

    stop_requested = False
    queue_class = TakingQueue

    def __init__(self, queues, **options) -> None:
        # RQ waits for a job worker_ttl - 15 seconds at most: MAINTENANCE_SECONDS.
        super().__init__(queues, job_monitoring_interval=JOB_HEARTBEAT_SECONDS,
                         maintenance_interval=MAINTENANCE_SECONDS, worker_ttl=MAINTENANCE_SECONDS + 15, **options)

    def handle_warm_shutdown_request(self) -> None:
        self.stop_requested = True
        super().handle_warm_shutdown_request()

    def get_heartbeat_ttl(self, job, working_time: float = 0.0) -> int:
        """How long a running job's registration lasts unless renewed: as in RQ, with
        ABANDONED_AFTER_SECONDS of grace instead of 60. A job run in this process is not
        watched by it, hence not renewed: its registration lasts its whole timeout, and
        the grace (as RQ's SimpleWorker, with our grace)."""
        if job.origin in IN_PROCESS_QUEUES:
            return int(job.timeout if job.timeout and job.timeout > 0 else Queue.DEFAULT_TIMEOUT) + ABANDONED_AFTER_SECONDS
        if job.timeout and job.timeout > 0:
            return int(min(job.timeout - working_time, self.job_monitoring_interval)) + ABANDONED_AFTER_SECONDS
        return self.job_monitoring_interval + ABANDONED_AFTER_SECONDS

    def main_work_horse(self, job, queue) -> None:
        """The forked process that runs a job: it dies with its worker (RQ's would run on,
        with nobody renewing its registration, and be run a second time alongside)."""
        die_with_parent(self.pid)
        super().main_work_horse(job, queue)


    def execute_job(self, job, queue) -> None:
        if job.origin in IN_PROCESS_QUEUES:
            # A message: sent here, as RQ's SimpleWorker does, rather than in a process forked for
            # it (a fork costs more than sending one email); a draw keeps its own process.
            execution = self.prepare_execution(job)
            self.perform_job(job, queue, execution)
            self.set_state(WorkerStatus.IDLE)
        else:
            super().execute_job(job, queue)
        TakingQueue.taken_job_id = None  # run (done, failed or retried as RQ says): nothing to put back

    def scheduler_died(self) -> bool:
        """Its scheduler process, which held the scheduling locks, has ended."""
        scheduler = self.scheduler
        return (scheduler is not None and bool(scheduler.acquired_locks) and scheduler._process is not None
                and not scheduler._process.is_alive())

    @property
    def should_run_maintenance_tasks(self) -> bool:
        # RQ's maintenance starts a new scheduler process under the same locks (same name).
        return self.scheduler_died() or super().should_run_maintenance_tasks


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
