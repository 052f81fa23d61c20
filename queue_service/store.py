"""The Redis store: the only code that knows Redis key names.

Every key is a named constant below with what it holds and its type. Keys of
one prefecture carry its code as a hash tag (`{01}`), keys of one pool will
carry `{01:renewal}`, so that each group lives on one Redis Cluster slot and
multi-key scripts stay legal there.
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
from queue_service.scripts import (
    ADVANCE_SCRIPT,
    CANDIDATES_SCRIPT,
    CLOSE_SCRIPT,
    COMMIT_SCRIPT,
    CONFIRM_SCRIPT,
    CREATE_DRAW_SCRIPT,
    CREATE_SCRIPT,
    DRAW_STEP_SCRIPT,
    MOVE_CONTACT_SCRIPT,
    OFFER_SCRIPT,
    OPEN_SLOTS_SCRIPT,
    PURGE_SCRIPT,
    RELEASE_SLOT_SCRIPT,
    REMINDER_SCRIPT,
    STANDBY_SCRIPT,
)
from queue_service.staff.accounts import ApiToken, Role, StaffAccount, digest

# Hash: prefecture code -> JSON {code, name, timezone}. Written by `qs load-reference`.
PREFECTURES_KEY = "qs:ref:prefectures"
# Hash: procedure code -> JSON {code, labels, descriptions, required_fields}.
PROCEDURES_KEY = "qs:ref:procedures"
# Hash per prefecture: site id -> JSON of the site (address, opening hours).
SITES_KEY = "qs:{{{prefecture}}}:sites"
# String: ISO-8601 UTC time of the clock process's last tick.
CLOCK_TICK_KEY = "qs:health:clock"
# String: ISO-8601 UTC time the worker last ran the heartbeat job.
WORKER_HEARTBEAT_KEY = "qs:health:worker"
# String, with a TTL: set once when the clock enqueues periodic job `name` for
# time bucket `bucket`, so that several clocks enqueue it only once.
PERIODIC_RUN_KEY = "qs:clock:periodic:{name}:{bucket}"
# Prefix of the counters Flask-Limiter keeps (strings with a TTL, its own format).
RATE_LIMIT_PREFIX = "qs:ratelimit"
# Set of pool names ("01:renewal") that have had registrations: what purges walk.
POOLS_KEY = "qs:pools"
# Set per prefecture: keyed hashes (HMAC) of the AGDREF numbers its records know.
AGDREF_KEY = "qs:{{{prefecture}}}:agdref"

# Staff. Hash per account: its fields (email, name, role, prefecture, argon2 hash...).
STAFF_ACCOUNT_KEY = "qs:staff:account:{id}"
# Hash: SHA-256 of a staff email -> account id (unique emails, no address in key names).
STAFF_EMAILS_KEY = "qs:staff:emails"
# Set of all staff account ids.
STAFF_ACCOUNTS_KEY = "qs:staff:accounts"
# String with a TTL: failed sign-ins for one email (SHA-256) in the current window.
LOGIN_FAILURES_KEY = "qs:staff:login-failures:{email_digest}"
# Hash with a TTL (the idle timeout): one staff session by the SHA-256 of its id.
STAFF_SESSION_KEY = "qs:staff:session:{digest}"
# Hash: one API token by the SHA-256 of its text (account, role, scope, label).
API_TOKEN_KEY = "qs:staff:token:{digest}"
# Set per account: digests of its API tokens (to list and revoke them).
ACCOUNT_TOKENS_KEY = "qs:staff:account:{id}:tokens"

# Set of pools ("01:renewal") that have a draw schedule: what the clock walks.
SCHEDULED_POOLS_KEY = "qs:schedules"

# Keys of one pool share the hash tag {<prefecture>:<procedure>}.
# Hash: one registration's fields (personal data included; never in key names).
REGISTRATION_KEY = "qs:{{{pool}}}:reg:{id}"
# List of JSON events {at, kind, detail}: the registration's history, for its proof.
HISTORY_KEY = "qs:{{{pool}}}:reg:{id}:history"
# String: registration id holding the place of one person (keyed hash of identity).
IDENTITY_KEY = "qs:{{{pool}}}:identity:{fingerprint}"
# Set of registration ids active with one email or phone (keyed hash of it).
CONTACT_KEY = "qs:{{{pool}}}:contact:{fingerprint}"
# Hash: public reference -> registration id.
REFS_KEY = "qs:{{{pool}}}:refs"
# Sorted set: registrations waiting for a draw, scored by the time they joined.
WAITING_KEY = "qs:{{{pool}}}:waiting"
# Sorted set: registrations awaiting email confirmation, scored by their deadline.
UNCONFIRMED_KEY = "qs:{{{pool}}}:unconfirmed"
# Sorted set: closed registrations (withdrawn...), scored by when they closed.
CLOSED_KEY = "qs:{{{pool}}}:closed"
# Hash: slot id -> JSON of the slot (site, start, length, counter).
SLOTS_KEY = "qs:{{{pool}}}:slots"
# Hash: slot id -> its status (open, offered, booked, cancelled).
SLOT_STATES_KEY = "qs:{{{pool}}}:slot-states"
# Sorted set: the pool's committed draws, scored by their entry cutoff. A
# waiting registration has lost every draw committed since it joined.
COMMITTED_DRAWS_KEY = "qs:{{{pool}}}:committed-draws"
# Sorted set: slot ids scored by their start time (epoch seconds).
SLOT_TIMES_KEY = "qs:{{{pool}}}:slot-times"
# String: JSON of the pool's draw schedule and policy.
SCHEDULE_KEY = "qs:{{{pool}}}:schedule"
# String: epoch seconds up to which the clock has enqueued the pool's draws.
RECONCILED_KEY = "qs:{{{pool}}}:reconciled-until"
# Hash: one draw's record (scheduled time, state, trigger, counts).
DRAW_KEY = "qs:{{{pool}}}:draw:{draw_id}"
# Sorted set: the pool's draw ids scored by their scheduled time.
DRAWS_KEY = "qs:{{{pool}}}:draws"
# String: the draw's fencing counter; each run takes the next value, and only
# the latest may change the draw.
DRAW_FENCE_KEY = "qs:{{{pool}}}:draw:{draw_id}:fence"
# Hash: the frozen entrants, slots and phases as columns (and, privately, which
# registration each reference is): the fields are described in frozen.py.
# (String: one JSON document, for draws frozen before that format.)
DRAW_FROZEN_KEY = "qs:{{{pool}}}:draw:{draw_id}:frozen"
# String: JSON of the winners in selection order, as columns {"refs": [...],
# "slots": [...], "registrations": [...], "entrants": [...], "by_wait": [...]}
# (entrants: each winner's position among the frozen entrants; by_wait: the
# winners' positions in the order they joined the waiting list). Results saved
# before that format are a list of {ref, slot, registration}.
DRAW_RESULT_KEY = "qs:{{{pool}}}:draw:{draw_id}:result"
# Hash: registration id -> JSON of its offer (draw, slot, deadline, status).
OFFERS_KEY = "qs:{{{pool}}}:offers"
# List: JSON messages to send {id, kind, registration_id, draw_id, slot}, written
# in the same script as the change they tell of; the dispatch job hands them to
# send jobs (worker/jobs.py).
OUTBOX_KEY = "qs:{{{pool}}}:outbox"
# String: a token while one dispatcher hands the outbox to send jobs.
OUTBOX_LOCK_KEY = "qs:{{{pool}}}:outbox:lock"
# Sorted set: registration id -> deadline (epoch) of its pending standby offer.
# (The offers a draw makes share one deadline: the draw record's field
# "offers_deadline", indexed in DRAW_DEADLINES_KEY. Offers committed before
# that have their own entry here.)
OFFER_DEADLINES_KEY = "qs:{{{pool}}}:offer-deadlines"
# Sorted set: draw id -> the deadline (epoch) of the offers it made, until the
# expiry round has expired those still pending after it.
DRAW_DEADLINES_KEY = "qs:{{{pool}}}:draw-deadlines"
# Hash: slot id -> registration id holding it (offered or booked).
SLOT_HOLDERS_KEY = "qs:{{{pool}}}:slot-holders"
# Sorted set: registration id -> start (epoch) of its booked slot, until attended or marked no-show.
BOOKINGS_KEY = "qs:{{{pool}}}:bookings"
# Hash: booking code -> registration id.
BOOKING_CODES_KEY = "qs:{{{pool}}}:booking-codes"
# Hash: slot id -> draw id, for a freed slot awaiting the next entrant of that draw's order.
STANDBY_KEY = "qs:{{{pool}}}:standby"
# Set: references the draw's standby must skip: those it offered a freed slot, and
# its winners once back in the pool (after declining, or letting the deadline pass,
# or their slot cancelled). Winners still holding their offer are not waiting, so
# they need no entry: the commit does not write a hundred thousand.
DRAW_OFFERED_KEY = "qs:{{{pool}}}:draw:{draw_id}:offered"
# Hash: "<registration id>:<slot id>:<hours>" -> when that reminder was queued (epoch).
REMINDERS_KEY = "qs:{{{pool}}}:reminders"
# Hash: "<message id>|<channel>" -> JSON of its delivery {status, attempts, at, error, provider_id}.
DELIVERIES_KEY = "qs:{{{pool}}}:deliveries"
# Sorted set: "<message id>|<channel>" -> when its delivery last failed (epoch), while it fails.
DELIVERY_FAILURES_KEY = "qs:{{{pool}}}:delivery-failures"

# Counters -------------------------------------------------------------------
# The contract every script that changes a pool follows (the offers' scripts included):
#
#   qs:{pool}:stats                   hash: event -> count since the pool began
#   qs:{pool}:stats:day:{YYYY-MM-DD}  hash: event -> count on that day, in the
#                                     prefecture's time zone
#   qs:{pool}:stats:draw:{draw_id}    hash: event -> count, for what became of
#                                     one draw's offers (slots_offered,
#                                     offer_confirmed, offer_declined...)
#   qs:{pool}:stats:waits             hash: whole days from joining the pool to
#                                     the appointment's start -> how many
#                                     bookings (filled at confirmation)
#
# Fields are the event names of queue_service/metrics/__init__.py (EVENTS), nothing
# else. Counters change only inside the Lua script that makes the change they
# count, through the helper STATS_LUA of queue_service/scripts.py:
# `count_event(event, amount, KEYS[i], KEYS[j] [, KEYS[k]])` and
# `count_wait(KEYS[w], days)`. The keys are passed in KEYS (built by
# `Store.stats_keys(pool, now, draw_id=None)` and `Store.waits_key(pool)`),
# so scripts stay on the pool's cluster slot. Events that no script makes
# (a rate limit hit) go through `Store.count_event`. Gauges ("waiting now",
# "pending email") are not counters: they are the ZCARD of the sets above.
# Counters are kept forever (a few hundred small hashes per pool and year):
# the public statistics go back to the pool's start.
STATS_KEY = "qs:{{{pool}}}:stats"
STATS_DAY_KEY = "qs:{{{pool}}}:stats:day:{day}"
STATS_DRAW_KEY = "qs:{{{pool}}}:stats:draw:{draw_id}"
STATS_WAITS_KEY = "qs:{{{pool}}}:stats:waits"
# Hash: job function name -> count, and "<name>:sum" -> total seconds, and
# "<name>:le:<bound>" -> count of runs at most `bound` seconds: the RQ jobs'
# durations, written by the worker (any host), read by /metrics.
JOB_DURATIONS_KEY = "qs:stats:jobs"


class Store:
    """Reads and writes the service's state in one Redis database."""

    def __init__(self, client: redis.Redis) -> None:
        # The client returns bytes (RQ requires it); the store decodes what it reads.
        self.redis = client
        self._create = client.register_script(CREATE_SCRIPT)
        self._confirm = client.register_script(CONFIRM_SCRIPT)
        self._close = client.register_script(CLOSE_SCRIPT)
        self._move_contact = client.register_script(MOVE_CONTACT_SCRIPT)
        self._purge = client.register_script(PURGE_SCRIPT)
        self._advance = client.register_script(ADVANCE_SCRIPT)
        self._commit = client.register_script(COMMIT_SCRIPT)
        self._draw_step = client.register_script(DRAW_STEP_SCRIPT)
        self._create_draw = client.register_script(CREATE_DRAW_SCRIPT)
        self._candidates = client.register_script(CANDIDATES_SCRIPT)
        self._offer = client.register_script(OFFER_SCRIPT)
        self._standby = client.register_script(STANDBY_SCRIPT)
        self._release_slot = client.register_script(RELEASE_SLOT_SCRIPT)
        self._reminder = client.register_script(REMINDER_SCRIPT)
        self._open_slots = client.register_script(OPEN_SLOTS_SCRIPT)
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
            added += self.redis.hsetnx(SITES_KEY.format(prefecture=site.prefecture), site.id, _site_json(site))
        return added

    def save_site(self, site: Site) -> None:
        """Create or replace a site."""
        self.redis.hset(SITES_KEY.format(prefecture=site.prefecture), site.id, _site_json(site))

    def delete_site(self, prefecture_code: str, site_id: str) -> None:
        self.redis.hdel(SITES_KEY.format(prefecture=prefecture_code), site_id)

    def site(self, prefecture_code: str, site_id: str) -> Site | None:
        raw = self.redis.hget(SITES_KEY.format(prefecture=prefecture_code), site_id)
        return _site_from(raw) if raw else None

    def sites(self, prefecture_code: str) -> list[Site]:
        values = self.redis.hvals(SITES_KEY.format(prefecture=prefecture_code))
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
        key = PERIODIC_RUN_KEY.format(name=name, bucket=bucket)
        return bool(self.redis.set(key, "1", nx=True, ex=ttl_seconds))

    # Registrations -----------------------------------------------------

    def create_registration(self, registration, prints, contacts_cap: int, now: datetime.datetime) -> str:
        """"ok", "duplicate", "contact_cap" or "ref_taken", all or nothing.

        An unconfirmed registration of the same person past its deadline no
        longer holds the place: it is purged first.
        """
        key = registration.key
        holder = self.redis.get(IDENTITY_KEY.format(pool=key.pool, fingerprint=prints.identity))
        if holder is not None:
            self._purge_one(key.pool, holder.decode(), "unconfirmed", now)
        fields = _registration_fields(registration, prints)
        event = _event_json(now, "registered", {"channel": registration.channel.value})
        keys = [
            REGISTRATION_KEY.format(pool=key.pool, id=key.registration_id),
            HISTORY_KEY.format(pool=key.pool, id=key.registration_id),
            IDENTITY_KEY.format(pool=key.pool, fingerprint=prints.identity),
            CONTACT_KEY.format(pool=key.pool, fingerprint=prints.email or "none"),
            CONTACT_KEY.format(pool=key.pool, fingerprint=prints.phone),
            REFS_KEY.format(pool=key.pool),
            UNCONFIRMED_KEY.format(pool=key.pool),
            WAITING_KEY.format(pool=key.pool),
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
        outcome = self._create(keys=keys, args=arguments).decode()
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
                fields = _registration_fields(registration, fingerprints) | {"waiting_since": str(joined.timestamp())}
                pipe.hset(REGISTRATION_KEY.format(pool=key.pool, id=key.registration_id), mapping=fields)
                pipe.set(IDENTITY_KEY.format(pool=key.pool, fingerprint=fingerprints.identity), key.registration_id)
                pipe.hset(REFS_KEY.format(pool=key.pool), registration.ref, key.registration_id)
                pipe.zadd(WAITING_KEY.format(pool=key.pool), {key.registration_id: joined.timestamp()})
                if number % 10_000 == 0:
                    pipe.execute()
            pipe.execute()
        pools = {registration.key.pool for registration in registrations}
        if pools:
            self.redis.sadd(POOLS_KEY, *pools)

    def registration(self, key):
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(REGISTRATION_KEY.format(pool=key.pool, id=key.registration_id))
            pipe.zscore(WAITING_KEY.format(pool=key.pool), key.registration_id)
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
        offer = self.redis.hget(OFFERS_KEY.format(pool=key.pool), key.registration_id)
        return json.loads(offer)["draw_id"] if offer else None

    def _won_draw_cutoff(self, key) -> float | None:
        """The cutoff of the draw that offered the registration a slot: its wait ended there."""
        offer = self.redis.hget(OFFERS_KEY.format(pool=key.pool), key.registration_id)
        if offer is None:
            return None
        return self.redis.zscore(COMMITTED_DRAWS_KEY.format(pool=key.pool), json.loads(offer)["draw_id"])

    def registration_key_by_ref(self, pool: str, ref: str):
        registration_id = self.redis.hget(REFS_KEY.format(pool=pool), ref)
        if registration_id is None:
            return None
        prefecture, procedure = PoolId(pool).parts
        return RegistrationKey(prefecture, procedure, registration_id.decode())

    def history(self, key) -> list[dict]:
        raw = self.redis.lrange(HISTORY_KEY.format(pool=key.pool, id=key.registration_id), 0, -1)
        return [json.loads(item) for item in raw]

    def waiting_count(self, pool: str) -> int:
        return self.redis.zcard(WAITING_KEY.format(pool=pool))

    def confirm_email(self, key, now: datetime.datetime) -> bool:
        keys = [
            REGISTRATION_KEY.format(pool=key.pool, id=key.registration_id),
            HISTORY_KEY.format(pool=key.pool, id=key.registration_id),
            UNCONFIRMED_KEY.format(pool=key.pool),
            WAITING_KEY.format(pool=key.pool),
            *self.stats_keys(key.pool, now),
        ]
        arguments = [key.registration_id, _utc_text(now), now.timestamp(), _event_json(now, "email_confirmed")]
        return bool(self._confirm(keys=keys, args=arguments))

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
            outcome = self._close(keys=keys, args=arguments)
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
        self.redis.hset(REGISTRATION_KEY.format(pool=key.pool, id=key.registration_id), "pending_email", email)

    def _change_contact(self, key, kind, new_print, changes, contacts_cap, now, event_kind) -> str:
        for _ in range(3):
            prints = self._fingerprints(key)
            if prints is None:
                return "missing"
            old_print = prints[f"{kind}_fp"]
            keys = [
                REGISTRATION_KEY.format(pool=key.pool, id=key.registration_id),
                HISTORY_KEY.format(pool=key.pool, id=key.registration_id),
                CONTACT_KEY.format(pool=key.pool, fingerprint=old_print or "none"),
                CONTACT_KEY.format(pool=key.pool, fingerprint=new_print),
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
            outcome = self._move_contact(keys=keys, args=arguments).decode()
            if outcome != "retry":
                return outcome
        return "retry"

    def _fingerprints(self, key) -> dict[str, str] | None:
        values = self.redis.hmget(
            REGISTRATION_KEY.format(pool=key.pool, id=key.registration_id), "identity_fp", "email_fp", "phone_fp", "ref"
        )
        if values[0] is None:
            return None
        names = ("identity_fp", "email_fp", "phone_fp", "ref")
        return {name: (value or b"").decode() for name, value in zip(names, values)}

    def _lifecycle_keys(self, pool: str, registration_id: str, prints: dict[str, str]) -> list[str]:
        return [
            REGISTRATION_KEY.format(pool=pool, id=registration_id),
            HISTORY_KEY.format(pool=pool, id=registration_id),
            IDENTITY_KEY.format(pool=pool, fingerprint=prints["identity_fp"]),
            CONTACT_KEY.format(pool=pool, fingerprint=prints["email_fp"] or "none"),
            CONTACT_KEY.format(pool=pool, fingerprint=prints["phone_fp"]),
            REFS_KEY.format(pool=pool),
            UNCONFIRMED_KEY.format(pool=pool),
            WAITING_KEY.format(pool=pool),
            CLOSED_KEY.format(pool=pool),
        ]

    # Purges ----------------------------------------------------------------

    def pools(self) -> list[PoolId]:
        return sorted(PoolId(pool.decode()) for pool in self.redis.smembers(POOLS_KEY))

    def purge_unconfirmed(self, pool: str, now: datetime.datetime) -> int:
        """Delete registrations whose email was not confirmed by their deadline."""
        due = self.redis.zrangebyscore(UNCONFIRMED_KEY.format(pool=pool), "-inf", now.timestamp())
        return sum(self._purge_one(pool, registration_id.decode(), "unconfirmed", now) for registration_id in due)

    def purge_closed(self, pool: str, closed_before: datetime.datetime) -> int:
        """Delete registrations closed before `closed_before` (the retention period is over).

        Not counted: the closing was (withdrawn...), and the counters keep no personal data to purge.
        """
        due = self.redis.zrangebyscore(CLOSED_KEY.format(pool=pool), "-inf", closed_before.timestamp())
        return sum(self._purge_one(pool, registration_id.decode(), "closed", closed_before) for registration_id in due)

    def _purge_one(self, pool: str, registration_id: str, which: str, deadline: datetime.datetime) -> int:
        """Delete one registration if it is still unconfirmed past `deadline`, or closed before it.

        An unconfirmed one is purged when its deadline has passed, at `deadline`
        (now): the day it is counted in.
        """
        prefecture, procedure = PoolId(pool).parts
        prints = self._fingerprints(RegistrationKey(prefecture, procedure, registration_id))
        if prints is None:
            # Already gone: drop it from the indexes that still name it.
            for index in (UNCONFIRMED_KEY, CLOSED_KEY):
                self.redis.zrem(index.format(pool=pool), registration_id)
            return 0
        keys = [*self._lifecycle_keys(pool, registration_id, prints), *self.stats_keys(pool, deadline),
                OFFERS_KEY.format(pool=pool)]
        arguments = [registration_id, prints["ref"], which, deadline.timestamp()]
        return int(self._purge(keys=keys, args=arguments))

    # AGDREF records ------------------------------------------------------------

    def replace_agdref_records(self, prefecture: str, fingerprints: list[str]) -> None:
        """Replace the prefecture's known AGDREF numbers (as keyed hashes), all at once."""
        key = AGDREF_KEY.format(prefecture=prefecture)
        staging = key + ":staging"
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
        return bool(self.redis.sismember(AGDREF_KEY.format(prefecture=prefecture), fingerprint))

    def agdref_count(self, prefecture: str) -> int:
        return self.redis.scard(AGDREF_KEY.format(prefecture=prefecture))

    # Slots -------------------------------------------------------------------

    def add_slots(self, slots: list[Slot]) -> int:
        """Store new slots (all at once); returns how many."""
        with self.redis.pipeline(transaction=True) as pipe:
            for slot in slots:
                pool = PoolId.of(slot.prefecture, slot.procedure)
                pipe.hset(SLOTS_KEY.format(pool=pool), slot.id, _slot_json(slot))
                pipe.hset(SLOT_STATES_KEY.format(pool=pool), slot.id, slot.status.value)
                pipe.zadd(SLOT_TIMES_KEY.format(pool=pool), {slot.id: slot.starts_at.timestamp()})
            pipe.execute()
        return len(slots)

    def slots(self, pool: str, start: datetime.datetime, end: datetime.datetime) -> list[Slot]:
        """The pool's slots starting in [start, end), by start time."""
        ids = self.redis.zrangebyscore(SLOT_TIMES_KEY.format(pool=pool), start.timestamp(), f"({end.timestamp()}")
        if not ids:
            return []
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.hmget(SLOTS_KEY.format(pool=pool), ids)
            pipe.hmget(SLOT_STATES_KEY.format(pool=pool), ids)
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
        key = SLOT_STATES_KEY.format(pool=pool)
        with self.redis.pipeline() as pipe:
            try:
                pipe.watch(key)
                if pipe.hget(key, slot_id) not in (SlotStatus.OPEN.value.encode(), SlotStatus.STANDBY.value.encode()):
                    return False
                pipe.multi()
                pipe.hset(key, slot_id, SlotStatus.CANCELLED.value)
                pipe.hdel(STANDBY_KEY.format(pool=pool), slot_id)
                pipe.execute()
                return True
            except redis.WatchError:
                return False

    # Schedules and draws -------------------------------------------------------

    def save_schedule(self, schedule: DrawSchedule) -> None:
        pool = PoolId.of(schedule.prefecture, schedule.procedure)
        self.redis.set(SCHEDULE_KEY.format(pool=pool), json.dumps(schedule_to_dict(schedule)))
        self.redis.sadd(SCHEDULED_POOLS_KEY, pool)

    def schedule(self, pool: str) -> DrawSchedule | None:
        raw = self.redis.get(SCHEDULE_KEY.format(pool=pool))
        return schedule_from_dict(json.loads(raw)) if raw else None

    def scheduled_pools(self) -> list[PoolId]:
        return sorted(PoolId(pool.decode()) for pool in self.redis.smembers(SCHEDULED_POOLS_KEY))

    def reconciled_until(self, pool: str) -> datetime.datetime | None:
        raw = self.redis.get(RECONCILED_KEY.format(pool=pool))
        return datetime.datetime.fromtimestamp(float(raw), datetime.timezone.utc) if raw else None

    def advance_reconciled(self, pool: str, moment: datetime.datetime) -> None:
        """Move the pool's reconciled-until mark forward (never back: clocks may race)."""
        self._advance(keys=[RECONCILED_KEY.format(pool=pool)], args=[moment.timestamp()])

    def create_draw(self, pool: str, draw_id: str, fields: dict[str, str]) -> bool:
        """Create a draw's record unless it exists; True if created."""
        scheduled = datetime.datetime.fromisoformat(fields["scheduled_at"]).timestamp()
        keys = [DRAW_KEY.format(pool=pool, draw_id=draw_id), DRAWS_KEY.format(pool=pool)]
        arguments = [scheduled, draw_id, *[item for pair in fields.items() for item in pair]]
        return bool(self._create_draw(keys=keys, args=arguments))

    def claim_draw_run(
        self, pool: str, draw_id: str, now: datetime.datetime, also=None, marker: str = "run_claimed_at"
    ) -> bool:
        """Mark a step of the draw (`marker`: its run, or its freeze) as claimed and, in the same
        transaction, run `also(pipeline)` (the caller queues the job there): both or neither;
        False if already claimed."""
        key = DRAW_KEY.format(pool=pool, draw_id=draw_id)
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
        raw = self.redis.hgetall(DRAW_KEY.format(pool=pool, draw_id=draw_id))
        return {name.decode(): value.decode() for name, value in raw.items()} or None

    def take_draw_fence(self, pool: str, draw_id: str) -> int:
        """A new fencing token for a run of the draw; older runs can no longer change it."""
        return int(self.redis.incr(DRAW_FENCE_KEY.format(pool=pool, draw_id=draw_id)))

    def draw_candidates(self, pool: str, cutoff: datetime.datetime) -> list[dict]:
        """Registrations waiting since before `cutoff`, with what a draw needs of them."""
        rows = self._candidates(
            keys=[WAITING_KEY.format(pool=pool)],
            args=[cutoff.timestamp(), REGISTRATION_KEY.format(pool=pool, id="")],
        )
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
        self._fenced_step(pool, draw_id, fence, "scheduled", changes, (DRAW_FROZEN_KEY, frozen_fields))

    def save_draw_result(self, pool: str, draw_id: str, fence: int, result_json: str, changes: dict[str, str]) -> None:
        self._fenced_step(pool, draw_id, fence, "frozen", changes, (DRAW_RESULT_KEY, result_json))

    def _fenced_step(self, pool, draw_id, fence, expected_state, changes, blob) -> None:
        """Store a step's data and change the record, both at once, if the fence is still ours."""
        key = DRAW_KEY.format(pool=pool, draw_id=draw_id)
        fence_key = DRAW_FENCE_KEY.format(pool=pool, draw_id=draw_id)
        blob_template, blob_value = blob
        with self.redis.pipeline() as pipe:
            try:
                pipe.watch(key, fence_key)
                if int(pipe.get(fence_key) or 0) != fence:
                    raise StaleDrawWorker()
                if (pipe.hget(key, "state") or b"").decode() != expected_state:
                    return  # another run did this step already
                pipe.multi()
                blob_key = blob_template.format(pool=pool, draw_id=draw_id)
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
        key = DRAW_FROZEN_KEY.format(pool=pool, draw_id=draw_id)
        if self.redis.type(key) == b"string":
            return {"document": self.redis.get(key)}
        fields = self.redis.hgetall(key)
        return {name.decode(): value for name, value in fields.items()} or None

    def draw_result(self, pool: str, draw_id: str) -> str | None:
        raw = self.redis.get(DRAW_RESULT_KEY.format(pool=pool, draw_id=draw_id))
        return raw.decode() if raw else None

    def commit_draw(self, pool, draw_id, fence, *, cutoff, deadline, now) -> None:
        """Apply the draw's saved result (see COMMIT_SCRIPT), or raise StaleDrawWorker."""
        keys = [
            DRAW_KEY.format(pool=pool, draw_id=draw_id),
            DRAW_FENCE_KEY.format(pool=pool, draw_id=draw_id),
            OFFERS_KEY.format(pool=pool),
            OUTBOX_KEY.format(pool=pool),
            WAITING_KEY.format(pool=pool),
            SLOT_STATES_KEY.format(pool=pool),
            COMMITTED_DRAWS_KEY.format(pool=pool),
            *self.stats_keys(pool, now, draw_id=draw_id),
            SLOT_HOLDERS_KEY.format(pool=pool),
            DRAW_DEADLINES_KEY.format(pool=pool),
            DRAW_RESULT_KEY.format(pool=pool, draw_id=draw_id),
        ]
        arguments = [
            fence,
            REGISTRATION_KEY.format(pool=pool, id=""),
            _utc_text(now),
            _utc_text(deadline),
            draw_id,
            cutoff.timestamp(),
            deadline.timestamp(),
        ]
        if self._commit(keys=keys, args=arguments).decode() == "stale":
            raise StaleDrawWorker()

    def update_draw_state(self, pool, draw_id, fence, expected_state, changes) -> bool:
        """Change a draw's record if it is in `expected_state` (and `fence` is the latest, unless None)."""
        keys = [DRAW_KEY.format(pool=pool, draw_id=draw_id), DRAW_FENCE_KEY.format(pool=pool, draw_id=draw_id)]
        arguments = ["" if fence is None else fence, expected_state, *[item for pair in changes.items() for item in pair]]
        outcome = self._draw_step(keys=keys, args=arguments).decode()
        if outcome == "stale":
            raise StaleDrawWorker()
        return outcome == "ok"

    def committed_draw_cutoffs(self, pool: str) -> list[float]:
        """The entry cutoffs (epoch) of the pool's committed draws, in order."""
        return [score for _, score in self.redis.zrange(COMMITTED_DRAWS_KEY.format(pool=pool), 0, -1, withscores=True)]

    def committed_draws_between(self, pool: str, after: float, until: float) -> list[str]:
        """Ids of the committed draws whose cutoff is in (after, until]."""
        found = self.redis.zrangebyscore(COMMITTED_DRAWS_KEY.format(pool=pool), f"({after}", until)
        return [draw_id.decode() for draw_id in found]

    def draws_entered(self, registration) -> list[dict[str, str]]:
        """The draws a registration took part in during its wait, oldest first, with their outcome."""
        joined = self.redis.zscore(WAITING_KEY.format(pool=registration.key.pool), registration.key.registration_id)
        offer = self.redis.hget(OFFERS_KEY.format(pool=registration.key.pool), registration.key.registration_id)
        won = json.loads(offer) if offer else {}
        return [
            {"draw_id": draw_id, "outcome": "offered", "slot": won["slot"]}
            if won.get("draw_id") == draw_id
            else {"draw_id": draw_id, "outcome": "not_drawn"}
            for draw_id in self._draws_during_wait(registration, joined)
        ]

    def _status_changed_at(self, key) -> float:
        raw = self.redis.hget(REGISTRATION_KEY.format(pool=key.pool, id=key.registration_id), "status_changed_at")
        return datetime.datetime.fromisoformat(raw.decode()).timestamp()

    def offers(self, pool: str) -> dict[str, dict]:
        """Pending and past offers of the pool, by registration id."""
        return {key.decode(): json.loads(value) for key, value in self.redis.hgetall(OFFERS_KEY.format(pool=pool)).items()}

    def outbox(self, pool: str) -> list[dict]:
        return [json.loads(item) for item in self.redis.lrange(OUTBOX_KEY.format(pool=pool), 0, -1)]

    def draws(self, pool: str, limit: int = 50) -> list[dict[str, str]]:
        """The pool's latest draws, newest first (one round trip for the records)."""
        ids = self.redis.zrevrange(DRAWS_KEY.format(pool=pool), 0, limit - 1)
        with self.redis.pipeline(transaction=False) as pipe:
            for draw_id in ids:
                pipe.hgetall(DRAW_KEY.format(pool=pool, draw_id=draw_id.decode()))
            found = pipe.execute() if ids else []
        return [{name.decode(): value.decode() for name, value in raw.items()} for raw in found if raw]

    # Offers, bookings, standby ----------------------------------------------------

    def offer(self, key) -> dict | None:
        """The registration's latest offer (draw_id, ref, slot, deadline, status, code...), or None."""
        raw = self.redis.hget(OFFERS_KEY.format(pool=key.pool), key.registration_id)
        return json.loads(raw) if raw else None

    def move_offer(self, key, action: str, now: datetime.datetime, *extra, wait_days: int = 0,
                   expires_first: bool = False) -> str:
        """Apply one offer transition (scripts.OFFER_SCRIPT); returns "ok" or why not.

        `wait_days` and `expires_first` are counted when the offer is confirmed (the waits
        histogram, renewals whose permit expires before the appointment).
        """
        prints = self._fingerprints(key)
        offer = self.offer(key)
        if prints is None:
            return "missing"
        if offer is None:
            return "no_offer"
        pool, registration_id = key.pool, key.registration_id
        keys = [
            REGISTRATION_KEY.format(pool=pool, id=registration_id),
            HISTORY_KEY.format(pool=pool, id=registration_id),
            OFFERS_KEY.format(pool=pool),
            OFFER_DEADLINES_KEY.format(pool=pool),
            SLOT_STATES_KEY.format(pool=pool),
            SLOT_HOLDERS_KEY.format(pool=pool),
            BOOKINGS_KEY.format(pool=pool),
            BOOKING_CODES_KEY.format(pool=pool),
            OUTBOX_KEY.format(pool=pool),
            WAITING_KEY.format(pool=pool),
            COMMITTED_DRAWS_KEY.format(pool=pool),
            IDENTITY_KEY.format(pool=pool, fingerprint=prints["identity_fp"]),
            CONTACT_KEY.format(pool=pool, fingerprint=prints["email_fp"] or "none"),
            CONTACT_KEY.format(pool=pool, fingerprint=prints["phone_fp"]),
            CLOSED_KEY.format(pool=pool),
            STANDBY_KEY.format(pool=pool),
            *self.stats_keys(pool, now, draw_id=offer["draw_id"]),
            self.waits_key(pool),
            DRAW_OFFERED_KEY.format(pool=pool, draw_id=offer["draw_id"]),
            DRAW_KEY.format(pool=pool, draw_id=offer["draw_id"]),
        ]
        arguments = [action, registration_id, _utc_text(now), now.timestamp(), self._waiting_since(key),
                     offer["draw_id"], wait_days, "1" if expires_first else "0", *extra]
        return self._offer(keys=keys, args=arguments).decode()

    def _waiting_since(self, key) -> str:
        """When the registration's current wait began (epoch), "" if unknown."""
        since, confirmed = self.redis.hmget(
            REGISTRATION_KEY.format(pool=key.pool, id=key.registration_id), "waiting_since", "email_confirmed_at"
        )
        if since:
            return since.decode()
        return str(datetime.datetime.fromisoformat(confirmed.decode()).timestamp()) if confirmed else ""

    def expired_offers(self, pool: str, now: datetime.datetime) -> list[str]:
        """Registration ids whose pending standby offer's deadline has passed (and offers
        committed before draws kept one deadline for all their offers)."""
        found = self.redis.zrangebyscore(OFFER_DEADLINES_KEY.format(pool=pool), "-inf", f"({now.timestamp()}")
        return [registration_id.decode() for registration_id in found]

    def draws_past_deadline(self, pool: str, now: datetime.datetime) -> list[str]:
        """Draws whose offers' deadline has passed and whose late offers are not all expired yet."""
        found = self.redis.zrangebyscore(DRAW_DEADLINES_KEY.format(pool=pool), "-inf", f"({now.timestamp()}")
        return [draw_id.decode() for draw_id in found]

    def draw_deadline_passed(self, pool: str, draw_id: str) -> None:
        """Every offer of the draw still pending after its deadline has been expired."""
        self.redis.zrem(DRAW_DEADLINES_KEY.format(pool=pool), draw_id)

    def pending_offers_of(self, pool: str, draw_id: str, registration_ids: list[str]) -> list[str]:
        """Those of the registrations whose offer is still the draw's, and pending."""
        if not registration_ids:
            return []
        raw = self.redis.hmget(OFFERS_KEY.format(pool=pool), registration_ids)
        pending = []
        for registration_id, text in zip(registration_ids, raw):
            offer = json.loads(text) if text else {}
            if offer.get("draw_id") == draw_id and offer.get("status") == "pending":
                pending.append(registration_id)
        return pending

    def standby_slots(self, pool: str) -> dict[str, str]:
        """Freed slots awaiting a standby offer: slot id -> the draw whose order they follow."""
        raw = self.redis.hgetall(STANDBY_KEY.format(pool=pool))
        return {slot.decode(): draw_id.decode() for slot, draw_id in raw.items()}

    def offered_refs(self, pool: str, draw_id: str, refs: list[str]) -> list[bool]:
        """For each reference, whether the draw already offered it a slot."""
        if not refs:
            return []
        return [bool(found) for found in self.redis.smismember(DRAW_OFFERED_KEY.format(pool=pool, draw_id=draw_id), refs)]

    def registration_statuses(self, pool: str, registration_ids: list[str]) -> list[str | None]:
        with self.redis.pipeline(transaction=False) as pipe:
            for registration_id in registration_ids:
                pipe.hget(REGISTRATION_KEY.format(pool=pool, id=registration_id), "status")
            return [value.decode() if value else None for value in pipe.execute()]

    def offer_standby(self, key, ref: str, slot_id: str, draw_id: str, deadline: datetime.datetime,
                      now: datetime.datetime) -> str:
        """Offer a freed slot to this entrant of the draw's order: "ok", "slot" or "person" (see the script)."""
        pool = key.pool
        keys = [
            REGISTRATION_KEY.format(pool=pool, id=key.registration_id),
            HISTORY_KEY.format(pool=pool, id=key.registration_id),
            OFFERS_KEY.format(pool=pool),
            OFFER_DEADLINES_KEY.format(pool=pool),
            SLOT_STATES_KEY.format(pool=pool),
            SLOT_HOLDERS_KEY.format(pool=pool),
            OUTBOX_KEY.format(pool=pool),
            WAITING_KEY.format(pool=pool),
            STANDBY_KEY.format(pool=pool),
            DRAW_OFFERED_KEY.format(pool=pool, draw_id=draw_id),
            *self.stats_keys(pool, now, draw_id=draw_id),
        ]
        arguments = [key.registration_id, ref, slot_id, draw_id, _utc_text(now), _utc_text(deadline),
                     deadline.timestamp(), now.timestamp()]
        return self._standby(keys=keys, args=arguments).decode()

    def release_standby_slot(self, pool: str, slot_id: str, draw_id: str, now: datetime.datetime) -> bool:
        """No one left in the draw's order for this slot: it is open for the next draw."""
        keys = [SLOT_STATES_KEY.format(pool=pool), STANDBY_KEY.format(pool=pool),
                *self.stats_keys(pool, now, draw_id=draw_id)]
        return bool(self._release_slot(keys=keys, args=[slot_id, draw_id]))

    def slot(self, pool: str, slot_id: str) -> Slot | None:
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.hget(SLOTS_KEY.format(pool=pool), slot_id)
            pipe.hget(SLOT_STATES_KEY.format(pool=pool), slot_id)
            raw, state = pipe.execute()
        return _slot_from(raw, state) if raw else None

    def slot_holder(self, pool: str, slot_id: str) -> str | None:
        holder = self.redis.hget(SLOT_HOLDERS_KEY.format(pool=pool), slot_id)
        return holder.decode() if holder else None

    def slot_holders(self, pool: str) -> dict[str, str]:
        raw = self.redis.hgetall(SLOT_HOLDERS_KEY.format(pool=pool))
        return {slot.decode(): holder.decode() for slot, holder in raw.items()}

    def bookings_starting(self, pool: str, start: datetime.datetime, end: datetime.datetime) -> list[tuple[str, float]]:
        """Bookings not yet attended or marked, whose slot starts in [start, end]: (registration id, start epoch)."""
        found = self.redis.zrangebyscore(BOOKINGS_KEY.format(pool=pool), start.timestamp(), end.timestamp(),
                                         withscores=True)
        return [(registration_id.decode(), score) for registration_id, score in found]

    def booking_holder(self, pool: str, code: str) -> str | None:
        holder = self.redis.hget(BOOKING_CODES_KEY.format(pool=pool), code)
        return holder.decode() if holder else None

    def queue_reminder(self, pool: str, registration_id: str, hours: list[int], now: datetime.datetime) -> bool:
        """Queue one reminder of the registration's booking for the lead times in `hours` not yet
        reminded; True if queued (False too when it holds no booking any more)."""
        keys = [OFFERS_KEY.format(pool=pool), REMINDERS_KEY.format(pool=pool), OUTBOX_KEY.format(pool=pool)]
        arguments = [registration_id, now.timestamp(), *sorted(hours, reverse=True)]
        return bool(self._reminder(keys=keys, args=arguments))

    # The outbox and deliveries -------------------------------------------------------

    def outbox_head(self, pool: str, count: int) -> list[str]:
        return [item.decode() for item in self.redis.lrange(OUTBOX_KEY.format(pool=pool), 0, count - 1)]

    def drop_outbox_head(self, pool: str, count: int) -> None:
        """Remove the first `count` messages (once they are handed to send jobs)."""
        self.redis.ltrim(OUTBOX_KEY.format(pool=pool), count, -1)

    def lock_outbox(self, pool: str, seconds: int = 120) -> str | None:
        """Take the pool's dispatch lock; a token to release it, or None if another dispatcher holds it."""
        token = uuid.uuid4().hex
        return token if self.redis.set(OUTBOX_LOCK_KEY.format(pool=pool), token, nx=True, ex=seconds) else None

    def unlock_outbox(self, pool: str, token: str) -> None:
        key = OUTBOX_LOCK_KEY.format(pool=pool)
        if self.redis.get(key) == token.encode():
            self.redis.delete(key)

    def outbox_length(self, pool: str) -> int:
        return self.redis.llen(OUTBOX_KEY.format(pool=pool))

    def delivery(self, pool: str, message_id: str, channel: str) -> dict | None:
        raw = self.redis.hget(DELIVERIES_KEY.format(pool=pool), f"{message_id}|{channel}")
        return json.loads(raw) if raw else None

    def record_delivery(self, pool: str, message_id: str, channel: str, record: dict, now: datetime.datetime) -> None:
        """Record a delivery attempt's outcome; a failing one is listed for staff until it succeeds."""
        field = f"{message_id}|{channel}"
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(DELIVERIES_KEY.format(pool=pool), field, json.dumps(record))
            if record["status"] == "sent":
                pipe.zrem(DELIVERY_FAILURES_KEY.format(pool=pool), field)
            else:
                pipe.zadd(DELIVERY_FAILURES_KEY.format(pool=pool), {field: now.timestamp()})
            pipe.execute()

    def delivery_failures(self, pool: str, limit: int = 200) -> list[dict]:
        """Deliveries that failed (newest first): message id, channel and the last attempt's record."""
        fields = self.redis.zrevrange(DELIVERY_FAILURES_KEY.format(pool=pool), 0, limit - 1)
        if not fields:
            return []
        records = self.redis.hmget(DELIVERIES_KEY.format(pool=pool), fields)
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
            pipe.hset(STAFF_ACCOUNT_KEY.format(id=account.id), mapping=_account_fields(account))
            pipe.sadd(STAFF_ACCOUNTS_KEY, account.id)
            pipe.execute()
        return True

    def staff_account(self, account_id: str) -> StaffAccount | None:
        fields = self.redis.hgetall(STAFF_ACCOUNT_KEY.format(id=account_id))
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
        self.redis.hset(STAFF_ACCOUNT_KEY.format(id=account_id), "active", "1" if active else "0")

    def login_failures(self, email: str) -> int:
        return int(self.redis.get(LOGIN_FAILURES_KEY.format(email_digest=digest(email))) or 0)

    def record_login_failure(self, email: str, now: datetime.datetime, window: datetime.timedelta) -> None:
        key = LOGIN_FAILURES_KEY.format(email_digest=digest(email))
        with self.redis.pipeline(transaction=True) as pipe:
            # The window starts at the first failure; INCR keeps the TTL. (Not
            # EXPIRE NX: the embedded Redis is 6.2.)
            pipe.set(key, 0, ex=int(window.total_seconds()), nx=True)
            pipe.incr(key)
            pipe.execute()

    def clear_login_failures(self, email: str) -> None:
        self.redis.delete(LOGIN_FAILURES_KEY.format(email_digest=digest(email)))

    def save_staff_session(self, session_digest, account_id, now, idle: datetime.timedelta) -> None:
        key = STAFF_SESSION_KEY.format(digest=session_digest)
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping={"account_id": account_id, "started_at": _utc_text(now)})
            pipe.expire(key, int(idle.total_seconds()))
            pipe.execute()

    def staff_session(self, session_digest: str) -> tuple[str, datetime.datetime] | None:
        values = self.redis.hmget(STAFF_SESSION_KEY.format(digest=session_digest), "account_id", "started_at")
        if values[0] is None:
            return None
        return values[0].decode(), _utc_from(values[1])

    def touch_staff_session(self, session_digest: str, idle: datetime.timedelta) -> None:
        self.redis.expire(STAFF_SESSION_KEY.format(digest=session_digest), int(idle.total_seconds()))

    def end_staff_session(self, session_digest: str) -> None:
        self.redis.delete(STAFF_SESSION_KEY.format(digest=session_digest))

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
            pipe.hset(API_TOKEN_KEY.format(digest=token_digest), mapping=fields)
            pipe.sadd(ACCOUNT_TOKENS_KEY.format(id=token.account_id), token_digest)
            pipe.execute()

    def api_token(self, token_digest: str) -> ApiToken | None:
        fields = {k.decode(): v.decode() for k, v in self.redis.hgetall(API_TOKEN_KEY.format(digest=token_digest)).items()}
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
        digests = sorted(member.decode() for member in self.redis.smembers(ACCOUNT_TOKENS_KEY.format(id=account_id)))
        found = [(token_digest, self.api_token(token_digest)) for token_digest in digests]
        return [(token_digest, token) for token_digest, token in found if token is not None]

    def revoke_api_token(self, account_id: str, token_id: str) -> bool:
        for token_digest, token in self.api_tokens(account_id):
            if token.id == token_id:
                with self.redis.pipeline(transaction=True) as pipe:
                    pipe.delete(API_TOKEN_KEY.format(digest=token_digest))
                    pipe.srem(ACCOUNT_TOKENS_KEY.format(id=account_id), token_digest)
                    pipe.execute()
                return True
        return False

    def ping(self) -> bool:
        return bool(self.redis.ping())

    # Counters (the contract is at the top of this module) -----------------------------

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
        day = metrics.stats_day(now, self._timezone(PoolId(pool).prefecture))
        keys = [STATS_KEY.format(pool=pool), STATS_DAY_KEY.format(pool=pool, day=day)]
        if draw_id is not None:
            keys.append(STATS_DRAW_KEY.format(pool=pool, draw_id=draw_id))
        return keys

    def waits_key(self, pool: str) -> str:
        """The pool's wait histogram, for `count_wait` in the script that books an offer."""
        return STATS_WAITS_KEY.format(pool=pool)

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
                pipe.hgetall(STATS_KEY.format(pool=pool))
            found = pipe.execute()
        return {pool: metrics.counts(raw) for pool, raw in zip(pools, found)}

    def stats_days(self, pool: str, first: datetime.date, last: datetime.date) -> dict[datetime.date, dict[str, int]]:
        """The pool's counts for each day from `first` to `last` (days without events are zeros)."""
        days = metrics.days_between(first, last)
        with self.redis.pipeline(transaction=False) as pipe:
            for day in days:
                pipe.hgetall(STATS_DAY_KEY.format(pool=pool, day=day.isoformat()))
            found = pipe.execute()
        return {day: metrics.counts(raw) for day, raw in zip(days, found)}

    def stats_draws(self, pool: str, draw_ids: list[str]) -> dict[str, dict[str, int]]:
        """What became of each draw's offers."""
        with self.redis.pipeline(transaction=False) as pipe:
            for draw_id in draw_ids:
                pipe.hgetall(STATS_DRAW_KEY.format(pool=pool, draw_id=draw_id))
            found = pipe.execute()
        return {draw_id: metrics.counts(raw) for draw_id, raw in zip(draw_ids, found)}

    def wait_histogram(self, pool: str) -> dict[int, int]:
        """Whole days from joining to the appointment -> how many bookings."""
        return metrics.histogram(self.redis.hgetall(STATS_WAITS_KEY.format(pool=pool)))

    def pool_gauges(self, pools: list[str]) -> dict[str, dict[str, int]]:
        """How many wait for a draw and for their email's confirmation, per pool (ZCARD: O(1))."""
        with self.redis.pipeline(transaction=False) as pipe:
            for pool in pools:
                pipe.zcard(WAITING_KEY.format(pool=pool))
                pipe.zcard(UNCONFIRMED_KEY.format(pool=pool))
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
        with self.redis.pipeline(transaction=False) as pipe:
            for low, high in zip(bounds, bounds[1:]):
                # Joined in [low, high): cutoffs > joined are those from `high` on.
                pipe.zcount(WAITING_KEY.format(pool=pool), low, f"({high}" if high != "+inf" else high)
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
        last = self.redis.zrange(SLOT_TIMES_KEY.format(pool=pool), -1, -1, withscores=True)
        return datetime.datetime.fromtimestamp(last[0][1], datetime.timezone.utc) if last else None

    def joined_at(self, key) -> float | None:
        """When a waiting registration joined the waiting set (epoch), or None if it is not waiting."""
        return self.redis.zscore(WAITING_KEY.format(pool=key.pool), key.registration_id)

    def open_slot_counts(self, pool: str, ranges: list[tuple[datetime.datetime, datetime.datetime]]) -> list[int]:
        """How many of the pool's slots are open in each [start, end), counted inside Redis."""
        if not ranges:
            return []
        arguments = [value for start, end in ranges for value in (start.timestamp(), end.timestamp())]
        keys = [SLOT_TIMES_KEY.format(pool=pool), SLOT_STATES_KEY.format(pool=pool)]
        return [int(count) for count in self._open_slots(keys=keys, args=arguments)]

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
