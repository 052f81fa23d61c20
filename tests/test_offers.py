"""Offers and bookings on the real Redis: messages, confirm, decline, expiry and standby,
cancellation, reminders, check-in, no-shows, slot cancellation by the prefecture."""

import datetime
import json
import os
from email.header import decode_header, make_header

import pytest
from helpers import (
    CREATED,
    DEADLINE,
    ENGLISH,
    DRAW_AT,
    DRAW_ID,
    PARIS,
    POOL,
    TIMING,
    announce_freeze_and_draw,
    csrf_token,
    english_day,
    fail_every_delivery,
    first_offer,
    key_of,
    offered,
    plain_text,
    publish_slots,
    register_people,
    run_the_draw,
    schedule,
    sign_in,
)
from rq import Queue
from rq.job import Job

from queue_service import draws, offers
from queue_service import registration as reg
from queue_service.draws import lottery
from queue_service.errors import CancellationTooLate, InvalidTransition, OfferDeadlinePassed, UnknownBooking
from queue_service.inventory.slots import Slot, SlotStatus
from queue_service.offers import OfferStatus
from queue_service.registration.tokens import status_token
from queue_service.store.fields import short_name
from queue_service.store.keys import PoolKeys
from worker import jobs
from worker.queues import NOTIFICATIONS

# Each test runs on the single Redis and again on a Redis Cluster (tests/conftest.py).
pytestmark = pytest.mark.topologies


def secret(settings) -> bytes:
    return settings.identity_key.encode()


def standby_order(store, slot_class: str) -> list[str]:
    """The draw's order of the references accepting `slot_class`, recomputed from the frozen inputs and seed."""
    record = draws.public_record(store, POOL, DRAW_ID)  # the published rows, as anyone can read them
    entrants = lottery.entrants_from_rows(record["entrants"])
    seed = bytes.fromhex(store.draw(POOL, DRAW_ID).seed)
    order = [ref for ref, _ in lottery.order_prefix(seed, DRAW_ID, entrants, len(entrants))]
    accepts = {e.ref: e.accepts for e in entrants}
    return [ref for ref in order if accepts[ref] is None or slot_class in accepts[ref]]


# Messages ----------------------------------------------------------------------------------


def test_winners_get_an_email_and_an_sms_in_their_language_without_identity_numbers(drawn, queue_redis, run_jobs, mailbox,
                                                                                    settings):
    store, _, people = drawn
    english = next(p for p in people if store.registration(p.key).status.value == "offered")
    store.redis.hset(PoolKeys(POOL).registration(english.key.registration_id), short_name("language"), "en")
    assert jobs.dispatch_pool(queue_redis, store, POOL) == 10 and store.outbox_length(POOL) == 0
    run_jobs()
    assert len(mailbox.messages) == 10
    by_recipient = {recipients[0]: message for recipients, message in zip(mailbox.recipients, mailbox.messages)}
    message = by_recipient[english.applicant.email]
    assert "You were drawn" in message["Subject"] and english.ref in message["Subject"]
    assert f"/offer?t={status_token(settings.secret_key, english.key)}" in plain_text(message)
    assert "Answer before" not in plain_text(message) and "Confirm or decline before" in plain_text(message)
    others = [m for r, m in by_recipient.items() if r != english.applicant.email]
    assert all("Vous avez été tiré" in subject(m) for m in others)
    for item in mailbox.messages:  # no birth date (all 1990-01-01 here), no family name
        assert "1990" not in plain_text(item) and "Person" not in plain_text(item)
    texts = sorted((settings.data_dir / "sms").glob("*.txt"))
    assert len(texts) == 10 and sum("drawn for an appointment" in path.read_text() for path in texts) == 1
    # Sent once: dispatching or running the jobs again sends nothing more.
    for _ in range(2):
        store.redis.rpush(PoolKeys(POOL).outbox, *[json.dumps(m) for m in _offer_messages(store)][:3])
        jobs.dispatch_pool(queue_redis, store, POOL)
        run_jobs()
    assert len(mailbox.messages) == 10 and len(list((settings.data_dir / "sms").glob("*.txt"))) == 10


def subject(message) -> str:
    return str(make_header(decode_header(message["Subject"])))


