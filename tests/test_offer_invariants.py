"""A Hypothesis state machine against the real Redis: register, draw, confirm, decline, let time
pass, expire, cancel, check in, crash-and-retry jobs; the offers' invariants hold after every step.

Invariants: a slot has at most one holder; an applicant has at most one live offer or booking in
the pool; no confirmation is accepted after its deadline (by the server's clock); every offered
slot ends attended, no-show, cancelled, re-offered or back in a draw; each outbox message is sent
at most once once a send succeeded.
"""

import collections
import datetime

import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test
from helpers import CREATED, DRAW_AT, DRAW_ID, POOL, TIMING, publish_slots, register_people, schedule

from queue_service import draws, offers
from queue_service.errors import QueueServiceError
from queue_service.offers import OfferStatus
from queue_service.store.keys import PoolKeys
from worker import jobs

PEOPLE, SLOTS = 12, 5
LIVE = {OfferStatus.PENDING, OfferStatus.CONFIRMED}
# Counter (queue_service/metrics/__init__.py) -> the history event that tells of it on the registration.
COUNTED = {
    "offer_confirmed": "offer_confirmed", "offer_declined": "offer_declined", "offer_expired": "offer_expired",
    "offer_reoffered": "standby_offer", "booking_cancelled": "booking_cancelled",
    "slot_cancelled_by_prefecture": "slot_cancelled", "attended": "attended", "no_show": "no_show",
}


