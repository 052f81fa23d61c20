"""The Redis store: the only code that reads and writes the service's state in Redis.

The key names, with what each holds and its type, are in keys.py: no other
module builds one.
"""

from __future__ import annotations

import bisect
import dataclasses
import datetime
import json
import uuid
from collections.abc import Iterable

import redis

from queue_service import metrics
from queue_service.draws.schedules import DrawSchedule, schedule_from_dict, schedule_to_dict
from queue_service.errors import StaleDrawWorker, UnknownPrefecture, UnknownProcedure
from queue_service.inventory.slots import Slot, SlotStatus
from queue_service.metrics import CLOSING_EVENTS
from queue_service.pools import PoolId
from queue_service.reference import IdentityField, OpeningHours, Prefecture, Procedure, Site
from queue_service.registration import (
    Applicant,
    Channel,
    Fingerprints,
    Registration,
    RegistrationStatus,
)
from queue_service.registration.tokens import RegistrationKey
from queue_service.staff.accounts import ApiToken, Role, StaffAccount, digest
from queue_service.store.lua import Scripts
from queue_service.store.keys import (
    CLOCK_TICK_KEY,
    JOB_DURATIONS_KEY,
    POOLS_KEY,
    PREFECTURES_KEY,
    PROCEDURES_KEY,
    RATE_LIMIT_PREFIX,
    SCHEDULED_POOLS_KEY,
    STAFF_ACCOUNTS_KEY,
    STAFF_EMAILS_KEY,
    WORKER_HEARTBEAT_KEY,
    PoolKeys,
    PrefectureKeys,
    account_tokens_key,
    api_token_key,
    login_failures_key,
    periodic_run_key,
    staff_account_key,
    staff_session_key,
)

__all__ = ["Store", "RATE_LIMIT_PREFIX"]  # RATE_LIMIT_PREFIX: for web/extensions.py