def _offer_messages(store) -> list[dict]:
    return [{"id": f"offer:{DRAW_ID}:{rid}", "kind": "offer", "registration_id": rid, "draw_id": DRAW_ID,
             "slot": offer.slot_id} for rid, offer in sorted(store.offers(POOL).items())]


def test_a_failing_smtp_server_leads_to_retries_a_record_for_staff_and_no_lost_message(
        drawn, queue_redis, run_jobs, mailbox, settings, monkeypatch, make_app, staff):
    store, _, _ = drawn
    monkeypatch.setenv("QS_SMTP_PORT", "1")  # nothing listens there: connection refused
    jobs.dispatch_pool(queue_redis, store, POOL)
    run_jobs()
    assert mailbox.messages == []
    failures = store.delivery_failures(POOL)
    assert len(failures) == 10 and {f["channel"] for f in failures} == {"email"} and failures[0]["attempts"] == 1
    queue = Queue(NOTIFICATIONS, connection=queue_redis)
    assert len(queue.scheduled_job_registry.get_job_ids()) == 1  # RQ will try again (the ten are one batch)

    client = sign_in(make_app(), "admin01")
    page = client.get("/staff/p/01/deliveries").get_data(as_text=True)
    assert page.count("ConnectionRefusedError") == 10

    monkeypatch.setenv("QS_SMTP_PORT", str(settings.smtp_port))  # the server is back
    for job_id in queue.scheduled_job_registry.get_job_ids():
        queue.scheduled_job_registry.remove(job_id)
        queue.enqueue_job(Job.fetch(job_id, connection=queue_redis))
    run_jobs()
    assert len(mailbox.messages) == 10 and store.delivery_failures(POOL) == []
    sms_files = list((settings.data_dir / "sms").glob("*.txt"))
    assert len(sms_files) == 10  # the SMS went out the first time and were not sent again


def test_staff_send_a_message_again_once_its_tries_are_over(drawn, queue_redis, run_jobs, mailbox, settings, monkeypatch,
                                                            make_app, staff):
    store, _, _ = drawn
    fail_every_delivery(store, queue_redis, run_jobs, monkeypatch, settings)  # the server is back; nobody retries
    chosen = store.delivery_failures(POOL)[0]
    form = {"procedure": "first_request", "message_id": chosen["message_id"], "channel": "email"}

    agent = sign_in(make_app(), "agent01")
    assert "Send again" not in agent.get("/staff/p/01/deliveries", headers=ENGLISH).get_data(as_text=True)
    refused = agent.post("/staff/p/01/deliveries/retry", data=form | {"csrf_token": csrf_token(
        agent, "/staff/p/01/deliveries")})
    assert refused.status_code == 403

    admin = sign_in(make_app(), "admin01")
    page = admin.get("/staff/p/01/deliveries", headers=ENGLISH).get_data(as_text=True)
    assert page.count("Send again") == 10
    done = admin.post("/staff/p/01/deliveries/retry", data=form | {"csrf_token": csrf_token(
        admin, "/staff/p/01/deliveries")})
    assert done.status_code == 302  # then the list: reloading it sends nothing more
    listed = admin.get(done.location, headers=ENGLISH).get_data(as_text=True)
    assert f"Message {chosen['ref']} sent again." in listed and "Sent again by" in listed
    jobs.dispatch_pool(queue_redis, store, POOL)
    run_jobs()
    jobs.dispatch_pool(queue_redis, store, POOL)
    run_jobs()
    assert len(mailbox.messages) == 1 and len(store.delivery_failures(POOL)) == 9
    assert store.delivery(POOL, chosen["message_id"], "email")["retried_by"] == staff["admin01"].id
    # Delivered: it cannot be sent again.
    again = admin.post("/staff/p/01/deliveries/retry", data=form | {"csrf_token": csrf_token(
        admin, "/staff/p/01/deliveries")}, headers=ENGLISH)
    assert again.status_code == 409 and len(mailbox.messages) == 1


# Confirm, decline, expiry, standby -------------------------------------------------------------------


