"""A frozen draw's inputs, stored as columns: read back exactly, and draws frozen by an earlier version still run."""

import json

import numpy as np
import pytest
from helpers import DRAW_AT, DRAW_ID, POOL, TIMING, announce_freeze_and_draw, schedule

from queue_service import draws
from queue_service.draws import lottery
from queue_service.draws.frozen import FrozenDraw
from queue_service.store.keys import PoolKeys

FROZEN_KEY = PoolKeys(POOL).draw_frozen(DRAW_ID)
RESULT_KEY = PoolKeys(POOL).draw_result(DRAW_ID)


def test_the_columns_read_back_as_they_were_written(redis, pool):
    store, slots, people = pool
    announce_freeze_and_draw(store)
    frozen = FrozenDraw.from_fields(store.draw_frozen(POOL, DRAW_ID))
    assert redis.type(FROZEN_KEY) == b"hash" and len(frozen.entrants) == 60
    by_ref = {person.ref: person for person in people}
    assert sorted(frozen.entrants.refs) == sorted(by_ref)
    for index, ref in enumerate(frozen.entrants.refs):
        person = by_ref[ref]
        assert frozen.registrations[index] == person.key.registration_id
        assert frozen.channels[frozen.channel_codes[index]] == person.channel.value
        # The policy (constraints apply by default): the sites chosen, every half-day.
        accepted_sites = {slot_class.split("-")[0] for slot_class in frozen.entrants.accepts(index)}
        assert accepted_sites == set(person.applicant.sites)
    assert sorted(frozen.slots.ids) == sorted(slot.id for slot in slots)
    assert frozen.weight_values().tolist() == [1.0] * 60  # nobody has lost a draw yet
    # The result lists the winners in the order they joined the waiting list, for the commit.
    drawn = draws.drawn_winners(store, POOL, DRAW_ID)
    joined = {registration: frozen.joined_at[i] for i, registration in enumerate(frozen.registrations)}
    assert sorted(drawn["by_wait"]) == list(range(20))
    in_wait_order = [drawn["registrations"][position] for position in drawn["by_wait"]]
    assert in_wait_order == sorted(drawn["registrations"], key=lambda registration: (joined[registration], registration))
    again = FrozenDraw.from_fields({name: value if isinstance(value, bytes) else value.encode()
                                    for name, value in frozen.to_fields().items()})
    assert again.entrants.rows() == frozen.entrants.rows() and again.slots.rows() == frozen.slots.rows()
    assert np.array_equal(again.joined_at, frozen.joined_at) and again.registrations == frozen.registrations


def test_an_unknown_format_is_refused():
    with pytest.raises(ValueError, match="columns/99"):
        FrozenDraw.from_fields({"format": b"columns/99"})


def earlier_version_document(frozen: FrozenDraw) -> str:
    """The one JSON document an earlier version stored at the freeze."""
    refs = frozen.entrants.refs
    return json.dumps({
        "entrants": frozen.entrants.rows(),
        "slots": frozen.slots.rows(),
        "phases": [{"group": phase.group, "max_winners": phase.max_winners} for phase in frozen.phases],
        "registrations": dict(zip(refs, frozen.registrations)),
        "joined_at": dict(zip(refs, frozen.joined_at.tolist())),
        "channels": dict(zip(refs, frozen.channel_of_each().tolist())),
    })


def test_a_draw_frozen_and_drawn_by_an_earlier_version_commits_and_publishes_the_same(redis, pool):
    store, _, _ = pool
    fence = announce_freeze_and_draw(store)
    frozen = FrozenDraw.from_fields(store.draw_frozen(POOL, DRAW_ID))
    expected = draws.drawn_winners(store, POOL, DRAW_ID)
    record_before = draws.public_record(store, POOL, DRAW_ID)
    # Rewrite both stored steps as the earlier version left them: a document, and one object per winner.
    redis.delete(FROZEN_KEY)
    redis.set(FROZEN_KEY, earlier_version_document(frozen))
    redis.set(RESULT_KEY, json.dumps([
        {"ref": ref, "slot": slot_id, "registration": registration}
        for ref, slot_id, registration in zip(expected["refs"], expected["slots"], expected["registrations"])
    ]))
    assert draws.public_record(store, POOL, DRAW_ID) == record_before

    draws.commit(store, POOL, DRAW_ID, fence, schedule(), DRAW_AT, TIMING)
    draws.publish_or_hold(store, POOL, DRAW_ID, fence, DRAW_AT)
    record = draws.public_record(store, POOL, DRAW_ID)
    assert record["state"] == "published" and record["not_applied"] == []
    assert [(w["ref"], w["slot"]) for w in record["winners"]] == list(zip(expected["refs"], expected["slots"]))
    offers = store.offers(POOL)
    assert sorted(offers) == sorted(expected["registrations"])
    assert {offer.ref: offer.slot_id for offer in offers.values()} == dict(zip(expected["refs"], expected["slots"]))
    # And the same draw replayed from the earlier document gives the same winners.
    replayed = FrozenDraw.from_fields(store.draw_frozen(POOL, DRAW_ID))
    seed = bytes.fromhex(store.draw(POOL, DRAW_ID).seed)
    result = lottery.run_draw(seed, DRAW_ID, replayed.entrants, replayed.slots, replayed.phases)
    assert list(result.winner_refs) == expected["refs"]
