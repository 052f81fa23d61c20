"""Draws in Redis: the record and its fence, the frozen inputs, the result, the commit.

Each step of a draw (queue_service/draws) reads and writes here under the
draw's fencing token, so that only the latest run changes it. The committed
draws, scored by their entry cutoff, are what every registration's draws
entered and lost are counted from.

A draw's record is a hash of text fields, read and written here as a `Draw`
(`draw_from_fields`, `draw_fields`); each step adds its fields to it.
"""

from __future__ import annotations

import bisect
import datetime
import json

import redis

from queue_service.draws import Draw, DrawState, Trigger
from queue_service.errors import StaleDrawWorker
from queue_service.registration import RegistrationStatus
from queue_service.store.choices import decode_half_days, decode_sites
from queue_service.store.fields import both_names, first_found
from queue_service.store.keys import PoolKeys
from queue_service.store.lua import Scripts, run_replicated
from queue_service.store.times import moment_from_text, utc_text

# What the freeze reads of every registration (store.draw_candidates), and how many at a time:
# one script reads a batch (a few milliseconds of Redis), several are sent in one pipeline.
_DETAILS = ("ref", "permit_expiry", "sites", "half_days", "channel")
CANDIDATE_BATCH = 2_000
CANDIDATE_BATCHES_PIPELINED = 5

# Before every moment the service knows.
_LONG_AGO = datetime.datetime.min.replace(tzinfo=datetime.timezone.utc)


def draws_lost_since(cutoffs: list[float], joined: float) -> int:
    """How many committed draws a registration waiting since `joined` (epoch) has lost so far.

    The rule, written here only: it has lost every draw committed since it
    joined, that is every draw whose entry cutoff (`cutoffs`: the pool's
    committed draws, in order) is after `joined`. Losses settled before this
    wait (the registration's `draws_lost` field) are the caller's to add.
    (move_offer.lua settles a wait that ends on going back to the pool the same
    way, in Lua: the draws committed after it joined, before the one it won.)
    """
    return len(cutoffs) - bisect.bisect_right(cutoffs, joined)


