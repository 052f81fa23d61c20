"""The states the store writes are the ones the enums know, and its records (Offer,
Draw) read back from Redis as they were written.

Each enum is checked against the real store, its Lua scripts and transactions:
a life that goes through every state, with the raw values read from Redis. A
value written that its enum does not know, or an enum value nothing writes any
more, fails here.
"""

import dataclasses
import datetime
import json
import random

from helpers import (
    CREATED,
    DEADLINE,
    DRAW_AT,
    DRAW_ID,
    POOL,
    SECRET,
    TIMING,
    announce_freeze_and_draw,
    key_of,
    offered,
    publish_slots,
    register_people,
    schedule,
)

from queue_service import draws, offers
from queue_service import registration as reg
from queue_service.draws import Draw, DrawState, Trigger
from queue_service.inventory.slots import SlotStatus
from queue_service.offers import (
    Offer,
    OfferAction,
    OfferOutcome,
    OfferStatus,
    StandbyOutcome,
)
from queue_service.reference import procedure_by_code
from queue_service.registration import RegistrationStatus
from queue_service.registration.agdref import UploadedRecords
from queue_service.store.draws import draw_fields, draw_from_fields
from queue_service.store.keys import PoolKeys
from queue_service.store.offers import offer_from_json, offer_to_json


class Seen:
    """The raw values found in Redis: offers' statuses, slots' states, registrations' statuses."""

    def __init__(self, store, people):
        self.store, self.people = store, people
        self.offers, self.slots, self.registrations = set(), set(), set()

    def look(self) -> None:
        keys = PoolKeys(POOL)
        self.offers |= {json.loads(raw)["status"] for raw in self.store.redis.hvals(keys.offers)}
        self.slots |= {raw.decode() for raw in self.store.redis.hvals(keys.slot_states)}
        self.registrations |= {
            self.store.registration_statuses(POOL, [person.key.registration_id])[0]
            for person in self.people
        }


def values(enum) -> set[str]:
    return {member.value for member in enum}


def every_offer_step(store) -> Seen:
    """A draw of 10 slots among 30 people, then each step of offers and bookings taken at least once,
    Redis looked at after each."""
    store.save_schedule(schedule())
    slots = publish_slots(store, 10)
    seen = Seen(store, register_people(store, 30, CREATED + datetime.timedelta(days=1)))
    draws.announce(store, schedule(), draws.due_draws(schedule(), None, DRAW_AT + datetime.timedelta(seconds=1))[0],
                   DRAW_AT - datetime.timedelta(days=2))
    draws.run(store, POOL, DRAW_ID, DRAW_AT, TIMING)
    seen.look()
    now = DRAW_AT + datetime.timedelta(hours=1)
    attended, no_show, cancelled, declined, slot_cancelled, *_ = [key_of(rid) for rid in sorted(offered(store))]
    for key in (attended, no_show, cancelled, slot_cancelled):
        offers.confirm(store, key, SECRET, now)
    seen.look()
    slot_of = {key: store.slot(POOL, store.offer(key).slot_id) for key in (attended, no_show, cancelled)}
    offers.check_in(store, attended, slot_of[attended].starts_at)
    offers.cancel_booking(store, cancelled, TIMING, now)
    offers.decline(store, declined, schedule(declined_returns_to_pool=False), now)
    seen.look()
    offers.cancel_slot(store, POOL, store.offer(slot_cancelled).slot_id, now)
    offers.fill_standby(store, POOL, schedule(), TIMING, now)  # the freed slots go to the draw's next entrants
    seen.look()
    offers.expire_offers(store, POOL, schedule(expired_returns_to_pool=False), DEADLINE + datetime.timedelta(hours=1))
    seen.look()
    offers.mark_no_shows(store, POOL, TIMING, slot_of[no_show].ends_at + datetime.timedelta(hours=1))
    # Slots freed too close to their start open for the next draw.
    offers.fill_standby(store, POOL, schedule(), TIMING, max(slot.starts_at for slot in slots))
    seen.look()
    return seen


def test_every_status_the_offer_scripts_write_is_one_the_enums_know(store, reference_data):
    seen = every_offer_step(store)
    assert {OfferStatus(status) for status in seen.offers} == set(OfferStatus)
    assert {SlotStatus(state) for state in seen.slots} == set(SlotStatus)
    assert seen.offers == values(OfferStatus) and seen.slots == values(SlotStatus)


