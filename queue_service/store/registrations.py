"""Registrations in Redis: create, confirm, change contacts, close, read, and purge.

A registration spans several keys of its pool (its hash, which holds its
history too, its person's place in the people hash, its contacts in the
contacts hash, or the keys of their own written before 2026-11-29, the
reference, the waiting and unconfirmed sets), changed together by the scripts create_registration,
confirm_email, request_email_change, move_contact, close_registration and
purge_registration. A change the applicant is told of pushes its message to
the pool's outbox in the same script (the caller says which message is due).
The field codec of the Registration dataclass and of the history's events live here.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import json
import random
import re
import time

import redis

from queue_service.metrics import CLOSING_EVENTS
from queue_service.pools import PoolId
from queue_service.registration import Applicant, Channel, Fingerprints, Registration, RegistrationStatus
from queue_service.registration.tokens import RegistrationKey
from queue_service.store.choices import decode_half_days, decode_sites, encode_half_days, encode_sites
from queue_service.store.draws import draws_lost_since
from queue_service.store.fields import both_names, first_found, long_name, short_name
from queue_service.store.keys import POOLS_KEY, PoolKeys
from queue_service.store.lua import Scripts, run_replicated
from queue_service.store.outbox import registration_message
from queue_service.store.times import epoch_text, from_epoch_text, moment_from_text, utc_text


# How many times a registration reads the holders of the person's place again when a
# concurrent change made its read stale (create_registration.lua answers "retry"), after
# a pause growing with each try (seconds, at random up to it: concurrent attempts part).
HOLDER_READS = 50
HOLDER_READ_PAUSE = 0.002


class RegistrationStore:
    """Registrations, their contacts and their purge (one part of Store).

    Counts through `stats_keys` (StatisticsStore); a registration's draws entered and lost
    come from its wait (DrawStore).
    """

    redis: redis.Redis  # both set by Store.__init__ (store/__init__.py)
    scripts: Scripts
    replicas_to_wait: int  # likewise: replicas a registration and a commit wait for (lua.run_replicated)

    # Registrations ------------------------------------------------------------

    def create_registration(self, registration, prints, contacts_cap: int, now: datetime.datetime,
                            message=None) -> str:
        """"ok", "duplicate", "contact_cap" or "ref_taken", all or nothing: the registration
        and its `message` (a RegistrationMessage, or None) in the outbox.

        The same person is looked up under `prints.identity` and every key of
        `prints.identity_lookups` (their names in another order). Their registration
        still unconfirmed (`pending_email`) does not hold the place: it is replaced in
        the same step (create_registration.lua); any other is a "duplicate".

        One round trip for a person new to the pool, the common case: the script is first
        run as if nobody held the place, and answers "retry" if somebody does; only then are
        the holders read (`_holders`) and passed to it.
        """
        lookups = [prints.identity, *(fp for fp in prints.identity_lookups if fp != prints.identity)]
        # The pool is listed first (idempotent) so that the dispatcher finds the pool of every
        # message written: in the same round trip, or in one of its own on Redis Cluster (another slot).
        pool = registration.key.pool
        first = (("SADD", POOLS_KEY, pool),)
        if self.cluster:
            self.redis.sadd(POOLS_KEY, pool)
            first = ()
        outcome = self._create_registration(registration, prints, contacts_cap, now, message, lookups, [], first)
        for attempt in range(HOLDER_READS):
            if outcome != "retry":
                return outcome
            if attempt:
                time.sleep(random.uniform(0, HOLDER_READ_PAUSE * attempt))
            holders = self._holders(PoolKeys(pool), lookups)
            outcome = self._create_registration(registration, prints, contacts_cap, now, message, lookups, holders)
        raise redis.ConnectionError("the person's registrations kept changing: try again")  # a 503

    def _holders(self, pool_keys: PoolKeys, lookups: list[str]) -> list[tuple[str, str, str]]:
        """The registrations holding the place of the person under one of the fingerprints
        `lookups`, in the order the script finds them (scripts/person.lua: the people hash,
        else the key written before 2026-11-29), each with its email and phone prints (read
        now: the script checks they still are). One round trip for the places: the fewer,
        the less often a concurrent attempt makes the read stale."""
        fields = [_person_field(fingerprint) for fingerprint in lookups]
        former_keys = [pool_keys.identity(fingerprint) for fingerprint in lookups]
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.hmget(pool_keys.people, fields)
            for former_key in former_keys:  # GETs, not MGET: Redis Cluster's client pipelines no MGET
                pipe.get(former_key)
            replies = pipe.execute()
        in_hash, former = replies[0], replies[1:]
        holders: list[str] = []
        for now, before in zip(in_hash, former):
            holder = _id_text(now) if now is not None else _id_text(before)
            if holder is not None and holder not in holders:
                holders.append(holder)
        with self.redis.pipeline(transaction=False) as pipe:
            for holder in holders:
                pipe.hmget(pool_keys.registration(holder), both_names(["email_fp", "phone_fp"]))
            found = [first_found(values, 2) for values in pipe.execute()] if holders else []
        return [(holder, _print_text(email), _print_text(phone)) for holder, (email, phone) in zip(holders, found)]

    def _create_registration(self, registration, prints, contacts_cap, now, message, lookups, holders,
                             first: tuple = ()) -> str:
        key = registration.key
        pool_keys = PoolKeys(key.pool)
        lookup_keys = [pool_keys.identity(fp) for fp in lookups]  # as written before 2026-11-29
        holder_keys = [held for holder, email, phone in holders
                       for held in (pool_keys.registration(holder), pool_keys.history(holder),
                                    pool_keys.contact(email or None), pool_keys.contact(phone or None))]
        fields = _registration_fields(registration, prints)
        event = _event_text(now, _REGISTERED)  # its detail, the channel, is the hash's (`_history_from`)
        keys = [
            pool_keys.registration(key.registration_id),
            pool_keys.history(key.registration_id),
            pool_keys.identity(prints.identity),
            pool_keys.contact(prints.email),
            pool_keys.contact(prints.phone),
            pool_keys.refs,
            pool_keys.unconfirmed,
            pool_keys.waiting,
            *self.stats_keys(key.pool, now),
            pool_keys.outbox,
            *lookup_keys[1:],
            *holder_keys,
            pool_keys.contacts,
            pool_keys.people,
        ]
        arguments = [
            key.registration_id,
            registration.ref,
            contacts_cap,
            registration.status.value,
            now.timestamp(),
            registration.confirm_by.timestamp(),
            event,
            prints.email or "",
            prints.phone or "",
            registration.channel.value,
            _message_json(message, key.registration_id, now),
            len(lookup_keys) - 1,
            json.dumps([list(holder) for holder in holders]),
            json.dumps(lookups),
            *[item for pair in fields.items() for item in pair],
        ]
        return run_replicated(self.redis, self.scripts.create_registration, self.replicas_to_wait, keys,
                              arguments, first).decode()

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
                since = epoch_text(joined)
                fields = _registration_fields(registration, fingerprints) | {short_name("waiting_since"): since}
                pipe.hset(pool_keys.registration(key.registration_id), mapping=fields)
                pipe.hset(pool_keys.people, _person_field(fingerprints.identity), _id_value(key.registration_id))
                pipe.hset(pool_keys.refs, registration.ref, _id_value(key.registration_id))
                pipe.zadd(pool_keys.waiting, {key.registration_id: joined.timestamp()})
                if number % 10_000 == 0:
                    pipe.execute()
            pipe.execute()
        pools = {registration.key.pool for registration in registrations}
        if pools:
            self.redis.sadd(POOLS_KEY, *pools)

    def registration(self, key):
        return self.registrations([key])[0]

    def registrations(self, keys: list) -> list:
        """The registrations of `keys`, None for one that is gone, read in one pipelined round
        trip (a send job's batch of messages reads its registrations so)."""
        with self.redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pool_keys = PoolKeys(key.pool)
                pipe.hgetall(pool_keys.registration(key.registration_id))
                pipe.zscore(pool_keys.waiting, key.registration_id)
            replies = pipe.execute()
        committed_cutoffs = {}  # per pool, read once
        found = []
        for key, raw, joined in zip(keys, replies[0::2], replies[1::2]):
            if not raw:
                found.append(None)
                continue
            registration = _registration_from(key, _decoded(raw))
            if joined is not None:
                # Waiting: every draw committed since it joined is entered, and lost.
                if key.pool not in committed_cutoffs:
                    committed_cutoffs[key.pool] = self.committed_draw_cutoffs(key.pool)
                entered = lost = draws_lost_since(committed_cutoffs[key.pool], joined)
            else:
                # Its last wait is over: the draw that ended it with an offer is entered, not lost.
                during = self._draws_during_wait(registration, None)
                entered = len(during)
                lost = entered - (1 if self._offered_by(registration.key) in during else 0)
            found.append(dataclasses.replace(registration, draws_entered=registration.draws_entered + entered,
                                             draws_lost=registration.draws_lost + lost))
        return found

    def registration_key_by_ref(self, pool: str, ref: str):
        registration_id = _id_text(self.redis.hget(PoolKeys(pool).refs, ref))
        if registration_id is None:
            return None
        prefecture, procedure = PoolId(pool).parts
        return RegistrationKey(prefecture, procedure, registration_id)

    def history(self, key) -> list[dict]:
        """The registration's events, oldest first: those of the list a registration written
        before 2026-11-29 may still have (scripts/history.lua), then those of its hash."""
        pool_keys = PoolKeys(key.pool)
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.lrange(pool_keys.history(key.registration_id), 0, -1)
            pipe.hgetall(pool_keys.registration(key.registration_id))
            former, fields = pipe.execute()
        return [json.loads(item) for item in former] + _history_from(fields)

    def waiting_count(self, pool: str) -> int:
        return self.redis.zcard(PoolKeys(pool).waiting)

    def joined_at(self, key) -> float | None:
        """When a waiting registration joined the waiting set (epoch), or None if it is not waiting."""
        return self.redis.zscore(PoolKeys(key.pool).waiting, key.registration_id)

    def registration_statuses(self, pool: str, registration_ids: list[str]) -> list[str | None]:
        with self.redis.pipeline(transaction=False) as pipe:
            for registration_id in registration_ids:
                pipe.hmget(PoolKeys(pool).registration(registration_id), both_names(["status"]))
            return [value.decode() if value else None for value, in (first_found(values, 1) for values in pipe.execute())]

    def confirm_email(self, key, now: datetime.datetime, message=None) -> bool:
        """A pending registration joins the waiting set, with its `message` in the outbox;
        False (and nothing written) if it was not pending."""
        pool_keys = PoolKeys(key.pool)
        keys = [
            pool_keys.registration(key.registration_id),
            pool_keys.history(key.registration_id),
            pool_keys.unconfirmed,
            pool_keys.waiting,
            *self.stats_keys(key.pool, now),
            pool_keys.outbox,
        ]
        arguments = [
            key.registration_id,
            epoch_text(now),
            epoch_text(now),
            _event_text(now, "email_confirmed"),
            _message_json(message, key.registration_id, now),
        ]
        return bool(run_replicated(self.redis, self.scripts.confirm_email, self.replicas_to_wait, keys, arguments))

    def close_registration(self, key, status, allowed_from, now: datetime.datetime, message=None) -> bool:
        """Move the registration to a closed `status` if it is in one of `allowed_from`, with
        its `message` in the outbox; its person and contacts are released so they may register again."""
        for _ in range(3):
            prints = self._fingerprints(key)
            if prints is None:
                return False
            keys = [*self._lifecycle_keys(key.pool, key.registration_id, prints), *self.stats_keys(key.pool, now),
                    PoolKeys(key.pool).outbox, PoolKeys(key.pool).waits_ended, PoolKeys(key.pool).people,
                    PoolKeys(key.pool).contacts]
            arguments = [
                key.registration_id,
                status.value,
                utc_text(now),
                now.timestamp(),
                _event_text(now, status.value),
                prints["email_fp"],
                prints["phone_fp"],
                CLOSING_EVENTS.get(status.value, ""),
                _message_json(message, key.registration_id, now),
                *[allowed.value for allowed in allowed_from],
            ]
            outcome = self.scripts.close_registration(keys=keys, args=arguments)
            if outcome != -1:  # -1: contacts changed meanwhile; read them again
                return bool(outcome)
        return False

    def registrations_with_contact(self, prints: dict[str, str]) -> list[tuple[RegistrationKey, RegistrationStatus]]:
        """The active registrations using a contact, given its fingerprint in each pool, with their
        status (in one round trip for the contacts, one for the statuses)."""
        pools = list(prints)
        found = self._contact_ids([(pool, prints[pool]) for pool in pools])
        keys = [RegistrationKey(*PoolId(pool).parts, registration_id)
                for pool, ids in zip(pools, found) for registration_id in ids]
        with self.redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.hmget(PoolKeys(key.pool).registration(key.registration_id), both_names(["status"]))
            statuses = [first_found(values, 1)[0] for values in pipe.execute()]
        return [(key, RegistrationStatus(status.decode())) for key, status in zip(keys, statuses) if status]

    def contact_holders(self, pool: str, fingerprint: str) -> list[str]:
        """The ids of the registrations of `pool` using the contact `fingerprint` stands for, sorted."""
        return self._contact_ids([(pool, fingerprint)])[0]

    def _contact_ids(self, contacts: list[tuple[str, str]]) -> list[list[str]]:
        """For each (pool, fingerprint), the ids using that contact, sorted: its field of the pool's
        contacts hash, and the key written before 2026-11-29 (a set, or a hash) if a script has not
        moved it yet (scripts/contacts.lua)."""
        with self.redis.pipeline(transaction=False) as pipe:
            for pool, fingerprint in contacts:
                pool_keys = PoolKeys(pool)
                pipe.hget(pool_keys.contacts, _person_field(fingerprint))
                # One of the two reads of the former key answers WRONGTYPE, the other its members.
                pipe.hkeys(pool_keys.contact(fingerprint))
                pipe.smembers(pool_keys.contact(fingerprint))
            replies = pipe.execute(raise_on_error=False)
        found = []
        for field, as_hash, as_set in zip(replies[::3], replies[1::3], replies[2::3]):
            ids = set(field.decode().split(",")) if field else set()
            ids |= {member.decode() for member in (as_set if isinstance(as_hash, Exception) else as_hash)}
            found.append(sorted(ids))
        return found

    def resend_link(self, key, email_print: str, message, now: datetime.datetime) -> bool:
        """Write `message` (a link) to the outbox if the registration still uses the address
        `email_print` stands for; False (nothing written) otherwise."""
        pool_keys = PoolKeys(key.pool)
        keys = [pool_keys.registration(key.registration_id), pool_keys.outbox]
        arguments = [email_print, _message_json(message, key.registration_id, now)]
        return bool(self.scripts.resend_link(keys=keys, args=arguments))

    def change_language(self, key, language: str) -> bool:
        """The language of the registration's pages and messages; False if it no longer exists."""
        registration_key = PoolKeys(key.pool).registration(key.registration_id)
        return bool(self.scripts.change_language(keys=[registration_key], args=[language]))

    # Contacts -----------------------------------------------------------------

    def update_preferences(self, key, phone, phone_print, sites, half_days, contacts_cap, now) -> str:
        changes = {short_name("phone"): phone or "", short_name("sites"): encode_sites(sites),
                   short_name("half_days"): encode_half_days(half_days)}
        return self._change_contact(key, "phone", phone_print, changes, contacts_cap, now, "preferences_changed")

    def change_email(self, key, email, email_print, contacts_cap, now, message=None) -> str:
        """The confirmed new address replaces the old one; the status link's version grows (older
        links stop working) and `message` (the new link, to the new address) goes to the outbox."""
        changes = {short_name("email"): email, short_name("pending_email"): ""}
        return self._change_contact(key, "email", email_print, changes, contacts_cap, now, "email_changed",
                                    message=message)

    def request_email_change(self, key, email: str, email_print: str, allowed_from, now: datetime.datetime,
                             message) -> bool:
        """Record `email` as the address waiting for confirmation if the registration is in one
        of `allowed_from`, with `message` (naming the address by `email_print`) in the outbox;
        False (and nothing written) otherwise."""
        pool_keys = PoolKeys(key.pool)
        keys = [pool_keys.registration(key.registration_id), pool_keys.outbox]
        arguments = [
            email,
            _message_json(message, key.registration_id, now, address_print=email_print),
            *[allowed.value for allowed in allowed_from],
        ]
        return bool(self.scripts.request_email_change(keys=keys, args=arguments))

    def _change_contact(self, key, kind, new_print, changes, contacts_cap, now, event_kind, message=None) -> str:
        pool_keys = PoolKeys(key.pool)
        for _ in range(3):
            prints = self._fingerprints(key)
            if prints is None:
                return "missing"
            old_print = prints[f"{kind}_fp"]
            keys = [
                pool_keys.registration(key.registration_id),
                pool_keys.history(key.registration_id),
                pool_keys.contact(old_print),
                pool_keys.contact(new_print),
                pool_keys.outbox,
                pool_keys.contacts,
            ]
            arguments = [
                key.registration_id,
                short_name(f"{kind}_fp"),
                old_print,
                new_print or "",
                contacts_cap,
                _event_text(now, event_kind),
                "1" if kind == "email" else "0",
                _message_json(message, key.registration_id, now),
                *[item for pair in changes.items() for item in pair],
            ]
            outcome = self.scripts.move_contact(keys=keys, args=arguments).decode()
            if outcome != "retry":
                return outcome
        return "retry"

    # Person keys (`qs migrate-identity`) -----------------------------------------

    def registration_identities(self, pool: str) -> list[dict[str, str]]:
        """Every registration of the pool (all hold a public reference until purged), with
        what its person key is made of: id, ref, created_at, identity_fp and the identity
        fields (family_name, given_names, birth_date, nationality, agdref)."""
        ids = sorted({_id_text(registration_id) for _, registration_id in self.redis.hscan_iter(PoolKeys(pool).refs)})
        pool_keys = PoolKeys(pool)
        with self.redis.pipeline(transaction=False) as pipe:
            for registration_id in ids:
                pipe.hgetall(pool_keys.registration(registration_id))
            rows = pipe.execute()
        found = []
        for registration_id, raw in zip(ids, rows):
            fields = _decoded(raw)
            if "identity_fp" not in fields:
                continue  # gone
            person = _unpack(fields)
            found.append({"id": registration_id, "identity_fp": fields["identity_fp"], "ref": fields.get("ref", ""),
                          **{name: person.get(name, "") for name in _IDENTITY_FIELDS}})
        return found

    def person_holder(self, pool: str, fingerprint: str) -> str | None:
        """The id of the registration holding the place of the person `fingerprint` stands for
        (the people hash, else a key written before 2026-11-29: scripts/person.lua), or None."""
        pool_keys = PoolKeys(pool)
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.hget(pool_keys.people, _person_field(fingerprint))
            pipe.get(pool_keys.identity(fingerprint))
            in_hash, former = pipe.execute()
        return _id_text(in_hash) if in_hash is not None else _id_text(former)

    def move_identity(self, pool: str, registration_id: str, read_print: str, new_print: str) -> str:
        """Put the registration's person key under `new_print` (scripts/move_identity.lua says
        what each answer means): "current", "gone", "changed", "taken <holder's id>", "moved"
        or "renamed"."""
        pool_keys = PoolKeys(pool)
        keys = [pool_keys.registration(registration_id), pool_keys.identity(read_print), pool_keys.identity(new_print),
                pool_keys.people]
        return self.scripts.move_identity(keys=keys, args=[registration_id, read_print, new_print]).decode()

    def _fingerprints(self, key) -> dict[str, str] | None:
        names = ("identity_fp", "email_fp", "phone_fp", "ref")
        values = first_found(self.redis.hmget(PoolKeys(key.pool).registration(key.registration_id), both_names(names)),
                             len(names))
        if values[0] is None:
            return None
        return {name: _print_text(value) if name in _PRINT_FIELDS else (value or b"").decode()
                for name, value in zip(names, values)}

    def _lifecycle_keys(self, pool: str, registration_id: str, prints: dict[str, str]) -> list[str]:
        pool_keys = PoolKeys(pool)
        return [
            pool_keys.registration(registration_id),
            pool_keys.history(registration_id),
            pool_keys.identity(prints["identity_fp"]),
            pool_keys.contact(prints["email_fp"]),
            pool_keys.contact(prints["phone_fp"]),
            pool_keys.refs,
            pool_keys.unconfirmed,
            pool_keys.waiting,
            pool_keys.closed,
        ]

    # Purges -------------------------------------------------------------------

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
                pool_keys.offers, pool_keys.people, pool_keys.contacts]
        arguments = [registration_id, prints["ref"], which, deadline.timestamp()]
        return int(self.scripts.purge_registration(keys=keys, args=arguments))


