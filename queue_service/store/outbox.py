"""The outbox and deliveries: messages written by the scripts, handed to send jobs, tracked.

Scripts append to a pool's outbox in the same step as the change a message
tells of (every message: the registration links and notices as well as the
offers'); the dispatcher takes its head under a lock, and each delivery's
outcome is recorded so staff see the failures.

A message is JSON: {"id": unique per message, "kind", "registration_id", ...}.
The offers' scripts build theirs (with "draw_id" and "slot"); the
registrations' are built by `registration_message` and pushed by their script.
"""

from __future__ import annotations

import datetime
import json
import uuid

import redis

from queue_service.store.keys import PoolKeys
from queue_service.store.times import utc_text


def registration_message(kind: str, registration_id: str, now: datetime.datetime,
                         address_print: str | None = None) -> str:
    """The outbox message of `kind` about a registration, as its script pushes it.

    Its id is unique per message (kind, registration, time), like the offers'.
    An email change's message carries "address_print", the keyed hash of the
    address it asks to confirm; its id names it too, as two requests in the
    same instant are two messages.
    """
    parts = [kind, registration_id, str(now.timestamp())]
    message = {"kind": kind, "registration_id": registration_id}
    if address_print is not None:
        parts.append(address_print[:16])
        message["address_print"] = address_print
    return json.dumps({"id": ":".join(parts), **message})


class OutboxStore:
    """A pool's outbox, its dispatch lock and the deliveries (one part of Store)."""

    redis: redis.Redis  # set by Store.__init__ (store/__init__.py)

    # The outbox ---------------------------------------------------------------

    def outbox(self, pool: str) -> list[dict]:
        return [json.loads(item) for item in self.redis.lrange(PoolKeys(pool).outbox, 0, -1)]

    def outbox_head(self, pool: str, count: int) -> list[str]:
        return [item.decode() for item in self.redis.lrange(PoolKeys(pool).outbox, 0, count - 1)]

    def drop_outbox_head(self, pool: str, count: int) -> None:
        """Remove the first `count` messages (once they are handed to send jobs)."""
        self.redis.ltrim(PoolKeys(pool).outbox, count, -1)

    def lock_outbox(self, pool: str, seconds: int = 120) -> str | None:
        """Take the pool's dispatch lock; a token to release it, or None if another dispatcher holds it."""
        token = uuid.uuid4().hex
        return token if self.redis.set(PoolKeys(pool).outbox_lock, token, nx=True, ex=seconds) else None

    def unlock_outbox(self, pool: str, token: str) -> None:
        key = PoolKeys(pool).outbox_lock
        if self.redis.get(key) == token.encode():
            self.redis.delete(key)

    def outbox_length(self, pool: str) -> int:
        return self.redis.llen(PoolKeys(pool).outbox)

    def outbox_lengths(self) -> dict[str, int]:
        """How many messages wait in each pool's outbox, in one pipelined read (the clock asks every few seconds)."""
        pools = self.pools()
        with self.redis.pipeline(transaction=False) as pipe:
            for pool in pools:
                pipe.llen(PoolKeys(pool).outbox)
            return dict(zip(pools, pipe.execute()))

    def discard_outbox(self, pool: str) -> int:
        """Drop every message waiting in the pool's outbox, unsent; returns how many.

        Only for people made up as if they had registered earlier, and been
        told then (`qs load-demo`'s applicants, the tests' waiting pools):
        never for messages anyone waits for.
        """
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.llen(PoolKeys(pool).outbox)
            pipe.delete(PoolKeys(pool).outbox)
            return pipe.execute()[0]

    # Deliveries ---------------------------------------------------------------

    def delivery(self, pool: str, message_id: str, channel: str) -> dict | None:
        raw = self.redis.hget(PoolKeys(pool).deliveries, f"{message_id}|{channel}")
        return json.loads(raw) if raw else None

    def deliveries(self, pool: str, fields: list[tuple[str, str]]) -> dict[tuple[str, str], dict]:
        """The recorded deliveries of (message id, channel) pairs, in one read; a pair never tried is left out."""
        if not fields:
            return {}
        raw = self.redis.hmget(PoolKeys(pool).deliveries, [f"{message_id}|{channel}" for message_id, channel in fields])
        return {field: json.loads(record) for field, record in zip(fields, raw) if record}

    def record_delivery(self, pool: str, message_id: str, channel: str, record: dict, now: datetime.datetime) -> None:
        """Record a delivery attempt's outcome; a failing one is listed for staff until it succeeds."""
        pool_keys = PoolKeys(pool)
        field = f"{message_id}|{channel}"
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(pool_keys.deliveries, field, json.dumps(record))
            if record["status"] == "sent":
                pipe.zrem(pool_keys.delivery_failures, field)
            else:
                pipe.zadd(pool_keys.delivery_failures, {field: now.timestamp()})
            pipe.execute()

    def retry_delivery(self, pool: str, message_id: str, channel: str, by: str, now: datetime.datetime) -> bool:
        """Put a message that did not go out back in the outbox, its record saying who asked
        (retry_delivery.lua); False if it went out, or is unknown, or its message was not kept."""
        pool_keys = PoolKeys(pool)
        keys = [pool_keys.deliveries, pool_keys.delivery_failures, pool_keys.outbox]
        return bool(self.scripts.retry_delivery(keys=keys, args=[f"{message_id}|{channel}", by, utc_text(now)]))

    def delivery_failures(self, pool: str, limit: int = 200) -> list[dict]:
        """Deliveries that failed (newest first): message id, channel and the last attempt's record."""
        pool_keys = PoolKeys(pool)
        fields = self.redis.zrevrange(pool_keys.delivery_failures, 0, limit - 1)
        if not fields:
            return []
        records = self.redis.hmget(pool_keys.deliveries, fields)
        failures = []
        for field, raw in zip(fields, records):
            message_id, _, channel = field.decode().rpartition("|")
            failures.append({"message_id": message_id, "channel": channel, **(json.loads(raw) if raw else {})})
        return failures
