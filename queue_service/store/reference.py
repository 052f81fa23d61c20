"""Reference data: prefectures, procedures, sites and the AGDREF records each prefecture knows.

Configuration rather than activity: loaded by `qs load-reference`, the staff's
site pages and `qs import-agdref`, and read by every other part (a pool's time
zone, the sites an applicant may choose). The JSON forms of the reference
dataclasses live here, beside the only code that reads and writes them.
"""

from __future__ import annotations

import datetime
import json
import secrets
from collections.abc import Iterable

import redis

from queue_service.errors import UnknownPrefecture, UnknownProcedure
from queue_service.reference import IdentityField, OpeningHours, Prefecture, Procedure, Site
from queue_service.store.keys import PREFECTURES_KEY, PROCEDURES_KEY, REFERENCE_VERSION_KEY, PrefectureKeys

# pool_reference's `version` when the caller has not read it.
UNREAD = object()


class ReferenceStore:
    """Prefectures, procedures, sites and AGDREF records (one part of Store)."""

    redis: redis.Redis  # set by Store.__init__ (store/__init__.py)
    _timezones: dict[str, str]  # likewise: prefecture -> time zone, read once per store
    _pool_references: dict  # likewise: (prefecture, procedure) -> (version, (prefecture, procedure, sites))

    # Prefectures and procedures -----------------------------------------------

    def load_reference(self, prefectures: Iterable[Prefecture], procedures: Iterable[Procedure]) -> None:
        """Replace the prefectures, then the procedures, each list at once (the two keys are on
        two slots of a Redis Cluster: no transaction spans both)."""
        for key, mapping in ((PREFECTURES_KEY, {p.code: _prefecture_json(p) for p in prefectures}),
                             (PROCEDURES_KEY, {p.code: _procedure_json(p) for p in procedures})):
            with self.redis.pipeline(transaction=True) as pipe:
                pipe.delete(key)
                pipe.hset(key, mapping=mapping)
                pipe.execute()
        self._reference_changed()

    def _reference_changed(self) -> None:
        """Tell every process keeping reference data in memory (pool_reference) to read it again.

        Written after the change: a reader that saw the old token with the new data
        reads again at its next request, one that saw the new token reads the new data.
        """
        self.redis.set(REFERENCE_VERSION_KEY, secrets.token_hex(8))

    def pool_reference(self, prefecture_code: str, procedure_code: str,
                       version: bytes | None | object = UNREAD) -> tuple[Prefecture, Procedure, list[Site]]:
        """The prefecture, the procedure and the prefecture's sites, kept in this process's memory
        while the reference version (REFERENCE_VERSION_KEY) stays the same: one GET per call
        when nothing changed, one round trip (the version and the three reads) when it did.
        `version`: the version as the caller read it at the start of its request, in a round
        trip it made anyway (a registration's budgets: web/budgets.py); then no GET at all
        when nothing changed. Raises UnknownPrefecture / UnknownProcedure as `prefecture` and
        `procedure` do.
        """
        wanted = (prefecture_code, procedure_code)
        kept = self._pool_references.get(wanted)
        if kept is not None and (self.redis.get(REFERENCE_VERSION_KEY) if version is UNREAD else version) == kept[0]:
            prefecture, procedure, sites = kept[1]
            return prefecture, procedure, list(sites)
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.get(REFERENCE_VERSION_KEY)  # read first: data newer than it is only read again
            pipe.hget(PREFECTURES_KEY, prefecture_code)
            pipe.hget(PROCEDURES_KEY, procedure_code)
            pipe.hvals(PrefectureKeys(prefecture_code).sites)
            version, prefecture, procedure, sites = pipe.execute()
        if prefecture is None:
            raise UnknownPrefecture()
        if procedure is None:
            raise UnknownProcedure()
        found = (_prefecture_from(prefecture), _procedure_from(procedure), _sorted_sites(sites))
        if len(self._pool_references) > 10_000:  # made-up pairs are refused above; real ones are few
            self._pool_references.clear()
        self._pool_references[wanted] = (version, found)
        return found[0], found[1], list(found[2])

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

    def _timezone(self, prefecture: str) -> str:
        """The prefecture's time zone, read once per store (it does not change)."""
        if prefecture not in self._timezones:
            raw = self.redis.hget(PREFECTURES_KEY, prefecture)
            # Reference data not loaded (a bare test store): metropolitan time.
            self._timezones[prefecture] = json.loads(raw)["timezone"] if raw else "Europe/Paris"
        return self._timezones[prefecture]

    # Sites --------------------------------------------------------------------

    def add_missing_sites(self, sites: Iterable[Site]) -> int:
        """Add the sites not stored yet, keeping stored ones as they are; returns how many were added."""
        added = 0
        for site in sites:
            added += self.redis.hsetnx(PrefectureKeys(site.prefecture).sites, site.id, _site_json(site))
        if added:
            self._reference_changed()
        return added

    def save_site(self, site: Site) -> None:
        """Create or replace a site."""
        self.redis.hset(PrefectureKeys(site.prefecture).sites, site.id, _site_json(site))
        self._reference_changed()

    def delete_site(self, prefecture_code: str, site_id: str) -> None:
        self.redis.hdel(PrefectureKeys(prefecture_code).sites, site_id)
        self._reference_changed()

    def site(self, prefecture_code: str, site_id: str) -> Site | None:
        raw = self.redis.hget(PrefectureKeys(prefecture_code).sites, site_id)
        return _site_from(raw) if raw else None

    def sites(self, prefecture_code: str) -> list[Site]:
        return _sorted_sites(self.redis.hvals(PrefectureKeys(prefecture_code).sites))

    # AGDREF records -----------------------------------------------------------

    def replace_agdref_records(self, prefecture: str, fingerprints: list[str]) -> None:
        """Replace the prefecture's known AGDREF numbers (as keyed hashes), all at once."""
        prefecture_keys = PrefectureKeys(prefecture)
        key, staging = prefecture_keys.agdref, prefecture_keys.agdref_staging
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(staging)
            for start in range(0, len(fingerprints), 10_000):
                pipe.sadd(staging, *fingerprints[start : start + 10_000])
            if fingerprints:
                pipe.execute_command("RENAME", staging, key)  # (redis-py refuses pipe.rename on a cluster; same slot)
            else:
                pipe.delete(key)
            pipe.execute()

    def agdref_known(self, prefecture: str, fingerprint: str) -> bool:
        return bool(self.redis.sismember(PrefectureKeys(prefecture).agdref, fingerprint))

    def agdref_count(self, prefecture: str) -> int:
        return self.redis.scard(PrefectureKeys(prefecture).agdref)


# Serialisation: reference dataclasses <-> JSON text ---------------------------


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


def _sorted_sites(values: list[bytes]) -> list[Site]:
    return sorted((_site_from(value) for value in values), key=lambda site: (site.kind, site.name))


def _code_order(code: str) -> tuple[int, str]:
    """Sort key putting 2A and 2B where 20 would stand, and overseas last."""
    digits = code.replace("2A", "20").replace("2B", "20")
    return (int(digits), code)