# Serialisation: Registration <-> hash fields ----------------------------------

# The registration hash's encoding. Redis keeps a small hash as one compact listpack
# (a few bytes per field) as long as every value fits in 64 bytes and it has at most 128
# fields (hash-max-listpack-value, hash-max-listpack-entries: the defaults, which managed
# Redis may not let one change); one value longer and the whole hash becomes a hash
# table, about 2.4 times the size (bench/memory.py). So the hash holds, each field under
# the short name of store/fields.py (the code says the long names given here; `_decoded`
# and `_registration_fields` translate):
# - by name, each field a script reads or changes (status, status_changed_at, ref, channel,
#   the fingerprints, waiting_since, waiting_entered_at, draws_lost, draws_entered,
#   permit_expiry, sites, half_days, language, email, phone, email_confirmed_at,
#   pending_email, link_version); a field that would be empty or zero is left out where
#   every reader takes its absence so (draws_*, waiting_*, email_confirmed_at, pending_email);
# - the fingerprints (identity_fp, email_fp, phone_fp) as their 32 bytes (`_print_value`;
#   scripts/prints.lua for the scripts), not their 64 hexadecimal characters;
# - the history: `h` (how many events) and `h1`, `h2`... one event each, cut into parts of
#   64 bytes (`h1.2`...) when longer (scripts/history.lua writes them, `_history_from` reads;
#   a registration of over a hundred events would become a hash table: larger, still right);
# - "person" (then "person2", "person3"... each at most 64 bytes): what never changes
#   and only Python reads, packed (_PACKED, joined by U+001F): the names, birth date,
#   nationality, AGDREF number, created_at and confirm_by (epoch seconds) and the agent;
# - sites joined by commas, half-days as the digits of their positions in HALF_DAYS.
# Not stored: id, prefecture and procedure (the key says them).
# Hashes written before (every field by name, sites and half-days as JSON, times in ISO)
# are read as they are: `_registration_from` and the draw's freeze read both; nothing
# needs migrating. Likewise fingerprints in hexadecimal and a history in a list key of its
# own (before 2026-11-29): read as they are, and the history moved into the hash by the
# first event added. `waiting_entered_at` is written only when it differs from
# `waiting_since` (a wait begun again after an offer).
# What registration_identities gives of each registration's person (with id, ref, identity_fp).
_IDENTITY_FIELDS = ("created_at", "family_name", "given_names", "birth_date", "nationality", "agdref")
_PACKED = ("family_name", "given_names", "birth_date", "nationality", "agdref", "created_at", "confirm_by", "agent")
_PACK_SEPARATOR = "\x1f"
_PERSON_FIELD = "person"
# Kept as their 32 bytes, not their 64 hexadecimal characters (-96 bytes a registration):
# read by `_print_text`, written by `_print_value`, and in the scripts by prints.lua.
_PRINT_FIELDS = ("identity_fp", "email_fp", "phone_fp")
_HEX_DIGITS = "0123456789abcdef"
# The history's fields (scripts/history.lua): event n in h<n>, then h<n>.2, h<n>.3... (`h` counts them).
_EVENT_FIELD = re.compile(rb"h([0-9]+)(?:\.([0-9]+))?")
_LISTPACK_VALUE = 64  # bytes: Redis's default hash-max-listpack-value
_REGISTERED = "registered"  # the first event of a history: its detail is the registration's channel


