"""The answers of staff API requests sent with an Idempotency-Key (web/idempotency.py)."""

from __future__ import annotations

import datetime
import json

import redis

from queue_service.store.keys import idempotency_key


class IdempotencyStore:
    """One record per account and key: who holds it, then the answer to send again."""

    redis: redis.Redis  # set by Store.__init__ (store/__init__.py)

    def claim_idempotency_key(self, account_id: str, key_digest: str, fingerprint: str,
                              pending_for: datetime.timedelta) -> dict | None:
        """None if this request is the first with the key (it now holds it, `pending_for` at
        most); otherwise the key's record: its fingerprint, and its answer once there is one."""
        key = idempotency_key(account_id, key_digest)
        pending = json.dumps({"fingerprint": fingerprint, "state": "pending"})
        while True:
            if self.redis.set(key, pending, nx=True, px=int(pending_for.total_seconds() * 1000)):
                return None
            found = self.redis.get(key)
            if found is not None:  # else it expired between the two calls: claim it again
                return json.loads(found)

    def idempotency_record(self, account_id: str, key_digest: str) -> dict | None:
        found = self.redis.get(idempotency_key(account_id, key_digest))
        return None if found is None else json.loads(found)

    def save_idempotent_answer(self, account_id: str, key_digest: str, fingerprint: str, answer: dict,
                               kept_for: datetime.timedelta) -> None:
        """Keep the answer of the request that held the key, to send to its repeats."""
        record = {"fingerprint": fingerprint, "state": "answered", "answer": answer}
        self.redis.set(idempotency_key(account_id, key_digest), json.dumps(record),
                       px=int(kept_for.total_seconds() * 1000))

    def release_idempotency_key(self, account_id: str, key_digest: str) -> None:
        """Let the key be used again: its request failed without an answer worth repeating."""
        self.redis.delete(idempotency_key(account_id, key_digest))
