"""The short links of SMS (queue_service/notifications/short_links.py): code -> where it leads.

Global keys (a code names no pool), each living until its link stops working
plus the time it is still answered as expired.
"""

from __future__ import annotations

import datetime
import json
import math

import redis

from queue_service.store.keys import short_link_key


class ShortLinkStore:
    """SMS short links (one part of Store)."""

    redis: redis.Redis  # set by Store.__init__ (store/__init__.py)

    def save_short_link(self, code: str, path: str, until: datetime.datetime, kept_until: datetime.datetime,
                        now: datetime.datetime) -> bool:
        """Keep `code` -> `path`, valid until `until` and stored until `kept_until`; True if it is new,
        False if the code was kept already (the first record stays: a message composed again
        leads where it led)."""
        record = json.dumps({"path": path, "until": math.ceil(until.timestamp())})
        seconds = max(1, math.ceil((kept_until - now).total_seconds()))
        return bool(self.redis.set(short_link_key(code), record, nx=True, ex=seconds))

    def short_link(self, code: str) -> dict | None:
        """{"path", "until" (epoch seconds)} of a short link's code, or None if it is not kept."""
        found = self.redis.get(short_link_key(code))
        return None if found is None else json.loads(found)
