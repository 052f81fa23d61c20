"""The RQ jobs. Each one takes ids, calls queue_service, and logs.

A job reaches Redis through the connection of the job that runs it, and reads
the settings from the worker's environment, so tests can run jobs in-process
with SimpleWorker. Arguments are opaque ids, never personal data.
"""

from __future__ import annotations

import datetime
import logging

import redis
from rq import Retry, get_current_job

from queue_service import mail, registration
from queue_service.settings import load_settings
from queue_service.store import Store
from queue_service.tokens import RegistrationKey
from worker.queues import NOTIFICATIONS, queue

log = logging.getLogger(__name__)

# A message that could not be handed to the SMTP server is tried again after
# 10 s, 30 s, 1 min, 5 min and 15 min, then left in RQ's failed jobs.
EMAIL_RETRY = Retry(max=5, interval=[10, 30, 60, 300, 900])


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def heartbeat() -> str:
    """Record that a worker is taking jobs: /readyz reads it."""
    job = get_current_job()
    now = _now()
    Store(job.connection).record_worker_heartbeat(now)
    log.debug("job %s: worker heartbeat at %s", job.id, now.isoformat())
    return now.isoformat()


def send_registration_email(prefecture: str, procedure: str, registration_id: str, kind: str) -> str:
    """Send the message of `kind` about one registration (see worker/emails.py)."""
    from worker import emails

    job = get_current_job()
    store = Store(job.connection)
    found = store.registration(RegistrationKey(prefecture, procedure, registration_id))
    if found is None:
        log.info("job %s: registration gone (purged); %s message not sent", job.id, kind)
        return "gone"
    settings = load_settings()
    mail.send(settings, emails.compose(settings, store, found, kind, _now()))
    log.info("job %s: %s message sent for %s", job.id, kind, found.ref)
    return "sent"


def enqueue_registration_email(connection: redis.Redis, key: RegistrationKey, kind: str) -> None:
    queue(NOTIFICATIONS, connection).enqueue(
        send_registration_email, key.prefecture, key.procedure, key.registration_id, kind, retry=EMAIL_RETRY
    )


def purge_registrations() -> int:
    """Delete unconfirmed registrations past their deadline and closed ones past retention."""
    job = get_current_job()
    settings = load_settings()
    retention = datetime.timedelta(days=settings.closed_retention_days)
    deleted = registration.purge(Store(job.connection), _now(), retention)
    log.info("job %s: %d registration(s) purged", job.id, deleted)
    return deleted
