"""Messages sent per second by the worker, one send job per message or in batches, in one run.

    PYTHONPATH=$PWD .venv/bin/python bench/mail.py --messages 300 --rounds 2

Starts a private redis-server (free port, temporary directory) and a loopback
SMTP sink (aiosmtpd) counting what it receives and the connections it takes;
registers N people in Ain's first-request pool (each writes its confirmation
email to the outbox, as a registration does), hands the outbox to send jobs,
then runs those jobs to the end with `qs worker --burst` in a fresh process,
and times it from the first message received to the last:

  per-message  one `send_notification` job per message, each opening its own
               SMTP connection (the dispatcher before batches);
  batched      `worker.jobs.dispatch_pool` as the clock's dispatch runs it: one
               `send_notifications` job per SEND_BATCH messages, each over one
               SMTP connection.

`--latency R` measures instead what an applicant waits: `qs worker` and
`qs clock` run (the Procfile's), people register at R a second for
--seconds, and each confirmation email's time from its registration to the
sink is read (the sink's To header names the person): median, 95th
percentile and worst.

Both run their jobs in the worker's own process (worker/queues.py
IN_PROCESS_QUEUES). The two take turns on fresh batches of N in each round;
read the ratio, and the worker's CPU time per message (what it takes from the
web processes on the same machine). `--forking` adds RQ's forking Worker (a
process per job, the worker before IN_PROCESS_QUEUES; about 1 message a second).
"""

from __future__ import annotations

import argparse
import datetime
import os
import random
import resource
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
        self.times: list[float] = []
        self.peers: set = set()
        self.arrivals: dict[str, float] = {}  # recipient: when its message came
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.received += 1
            self.times.append(time.monotonic())
            self.peers.add(session.peer)
            for recipient in envelope.rcpt_tos:
                self.arrivals[recipient] = time.monotonic()
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


WORKERS = {
    # RQ's Worker as the service ran it before IN_PROCESS_QUEUES: a process forked for every job.
    "forking": "from rq import Worker; from worker.queues import QUEUE_NAMES; import redis, os; "
               "Worker(QUEUE_NAMES, connection=redis.Redis.from_url(os.environ['QS_REDIS_URL']))"
               ".work(burst=True, logging_level='WARNING')",
    # The service's worker, as `qs worker --burst` runs it.
    "in-process": "from worker.cli import main; main(['worker', '--burst'])",
}


def dispatch_per_message(connection, store) -> int:
    """The outbox handed to one send job per message, as the dispatcher did before batches."""
    import json

    from worker import jobs
    from worker.queues import NOTIFICATIONS, queue

    texts = store.outbox_head(POOL, 100_000)
    with connection.pipeline() as pipeline:
        for text in texts:
            queue(NOTIFICATIONS, connection).enqueue_call(
                jobs.send_notification, args=(*POOL.split(":"), text), retry=jobs.EMAIL_RETRY, pipeline=pipeline,
                job_id="notify-" + "".join(c if c.isalnum() else "_" for c in json.loads(text)["id"]), timeout=60)
        pipeline.execute()
    store.drop_outbox_head(POOL, len(texts))
    return len(texts)


def dispatch_batched(connection, store) -> int:
    from worker import jobs

    return jobs.dispatch_pool(connection, store, POOL)


KINDS = {  # what the bench measures: (how the outbox is handed to jobs, the worker that runs them)
    "forking": (dispatch_per_message, "forking"),
    "per-message": (dispatch_per_message, "in-process"),
    "batched": (dispatch_batched, "in-process"),
}


