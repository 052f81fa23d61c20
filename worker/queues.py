"""The RQ queues, in the order a worker serves them."""

from __future__ import annotations

import redis
from rq import Queue

# Draws first: they run at announced times; then messages to applicants; then
# housekeeping.
DRAWS = "draws"
NOTIFICATIONS = "notifications"
DEFAULT = "default"
QUEUE_NAMES = (DRAWS, NOTIFICATIONS, DEFAULT)


def queue(name: str, connection: redis.Redis) -> Queue:
    return Queue(name, connection=connection)


def all_queues(connection: redis.Redis) -> list[Queue]:
    return [queue(name, connection) for name in QUEUE_NAMES]
