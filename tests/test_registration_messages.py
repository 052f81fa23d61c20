"""Every message about a registration goes through its pool's outbox: written by the same
script as the change it announces (or not at all), sent by the one dispatcher, once per
channel, unless it is superseded or its registration is gone."""

import asyncio
import datetime
import json
import random
from email.header import decode_header, make_header

import pytest
from conftest import Mailbox
from helpers import csrf_token, email_link, free_port, plain_text
from rq.job import Job

from queue_service import registration as reg
from queue_service.errors import ContactCapReached, DuplicateRegistration, InvalidTransition
from queue_service.reference import procedure_by_code
from queue_service.registration import Channel
from queue_service.registration.agdref import UploadedRecords
from queue_service.store.keys import PoolKeys
from worker import jobs
from worker.queues import NOTIFICATIONS, queue

POOL = "01:first_request"
UTC = datetime.timezone.utc


def person(**changes) -> dict:
    return {"family_name": "Haddad", "given_names": "Rania", "birth_date": "1993-04-12", "nationality": "LB",
            "email": "rania@example.org", "phone": "06 44 55 66 77", "consent": "yes", "language": "en"} | changes


@pytest.fixture
def sign_up(store, reference_data, settings):
    """Register a person in Ain's first-request pool, now, with the service's identity key."""
    rng = random.Random(5)

    def submit(channel=Channel.ONLINE, contacts_per_pool=4, **changes):
        now = datetime.datetime.now(UTC)
        applicant = reg.parse_applicant(person(**changes), procedure_by_code("first_request"), ["bourg", "gex"],
                                        now.date(), email_required=channel is Channel.ONLINE)
        return reg.register(store, "01", "first_request", applicant, now=now, rng=rng,
                            identity_secret=settings.identity_key.encode(),
                            limits=reg.Limits(contacts_per_pool, datetime.timedelta(hours=24)),
                            records=UploadedRecords(store, settings.identity_key.encode()), channel=channel)

    return submit


def message_id_of(email) -> str:
    """The outbox message an email was sent for (its X-QS-Message header, which a long id folds)."""
    return str(make_header(decode_header(email["X-QS-Message"])))


def kinds(store) -> list[tuple[str, str]]:
    return [(message["kind"], message["registration_id"]) for message in store.outbox(POOL)]


# Written with the change, or not at all ---------------------------------------------------


def test_a_registration_and_its_confirmation_link_are_written_together(store, sign_up):
    created = sign_up()
    (message,) = store.outbox(POOL)
    assert message == {"id": message["id"], "kind": "confirm", "registration_id": created.key.registration_id}

    with pytest.raises(ContactCapReached):  # the create script refuses: no message either
        sign_up(contacts_per_pool=1, family_name="Haddad-Other")
    assert store.outbox(POOL) == [message]
    reg.confirm_email(store, created.key, "rania@example.org", datetime.datetime.now(UTC))
    (_, welcome) = store.outbox(POOL)
    with pytest.raises(DuplicateRegistration):
        sign_up(email="rania.other@example.org")
    assert store.outbox(POOL) == [message, welcome]


def test_each_change_writes_its_message_once_and_a_refused_one_writes_none(store, sign_up, settings):
    created = sign_up()
    key, registration_id = created.key, created.key.registration_id
    now = datetime.datetime.now(UTC)
    reg.confirm_email(store, key, "rania@example.org", now)
    reg.confirm_email(store, key, "rania@example.org", now)  # the link opened twice: one status link
    _, email = reg.request_email_change(store, key, "Rania.New@Example.org", now,
                                        identity_secret=settings.identity_key.encode())
    reg.withdraw(store, key, now)
    with pytest.raises(InvalidTransition):
        reg.withdraw(store, key, now)
    with pytest.raises(InvalidTransition):
        reg.request_email_change(store, key, "late@example.org", now, identity_secret=settings.identity_key.encode())
    assert kinds(store) == [("confirm", registration_id), ("registered", registration_id),
                            ("email_change", registration_id), ("withdrawn", registration_id)]
    change = store.outbox(POOL)[2]
    assert change["address_print"] == reg.email_print(settings.identity_key.encode(), POOL, email)
    assert email not in str(store.outbox(POOL))  # the address only by its keyed hash
    assert len({message["id"] for message in store.outbox(POOL)}) == 4


def test_an_agents_registration_sends_the_status_link_if_it_has_an_email(store, sign_up):
    with_email = sign_up(channel=Channel.ASSISTED)
    without = sign_up(channel=Channel.ASSISTED, family_name="Nassar", email="", phone="06 44 55 66 78")
    assert kinds(store) == [("registered", with_email.key.registration_id)]
    reg.withdraw(store, without.key, datetime.datetime.now(UTC))  # no address: no notice
    assert len(store.outbox(POOL)) == 1


