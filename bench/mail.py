"""Messages sent per second by the worker, forking a process per send job or not, in one run.

    PYTHONPATH=$PWD .venv/bin/python bench/mail.py --messages 300 --rounds 2

Starts a private redis-server (free port, temporary directory) and a loopback
SMTP sink (aiosmtpd) counting what it receives; registers N people in Ain's
first-request pool (each writes its confirmation email to the outbox, as a
registration does), hands the outbox to send jobs as the clock's dispatch does
(worker.jobs.dispatch_pool), then runs those jobs to the end with a burst worker
and times it, from the first job to the last message received:

  forking     RQ's Worker: a process forked for every job (the worker before);
  in-process  the service's worker (worker/outage.py StoppableWorker): send jobs
              run in its own process (worker/queues.py IN_PROCESS_QUEUES).

The two take turns on fresh batches of N in each round; read the ratio.
"""

from __future__ import annotations

import argparse
import datetime
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))
POOL = "01:first_request"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Sink:
    def __init__(self) -> None:
        self.received = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.received += 1
        return "250 OK"


def register(store, settings, count: int, first: int) -> None:
    """`count` new people in Ain's first-request pool, online: each has a confirmation email waiting."""
    from queue_service import registration as registrations
    from queue_service.reference import procedure_by_code
    from queue_service.registration.agdref import UploadedRecords

    now = datetime.datetime.now(datetime.timezone.utc)
    secret = settings.identity_key.encode()
    limits = registrations.Limits(settings.contacts_per_pool, datetime.timedelta(hours=24))
    records = UploadedRecords(store, secret)
    procedure = procedure_by_code("first_request")
    rng = random.Random(first)
    for number in range(first, first + count):
        letters = "".join(chr(97 + (number // 26 ** place) % 26) for place in range(5))
        form = {"family_name": f"Bench {letters}", "given_names": "Mail", "birth_date": "1990-01-01",
                "nationality": "MA", "email": f"mail-{number}@example.org", "phone": f"+33612{number:06d}",
                "consent": "yes", "language": "fr"}
        applicant = registrations.parse_applicant(form, procedure, ["bourg"], now.date())
        registrations.register(store, "01", "first_request", applicant, now=now, rng=rng, identity_secret=secret,
                               limits=limits, records=records)


def run(worker_class, connection, store, sink: Sink, count: int) -> float:
    """Dispatch the outbox and run its send jobs with a burst worker: messages per second."""
    from worker import jobs
    from worker.queues import QUEUE_NAMES

    assert jobs.dispatch_pool(connection, store, POOL) == count
    before = sink.received
    started = time.perf_counter()
    worker_class(QUEUE_NAMES, connection=connection).work(burst=True, logging_level="WARNING")
    while sink.received - before < count and time.perf_counter() - started < 300:
        time.sleep(0.001)
    elapsed = time.perf_counter() - started
    if sink.received - before != count:
        raise SystemExit(f"{sink.received - before} messages received of {count}: see the worker's log above")
    return count / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=300, help="messages per measurement (at most 5000)")
    parser.add_argument("--rounds", type=int, default=2)
    arguments = parser.parse_args()
    count = min(max(arguments.messages, 10), 5000)

    from aiosmtpd.controller import Controller

    work = Path(tempfile.mkdtemp(prefix="qs-bench-mail-"))
    port = free_port()
    server = subprocess.Popen(["redis-server", "--port", str(port), "--dir", str(work), "--save", "",
                               "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        os.environ.update(QS_REDIS_URL=f"redis://127.0.0.1:{port}/0", QS_DATA_DIR=str(work / "data"),
                          QS_MAIL_BACKEND="smtp", QS_SMTP_HOST="127.0.0.1", QS_SMTP_PORT=str(controller.port),
                          QS_SMTP_SECURITY="none", QS_LOG_LEVEL="WARNING")
        import redis
        from rq import Worker

        from queue_service import reference
        from queue_service.settings import load_settings
        from queue_service.store import Store
        from worker.outage import StoppableWorker

        connection = redis.Redis(port=port)
        for _ in range(100):
            try:
                connection.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.1)
        settings = load_settings()
        store = Store(connection)
        store.load_reference(reference.PREFECTURES, reference.PROCEDURES)
        store.add_missing_sites(reference.DEMO_SITES)
        print(f"{count} confirmation emails per measurement, SMTP sink on loopback, {os.cpu_count()} CPUs")
        first = 0
        for number in range(1, arguments.rounds + 1):
            figures = {}
            for name, worker_class in (("forking", Worker), ("in-process", StoppableWorker)):
                register(store, settings, count, first)
                first += count
                figures[name] = run(worker_class, connection, store, sink, count)
            print(f"round {number}: forking {figures['forking']:.0f}/s, in-process {figures['in-process']:.0f}/s, "
                  f"ratio {figures['in-process'] / figures['forking']:.1f}", flush=True)
    finally:
        controller.stop()
        server.terminate()
        server.wait()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