class Store:
    """Reads and writes the service's state in one Redis database."""

    def __init__(self, client: redis.Redis) -> None:
        # The client returns bytes (RQ requires it); the store decodes what it reads.
        self.redis = client
        self.scripts = Scripts(client)
        self._timezones: dict[str, str] = {}

    # Reference data ------------------------------------------------------

    def load_reference(self, prefectures: Iterable[Prefecture], procedures: Iterable[Procedure]) -> None:
        """Replace the prefectures and procedures, both at once."""
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(PREFECTURES_KEY, PROCEDURES_KEY)
            pipe.hset(PREFECTURES_KEY, mapping={p.code: _prefecture_json(p) for p in prefectures})
            pipe.hset(PROCEDURES_KEY, mapping={p.code: _procedure_json(p) for p in procedures})
            pipe.execute()

    def prefectures(self) -> list[Prefecture]:
        """All prefectures, in the official order of their codes."""
        loaded = [_prefecture_from(value) for value in self.redis.hvals(PREFECTURES_KEY)]
        return sorted(loaded, key=lambda prefecture: _code_order(prefecture.code))

    def prefecture(self, code: str) -> Prefecture:
        value = self.redis.hget(PREFECTURES_KEY, code)
        if value is None:
            raise UnknownPrefecture()
        return _prefecture_from(value)

    def procedures(self) -> list[Procedure]:
        return sorted(
            (_procedure_from(value) for value in self.redis.hvals(PROCEDURES_KEY)),
            key=lambda procedure: procedure.code,
        )

    def procedure(self, code: str) -> Procedure:
        value = self.redis.hget(PROCEDURES_KEY, code)
        if value is None:
            raise UnknownProcedure()
        return _procedure_from(value)

    # Sites ---------------------------------------------------------------

    def add_missing_sites(self, sites: Iterable[Site]) -> int:
        """Add the sites not stored yet, keeping stored ones as they are; returns how many were added."""
        added = 0
        for site in sites:
            added += self.redis.hsetnx(PrefectureKeys(site.prefecture).sites, site.id, _site_json(site))
        return added

    def save_site(self, site: Site) -> None:
        """Create or replace a site."""
        self.redis.hset(PrefectureKeys(site.prefecture).sites, site.id, _site_json(site))

    def delete_site(self, prefecture_code: str, site_id: str) -> None:
        self.redis.hdel(PrefectureKeys(prefecture_code).sites, site_id)

    def site(self, prefecture_code: str, site_id: str) -> Site | None:
        raw = self.redis.hget(PrefectureKeys(prefecture_code).sites, site_id)
        return _site_from(raw) if raw else None

    def sites(self, prefecture_code: str) -> list[Site]:
        values = self.redis.hvals(PrefectureKeys(prefecture_code).sites)
        return sorted((_site_from(value) for value in values), key=lambda site: (site.kind, site.name))

    # Health --------------------------------------------------------------

    def record_clock_tick(self, now: datetime.datetime) -> None:
        self.redis.set(CLOCK_TICK_KEY, _utc_text(now))

    def last_clock_tick(self) -> datetime.datetime | None:
        return _utc_from(self.redis.get(CLOCK_TICK_KEY))

    def record_worker_heartbeat(self, now: datetime.datetime) -> None:
        self.redis.set(WORKER_HEARTBEAT_KEY, _utc_text(now))

    def last_worker_heartbeat(self) -> datetime.datetime | None:
        return _utc_from(self.redis.get(WORKER_HEARTBEAT_KEY))

    def claim_periodic_run(self, name: str, bucket: int, ttl_seconds: int) -> bool:
        """True for the first caller to claim this run of a periodic job, False for any other."""
        key = periodic_run_key(name, bucket)
        return bool(self.redis.set(key, "1", nx=True, ex=ttl_seconds))

    # Registrations -----------------------------------------------------

    def create_registration(self, registration, prints, contacts_cap: int, now: datetime.datetime) -> str:
        """"ok", "duplicate", "contact_cap" or "ref_taken", all or nothing.

        An unconfirmed registration of the same person past its deadline no
        longer holds the place: it is purged first.
        """
        key = registration.key
        pool_keys = PoolKeys(key.pool)
        holder = self.redis.get(pool_keys.identity(prints.identity))
        if holder is not None:
            self._purge_one(key.pool, holder.decode(), "unconfirmed", now)
        fields = _registration_fields(registration, prints)
        event = _event_json(now, "registered", {"channel": registration.channel.value})
        keys = [
            pool_keys.registration(key.registration_id),
            pool_keys.history(key.registration_id),
            pool_keys.identity(prints.identity),
            pool_keys.contact(prints.email or "none"),
            pool_keys.contact(prints.phone),
            pool_keys.refs,
            pool_keys.unconfirmed,
            pool_keys.waiting,
            *self.stats_keys(key.pool, now),
        ]
        arguments = [
            key.registration_id,
            registration.ref,
            contacts_cap,
            registration.status.value,
            now.timestamp(),
            registration.confirm_by.timestamp(),
            event,
            "1" if prints.email else "0",
            registration.channel.value,
            *[item for pair in fields.items() for item in pair],
        ]
        outcome = self.scripts.create_registration(keys=keys, args=arguments).decode()
        if outcome == "ok":
            self.redis.sadd(POOLS_KEY, key.pool)
        return outcome

    def import_waiting_registrations(self, registrations: list, prints: list, joined: datetime.datetime) -> None:
        """Write registrations that are already `waiting` in bulk (pipelined, not one script each).

        For moving a waiting list from another system, and for benchmarks:
        the caller vouches that the people are distinct (no duplicate check).
        They are not counted as registrations (they registered elsewhere); the
        waiting gauge and the weights see them at once.
        """
        with self.redis.pipeline(transaction=False) as pipe:
            for number, (registration, fingerprints) in enumerate(zip(registrations, prints), start=1):
                key = registration.key
                pool_keys = PoolKeys(key.pool)
                fields = _registration_fields(registration, fingerprints) | {"waiting_since": str(joined.timestamp())}
                pipe.hset(pool_keys.registration(key.registration_id), mapping=fields)
                pipe.set(pool_keys.identity(fingerprints.identity), key.registration_id)
                pipe.hset(pool_keys.refs, registration.ref, key.registration_id)
                pipe.zadd(pool_keys.waiting, {key.registration_id: joined.timestamp()})
                if number % 10_000 == 0:
                    pipe.execute()
            pipe.execute()
        pools = {registration.key.pool for registration in registrations}
        if pools:
            self.redis.sadd(POOLS_KEY, *pools)

    def registration(self, key):
        pool_keys = PoolKeys(key.pool)
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(pool_keys.registration(key.registration_id))
            pipe.zscore(pool_keys.waiting, key.registration_id)
            raw, joined = pipe.execute()
        if not raw:
            return None
        found = _registration_from({name.decode(): value.decode() for name, value in raw.items()})
        during = self._draws_during_wait(found, joined)
        entered = len(during)
        # The draw that ended the wait with an offer is entered, not lost.
        won = 1 if joined is None and self._offered_by(found.key) in during else 0
        return dataclasses.replace(
            found, draws_entered=found.draws_entered + entered, draws_lost=found.draws_lost + entered - won
        )

    def _draws_during_wait(self, registration, joined: float | None) -> list[str]:
        """Ids of the draws committed during the registration's current (or last) wait.

        The wait runs from when it joined the waiting set (or its email
        confirmation) to its last change of status, or on while it waits.
        """
        if joined is None:
            if registration.email_confirmed_at is None or registration.status.value == "pending_email":
                return []
            joined = registration.email_confirmed_at.timestamp()
            end = self._won_draw_cutoff(registration.key) or self._status_changed_at(registration.key)
        else:
            end = "+inf"
        return self.committed_draws_between(registration.key.pool, joined, end)

    def _offered_by(self, key) -> str | None:
        offer = self.redis.hget(PoolKeys(key.pool).offers, key.registration_id)
        return json.loads(offer)["draw_id"] if offer else None

    def _won_draw_cutoff(self, key) -> float | None:
        """The cutoff of the draw that offered the registration a slot: its wait ended there."""
        pool_keys = PoolKeys(key.pool)
        offer = self.redis.hget(pool_keys.offers, key.registration_id)
        if offer is None:
            return None
        return self.redis.zscore(pool_keys.committed_draws, json.loads(offer)["draw_id"])

    def registration_key_by_ref(self, pool: str, ref: str):
        registration_id = self.redis.hget(PoolKeys(pool).refs, ref)
        if registration_id is None:
            return None
        prefecture, procedure = PoolId(pool).parts
        return RegistrationKey(prefecture, procedure, registration_id.decode())

    def history(self, key) -> list[dict]:
        raw = self.redis.lrange(PoolKeys(key.pool).history(key.registration_id), 0, -1)
        return [json.loads(item) for item in raw]

    def waiting_count(self, pool: str) -> int:
        return self.redis.zcard(PoolKeys(pool).waiting)

    def confirm_email(self, key, now: datetime.datetime) -> bool:
        pool_keys = PoolKeys(key.pool)
        keys = [
            pool_keys.registration(key.registration_id),
            pool_keys.history(key.registration_id),
            pool_keys.unconfirmed,
            pool_keys.waiting,
            *self.stats_keys(key.pool, now),
        ]
        arguments = [key.registration_id, _utc_text(now), now.timestamp(), _event_json(now, "email_confirmed")]
        return bool(self.scripts.confirm_email(keys=keys, args=arguments))

    def close_registration(self, key, status, allowed_from, now: datetime.datetime) -> bool:
        """Move the registration to a closed `status` if it is in one of `allowed_from`;
        its person and contacts are released so they may register again."""
        for _ in range(3):
            prints = self._fingerprints(key)
            if prints is None:
                return False
            keys = self._lifecycle_keys(key.pool, key.registration_id, prints) + self.stats_keys(key.pool, now)
            arguments = [
                key.registration_id,
                status.value,
                _utc_text(now),
                now.timestamp(),
                _event_json(now, status.value),
                prints["email_fp"],
                prints["phone_fp"],
                CLOSING_EVENTS.get(status.value, ""),
                *[allowed.value for allowed in allowed_from],
            ]
            outcome = self.scripts.close_registration(keys=keys, args=arguments)
            if outcome != -1:  # -1: contacts changed meanwhile; read them again
                return bool(outcome)
        return False

    def update_preferences(self, key, phone, phone_print, sites, half_days, contacts_cap, now) -> str:
        changes = {"phone": phone, "sites": json.dumps(list(sites)), "half_days": json.dumps(list(half_days))}
        return self._change_contact(key, "phone", phone_print, changes, contacts_cap, now, "preferences_changed")

    def change_email(self, key, email, email_print, contacts_cap, now) -> str:
        changes = {"email": email, "pending_email": ""}
        return self._change_contact(key, "email", email_print, changes, contacts_cap, now, "email_changed")

    def set_pending_email(self, key, email: str, now: datetime.datetime) -> None:
        self.redis.hset(PoolKeys(key.pool).registration(key.registration_id), "pending_email", email)

    def _change_contact(self, key, kind, new_print, changes, contacts_cap, now, event_kind) -> str:
        pool_keys = PoolKeys(key.pool)
        for _ in range(3):
            prints = self._fingerprints(key)
            if prints is None:
                return "missing"
            old_print = prints[f"{kind}_fp"]
            keys = [
                pool_keys.registration(key.registration_id),
                pool_keys.history(key.registration_id),
                pool_keys.contact(old_print or "none"),
                pool_keys.contact(new_print),
            ]
            arguments = [
                key.registration_id,
                f"{kind}_fp",
                old_print,
                new_print,
                contacts_cap,
                _event_json(now, event_kind),
                *[item for pair in changes.items() for item in pair],
            ]
            outcome = self.scripts.move_contact(keys=keys, args=arguments).decode()
            if outcome != "retry":
                return outcome
        return "retry"

    def _fingerprints(self, key) -> dict[str, str] | None:
        values = self.redis.hmget(
            PoolKeys(key.pool).registration(key.registration_id), "identity_fp", "email_fp", "phone_fp", "ref"
        )
        if values[0] is None:
            return None
        names = ("identity_fp", "email_fp", "phone_fp", "ref")
        return {name: (value or b"").decode() for name, value in zip(names, values)}

    def _lifecycle_keys(self, pool: str, registration_id: str, prints: dict[str, str]) -> list[str]:
        pool_keys = PoolKeys(pool)
        return [
            pool_keys.registration(registration_id),
            pool_keys.history(registration_id),
            pool_keys.identity(prints["identity_fp"]),
            pool_keys.contact(prints["email_fp"] or "none"),
            pool_keys.contact(prints["phone_fp"]),
            pool_keys.refs,
            pool_keys.unconfirmed,
            pool_keys.waiting,
            pool_keys.closed,
        ]

    # Purges ----------------------------------------------------------------

    def pools(self) -> list[PoolId]:
        return sorted(PoolId(pool.decode()) for pool in self.redis.smembers(POOLS_KEY))

    def purge_unconfirmed(self, pool: str, now: datetime.datetime) -> int:
        """Delete registrations whose email was not confirmed by their deadline."""
        due = self.redis.zrangebyscore(PoolKeys(pool).unconfirmed, "-inf", now.timestamp())
        return sum(self._purge_one(pool, registration_id.decode(), "unconfirmed", now) for registration_id in due)

    def purge_closed(self, pool: str, closed_before: datetime.datetime) -> int:
        """Delete registrations closed before `closed_before` (the retention period is over).

        Not counted: the closing was (withdrawn...), and the counters keep no personal data to purge.
        """
        due = self.redis.zrangebyscore(PoolKeys(pool).closed, "-inf", closed_before.timestamp())
        return sum(self._purge_one(pool, registration_id.decode(), "closed", closed_before) for registration_id in due)

    def _purge_one(self, pool: str, registration_id: str, which: str, deadline: datetime.datetime) -> int:
        """Delete one registration if it is still unconfirmed past `deadline`, or closed before it.

        An unconfirmed one is purged when its deadline has passed, at `deadline`
        (now): the day it is counted in.
        """
        prefecture, procedure = PoolId(pool).parts
        prints = self._fingerprints(RegistrationKey(prefecture, procedure, registration_id))
        pool_keys = PoolKeys(pool)
        if prints is None:
            # Already gone: drop it from the indexes that still name it.
            for index in (pool_keys.unconfirmed, pool_keys.closed):
                self.redis.zrem(index, registration_id)
            return 0
        keys = [*self._lifecycle_keys(pool, registration_id, prints), *self.stats_keys(pool, deadline),
                pool_keys.offers]
        arguments = [registration_id, prints["ref"], which, deadline.timestamp()]
        return int(self.scripts.purge_registration(keys=keys, args=arguments))

    # AGDREF records ------------------------------------------------------------

    def replace_agdref_records(self, prefecture: str, fingerprints: list[str]) -> None:
        """Replace the prefecture's known AGDREF numbers (as keyed hashes), all at once."""
        prefecture_keys = PrefectureKeys(prefecture)
        key, staging = prefecture_keys.agdref, prefecture_keys.agdref_staging
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(staging)
            for start in range(0, len(fingerprints), 10_000):
                pipe.sadd(staging, *fingerprints[start : start + 10_000])
            if fingerprints:
                pipe.rename(staging, key)
            else:
                pipe.delete(key)
            pipe.execute()

    def agdref_known(self, prefecture: str, fingerprint: str) -> bool:
        return bool(self.redis.sismember(PrefectureKeys(prefecture).agdref, fingerprint))

    def agdref_count(self, prefecture: str) -> int:
        return self.redis.scard(PrefectureKeys(prefecture).agdref)

    # Slots -------------------------------------------------------------------

    def add_slots(self, slots: list[Slot]) -> int:
        """Store new slots (all at once); returns how many."""
        with self.redis.pipeline(transaction=True) as pipe:
            for slot in slots:
                pool_keys = PoolKeys(PoolId.of(slot.prefecture, slot.procedure))
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

    def open_slot_count(self, pool: str, start: datetime.datetime, end: datetime.datetime) -> int:
        """How many of the pool's slots starting in [start, end) are open (counted inside Redis)."""
        return self.open_slot_counts(pool, [(start, end)])[0]

    def future_slot_count(self, prefecture: str, site_id: str, now: datetime.datetime) -> int:
        far = now + datetime.timedelta(days=3650)
        return sum(
            1
            for slot in self.prefecture_slots(prefecture, now, far)
            if slot.site == site_id and slot.status is not SlotStatus.CANCELLED
        )

    def cancel_slot(self, pool: str, slot_id: str) -> bool:
        """Cancel an open slot, or one waiting for standby; False otherwise (a held slot has its own path)."""
        pool_keys = PoolKeys(pool)
        key = pool_keys.slot_states
        with self.redis.pipeline() as pipe:
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

    # Schedules and draws -------------------------------------------------------

    def save_schedule(self, schedule: DrawSchedule) -> None:
        pool = PoolId.of(schedule.prefecture, schedule.procedure)
        self.redis.set(PoolKeys(pool).schedule, json.dumps(schedule_to_dict(schedule)))
        self.redis.sadd(SCHEDULED_POOLS_KEY, pool)

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

    def create_draw(self, pool: str, draw_id: str, fields: dict[str, str]) -> bool:
        """Create a draw's record unless it exists; True if created."""
        pool_keys = PoolKeys(pool)
        scheduled = datetime.datetime.fromisoformat(fields["scheduled_at"]).timestamp()
        keys = [pool_keys.draw(draw_id), pool_keys.draws]
        arguments = [scheduled, draw_id, *[item for pair in fields.items() for item in pair]]
        return bool(self.scripts.create_draw(keys=keys, args=arguments))

    def claim_draw_run(
        self, pool: str, draw_id: str, now: datetime.datetime, also=None, marker: str = "run_claimed_at"
    ) -> bool:
        """Mark a step of the draw (`marker`: its run, or its freeze) as claimed and, in the same
        transaction, run `also(pipeline)` (the caller queues the job there): both or neither;
        False if already claimed."""
        key = PoolKeys(pool).draw(draw_id)
        with self.redis.pipeline() as pipe:
            try:
                pipe.watch(key)
                if not pipe.exists(key) or pipe.hexists(key, marker):
                    return False
                pipe.multi()
                pipe.hset(key, marker, _utc_text(now))
                if also is not None:
                    also(pipe)
                pipe.execute()
                return True
            except redis.WatchError:
                return False

    def draw(self, pool: str, draw_id: str) -> dict[str, str] | None:
        raw = self.redis.hgetall(PoolKeys(pool).draw(draw_id))
        return {name.decode(): value.decode() for name, value in raw.items()} or None

    def take_draw_fence(self, pool: str, draw_id: str) -> int:
        """A new fencing token for a run of the draw; older runs can no longer change it."""
        return int(self.redis.incr(PoolKeys(pool).draw_fence(draw_id)))

    def draw_candidates(self, pool: str, cutoff: datetime.datetime) -> list[dict]:
        """Registrations waiting since before `cutoff`, with what a draw needs of them."""
        pool_keys = PoolKeys(pool)
        rows = self.scripts.draw_candidates(keys=[pool_keys.waiting], args=[cutoff.timestamp(), pool_keys.registration_prefix])
        committed = self.committed_draw_cutoffs(pool)
        sites_cache: dict[bytes, list] = {}  # most people choose among few combinations

        def parsed(raw: bytes) -> list:
            if raw not in sites_cache:
                sites_cache[raw] = json.loads(raw)
            return sites_cache[raw]

        candidates = []
        for start in range(0, len(rows), 8):
            registration_id, joined, ref, draws_lost, expiry, sites, half_days, channel = rows[start : start + 8]
            joined = float(joined)
            candidates.append(
                {
                    "id": registration_id.decode(),
                    "ref": ref.decode(),
                    # Losses settled before this wait, plus the draws committed since it joined.
                    "draws_lost": int(draws_lost) + len(committed) - bisect.bisect_right(committed, joined),
                    "permit_expiry": expiry.decode() or None,
                    "sites": parsed(sites),
                    "half_days": parsed(half_days),
                    "channel": channel.decode(),
                    "joined_at": joined,
                }
            )
        return candidates

    def freeze_draw(self, pool: str, draw_id: str, fence: int, frozen_fields: dict, changes: dict[str, str]) -> None:
        self._fenced_step(pool, draw_id, fence, "scheduled", changes, (PoolKeys(pool).draw_frozen(draw_id), frozen_fields))

    def save_draw_result(self, pool: str, draw_id: str, fence: int, result_json: str, changes: dict[str, str]) -> None:
        self._fenced_step(pool, draw_id, fence, "frozen", changes, (PoolKeys(pool).draw_result(draw_id), result_json))

    def _fenced_step(self, pool, draw_id, fence, expected_state, changes, blob) -> None:
        """Store a step's data and change the record, both at once, if the fence is still ours."""
        pool_keys = PoolKeys(pool)
        key = pool_keys.draw(draw_id)
        fence_key = pool_keys.draw_fence(draw_id)
        blob_key, blob_value = blob
        with self.redis.pipeline() as pipe:
            try:
                pipe.watch(key, fence_key)
                if int(pipe.get(fence_key) or 0) != fence:
                    raise StaleDrawWorker()
                if (pipe.hget(key, "state") or b"").decode() != expected_state:
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

    def commit_draw(self, pool, draw_id, fence, *, cutoff, deadline, now) -> None:
        """Apply the draw's saved result (see scripts/commit_draw.lua), or raise StaleDrawWorker."""
        pool_keys = PoolKeys(pool)
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
        ]
        arguments = [
            fence,
            pool_keys.registration_prefix,
            _utc_text(now),
            _utc_text(deadline),
            draw_id,
            cutoff.timestamp(),
            deadline.timestamp(),
        ]
        if self.scripts.commit_draw(keys=keys, args=arguments).decode() == "stale":
            raise StaleDrawWorker()

    def update_draw_state(self, pool, draw_id, fence, expected_state, changes) -> bool:
        """Change a draw's record if it is in `expected_state` (and `fence` is the latest, unless None)."""
        pool_keys = PoolKeys(pool)
        keys = [pool_keys.draw(draw_id), pool_keys.draw_fence(draw_id)]
        arguments = ["" if fence is None else fence, expected_state, *[item for pair in changes.items() for item in pair]]
        outcome = self.scripts.update_draw_state(keys=keys, args=arguments).decode()
        if outcome == "stale":
            raise StaleDrawWorker()
        return outcome == "ok"

    def committed_draw_cutoffs(self, pool: str) -> list[float]:
        """The entry cutoffs (epoch) of the pool's committed draws, in order."""
        return [score for _, score in self.redis.zrange(PoolKeys(pool).committed_draws, 0, -1, withscores=True)]

    def committed_draws_between(self, pool: str, after: float, until: float) -> list[str]:
        """Ids of the committed draws whose cutoff is in (after, until]."""
        found = self.redis.zrangebyscore(PoolKeys(pool).committed_draws, f"({after}", until)
        return [draw_id.decode() for draw_id in found]

    def draws_entered(self, registration) -> list[dict[str, str]]:
        """The draws a registration took part in during its wait, oldest first, with their outcome."""
        pool_keys, registration_id = PoolKeys(registration.key.pool), registration.key.registration_id
        joined = self.redis.zscore(pool_keys.waiting, registration_id)
        offer = self.redis.hget(pool_keys.offers, registration_id)
        won = json.loads(offer) if offer else {}
        return [
            {"draw_id": draw_id, "outcome": "offered", "slot": won["slot"]}
            if won.get("draw_id") == draw_id
            else {"draw_id": draw_id, "outcome": "not_drawn"}
            for draw_id in self._draws_during_wait(registration, joined)
        ]

    def _status_changed_at(self, key) -> float:
        raw = self.redis.hget(PoolKeys(key.pool).registration(key.registration_id), "status_changed_at")
        return datetime.datetime.fromisoformat(raw.decode()).timestamp()

    def offers(self, pool: str) -> dict[str, dict]:
        """Pending and past offers of the pool, by registration id."""
        return {key.decode(): json.loads(value) for key, value in self.redis.hgetall(PoolKeys(pool).offers).items()}

    def outbox(self, pool: str) -> list[dict]:
        return [json.loads(item) for item in self.redis.lrange(PoolKeys(pool).outbox, 0, -1)]

    def draws(self, pool: str, limit: int = 50) -> list[dict[str, str]]:
        """The pool's latest draws, newest first (one round trip for the records)."""
        pool_keys = PoolKeys(pool)
        ids = self.redis.zrevrange(pool_keys.draws, 0, limit - 1)
        with self.redis.pipeline(transaction=False) as pipe:
            for draw_id in ids:
                pipe.hgetall(pool_keys.draw(draw_id.decode()))
            found = pipe.execute() if ids else []
        return [{name.decode(): value.decode() for name, value in raw.items()} for raw in found if raw]

    # Offers, bookings, standby ----------------------------------------------------

    def offer(self, key) -> dict | None:
        """The registration's latest offer (draw_id, ref, slot, deadline, status, code...), or None."""
        raw = self.redis.hget(PoolKeys(key.pool).offers, key.registration_id)
        return json.loads(raw) if raw else None

    def move_offer(self, key, action: str, now: datetime.datetime, *extra, wait_days: int = 0,
                   expires_first: bool = False) -> str:
        """Apply one offer transition (scripts/move_offer.lua); returns "ok" or why not.

        `wait_days` and `expires_first` are counted when the offer is confirmed (the waits
        histogram, renewals whose permit expires before the appointment).
        """
        prints = self._fingerprints(key)
        offer = self.offer(key)
        if prints is None:
            return "missing"
        if offer is None:
            return "no_offer"
        draw_id = offer["draw_id"]
        keys = move_offer_keys(key, prints, draw_id, self.stats_keys(key.pool, now, draw_id=draw_id))
        arguments = [action, key.registration_id, _utc_text(now), now.timestamp(), self._waiting_since(key),
                     draw_id, wait_days, "1" if expires_first else "0", *extra]
        return self.scripts.move_offer(keys=keys, args=arguments).decode()

    def _waiting_since(self, key) -> str:
        """When the registration's current wait began (epoch), "" if unknown."""
        since, confirmed = self.redis.hmget(
            PoolKeys(key.pool).registration(key.registration_id), "waiting_since", "email_confirmed_at"
        )
        if since:
            return since.decode()
        return str(datetime.datetime.fromisoformat(confirmed.decode()).timestamp()) if confirmed else ""

    def expired_offers(self, pool: str, now: datetime.datetime) -> list[str]:
        """Registration ids whose pending standby offer's deadline has passed (and offers
        committed before draws kept one deadline for all their offers)."""
        found = self.redis.zrangebyscore(PoolKeys(pool).offer_deadlines, "-inf", f"({now.timestamp()}")
        return [registration_id.decode() for registration_id in found]

    def draws_past_deadline(self, pool: str, now: datetime.datetime) -> list[str]:
        """Draws whose offers' deadline has passed and whose late offers are not all expired yet."""
        found = self.redis.zrangebyscore(PoolKeys(pool).draw_deadlines, "-inf", f"({now.timestamp()}")
        return [draw_id.decode() for draw_id in found]

    def draw_deadline_passed(self, pool: str, draw_id: str) -> None:
        """Every offer of the draw still pending after its deadline has been expired."""
        self.redis.zrem(PoolKeys(pool).draw_deadlines, draw_id)

    def pending_offers_of(self, pool: str, draw_id: str, registration_ids: list[str]) -> list[str]:
        """Those of the registrations whose offer is still the draw's, and pending."""
        if not registration_ids:
            return []
        raw = self.redis.hmget(PoolKeys(pool).offers, registration_ids)
        pending = []
        for registration_id, text in zip(registration_ids, raw):
            offer = json.loads(text) if text else {}
            if offer.get("draw_id") == draw_id and offer.get("status") == "pending":
                pending.append(registration_id)
        return pending

    def standby_slots(self, pool: str) -> dict[str, str]:
        """Freed slots awaiting a standby offer: slot id -> the draw whose order they follow."""
        raw = self.redis.hgetall(PoolKeys(pool).standby)
        return {slot.decode(): draw_id.decode() for slot, draw_id in raw.items()}

    def offered_refs(self, pool: str, draw_id: str, refs: list[str]) -> list[bool]:
        """For each reference, whether the draw already offered it a slot."""
        if not refs:
            return []
        return [bool(found) for found in self.redis.smismember(PoolKeys(pool).draw_offered(draw_id), refs)]

    def registration_statuses(self, pool: str, registration_ids: list[str]) -> list[str | None]:
        with self.redis.pipeline(transaction=False) as pipe:
            for registration_id in registration_ids:
                pipe.hget(PoolKeys(pool).registration(registration_id), "status")
            return [value.decode() if value else None for value in pipe.execute()]

    def offer_standby(self, key, ref: str, slot_id: str, draw_id: str, deadline: datetime.datetime,
                      now: datetime.datetime) -> str:
        """Offer a freed slot to this entrant of the draw's order: "ok", "slot" or "person" (see the script)."""
        pool_keys = PoolKeys(key.pool)
        keys = [
            pool_keys.registration(key.registration_id),
            pool_keys.history(key.registration_id),
            pool_keys.offers,
            pool_keys.offer_deadlines,
            pool_keys.slot_states,
            pool_keys.slot_holders,
            pool_keys.outbox,
            pool_keys.waiting,
            pool_keys.standby,
            pool_keys.draw_offered(draw_id),
            *self.stats_keys(key.pool, now, draw_id=draw_id),
        ]
        arguments = [key.registration_id, ref, slot_id, draw_id, _utc_text(now), _utc_text(deadline),
                     deadline.timestamp(), now.timestamp()]
        return self.scripts.offer_standby(keys=keys, args=arguments).decode()

    def release_standby_slot(self, pool: str, slot_id: str, draw_id: str, now: datetime.datetime) -> bool:
        """No one left in the draw's order for this slot: it is open for the next draw."""
        pool_keys = PoolKeys(pool)
        keys = [pool_keys.slot_states, pool_keys.standby, *self.stats_keys(pool, now, draw_id=draw_id)]
        return bool(self.scripts.release_standby_slot(keys=keys, args=[slot_id, draw_id]))

    def slot(self, pool: str, slot_id: str) -> Slot | None:
        pool_keys = PoolKeys(pool)
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.hget(pool_keys.slots, slot_id)
            pipe.hget(pool_keys.slot_states, slot_id)
            raw, state = pipe.execute()
        return _slot_from(raw, state) if raw else None

    def slot_holder(self, pool: str, slot_id: str) -> str | None:
        holder = self.redis.hget(PoolKeys(pool).slot_holders, slot_id)
        return holder.decode() if holder else None

    def slot_holders(self, pool: str) -> dict[str, str]:
        raw = self.redis.hgetall(PoolKeys(pool).slot_holders)
        return {slot.decode(): holder.decode() for slot, holder in raw.items()}

    def bookings_starting(self, pool: str, start: datetime.datetime, end: datetime.datetime) -> list[tuple[str, float]]:
        """Bookings not yet attended or marked, whose slot starts in [start, end]: (registration id, start epoch)."""
        found = self.redis.zrangebyscore(PoolKeys(pool).bookings, start.timestamp(), end.timestamp(),
                                         withscores=True)
        return [(registration_id.decode(), score) for registration_id, score in found]

    def booking_holder(self, pool: str, code: str) -> str | None:
        holder = self.redis.hget(PoolKeys(pool).booking_codes, code)
        return holder.decode() if holder else None

    def queue_reminder(self, pool: str, registration_id: str, hours: list[int], now: datetime.datetime) -> bool:
        """Queue one reminder of the registration's booking for the lead times in `hours` not yet
        reminded; True if queued (False too when it holds no booking any more)."""
        pool_keys = PoolKeys(pool)
        keys = [pool_keys.offers, pool_keys.reminders, pool_keys.outbox]
        arguments = [registration_id, now.timestamp(), *sorted(hours, reverse=True)]
        return bool(self.scripts.queue_reminder(keys=keys, args=arguments))

    # The outbox and deliveries -------------------------------------------------------

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

    def delivery(self, pool: str, message_id: str, channel: str) -> dict | None:
        raw = self.redis.hget(PoolKeys(pool).deliveries, f"{message_id}|{channel}")
        return json.loads(raw) if raw else None

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

    # Staff accounts, sessions, tokens ------------------------------------------

    def create_staff_account(self, account: StaffAccount) -> bool:
        """Store a new account; False if its email is taken."""
        if not self.redis.hsetnx(STAFF_EMAILS_KEY, digest(account.email), account.id):
            return False
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(staff_account_key(account.id), mapping=_account_fields(account))
            pipe.sadd(STAFF_ACCOUNTS_KEY, account.id)
            pipe.execute()
        return True

    def staff_account(self, account_id: str) -> StaffAccount | None:
        fields = self.redis.hgetall(staff_account_key(account_id))
        return _account_from(fields) if fields else None

    def staff_account_by_email(self, email: str) -> StaffAccount | None:
        account_id = self.redis.hget(STAFF_EMAILS_KEY, digest(email))
        return self.staff_account(account_id.decode()) if account_id else None

    def staff_accounts(self, prefecture: str | None = None) -> list[StaffAccount]:
        """Every account, or those of one prefecture; by role, then name."""
        ids = sorted(member.decode() for member in self.redis.smembers(STAFF_ACCOUNTS_KEY))
        accounts = [account for account in map(self.staff_account, ids) if account is not None]
        if prefecture is not None:
            accounts = [account for account in accounts if account.prefecture == prefecture]
        return sorted(accounts, key=lambda account: (account.role.value, account.name))

    def set_staff_account_active(self, account_id: str, active: bool) -> None:
        self.redis.hset(staff_account_key(account_id), "active", "1" if active else "0")

    def login_failures(self, email: str) -> int:
        return int(self.redis.get(login_failures_key(digest(email))) or 0)

    def record_login_failure(self, email: str, now: datetime.datetime, window: datetime.timedelta) -> None:
        key = login_failures_key(digest(email))
        with self.redis.pipeline(transaction=True) as pipe:
            # The window starts at the first failure; INCR keeps the TTL. (Not
            # EXPIRE NX: the embedded Redis is 6.2.)
            pipe.set(key, 0, ex=int(window.total_seconds()), nx=True)
            pipe.incr(key)
            pipe.execute()

    def clear_login_failures(self, email: str) -> None:
        self.redis.delete(login_failures_key(digest(email)))

    def save_staff_session(self, session_digest, account_id, now, idle: datetime.timedelta) -> None:
        key = staff_session_key(session_digest)
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping={"account_id": account_id, "started_at": _utc_text(now)})
            pipe.expire(key, int(idle.total_seconds()))
            pipe.execute()

    def staff_session(self, session_digest: str) -> tuple[str, datetime.datetime] | None:
        values = self.redis.hmget(staff_session_key(session_digest), "account_id", "started_at")
        if values[0] is None:
            return None
        return values[0].decode(), _utc_from(values[1])

    def touch_staff_session(self, session_digest: str, idle: datetime.timedelta) -> None:
        self.redis.expire(staff_session_key(session_digest), int(idle.total_seconds()))

    def end_staff_session(self, session_digest: str) -> None:
        self.redis.delete(staff_session_key(session_digest))

    def save_api_token(self, token_digest: str, token: ApiToken) -> None:
        fields = {
            "id": token.id,
            "account_id": token.account_id,
            "role": token.role.value,
            "prefecture": token.prefecture or "",
            "label": token.label,
            "created_at": _utc_text(token.created_at),
        }
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(api_token_key(token_digest), mapping=fields)
            pipe.sadd(account_tokens_key(token.account_id), token_digest)
            pipe.execute()

    def api_token(self, token_digest: str) -> ApiToken | None:
        fields = {k.decode(): v.decode() for k, v in self.redis.hgetall(api_token_key(token_digest)).items()}
        if not fields:
            return None
        return ApiToken(
            id=fields["id"],
            account_id=fields["account_id"],
            role=Role(fields["role"]),
            prefecture=fields["prefecture"] or None,
            label=fields["label"],
            created_at=datetime.datetime.fromisoformat(fields["created_at"]),
        )

    def api_tokens(self, account_id: str) -> list[tuple[str, ApiToken]]:
        digests = sorted(member.decode() for member in self.redis.smembers(account_tokens_key(account_id)))
        found = [(token_digest, self.api_token(token_digest)) for token_digest in digests]
        return [(token_digest, token) for token_digest, token in found if token is not None]

    def revoke_api_token(self, account_id: str, token_id: str) -> bool:
        for token_digest, token in self.api_tokens(account_id):
            if token.id == token_id:
                with self.redis.pipeline(transaction=True) as pipe:
                    pipe.delete(api_token_key(token_digest))
                    pipe.srem(account_tokens_key(account_id), token_digest)
                    pipe.execute()
                return True
        return False

    def ping(self) -> bool:
        return bool(self.redis.ping())

    # Counters (the contract is in keys.py, above STATS_KEY) -----------------------------

    def _timezone(self, prefecture: str) -> str:
        """The prefecture's time zone, read once per store (it does not change)."""
        if prefecture not in self._timezones:
            raw = self.redis.hget(PREFECTURES_KEY, prefecture)
            # Reference data not loaded (a bare test store): metropolitan time.
            self._timezones[prefecture] = json.loads(raw)["timezone"] if raw else "Europe/Paris"
        return self._timezones[prefecture]

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
        (see `draw_candidates`), so those who lost j draws are those who joined
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
        lost = len(cutoffs)
        histogram = {}
        for count in found:
            if count:
                histogram[lost] = count
            lost -= 1
        return histogram

    def last_slot_start(self, pool: str) -> datetime.datetime | None:
        """When the pool's last published slot starts: how far the inventory reaches."""
        last = self.redis.zrange(PoolKeys(pool).slot_times, -1, -1, withscores=True)
        return datetime.datetime.fromtimestamp(last[0][1], datetime.timezone.utc) if last else None

    def joined_at(self, key) -> float | None:
        """When a waiting registration joined the waiting set (epoch), or None if it is not waiting."""
        return self.redis.zscore(PoolKeys(key.pool).waiting, key.registration_id)

    def open_slot_counts(self, pool: str, ranges: list[tuple[datetime.datetime, datetime.datetime]]) -> list[int]:
        """How many of the pool's slots are open in each [start, end), counted inside Redis."""
        if not ranges:
            return []
        pool_keys = PoolKeys(pool)
        arguments = [value for start, end in ranges for value in (start.timestamp(), end.timestamp())]
        keys = [pool_keys.slot_times, pool_keys.slot_states]
        return [int(count) for count in self.scripts.open_slot_counts(keys=keys, args=arguments)]

    def record_job_duration(self, name: str, seconds: float, bounds: tuple[float, ...]) -> None:
        """One more run of job `name` taking `seconds`, as a cumulative histogram over `bounds`."""
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.hincrby(JOB_DURATIONS_KEY, name, 1)
            pipe.hincrbyfloat(JOB_DURATIONS_KEY, f"{name}:sum", seconds)
            for bound in bounds:
                if seconds <= bound:
                    pipe.hincrby(JOB_DURATIONS_KEY, f"{name}:le:{bound}", 1)
            pipe.execute()

    def job_durations(self) -> dict[str, str]:
        return {name.decode(): value.decode() for name, value in self.redis.hgetall(JOB_DURATIONS_KEY).items()}


