"""A redis-server of a benchmark's own: Debian's (/usr/bin/redis-server, Redis 7.0 here) on a
free port, without persistence, in a temporary folder; stopped (and the folder removed) at the end.

Its default memory settings are those of a managed Redis a deployment may not configure;
a benchmark may change its settings (SLOWLOG), being the only client.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time

import redis

DEFAULT_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PrivateRedis:
    """`PrivateRedis(server).client`; call `stop()` at the end (or use it as a context manager)."""

    def __init__(self, server: str = DEFAULT_SERVER) -> None:
        self.folder = tempfile.mkdtemp(prefix="qs-bench-redis-")
        self.port = free_port()
        self.process = subprocess.Popen(
            [server, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.folder, "--save", "",
             "--appendonly", "no", "--daemonize", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        self.client = redis.Redis(port=self.port)
        for _ in range(200):
            try:
                self.client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        else:
            self.stop()
            raise RuntimeError(f"{server} did not start on port {self.port}")
        self.version = self.client.info("server")["redis_version"]

    def __enter__(self) -> PrivateRedis:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=60)
        shutil.rmtree(self.folder, ignore_errors=True)