def _registration_fields(registration: Registration, prints: Fingerprints) -> dict[str, str | bytes]:
    applicant = registration.applicant
    waiting = registration.status.value == "waiting"
    fields = {
        "ref": registration.ref,
        "status": registration.status.value,
        "channel": registration.channel.value,
        "status_changed_at": epoch_text(registration.created_at),
        "email": applicant.email or "",
        "phone": applicant.phone or "",
        "permit_expiry": applicant.permit_expiry.isoformat() if applicant.permit_expiry else "",
        "sites": encode_sites(applicant.sites),
        "half_days": encode_half_days(applicant.half_days),
        "language": applicant.language,
        # Scripts read these three even when empty (a contact never given is "").
        "identity_fp": _print_value(prints.identity),
        "email_fp": _print_value(prints.email or ""),
        "phone_fp": _print_value(prints.phone or ""),
    }
    if waiting:
        # When the current wait began (epoch): draws lost are counted from there. When it
        # really began (waiting_entered_at) is the same for a first wait: left out, read so
        # (store/scripts/waits.lua, Store.draw_candidates).
        fields["waiting_since"] = epoch_text(registration.created_at)
    if registration.email_confirmed_at:
        fields["email_confirmed_at"] = epoch_text(registration.email_confirmed_at)
    if registration.draws_entered:
        fields["draws_entered"] = str(registration.draws_entered)
    if registration.draws_lost:
        fields["draws_lost"] = str(registration.draws_lost)
    person = {
        "family_name": applicant.family_name,
        "given_names": applicant.given_names,
        "birth_date": applicant.birth_date.isoformat(),
        "nationality": applicant.nationality,
        "agdref": applicant.agdref or "",
        "created_at": epoch_text(registration.created_at),
        "confirm_by": epoch_text(registration.confirm_by),
        "agent": registration.agent or "",
    }
    return {short_name(name): value for name, value in (fields | _pack(person)).items()}