def test_every_status_a_registration_takes_is_one_the_enum_knows(store, reference_data):
    seen = every_offer_step(store)
    now = DRAW_AT + datetime.timedelta(days=30)
    waiting = [person for person in seen.people if store.registration(person.key).status is RegistrationStatus.WAITING]
    reg.withdraw(store, waiting[0].key, now)
    form = {"family_name": "Still Unconfirmed", "given_names": "Test", "birth_date": "1991-01-01", "nationality": "MA",
            "email": "unconfirmed@example.org", "phone": "+33612999999", "consent": "yes"}
    applicant = reg.parse_applicant(form, procedure_by_code("first_request"), ["bourg", "gex"], now.date())
    unconfirmed = reg.register(store, "01", "first_request", applicant, now=now, rng=random.Random(5),
                               identity_secret=SECRET, limits=reg.Limits(4, datetime.timedelta(hours=24)),
                               records=UploadedRecords(store, SECRET))
    seen.people.append(unconfirmed)
    seen.look()
    assert {RegistrationStatus(status) for status in seen.registrations} == set(RegistrationStatus)
    assert seen.registrations == values(RegistrationStatus)


def test_every_offer_action_reaches_the_script_and_every_answer_is_an_outcome(drawn):
    store, _, people = drawn
    now = DRAW_AT + datetime.timedelta(hours=1)
    first, second = [key_of(rid) for rid in sorted(offered(store))[:2]]
    assert store.move_offer(first, OfferAction.EXPIRE, now, "1") is OfferOutcome.TOO_EARLY
    assert store.move_offer(first, OfferAction.CONFIRM, DEADLINE + datetime.timedelta(seconds=1), "CODE", 0) \
        is OfferOutcome.TOO_LATE
    offers.confirm(store, first, SECRET, now)
    slot = store.slot(POOL, store.offer(first).slot_id)
    assert store.move_offer(first, OfferAction.MARK_NO_SHOW, now, slot.ends_at.timestamp()) is OfferOutcome.TOO_EARLY
    assert store.move_offer(first, OfferAction.CANCEL, now, now.timestamp() - 1) is OfferOutcome.TOO_LATE
    assert store.move_offer(first, OfferAction.MARK_ATTENDED, now) is OfferOutcome.APPLIED
    # An attended booking takes no transition: each action is known to the script, which refuses it.
    for action in OfferAction:
        assert store.move_offer(first, action, now, "0") is OfferOutcome.WRONG_STATE, action
    never_offered = next(person for person in people if store.offer(person.key) is None)
    assert store.move_offer(never_offered.key, OfferAction.CONFIRM, now) is OfferOutcome.NO_OFFER
    assert store.move_offer(key_of("no-such-registration"), OfferAction.CONFIRM, now) is OfferOutcome.NO_REGISTRATION

    # Standby: the slot must wait for it, and the person must still wait.
    held_slot = store.offer(second).slot_id
    deadline = now + datetime.timedelta(hours=48)
    assert store.offer_standby(never_offered.key, never_offered.ref, held_slot, DRAW_ID, deadline, now) \
        is StandbyOutcome.SLOT_GONE
    offers.decline(store, second, schedule(), now)
    assert store.offer_standby(first, store.offer(first).ref, held_slot, DRAW_ID, deadline, now) \
        is StandbyOutcome.PERSON_UNAVAILABLE
    assert store.offer_standby(never_offered.key, never_offered.ref, held_slot, DRAW_ID, deadline, now) \
        is StandbyOutcome.OFFERED


