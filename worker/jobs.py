"""The RQ jobs. Each one takes ids, calls queue_service, and logs.

A job reaches the queues through the connection of the job that runs it, and
the data through the worker process's data connection (`use_data_connection`:
the same Redis unless QS_QUEUE_REDIS_URL is set), and reads the settings from
the worker's environment, so tests can run jobs in-process with SimpleWorker.
Arguments are opaque ids, never personal data.
"""

from __future__ import annotations

import datetime
import functools
import json
import logging
import re
import smtplib
import time

import redis
from rq import Retry, get_current_job
from rq.timeouts import BaseTimeoutException

from queue_service import draws, offers, registration, simulator
from queue_service.errors import SmsNotSent
from queue_service.notifications import mail, sms
from queue_service.pools import PoolId
from queue_service.registration.tokens import RegistrationKey
from queue_service.settings import load_settings
from queue_service.store import Store
from worker.outage import FIRST_WAIT_SECONDS, LONGEST_WAIT_SECONDS, UNREACHABLE
from worker.queues import DRAWS, JOB_DURATION_BUCKETS, NOTIFICATIONS, queue

log = logging.getLogger(__name__)

# A message that could not be handed to the SMTP server is tried again after
# 10 s, 30 s, 1 min, 5 min and 15 min, then left in RQ's failed jobs.
EMAIL_RETRY = Retry(max=5, interval=[10, 30, 60, 300, 900])


# The data's Redis of this worker process when it is not the queues' (a cluster,
# say): set by the worker at its start (run_worker), or by a test running jobs.
_data_connection: list[redis.Redis] = []


def use_data_connection(connection: redis.Redis | None) -> None:
    """Let the jobs of this process reach the data through `connection` (None: the job's own)."""
    _data_connection[:] = [connection] if connection is not None else []


def _store(job) -> Store:
    """The store of the data, for a job of this process."""
    return Store(_data_connection[0] if _data_connection else job.connection)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


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
                    _store(job).record_job_duration(job_function.__name__, elapsed, JOB_DURATION_BUCKETS)
                except redis.RedisError:
                    log.warning("job %s: its duration could not be recorded", job.id)

    return run


@timed
def heartbeat() -> str:
    """Record that a worker is taking jobs: /readyz reads it."""
    job = get_current_job()
    now = _now()
    _store(job).record_worker_heartbeat(now)
    log.debug("job %s: worker heartbeat at %s", job.id, now.isoformat())
    return now.isoformat()


@timed
def send_registration_email(
    prefecture: str, procedure: str, registration_id: str, kind: str, address_print: str = ""
) -> str:
    """Compatibility only: a job queued by an older version, whose pages queued the emails
    about a registration themselves. Pages now write them to the outbox (send_notification).

    Sent as the outbox message it stands for (its id named after this job's, so
    that a retry finds it delivered), with the same rules. Remove it once no web
    process of an older version runs and RQ holds no such job.
    """
    job = get_current_job()
    message = {"id": f"{kind}:{registration_id}:job-{job.id}", "kind": kind, "registration_id": registration_id}
    if address_print:
        message["address_print"] = address_print
    return _deliver(job, _store(job), PoolId.of(prefecture, procedure), [message])[0]


class MailNotSent(Exception):
    """A message could not be handed to the SMTP server (RQ retries the job)."""


@timed
def purge_registrations() -> int:
    """Delete unconfirmed registrations past their deadline and closed ones past retention."""
    job = get_current_job()
    settings = load_settings()
    retention = datetime.timedelta(days=settings.closed_retention_days)
    deleted = registration.purge(_store(job), _now(), retention)
    log.info("job %s: %d registration(s) purged", job.id, deleted)
    return deleted


@timed
def run_draw(prefecture: str, procedure: str, draw_id: str) -> str:
    """Run one draw to the end (freeze, draw, commit, publish); safe to run again after any crash."""
    job = get_current_job()
    store = _store(job)
    timing = offers.OfferTiming.from_settings(load_settings())
    state = draws.run(store, PoolId.of(prefecture, procedure), draw_id, _now(), timing)
    log.info("job %s: draw %s is %s", job.id, draw_id, state.value)
    dispatch_pool(job.connection, store, PoolId.of(prefecture, procedure))  # the winners hear of it now
    if state is draws.DrawState.HELD:
        log.error("job %s: draw %s is HELD by the bias check: staff must review it before publication", job.id, draw_id)
    return state.value


