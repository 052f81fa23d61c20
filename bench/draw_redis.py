"""A draw end to end on a real Redis: the service's path, not only the arithmetic.

    python bench/draw_redis.py --entrants 1000000 --slots 100000 [--constrained]

Starts an embedded Redis in a temporary folder (or uses --redis-url, whose
database it fills: give it an empty one), writes a synthetic waiting list and
a week of slots, announces the draw, then times each step of the draw job:
freeze (read the entrants from Redis), draw (the lottery), commit (one Lua
script: offers, slots, counters, outbox) and the bias check + publication.
The target is "from frozen entrants in Redis to committed": draw + commit.
"""

from __future__ import annotations

import argparse
import datetime
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import redis  # noqa: E402

from bench import pool  # noqa: E402
from queue_service import draws, reference  # noqa: E402
from queue_service.store import Store  # noqa: E402

UTC = datetime.timezone.utc
DRAW_AT = datetime.datetime(2027, 1, 4, 9, 0, tzinfo=UTC)  # a Monday, 10:00 in Paris


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entrants", type=int, default=1_000_000)
    parser.add_argument("--slots", type=int, default=100_000)
    parser.add_argument("--constrained", action="store_true")
    parser.add_argument("--redis-url", help="an empty Redis database to use instead of an embedded one")
    arguments = parser.parse_args()

    if arguments.redis_url:
        connection = redis.Redis.from_url(arguments.redis_url)
        if connection.dbsize():
            parser.error("that database is not empty: give an empty one")
    else:
        connection = pool.embedded_redis(tempfile.mkdtemp())
    store = Store(connection)
    store.load_reference(reference.PREFECTURES, reference.PROCEDURES)
    store.add_missing_sites(reference.DEMO_SITES)
    schedule = pool.schedule("01", "renewal", DRAW_AT - datetime.timedelta(days=3), arguments.constrained)
    store.save_schedule(schedule)

    started = time.perf_counter()
    pool.waiting_list(store, "01", "renewal", arguments.entrants, draw_at=DRAW_AT, rng=random.Random(1),
                      constrained=arguments.constrained)
    pool.week_of_slots(store, "01", "renewal", arguments.slots, first_day=DRAW_AT + datetime.timedelta(days=1, hours=-1))
    setup = time.perf_counter() - started

    due = draws.due_draws(schedule, None, DRAW_AT + datetime.timedelta(seconds=1))[0]
    draws.announce(store, schedule, due, DRAW_AT - datetime.timedelta(days=2))
    fence = store.take_draw_fence(due.pool, due.draw_id)
    timing = pool.offer_timing()
    figures = {}
    for step, action in (
        ("freeze", lambda: draws.freeze(store, due.pool, store.draw(due.pool, due.draw_id), schedule, fence, DRAW_AT,
                                        timing)),
        ("draw", lambda: draws.draw(store, due.pool, due.draw_id, fence, DRAW_AT)),
        ("commit", lambda: draws.commit(store, due.pool, due.draw_id, fence, schedule, DRAW_AT, timing)),
        ("bias check + publish", lambda: draws.publish_or_hold(store, due.pool, due.draw_id, fence, DRAW_AT)),
    ):
        started = time.perf_counter()
        action()
        figures[step] = time.perf_counter() - started

    record = store.draw(due.pool, due.draw_id)
    print(f"{arguments.entrants:,} entrants, {arguments.slots:,} slots, constrained={arguments.constrained}")
    print(f"setup (bulk write of the waiting list and slots): {setup:.1f} s")
    for step, seconds in figures.items():
        print(f"{step:>22}: {seconds:6.2f} s")
    target = figures["draw"] + figures["commit"]
    print(f"frozen entrants in Redis -> committed (draw + commit): {target:.2f} s (target 3 s: ratio {target / 3:.2f})")
    print(f"state {record.state.value}, winners {record.winners}, offered {record.offered}, "
          f"bias check {list(record.bias_check or ())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