# Sent once by the one dispatcher --------------------------------------------------------------


def test_the_email_reaches_the_smtp_server_once_whatever_runs_twice(store, sign_up, redis, run_jobs, mailbox):
    created = sign_up()
    head = store.outbox_head(POOL, 10)
    (message_id,) = [message["id"] for message in store.outbox(POOL)]
    assert jobs.dispatch_pool(redis, store, POOL) == 1
    redis.rpush(PoolKeys(POOL).outbox, *head)  # a dispatcher that crashed after queueing, before trimming
    assert jobs.dispatch_pool(redis, store, POOL) == 1
    run_jobs()
    send_job = Job.fetch(jobs._send_job_id(head), connection=redis)  # the batch of that one message
    queue(NOTIFICATIONS, redis).enqueue_job(send_job)  # the send job run once more (a retry, a duplicate)
    run_jobs()

    assert [message_id_of(message) for message in mailbox.messages] == [message_id]
    assert mailbox.recipients == [["rania@example.org"]] and created.ref in mailbox.messages[0]["Subject"]
    delivery = store.delivery(POOL, message_id, "email")
    assert delivery["status"] == "sent" and delivery["attempts"] == 1 and delivery["kind"] == "confirm"
    assert store.outbox(POOL) == []


def test_a_superseded_email_change_is_not_sent(store, sign_up, settings, deliver_messages, mailbox):
    secret = settings.identity_key.encode()
    created = sign_up()
    now = datetime.datetime.now(UTC)
    reg.confirm_email(store, created.key, "rania@example.org", now)
    reg.request_email_change(store, created.key, "first.try@example.org", now, identity_secret=secret)
    reg.request_email_change(store, created.key, "second.try@example.org", now, identity_secret=secret)
    superseded, latest = [m["id"] for m in store.outbox(POOL) if m["kind"] == "email_change"]
    deliver_messages()
    assert mailbox.recipients == [["rania@example.org"], ["rania@example.org"], ["second.try@example.org"]]
    assert message_id_of(mailbox.messages[-1]) == latest
    assert store.delivery(POOL, superseded, "email") is None and store.delivery_failures(POOL) == []


def test_a_change_confirmed_before_its_link_went_out_needs_no_link(store, sign_up, settings, deliver_messages,
                                                                   mailbox):
    secret = settings.identity_key.encode()
    created = sign_up(channel=Channel.ASSISTED, email="")
    now = datetime.datetime.now(UTC)
    _, email = reg.request_email_change(store, created.key, "rania@example.org", now, identity_secret=secret)
    reg.confirm_email_change(store, created.key, email, identity_secret=secret,
                             limits=reg.Limits(4, datetime.timedelta(hours=24)), now=now)
    deliver_messages()
    # No confirmation link any more, only the new status link (the printed one died with the change).
    assert [message["Subject"] for message in mailbox.messages] == [f"Your new private link: {created.ref}"]
    assert store.outbox(POOL) == []


def test_a_message_about_a_purged_registration_is_not_sent(store, sign_up, deliver_messages, mailbox):
    sign_up()
    assert reg.purge(store, datetime.datetime.now(UTC) + datetime.timedelta(hours=25), datetime.timedelta(days=90)) == 1
    deliver_messages()
    assert mailbox.messages == [] and store.outbox(POOL) == []


def test_a_job_queued_by_an_older_version_sends_once(store, sign_up, redis, run_jobs, mailbox):
    """send_registration_email is kept for the jobs older pages queued (a rolling deploy)."""
    created = sign_up()
    store.discard_outbox(POOL)  # as an older version wrote it: no outbox message
    older = queue(NOTIFICATIONS, redis).enqueue(jobs.send_registration_email, "01", "first_request",
                                                created.key.registration_id, "confirm")
    run_jobs()
    queue(NOTIFICATIONS, redis).enqueue_job(Job.fetch(older.id, connection=redis))  # run again
    run_jobs()
    assert mailbox.recipients == [["rania@example.org"]]
    assert "Confirm" in mailbox.messages[0]["Subject"]