def worker_cpu(worker_kind: str) -> tuple[float, subprocess.CompletedProcess]:
    """Run a fresh burst worker process on what is queued: its CPU seconds, and the process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    worker = subprocess.run([sys.executable, "-c", WORKERS[worker_kind]], cwd=PROJECT, capture_output=True,
                            text=True, env=dict(os.environ, PYTHONPATH=str(PROJECT)), timeout=600)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime), worker


def run(kind: str, connection, store, sink: Sink, count: int, start_up_cpu: float) -> tuple[float, float, int]:
    """Dispatch the outbox, then run its send jobs with a fresh burst worker process: messages per
    second, from the first message received to the last (the process's start-up left out); the
    worker's CPU time per message in milliseconds (less `start_up_cpu`, an idle worker's);
    SMTP connections."""
    dispatch, worker_kind = KINDS[kind]
    assert dispatch(connection, store) == count
    before = sink.received
    sink.times.clear()
    sink.peers.clear()
    cpu, worker = worker_cpu(worker_kind)
    deadline = time.monotonic() + 30
    while sink.received - before < count and time.monotonic() < deadline:
        time.sleep(0.01)
    if sink.received - before != count:
        raise SystemExit(f"{sink.received - before} messages received of {count}:\n{worker.stderr[-3000:]}")
    return (count - 1) / (sink.times[-1] - sink.times[0]), 1000 * (cpu - start_up_cpu) / count, len(sink.peers)


def latency(store, settings, sink: Sink, per_second: int, seconds: int) -> str:
    """Register `per_second` people a second for `seconds` while the worker and the clock run;
    the confirmation emails' times from registration to the sink."""
    import statistics

    processes = [subprocess.Popen([sys.executable, "-c", f"from worker.cli import main; main(['{name}'])"],
                                  cwd=PROJECT, env=dict(os.environ, PYTHONPATH=str(PROJECT)),
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for name in ("worker", "clock")]
    registered: dict[str, float] = {}
    try:
        time.sleep(3)  # both started
        first = 100_000
        started = time.monotonic()
        for second in range(seconds):
            for number in range(first, first + per_second):
                register(store, settings, 1, number)
                registered[f"mail-{number}@example.org"] = time.monotonic()
            first += per_second
            time.sleep(max(0.0, started + second + 1 - time.monotonic()))
        deadline = time.monotonic() + 60
        while any(address not in sink.arrivals for address in registered) and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        for process in processes:
            process.terminate()
            process.wait()
    waits = sorted(sink.arrivals[address] - at for address, at in registered.items() if address in sink.arrivals)
    if len(waits) < len(registered):
        return f"{len(registered) - len(waits)} of {len(registered)} emails not received within a minute"
    return (f"{per_second} registrations/s for {seconds} s: registration to email median "
            f"{statistics.median(waits):.1f} s, 95th percentile {waits[int(0.95 * (len(waits) - 1))]:.1f} s, "
            f"worst {waits[-1]:.1f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=100, help="messages per measurement (at most 5000)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--forking", action="store_true", help="also RQ's forking worker (slow: 1 message/s)")
    parser.add_argument("--latency", type=int, metavar="R", help="instead: registrations a second, worker and clock "
                        "running; registration-to-email times")
    parser.add_argument("--seconds", type=int, default=20, help="with --latency: how long people register")
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
        from queue_service import reference
        from queue_service.settings import load_settings
        from queue_service.store import Store

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
        if arguments.latency:
            print(latency(store, settings, sink, arguments.latency, arguments.seconds))
            return 0
        print(f"{count} confirmation emails per measurement, SMTP sink on loopback, {os.cpu_count()} CPUs")
        kinds = (["forking"] if arguments.forking else []) + ["per-message", "batched"]
        start_up_cpu = min(worker_cpu("in-process")[0] for _ in range(2))  # nothing queued
        print(f"an idle worker's start-up: {1000 * start_up_cpu:.0f} ms CPU (left out of the figures below)")
        first = 0
        for number in range(1, arguments.rounds + 1):
            figures = {}
            for kind in kinds:
                register(store, settings, count, first)
                first += count
                figures[kind] = run(kind, connection, store, sink, count, start_up_cpu)
            print(f"round {number}: " + ", ".join(
                f"{kind} {rate:.1f}/s ({cpu:.1f} ms CPU/message, {connections} SMTP connections)"
                for kind, (rate, cpu, connections) in figures.items())
                + f"; ratio {figures['batched'][0] / figures['per-message'][0]:.1f}", flush=True)
    finally:
        controller.stop()
        server.terminate()
        server.wait()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