@timed
def freeze_draw(prefecture: str, procedure: str, draw_id: str) -> str:
    """Fix a draw's entrants at its cutoff (the draw job draws later); safe to run again."""
    job = get_current_job()
    timing = offers.OfferTiming.from_settings(load_settings())
    state = draws.freeze_at_cutoff(_store(job), PoolId.of(prefecture, procedure), draw_id, _now(), timing)
    log.info("job %s: draw %s is %s", job.id, draw_id, state.value)
    return state.value


# A draw of a million entrants takes seconds; give it room. A failed step is
# tried again: it resumes from the stored state (the steps are idempotent).
DRAW_JOB_TIMEOUT = 1800
DRAW_RETRY = Retry(max=3, interval=[60, 300, 900])


def enqueue_draw_step(pipeline, connection: redis.Redis, step, job_prefix: str, due: draws.DueDraw) -> None:
    """Queue a draw's job (its freeze or its run) inside `pipeline`, the transaction that claims it,
    or at once when the queues are on another Redis (`pipeline` None): the claim follows, and a
    claim that fails (another clock's, or a crash before it) leaves a job queued twice, which
    changes nothing twice (the draw is fenced and each step checks the draw's state)."""
    queue(DRAWS, connection).enqueue_call(
        step,
        args=(due.prefecture, due.procedure, due.draw_id),
        job_id=f"{job_prefix}-{due.draw_id}",
        timeout=DRAW_JOB_TIMEOUT,
        retry=DRAW_RETRY,
        pipeline=pipeline,
    )


def _in_claim(store: Store, connection: redis.Redis, pipeline):
    """The claim's transaction when the queues share the data's Redis; else None (queue at once)."""
    return pipeline if store.redis is connection else None


def claim_and_enqueue_freeze(
    connection: redis.Redis, due: draws.DueDraw, now: datetime.datetime, store: Store | None = None
) -> bool:
    """Queue the freeze of an announced draw whose cutoff has passed, once. `store`: the data's
    (by default on `connection`, the queues' Redis)."""
    store = store or Store(connection)
    return store.claim_draw_run(
        due.pool,
        due.draw_id,
        now,
        also=lambda pipeline: enqueue_draw_step(_in_claim(store, connection, pipeline), connection, freeze_draw,
                                                "freeze", due),
        marker="freeze_claimed_at",
    )


def claim_and_enqueue(
    connection: redis.Redis, schedule, due: draws.DueDraw, now: datetime.datetime, store: Store | None = None
) -> bool:
    """Announce a due draw if it was not (caught up after downtime: its entries close at this
    announcement, DueDraw.entry_times), then claim its run and queue its job, both or neither;
    False if the run was already claimed."""
    store = store or Store(connection)
    draws.announce(store, schedule, due, now)
    return _claim_run(connection, store, due, now)


def _claim_run(connection: redis.Redis, store: Store, due: draws.DueDraw, now: datetime.datetime) -> bool:
    """Claim the run of an announced draw and queue its job, both or neither; False if already claimed."""
    return store.claim_draw_run(
        due.pool, due.draw_id, now,
        also=lambda pipeline: enqueue_draw_step(_in_claim(store, connection, pipeline), connection, run_draw, "draw",
                                                due),
    )


def start_draw_now(
    connection: redis.Redis, schedule, due: draws.DueDraw, now: datetime.datetime, settings, store: Store | None = None
) -> bool:
    """Start a draw an admin runs now (draws.draw_now): the one way to start it, whoever asks
    (the staff page, the staff API).

    The draw is announced at once, its seed's commitment public; its entries
    close `settings.run_now_entry_delay` later (everyone waiting then enters)
    and it runs then: the clock queues its job once that time has come
    (`claim_draw_to_run`), or this call at once when there is no delay. True if
    this call started it; False if the draw exists (the same confirmation sent
    twice, or a draw of that minute already), and nothing changes.
    """
    if due.trigger is not draws.Trigger.ADMIN:
        raise ValueError(f"{due.draw_id} is a scheduled draw: the clock runs it")
    store = store or Store(connection)
    if not draws.announce(store, schedule, due, now, entry_delay=settings.run_now_entry_delay):
        return False
    if store.draw(due.pool, due.draw_id).cutoff_at <= now:  # no delay: its entries closed at the announcement
        _claim_run(connection, store, due, now)
    return True


