"""Registrations in Redis: create, confirm, change contacts, close, read, and purge.

A registration spans several keys of its pool (its hash and history, the
person's identity key, its contact sets, the reference, the waiting and
unconfirmed sets), changed together by the scripts create_registration,
confirm_email, request_email_change, move_contact, close_registration and
purge_registration. A change the applicant is told of pushes its message to
the pool's outbox in the same script (the caller says which message is due).
The field codec of the Registration dataclass and the history's event JSON live here.
"""

from __future__ import annotations

import dataclasses
import datetime
import json

import redis

from queue_service.metrics import CLOSING_EVENTS
from queue_service.pools import PoolId
from queue_service.registration import Applicant, Channel, Fingerprints, Registration, RegistrationStatus
from queue_service.registration.tokens import RegistrationKey
from queue_service.store.draws import draws_lost_since
from queue_service.store.keys import POOLS_KEY, PoolKeys
from queue_service.store.lua import Scripts
from queue_service.store.outbox import registration_message
from queue_service.store.times import utc_text


class RegistrationStore:
    """Registrations, their contacts and their purge (one part of Store).

    Counts through `stats_keys` (StatisticsStore); a registration's draws entered and lost
    come from its wait (DrawStore).
    """

    redis: redis.Redis  # both set by Store.__init__ (store/__init__.py)
    scripts: Scripts

    # Registrations ------------------------------------------------------------

    def create_registration(self, registration, prints, contacts_cap: int, now: datetime.datetime,
                            message=None) -> str:
        """"ok", "duplicate", "contact_cap" or "ref_taken", all or nothing: the registration
        and its `message` (a RegistrationMessage, or None) in the outbox.

        The same person is looked up under `prints.identity` and every key of
        `prints.identity_lookups` (their names in another order). Their registration
        still unconfirmed (`pending_email`) does not hold the place: it is replaced in
        the same step (create_registration.lua); any other is a "duplicate".
        """
        key = registration.key
        pool_keys = PoolKeys(key.pool)
        lookups = [prints.identity, *(fp for fp in prints.identity_lookups if fp != prints.identity)]
        lookup_keys = [pool_keys.identity(fp) for fp in lookups]
        fields = _registration_fields(registration, prints)
        event = _event_json(now, "registered", {"channel": registration.channel.value})
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
            "1" if prints.phone else "0",
            registration.channel.value,
            _message_json(message, key.registration_id, now),
            pool_keys.registration_prefix,
            pool_keys.contact_prefix,
            *[item for pair in fields.items() for item in pair],
        ]
        # The pool listed first (idempotent), so that the dispatcher finds the pool of every message
        # written; in the same round trip as the script. A Redis that lost its scripts (a restart)
        # answers NOSCRIPT without running it: the script object then sends its text.
        script = self.scripts.create_registration
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.sadd(POOLS_KEY, key.pool)
            pipe.evalsha(script.sha, len(keys), *keys, *arguments)
            listed, outcome = pipe.execute(raise_on_error=False)
        if isinstance(listed, Exception):
            raise listed
        if isinstance(outcome, redis.exceptions.NoScriptError):
            outcome = script(keys=keys, args=arguments)
        elif isinstance(outcome, Exception):
            raise outcome
        return outcome.decode()

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
                since = str(joined.timestamp())
                fields = _registration_fields(registration, fingerprints) | {"waiting_since": since,
                                                                              "waiting_entered_at": since}
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
        if joined is not None:
            # Waiting: every draw committed since it joined is entered, and lost.
            entered = lost = draws_lost_since(self.committed_draw_cutoffs(key.pool), joined)
        else:
            # Its last wait is over: the draw that ended it with an offer is entered, not lost.
            during = self._draws_during_wait(found, None)
            entered = len(during)
            lost = entered - (1 if self._offered_by(found.key) in during else 0)
        return dataclasses.replace(found, draws_entered=found.draws_entered + entered, draws_lost=found.draws_lost + lost)

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

    def joined_at(self, key) -> float | None:
        """When a waiting registration joined the waiting set (epoch), or None if it is not waiting."""
        return self.redis.zscore(PoolKeys(key.pool).waiting, key.registration_id)

    def registration_statuses(self, pool: str, registration_ids: list[str]) -> list[str | None]:
        with self.redis.pipeline(transaction=False) as pipe:
            for registration_id in registration_ids:
                pipe.hget(PoolKeys(pool).registration(registration_id), "status")
            return [value.decode() if value else None for value in pipe.execute()]

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
            utc_text(now),
            now.timestamp(),
            _event_json(now, "email_confirmed"),
            _message_json(message, key.registration_id, now),
        ]
        return bool(self.scripts.confirm_email(keys=keys, args=arguments))

    def close_registration(self, key, status, allowed_from, now: datetime.datetime, message=None) -> bool:
        """Move the registration to a closed `status` if it is in one of `allowed_from`, with
        its `message` in the outbox; its person and contacts are released so they may register again."""
        for _ in range(3):
            prints = self._fingerprints(key)
            if prints is None:
                return False
            keys = [*self._lifecycle_keys(key.pool, key.registration_id, prints), *self.stats_keys(key.pool, now),
                    PoolKeys(key.pool).outbox, PoolKeys(key.pool).waits_ended]
            arguments = [
                key.registration_id,
                status.value,
                utc_text(now),
                now.timestamp(),
                _event_json(now, status.value),
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
        status (in one round trip for the sets, one for the statuses)."""
        pools = list(prints)
        with self.redis.pipeline(transaction=False) as pipe:
            for pool in pools:
                pipe.smembers(PoolKeys(pool).contact(prints[pool]))
            members = pipe.execute()
        keys = [RegistrationKey(*PoolId(pool).parts, registration_id.decode())
                for pool, found in zip(pools, members) for registration_id in sorted(found)]
        with self.redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.hget(PoolKeys(key.pool).registration(key.registration_id), "status")
            statuses = pipe.execute()
        return [(key, RegistrationStatus(status.decode())) for key, status in zip(keys, statuses) if status]

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
        changes = {"phone": phone or "", "sites": json.dumps(list(sites)), "half_days": json.dumps(list(half_days))}
        return self._change_contact(key, "phone", phone_print, changes, contacts_cap, now, "preferences_changed")

    def change_email(self, key, email, email_print, contacts_cap, now, message=None) -> str:
        """The confirmed new address replaces the old one; the status link's version grows (older
        links stop working) and `message` (the new link, to the new address) goes to the outbox."""
        changes = {"email": email, "pending_email": ""}
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
            ]
            arguments = [
                key.registration_id,
                f"{kind}_fp",
                old_print,
                new_print or "",
                contacts_cap,
                _event_json(now, event_kind),
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
        ids = sorted({registration_id.decode() for _, registration_id in self.redis.hscan_iter(PoolKeys(pool).refs)})
        pool_keys = PoolKeys(pool)
        with self.redis.pipeline(transaction=False) as pipe:
            for registration_id in ids:
                pipe.hmget(pool_keys.registration(registration_id), *_IDENTITY_FIELDS)
            rows = pipe.execute()
        return [
            {"id": registration_id, **{name: (value or b"").decode() for name, value in zip(_IDENTITY_FIELDS, row)}}
            for registration_id, row in zip(ids, rows)
            if row[0] is not None
        ]

    def move_identity(self, pool: str, registration_id: str, read_print: str, new_print: str) -> str:
        """Put the registration's person key under `new_print` (scripts/move_identity.lua says
        what each answer means): "current", "gone", "changed", "taken <holder's id>", "moved"
        or "renamed"."""
        pool_keys = PoolKeys(pool)
        keys = [pool_keys.registration(registration_id), pool_keys.identity(read_print), pool_keys.identity(new_print)]
        return self.scripts.move_identity(keys=keys, args=[registration_id, read_print, new_print]).decode()

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
                pool_keys.offers]
        arguments = [registration_id, prints["ref"], which, deadline.timestamp()]
        return int(self.scripts.purge_registration(keys=keys, args=arguments))


# Serialisation: Registration <-> hash fields ----------------------------------

# What registration_identities reads of each registration (identity_fp first: None
# when the hash is gone).
_IDENTITY_FIELDS = ("identity_fp", "ref", "created_at", "family_name", "given_names", "birth_date", "nationality",
                    "agdref")


def _registration_fields(registration: Registration, prints: Fingerprints) -> dict[str, str]:
    applicant = registration.applicant
    waiting_since = str(registration.created_at.timestamp()) if registration.status.value == "waiting" else ""
    return {
        "id": registration.key.registration_id,
        "ref": registration.ref,
        "prefecture": registration.key.prefecture,
        "procedure": registration.key.procedure,
        "status": registration.status.value,
        "channel": registration.channel.value,
        "agent": registration.agent or "",
        "created_at": utc_text(registration.created_at),
        "confirm_by": utc_text(registration.confirm_by),
        "email_confirmed_at": utc_text(registration.email_confirmed_at) if registration.email_confirmed_at else "",
        "status_changed_at": utc_text(registration.created_at),
        # When the current wait began (epoch): draws lost are counted from there. And when it
        # really began: the same, for a first wait (see store/scripts/waits.lua).
        "waiting_since": waiting_since,
        "waiting_entered_at": waiting_since,
        "family_name": applicant.family_name,
        "given_names": applicant.given_names,
        "birth_date": applicant.birth_date.isoformat(),
        "nationality": applicant.nationality,
        "email": applicant.email or "",
        "phone": applicant.phone or "",
        "agdref": applicant.agdref or "",
        "permit_expiry": applicant.permit_expiry.isoformat() if applicant.permit_expiry else "",
        "sites": json.dumps(list(applicant.sites)),
        "half_days": json.dumps(list(applicant.half_days)),
        "language": applicant.language,
        "identity_fp": prints.identity,
        "email_fp": prints.email or "",
        "phone_fp": prints.phone or "",
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
        phone=fields["phone"] or None,
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
        link_version=int(fields.get("link_version") or 0),  # written on the first email change
    )


def _message_json(message, registration_id: str, now: datetime.datetime, address_print: str | None = None) -> str:
    """The outbox message a script pushes, or "" (the script pushes none) when `message` is None."""
    return registration_message(message.value, registration_id, now, address_print) if message else ""


def _event_json(moment: datetime.datetime, kind: str, detail: dict | None = None) -> str:
    return json.dumps({"at": utc_text(moment), "kind": kind, "detail": detail or {}})
