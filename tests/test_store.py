"""The Redis store, against the test run's own redis-server."""

import dataclasses
import datetime

import pytest

from queue_service import reference
from queue_service.errors import UnknownPrefecture, UnknownProcedure
from queue_service.store.keys import periodic_run_key

# Each test runs on the single Redis and again on a Redis Cluster (tests/conftest.py).
pytestmark = pytest.mark.topologies

UTC = datetime.timezone.utc


def test_reference_data_round_trips(reference_data):
    store = reference_data
    codes = [prefecture.code for prefecture in store.prefectures()]
    assert codes == [prefecture.code for prefecture in reference.PREFECTURES]
    assert store.prefecture("2A").name == "Corse-du-Sud"
    assert store.prefecture("974").timezone == "Indian/Reunion"
    assert store.procedure("renewal") == reference.procedure_by_code("renewal")
    assert {p.code for p in store.procedures()} == {"first_request", "renewal", "permit_pickup", "student"}


def test_unknown_codes_raise_domain_errors(reference_data):
    with pytest.raises(UnknownPrefecture):
        reference_data.prefecture("20")
    with pytest.raises(UnknownProcedure):
        reference_data.procedure("visa")


def test_loading_reference_again_replaces_it(store):
    store.load_reference(reference.PREFECTURES[:2], reference.PROCEDURES[:1])
    store.load_reference(reference.PREFECTURES[2:3], reference.PROCEDURES)
    assert [p.code for p in store.prefectures()] == [reference.PREFECTURES[2].code]
    assert len(store.procedures()) == len(reference.PROCEDURES)


def test_demo_sites_are_added_once_and_never_overwrite_edits(store):
    bourg = reference.DEMO_SITES[0]
    edited = dataclasses.replace(bourg, name="Préfecture (edited by an admin)")
    assert store.add_missing_sites([edited]) == 1
    assert store.add_missing_sites(reference.DEMO_SITES) == len(reference.DEMO_SITES) - 1
    assert store.add_missing_sites(reference.DEMO_SITES) == 0
    sites = {site.id: site for site in store.sites("01")}
    assert sites[bourg.id] == edited
    assert sites["gex"] == next(site for site in reference.DEMO_SITES if site.id == "gex")
    assert store.sites("69") == []


def test_heartbeats_round_trip_in_utc(store):
    assert store.last_clock_tick() is None and store.last_worker_heartbeat() is None
    paris = datetime.timezone(datetime.timedelta(hours=1))
    moment = datetime.datetime(2027, 1, 4, 10, 0, tzinfo=paris)
    store.record_clock_tick(moment)
    store.record_worker_heartbeat(moment)
    assert store.last_clock_tick() == moment
    assert store.last_clock_tick().utcoffset() == datetime.timedelta(0)
    assert store.last_worker_heartbeat() == moment


def test_naive_times_are_refused(store):
    with pytest.raises(ValueError, match="timezone"):
        store.record_clock_tick(datetime.datetime(2027, 1, 4, 10, 0))


def test_a_periodic_run_is_claimed_once(store):
    assert store.claim_periodic_run("heartbeat", 42, ttl_seconds=60) is True
    assert store.claim_periodic_run("heartbeat", 42, ttl_seconds=60) is False
    assert store.claim_periodic_run("heartbeat", 43, ttl_seconds=60) is True
    assert 0 < store.redis.ttl(periodic_run_key("heartbeat", 42)) <= 60