def test_every_draw_state_and_trigger_the_scripts_write_is_one_the_enums_know(store, reference_data):
    store.save_schedule(schedule())
    publish_slots(store, 4)
    register_people(store, 6, CREATED + datetime.timedelta(days=1))
    record_key = PoolKeys(POOL).draw(DRAW_ID)
    states = set()

    def look() -> None:
        states.add(store.redis.hget(record_key, "state").decode())

    due = draws.due_draws(schedule(), None, DRAW_AT + datetime.timedelta(seconds=5))[0]
    draws.announce(store, schedule(), due, DRAW_AT)
    look()
    fence = store.take_draw_fence(POOL, DRAW_ID)
    draws.freeze(store, POOL, store.draw(POOL, DRAW_ID), schedule(), fence, DRAW_AT, TIMING)
    look()
    draws.draw(store, POOL, DRAW_ID, fence, DRAW_AT)
    look()
    draws.commit(store, POOL, DRAW_ID, fence, schedule(), DRAW_AT, TIMING)
    look()
    # As the bias check does when it fails, then staff release it.
    store.update_draw_state(POOL, DRAW_ID, fence, DrawState.COMMITTED, {"state": DrawState.HELD.value})
    look()
    draws.release_held(store, POOL, DRAW_ID, DRAW_AT)
    look()
    now_draw = draws.draw_now(schedule(), "01", "first_request", "Europe/Paris", DRAW_AT + datetime.timedelta(hours=1))
    draws.announce(store, schedule(), now_draw, DRAW_AT + datetime.timedelta(hours=1))

    assert {DrawState(state) for state in states} == set(DrawState) and states == values(DrawState)
    triggers = {store.redis.hget(PoolKeys(POOL).draw(draw_id), "trigger").decode()
                for draw_id in (DRAW_ID, now_draw.draw_id)}
    assert {Trigger(trigger) for trigger in triggers} == set(Trigger) and triggers == values(Trigger)


# The codecs ----------------------------------------------------------------------------------


def raw_offers(store) -> dict[str, dict]:
    return {rid.decode(): json.loads(raw) for rid, raw in store.redis.hgetall(PoolKeys(POOL).offers).items()}


def test_an_offer_reads_back_as_the_scripts_wrote_it(drawn):
    store, _, _ = drawn
    now = DRAW_AT + datetime.timedelta(hours=1)
    confirmed, declined = [key_of(rid) for rid in sorted(offered(store))[:2]]
    offers.confirm(store, confirmed, SECRET, now)
    offers.decline(store, declined, schedule(), now)
    offers.fill_standby(store, POOL, schedule(), TIMING, now)
    written = raw_offers(store)
    kinds = {(fields["status"], "code" in fields, fields.get("standby", False)) for fields in written.values()}
    assert {("confirmed", True, False), ("declined", False, False), ("pending", False, True),
            ("pending", False, False)} <= kinds  # a booking, a declined offer, a standby offer, a draw's offer
    for registration_id, fields in written.items():
        offer = offer_from_json(registration_id, json.dumps(fields))
        assert json.loads(offer_to_json(offer)) == fields
        assert offer == store.offer(key_of(registration_id)) == store.offers(POOL)[registration_id]
        assert offer.deadline.tzinfo is not None and offer.deadline.isoformat() == fields["deadline"]


def test_an_offer_ignores_fields_it_does_not_know_and_leaves_absent_ones_empty(drawn):
    store, _, _ = drawn
    registration_id, fields = min(raw_offers(store).items())
    assert {"code", "standby", "changed_at"}.isdisjoint(fields)  # as the draw's commit writes an offer
    offer = offer_from_json(registration_id, json.dumps(fields))
    assert (offer.booking_code, offer.standby, offer.changed_at) == (None, False, None)
    assert offer.status is OfferStatus.PENDING and offer.registration_id == registration_id
    newer = fields | {"channel_hint": "sms", "reminded": [48]}  # written by a later version
    assert offer_from_json(registration_id, json.dumps(newer)) == offer


def test_an_offer_round_trips_through_its_codec():
    offer = Offer(registration_id="r1", draw_id=DRAW_ID, ref="01R-7K3Q9X", slot_id="s1",
                  status=OfferStatus.CONFIRMED, deadline=DEADLINE, offered_at=DRAW_AT, booking_code="ABCDE12345",
                  standby=True, changed_at=DRAW_AT + datetime.timedelta(hours=2))
    assert offer_from_json("r1", offer_to_json(offer)) == offer
    plain = dataclasses.replace(offer, status=OfferStatus.PENDING, booking_code=None, standby=False, changed_at=None)
    assert offer_from_json("r1", offer_to_json(plain)) == plain