def claim_draw_to_run(
    connection: redis.Redis, pool: str, draw_id: str, now: datetime.datetime, store: Store | None = None
) -> bool:
    """Claim the run of a draw run now whose entries have closed (the clock finds it among the
    pool's draws to run) and queue its job, once; False if already claimed."""
    store = store or Store(connection)
    record = store.draw(pool, draw_id)
    if record is None:
        return store.claim_draw_run(pool, draw_id, now)  # no such draw: only takes it off the list
    due = draws.DueDraw(record.prefecture, record.procedure, draw_id, record.scheduled_at, record.trigger)
    return _claim_run(connection, store, due, now)  # (the job needs only its pool and id)


# Messages: the outboxes, handed to send jobs ----------------------------------------

# Messages are read from a pool's outbox this many at a time.
DISPATCH_BATCH = 500
# A send job carries up to this many messages of one pool: its RQ bookkeeping (about 25
# Redis round trips), its reads and its SMTP connection are paid once for them all, not
# once a message. Sent at about 100 a second, a batch holds a message back by one second at most.
SEND_BATCH = 100
# A batch's timeout (RQ: 180 s): a hundred confirmation emails take about a second, each email
# and SMS is bounded by its own timeout (smtp_timeout_seconds...), and an SMTP server that
# cannot be reached fails the rest of the batch at once. A batch cut off by it is retried, and
# sends only what it had not sent. Run in the worker's process (queues.IN_PROCESS_QUEUES), a
# job's registration is not renewed while it runs: it lasts this long, then the job is found
# abandoned if its worker died (worker/outage.py): kept short for that.
SEND_BATCH_TIMEOUT = 60


@timed
def send_notifications(prefecture: str, procedure: str, message_texts: list[str]) -> dict[str, int]:
    """Send a batch of one pool's outbox messages: about a registration by email, about an
    offer or a booking by email and by SMS (queue_service.notifications.messages.outgoing),
    every email over one SMTP connection.

    Each channel's delivery is recorded as soon as it is tried; a channel
    already sent (or refused for good) is never sent again, so a retried or
    duplicated job sends only what is still due. Every message is tried; then,
    if any failed, the job raises so that RQ tries again (EMAIL_RETRY), the
    failures recorded for staff. Returns how many messages ended each way
    ("sent", "gone", "superseded").
    """
    job = get_current_job()
    outcomes = _deliver(job, _store(job), PoolId.of(prefecture, procedure),
                        [json.loads(text) for text in message_texts])
    return {outcome: outcomes.count(outcome) for outcome in sorted(set(outcomes))}


@timed
def send_notification(prefecture: str, procedure: str, message_text: str) -> str:
    """Compatibility only: one outbox message, as an older version's dispatcher queued it
    (send_notifications now takes them in batches). Remove it once RQ holds no such job."""
    job = get_current_job()
    return _deliver(job, _store(job), PoolId.of(prefecture, procedure), [json.loads(message_text)])[0]


def _deliver(job, store: Store, pool: PoolId, batch: list[dict]) -> list[str]:
    """Each message's outcome: "sent" once every channel is; "gone" if the registration was
    purged, "superseded" if the message is no longer due (registration.message_due). Raises
    MailNotSent once every message was tried, if any channel failed."""
    from queue_service.notifications import messages

    settings = load_settings()
    secret = settings.identity_key.encode()
    found = store.registrations([RegistrationKey(*pool.parts, message["registration_id"]) for message in batch])
    outcomes, due = [], []
    for message, registered in zip(batch, found):
        if registered is None:
            log.info("job %s: registration gone (purged); %s message not sent", job.id, message["kind"])
            outcomes.append("gone")
        elif not registration.message_due(registered, message, secret):
            log.info("job %s: %s message for %s superseded; not sent", job.id, message["kind"], registered.ref)
            outcomes.append("superseded")
        else:
            outcomes.append("sent")
            due.append((message, registered))
    previous = store.deliveries(pool, [(message["id"], channel) for message, _ in due
                                       for channel in (messages.EMAIL, messages.SMS)])
    failures = []
    with mail.Connection(settings) as connection:
        for message, registered in due:
            try:
                contents = messages.outgoing(settings, store, registered, message, _now())
            except BaseTimeoutException:
                raise  # the job's own timeout: it ends here, and is retried
            except Exception:  # a message that cannot be composed must not hold back the others of its batch
                log.exception("job %s: %s message for %s not composed", job.id, message["kind"], registered.ref)
                failures.append(f"{message['kind']} message for {registered.ref}: not composed")
                continue
            for channel, content in contents.items():
                earlier = previous.get((message["id"], channel), {})
                if earlier.get("status") in ("sent", "refused"):
                    continue
                record = _send(settings, connection, registered, channel, content, earlier, job)
                record |= {"kind": message["kind"], "ref": registered.ref}
                if record["status"] != "sent":
                    record["message"] = message  # kept so that staff can send it again (Store.retry_delivery)
                _record_delivery(job, store, pool, message["id"], channel, record)
                if record["status"] == "failed":
                    failures.append(f"{message['kind']} message for {registered.ref}, {channel}: {record['error']}")
    if failures:
        raise MailNotSent(f"{len(failures)} of {len(batch)} message(s) not sent ({'; '.join(failures[:10])})")
    log.info("job %s: %d message(s) delivered, %d not due", job.id, len(due), len(batch) - len(due))
    return outcomes