def test_confirming_before_the_deadline_books_the_slot_with_a_code(drawn, settings):
    store, _, _ = drawn
    key, offer = first_offer(store)
    booked = offers.confirm(store, key, secret(settings), DEADLINE - datetime.timedelta(seconds=1))
    assert booked.status is OfferStatus.CONFIRMED
    assert booked.booking_code == offers.booking_code(secret(settings), key, offer.slot_id)
    assert store.registration(key).status.value == "confirmed"
    assert store.slot(POOL, offer.slot_id).status.value == "booked"
    assert offers.find_booking(store, "01", offers.display_code(booked.booking_code).lower(), secret(settings))[0] == key
    with pytest.raises(InvalidTransition):
        offers.confirm(store, key, secret(settings), DEADLINE - datetime.timedelta(seconds=1))
    assert [m["kind"] for m in store.outbox(POOL)][-1] == "booked"


def test_the_booking_email_lists_what_to_bring_as_the_page_does(drawn, settings, queue_redis, run_jobs, mailbox, client):
    store, _, _ = drawn
    key, _ = first_offer(store)
    store.discard_outbox(POOL)
    booked = offers.confirm(store, key, secret(settings), datetime.datetime.now(datetime.timezone.utc))
    jobs.dispatch_pool(queue_redis, store, POOL)
    run_jobs()
    (email,) = mailbox.messages
    text = plain_text(email)
    assert offers.display_code(booked.booking_code) in text
    # The applicants of this pool speak French; a first request: identity, proof of address and photos.
    assert "À apporter :" in text
    assert "Votre passeport ou pièce d’identité" in text and "justificatif de domicile" in text
    page = client.get(f"/offer?t={status_token(settings.secret_key, key)}").get_data(as_text=True)
    assert "Votre passeport ou pièce d’identité" in page and "justificatif de domicile" in page


def test_no_confirmation_is_accepted_after_the_deadline_and_nothing_changes(drawn, settings):
    store, _, _ = drawn
    key, offer = first_offer(store)
    before = (store.registration(key), store.offer(key), store.slot(POOL, offer.slot_id), len(store.outbox(POOL)))
    with pytest.raises(OfferDeadlinePassed):
        offers.confirm(store, key, secret(settings), DEADLINE + datetime.timedelta(seconds=1))
    after = (store.registration(key), store.offer(key), store.slot(POOL, offer.slot_id), len(store.outbox(POOL)))
    assert before == after


def test_declining_keeps_the_weight_and_the_next_in_the_draws_order_gets_the_slot(drawn):
    store, _, people = drawn
    key, offer = first_offer(store)
    before_lost = store.registration(key).draws_lost
    offers.decline(store, key, schedule(), DRAW_AT + datetime.timedelta(hours=1))
    back = store.registration(key)
    assert back.status.value == "waiting" and back.draws_lost == before_lost == 0 and back.draws_entered == 1
    slot = store.slot(POOL, offer.slot_id)
    assert slot.status.value == "standby"

    now = DRAW_AT + datetime.timedelta(hours=1, minutes=1)
    winners = {o.ref for o in store.offers(POOL).values()}
    assert offers.fill_standby(store, POOL, schedule(), TIMING, now) == 1
    expected = next(ref for ref in standby_order(store, slot.slot_class("Europe/Paris")) if ref not in winners)
    holder = store.slot_holder(POOL, offer.slot_id)
    promoted = store.registration(key_of(holder))
    assert promoted.ref == expected and promoted.status.value == "offered"
    assert store.offer(promoted.key).standby is True
    # A standby winner has the usual time to answer, but must answer before the slot's cancellation notice.
    deadline = min(now + datetime.timedelta(hours=48), slot.starts_at - TIMING.cancel_notice)
    assert store.offer(promoted.key).deadline == deadline
    assert store.outbox(POOL)[-1]["kind"] == "offer" and store.outbox(POOL)[-1]["registration_id"] == holder
    # The decliner is never offered again by the same draw.
    offers.decline(store, promoted.key, schedule(), now)
    offers.fill_standby(store, POOL, schedule(), TIMING, now)
    assert store.slot_holder(POOL, offer.slot_id) not in (key.registration_id, promoted.key.registration_id)


def test_when_the_order_is_used_up_the_slot_returns_to_the_next_draw_never_first_come(store, reference_data):
    store.save_schedule(schedule())
    slots = publish_slots(store, 4)
    register_people(store, 3, CREATED + datetime.timedelta(days=1))
    run_the_draw(store)
    now = DRAW_AT + datetime.timedelta(hours=1)
    for registration_id in list(offered(store)):
        offers.decline(store, key_of(registration_id), schedule(), now)
    assert {store.slot(POOL, s.id).status.value for s in slots} == {"standby", "open"}
    assert offers.fill_standby(store, POOL, schedule(), TIMING, now) == 0  # everyone in the order had an offer
    assert {store.slot(POOL, s.id).status.value for s in slots} == {"open"}
    assert store.standby_slots(POOL) == {}


