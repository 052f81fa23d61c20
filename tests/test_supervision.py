"""`qs dev` supervises its processes: one that is killed is started again while the others
run on; Ctrl-C or SIGTERM stops all of them and the embedded Redis, keeping its data; a Redis
that is not up yet is waited for, by `qs dev`, `qs worker` and `qs clock` alike.

`qs dev` runs as a real subprocess on the embedded Redis, in a temporary data folder, with
the web on a free port. The processes of a run are told from other work on the machine by
their ancestry or their environment (its QS_DATA_DIR), never by their names alone.
"""

from __future__ import annotations

import datetime
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil
import pytest
import redis as redis_py
from conftest import RedisProcess, free_port

from queue_service.settings import load_settings
from queue_service.store import Store
from worker import jobs
from worker.queues import DRAWS, queue

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

PROJECT = Path(__file__).resolve().parent.parent
# Each Procfile entry, and words of the command line of the process it starts.
PROGRAMS = {"web": "gunicorn --config", "worker": "bin/qs worker", "clock": "bin/qs clock"}
DEMO_POOL = "01:first_request"


def clean_environment(data_dir: Path, **environment: str) -> dict[str, str]:
    """The test's environment without the developer's or the fixtures' QS_* settings."""
    kept = {name: value for name, value in os.environ.items()
            if not name.startswith("QS_") and name not in ("REDIS_URL", "PORT")}
    return kept | {"PYTHONPATH": str(PROJECT), "QS_DATA_DIR": str(data_dir)} | environment


