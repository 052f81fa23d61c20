"""The Redis store: the only code that reads and writes the service's state in Redis.

One class per concern, each in its module: reference data (reference.py), the
processes' health (health.py), registrations and their purges
(registrations.py), slots and schedules (slots.py), draws (draws.py), offers
(offers.py), the outbox (outbox.py), staff accounts (accounts.py),
statistics (statistics.py), spent proofs of work (challenges.py), the SMS
short links (short_links.py) and the answers of the staff API's idempotent
requests (idempotency.py). `Store` puts them together on one client, so
callers hold one object: `Store(client)`. The key names, with what each
holds and its type, are in keys.py (no other module builds one); the Lua
scripts are in scripts/, loaded by lua.py.
"""

from __future__ import annotations

import redis
from redis.cluster import RedisCluster
from redis.sentinel import SentinelConnectionPool

from queue_service.store.accounts import AccountStore
from queue_service.store.challenges import ChallengeStore
from queue_service.store.draws import DrawStore
from queue_service.store.health import HealthStore
from queue_service.store.idempotency import IdempotencyStore
from queue_service.store.keys import RATE_LIMIT_PREFIX
from queue_service.store.lua import NotReplicated, Scripts
from queue_service.store.offers import OfferStore
from queue_service.store.outbox import OutboxStore
from queue_service.store.reference import ReferenceStore
from queue_service.store.registrations import RegistrationStore
from queue_service.store.short_links import ShortLinkStore
from queue_service.store.slots import SlotStore
from queue_service.store.statistics import StatisticsStore

__all__ = ["NotReplicated", "RATE_LIMIT_PREFIX", "Store"]  # RATE_LIMIT_PREFIX: for web/extensions.py


class Store(
    ReferenceStore,
    HealthStore,
    RegistrationStore,
    SlotStore,
    DrawStore,
    OfferStore,
    OutboxStore,
    AccountStore,
    StatisticsStore,
    ChallengeStore,
    IdempotencyStore,
    ShortLinkStore,
):
    """Reads and writes the service's state in one Redis database.

    The concerns call one another through `self` (an offer reads the
    registration's fingerprints, every script's counters come from `stats_keys`):
    they are parts of one store, not separate services.
    """

    def __init__(self, client: redis.Redis) -> None:
        # The client returns bytes (RQ requires it); the store decodes what it reads.
        self.redis = client
        # On a Redis Cluster a transaction or script stays within one slot: the few writes that
        # span unrelated keys (a staff account and the list of accounts) go one after the other.
        self.cluster = isinstance(client, RedisCluster)
        # Behind sentinels, a registration and a draw's commit are acknowledged only once a
        # replica has them (Store.replicated): a failover then loses none.
        self.replicas_to_wait = 1 if isinstance(getattr(client, "connection_pool", None), SentinelConnectionPool) else 0
        self.scripts = Scripts(client)
        self._timezones: dict[str, str] = {}  # ReferenceStore._timezone: read once per store
        self._pool_references: dict = {}  # ReferenceStore.pool_reference: (prefecture, procedure) -> (version, found)