class DrawStore:
    """A pool's draws, from creation to commit, and the draws of a registration's wait (one part of Store)."""

    redis: redis.Redis  # both set by Store.__init__ (store/__init__.py)
    scripts: Scripts
    replicas_to_wait: int  # likewise: replicas a registration and a commit wait for (lua.run_replicated)

    # The record ---------------------------------------------------------------

    def create_draw(self, pool: str, record: Draw, run_at: datetime.datetime | None = None) -> bool:
        """Create a draw's record unless it exists; True if created. A draw no schedule names (run
        now) gives `run_at`: it is listed among the draws to run then (`draws_to_run`)."""
        pool_keys = PoolKeys(pool)
        keys = [pool_keys.draw(record.draw_id), pool_keys.draws, pool_keys.draws_to_run]
        fields = draw_fields(record)
        pairs = [item for pair in fields.items() for item in pair]
        arguments = [record.scheduled_at.timestamp(), record.draw_id, "" if run_at is None else run_at.timestamp(),
                     *pairs]
        return bool(self.scripts.create_draw(keys=keys, args=arguments))

    def draws_to_run(self, pool: str, now: datetime.datetime) -> list[str]:
        """The draws run now whose time has come by `now` and whose run is not claimed yet, oldest first."""
        return [draw_id.decode() for draw_id in self.redis.zrangebyscore(PoolKeys(pool).draws_to_run, "-inf",
                                                                         now.timestamp())]

    def claim_draw_run(
        self, pool: str, draw_id: str, now: datetime.datetime, also=None, marker: str = "run_claimed_at"
    ) -> bool:
        """Mark a step of the draw (`marker`: its run, or its freeze) as claimed and, in the same
        transaction, run `also(pipeline)` (the caller queues the job there): both or neither;
        False if already claimed. A claimed run leaves the draws to run."""
        pool_keys = PoolKeys(pool)
        key = pool_keys.draw(draw_id)
        with self.redis.pipeline(transaction=True) as pipe:
            try:
                pipe.watch(key)
                if not pipe.exists(key) or pipe.hexists(key, marker):
                    if marker == "run_claimed_at":
                        pipe.zrem(pool_keys.draws_to_run, draw_id)  # (watching: sent at once)
                    return False
                pipe.multi()
                pipe.hset(key, marker, utc_text(now))
                if marker == "run_claimed_at":
                    pipe.zrem(pool_keys.draws_to_run, draw_id)
                if also is not None:
                    also(pipe)
                pipe.execute()
                return True
            except redis.WatchError:
                # Another claim, or a connection lost while watching (redis-py says WatchError for
                # both): unclaimed, it is the latter, and the caller tries again rather than skip it.
                if not self.redis.hexists(key, marker):
                    raise redis.ConnectionError("the connection was lost while claiming the draw") from None
                return False

    def draw(self, pool: str, draw_id: str) -> Draw | None:
        raw = self.redis.hgetall(PoolKeys(pool).draw(draw_id))
        return draw_from_fields({name.decode(): value.decode() for name, value in raw.items()}) if raw else None

    def draws(self, pool: str, limit: int = 50) -> list[Draw]:
        """The pool's latest draws, newest first (one round trip for the records)."""
        pool_keys = PoolKeys(pool)
        ids = self.redis.zrevrange(pool_keys.draws, 0, limit - 1)
        with self.redis.pipeline(transaction=False) as pipe:
            for draw_id in ids:
                pipe.hgetall(pool_keys.draw(draw_id.decode()))
            found = pipe.execute() if ids else []
        return [draw_from_fields({name.decode(): value.decode() for name, value in raw.items()})
                for raw in found if raw]

    def take_draw_fence(self, pool: str, draw_id: str) -> int:
        """A new fencing token for a run of the draw; older runs can no longer change it."""
        return int(self.redis.incr(PoolKeys(pool).draw_fence(draw_id)))

    def update_draw_state(self, pool, draw_id, fence, expected_state: DrawState, changes) -> bool:
        """Change a draw's record if it is in `expected_state` (and `fence` is the latest, unless None)."""
        pool_keys = PoolKeys(pool)
        keys = [pool_keys.draw(draw_id), pool_keys.draw_fence(draw_id)]
        arguments = ["" if fence is None else fence, expected_state.value, *[item for pair in changes.items() for item in pair]]
        outcome = self.scripts.update_draw_state(keys=keys, args=arguments).decode()
        if outcome == "stale":
            raise StaleDrawWorker()
        return outcome == "ok"

    # The steps ----------------------------------------------------------------

    def draw_candidates(self, pool: str, cutoff: datetime.datetime, left_by_commit: dict[str, datetime.datetime],
                        committed_count: int) -> list[dict] | None:
        """The waits that may cover `cutoff`, each with what a draw needs; None if a draw was
        committed since the caller counted `committed_count` of them.

        `left_by_commit`: the registrations that draws committed after the cutoff took
        out of the waiting set, and when. Each wait says when it began and ended
        ("entered_at", "left_at": epochs, None while it goes on); draws.waiting_at_cutoff
        keeps those covering the cutoff. Draws lost are those of the wait up to the
        cutoff: the draws committed by then (whenever the freeze runs).

        Three sources:
          1. the registrations waiting now that joined the waiting set by the cutoff
             (someone who went back to it after the cutoff keeps an earlier score, hence
             "entered_at": the hash's `waiting_entered_at`);
          2. the waits recorded as ended after the cutoff (left for a standby offer, closed,
             or ended by a draw's commit and recorded when the registration waited again);
          3. the registrations in `left_by_commit` whose last wait is still the one the
             commit ended (they have not waited again).
        Registrations purged since are left out (their reference is gone).

        Read in small steps, never in one long command (a million entrants in one
        script held Redis for seconds): the waiting set by ZSCAN (scripts/waiting_scan.lua),
        the fields by batches of CANDIDATE_BATCH registrations (scripts/candidate_fields.lua),
        pipelined; each step answers one string, which the client splits (parsing a reply
        element per field cost more than reading them). The steps are not one instant, and need not be: a wait that ends
        while the set is read is recorded as ended in the same script that ends it
        (waits.lua), so it is found in source 2, read after source 1 (a wait found in
        both is the same one: waiting_at_cutoff keeps one); one that begins meanwhile
        began after the cutoff; and a draw committed meanwhile is seen by counting
        the committed draws again at the end (then None: the caller reads again).
        """
        pool_keys = PoolKeys(pool)
        cutoff_epoch = cutoff.timestamp()
        # (id, joined, entered, left, draws lost settled before the wait, ref, expiry, sites, half-days, channel)
        rows: list[tuple] = []

        # 1. Waiting now, joined by the cutoff.
        waiting: dict[bytes, float] = {}
        cursor = b"0"
        while True:
            cursor, found = self.scripts.waiting_scan(keys=[pool_keys.waiting], args=[cursor, CANDIDATE_BATCH,
                                                                                      cutoff_epoch])
            for entry in found.split(b"\x1e") if found else ():
                registration_id, joined = entry.split(b"\x1f")
                waiting[registration_id] = float(joined)
            if cursor == b"0":
                break
        # In the waiting set's order (as ZRANGEBYSCORE gives it), not ZSCAN's: the frozen order stays the same
        # whenever the freeze runs.
        ids = sorted(waiting, key=lambda registration_id: (waiting[registration_id], registration_id))
        fields = _DETAILS + ("draws_lost", "waiting_entered_at")
        for registration_id, values in zip(ids, self._candidate_fields(pool_keys, ids, fields)):
            ref, expiry, sites, half_days, channel, draws_lost, entered = values
            if ref:
                joined = waiting[registration_id]
                rows.append((registration_id, joined, float(entered) if entered else joined, None, draws_lost,
                             ref, expiry, sites, half_days, channel))

        # 2. The waits recorded as ended after the cutoff.
        ended = [(member.decode().rsplit("|", 3), left)
                 for member, left in self.redis.zrangebyscore(pool_keys.waits_ended, f"({cutoff_epoch}", "+inf",
                                                              withscores=True)]
        ended_ids = [parts[0].encode() for parts, _ in ended]
        for (parts, left), values in zip(ended, self._candidate_fields(pool_keys, ended_ids, _DETAILS)):
            registration_id, entered, joined, draws_lost = parts
            if values[0] and joined:
                rows.append((parts[0].encode(), float(joined), float(entered) if entered else float(joined), left,
                             draws_lost.encode(), *values))

        # 3. The registrations a later draw's commit took out, that have not waited again.
        given = [registration_id.encode() for registration_id in left_by_commit]
        fields = _DETAILS + ("draws_lost", "waiting_entered_at", "waiting_since", "status")
        for registration_id, values in zip(given, self._candidate_fields(pool_keys, given, fields)):
            ref, expiry, sites, half_days, channel, draws_lost, entered, since, status = values
            if ref and status != b"waiting" and since:
                left = left_by_commit[registration_id.decode()].timestamp()
                rows.append((registration_id, float(since), float(entered or since), left, draws_lost,
                             ref, expiry, sites, half_days, channel))

        if self.redis.zcard(pool_keys.committed_draws) != committed_count:
            return None
        lost_by_cutoff = [draw_cutoff for _, draw_cutoff, committed_at in self._committed_draws(pool)
                          if committed_at <= cutoff]
        choices_cache: dict[tuple[bytes, bool], tuple] = {}  # most people choose among few combinations

        def parsed(raw: bytes, half_days: bool = False) -> tuple:
            if (raw, half_days) not in choices_cache:
                decode = decode_half_days if half_days else decode_sites
                choices_cache[raw, half_days] = decode(raw.decode())
            return choices_cache[raw, half_days]

        return [
            {
                "id": registration_id.decode(),
                "ref": ref.decode(),
                # Losses settled before this wait, plus the draws committed during it by the cutoff.
                "draws_lost": int(draws_lost or 0) + draws_lost_since(lost_by_cutoff, joined),
                "permit_expiry": expiry.decode() or None,
                "sites": parsed(sites),
                "half_days": parsed(half_days, half_days=True),
                "channel": channel.decode(),
                "joined_at": joined,
                "entered_at": entered,
                "left_at": left,
            }
            for registration_id, joined, entered, left, draws_lost, ref, expiry, sites, half_days, channel in rows
        ]

    def _candidate_fields(self, pool_keys: PoolKeys, registration_ids: list[bytes], fields: tuple[str, ...]):
        """`fields` of each registration (b"" for a field it lacks), batch by batch, pipelined.

        On Redis Cluster, redis-py refuses scripts in a pipeline: each batch is sent alone
        (one round trip a batch of CANDIDATE_BATCH registrations)."""
        prefix = pool_keys.registration_prefix
        names = both_names(fields)  # either form (store/fields.py)
        for start in range(0, len(registration_ids), CANDIDATE_BATCH * CANDIDATE_BATCHES_PIPELINED):
            chunk = registration_ids[start : start + CANDIDATE_BATCH * CANDIDATE_BATCHES_PIPELINED]
            batches = [[prefix + registration_id.decode() for registration_id in chunk[first : first + CANDIDATE_BATCH]]
                       for first in range(0, len(chunk), CANDIDATE_BATCH)]
            if self.cluster:
                replies = [self.scripts.candidate_fields(keys=keys, args=names) for keys in batches]
            else:
                with self.redis.pipeline(transaction=False) as pipe:
                    for keys in batches:
                        self.scripts.candidate_fields(keys=keys, args=names, client=pipe)
                    replies = pipe.execute()
            for reply in replies:
                for row in reply.split(b"\x1e"):
                    yield row.split(b"\x1f")

    def drop_ended_waits(self, pool: str, ended_before: datetime.datetime) -> int:
        """Forget the ended waits (keys.WAITS_ENDED_KEY) that ended before `ended_before`; returns how many."""
        return int(self.redis.zremrangebyscore(PoolKeys(pool).waits_ended, "-inf", f"({ended_before.timestamp()}"))

    def freeze_draw(self, pool: str, draw_id: str, fence: int, frozen_fields: dict, changes: dict[str, str]) -> None:
        self._fenced_step(pool, draw_id, fence, DrawState.SCHEDULED, changes, (PoolKeys(pool).draw_frozen(draw_id), frozen_fields))

    def save_draw_result(self, pool: str, draw_id: str, fence: int, result_json: str, changes: dict[str, str]) -> None:
        self._fenced_step(pool, draw_id, fence, DrawState.FROZEN, changes, (PoolKeys(pool).draw_result(draw_id), result_json))

    def _fenced_step(self, pool, draw_id, fence, expected_state: DrawState, changes, blob) -> None:
        """Store a step's data and change the record, both at once, if the fence is still ours."""
        pool_keys = PoolKeys(pool)
        key = pool_keys.draw(draw_id)
        fence_key = pool_keys.draw_fence(draw_id)
        blob_key, blob_value = blob
        with self.redis.pipeline(transaction=True) as pipe:
            try:
                pipe.watch(key, fence_key)
                if int(pipe.get(fence_key) or 0) != fence:
                    raise StaleDrawWorker()
                if (pipe.hget(key, "state") or b"").decode() != expected_state.value:
                    return  # another run did this step already
                pipe.multi()
                if isinstance(blob_value, dict):
                    pipe.delete(blob_key)
                    pipe.hset(blob_key, mapping=blob_value)
                else:
                    pipe.set(blob_key, blob_value)
                pipe.hset(key, mapping=changes)
                pipe.execute()
            except redis.WatchError:
                # redis-py reports a connection lost while watching as a WatchError too (a
                # failover, say): the run is stale only if another run took the fence since.
                if int(self.redis.get(fence_key) or 0) == fence:
                    raise redis.ConnectionError("the connection was lost during the draw's transaction") from None
                raise StaleDrawWorker() from None

    def draw_frozen(self, pool: str, draw_id: str) -> dict[str, bytes] | None:
        """The frozen inputs' fields (queue_service/draws/frozen.py); a draw frozen by an earlier
        version kept one JSON string, returned as the field "document"."""
        key = PoolKeys(pool).draw_frozen(draw_id)
        if self.redis.type(key) == b"string":
            return {"document": self.redis.get(key)}
        fields = self.redis.hgetall(key)
        return {name.decode(): value for name, value in fields.items()} or None

    def draw_result(self, pool: str, draw_id: str) -> str | None:
        raw = self.redis.get(PoolKeys(pool).draw_result(draw_id))
        return raw.decode() if raw else None

    def commit_draw(self, pool, draw_id, fence, *, cutoff, deadline, own_deadlines, now) -> None:
        """Apply the draw's saved result (see scripts/commit_draw.lua), or raise StaleDrawWorker.

        `deadline` is the one its offers share; `own_deadlines` maps the slots whose offer
        must be answered earlier to that deadline, or to None when they are not to be offered.
        """
        pool_keys = PoolKeys(pool)
        for _ in range(3):
            outcome = self._commit_draw(pool_keys, pool, draw_id, fence, cutoff, deadline, own_deadlines, now)
            if outcome == "stale":
                raise StaleDrawWorker()
            if outcome != "keys":
                return
        raise redis.ResponseError(f"draw {draw_id}: its result kept changing while it was committed")

    def _result_registrations(self, pool_keys: PoolKeys, draw_id: str) -> list[str]:
        """The registrations a draw's saved result names, in its order (both forms of
        commit_draw.lua's result: columns, or the older list of rows)."""
        saved = self.redis.get(pool_keys.draw_result(draw_id))
        result = json.loads(saved) if saved else []
        if isinstance(result, dict):
            return result["registrations"]
        return [row["registration"] for row in result]

    def _commit_draw(self, pool_keys, pool, draw_id, fence, cutoff, deadline, own_deadlines, now) -> str:
        winners = [pool_keys.registration(registration_id)
                   for registration_id in self._result_registrations(pool_keys, draw_id)]
        keys = [
            pool_keys.draw(draw_id),
            pool_keys.draw_fence(draw_id),
            pool_keys.offers,
            pool_keys.outbox,
            pool_keys.waiting,
            pool_keys.slot_states,
            pool_keys.committed_draws,
            *self.stats_keys(pool, now, draw_id=draw_id),
            pool_keys.slot_holders,
            pool_keys.draw_deadlines,
            pool_keys.draw_result(draw_id),
            pool_keys.offer_deadlines,
            pool_keys.standby,
            *winners,
        ]
        arguments = [
            fence,
            len(winners),
            utc_text(now),
            utc_text(deadline),
            draw_id,
            cutoff.timestamp(),
            deadline.timestamp(),
            now.timestamp(),
            *[item for slot_id, own in own_deadlines.items()
              for item in (slot_id, utc_text(own) if own else "", own.timestamp() if own else "")],
        ]
        return run_replicated(self.redis, self.scripts.commit_draw, self.replicas_to_wait, keys, arguments).decode()

    # Committed draws and a registration's wait --------------------------------

    def committed_draw_cutoffs(self, pool: str) -> list[float]:
        """The entry cutoffs (epoch) of the pool's committed draws, in order."""
        return [score for _, score in self.redis.zrange(PoolKeys(pool).committed_draws, 0, -1, withscores=True)]

    def committed_draw_times(self, pool: str) -> dict[str, datetime.datetime]:
        """The pool's committed draws (in the order of their cutoffs) and when each was committed."""
        return {draw_id: committed_at for draw_id, _, committed_at in self._committed_draws(pool)}

    def _committed_draws(self, pool: str) -> list[tuple[str, float, datetime.datetime]]:
        """(draw id, cutoff epoch, committed at) of each committed draw, in the order of their cutoffs."""
        pool_keys = PoolKeys(pool)
        found = self.redis.zrange(pool_keys.committed_draws, 0, -1, withscores=True)
        with self.redis.pipeline(transaction=False) as pipe:
            for draw_id, _ in found:
                pipe.hget(pool_keys.draw(draw_id.decode()), "committed_at")
            times = pipe.execute() if found else []
        # (A record without its time, were there one, counts as committed before any cutoff.)
        return [(draw_id.decode(), cutoff,
                 datetime.datetime.fromisoformat(committed_at.decode()) if committed_at else _LONG_AGO)
                for (draw_id, cutoff), committed_at in zip(found, times)]

    def committed_draws_between(self, pool: str, after: float, until: float) -> list[str]:
        """Ids of the committed draws whose cutoff is in (after, until]."""
        found = self.redis.zrangebyscore(PoolKeys(pool).committed_draws, f"({after}", until)
        return [draw_id.decode() for draw_id in found]

    def draws_entered(self, registration) -> list[dict[str, str]]:
        """The draws a registration took part in during its wait, oldest first, with their outcome."""
        pool_keys, registration_id = PoolKeys(registration.key.pool), registration.key.registration_id
        joined = self.redis.zscore(pool_keys.waiting, registration_id)
        won = self.offer(registration.key)  # OfferStore
        return [
            {"draw_id": draw_id, "outcome": "offered", "slot": won.slot_id}
            if won is not None and won.draw_id == draw_id
            else {"draw_id": draw_id, "outcome": "not_drawn"}
            for draw_id in self._draws_during_wait(registration, joined)
        ]

    def _draws_during_wait(self, registration, joined: float | None) -> list[str]:
        """Ids of the draws committed during the registration's current (or last) wait.

        The wait runs from when it joined the waiting set (or its email
        confirmation) to its last change of status, or on while it waits.
        """
        if joined is None:
            if registration.email_confirmed_at is None or registration.status is RegistrationStatus.PENDING_EMAIL:
                return []
            joined = registration.email_confirmed_at.timestamp()
            end = self._won_draw_cutoff(registration.key) or self._status_changed_at(registration.key)
        else:
            end = "+inf"
        return self.committed_draws_between(registration.key.pool, joined, end)

    def _offered_by(self, key) -> str | None:
        offer = self.offer(key)  # OfferStore
        return offer.draw_id if offer else None

    def _won_draw_cutoff(self, key) -> float | None:
        """The cutoff of the draw that offered the registration a slot: its wait ended there."""
        draw_id = self._offered_by(key)
        if draw_id is None:
            return None
        return self.redis.zscore(PoolKeys(key.pool).committed_draws, draw_id)

    def _status_changed_at(self, key) -> float:
        raw, = first_found(self.redis.hmget(PoolKeys(key.pool).registration(key.registration_id),
                                            both_names(["status_changed_at"])), 1)
        return moment_from_text(raw.decode()).timestamp()  # ISO, or epoch when written at creation