def _send(settings, connection: mail.Connection, registered, channel: str, content, earlier: dict, job) -> dict:
    """Hand one channel of a message over; the delivery's record (its "status" "sent", "refused"
    or "failed")."""
    from queue_service.notifications import messages

    record = {"attempts": earlier.get("attempts", 0) + 1, "at": _now().isoformat(), "final": not job.retries_left}
    record |= {name: earlier[name] for name in ("retried_by", "retried_at") if name in earlier}
    try:
        if channel == messages.EMAIL:
            connection.send(content)
            return record | {"status": "sent", "provider_id": ""}
        return record | {"status": "sent", "provider_id": sms.send(settings, registered.applicant.phone, content)}
    except mail.MailRefused as error:
        return record | {"status": "refused", "error": f"MailRefused: {error}"}
    except (OSError, smtplib.SMTPException) as error:
        # The SMTP error may quote the address: keep it out of logs, records and RQ's failed jobs.
        return record | {"status": "failed", "error": str(getattr(error, "smtp_code", None) or type(error).__name__)}
    except SmsNotSent as error:
        return record | {"status": "failed" if error.retryable else "refused", "error": str(error)}


# Steps that must follow one already taken, once Redis went away in between, wait this long
# for it to come back (a restart takes seconds; a send job may take 180 s): recording a
# message sent (else the job's retry sends it again) and releasing the outbox's lock (else
# the pool's messages wait for it to expire).
REDIS_WAIT_SECONDS = 60


def _when_redis_answers(step, what: str) -> None:
    """Run `step`, waiting for Redis (up to REDIS_WAIT_SECONDS) if it is away; `what` names it in the log."""
    deadline = time.monotonic() + REDIS_WAIT_SECONDS
    pause = FIRST_WAIT_SECONDS
    while True:
        try:
            step()
            return
        except UNREACHABLE:
            if time.monotonic() + pause > deadline:
                raise
            if pause == FIRST_WAIT_SECONDS:
                log.warning("Redis unavailable; %s when it is back", what)
            time.sleep(pause)
            pause = min(pause * 2, LONGEST_WAIT_SECONDS)


def _record_delivery(job, store: Store, pool: PoolId, message_id: str, channel: str, record: dict) -> None:
    """Record a delivery's outcome, waiting for Redis if it went away since the message left."""
    _when_redis_answers(lambda: store.record_delivery(pool, message_id, channel, record, _now()),
                        f"job {job.id}: the {channel} delivery is recorded")


