"""Registrations per second of the service beside the ceiling of its web stack, in one run.

    PYTHONPATH=$PWD .venv/bin/python bench/register.py --seconds 15 --rounds 2

Starts a private redis-server (config/redis.conf on a free port, files in a
temporary directory; or uses --redis-url, loopback only, with its own
database), loads the reference data and Ain's demo sites, then, for each
round, drives with the same `wrk -t2 -c16 -d<N>s` and bench/register.lua (a
distinct, valid applicant per request):

  ceiling     bench/ceiling.py: Flask + Flask-Limiter, validate, one hash and
              one set member;
  web         POST /api/v1/registrations, the worker and the clock stopped;
  web+worker  the same while the Procfile's other processes (the workers and
              the clock) run, sending every confirmation email to a loopback
              SMTP sink in this process (aiosmtpd); the emails of the runs
              before are sent first, so the worker sends those of the
              registrations made during the measurement (as many as it can).

Both web servers are gunicorn with the service's config/gunicorn.conf.py (2
sync workers, its access log), against the same Redis. The registration
limits (and the default one) are raised by environment for the service, as a
bench needs (one address registers thousands of people); the ceiling has one
limit of the same size. Prints req/s, latency p50/p99, status codes, the
ratios to the ceiling measured in the same round, and the CPU time each
registration cost the app's processes (gunicorn and its workers; with the
worker and clock in the web+worker line) and the Redis server. Requests per
second move with whatever else the machine runs; CPU per registration much
less: on a shared machine read the CPU ratio, and run several rounds.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
LUA = PROJECT / "bench" / "register.lua"
PATH = "/api/v1/registrations"
RAISED = "1000000000 per hour"
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
QS = [sys.executable, "-c", "from worker.cli import main; main()"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(url: str, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                answer.read()
                return
        except urllib.error.HTTPError:  # answered (a 503 of /healthz without the worker is an answer)
            return
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit(f"nothing answered at {url} within {seconds:.0f} s")
            time.sleep(0.2)


class SmtpSink:
    """A loopback SMTP server that accepts and counts every message (aiosmtpd)."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.received = 0
        self.lock = threading.Lock()
        sink = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                with sink.lock:
                    sink.received += 1
                return "250 OK"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)

    def __enter__(self):
        self.controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self.controller.stop()


class Processes:
    """Child processes, each in its own group, stopped in the reverse order of their start."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.running: list[subprocess.Popen] = []

    def start(self, name: str, argv: list[str], env: dict) -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "ab")
        process = subprocess.Popen(argv, cwd=PROJECT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        self.running.append(process)
        return process

    def stop(self, process: subprocess.Popen) -> None:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, 15)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, 9)
                process.wait()
        self.running.remove(process)

    def stop_all(self) -> None:
        for process in reversed(list(self.running)):
            self.stop(process)


def other_processes() -> list[tuple[str, list[str]]]:
    """The Procfile's processes but the web, `qs` run with this interpreter (PYTHONPATH kept)."""
    found = []
    for line in (PROJECT / "Procfile").read_text().splitlines():
        name, _, command = line.partition(":")
        if not command.strip() or name.strip() == "web" or line.lstrip().startswith("#"):
            continue
        argv = shlex.split(command)
        found.append((name.strip(), QS + argv[1:] if argv[0] == "qs" else argv))
    return found


def wait_for_mail_drained(redis_url: str, sink: SmtpSink, seconds: float = 900) -> tuple[float, int]:
    """Wait until every email written so far has reached the sink: the outboxes and the
    notifications queue empty, nothing received for a second. Returns the seconds waited and
    the emails received meanwhile."""
    import redis
    from rq import Queue

    from queue_service.store import Store
    from worker.queues import NOTIFICATIONS

    client = redis.Redis.from_url(redis_url)
    store, queue = Store(client), Queue(NOTIFICATIONS, connection=client)
    start = quiet_since = time.monotonic()
    first = last = sink.received
    while time.monotonic() - start < seconds:
        if sink.received != last:
            last, quiet_since = sink.received, time.monotonic()
        waiting = any(store.outbox_lengths().values()) or queue.count or queue.started_job_registry.count
        if not waiting and time.monotonic() - quiet_since > 1:
            return time.monotonic() - start, sink.received - first
        time.sleep(0.2)
    raise SystemExit(f"the worker had not sent the waiting emails after {seconds:.0f} s")