def _print_value(text: str) -> str | bytes:
    """A fingerprint as the registration's hash keeps it: the 32 bytes its 64 hexadecimal
    characters spell (the service's fingerprints are HMAC-SHA256), or any other text as it is."""
    if len(text) == 64 and not text.strip(_HEX_DIGITS):
        return bytes.fromhex(text)
    if len(text) == 32:  # would read back as 32 bytes
        raise ValueError("a fingerprint of 32 characters")
    return text


def _person_field(fingerprint: str) -> str | bytes:
    """The field of the pool's people hash for the person `fingerprint` stands for, or of its
    contacts hash for a contact: the first 16 bytes of its 32 (scripts/person.lua says why),
    or any other text as it is."""
    value = _print_value(fingerprint)
    return value[:16] if isinstance(value, bytes) else value


_ID_CHARACTERS = re.compile(r"[A-Za-z0-9_-]{16}")


def _id_value(registration_id: str) -> str | bytes:
    """An id as the people and references hashes keep it: the 12 bytes its 16 URL-safe base64 characters spell
    (registration.new_registration_id), or any other id as it is (scripts/ids.lua)."""
    if _ID_CHARACTERS.fullmatch(registration_id):
        return base64.urlsafe_b64decode(registration_id)
    if len(registration_id.encode()) == 12:  # would read back as 12 bytes
        raise ValueError("a registration id of 12 bytes")
    return registration_id


