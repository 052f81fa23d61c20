"""Flask extensions: created unbound here, or per app where they keep per-app state."""

from __future__ import annotations

import redis
from flask import Flask
from flask_babel import Babel
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_wtf.csrf import CSRFProtect

from queue_service.connection import SOCKET_TIMEOUT_SECONDS
from queue_service.settings import SENTINEL_SCHEME, Settings
from queue_service.store import RATE_LIMIT_PREFIX

babel = Babel()
csrf = CSRFProtect()


def init_limiter(app: Flask, settings: Settings, connection: redis.Redis) -> Limiter:
    """A limiter of this app's own (a shared one would keep the first app's settings).

    Counters live in the service's Redis. If Redis is down the limiter raises
    redis.ConnectionError, and the request fails with 503 and Retry-After (see
    errors.py) rather than pass unlimited. Neither of Flask-Limiter's storage
    options fits: `swallow_errors` would let every request through unlimited
    (and log a traceback each time), and `in_memory_fallback_enabled` would
    count per process, forgetting the counts, while every view that reads or
    writes the store fails anyway; a 503 is the honest answer.
    The client address comes from the socket, or from X-Forwarded-For once
    ProxyFix has applied the configured number of trusted proxies.

    Its headers are off: it would put its own Retry-After on every answer,
    overriding the one of a refusal that is not its own (a slowed staff
    sign-in). Its 429s get their Retry-After in errors.py.

    The counters live in the queues' Redis (`connection`); behind sentinels, the
    limits library follows the master itself (its redis+sentinel:// storage),
    reading and writing the master only: a replica's counts lag.
    """
    limiter = Limiter(
        key_func=get_remote_address,
        app=app,
        default_limits=[settings.rate_limit_default],
        **_storage(settings, connection),
        key_prefix=RATE_LIMIT_PREFIX,
        strategy="fixed-window",
        headers_enabled=False,
        swallow_errors=False,
    )
    app.extensions["queue_service_limiter"] = limiter
    return limiter


def _storage(settings: Settings, connection: redis.Redis) -> dict:
    """Flask-Limiter's storage: the queues' Redis, through `connection`'s pool when it is one
    server; through the sentinels of QS_QUEUE_REDIS_URL (or QS_REDIS_URL) when they name it."""
    url = settings.queue_redis_url or settings.redis_url
    if url.startswith(SENTINEL_SCHEME):
        timeouts = {"socket_timeout": SOCKET_TIMEOUT_SECONDS, "socket_connect_timeout": SOCKET_TIMEOUT_SECONDS}
        return {"storage_uri": url, "storage_options": {"use_replicas": False, "sentinel_kwargs": timeouts, **timeouts}}
    return {"storage_uri": "redis://", "storage_options": {"connection_pool": connection.connection_pool}}