def move_offer_keys(key, prints: dict[str, str], draw_id: str, stats_keys: list[str]) -> list[str]:
    """KEYS of scripts/move_offer.lua for the offer of registration `key` made by draw `draw_id`, in the
    script's order (the numbers below are its KEYS[i]).

    `prints` are the registration's fingerprints as stored (`Store._fingerprints`): a
    closing offer releases the person and contacts. `stats_keys` are the counters an
    event goes to now, the draw's included (`Store.stats_keys(pool, now, draw_id)`).
    """
    pool_keys, registration_id = PoolKeys(key.pool), key.registration_id
    return [
        pool_keys.registration(registration_id),  # 1
        pool_keys.history(registration_id),  # 2
        pool_keys.offers,  # 3
        pool_keys.offer_deadlines,  # 4: a standby offer's own deadline
        pool_keys.slot_states,  # 5
        pool_keys.slot_holders,  # 6
        pool_keys.bookings,  # 7
        pool_keys.booking_codes,  # 8
        pool_keys.outbox,  # 9
        pool_keys.waiting,  # 10: back to the pool
        pool_keys.committed_draws,  # 11: the draws lost before the one won, settled on going back
        pool_keys.identity(prints["identity_fp"]),  # 12: released on closing
        pool_keys.contact(prints["email_fp"] or "none"),  # 13: released on closing
        pool_keys.contact(prints["phone_fp"]),  # 14: released on closing
        pool_keys.closed,  # 15
        pool_keys.standby,  # 16: a freed slot awaits the draw's next entrant
        *stats_keys,  # 17, 18, 19: totals, day, the draw's
        pool_keys.stats_waits,  # 20: the waits histogram
        pool_keys.draw_offered(draw_id),  # 21: references the draw's standby skips
        pool_keys.draw(draw_id),  # 22: the draw's record (its offers_deadline)
    ]