def _id_text(stored: bytes | None) -> str | None:
    """The id a value of the people or references hash stands for (None for none)."""
    if stored is None:
        return None
    return base64.urlsafe_b64encode(stored).decode() if len(stored) == 12 else stored.decode()


def _print_text(stored: bytes | None) -> str:
    """The text of a fingerprint read from a registration's hash: its 32 bytes in hexadecimal,
    or the 64 hexadecimal characters a hash written before 2026-11-29 holds ("" for none)."""
    if not stored:
        return ""
    return stored.hex() if len(stored) == 32 else stored.decode()


def _decoded(raw: dict[bytes, bytes]) -> dict[str, str]:
    """A registration's hash as read (HGETALL), as text: the fingerprints in hexadecimal, and
    without its history (`_history_from` reads that: a part may end inside a character)."""
    fields = {long_name(name.decode()): value for name, value in raw.items() if not _EVENT_FIELD.fullmatch(name)}
    return {name: _print_text(value) if name in _PRINT_FIELDS else value.decode() for name, value in fields.items()}


def _pack(values: dict[str, str]) -> dict[str, str]:
    """The fields "person", "person2"... holding `values` (in _PACKED's order), each at most 64 bytes."""
    if any(_PACK_SEPARATOR in value for value in values.values()):
        raise ValueError("a registration's field holds U+001F")
    # Empty values at the end (the agent, mostly) are left out: `_unpack` reads them as "".
    text = _PACK_SEPARATOR.join(values[name] for name in _PACKED).rstrip(_PACK_SEPARATOR)
    chunks = _cut(text, _LISTPACK_VALUE)
    return {_PERSON_FIELD + (str(number) if number > 1 else ""): chunk for number, chunk in enumerate(chunks, start=1)}


