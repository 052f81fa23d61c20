"""A draw end to end on a real Redis, each step beside its own floor measured in the same run.

    python bench/draw_redis.py [--entrants 200000] [--slots N] [--constrained]
    python bench/draw_redis.py --entrants 1000000          (the size the targets speak of)

Starts a redis-server of its own (bench/redis_server.py: Debian's, Redis 7.0;
or uses --redis-url, whose database it fills: give it an empty one), writes a
synthetic waiting list and a week of slots (by default a tenth as many slots as
entrants), announces the draw, then times each step of the draw job: freeze
(read the entrants from Redis and store them as columns), draw (the lottery),
commit (offers, slots, counters, outbox) and the bias check + publication.

Absolute seconds move twofold between machines of the same kind, so each
target is a ratio to a floor measured here, on the same machine and Redis:

(a) freeze floor: read, with plain pipelined commands, the fields the freeze
    needs (ref, permit expiry, sites, half-days, channel, draws lost, when the
    wait began) of every waiting registration, and nothing else.
    Target: freeze <= 2 x (a).
(b) draw-job floor: read the frozen columns, one SHA-256 per entrant, an
    unverifiable numpy selection (exponential keys, argpartition: no ordering
    by ref, no matching, no phases), and write the winners pipelined (the
    registration's status, its offer, the slot's state and holder, out of the
    waiting set). Target: frozen -> committed (draw + commit) <= 3 x (b).

The longest single command (or script) of each step is read from the server's
SLOWLOG (commands over 1 ms): the freeze must never hold Redis for more than
100 ms at a time. Floor (b) writes into a database of its own (the next index)
so that the draw's data stays as the steps left it.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import redis  # noqa: E402

from bench import pool  # noqa: E402
from bench.redis_server import DEFAULT_SERVER, PrivateRedis  # noqa: E402
from queue_service import draws, reference  # noqa: E402
from queue_service.store import Store  # noqa: E402
from queue_service.store.fields import short_name  # noqa: E402
from queue_service.store.keys import PoolKeys  # noqa: E402

UTC = datetime.timezone.utc
DRAW_AT = datetime.datetime(2027, 1, 4, 9, 0, tzinfo=UTC)  # a Monday, 10:00 in Paris
POOL = "01:renewal"
BATCH = 10_000  # commands per pipeline in the floors
FREEZE_FIELDS = tuple(short_name(name) for name in ("ref", "permit_expiry", "sites", "half_days", "channel",
                                                     "draws_lost", "waiting_entered_at"))
SLOW_MICROSECONDS = 1000  # what the SLOWLOG keeps: commands over 1 ms


class LongestCommand:
    """The longest single command the server ran since the last `take()`, from its SLOWLOG
    (None when the server does not let us configure it)."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        try:
            client.config_set("slowlog-log-slower-than", SLOW_MICROSECONDS)
            client.config_set("slowlog-max-len", 100_000)
            client.slowlog_reset()
            self.available = True
        except redis.ResponseError:
            self.available = False

    def take(self) -> tuple[float, str, int] | None:
        """(milliseconds, the command's name) of the longest, and how many took over 100 ms;
        (0, "", 0) if none took over 1 ms. (On a busy machine a command's time includes
        the moments the server was not scheduled: a rare outlier is the machine's.)"""
        if not self.available:
            return None
        entries = self.client.slowlog_get(100_000)
        self.client.slowlog_reset()
        if not entries:
            return 0.0, "", 0
        longest = max(entries, key=lambda entry: entry["duration"])
        command = longest["command"]
        name = (command.decode(errors="replace") if isinstance(command, bytes) else str(command)).split(" ")[0]
        return longest["duration"] / 1000, name, sum(entry["duration"] > 100_000 for entry in entries)


