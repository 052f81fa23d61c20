"""Counters of request budgets: a request taken from all of them in one call, given back if
it turns out not to count.

A registration counts against several budgets at once (per client address,
per address without a proof of work, per email address), each with one or more
fixed-window limits. Flask-Limiter checks and counts each limit on its own (a
read before the view and a script after it, per limit); these counters are
checked and taken in one script before the view, all or none, and the few
requests that turn out not to count (a form sent back with mistakes) are given
back in a second one. They live in the queues' Redis, beside Flask-Limiter's
(keys.BUDGET_KEY).
"""

from __future__ import annotations

from dataclasses import dataclass

import redis

from queue_service.store.lua import source


@dataclass(frozen=True)
class Window:
    """A counter's limit: at most `limit` requests in `seconds`."""

    limit: int
    seconds: int


class BudgetCounters:
    """The budget counters of one Redis (the queues')."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client
        self._take = client.register_script(source("take_budgets"))
        self._give_back = client.register_script(source("give_back_budgets"))

    def take(self, counters: dict[str, Window]) -> float:
        """Count one request on every counter, unless one of them is full: then nothing is
        counted and the seconds until every full one has room again are returned (0 when
        taken). Atomic: concurrent requests never count past a limit."""
        return self.take_reading(counters, None)[0]

    def take_reading(self, counters: dict[str, Window], read: str | None) -> tuple[float, bytes | None]:
        """`take`, and the value of the string key `read` (None if not given or not set), read
        in the same round trip whatever the counters say."""
        if not counters and read is None:
            return 0.0, None
        keys = [*counters, *([read] if read is not None else [])]
        arguments = [value for window in counters.values() for value in (window.limit, window.seconds)]
        wait, value = self._take(keys=keys, args=arguments)
        return int(wait) / 1000, value

    def give_back(self, keys: list[str]) -> None:
        """Uncount the request `take` counted on `keys` (those whose window still runs)."""
        if keys:
            self._give_back(keys=keys)