# Serialisation: reference dataclasses <-> JSON text -------------------------


def _prefecture_json(prefecture: Prefecture) -> str:
    return json.dumps({"code": prefecture.code, "name": prefecture.name, "timezone": prefecture.timezone})


def _prefecture_from(raw: bytes) -> Prefecture:
    return Prefecture(**json.loads(raw))


def _procedure_json(procedure: Procedure) -> str:
    return json.dumps(
        {
            "code": procedure.code,
            "label_fr": procedure.label_fr,
            "label_en": procedure.label_en,
            "description_fr": procedure.description_fr,
            "description_en": procedure.description_en,
            "required_fields": [field.value for field in procedure.required_fields],
        }
    )


def _procedure_from(raw: bytes) -> Procedure:
    values = json.loads(raw)
    values["required_fields"] = tuple(IdentityField(field) for field in values["required_fields"])
    return Procedure(**values)


def _site_json(site: Site) -> str:
    hours = [[h.weekday, h.opens.isoformat("minutes"), h.closes.isoformat("minutes")] for h in site.opening_hours]
    return json.dumps(
        {
            "id": site.id,
            "prefecture": site.prefecture,
            "name": site.name,
            "kind": site.kind,
            "address": site.address,
            "postcode": site.postcode,
            "city": site.city,
            "opening_hours": hours,
            "closed": site.closed,
        }
    )