def test_an_unanswered_offer_expires_by_the_servers_clock_and_its_slot_goes_to_standby(drawn):
    store, _, _ = drawn
    assert offers.expire_offers(store, POOL, schedule(), DEADLINE) == 0  # at the deadline: still valid
    assert store.draws_past_deadline(POOL, DEADLINE + datetime.timedelta(seconds=1)) == [DRAW_ID]
    assert offers.expire_offers(store, POOL, schedule(), DEADLINE + datetime.timedelta(seconds=1)) == 10
    assert store.draws_past_deadline(POOL, DEADLINE + datetime.timedelta(days=1)) == []  # the draw is done
    statuses = {o.status for o in store.offers(POOL).values()}
    assert statuses == {OfferStatus.EXPIRED}
    assert len(store.standby_slots(POOL)) == 10
    assert sum(m["kind"] == "expired" for m in store.outbox(POOL)) == 10
    assert store.waiting_count(POOL) == 30  # the policy returns them to the pool


def test_offers_committed_with_a_deadline_each_still_keep_it(drawn, settings):
    """Before draws kept one deadline for all their offers, each offer had its own entry: those still count."""
    store, _, _ = drawn
    later = DEADLINE + datetime.timedelta(hours=5)
    store.redis.hdel(PoolKeys(POOL).draw(DRAW_ID), "offers_deadline")
    store.redis.zrem(PoolKeys(POOL).draw_deadlines, DRAW_ID)
    store.redis.zadd(PoolKeys(POOL).offer_deadlines, {registration_id: later.timestamp() for registration_id in offered(store)})
    (first, _), (second, _) = sorted(offered(store).items())[:2]
    offers.confirm(store, key_of(first), secret(settings), later - datetime.timedelta(seconds=1))
    with pytest.raises(OfferDeadlinePassed):
        offers.confirm(store, key_of(second), secret(settings), later + datetime.timedelta(seconds=1))
    assert offers.expire_offers(store, POOL, schedule(), later) == 0
    assert offers.expire_offers(store, POOL, schedule(), later + datetime.timedelta(seconds=1)) == 9


def test_a_policy_may_end_the_registration_of_who_lets_the_deadline_pass(drawn):
    store, _, _ = drawn
    strict = schedule(expired_returns_to_pool=False)
    key, _ = first_offer(store)
    offers.expire_offers(store, POOL, strict, DEADLINE + datetime.timedelta(seconds=1))
    assert store.registration(key).status.value == "expired" and store.waiting_count(POOL) == 20


def test_the_slot_of_a_winner_gone_before_the_commit_goes_to_the_next_in_the_draws_order(pool):
    """Issue 13: the slots of winners not applied stayed open, never offered to the next in the draw's order."""
    store, _, _ = pool
    fence = announce_freeze_and_draw(store)
    drawn = draws.drawn_winners(store, POOL, DRAW_ID)
    gone_ref, freed = drawn["refs"][3], drawn["slots"][3]
    reg.withdraw(store, store.registration_key_by_ref(POOL, gone_ref), DRAW_AT)  # between the freeze and the commit
    draws.commit(store, POOL, DRAW_ID, fence, schedule(), DRAW_AT, TIMING)
    draws.publish_or_hold(store, POOL, DRAW_ID, fence, DRAW_AT)
    assert draws.public_record(store, POOL, DRAW_ID)["not_applied"] == [gone_ref]

    assert offers.fill_standby(store, POOL, schedule(), TIMING, DRAW_AT + datetime.timedelta(hours=1)) == 1
    slot = store.slot(POOL, freed)
    # The first of the order anyone can recompute from the record who accepts the slot and had no offer.
    expected = next(ref for ref in standby_order(store, slot.slot_class("Europe/Paris")) if ref not in drawn["refs"])
    given = store.offer(key_of(store.slot_holder(POOL, freed)))
    assert (given.ref, given.draw_id, given.standby, given.status) == (expected, DRAW_ID, True, OfferStatus.PENDING)


# A draw's deadline near the appointment ------------------------------------------------------------


