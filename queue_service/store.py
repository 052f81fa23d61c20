"""The Redis store: the only code that knows Redis key names.

Every key is a named constant below with what it holds and its type. Keys of
one prefecture carry its code as a hash tag (`{01}`), keys of one pool will
carry `{01:renewal}`, so that each group lives on one Redis Cluster slot and
multi-key scripts stay legal there.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterable

import redis

from queue_service.errors import UnknownPrefecture, UnknownProcedure
from queue_service.reference import IdentityField, OpeningHours, Prefecture, Procedure, Site

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


class Store:
    """Reads and writes the service's state in one Redis database."""

    def __init__(self, client: redis.Redis) -> None:
        # The client returns bytes (RQ requires it); the store decodes what it reads.
        self.redis = client

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

    def ping(self) -> bool:
        return bool(self.redis.ping())


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
        }
    )


def _site_from(raw: bytes) -> Site:
    values = json.loads(raw)
    values["opening_hours"] = tuple(
        OpeningHours(weekday, datetime.time.fromisoformat(opens), datetime.time.fromisoformat(closes))
        for weekday, opens, closes in values["opening_hours"]
    )
    return Site(**values)


def _code_order(code: str) -> tuple[int, str]:
    """Sort key putting 2A and 2B where 20 would stand, and overseas last."""
    digits = code.replace("2A", "20").replace("2B", "20")
    return (int(digits), code)


def _utc_text(moment: datetime.datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("times passed to the store must be timezone-aware")
    return moment.astimezone(datetime.timezone.utc).isoformat()


def _utc_from(raw: bytes | None) -> datetime.datetime | None:
    return None if raw is None else datetime.datetime.fromisoformat(raw.decode())
