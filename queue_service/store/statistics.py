"""Counters and gauges: what the public statistics and /metrics read.

The counters' keys and their contract are in keys.py (above STATS_KEY): the
scripts count through the prelude stats.lua with the keys `stats_keys` gives;
gauges are the sizes of a pool's sets, read here.
"""

from __future__ import annotations

import datetime

import redis

from queue_service import metrics
from queue_service.pools import PoolId
from queue_service.store.draws import draws_lost_since
from queue_service.store.keys import PoolKeys


class StatisticsStore:
    """A pool's counters and gauges (one part of Store).

    The day of an event is the prefecture's (`_timezone`, ReferenceStore); the draws lost
    by those waiting come from the committed draws (DrawStore).
    """

    redis: redis.Redis  # set by Store.__init__ (store/__init__.py)

    # Counters -----------------------------------------------------------------

    def stats_keys(self, pool: str, now: datetime.datetime, draw_id: str | None = None) -> list[str]:
        """The counter hashes an event at `now` goes to: [totals, day] and, with `draw_id`, the draw's.

        Append them to a script's KEYS and pass them to `count_event`.
        """
        pool_keys = PoolKeys(pool)
        day = metrics.stats_day(now, self._timezone(PoolId(pool).prefecture))
        keys = [pool_keys.stats, pool_keys.stats_day(day)]
        if draw_id is not None:
            keys.append(pool_keys.stats_draw(draw_id))
        return keys

    def waits_key(self, pool: str) -> str:
        """The pool's wait histogram, for `count_wait` in the script that books an offer."""
        return PoolKeys(pool).stats_waits

    def count_event(self, pool: str, event: str, now: datetime.datetime, amount: int = 1, draw_id: str | None = None) -> None:
        """Count an event that no script makes (a rate limit hit): the same hashes, in one transaction."""
        if event not in metrics.EVENTS:
            raise ValueError(f"unknown event {event!r}: add it to queue_service/metrics/__init__.py")
        with self.redis.pipeline(transaction=True) as pipe:
            for key in self.stats_keys(pool, now, draw_id):
                pipe.hincrby(key, event, amount)
            pipe.execute()

    def stats_totals(self, pools: list[str]) -> dict[str, dict[str, int]]:
        """Each pool's totals, every event present (0 if never counted), in one round trip."""
        with self.redis.pipeline(transaction=False) as pipe:
            for pool in pools:
                pipe.hgetall(PoolKeys(pool).stats)
            found = pipe.execute()
        return {pool: metrics.counts(raw) for pool, raw in zip(pools, found)}

    def stats_days(self, pool: str, first: datetime.date, last: datetime.date) -> dict[datetime.date, dict[str, int]]:
        """The pool's counts for each day from `first` to `last` (days without events are zeros)."""
        days, pool_keys = metrics.days_between(first, last), PoolKeys(pool)
        with self.redis.pipeline(transaction=False) as pipe:
            for day in days:
                pipe.hgetall(pool_keys.stats_day(day.isoformat()))
            found = pipe.execute()
        return {day: metrics.counts(raw) for day, raw in zip(days, found)}

    def stats_draws(self, pool: str, draw_ids: list[str]) -> dict[str, dict[str, int]]:
        """What became of each draw's offers."""
        pool_keys = PoolKeys(pool)
        with self.redis.pipeline(transaction=False) as pipe:
            for draw_id in draw_ids:
                pipe.hgetall(pool_keys.stats_draw(draw_id))
            found = pipe.execute()
        return {draw_id: metrics.counts(raw) for draw_id, raw in zip(draw_ids, found)}

    def wait_histogram(self, pool: str) -> dict[int, int]:
        """Whole days from joining to the appointment -> how many bookings."""
        return metrics.histogram(self.redis.hgetall(PoolKeys(pool).stats_waits))

    # Gauges -------------------------------------------------------------------

    def pool_gauges(self, pools: list[str]) -> dict[str, dict[str, int]]:
        """How many wait for a draw and for their email's confirmation, per pool (ZCARD: O(1))."""
        with self.redis.pipeline(transaction=False) as pipe:
            for pool_keys in map(PoolKeys, pools):
                pipe.zcard(pool_keys.waiting)
                pipe.zcard(pool_keys.unconfirmed)
            found = pipe.execute()
        return {
            pool: {"waiting": found[2 * index], "pending_email": found[2 * index + 1]}
            for index, pool in enumerate(pools)
        }

    def waiting_by_draws_lost(self, pool: str) -> dict[int, int]:
        """How many wait, by the draws they lost in their current wait: O(draws), not O(people).

        A waiting registration has lost every draw committed after it joined
        (`draws_lost_since`), so those who lost j draws are those who joined
        between the (j+1)-th and the j-th last committed cutoffs: one ZCOUNT
        per committed draw on the waiting set. Losses carried over from an
        earlier wait (the `draws_lost` field, 0 when a wait starts) are not
        seen here; the applicant's own weight, computed from their record, is exact.
        """
        cutoffs = self.committed_draw_cutoffs(pool)
        bounds = ["-inf", *cutoffs, "+inf"]
        waiting = PoolKeys(pool).waiting
        with self.redis.pipeline(transaction=False) as pipe:
            for low, high in zip(bounds, bounds[1:]):
                # Joined in [low, high): cutoffs > joined are those from `high` on.
                pipe.zcount(waiting, low, f"({high}" if high != "+inf" else high)
            found = pipe.execute()
        histogram = {}
        for low, count in zip([float("-inf"), *cutoffs], found):
            if count:  # all joined at `low` or after, before the next cutoff: they lost the same draws
                histogram[draws_lost_since(cutoffs, low)] = count
        return histogram
