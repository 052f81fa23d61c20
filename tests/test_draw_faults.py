"""Fault injection: a worker killed (SIGKILL) at a random point of a draw.

Twenty weekly draws of a pool of 100,000 entrants run in a separate process
that is killed after a random delay; the draw is then run again to the end.
Each must end published exactly once, with the winners an uninterrupted run
computes from the same frozen inputs, no slot offered twice and no
registration with two offers. QS_FAULT_DRAWS and QS_FAULT_ENTRANTS make the
run smaller while developing.
"""

import datetime
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from queue_service import draws
from queue_service.draws import lottery, schedules
from queue_service.draws.frozen import FrozenDraw
from queue_service.inventory.slots import SlotStatus

# About five minutes on a 2-core machine: more than the suite's default timeout.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench import pool  # noqa: E402

UTC = datetime.timezone.utc
FIRST_DRAW = datetime.datetime(2027, 1, 4, 9, 0, tzinfo=UTC)  # Mondays, 10:00 in Paris
DRAWS = int(os.environ.get("QS_FAULT_DRAWS", "20"))
ENTRANTS = int(os.environ.get("QS_FAULT_ENTRANTS", "100000"))
SLOTS_PER_DRAW = 2000
POOL = "01:renewal"

RUN_ONE_DRAW = """
import datetime, sys
import redis
from bench import pool
from queue_service import draws
from queue_service.store import Store
store = Store(redis.Redis.from_url(sys.argv[1]))
timing = pool.offer_timing()
print("ready", flush=True)
draws.run(store, sys.argv[2], sys.argv[3], datetime.datetime.fromisoformat(sys.argv[4]), timing)
"""

# The steps a draw passes through, in order; a worker is killed while the draw is at one of them.
STEPS = [draws.DrawState.SCHEDULED, draws.DrawState.FROZEN, draws.DrawState.DRAWN, draws.DrawState.COMMITTED]


def kill_during(store, redis_url: str, draw_id: str, now: datetime.datetime, step, rng: random.Random) -> None:
    """Start a draw worker and SIGKILL it a few milliseconds after the draw reaches `step`.

    The kill follows the draw's own progress, not the clock: on a loaded machine
    the worker's start-up and each step take longer, and a fixed delay would
    land in the same step every time.
    """
    process = subprocess.Popen(
        [sys.executable, "-c", RUN_ONE_DRAW, redis_url, POOL, draw_id, now.isoformat()],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    process.stdout.readline()  # the worker has imported what it needs and is about to run the draw
    if step is draws.DrawState.SCHEDULED:
        time.sleep(rng.uniform(0.0, 1.0))  # somewhere in the freeze, the longest step
    else:
        while STEPS.index(store.draw(POOL, draw_id).state) < STEPS.index(step) and process.poll() is None:
            time.sleep(0.002)
        time.sleep(rng.uniform(0.0, 0.05))
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    process.stdout.close()


def test_killed_draw_workers_never_half_apply_a_draw(redis, redis_url, store, reference_data):
    rng = random.Random(2027)
    schedule = pool.schedule("01", "renewal", FIRST_DRAW - datetime.timedelta(days=3), constrained=True)
    store.save_schedule(schedule)
    pool.waiting_list(store, "01", "renewal", ENTRANTS, draw_at=FIRST_DRAW, rng=rng, constrained=True)
    states_seen, offered_before = [], set()
    timing = pool.offer_timing()
    # Mondays at 10:00 in Paris: 09:00 UTC in winter, 08:00 UTC from the end of March.
    draw_times = schedules.next_draw_times(schedule, FIRST_DRAW - datetime.timedelta(minutes=1), DRAWS)
    for draw_at in draw_times:
        pool.week_of_slots(store, "01", "renewal", SLOTS_PER_DRAW, first_day=draw_at + datetime.timedelta(days=1, hours=-1))
        due = draws.due_draws(schedule, draw_at - datetime.timedelta(seconds=1), draw_at + datetime.timedelta(seconds=1))
        (draw,) = due
        draws.announce(store, schedule, draw, draw_at - datetime.timedelta(days=2))
        waiting_before = store.waiting_count(POOL)

        kill_during(store, redis_url, draw.draw_id, draw_at, rng.choice(STEPS), rng)
        states_seen.append(store.draw(POOL, draw.draw_id).state)
        assert draws.run(store, POOL, draw.draw_id, draw_at, timing) in (draws.DrawState.PUBLISHED,
                                                                         draws.DrawState.HELD)

        offered = check_applied_once(store, draw.draw_id, waiting_before)
        assert not offered & offered_before  # no registration holds two offers
        offered_before |= offered
    # The kills did land at different steps of the draw.
    if DRAWS >= 10:
        assert len(set(states_seen)) >= 2, states_seen


def check_applied_once(store, draw_id: str, waiting_before: int) -> set[str]:
    """Checks the draw was applied once; returns the registrations it offered a slot to."""
    record = store.draw(POOL, draw_id)
    frozen = FrozenDraw.from_fields(store.draw_frozen(POOL, draw_id))
    drawn = draws.drawn_winners(store, POOL, draw_id)
    winners = [{"ref": ref, "slot": slot_id} for ref, slot_id in zip(drawn["refs"], drawn["slots"])]

    # The same winners as an uninterrupted run on the same frozen inputs and seed.
    expected = lottery.run_draw(bytes.fromhex(record.seed), draw_id, frozen.entrants, frozen.slots, frozen.phases)
    assert [(w["ref"], w["slot"]) for w in winners] == list(zip(expected.winner_refs, expected.slot_ids))

    # Applied exactly once.
    offers = {rid: offer for rid, offer in store.offers(POOL).items() if offer.draw_id == draw_id}
    assert len(offers) == len(winners) == record.offered
    assert len({offer.slot_id for offer in offers.values()}) == len(offers)  # no slot offered twice
    entries = [m for m in store.outbox(POOL) if m["draw_id"] == draw_id]
    assert [m["kind"] for m in entries] == ["draw_offers"]  # one outbox entry for the draw's offers...
    messages = draws.offer_messages(store, POOL, draw_id)
    assert sorted(m["registration_id"] for m in messages) == sorted(offers)  # ...standing for one per offer
    assert all(m["slot"] == offers[m["registration_id"]].slot_id for m in messages)
    assert store.waiting_count(POOL) == waiting_before - len(winners)
    assert store.committed_draw_cutoffs(POOL).count(
        record.cutoff_at.timestamp()
    ) == 1
    offered_slots = [slot for slot in store.slots(POOL, record.horizon_start, record.horizon_end)
                     if slot.status is SlotStatus.OFFERED]
    assert sorted(slot.id for slot in offered_slots) == sorted(offer.slot_id for offer in offers.values())
    return set(offers)