def _site_from(raw: bytes) -> Site:
    values = json.loads(raw)
    values["opening_hours"] = tuple(
        OpeningHours(weekday, datetime.time.fromisoformat(opens), datetime.time.fromisoformat(closes))
        for weekday, opens, closes in values["opening_hours"]
    )
    return Site(**values)


def _registration_fields(registration: Registration, prints: Fingerprints) -> dict[str, str]:
    applicant = registration.applicant
    return {
        "id": registration.key.registration_id,
        "ref": registration.ref,
        "prefecture": registration.key.prefecture,
        "procedure": registration.key.procedure,
        "status": registration.status.value,
        "channel": registration.channel.value,
        "agent": registration.agent or "",
        "created_at": _utc_text(registration.created_at),
        "confirm_by": _utc_text(registration.confirm_by),
        "email_confirmed_at": _utc_text(registration.email_confirmed_at) if registration.email_confirmed_at else "",
        "status_changed_at": _utc_text(registration.created_at),
        # When the current wait began (epoch): draws lost are counted from there.
        "waiting_since": str(registration.created_at.timestamp()) if registration.status.value == "waiting" else "",
        "family_name": applicant.family_name,
        "given_names": applicant.given_names,
        "birth_date": applicant.birth_date.isoformat(),
        "nationality": applicant.nationality,
        "email": applicant.email or "",
        "phone": applicant.phone,
        "agdref": applicant.agdref or "",
        "permit_expiry": applicant.permit_expiry.isoformat() if applicant.permit_expiry else "",
        "sites": json.dumps(list(applicant.sites)),
        "half_days": json.dumps(list(applicant.half_days)),
        "language": applicant.language,
        "identity_fp": prints.identity,
        "email_fp": prints.email or "",
        "phone_fp": prints.phone,
        "draws_entered": str(registration.draws_entered),
        "draws_lost": str(registration.draws_lost),
        "pending_email": "",
    }