def test_fifty_concurrent_registrations_of_one_person_leave_one_place_and_one_live_link(
        store, reference_data, settings, deliver_messages, mailbox, client):
    """The same person, unconfirmed, registering again and again at once with a different address
    each time (a bot, or a person tapping "register" in a hurry): one place, and one link that works."""
    from concurrent.futures import ThreadPoolExecutor

    secret = settings.identity_key.encode()
    now = datetime.datetime.now(UTC)

    def attempt(number: int):
        applicant = reg.parse_applicant(person(email=f"rania{number}@example.org"), procedure_by_code("first_request"),
                                        ["bourg", "gex"], now.date())
        return reg.register(store, "01", "first_request", applicant, now=now, rng=random.Random(number),
                            identity_secret=secret, limits=reg.Limits(4, datetime.timedelta(hours=24)),
                            records=UploadedRecords(store, secret))

    with ThreadPoolExecutor(max_workers=16) as pool:
        created = list(pool.map(attempt, range(50)))
    alive = [registration for registration in created if store.registration(registration.key) is not None]
    assert len(alive) == 1 and store.redis.zcard(PoolKeys(POOL).unconfirmed) == 1
    deliver_messages()
    assert mailbox.recipients == [[alive[0].applicant.email]]
    confirm_path = email_link(mailbox.messages[0], "/confirm")
    landing = client.post("/confirm", data={"t": confirm_path.split("t=")[1], "csrf_token": csrf_token(client, confirm_path)})
    assert landing.status_code == 302 and store.waiting_count(POOL) == 1


def test_french_messages_name_the_prefecture_with_its_article(store, sign_up, deliver_messages, mailbox):
    """"la préfecture de Ain" was written; French says "de l'Ain" (and "du Rhône", "des Bouches-du-Rhône")."""
    sign_up(language="fr")
    deliver_messages()
    text = plain_text(mailbox.messages[0])
    assert "(préfecture de l’Ain)" in text and "de Ain" not in text


# Sent in batches: one send job and one SMTP connection for many messages ----------------------


def sign_up_people(sign_up, count: int, first: int = 0) -> list:
    """`count` different people registered online in the pool, each with a confirmation email waiting."""
    names = ["Haddad", "Okafor", "Nguyen", "Silva", "Kowalski", "Diallo", "Moreau", "Rahimi"]
    return [sign_up(family_name=names[number], email=f"person{number}@example.org", phone=f"06 44 55 66 {number:02d}")
            for number in range(first, first + count)]


class DropsConnections(Mailbox):
    """An SMTP server that hangs up after every `per_connection` messages it took (as servers
    capping the messages of a connection do), and refuses the addresses of `refuse` for now
    (451: try later)."""

    def __init__(self, per_connection: int = 1000, refuse: frozenset = frozenset()) -> None:
        super().__init__()
        self.per_connection = per_connection
        self.refuse = refuse

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return "451 4.3.0 Mailbox busy, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        reply = await super().handle_DATA(server, session, envelope)
        if self.peers.count(session.peer) >= self.per_connection:
            asyncio.get_running_loop().call_soon(server.transport.close)  # once the reply is written
        return reply


@pytest.fixture
def other_smtp(settings, monkeypatch):
    """Start `handler` as the SMTP server the jobs send to (loopback, a free port)."""
    from aiosmtpd.controller import Controller

    started = []

    def serve(handler):
        controller = Controller(handler, hostname="127.0.0.1", port=free_port())
        controller.start()
        started.append(controller)
        monkeypatch.setenv("QS_SMTP_PORT", str(controller.port))
        return handler

    yield serve
    for controller in started:
        controller.stop()


def send_jobs_run(queue_redis) -> list[str]:
    """The ids of the send jobs that ran to the end (finished), or failed and wait for a retry."""
    notifications = queue(NOTIFICATIONS, queue_redis)
    ids = notifications.finished_job_registry.get_job_ids() + notifications.scheduled_job_registry.get_job_ids()
    return [job_id for job_id in ids if job_id.startswith("notify-")]


def test_a_batch_of_messages_goes_out_in_one_job_over_one_smtp_connection(store, sign_up, deliver_messages, mailbox,
                                                                          queue_redis):
    people = sign_up_people(sign_up, 6)
    deliver_messages()
    assert sorted(address for (address,) in mailbox.recipients) == [f"person{n}@example.org" for n in range(6)]
    assert len(set(mailbox.peers)) == 1, "one SMTP connection for the batch"
    assert len(send_jobs_run(queue_redis)) == 1
    for message in store.outbox(POOL) + [{"id": message_id_of(email)} for email in mailbox.messages]:
        assert store.delivery(POOL, message["id"], "email")["status"] == "sent"
    assert {store.delivery(POOL, message_id_of(email), "email")["ref"] for email in mailbox.messages} == {
        person.ref for person in people}


def test_a_server_that_hangs_up_between_messages_is_reconnected_to(store, sign_up, deliver_messages, other_smtp):
    server = other_smtp(DropsConnections(per_connection=2))
    sign_up_people(sign_up, 5)
    deliver_messages()
    assert sorted(address for (address,) in server.recipients) == [f"person{n}@example.org" for n in range(5)]
    assert len(set(server.peers)) == 3  # 2 + 2 + 1: each message once, none lost to a hang-up
    assert store.delivery_failures(POOL) == []