def raw_draw(store, draw_id: str = DRAW_ID) -> dict[str, str]:
    return {name.decode(): value.decode() for name, value in store.redis.hgetall(PoolKeys(POOL).draw(draw_id)).items()}


def test_a_draw_reads_back_as_it_was_written_at_every_step(store, reference_data):
    store.save_schedule(schedule())
    publish_slots(store, 6)
    register_people(store, 8, CREATED + datetime.timedelta(days=1))
    fence = announce_freeze_and_draw(store)
    # A winner's slot cancelled since the freeze: the record lists the winner as not applied.
    offers.cancel_slot(store, POOL, draws.drawn_winners(store, POOL, DRAW_ID)["slots"][0], DRAW_AT)
    draws.commit(store, POOL, DRAW_ID, fence, schedule(), DRAW_AT, TIMING)
    draws.publish_or_hold(store, POOL, DRAW_ID, fence, DRAW_AT)
    fields = raw_draw(store)
    record = draw_from_fields(fields)
    assert draw_fields(record) == fields
    assert record == store.draw(POOL, DRAW_ID) == store.draws(POOL)[0]
    assert record.state in (DrawState.PUBLISHED, DrawState.HELD) and record.trigger is Trigger.SCHEDULE
    assert record.entrants == 8 and record.slots == 6 and record.offered == record.winners - 1
    assert len(record.not_applied) == 1 and record.bias_check is not None
    assert (record.published_at or record.held_at) is not None
    assert record.offers_deadline == DRAW_AT + datetime.timedelta(hours=48)
    assert record.scheduled_at == DRAW_AT and record.scheduled_at.tzinfo is not None


def test_a_draw_ignores_fields_it_does_not_know_and_leaves_those_of_later_steps_empty(store, reference_data):
    store.save_schedule(schedule())
    due = draws.due_draws(schedule(), None, DRAW_AT + datetime.timedelta(seconds=5))[0]
    draws.announce(store, schedule(), due, DRAW_AT - datetime.timedelta(days=1))
    fields = raw_draw(store)
    record = draw_from_fields(fields)
    assert record.state is DrawState.SCHEDULED and record.announced_late is False
    later = [field.name for field in dataclasses.fields(Draw) if field.default is None]
    assert later and all(getattr(record, name) is None for name in later)
    assert draw_from_fields(fields | {"beacon_round": "4242", "spec": "fairdraw/v2"}) == record
    # A record written before announcements said whether they were late.
    assert draw_from_fields({name: value for name, value in fields.items() if name != "late"}) == record


def test_a_draw_round_trips_through_its_codec():
    record = Draw(draw_id=DRAW_ID, prefecture="01", procedure="first_request", state=DrawState.HELD,
                  trigger=Trigger.ADMIN, scheduled_at=DRAW_AT, cutoff_at=DRAW_AT - datetime.timedelta(hours=1),
                  seed="00" * 32, commitment="11" * 32, announced_at=DRAW_AT, announced_late=True,
                  run_claimed_at=DRAW_AT, frozen_at=DRAW_AT, entrants=3, urgent_entrants=0, slots=2,
                  entrants_digest="22" * 32, horizon_start=DRAW_AT, horizon_end=DRAW_AT + datetime.timedelta(days=7),
                  drawn_at=DRAW_AT, winners=2, committed_at=DRAW_AT, offered=1,
                  offers_deadline=DRAW_AT + datetime.timedelta(hours=48), not_applied=("01R-AAAAAA",),
                  held_at=DRAW_AT, bias_check=({"test": "channel", "p_value": 0.0001, "chi_square": 20.5,
                                                "suspicious": True},))
    assert draw_from_fields(draw_fields(record)) == record
    announced = Draw(draw_id=DRAW_ID, prefecture="01", procedure="first_request", state=DrawState.SCHEDULED,
                     trigger=Trigger.SCHEDULE, scheduled_at=DRAW_AT.astimezone(datetime.timezone(
                         datetime.timedelta(hours=1))), cutoff_at=DRAW_AT, seed="00" * 32, commitment="11" * 32,
                     announced_at=DRAW_AT)
    assert draw_from_fields(draw_fields(announced)) == announced
    assert draw_fields(announced)["scheduled_at"] == f"{announced.scheduled_at:%Y-%m-%dT%H:%M:%S}+01:00"