def _registration_from(fields: dict[str, str]) -> Registration:
    def moment(name: str) -> datetime.datetime | None:
        return datetime.datetime.fromisoformat(fields[name]) if fields.get(name) else None

    def day(name: str) -> datetime.date | None:
        return datetime.date.fromisoformat(fields[name]) if fields.get(name) else None

    applicant = Applicant(
        family_name=fields["family_name"],
        given_names=fields["given_names"],
        birth_date=day("birth_date"),
        nationality=fields["nationality"],
        email=fields["email"] or None,
        phone=fields["phone"],
        agdref=fields["agdref"] or None,
        permit_expiry=day("permit_expiry"),
        sites=tuple(json.loads(fields["sites"])),
        half_days=tuple(json.loads(fields["half_days"])),
        language=fields["language"],
    )
    return Registration(
        key=RegistrationKey(fields["prefecture"], fields["procedure"], fields["id"]),
        ref=fields["ref"],
        status=RegistrationStatus(fields["status"]),
        channel=Channel(fields["channel"]),
        agent=fields["agent"] or None,
        created_at=moment("created_at"),
        confirm_by=moment("confirm_by"),
        applicant=applicant,
        draws_entered=int(fields["draws_entered"]),
        draws_lost=int(fields["draws_lost"]),
        email_confirmed_at=moment("email_confirmed_at"),
        pending_email=fields.get("pending_email") or None,
    )