def drive(url: str, seconds: int) -> dict:
    """wrk -t2 -c16 against `url` with bench/register.lua: its RESULT line as a dict."""
    output = subprocess.run(
        ["wrk", "-t2", "-c16", f"-d{seconds}s", "--timeout", "10s", "-s", str(LUA), url],
        capture_output=True, text=True, check=True,
    ).stdout
    line = next(line for line in output.splitlines() if line.startswith("RESULT "))
    values = dict(item.split("=", 1) for item in line.split()[1:])
    statuses = dict(pair.split(":") for pair in values.pop("statuses").split(",") if pair)
    figures = {name: float(value) for name, value in values.items()}
    figures["statuses"] = {int(code): int(count) for code, count in sorted(statuses.items())}
    figures["per_second"] = figures["requests"] / figures["seconds"]
    figures["created_per_second"] = figures["statuses"].get(201, 0) / figures["seconds"]
    return figures


def cpu_seconds(processes: list[subprocess.Popen]) -> float:
    """User and system CPU seconds spent so far by `processes`, their children alive, and
    the children they have reaped (RQ's work horses)."""
    import psutil

    total = 0.0
    for process in processes:
        try:
            root = psutil.Process(process.pid)
            for each in (root, *root.children(recursive=True)):
                times = each.cpu_times()
                total += times.user + times.system + times.children_user + times.children_system
        except psutil.NoSuchProcess:
            continue
    return total


def drive_counting_cpu(url: str, seconds: int, servers: list[subprocess.Popen], redis_server) -> dict:
    """`drive`, with the CPU milliseconds per created registration of `servers` (the app's
    processes) and of the Redis server: figures that do not move with the machine's load
    as requests per second do."""
    import psutil

    servers_before, redis_before = cpu_seconds(servers), cpu_seconds([redis_server] if redis_server else [])
    own = psutil.Process()
    sink_before = sum(own.cpu_times()[:2])
    figures = drive(url, seconds)
    created = max(1, figures["statuses"].get(201, 0))
    figures["cpu_ms"] = (cpu_seconds(servers) - servers_before) * 1000 / created
    figures["redis_cpu_ms"] = (cpu_seconds([redis_server] if redis_server else []) - redis_before) * 1000 / created
    figures["sink_cpu_ms"] = (sum(own.cpu_times()[:2]) - sink_before) * 1000 / created
    return figures


