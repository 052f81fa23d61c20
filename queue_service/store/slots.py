"""Slots and draw schedules: the inventory a pool's draws share out, and when they run.

Slots are three keys of the pool (their JSON, their status, their start
times); offers and bookings change a slot's status inside the offers' scripts.
A pool's schedule and the clock's reconciled-until mark say which draws are due.
The JSON form of a Slot lives here.
"""

from __future__ import annotations

import datetime
import json

import redis

from queue_service.draws.schedules import DrawSchedule, schedule_from_dict, schedule_to_dict
from queue_service.inventory.slots import Slot, SlotStatus
from queue_service.pools import PoolId
from queue_service.store.keys import SCHEDULED_POOLS_KEY, PoolKeys
from queue_service.store.lua import Scripts
from queue_service.store.times import utc_text


class SlotStore:
    """A pool's slots, their holders, its draw schedule (one part of Store)."""

    redis: redis.Redis  # both set by Store.__init__ (store/__init__.py)
    scripts: Scripts

    # Slots --------------------------------------------------------------------

    def add_slots(self, slots: list[Slot]) -> int:
        """Store new slots (those of one pool at once: one transaction a pool, one slot of a
        Redis Cluster); returns how many."""
        by_pool: dict[str, list[Slot]] = {}
        for slot in slots:
            by_pool.setdefault(PoolId.of(slot.prefecture, slot.procedure), []).append(slot)
        for pool, pool_slots in by_pool.items():
            pool_keys = PoolKeys(pool)
            with self.redis.pipeline(transaction=True) as pipe:
                for slot in pool_slots:
                    pipe.hset(pool_keys.slots, slot.id, _slot_json(slot))
                    pipe.hset(pool_keys.slot_states, slot.id, slot.status.value)
                    pipe.zadd(pool_keys.slot_times, {slot.id: slot.starts_at.timestamp()})
                pipe.execute()
        return len(slots)

    def slots(self, pool: str, start: datetime.datetime, end: datetime.datetime) -> list[Slot]:
        """The pool's slots starting in [start, end), by start time."""
        pool_keys = PoolKeys(pool)
        ids = self.redis.zrangebyscore(pool_keys.slot_times, start.timestamp(), f"({end.timestamp()}")
        if not ids:
            return []
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.hmget(pool_keys.slots, ids)
            pipe.hmget(pool_keys.slot_states, ids)
            raws, states = pipe.execute()
        return [_slot_from(raw, state) for raw, state in zip(raws, states) if raw is not None]

    def prefecture_slots(self, prefecture: str, start: datetime.datetime, end: datetime.datetime) -> list[Slot]:
        """Slots of every pool of the prefecture starting in [start, end) (counters serve several procedures)."""
        found = []
        for procedure in self.procedures():
            found += self.slots(PoolId.of(prefecture, procedure.code), start, end)
        return sorted(found, key=lambda slot: (slot.starts_at, slot.site, slot.counter))

    def slot(self, pool: str, slot_id: str) -> Slot | None:
        pool_keys = PoolKeys(pool)
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.hget(pool_keys.slots, slot_id)
            pipe.hget(pool_keys.slot_states, slot_id)
            raw, state = pipe.execute()
        return _slot_from(raw, state) if raw else None

    def slots_by_id(self, pool: str, slot_ids: list[str]) -> list[Slot]:
        """The pool's slots of these ids that exist, read in one round trip."""
        if not slot_ids:
            return []
        pool_keys = PoolKeys(pool)
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.hmget(pool_keys.slots, slot_ids)
            pipe.hmget(pool_keys.slot_states, slot_ids)
            raws, states = pipe.execute()
        return [_slot_from(raw, state) for raw, state in zip(raws, states) if raw is not None]

    def open_slot_count(self, pool: str, start: datetime.datetime, end: datetime.datetime) -> int:
        """How many of the pool's slots starting in [start, end) are open (counted inside Redis)."""
        return self.open_slot_counts(pool, [(start, end)])[0]

    def open_slot_counts(self, pool: str, ranges: list[tuple[datetime.datetime, datetime.datetime]]) -> list[int]:
        """How many of the pool's slots are open in each [start, end), counted inside Redis."""
        if not ranges:
            return []
        pool_keys = PoolKeys(pool)
        arguments = [value for start, end in ranges for value in (start.timestamp(), end.timestamp())]
        keys = [pool_keys.slot_times, pool_keys.slot_states]
        return [int(count) for count in self.scripts.open_slot_counts(keys=keys, args=arguments)]

    def future_slot_count(self, prefecture: str, site_id: str, now: datetime.datetime) -> int:
        far = now + datetime.timedelta(days=3650)
        return sum(
            1
            for slot in self.prefecture_slots(prefecture, now, far)
            if slot.site == site_id and slot.status is not SlotStatus.CANCELLED
        )

    def last_slot_start(self, pool: str) -> datetime.datetime | None:
        """When the pool's last published slot starts: how far the inventory reaches."""
        last = self.redis.zrange(PoolKeys(pool).slot_times, -1, -1, withscores=True)
        return datetime.datetime.fromtimestamp(last[0][1], datetime.timezone.utc) if last else None

    def cancel_slot(self, pool: str, slot_id: str) -> bool:
        """Cancel an open slot, or one waiting for standby; False otherwise (a held slot has its own path)."""
        pool_keys = PoolKeys(pool)
        key = pool_keys.slot_states
        with self.redis.pipeline(transaction=True) as pipe:
            try:
                pipe.watch(key)
                if pipe.hget(key, slot_id) not in (SlotStatus.OPEN.value.encode(), SlotStatus.STANDBY.value.encode()):
                    return False
                pipe.multi()
                pipe.hset(key, slot_id, SlotStatus.CANCELLED.value)
                pipe.hdel(pool_keys.standby, slot_id)
                pipe.execute()
                return True
            except redis.WatchError:
                return False

    def slot_holder(self, pool: str, slot_id: str) -> str | None:
        holder = self.redis.hget(PoolKeys(pool).slot_holders, slot_id)
        return holder.decode() if holder else None

    def slot_holders(self, pool: str) -> dict[str, str]:
        raw = self.redis.hgetall(PoolKeys(pool).slot_holders)
        return {slot.decode(): holder.decode() for slot, holder in raw.items()}

    # Schedules ----------------------------------------------------------------

    def save_schedule(self, schedule: DrawSchedule) -> None:
        pool = PoolId.of(schedule.prefecture, schedule.procedure)
        # Listed first (idempotent; the clock skips a pool listed without a schedule): the list and
        # the schedule are on two slots of a Redis Cluster, and a crash between leaves no schedule unlisted.
        self.redis.sadd(SCHEDULED_POOLS_KEY, pool)
        self.redis.set(PoolKeys(pool).schedule, json.dumps(schedule_to_dict(schedule)))

    def schedule(self, pool: str) -> DrawSchedule | None:
        raw = self.redis.get(PoolKeys(pool).schedule)
        return schedule_from_dict(json.loads(raw)) if raw else None

    def scheduled_pools(self) -> list[PoolId]:
        return sorted(PoolId(pool.decode()) for pool in self.redis.smembers(SCHEDULED_POOLS_KEY))

    def reconciled_until(self, pool: str) -> datetime.datetime | None:
        raw = self.redis.get(PoolKeys(pool).reconciled)
        return datetime.datetime.fromtimestamp(float(raw), datetime.timezone.utc) if raw else None

    def advance_reconciled(self, pool: str, moment: datetime.datetime) -> None:
        """Move the pool's reconciled-until mark forward (never back: clocks may race)."""
        self.scripts.advance_reconciled(keys=[PoolKeys(pool).reconciled], args=[moment.timestamp()])


# Serialisation: Slot <-> JSON text --------------------------------------------


def _slot_json(slot: Slot) -> str:
    return json.dumps(
        {
            "id": slot.id,
            "prefecture": slot.prefecture,
            "site": slot.site,
            "procedure": slot.procedure,
            "starts_at": utc_text(slot.starts_at),
            "duration_minutes": slot.duration_minutes,
            "counter": slot.counter,
        }
    )


def _slot_from(raw: bytes, state: bytes | None) -> Slot:
    values = json.loads(raw)
    values["starts_at"] = datetime.datetime.fromisoformat(values["starts_at"])
    values["status"] = SlotStatus(state.decode() if state else SlotStatus.OPEN.value)
    return Slot(**values)