def test_a_message_that_fails_in_a_batch_is_the_only_one_its_retry_sends(store, sign_up, run_jobs, queue_redis,
                                                                           other_smtp, monkeypatch):
    server = other_smtp(DropsConnections(refuse=frozenset({"person2@example.org"})))
    sign_up_people(sign_up, 4)
    jobs.dispatch_pool(queue_redis, store, POOL)
    run_jobs()
    # Every message was tried (the one after the failure too), and the job failed for RQ to retry it.
    assert sorted(address for (address,) in server.recipients) == ["person0@example.org", "person1@example.org",
                                                                   "person3@example.org"]
    (failure,) = store.delivery_failures(POOL)
    assert failure["status"] == "failed" and failure["attempts"] == 1 and failure["error"] == "SMTPRecipientsRefused"
    notifications = queue(NOTIFICATIONS, queue_redis)
    (retry,) = notifications.scheduled_job_registry.get_job_ids()

    server.refuse = frozenset()  # the mailbox takes mail again; RQ's retry comes
    notifications.scheduled_job_registry.remove(retry)
    notifications.enqueue_job(Job.fetch(retry, connection=queue_redis))
    run_jobs()
    assert [address for (address,) in server.recipients][3:] == ["person2@example.org"]
    assert store.delivery_failures(POOL) == []
    delivered = {address: store.delivery(POOL, message_id_of(email), "email")
                 for (address,), email in zip(server.recipients, server.messages)}
    assert delivered["person2@example.org"]["attempts"] == 2 and delivered["person0@example.org"]["attempts"] == 1


def test_a_batch_skips_a_purged_registration_and_a_superseded_message(store, sign_up, settings, deliver_messages,
                                                                       mailbox, queue_redis):
    secret = settings.identity_key.encode()
    sign_up_people(sign_up, 1)
    now = datetime.datetime.now(UTC)
    assert reg.purge(store, now + datetime.timedelta(hours=25), datetime.timedelta(days=90)) == 1  # its email waits
    changing, _ = sign_up_people(sign_up, 2, first=1)
    reg.confirm_email(store, changing.key, "person1@example.org", now)
    reg.request_email_change(store, changing.key, "first.try@example.org", now, identity_secret=secret)
    reg.request_email_change(store, changing.key, "second.try@example.org", now, identity_secret=secret)
    deliver_messages()
    # The confirmation link and the notice of its confirmation, then the latest change's link.
    assert sorted(address for (address,) in mailbox.recipients) == [
        "person1@example.org", "person1@example.org", "person2@example.org", "second.try@example.org"]
    (job_id,) = send_jobs_run(queue_redis)  # all of them in one batch
    assert Job.fetch(job_id, connection=queue_redis).return_value() == {"gone": 1, "sent": 4, "superseded": 1}
    assert store.delivery_failures(POOL) == []


def test_a_batch_dispatched_twice_and_run_twice_sends_each_message_once(store, sign_up, redis, queue_redis, run_jobs,
                                                                        mailbox):
    sign_up_people(sign_up, 4)
    head = store.outbox_head(POOL, 10)
    assert jobs.dispatch_pool(queue_redis, store, POOL) == 4
    redis.rpush(PoolKeys(POOL).outbox, *head)  # a dispatcher that crashed after queueing, before trimming
    assert jobs.dispatch_pool(queue_redis, store, POOL) == 4
    run_jobs()
    (job_id,) = send_jobs_run(queue_redis)  # the same batch: the same job
    queue(NOTIFICATIONS, queue_redis).enqueue_job(Job.fetch(job_id, connection=queue_redis))  # and run again
    run_jobs()
    assert sorted(address for (address,) in mailbox.recipients) == [f"person{n}@example.org" for n in range(4)]


def test_a_message_that_cannot_be_composed_does_not_hold_back_its_batch(store, sign_up, redis, queue_redis, run_jobs,
                                                                         mailbox):
    """A message the worker cannot compose (here a kind it does not know, as a newer version's
    pages could write during a rolling deploy) fails alone: the others of its batch go out."""
    people = sign_up_people(sign_up, 3)
    unknown = {"id": "from_a_newer_version:1", "kind": "from_a_newer_version",
               "registration_id": people[1].key.registration_id}
    redis.rpush(PoolKeys(POOL).outbox, json.dumps(unknown))
    assert jobs.dispatch_pool(queue_redis, store, POOL) == 4
    run_jobs()
    assert sorted(address for (address,) in mailbox.recipients) == [f"person{n}@example.org" for n in range(3)]
    (retry,) = queue(NOTIFICATIONS, queue_redis).scheduled_job_registry.get_job_ids()  # RQ tries it again later
    assert retry.startswith("notify-4-")