def dispatch_pool(connection: redis.Redis, store: Store, pool: str) -> int:
    """Hand the pool's outbox to send jobs; returns how many messages (a draw's entry counts its offers).

    One dispatcher at a time per pool (a short lock, released even when Redis
    went away meanwhile, once it is back). A crash between queueing and
    trimming queues some messages again: their send jobs find them delivered
    and send nothing twice.
    """
    lock = store.lock_outbox(pool)
    if lock is None:
        return 0
    prefecture, procedure = PoolId(pool).parts
    handed = 0
    try:
        while messages := store.outbox_head(pool, DISPATCH_BATCH):
            texts = [text for message in messages for text in _one_per_offer(store, pool, message)]
            for first in range(0, len(texts), DISPATCH_BATCH):
                with connection.pipeline() as pipeline:
                    for start in range(first, min(first + DISPATCH_BATCH, len(texts)), SEND_BATCH):
                        batch = texts[start:min(start + SEND_BATCH, first + DISPATCH_BATCH)]
                        queue(NOTIFICATIONS, connection).enqueue_call(
                            send_notifications, args=(prefecture, procedure, batch), job_id=_send_job_id(batch),
                            retry=EMAIL_RETRY, pipeline=pipeline, timeout=SEND_BATCH_TIMEOUT,
                        )
                    pipeline.execute()
            store.drop_outbox_head(pool, len(messages))
            handed += len(texts)
    finally:
        _when_redis_answers(lambda: store.unlock_outbox(pool, lock), f"the outbox lock of {pool} is released")
    return handed


def _one_per_offer(store: Store, pool: str, text: str) -> list[str]:
    """An outbox message as the messages to send: a draw's entry stands for one per offer it made."""
    message = json.loads(text)
    if message["kind"] != "draw_offers":
        return [text]
    return [json.dumps(offer) for offer in draws.offer_messages(store, pool, message["draw_id"])]


def _send_job_id(batch: list[str]) -> str:
    """A send job's id, from its first message's and its size (RQ allows letters, digits, "_"
    and "-"): the same batch dispatched twice is the same job."""
    return f"notify-{len(batch)}-" + re.sub(r"[^A-Za-z0-9_-]", "_", json.loads(batch[0])["id"])


@timed
def dispatch_notifications() -> int:
    """Hand the outbox of every pool that holds messages to send jobs.

    The clock queues it every few seconds while any outbox holds messages
    (worker/clock.py); the draw job and the offer rounds also dispatch at once.
    """
    job = get_current_job()
    store = _store(job)
    waiting = [pool for pool, length in store.outbox_lengths().items() if length]
    handed = sum(dispatch_pool(job.connection, store, pool) for pool in waiting)
    if handed:
        log.info("job %s: %d message(s) handed to send jobs", job.id, handed)
    return handed


@timed
def dispatch_pool_job(prefecture: str, procedure: str) -> int:
    """Compatibility only: a job queued by an older version's pages after an offer changed
    (the clock dispatches now). Remove it once RQ holds no such job."""
    job = get_current_job()
    return dispatch_pool(job.connection, _store(job), PoolId.of(prefecture, procedure))


@timed
def offer_rounds() -> dict[str, int]:
    """Expire late offers, offer freed slots to standby, queue reminders, mark no-shows, in every pool."""
    job = get_current_job()
    store = _store(job)
    timing = offers.OfferTiming.from_settings(load_settings())
    totals = {"expired": 0, "standby_offers": 0, "reminders": 0, "no_shows": 0}
    now = _now()
    for pool in store.pools():
        schedule = store.schedule(pool)
        totals["expired"] += offers.expire_offers(store, pool, schedule, now)
        totals["standby_offers"] += offers.fill_standby(store, pool, schedule, timing, now)
        totals["reminders"] += offers.queue_reminders(store, pool, timing, now)
        totals["no_shows"] += offers.mark_no_shows(store, pool, timing, now)
        dispatch_pool(job.connection, store, pool)
    if any(totals.values()):
        log.info("job %s: offer rounds %s", job.id, totals)
    return totals


# How often (in fraction of the run) a simulation job writes its progress to its meta.
SIMULATION_PROGRESS_STEP = 0.02


@timed
def run_simulation(scenario, seed: int, vary: tuple[str, float] | None = None) -> dict:
    """The policy simulator for the staff page (queue_service/simulator.run_comparison): its
    progress in the job's meta ("progress", 0 to 1), its figures as the job's result."""
    job = get_current_job()
    reported = [0.0]

    def progress(fraction: float) -> None:
        if job is not None and (fraction - reported[0] >= SIMULATION_PROGRESS_STEP or fraction >= 1.0):
            reported[0] = fraction
            job.meta["progress"] = round(fraction, 3)
            job.save_meta()

    result = simulator.run_comparison(scenario, seed, vary, progress)
    log.info("job %s: simulated %s, seed %s, %s people", job.id if job else "-", scenario.name, seed,
             result["base"]["people"])
    return result
