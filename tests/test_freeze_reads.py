"""The freeze reads its entrants in small steps: never one command over the whole waiting list
(a million entrants read by one script held Redis for seconds). bench/draw_redis.py measures it."""

import datetime
import random

from helpers import DRAW_AT, POOL, TIMING, schedule

from bench import pool as synthetic
from queue_service import draws
from queue_service.store import draws as draw_store

PEOPLE = 500


def test_the_freeze_reads_every_entrant_in_batches(store, reference_data, redis, monkeypatch):
    monkeypatch.setattr(draw_store, "CANDIDATE_BATCH", 40)
    monkeypatch.setattr(draw_store, "CANDIDATE_BATCHES_PIPELINED", 3)
    prefecture, procedure = POOL.split(":")
    synthetic.waiting_list(store, prefecture, procedure, PEOPLE, draw_at=DRAW_AT, rng=random.Random(3),
                           constrained=True)
    store.save_schedule(schedule())
    due = draws.due_draws(schedule(), None, DRAW_AT + datetime.timedelta(seconds=5))[0]
    draws.announce(store, schedule(), due, DRAW_AT - datetime.timedelta(days=2))

    redis.config_set("slowlog-log-slower-than", 0)  # every command, with its first arguments
    redis.config_set("slowlog-max-len", 100_000)
    redis.slowlog_reset()
    fence = store.take_draw_fence(POOL, due.draw_id)
    draws.freeze(store, POOL, store.draw(POOL, due.draw_id), schedule(), fence, DRAW_AT, TIMING)
    commands = [entry["command"].split(b" ") for entry in redis.slowlog_get(100_000)]
    redis.config_set("slowlog-log-slower-than", 10_000)

    assert store.draw(POOL, due.draw_id).entrants == PEOPLE
    scripts = [command for command in commands if command[0].upper() == b"EVALSHA"]
    assert scripts and max(int(command[2]) for command in scripts) <= 40  # registrations per script
    assert sum(int(command[2]) > 1 for command in scripts) >= PEOPLE // 40
    # The waiting set walked by ZSCAN in several steps (waiting_scan.lua: one key, the waiting set).
    assert sum(int(command[2]) == 1 and command[3].endswith(b":waiting") for command in scripts) >= 2
    # Nothing read the whole waiting list at once.
    assert not any(command[0].upper() in (b"ZRANGE", b"ZRANGEBYSCORE") and command[1].endswith(b":waiting")
                   for command in commands)
