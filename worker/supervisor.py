"""`qs dev`'s supervisor: the Procfile's processes, each started again when it exits.

`qs dev` used to hand the Procfile to `honcho start`, which follows Foreman's
rule: when one process exits, stop all the others. A worker killed on a
developer's machine thus took the web and the clock with it. This module runs
the same Procfile, with honcho's parsing and output format, under a
supervisor's rules instead:

- a process that exits, whatever the reason, is started again after a pause
  (1 s, doubled each time it exits again within 10 s of its start, up to 30 s),
  with a line saying which one and why; the others run on;
- Ctrl-C (SIGINT) or SIGTERM stops them all: SIGTERM to each one's process
  group, SIGKILL to what is left after STOP_GRACE_SECONDS (at once on a
  second Ctrl-C), so that nothing outlives `qs dev`.

Production runs the plain Procfile under the platform's supervisor (systemd,
Kubernetes, a PaaS), which restarts each process on its own.
"""

from __future__ import annotations

import datetime
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from honcho.colour import get_colours
from honcho.environ import expand_processes, parse_procfile
from honcho.printer import Message, Printer
from honcho.process import Popen

# A process that exits is started again after this pause, doubled each time it
# exits again within STEADY_AFTER_SECONDS of its start, up to LONGEST_PAUSE_SECONDS.
FIRST_PAUSE_SECONDS = 1.0
LONGEST_PAUSE_SECONDS = 30.0
STEADY_AFTER_SECONDS = 10.0
# On Ctrl-C or SIGTERM, how long the processes have to stop before they are killed:
# gunicorn finishes its requests, RQ's worker its job, the clock its tick.
STOP_GRACE_SECONDS = 10.0
# The name on the supervisor's own lines.
SUPERVISOR = "supervisor"


@dataclass
class Program:
    """One Procfile entry, kept running as one process at a time."""

    name: str
    command: str
    environment: dict[str, str]
    colour: str
    process: subprocess.Popen | None = None
    output: threading.Thread | None = None
    started_at: float = 0.0
    start_at: float = 0.0  # when to start it (again)
    pause: float = FIRST_PAUSE_SECONDS  # before its next start, if it exits soon after this one

    @property
    def running(self) -> bool:
        """Its process, or anything of its process group that still holds its output, is alive."""
        return self.process is not None and (self.process.poll() is None or self.output.is_alive())


def programs_of(procfile: Path, environment: Mapping[str, str], port: int) -> list[Program]:
    """The Procfile's processes as honcho names them (web.1...), with honcho's PORT for each."""
    entries = parse_procfile(procfile.read_text()).processes
    colours = get_colours()
    return [Program(entry.name, entry.cmd, dict(environment) | entry.env, next(colours))
            for entry in expand_processes(entries, port=port)]


def describe_exit(return_code: int) -> str:
    """How a process ended, in words: "exited with code 1", "killed by SIGKILL"."""
    # Through `sh -c`, a command killed by signal N ends the shell with 128 + N.
    number = -return_code if return_code < 0 else return_code - 128 if 128 < return_code < 160 else 0
    try:
        name = signal.Signals(number).name if number else ""
    except ValueError:
        name = ""
    if return_code < 0:
        return f"killed by {name or f'signal {number}'}"
    return f"exited with code {return_code}" + (f" ({name})" if name else "")


class Supervisor:
    """Runs `programs` until SIGINT or SIGTERM, starting again each one that exits."""

    def __init__(self, programs: list[Program], cwd: Path, output=sys.stdout) -> None:
        self.programs = programs
        self.cwd = cwd
        self.lines: queue.Queue[Message] = queue.Queue()
        self.printer = Printer(output, width=max(len(SUPERVISOR), *(len(program.name) for program in programs)))
        self.stop_signal: str | None = None
        self.hurry = False

    def run(self) -> int:
        """Supervise until asked to stop, then stop everything; returns 0."""
        signal.signal(signal.SIGINT, self._request_stop)
        signal.signal(signal.SIGTERM, self._request_stop)
        while self.stop_signal is None:
            now = time.monotonic()
            for program in self.programs:
                if program.process is None:
                    if now >= program.start_at:
                        self._start(program)
                elif (return_code := program.process.poll()) is not None:
                    self._restart_later(program, return_code, now)
            self._print_lines(wait=0.1)
        self._stop_all()
        return 0

    def _request_stop(self, signum, frame) -> None:
        if self.stop_signal is None:
            self.stop_signal = signal.Signals(signum).name
        else:
            self.hurry = True  # a second Ctrl-C: kill now

    def _start(self, program: Program) -> None:
        program.process = Popen(program.command, env=program.environment, cwd=self.cwd)  # its own session
        program.started_at = time.monotonic()
        program.output = threading.Thread(target=self._read_output, args=(program, program.process), daemon=True)
        program.output.start()
        self.say(f"{program.name} started (pid={program.process.pid})")

    def _read_output(self, program: Program, process: subprocess.Popen) -> None:
        for line in iter(process.stdout.readline, b""):
            self.lines.put(Message("line", line, datetime.datetime.now(), program.name, program.colour))
        process.stdout.close()

    def _restart_later(self, program: Program, return_code: int, now: float) -> None:
        # What it left behind in its group (gunicorn's workers, RQ's scheduler) goes with it.
        _signal_group(program.process, signal.SIGKILL)
        lasted = now - program.started_at
        pause = program.pause if lasted < STEADY_AFTER_SECONDS else FIRST_PAUSE_SECONDS
        program.pause = min(pause * 2, LONGEST_PAUSE_SECONDS)  # if it exits again soon
        program.process = None
        program.start_at = now + pause
        self.say(f"{program.name} {describe_exit(return_code)} after {lasted:.1f} s; "
                 f"starting it again in {pause:.0f} s")

    def _stop_all(self) -> None:
        running = [program for program in self.programs if program.process is not None]
        self.say(f"{self.stop_signal} received: stopping {', '.join(p.name for p in running) or 'nothing'}")
        for program in running:
            _signal_group(program.process, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        killed = False
        while any(program.running for program in running):
            if not killed and (self.hurry or time.monotonic() > deadline):
                for program in running:
                    if program.running:
                        self.say(f"{program.name} did not stop: sending SIGKILL to its process group")
                        _signal_group(program.process, signal.SIGKILL)
                killed = True
            self._print_lines(wait=0.1)
        for program in running:
            _signal_group(program.process, signal.SIGKILL)  # an orphan that closed its output
            self.say(f"{program.name} stopped ({describe_exit(program.process.returncode)})")
        self._print_lines(wait=0)

    def _print_lines(self, wait: float) -> None:
        try:
            self.printer.write(self.lines.get(timeout=wait) if wait else self.lines.get_nowait())
            while True:
                self.printer.write(self.lines.get_nowait())
        except queue.Empty:
            pass

    def say(self, text: str) -> None:
        self.printer.write(Message("line", text, datetime.datetime.now(), SUPERVISOR, None))


def _signal_group(process: subprocess.Popen, signum: int) -> None:
    """Signal the process group `process` leads (honcho's Popen starts each in its own session)."""
    try:
        os.killpg(process.pid, signum)
    except ProcessLookupError:
        pass  # nothing left in it
