"""Bytes of Redis per waiting registration, and which keys cost what.

    python bench/memory.py [--count 100000] [--path import|register|both]

Starts a private redis-server (Debian's, /usr/bin/redis-server, or --server)
on a free port with its default memory settings, writes `--count` waiting
registrations through the service's own store code, and prints
`used_memory` after minus before, divided by the count, with the MEMORY
USAGE of a sample of each kind of key (and the encoding Redis chose for it).

Two ways in, as in a deployment:
- import:   Store.import_waiting_registrations, the bulk path bench/pool.py
            and a migration from another system take (the registration hash,
            the person's place, the reference, the waiting set);
- register: Store.create_registration then Store.confirm_email, one pair of
            scripts per person, the path of the web form (the same, plus the
            history, on the registration's hash, and the email and phone contacts).

The people are made up but shaped like real ones: ids and references made by
the service's own functions, fingerprints are real HMAC-SHA256 keys (64 hex
characters), emails, phones, AGDREF numbers, a permit expiry, and half of them
choosing sites and half-days.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import os
import random
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import redis  # noqa: E402

from bench.redis_server import DEFAULT_SERVER, PrivateRedis  # noqa: E402
from queue_service.reference import HALF_DAYS  # noqa: E402
from queue_service.registration import (  # noqa: E402
    Applicant,
    Channel,
    Fingerprints,
    Registration,
    RegistrationStatus,
)
from queue_service.registration import new_reference, new_registration_id  # noqa: E402
from queue_service.registration.identity import contact_fingerprint, identity_fingerprint  # noqa: E402
from queue_service.registration.tokens import RegistrationKey  # noqa: E402
from queue_service.store import Store  # noqa: E402
from queue_service.store.keys import PoolKeys  # noqa: E402

UTC = datetime.timezone.utc
JOINED = datetime.datetime(2027, 1, 4, 9, 0, tzinfo=UTC)
SITES = ("bourg", "belley", "gex", "nantua")
FAMILY = ("Nguyen", "Benali", "Diallo", "Kowalska", "Haddad", "Traore", "Silva", "Rahmani", "Okafor", "Petrenko")
GIVEN = ("Thi Lan", "Mohamed", "Aminata", "Anna Maria", "Youssef", "Fatou", "Joao Pedro", "Leila", "Chinedu", "Olena")
PREFIX = "registration-memory"


def people(count: int, pool: str, seed: int = 1):
    """(Registration, Fingerprints) of `count` made-up people waiting in `pool`."""
    rng = random.Random(seed)
    secret = os.urandom(32)
    prefecture, procedure = pool.split(":")
    refs: set[str] = set()
    for number in range(count):
        family, given = FAMILY[number % 10], GIVEN[(number // 10) % 10]
        family_name = f"{family} {number}"  # distinct people
        birth = datetime.date(1960, 1, 1) + datetime.timedelta(days=rng.randrange(15000))
        email = f"{given.split()[0].lower()}.{family.lower()}{number}@example.org"
        phone = f"+3361{number:07d}"
        agdref = f"{number:07d}{rng.randrange(1000):03d}"  # 10 digits, distinct (the person's identity key)
        choosy = number % 2 == 1
        sites = tuple(rng.sample(SITES, rng.randint(1, 4))) if choosy else SITES
        half_days = tuple(sorted(rng.sample(HALF_DAYS, rng.randint(2, 10)), key=HALF_DAYS.index)) if choosy \
            else HALF_DAYS
        urgent = number % 20 == 0
        applicant = Applicant(
            family_name=family_name, given_names=given, birth_date=birth, nationality="MA", email=email,
            phone=phone, agdref=agdref, permit_expiry=JOINED.date() + datetime.timedelta(days=10 if urgent else 300),
            sites=sites, half_days=half_days, language="fr",
        )
        registration = Registration(
            key=RegistrationKey(prefecture, procedure, new_registration_id(rng)),
            ref=unique_reference(prefecture, procedure, rng, refs),
            status=RegistrationStatus.WAITING, channel=Channel.ASSISTED if number % 7 == 0 else Channel.ONLINE,
            agent=None, created_at=JOINED, confirm_by=JOINED + datetime.timedelta(days=2), applicant=applicant,
            email_confirmed_at=JOINED,
        )
        prints = Fingerprints(
            identity=identity_fingerprint(secret, pool, agdref=agdref, family_name=family_name, given_names=given,
                                          birth_date=birth, nationality="MA"),
            email=contact_fingerprint(secret, pool, "email", email),
            phone=contact_fingerprint(secret, pool, "phone", phone),
        )
        yield registration, prints


def unique_reference(prefecture: str, procedure: str, rng: random.Random, taken: set[str]) -> str:
    """A reference as the service makes them (01R-7K3Q9X), drawn again when taken, as the service does."""
    while (ref := new_reference(prefecture, procedure, rng)) in taken:
        pass
    taken.add(ref)
    return ref


def write_imported(store: Store, count: int, pool: str) -> None:
    batch: list = []
    for pair in people(count, pool):
        batch.append(pair)
        if len(batch) == 10_000:
            store.import_waiting_registrations([r for r, _ in batch], [p for _, p in batch], JOINED)
            batch = []
    if batch:
        store.import_waiting_registrations([r for r, _ in batch], [p for _, p in batch], JOINED)


def write_registered(store: Store, count: int, pool: str) -> None:
    for registration, prints in people(count, pool):
        pending = dataclasses.replace(registration, status=RegistrationStatus.PENDING_EMAIL, email_confirmed_at=None)
        outcome = store.create_registration(pending, prints, contacts_cap=3, now=JOINED)
        if outcome != "ok":
            raise RuntimeError(f"registration refused: {outcome}")
        store.confirm_email(registration.key, JOINED)


def key_kinds(client: redis.Redis, pool: str) -> dict[str, list[bytes]]:
    """The keys of the pool by kind, from the names keys.py gives them (a sample of the many)."""
    pool_keys = PoolKeys(pool)
    kinds: dict[str, list[bytes]] = {}
    registration_prefix = pool_keys.registration_prefix.encode()
    identity_prefix = pool_keys.identity("").encode()
    contact_prefix = pool_keys.contact("").removesuffix("none").encode()
    for key in client.scan_iter(match=pool_keys.pattern, count=1000):
        if key.startswith(registration_prefix):
            kind = "history (list, before 2026-11-29)" if key.endswith(b":history") else "registration (hash)"
        elif key.startswith(identity_prefix):
            kind = "person key (before 2026-11-29)"
        elif key.startswith(contact_prefix):
            kind = "contact key (before 2026-11-29)"
        else:
            kind = key.decode().rsplit("}:", 1)[-1]
        kinds.setdefault(kind, []).append(key)
    return kinds


def measure(server: str, count: int, path: str, pool: str = "01:renewal") -> float:
    private = PrivateRedis(server)
    try:
        client = private.client
        store = Store(client)
        before = client.info("memory")["used_memory"]
        started = time.perf_counter()
        (write_imported if path == "import" else write_registered)(store, count, pool)
        seconds = time.perf_counter() - started
        after = client.info("memory")["used_memory"]
        per_registration = (after - before) / count
        print(f"\n== {path}: {count:,} waiting registrations written in {seconds:.1f} s")
        print(f"used_memory {before:,} -> {after:,} bytes: {per_registration:,.0f} bytes per waiting registration")
        print(f"{'key kind':<34}{'keys':>9}{'bytes each (sample)':>21}{'per registration':>18}  encoding")
        for kind, keys in sorted(key_kinds(client, pool).items()):
            sample = keys if len(keys) < 50 else random.Random(2).sample(keys, 200)
            sizes = [client.memory_usage(key, samples=0) or 0 for key in sample]
            each = sum(sizes) / len(sizes)
            encoding = client.object("encoding", sample[0]).decode()
            print(f"{kind:<34}{len(keys):>9,}{each:>21,.0f}{each * len(keys) / count:>18,.0f}  {encoding}")
        return per_registration
    finally:
        private.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--path", choices=("import", "register", "both"), default="both")
    parser.add_argument("--server", default=DEFAULT_SERVER)
    arguments = parser.parse_args()
    version = subprocess.run([arguments.server, "--version"], capture_output=True, text=True).stdout.strip()
    print(version)
    figures = {}
    for path in ("import", "register") if arguments.path == "both" else (arguments.path,):
        figures[path] = measure(arguments.server, arguments.count, path)
    print()
    for path, figure in figures.items():
        print(f"{path}: {figure:,.0f} bytes per waiting registration (target 800: ratio {figure / 800:.2f}); "
              f"a million waiting people: {figure * 1e6 / 2**30:.2f} GiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
