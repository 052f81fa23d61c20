"""The RQ jobs. Each one takes ids, calls queue_service, and logs.

A job reaches Redis through the connection of the job that runs it, so the
worker's one connection serves every job and tests can run jobs in-process
with SimpleWorker.
"""

from __future__ import annotations

import datetime
import logging

from rq import get_current_job

from queue_service.store import Store

log = logging.getLogger(__name__)


def heartbeat() -> str:
    """Record that a worker is taking jobs: /readyz reads it."""
    job = get_current_job()
    now = datetime.datetime.now(datetime.timezone.utc)
    Store(job.connection).record_worker_heartbeat(now)
    log.debug("job %s: worker heartbeat at %s", job.id, now.isoformat())
    return now.isoformat()