def test_a_draws_offer_is_answered_before_the_slots_cancellation_notice_or_not_made(store, reference_data, queue_redis,
                                                                                     run_jobs, mailbox, settings):
    """Issue 13: "appointment Monday 09:30, answer before Monday 13:52". With a 48-hour window, a
    24-hour cancellation notice and 12 hours at least to answer (TIMING), a slot starting soon gets an
    earlier deadline of its own; one that would leave less than 12 hours is left out of the draw."""
    store.save_schedule(schedule())
    starts = {
        "gex-s1": DRAW_AT + datetime.timedelta(hours=24 + 11, minutes=59),  # 11 h 59 to answer: not drawn
        "gex-s2": DRAW_AT + datetime.timedelta(hours=24 + 12),  # 12 hours to answer, just enough
        "gex-s3": DRAW_AT + datetime.timedelta(days=2),  # 24 hours instead of 48
        "gex-s4": DRAW_AT + datetime.timedelta(days=4),  # the draw's 48 hours
    }
    store.add_slots([Slot(id=slot_id, prefecture="01", site="gex", procedure="first_request", starts_at=start,
                          duration_minutes=30, counter=1) for slot_id, start in starts.items()])
    register_people(store, 10, CREATED + datetime.timedelta(days=1))
    run_the_draw(store)
    record = draws.public_record(store, POOL, DRAW_ID)
    assert [slot["id"] for slot in record["slots"]] == ["gex-s2", "gex-s3", "gex-s4"]  # what the lottery used
    expected = {"gex-s2": DRAW_AT + datetime.timedelta(hours=12), "gex-s3": DRAW_AT + datetime.timedelta(hours=24),
                "gex-s4": DEADLINE}
    holders = {offer.slot_id: (registration_id, offer) for registration_id, offer in offered(store).items()}
    assert {slot_id: offer.deadline for slot_id, (_, offer) in holders.items()} == expected
    assert store.draw(POOL, DRAW_ID).offers_deadline == DEADLINE  # the one the others share

    # The applicant is told the real deadline, by email and SMS (here, 10:00 in Paris on Tuesday).
    soon, _ = holders["gex-s3"]
    store.redis.hset(PoolKeys(POOL).registration(soon), short_name("language"), "en")
    jobs.dispatch_pool(queue_redis, store, POOL)
    run_jobs()
    (email,) = [m for r, m in zip(mailbox.recipients, mailbox.messages) if r[0] == store.registration(key_of(soon))
                .applicant.email]
    assert f"Confirm or decline before {english_day(DRAW_AT + datetime.timedelta(days=1))}, 10:00." in plain_text(email)
    # The SMS gives the same moment in its short form (two segments at most).
    tuesday = (DRAW_AT + datetime.timedelta(days=1)).astimezone(PARIS)
    assert any(f"Answer before Tue, {tuesday:%b} {tuesday.day}, 10:00" in path.read_text()
               for path in (settings.data_dir / "sms").glob("*.txt"))

    # The server keeps it: no confirmation after it, and the expiry round expires those offers then.
    late = DRAW_AT + datetime.timedelta(hours=24, seconds=1)
    with pytest.raises(OfferDeadlinePassed):
        offers.confirm(store, key_of(soon), secret(settings), late)
    assert offers.expire_offers(store, POOL, schedule(), late) == 2
    assert {slot_id for slot_id, _ in store.standby_slots(POOL).items()} == {"gex-s2", "gex-s3"}
    assert store.offer(key_of(holders["gex-s4"][0])).status is OfferStatus.PENDING


# Bookings: cancellation, reminders, check-in, no-shows -----------------------------------------------


@pytest.fixture
def booking(drawn, settings):
    store, _, _ = drawn
    key, offer = first_offer(store)
    offers.confirm(store, key, secret(settings), DRAW_AT + datetime.timedelta(hours=1))
    return store, key, store.slot(POOL, offer.slot_id)


def test_a_booking_can_be_cancelled_until_the_notice_and_the_slot_goes_to_standby(booking):
    store, key, slot = booking
    with pytest.raises(CancellationTooLate):
        offers.cancel_booking(store, key, TIMING, slot.starts_at - datetime.timedelta(hours=23))
    offers.cancel_booking(store, key, TIMING, slot.starts_at - datetime.timedelta(hours=25))
    assert store.registration(key).status.value == "cancelled"
    assert store.slot(POOL, slot.id).status.value == "standby" and store.outbox(POOL)[-1]["kind"] == "booking_cancelled"


