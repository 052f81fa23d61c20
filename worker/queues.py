"""The RQ queues, in the order a worker serves them, and what the web app reads about them
(their sizes, the buckets of the jobs' durations): the only module of the worker it imports.
"""

from __future__ import annotations

import redis
from rq import Queue

# Draws first: they run at announced times; then messages to applicants; then
# housekeeping.
DRAWS = "draws"
NOTIFICATIONS = "notifications"
DEFAULT = "default"
QUEUE_NAMES = (DRAWS, NOTIFICATIONS, DEFAULT)
# The queues whose jobs the worker runs in its own process, one after the other, rather than
# in a process forked for each (RQ's SimpleWorker's way): a message is sent in milliseconds
# where a fork costs tens, and messages come by thousands. Draws and housekeeping keep
# the isolation of their own process (memory, a crash, a timeout that kills).
IN_PROCESS_QUEUES = frozenset({NOTIFICATIONS})

# Upper bounds (seconds) of the job-duration histogram /metrics serves: from a
# heartbeat (milliseconds) to a draw of a million entrants (about a minute).
JOB_DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0)


def queue(name: str, connection: redis.Redis) -> Queue:
    return Queue(name, connection=connection)


def all_queues(connection: redis.Redis) -> list[Queue]:
    return [queue(name, connection) for name in QUEUE_NAMES]


def queue_sizes(connection: redis.Redis) -> dict[str, dict[str, int]]:
    """Jobs waiting, running and failed in each queue (for the dashboard and /metrics).

    Read without RQ's registry clean-up: a page or a scrape must not write.
    """
    sizes = {}
    for name in QUEUE_NAMES:
        found = queue(name, connection)
        sizes[name] = {
            "queued": found.count,
            "started": found.started_job_registry.get_job_count(cleanup=False),
            "failed": found.failed_job_registry.get_job_count(cleanup=False),
        }
    return sizes