def eventually(check, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if check():
                return True
        except (redis_py.ConnectionError, psutil.Error):
            pass
        time.sleep(0.1)
    return False


def alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


class DevRun:
    """`qs dev` started for one test, in a session of its own as a terminal's foreground job
    would be, with its output in a file; remembers every process of the run it saw."""

    def __init__(self, tmp_path: Path, **environment: str) -> None:
        self.port = free_port()
        self.data_dir = tmp_path / "var"
        self.log_path = tmp_path / "dev.log"
        self.environment = clean_environment(self.data_dir, QS_BIND=f"127.0.0.1:{self.port}",
                                             QS_CLOCK_INTERVAL_SECONDS="1", QS_WEB_WORKERS="1", **environment)
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "worker.cli", "dev"], cwd=PROJECT,
                                            env=self.environment, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        self.seen: dict[int, psutil.Process] = {}

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz", timeout=2) as answer:
                return answer.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def processes(self) -> list[psutil.Process]:
        """Everything `qs dev` runs now (its descendants), remembered for `leftovers`."""
        found = psutil.Process(self.process.pid).children(recursive=True)
        self.seen.update((process.pid, process) for process in found)
        return found

    def program(self, name: str) -> psutil.Process | None:
        """The process that `name`'s Procfile line started: the one running its command whose
        parent is `qs dev` or a shell `qs dev` started, never one of its own children (gunicorn's
        worker, RQ's work horse or scheduler). A child of a process being killed can still be
        listed while its parent, already without a command line, is not: counting only what hangs
        from `qs dev` or its shells leaves it out however the killing and the reading interleave."""
        shells = [child for child in psutil.Process(self.process.pid).children()
                  if _command(child)[:1] and _command(child)[0].endswith("sh")]
        launchers = {self.process.pid} | {shell.pid for shell in shells}
        found = []
        for process in self.processes():
            command = _command(process)
            try:
                if (command and PROGRAMS[name] in " ".join(command) and not command[0].endswith("sh")
                        and alive(process) and process.ppid() in launchers):
                    found.append(process)
            except psutil.Error:  # gone meanwhile
                continue
        return found[0] if len(found) == 1 else None

    def redis(self) -> redis_py.Redis:
        """A client of the embedded Redis, through the socket `qs dev` printed."""
        socket_path = re.search(r"Embedded Redis: unix://(\S+)", self.log()).group(1)
        return redis_py.Redis(unix_socket_path=socket_path)

    def stop(self, signum: int, seconds: float = 60) -> int:
        """Signal `qs dev` (SIGINT to its whole group, as Ctrl-C in a terminal) and wait for it."""
        if self.process.poll() is None:
            self.processes()
            if signum == signal.SIGINT:
                os.killpg(self.process.pid, signum)
            else:
                self.process.send_signal(signum)
        return self.process.wait(timeout=seconds)

    def leftovers(self) -> list[psutil.Process]:
        """Processes of this run still alive: those seen, any other with its data folder in its
        environment, and the embedded redis-server (which overwrites its environment, but works
        in the data folder)."""
        ours = dict(self.seen)
        for process in psutil.process_iter():
            try:
                if (process.environ().get("QS_DATA_DIR") == str(self.data_dir)
                        or Path(process.cwd()).is_relative_to(self.data_dir)):
                    ours[process.pid] = process
            except psutil.Error:
                continue
        return [process for process in ours.values() if alive(process)]

    def kill_leftovers(self) -> None:
        """After a failure: leave nothing of this run behind (its processes only)."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        for process in self.leftovers():
            process.kill()


def _command(process: psutil.Process) -> list[str]:
    try:
        return process.cmdline()
    except psutil.Error:  # gone meanwhile
        return []


def embedded_redis_pid(connection: redis_py.Redis) -> int:
    return int(connection.info("server")["process_id"])


def test_a_killed_process_is_started_again_while_the_others_run_on_then_sigterm_stops_all(tmp_path):
    dev = DevRun(tmp_path)
    try:
        assert eventually(dev.ready, 90), dev.log()
        connection = dev.redis()
        redis_pid = embedded_redis_pid(connection)
        store = Store(connection)
        for name in ("worker", "clock", "web"):
            running = {program: dev.program(program) for program in PROGRAMS}
            assert all(running.values()), (running, dev.log())
            killed_at = datetime.datetime.now(datetime.timezone.utc)
            running[name].kill()
            assert eventually(lambda: (new := dev.program(name)) is not None and new.pid != running[name].pid, 30), \
                dev.log()
            # The others ran on, untouched.
            assert all(dev.program(other).pid == process.pid for other, process in running.items() if other != name)
            assert re.search(rf"{name}\.1 (exited with code 137 \(SIGKILL\)|killed by SIGKILL) after [\d.]+ s; "
                             r"starting it again in 1 s", dev.log()), dev.log()
            # And it works again.
            if name == "worker":
                queue(DRAWS, connection).enqueue(jobs.heartbeat)
                assert eventually(lambda: store.last_worker_heartbeat() > killed_at, 30), dev.log()
            elif name == "clock":
                assert eventually(lambda: store.last_clock_tick() > killed_at, 30), dev.log()
            assert eventually(dev.ready, 30), dev.log()
        connection.close()
        assert dev.stop(signal.SIGTERM) == 0, dev.log()
    finally:
        dev.kill_leftovers()
    assert "SIGTERM received: stopping web.1, worker.1, clock.1" in dev.log()
    assert "Stopping the embedded Redis" in dev.log()
    assert not psutil.pid_exists(redis_pid) or not alive(psutil.Process(redis_pid)), "the embedded Redis runs on"
    assert dev.leftovers() == []


def test_ctrl_c_stops_every_process_and_the_embedded_redis_keeping_its_data(tmp_path):
    dev = DevRun(tmp_path)
    try:
        assert eventually(dev.ready, 90), dev.log()
        connection = dev.redis()
        redis_pid = embedded_redis_pid(connection)
        connection.close()
        started = dev.processes()
        assert dev.stop(signal.SIGINT) == 0, dev.log()
    finally:
        dev.kill_leftovers()
    assert len(started) >= 6  # the three processes, their shells, gunicorn's worker, RQ's scheduler
    assert "SIGINT received" in dev.log() and "Stopping the embedded Redis" in dev.log()
    assert not psutil.pid_exists(redis_pid) or not alive(psutil.Process(redis_pid)), "the embedded Redis runs on"
    assert dev.leftovers() == []
    # Its data stayed in the data folder: the next start finds the demo waiting list.
    from queue_service.connection import connect, stop_embedded

    settings = load_settings(environ={"QS_DATA_DIR": str(dev.data_dir)})
    again = connect(settings)
    try:
        assert Store(again).waiting_count(DEMO_POOL) == 40
    finally:
        stop_embedded(again)


def test_dev_waits_for_a_redis_that_is_not_up_yet(tmp_path):
    server = RedisProcess(tmp_path / "redis")
    server.folder.mkdir()
    dev = DevRun(tmp_path, QS_REDIS_URL=server.url)
    try:
        assert eventually(lambda: "dev: Redis unavailable" in dev.log(), 30), dev.log()
        time.sleep(1)
        assert dev.process.poll() is None, dev.log()
        server.start()
        assert eventually(dev.ready, 90), dev.log()
        assert "dev: Redis is back after" in dev.log()
        assert dev.stop(signal.SIGTERM) == 0, dev.log()
    finally:
        dev.kill_leftovers()
        server.kill()
    assert dev.leftovers() == []


def start_qs(command: str, tmp_path: Path, log_name: str, **environment: str) -> subprocess.Popen:
    with open(tmp_path / f"{log_name}.log", "wb") as log:
        return subprocess.Popen([sys.executable, "-m", "worker.cli", command], cwd=PROJECT,
                                env=clean_environment(tmp_path / "var", **environment),
                                stdout=log, stderr=subprocess.STDOUT)


def test_the_worker_and_the_clock_wait_for_a_redis_that_is_not_up_yet(tmp_path):
    server = RedisProcess(tmp_path / "redis")
    server.folder.mkdir()
    settings = {"QS_REDIS_URL": server.url, "QS_CLOCK_INTERVAL_SECONDS": "0.5"}
    processes = {name: start_qs(name.split("-")[0], tmp_path, name, **settings)
                 for name in ("worker", "clock", "clock-stopped-while-waiting")}
    logs = {name: tmp_path / f"{name}.log" for name in processes}
    try:
        for name in processes:
            process = name.split("-")[0]
            assert eventually(lambda: f"{process}: Redis unavailable" in logs[name].read_text(), 30), \
                logs[name].read_text()
        processes["clock-stopped-while-waiting"].send_signal(signal.SIGTERM)
        assert processes["clock-stopped-while-waiting"].wait(timeout=20) == 0
        assert "clock: stopped while waiting for Redis" in logs["clock-stopped-while-waiting"].read_text()
        assert processes["worker"].poll() is None and processes["clock"].poll() is None

        server.start()
        store = Store(redis_py.Redis.from_url(server.url))
        # The clock ticks and queues the heartbeat; the worker runs it.
        assert eventually(lambda: store.last_worker_heartbeat() is not None, 60), \
            logs["worker"].read_text() + logs["clock"].read_text()
        for name in ("worker", "clock"):
            processes[name].send_signal(signal.SIGTERM)
            assert processes[name].wait(timeout=30) == 0, logs[name].read_text()
            assert f"{name}: Redis is back after" in logs[name].read_text()
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
                process.wait()
        server.kill()


SUPERVISE = """
import sys
from pathlib import Path
from worker.supervisor import Supervisor, programs_of
procfile = Path(sys.argv[1])
Supervisor(programs_of(procfile, {"PATH": "/usr/bin:/bin"}, port=5000), cwd=procfile.parent).run()
"""


def test_a_process_that_keeps_exiting_waits_longer_each_time_and_the_others_are_left_alone(tmp_path):
    procfile = tmp_path / "Procfile"
    procfile.write_text("failing: echo starting; exit 3\nsteady: exec sleep 300\n")
    with open(tmp_path / "supervisor.log", "wb") as log:
        supervisor = subprocess.Popen([sys.executable, "-c", SUPERVISE, str(procfile)], cwd=PROJECT,
                                      env=clean_environment(tmp_path), stdout=log, stderr=subprocess.STDOUT)
    try:
        time.sleep(8)  # starts at 0, 1, 3 and 7 s
        steady = [child for child in psutil.Process(supervisor.pid).children(recursive=True)
                  if child.cmdline()[:2] == ["sleep", "300"]]
        supervisor.send_signal(signal.SIGTERM)
        assert supervisor.wait(timeout=30) == 0
    finally:
        if supervisor.poll() is None:
            supervisor.kill()
            supervisor.wait()
    output = (tmp_path / "supervisor.log").read_text()
    pauses = re.findall(r"failing\.1 exited with code 3 after [\d.]+ s; starting it again in (\d+) s", output)
    assert pauses[:3] == ["1", "2", "4"], output
    assert len(re.findall(r"failing\.1 +\| starting", output)) == output.count("failing.1 started") >= 4, output
    assert output.count("steady.1 started") == 1, output
    assert "SIGTERM received: stopping" in output and "steady.1 stopped" in output
    assert len(steady) == 1 and not alive(steady[0])