def freeze_floor(client: redis.Redis, cutoff: float) -> int:
    """(a): every waiting registration's freeze fields, read with plain pipelined commands."""
    keys = PoolKeys(POOL)
    prefix = keys.registration_prefix
    count = client.zcount(keys.waiting, "-inf", cutoff)
    read = 0
    for first in range(0, count, BATCH):
        # By rank: those joined by the cutoff are the first `count`.
        members = client.zrange(keys.waiting, first, min(first + BATCH, count) - 1, withscores=True)
        with client.pipeline(transaction=False) as pipe:
            for registration_id, _ in members:
                pipe.hmget(prefix + registration_id.decode(), FREEZE_FIELDS)
            rows = pipe.execute()
        read += sum(1 for row in rows if row[0] is not None)
    return read


def draw_job_floor(client: redis.Redis, scratch: redis.Redis, draw_id: str, seed: bytes, winners: int) -> int:
    """(b): the frozen columns read, one SHA-256 per entrant, numpy's top `winners` by
    exponential keys, and the winners written pipelined (into the scratch database)."""
    keys = PoolKeys(POOL)
    fields = client.hgetall(keys.draw_frozen(draw_id))
    refs = json.loads(fields[b"refs"])
    registrations = json.loads(fields[b"registrations"])
    header = json.loads(fields[b"header"])
    weights = np.array([float(weight) for weight in header["weights"]])[np.frombuffer(fields[b"weight_codes"], "<i4")]
    prefix = hashlib.sha256(seed + draw_id.encode() + b"\x00")
    digests = bytearray()
    for ref in refs:
        entrant = prefix.copy()
        entrant.update(ref.encode())
        digests += entrant.digest()
    words = np.frombuffer(bytes(digests), dtype=">u8")[::4]
    uniforms = ((words >> np.uint64(11)).astype(np.float64) + 0.5) / 2.0**53
    race = -np.log(uniforms) / weights
    count = min(winners, len(refs))
    chosen = np.argpartition(race, count - 1)[:count] if count else np.array([], dtype=np.int64)
    slot_ids = header["slot_ids"]
    scratch_keys = PoolKeys(POOL)
    for first in range(0, count, BATCH):
        with scratch.pipeline(transaction=False) as pipe:
            for rank, position in enumerate(chosen[first : first + BATCH].tolist(), start=first):
                registration_id, slot_id = registrations[position], slot_ids[rank % len(slot_ids)]
                pipe.hset(scratch_keys.registration(registration_id), mapping={short_name("status"): "offered",
                                                                                short_name("status_changed_at"): "x" * 25})
                pipe.hset(scratch_keys.offers, registration_id, json.dumps({"draw_id": draw_id, "ref": refs[position],
                                                                            "slot": slot_id, "status": "pending"}))
                pipe.hset(scratch_keys.slot_states, slot_id, "offered")
                pipe.hset(scratch_keys.slot_holders, slot_id, registration_id)
                pipe.zrem(scratch_keys.waiting, registration_id)
            pipe.execute()
    return count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entrants", type=int, default=200_000)
    parser.add_argument("--slots", type=int, help="default: a tenth of the entrants")
    parser.add_argument("--constrained", action="store_true")
    parser.add_argument("--redis-url", help="an empty Redis database to use instead of a server of our own")
    parser.add_argument("--server", default=DEFAULT_SERVER, help="the redis-server to start (default %(default)s)")
    arguments = parser.parse_args()
    slots = arguments.slots if arguments.slots is not None else max(1, arguments.entrants // 10)

    server = None
    if arguments.redis_url:
        connection = redis.Redis.from_url(arguments.redis_url)
        if connection.dbsize():
            parser.error("that database is not empty: give an empty one")
    else:
        server = PrivateRedis(arguments.server)
        connection = server.client
    try:
        run(connection, arguments.entrants, slots, arguments.constrained)
    finally:
        if server is not None:
            server.stop()
    return 0


def run(connection: redis.Redis, entrants: int, slot_count: int, constrained: bool) -> None:
    store = Store(connection)
    store.load_reference(reference.PREFECTURES, reference.PROCEDURES)
    store.add_missing_sites(reference.DEMO_SITES)
    schedule = pool.schedule("01", "renewal", DRAW_AT - datetime.timedelta(days=3), constrained)
    store.save_schedule(schedule)

    started = time.perf_counter()
    pool.waiting_list(store, "01", "renewal", entrants, draw_at=DRAW_AT, rng=random.Random(1), constrained=constrained)
    pool.week_of_slots(store, "01", "renewal", slot_count, first_day=DRAW_AT + datetime.timedelta(days=1, hours=-1))
    setup = time.perf_counter() - started

    due = draws.due_draws(schedule, None, DRAW_AT + datetime.timedelta(seconds=1))[0]
    draws.announce(store, schedule, due, DRAW_AT - datetime.timedelta(days=2))
    fence = store.take_draw_fence(due.pool, due.draw_id)
    timing = pool.offer_timing()
    longest = LongestCommand(connection)
    cutoff = store.draw(due.pool, due.draw_id).cutoff_at

    figures, blocking = {}, {}

    def timed(step: str, action) -> None:
        longest.take()
        started = time.perf_counter()
        action()
        figures[step] = time.perf_counter() - started
        blocking[step] = longest.take()

    timed("(a) freeze floor", lambda: freeze_floor(connection, cutoff.timestamp()))
    for step, action in (
        ("freeze", lambda: draws.freeze(store, due.pool, store.draw(due.pool, due.draw_id), schedule, fence, DRAW_AT,
                                        timing)),
        ("draw", lambda: draws.draw(store, due.pool, due.draw_id, fence, DRAW_AT)),
        ("commit", lambda: draws.commit(store, due.pool, due.draw_id, fence, schedule, DRAW_AT, timing)),
        ("bias check + publish", lambda: draws.publish_or_hold(store, due.pool, due.draw_id, fence, DRAW_AT)),
    ):
        timed(step, action)
    record = store.draw(due.pool, due.draw_id)
    scratch = redis.Redis(connection_pool=redis.ConnectionPool(
        **{**connection.connection_pool.connection_kwargs, "db": connection.connection_pool.connection_kwargs.get(
            "db", 0) + 1}))
    scratch.flushdb()
    timed("(b) draw-job floor", lambda: draw_job_floor(connection, scratch, due.draw_id, bytes.fromhex(record.seed),
                                                        record.winners or 0))
    scratch.flushdb()

    print(f"{entrants:,} entrants, {slot_count:,} slots, constrained={constrained}, "
          f"Redis {connection.info('server')['redis_version']}")
    print(f"setup (bulk write of the waiting list and slots): {setup:.1f} s")
    print(f"{'step':>22}  {'seconds':>8}  longest single command")
    for step, seconds in figures.items():
        found = blocking[step]
        longest_text = "unknown (no SLOWLOG)" if found is None else (
            "none over 1 ms" if not found[1] else f"{found[0]:8.1f} ms ({found[1]}); {found[2]} over 100 ms")
        print(f"{step:>22}  {seconds:8.2f}  {longest_text}")
    freeze_ratio = figures["freeze"] / figures["(a) freeze floor"]
    committed = figures["draw"] + figures["commit"]
    commit_ratio = committed / figures["(b) draw-job floor"]
    print(f"freeze / (a): {figures['freeze']:.2f} / {figures['(a) freeze floor']:.2f} s = {freeze_ratio:.2f} "
          f"(target <= 2)")
    freeze_block = blocking["freeze"]
    if freeze_block is not None:
        print(f"freeze's longest single command: {freeze_block[0]:.1f} ms, {freeze_block[2]} over 100 ms "
              f"(target: none over 100 ms)")
    print(f"frozen -> committed (draw + commit) / (b): {committed:.2f} / {figures['(b) draw-job floor']:.2f} s = "
          f"{commit_ratio:.2f} (target <= 3)")
    print(f"state {record.state.value}, winners {record.winners}, offered {record.offered}, "
          f"bias check {list(record.bias_check or ())}")


if __name__ == "__main__":
    sys.exit(main())