def _slot_json(slot: Slot) -> str:
    return json.dumps(
        {
            "id": slot.id,
            "prefecture": slot.prefecture,
            "site": slot.site,
            "procedure": slot.procedure,
            "starts_at": _utc_text(slot.starts_at),
            "duration_minutes": slot.duration_minutes,
            "counter": slot.counter,
        }
    )


def _slot_from(raw: bytes, state: bytes | None) -> Slot:
    values = json.loads(raw)
    values["starts_at"] = datetime.datetime.fromisoformat(values["starts_at"])
    values["status"] = SlotStatus(state.decode() if state else SlotStatus.OPEN.value)
    return Slot(**values)


def _account_fields(account: StaffAccount) -> dict[str, str]:
    return {
        "id": account.id,
        "email": account.email,
        "name": account.name,
        "role": account.role.value,
        "prefecture": account.prefecture or "",
        "password_hash": account.password_hash,
        "active": "1" if account.active else "0",
        "created_at": _utc_text(account.created_at),
    }


def _account_from(raw: dict[bytes, bytes]) -> StaffAccount:
    fields = {name.decode(): value.decode() for name, value in raw.items()}
    return StaffAccount(
        id=fields["id"],
        email=fields["email"],
        name=fields["name"],
        role=Role(fields["role"]),
        prefecture=fields["prefecture"] or None,
        password_hash=fields["password_hash"],
        active=fields["active"] == "1",
        created_at=datetime.datetime.fromisoformat(fields["created_at"]),
    )


def _code_order(code: str) -> tuple[int, str]:
    """Sort key putting 2A and 2B where 20 would stand, and overseas last."""
    digits = code.replace("2A", "20").replace("2B", "20")
    return (int(digits), code)


def _event_json(moment: datetime.datetime, kind: str, detail: dict | None = None) -> str:
    return json.dumps({"at": _utc_text(moment), "kind": kind, "detail": detail or {}})


def _utc_text(moment: datetime.datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("times passed to the store must be timezone-aware")
    return moment.astimezone(datetime.timezone.utc).isoformat()


def _utc_from(raw: bytes | None) -> datetime.datetime | None:
    return None if raw is None else datetime.datetime.fromisoformat(raw.decode())