def _cut(text: str, size: int) -> list[str]:
    """`text` in parts of at most `size` bytes of UTF-8, none cut inside a character."""
    if text.isascii():  # a byte a character (most registrations): no need to weigh each one
        return [text[start:start + size] for start in range(0, len(text), size)] or [""]
    chunks, current, used = [], [], 0
    for character in text:
        width = len(character.encode())
        if used + width > size:
            chunks.append("".join(current))
            current, used = [], 0
        current.append(character)
        used += width
    chunks.append("".join(current))
    return chunks


def _unpack(fields: dict[str, str]) -> dict[str, str]:
    """The packed values of a registration's fields (see `_pack`), or the fields themselves
    for a hash written before they were packed."""
    if _PERSON_FIELD not in fields:
        return fields
    chunks, number = [fields[_PERSON_FIELD]], 2
    while f"{_PERSON_FIELD}{number}" in fields:
        chunks.append(fields[f"{_PERSON_FIELD}{number}"])
        number += 1
    values = dict(zip(_PACKED, "".join(chunks).split(_PACK_SEPARATOR)))
    for name in ("created_at", "confirm_by"):
        values[name] = from_epoch_text(values[name]).isoformat() if values.get(name) else ""
    return values


def _registration_from(key: RegistrationKey, fields: dict[str, str]) -> Registration:
    person = _unpack(fields)

    def moment(name: str, source=fields) -> datetime.datetime | None:
        return moment_from_text(source[name]) if source.get(name) else None

    def day(name: str, source=fields) -> datetime.date | None:
        return datetime.date.fromisoformat(source[name]) if source.get(name) else None

    applicant = Applicant(
        family_name=person["family_name"],
        given_names=person["given_names"],
        birth_date=day("birth_date", person),
        nationality=person["nationality"],
        email=fields.get("email") or None,
        phone=fields.get("phone") or None,
        agdref=person.get("agdref") or None,
        permit_expiry=day("permit_expiry"),
        sites=decode_sites(fields["sites"]),
        half_days=decode_half_days(fields["half_days"]),
        language=fields["language"],
    )
    return Registration(
        key=key,
        ref=fields["ref"],
        status=RegistrationStatus(fields["status"]),
        channel=Channel(fields["channel"]),
        agent=person.get("agent") or None,
        created_at=moment("created_at", person),
        confirm_by=moment("confirm_by", person),
        applicant=applicant,
        draws_entered=int(fields.get("draws_entered") or 0),
        draws_lost=int(fields.get("draws_lost") or 0),
        email_confirmed_at=moment("email_confirmed_at"),
        pending_email=fields.get("pending_email") or None,
        link_version=int(fields.get("link_version") or 0),  # written on the first email change
    )