def show(name: str, figures: dict, ceiling: dict | None, extra: str = "") -> None:
    ratio = f"  ratio {figures['created_per_second'] / ceiling['created_per_second']:.2f}" if ceiling else ""
    if "cpu_ms" in figures:
        ratio += (f"  CPU/registration: app {figures['cpu_ms']:.2f} ms, Redis {figures['redis_cpu_ms']:.2f} ms"
                  + (f" (app: ceiling's x{figures['cpu_ms'] / ceiling['cpu_ms']:.2f})" if ceiling else "")
                  + (f", this bench's SMTP sink {figures['sink_cpu_ms']:.2f} ms" if figures["sink_cpu_ms"] >= 0.01 else ""))
    errors = int(sum(figures[k] for k in ("errors_connect", "errors_read", "errors_write", "errors_timeout")))
    print(f"{name:<11} {figures['created_per_second']:7.0f} created/s  ({figures['per_second']:.0f} req/s)  "
          f"p50 {figures['p50_ms']:5.1f} ms  p99 {figures['p99_ms']:5.1f} ms  "
          f"statuses {figures['statuses']}{'  socket errors ' + str(errors) if errors else ''}{ratio}{extra}",
          flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=15, help="length of each wrk run (at most 300)")
    parser.add_argument("--rounds", type=int, default=1, help="how many times to measure the three, in turn")
    parser.add_argument("--redis-url", default="", help="a loopback Redis to use instead of a private one "
                        "(its database must be empty: the run writes there)")
    parser.add_argument("--no-worker", action="store_true", help="skip the web+worker measurement")
    arguments = parser.parse_args()
    seconds = min(max(arguments.seconds, 1), 300)
    if shutil.which("wrk") is None:
        parser.error("wrk is not installed (Debian: apt-get install wrk)")

    work = Path(tempfile.mkdtemp(prefix="qs-bench-register-"))
    processes = Processes(work)
    try:
        redis_server = None  # the private one, whose CPU is counted
        if arguments.redis_url:
            redis_url = arguments.redis_url
            if urllib.parse.urlsplit(redis_url).hostname not in LOOPBACK_HOSTS:
                parser.error("--redis-url: this benchmark writes; give a Redis on this machine")
        else:
            port = free_port()
            (work / "redis").mkdir()
            redis_server = processes.start("redis", ["redis-server", str(PROJECT / "config" / "redis.conf"), "--port", str(port),
                                      "--dir", str(work / "redis"), "--daemonize", "no"], dict(os.environ))
            redis_url = f"redis://127.0.0.1:{port}/0"
            import redis

            deadline = time.monotonic() + 10
            while True:
                try:
                    redis.Redis.from_url(redis_url).ping()
                    break
                except redis.ConnectionError:
                    if time.monotonic() > deadline:
                        raise SystemExit("the private redis-server did not start")
                    time.sleep(0.1)

        with SmtpSink() as sink:
            web_port, ceiling_port = free_port(), free_port()
            environment = dict(os.environ) | {
                "PYTHONPATH": str(PROJECT),
                "QS_REDIS_URL": redis_url,
                "QS_DATA_DIR": str(work / "data"),
                "QS_BIND": f"127.0.0.1:{web_port}",
                "QS_LOG_LEVEL": "WARNING",
                "QS_MAIL_BACKEND": "smtp",
                "QS_SMTP_HOST": "127.0.0.1",
                "QS_SMTP_PORT": str(sink.port),
                "QS_SMTP_SECURITY": "none",
                **{name: RAISED for name in ("QS_RATE_LIMIT_DEFAULT", "QS_RATE_LIMIT_REGISTRATION",
                                             "QS_RATE_LIMIT_REGISTRATION_UNPROVEN",
                                             "QS_RATE_LIMIT_REGISTRATION_EMAIL")},
            }
            for command in ("load-reference", "load-demo"):
                subprocess.run(QS + [command], cwd=PROJECT, env=environment, check=True, stdout=subprocess.DEVNULL)
            gunicorn = [sys.executable, "-m", "gunicorn", "--config", str(PROJECT / "config" / "gunicorn.conf.py")]
            web_server = processes.start("web", gunicorn + ["web:create_app()"], environment)
            ceiling_server = processes.start("ceiling", gunicorn + ["--chdir", str(PROJECT / "bench"), "ceiling:create_app()"],
                            environment | {"QS_BIND": f"127.0.0.1:{ceiling_port}", "CEILING_REDIS_URL": redis_url})
            wait_for(f"http://127.0.0.1:{web_port}/healthz")
            wait_for(f"http://127.0.0.1:{ceiling_port}/healthz")
            web_url, ceiling_url = f"http://127.0.0.1:{web_port}{PATH}", f"http://127.0.0.1:{ceiling_port}{PATH}"
            print(f"wrk -t2 -c16 -d{seconds}s -s bench/register.lua; gunicorn, 2 sync workers each; "
                  f"Redis {redis_url}; {os.cpu_count()} CPUs", flush=True)
            for number in range(1, arguments.rounds + 1):
                print(f"round {number}")
                drive(ceiling_url, 2)  # warm both up: imports, connections, scripts loaded
                drive(web_url, 2)
                ceiling = drive_counting_cpu(ceiling_url, seconds, [ceiling_server], redis_server)
                show("ceiling", ceiling, None)
                web = drive_counting_cpu(web_url, seconds, [web_server], redis_server)
                show("web", web, ceiling)
                if arguments.no_worker:
                    continue
                started = [processes.start(name, argv, environment) for name, argv in other_processes()]
                # The emails of the runs before (the web's) are sent first: the line measures the
                # web while the worker sends the emails of the registrations made meanwhile.
                waited, backlog = wait_for_mail_drained(redis_url, sink)
                print(f"(the worker sent the {backlog} emails waiting from the runs before in {waited:.0f} s)",
                      flush=True)
                before = sink.received
                with_worker = drive_counting_cpu(web_url, seconds, [web_server, *started], redis_server)
                sent = sink.received - before
                for process in started:
                    processes.stop(process)
                show("web+worker", with_worker, ceiling,
                     f"  mails {sent} ({sent / with_worker['seconds']:.0f}/s)")
    finally:
        processes.stop_all()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