# The record's codec ---------------------------------------------------------------

# The record's fields of each kind, as they are named in Redis.
_DRAW_TIMES = ("scheduled_cutoff_at", "freeze_claimed_at", "run_claimed_at", "frozen_at", "horizon_start", "horizon_end", "drawn_at",
               "committed_at", "published_at", "held_at")
_DRAW_COUNTS = ("entrants", "urgent_entrants", "slots", "winners", "offered")


def draw_from_fields(fields: dict[str, str]) -> Draw:
    """A draw's record read from its hash; fields it does not know (written by another version) are ignored."""

    def optional(name: str, parse):
        return parse(fields[name]) if fields.get(name) else None

    deadline = fields.get("offers_deadline")
    return Draw(
        draw_id=fields["draw_id"],
        prefecture=fields["prefecture"],
        procedure=fields["procedure"],
        state=DrawState(fields["state"]),
        trigger=Trigger(fields["trigger"]),
        scheduled_at=datetime.datetime.fromisoformat(fields["scheduled_at"]),
        cutoff_at=datetime.datetime.fromisoformat(fields["cutoff_at"]),
        seed=fields["seed"],
        commitment=fields["commitment"],
        announced_at=datetime.datetime.fromisoformat(fields["announced_at"]),
        announced_late=fields.get("late") == "1",
        **{name: optional(name, datetime.datetime.fromisoformat) for name in _DRAW_TIMES},
        **{name: optional(name, int) for name in _DRAW_COUNTS},
        entrants_digest=fields.get("entrants_digest") or None,
        # An epoch (the draw deadlines' score), read by move_offer.lua as a number.
        offers_deadline=datetime.datetime.fromtimestamp(float(deadline), datetime.timezone.utc) if deadline else None,
        not_applied=optional("not_applied", lambda text: tuple(json.loads(text))),
        bias_check=optional("bias_check", lambda text: tuple(json.loads(text))),
        released_by=fields.get("released_by"),
    )