def _message_json(message, registration_id: str, now: datetime.datetime, address_print: str | None = None) -> str:
    """The outbox message a script pushes, or "" (the script pushes none) when `message` is None."""
    return registration_message(message.value, registration_id, now, address_print) if message else ""


def _event_text(moment: datetime.datetime, kind: str, detail: dict | None = None) -> str:
    """A history event as scripts/history.lua stores it: "<at> <kind>[ <detail as JSON>]", the
    moment in epoch seconds (the events the scripts make have it in ISO)."""
    text = f"{epoch_text(moment)} {kind}"
    return f"{text} {json.dumps(detail, separators=(',', ':'))}" if detail else text


def _history_from(fields: dict[bytes, bytes]) -> list[dict]:
    """The events a registration's hash holds (scripts/history.lua), in order, as the former
    list held them: {"at": ISO text, "kind": ..., "detail": {...}}. The "registered" event is
    stored without its detail since 2026-11-29 (its channel is the hash's: 21 bytes, which
    kept most registrations of the web form out of the allocator's 448-byte class)."""
    parts: dict[int, list[tuple[int, bytes]]] = {}
    for name, value in fields.items():
        found = _EVENT_FIELD.fullmatch(name)
        if found:
            parts.setdefault(int(found[1]), []).append((int(found[2] or 1), value))
    events = []
    for number in sorted(parts):
        at, kind, *detail = b"".join(value for _, value in sorted(parts[number])).decode().split(" ", 2)
        at = at if "T" in at else utc_text(from_epoch_text(at))  # the scripts' own events are in ISO
        if kind == _REGISTERED and not detail:
            channel = fields.get(short_name("channel").encode()) or fields.get(b"channel")
            detail = [json.dumps({"channel": channel.decode()})] if channel else []
        events.append({"at": at, "kind": kind, "detail": json.loads(detail[0]) if detail else {}})
    return events