def test_reminders_go_once_per_lead_time_and_one_for_a_late_booking(booking):
    store, key, slot = booking

    def reminders():
        return [m for m in store.outbox(POOL) if m["kind"] == "reminder"]

    assert offers.queue_reminders(store, POOL, TIMING, slot.starts_at - datetime.timedelta(hours=49)) == 0
    assert offers.queue_reminders(store, POOL, TIMING, slot.starts_at - datetime.timedelta(hours=47)) == 1
    assert offers.queue_reminders(store, POOL, TIMING, slot.starts_at - datetime.timedelta(hours=30)) == 0
    assert offers.queue_reminders(store, POOL, TIMING, slot.starts_at - datetime.timedelta(hours=23)) == 1
    assert offers.queue_reminders(store, POOL, TIMING, slot.starts_at - datetime.timedelta(hours=2)) == 0
    assert len(reminders()) == 2


def test_a_booking_not_checked_in_is_marked_no_show_after_the_slot_and_the_grace(booking):
    store, key, slot = booking
    assert offers.mark_no_shows(store, POOL, TIMING, slot.ends_at + datetime.timedelta(minutes=29)) == 0
    assert offers.mark_no_shows(store, POOL, TIMING, slot.ends_at + datetime.timedelta(minutes=31)) == 1
    assert store.registration(key).status.value == "no_show" and store.offer(key).status is OfferStatus.NO_SHOW
    with pytest.raises(InvalidTransition):
        offers.check_in(store, key, slot.ends_at + datetime.timedelta(hours=1))


def test_checking_in_marks_attended_once_and_a_wrong_code_names_no_one(booking, settings):
    store, key, slot = booking
    with pytest.raises(UnknownBooking):
        offers.find_booking(store, "01", "ABCDE-FGHJK", secret(settings))
    with pytest.raises(UnknownBooking):
        offers.find_booking(store, "69", offers.display_code(store.offer(key).booking_code), secret(settings))
    offers.check_in(store, key, slot.starts_at)
    assert store.registration(key).status.value == "attended"
    assert offers.mark_no_shows(store, POOL, TIMING, slot.ends_at + datetime.timedelta(hours=2)) == 0
    with pytest.raises(InvalidTransition):
        offers.check_in(store, key, slot.starts_at)


def test_a_slot_cancelled_by_the_prefecture_tells_its_holder_and_returns_them_with_their_weight(booking):
    store, key, slot = booking
    assert offers.cancel_slot(store, POOL, slot.id, DRAW_AT + datetime.timedelta(hours=2)) is SlotStatus.BOOKED
    back = store.registration(key)
    assert back.status.value == "waiting" and back.draws_entered == 1 and back.draws_lost == 0
    assert store.slot(POOL, slot.id).status.value == "cancelled" and store.slot_holder(POOL, slot.id) is None
    assert store.outbox(POOL)[-1]["kind"] == "slot_cancelled"
    with pytest.raises(UnknownBooking):
        offers.find_booking(store, "01", store.offer(key).booking_code, os.urandom(8))


def test_the_proof_of_registration_lists_offers_and_bookings(booking):
    store, key, slot = booking
    kinds = [event["kind"] for event in store.history(key)]
    assert kinds[-1] == "offer_confirmed"
    statement = reg.proof_statement(store.registration(key), store.history(key), store.draws_entered(
        store.registration(key)), "Ain", DRAW_AT + datetime.timedelta(hours=3))
    assert "offer_confirmed" in json.dumps(statement)


def test_the_calendar_file_is_valid_icalendar():
    calendar = offers.calendar_file(
        uid="u@x", starts_at=DRAW_AT, ends_at=DRAW_AT + datetime.timedelta(minutes=30),
        summary="Rendez-vous, préfecture; titre", location="1 rue X, 01000 Bourg", description="Code: ABCDE-FGHJK",
        stamp=DRAW_AT,
    )
    lines = calendar.split("\r\n")
    assert lines[0] == "BEGIN:VCALENDAR" and f"DTSTART:{DRAW_AT:%Y%m%dT%H%M%S}Z" in lines
    assert "SUMMARY:Rendez-vous\\, préfecture\\; titre" in lines
    assert all(len(line.encode()) <= 75 for line in lines)