def draw_fields(record: Draw) -> dict[str, str]:
    """The hash of a draw's record (the inverse of `draw_from_fields`): the fields of steps not taken are left out."""
    fields = {
        "draw_id": record.draw_id,
        "prefecture": record.prefecture,
        "procedure": record.procedure,
        "scheduled_at": record.scheduled_at.isoformat(),
        "cutoff_at": record.cutoff_at.isoformat(),
        "trigger": record.trigger.value,
        "state": record.state.value,
        "seed": record.seed,
        "commitment": record.commitment,
        "announced_at": record.announced_at.isoformat(),
        "late": "1" if record.announced_late else "0",
    }

    def text(value) -> str | None:
        return value.isoformat() if isinstance(value, datetime.datetime) else None if value is None else str(value)

    later = {
        **{name: text(getattr(record, name)) for name in (*_DRAW_TIMES, *_DRAW_COUNTS)},
        "entrants_digest": record.entrants_digest,
        "offers_deadline": record.offers_deadline and repr(record.offers_deadline.timestamp()),
        # committed_at as an epoch, for move_offer.lua (the end of its winners' waits); not read back.
        "committed_epoch": record.committed_at and repr(record.committed_at.timestamp()),
        # As commit_draw.lua writes it (cjson: no spaces).
        "not_applied": None if record.not_applied is None else json.dumps(list(record.not_applied),
                                                                           separators=(",", ":")),
        "bias_check": None if record.bias_check is None else json.dumps(list(record.bias_check)),
        "released_by": record.released_by,
    }
    return fields | {name: value for name, value in later.items() if value is not None}
