"""The Redis store, against the test run's own redis-server."""

import dataclasses
import datetime

import pytest

from queue_service import reference
from queue_service.errors import UnknownPrefecture, UnknownProcedure
from queue_service.store.keys import periodic_run_key

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


def test_key_names_stay_what_the_stored_data_is_filed_under():
    """The one place key names are written out: changing one loses the data already stored under it."""
    from queue_service.store import keys

    pool, prefecture = keys.PoolKeys("01:renewal"), keys.PrefectureKeys("01")
    expected = {
        pool.pattern: "qs:{01:renewal}:*",
        pool.registration("r1"): "qs:{01:renewal}:reg:r1",
        pool.registration_prefix: "qs:{01:renewal}:reg:",
        pool.history("r1"): "qs:{01:renewal}:reg:r1:history",
        pool.identity("f1"): "qs:{01:renewal}:identity:f1",
        pool.contact("f1"): "qs:{01:renewal}:contact:f1",
        pool.refs: "qs:{01:renewal}:refs",
        pool.waiting: "qs:{01:renewal}:waiting",
        pool.unconfirmed: "qs:{01:renewal}:unconfirmed",
        pool.closed: "qs:{01:renewal}:closed",
        pool.slots: "qs:{01:renewal}:slots",
        pool.slot_states: "qs:{01:renewal}:slot-states",
        pool.slot_times: "qs:{01:renewal}:slot-times",
        pool.slot_holders: "qs:{01:renewal}:slot-holders",
        pool.schedule: "qs:{01:renewal}:schedule",
        pool.reconciled: "qs:{01:renewal}:reconciled-until",
        pool.draw("d1"): "qs:{01:renewal}:draw:d1",
        pool.draws: "qs:{01:renewal}:draws",
        pool.draw_fence("d1"): "qs:{01:renewal}:draw:d1:fence",
        pool.draw_frozen("d1"): "qs:{01:renewal}:draw:d1:frozen",
        pool.draw_result("d1"): "qs:{01:renewal}:draw:d1:result",
        pool.draw_offered("d1"): "qs:{01:renewal}:draw:d1:offered",
        pool.committed_draws: "qs:{01:renewal}:committed-draws",
        pool.draw_deadlines: "qs:{01:renewal}:draw-deadlines",
        pool.offers: "qs:{01:renewal}:offers",
        pool.offer_deadlines: "qs:{01:renewal}:offer-deadlines",
        pool.bookings: "qs:{01:renewal}:bookings",
        pool.booking_codes: "qs:{01:renewal}:booking-codes",
        pool.standby: "qs:{01:renewal}:standby",
        pool.reminders: "qs:{01:renewal}:reminders",
        pool.outbox: "qs:{01:renewal}:outbox",
        pool.outbox_lock: "qs:{01:renewal}:outbox:lock",
        pool.deliveries: "qs:{01:renewal}:deliveries",
        pool.delivery_failures: "qs:{01:renewal}:delivery-failures",
        pool.stats: "qs:{01:renewal}:stats",
        pool.stats_day("2027-01-04"): "qs:{01:renewal}:stats:day:2027-01-04",
        pool.stats_draw("d1"): "qs:{01:renewal}:stats:draw:d1",
        pool.stats_waits: "qs:{01:renewal}:stats:waits",
        prefecture.sites: "qs:{01}:sites",
        prefecture.agdref: "qs:{01}:agdref",
        prefecture.agdref_staging: "qs:{01}:agdref:staging",
        keys.PREFECTURES_KEY: "qs:ref:prefectures",
        keys.PROCEDURES_KEY: "qs:ref:procedures",
        keys.CLOCK_TICK_KEY: "qs:health:clock",
        keys.WORKER_HEARTBEAT_KEY: "qs:health:worker",
        keys.periodic_run_key("heartbeat", 42): "qs:clock:periodic:heartbeat:42",
        keys.RATE_LIMIT_PREFIX: "qs:ratelimit",
        keys.POOLS_KEY: "qs:pools",
        keys.SCHEDULED_POOLS_KEY: "qs:schedules",
        keys.JOB_DURATIONS_KEY: "qs:stats:jobs",
        keys.staff_account_key("a1"): "qs:staff:account:a1",
        keys.account_tokens_key("a1"): "qs:staff:account:a1:tokens",
        keys.STAFF_EMAILS_KEY: "qs:staff:emails",
        keys.STAFF_ACCOUNTS_KEY: "qs:staff:accounts",
        keys.login_failures_key("e1"): "qs:staff:login-failures:e1",
        keys.staff_session_key("s1"): "qs:staff:session:s1",
        keys.api_token_key("t1"): "qs:staff:token:t1",
        keys.ALL_PATTERN: "qs:*",
    }
    assert list(expected) == list(expected.values())
    # Every key of a pool is in the table above (a new one is added there too).
    members = {name for name in dir(keys.PoolKeys) if not name.startswith("_") and name != "pool"}
    assert len(members) == sum(1 for name in expected if name.startswith("qs:{01:renewal}"))
