"""The RQ jobs. Each one takes ids, calls queue_service, and logs.

A job reaches Redis through the connection of the job that runs it, and reads
the settings from the worker's environment, so tests can run jobs in-process
with SimpleWorker. Arguments are opaque ids, never personal data.
"""

from __future__ import annotations

import datetime
import functools
import logging
import smtplib
import time

import redis
from rq import Retry, get_current_job

from queue_service import draws, mail, registration
from queue_service.settings import load_settings
from queue_service.store import Store
from queue_service.tokens import RegistrationKey
from worker.queues import DRAWS, NOTIFICATIONS, queue

log = logging.getLogger(__name__)

# A message that could not be handed to the SMTP server is tried again after
# 10 s, 30 s, 1 min, 5 min and 15 min, then left in RQ's failed jobs.
EMAIL_RETRY = Retry(max=5, interval=[10, 30, 60, 300, 900])


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


# Upper bounds (seconds) of the job-duration histogram /metrics serves: from a
# heartbeat (milliseconds) to a draw of a million entrants (about a minute).
JOB_DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0)


def timed(job_function):
    """Record how long each run of the job takes, in Redis (any worker, any host; see web/metrics.py).

    Failed runs are timed too; RQ's failed-job registry says which failed.
    """

    @functools.wraps(job_function)
    def run(*arguments, **options):
        started = time.perf_counter()
        try:
            return job_function(*arguments, **options)
        finally:
            elapsed = time.perf_counter() - started
            job = get_current_job()
            if job is not None:
                try:
                    Store(job.connection).record_job_duration(job_function.__name__, elapsed, JOB_DURATION_BUCKETS)
                except redis.RedisError:
                    log.warning("job %s: its duration could not be recorded", job.id)

    return run


@timed
def heartbeat() -> str:
    """Record that a worker is taking jobs: /readyz reads it."""
    job = get_current_job()
    now = _now()
    Store(job.connection).record_worker_heartbeat(now)
    log.debug("job %s: worker heartbeat at %s", job.id, now.isoformat())
    return now.isoformat()


@timed
def send_registration_email(
    prefecture: str, procedure: str, registration_id: str, kind: str, address_print: str = ""
) -> str:
    """Send the message of `kind` about one registration (see worker/emails.py).

    An email-change message names the requested address by its keyed hash: if
    the applicant asked for another one since, or already confirmed it, the
    message is no longer due.
    """
    from worker import emails

    job = get_current_job()
    store = Store(job.connection)
    found = store.registration(RegistrationKey(prefecture, procedure, registration_id))
    if found is None:
        log.info("job %s: registration gone (purged); %s message not sent", job.id, kind)
        return "gone"
    settings = load_settings()
    if kind == "email_change":
        pending = found.pending_email
        if not pending or registration.email_print(settings.identity_key.encode(), found.key.pool, pending) != address_print:
            log.info("job %s: email change for %s superseded; message not sent", job.id, found.ref)
            return "superseded"
    try:
        mail.send(settings, emails.compose(settings, store, found, kind, _now()))
    except (OSError, smtplib.SMTPException) as error:
        # The SMTP error may quote the address: keep it out of logs and of RQ's failed jobs.
        code = getattr(error, "smtp_code", None) or type(error).__name__
        raise MailNotSent(f"{kind} message for {found.ref} not sent ({code})") from None
    log.info("job %s: %s message sent for %s", job.id, kind, found.ref)
    return "sent"


class MailNotSent(Exception):
    """A message could not be handed to the SMTP server (RQ retries the job)."""


def enqueue_registration_email(connection: redis.Redis, key: RegistrationKey, kind: str, address_print: str = "") -> None:
    queue(NOTIFICATIONS, connection).enqueue(
        send_registration_email, key.prefecture, key.procedure, key.registration_id, kind, address_print,
        retry=EMAIL_RETRY,
    )


@timed
def purge_registrations() -> int:
    """Delete unconfirmed registrations past their deadline and closed ones past retention."""
    job = get_current_job()
    settings = load_settings()
    retention = datetime.timedelta(days=settings.closed_retention_days)
    deleted = registration.purge(Store(job.connection), _now(), retention)
    log.info("job %s: %d registration(s) purged", job.id, deleted)
    return deleted


@timed
def run_draw(prefecture: str, procedure: str, draw_id: str) -> str:
    """Run one draw to the end (freeze, draw, commit, publish); safe to run again after any crash."""
    job = get_current_job()
    state = draws.run(Store(job.connection), f"{prefecture}:{procedure}", draw_id, _now())
    log.info("job %s: draw %s is %s", job.id, draw_id, state)
    if state == draws.DrawState.HELD.value:
        log.error("job %s: draw %s is HELD by the bias check: staff must review it before publication", job.id, draw_id)
    return state


@timed
def freeze_draw(prefecture: str, procedure: str, draw_id: str) -> str:
    """Fix a draw's entrants at its cutoff (the draw job draws later); safe to run again."""
    job = get_current_job()
    state = draws.freeze_at_cutoff(Store(job.connection), f"{prefecture}:{procedure}", draw_id, _now())
    log.info("job %s: draw %s is %s", job.id, draw_id, state)
    return state


# A draw of a million entrants takes seconds; give it room. A failed step is
# tried again: it resumes from the stored state (the steps are idempotent).
DRAW_JOB_TIMEOUT = 1800
DRAW_RETRY = Retry(max=3, interval=[60, 300, 900])


def enqueue_draw_step(pipeline, connection: redis.Redis, step, job_prefix: str, due: draws.DueDraw) -> None:
    """Queue a draw's job (its freeze or its run) inside `pipeline`, the transaction that claims it."""
    queue(DRAWS, connection).enqueue_call(
        step,
        args=(due.prefecture, due.procedure, due.draw_id),
        job_id=f"{job_prefix}-{due.draw_id}",
        timeout=DRAW_JOB_TIMEOUT,
        retry=DRAW_RETRY,
        pipeline=pipeline,
    )


def claim_and_enqueue_freeze(connection: redis.Redis, due: draws.DueDraw, now: datetime.datetime) -> bool:
    """Queue the freeze of an announced draw whose cutoff has passed, once."""
    return Store(connection).claim_draw_run(
        due.pool,
        due.draw_id,
        now,
        also=lambda pipeline: enqueue_draw_step(pipeline, connection, freeze_draw, "freeze", due),
        marker="freeze_claimed_at",
    )


def claim_and_enqueue(connection: redis.Redis, schedule, due: draws.DueDraw, now: datetime.datetime) -> bool:
    """Announce the draw if it was not (a late announcement is recorded as such), then claim its
    run and queue its job, both or neither; False if the run was already claimed."""
    store = Store(connection)
    draws.announce(store, schedule, due, now)
    return store.claim_draw_run(
        due.pool, due.draw_id, now, also=lambda pipeline: enqueue_draw_step(pipeline, connection, run_draw, "draw", due)
    )
