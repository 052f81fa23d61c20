"""Proofs of work already spent (queue_service/proof_of_work.py): one request each.

Global keys (a proof belongs to no pool), each living as long as its challenge.
"""

from __future__ import annotations

import datetime
import math

import redis

from queue_service.store.keys import spent_challenge_key

# Kept this much longer than the challenge: clocks of web servers and Redis may differ.
CLOCK_SKEW = datetime.timedelta(minutes=1)


class ChallengeStore:
    """Spent proofs of work (one part of Store)."""

    redis: redis.Redis  # set by Store.__init__ (store/__init__.py)

    def spend_challenge(self, signature: str, expires_at: datetime.datetime, now: datetime.datetime) -> bool:
        """True the first time a challenge's proof is spent, False for every later attempt
        until the challenge has expired (and cannot be spent at all)."""
        seconds = max(1, math.ceil((expires_at + CLOCK_SKEW - now).total_seconds()))
        return bool(self.redis.set(spent_challenge_key(signature), "1", nx=True, ex=seconds))