@pytest.mark.slow
def test_offers_keep_their_invariants(redis, settings, mailbox, run_jobs):
    identity_secret = settings.identity_key.encode()

    class Offers(RuleBasedStateMachine):
        def __init__(self):
            super().__init__()
            redis.flushall()  # the test run's own Redis
            mailbox.messages.clear()
            from queue_service import reference
            from queue_service.store import Store

            self.store = Store(redis)
            self.store.load_reference(reference.PREFECTURES, reference.PROCEDURES)
            self.store.add_missing_sites(reference.DEMO_SITES)
            self.store.save_schedule(schedule())
            self.slots = [slot.id for slot in publish_slots(self.store, SLOTS)]
            self.people = [p.key for p in register_people(self.store, PEOPLE, CREATED + datetime.timedelta(days=1))]
            self.now = DRAW_AT
            self.drawn = False
            self.ever_offered: set[str] = set()

        # Actions ------------------------------------------------------------------

        @precondition(lambda self: not self.drawn)
        @rule()
        def draw(self):
            due = draws.due_draws(schedule(), None, DRAW_AT + datetime.timedelta(seconds=1))[0]
            draws.announce(self.store, schedule(), due, DRAW_AT - datetime.timedelta(days=2))
            assert draws.run(self.store, POOL, DRAW_ID, DRAW_AT, TIMING) is draws.DrawState.PUBLISHED
            self.drawn = True
            self._note_offers()

        @rule(person=st.integers(0, PEOPLE - 1))
        def confirm(self, person):
            key = self.people[person]
            offer = self.store.offer(key)
            try:
                offers.confirm(self.store, key, identity_secret, self.now)
            except QueueServiceError:
                return
            # Accepted: it must have been before the deadline, by the server's clock.
            assert self.now <= offer.deadline

        @rule(person=st.integers(0, PEOPLE - 1), returns=st.booleans())
        def decline(self, person, returns):
            try:
                offers.decline(self.store, self.people[person], schedule(declined_returns_to_pool=returns), self.now)
            except QueueServiceError:
                pass

        @rule(person=st.integers(0, PEOPLE - 1))
        def cancel_booking(self, person):
            try:
                offers.cancel_booking(self.store, self.people[person], TIMING, self.now)
            except QueueServiceError:
                pass

        @rule(person=st.integers(0, PEOPLE - 1))
        def check_in(self, person):
            try:
                offers.check_in(self.store, self.people[person], self.now, override=True)
            except QueueServiceError:
                pass

        @rule(slot=st.integers(0, SLOTS - 1))
        def prefecture_cancels_a_slot(self, slot):
            try:
                offers.cancel_slot(self.store, POOL, self.slots[slot], self.now)
            except QueueServiceError:
                pass

        @rule(hours=st.sampled_from([1, 6, 20, 30, 49]))
        def let_time_pass(self, hours):
            self.now += datetime.timedelta(hours=hours)

        @rule(times=st.integers(1, 2))
        def offer_rounds(self, times):
            # A job run twice (retried after a crash, or duplicated) changes nothing more.
            for _ in range(times):
                schedule_now = schedule(expired_returns_to_pool=self.now.hour % 2 == 0)
                offers.expire_offers(self.store, POOL, schedule_now, self.now)
                offers.fill_standby(self.store, POOL, schedule_now, TIMING, self.now)
                offers.queue_reminders(self.store, POOL, TIMING, self.now)
                offers.mark_no_shows(self.store, POOL, TIMING, self.now)
            self._note_offers()

        @rule(redispatch=st.booleans())
        def send_messages(self, redispatch):
            head = self.store.outbox_head(POOL, 3)
            jobs.dispatch_pool(redis, self.store, POOL)
            if redispatch and head:
                # A dispatcher that crashed after queueing, before trimming: the same messages again.
                redis.rpush(PoolKeys(POOL).outbox, *head)
                jobs.dispatch_pool(redis, self.store, POOL)
            run_jobs()

        # Invariants ------------------------------------------------------------------

        def _note_offers(self):
            self.ever_offered |= {offer.slot_id for offer in self.store.offers(POOL).values()}

        @invariant()
        def a_slot_has_at_most_one_holder(self):
            live = [o for o in self.store.offers(POOL).values() if o.status in LIVE]
            assert len({o.slot_id for o in live}) == len(live)
            holders = self.store.slot_holders(POOL)
            for registration_id, offer in self.store.offers(POOL).items():
                if offer.status in LIVE:
                    assert holders.get(offer.slot_id) == registration_id
            states = {slot: self.store.slot(POOL, slot).status.value for slot in self.slots}
            assert all(states[slot] in ("offered", "booked") for slot in holders)

        @invariant()
        def one_live_offer_or_booking_per_applicant_and_statuses_agree(self):
            for key in self.people:
                status = self.store.registration(key).status.value
                offer = self.store.offer(key)
                offer_status = offer.status if offer else None
                assert (status == "offered") == (offer_status is OfferStatus.PENDING)
                assert (status == "confirmed") == (offer_status is OfferStatus.CONFIRMED)

        @invariant()
        def counters_equal_a_recount_from_the_registrations_histories(self):
            histories = collections.Counter(event["kind"] for key in self.people for event in self.store.history(key))
            totals = self.store.stats_totals([POOL])[POOL]
            for event, kind in COUNTED.items():
                assert totals.get(event, 0) == histories[kind], (event, totals.get(event, 0), histories[kind])

        @invariant()
        def each_message_is_sent_at_most_once(self):
            sent = collections.Counter(message["X-QS-Message"] for message in mailbox.messages)
            assert all(count == 1 for count in sent.values()), sent.most_common(3)

        def teardown(self):
            # Long after every slot: each offered slot ended attended, no-show, cancelled,
            # re-offered (then ended so) or back in a draw.
            self.now += datetime.timedelta(days=60)
            for _ in range(3):
                self.offer_rounds(1)
            offers_now = self.store.offers(POOL)
            assert not [o for o in offers_now.values() if o.status in LIVE]
            assert self.store.standby_slots(POOL) == {}
            for slot in self.ever_offered:
                state = self.store.slot(POOL, slot).status.value
                holder = self.store.slot_holder(POOL, slot)
                final = offers_now[holder].status if holder else None
                assert (state, final) in {("open", None), ("cancelled", None), ("booked", OfferStatus.ATTENDED),
                                          ("booked", OfferStatus.NO_SHOW)}, (slot, state, final)

    run_state_machine_as_test(Offers, settings=hypothesis_settings(
        max_examples=25, stateful_step_count=30, deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    ))

