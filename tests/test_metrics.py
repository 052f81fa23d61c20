"""Counters against the real Redis: after any sequence of events, they equal a recount.

A Hypothesis state machine registers people (online and at a counter, some of
them twice, some sharing a phone), confirms, withdraws, lets time pass and
purges, runs draws, retries jobs and crashes draw workers half-way. After
every step the counters must equal what a recount of the registrations, the
draws and the outcomes of the actions finds.
"""

from __future__ import annotations

import datetime
import json
import random
from collections import Counter

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test
from helpers import TIMING

from queue_service import draws, metrics, reference
from queue_service import registration as reg
from queue_service.draws.schedules import DrawSchedule
from queue_service.errors import ContactCapReached, DuplicateRegistration, InvalidTransition, StaleDrawWorker
from queue_service.inventory.slots import Slot
from queue_service.metrics import Event
from queue_service.reference import procedure_by_code
from queue_service.registration import Channel
from queue_service.registration.agdref import UploadedRecords
from queue_service.store import Store
from queue_service.store.fields import long_name
from queue_service.store.keys import PoolKeys

UTC = datetime.timezone.utc
START = datetime.datetime(2027, 3, 27, 20, 0, tzinfo=UTC)  # the spring change of time is near
POOL = "01:first_request"
SECRET = b"identity-secret-for-tests"
LIMITS = reg.Limits(contacts_per_pool=2, confirmation_window=datetime.timedelta(hours=24))
SITES = ["bourg", "belley", "gex", "nantua"]
PEOPLE = 8


def applicant(person: int, today: datetime.date, email: bool = True):
    form = {
        "family_name": f"Person {chr(65 + person)}",
        "given_names": "Test",
        "birth_date": "1990-05-17",
        "nationality": "MA",
        "email": f"p{person}@example.org" if email else "",
        "phone": f"+3361200000{person % 3}",  # three phones for eight people: the cap of 2 is hit
        "consent": "yes",
    }
    return reg.parse_applicant(form, procedure_by_code("first_request"), SITES, today, email_required=email)


class CountersMachine(RuleBasedStateMachine):
    def __init__(self, redis):
        super().__init__()
        self.redis = redis
        self.redis.flushall()
        self.store = Store(redis)
        self.store.load_reference(reference.PREFECTURES, reference.PROCEDURES)
        self.store.add_missing_sites(reference.DEMO_SITES)
        self.store.save_schedule(
            DrawSchedule(prefecture="01", procedure="first_request", timezone="Europe/Paris", cron="0 10 * * MON",
                         cutoff_minutes=60, horizon_from_days=1, horizon_to_days=14, created_at=START)
        )
        self.now = START
        self.rng = random.Random(5)
        self.records = UploadedRecords(self.store, SECRET)
        self.outcomes: Counter = Counter()
        self.registrations: list = []
        self.slot_number = 0

    @initialize()
    def nothing_counted_yet(self):
        assert self.store.stats_totals([POOL])[POOL] == {event: 0 for event in metrics.EVENTS}

    # Actions ------------------------------------------------------------------------

    @rule(person=st.integers(0, PEOPLE - 1), assisted=st.booleans(), minutes=st.integers(1, 600))
    def register(self, person, assisted, minutes):
        self.now += datetime.timedelta(minutes=minutes)
        channel = Channel.ASSISTED if assisted else Channel.ONLINE
        try:
            created = reg.register(
                self.store, "01", "first_request", applicant(person, self.now.date(), email=not assisted),
                now=self.now, rng=self.rng, identity_secret=SECRET, limits=LIMITS, records=self.records,
                channel=channel,
            )
        except DuplicateRegistration:
            self.outcomes[Event.DUPLICATE_REFUSED] += 1
        except ContactCapReached:
            self.outcomes[Event.CONTACT_CAP_REFUSED] += 1
        else:
            self.registrations.append(created)
            self.outcomes[Event.REGISTERED] += 1
            self.outcomes[Event.REGISTERED_ASSISTED] += assisted

    @rule(data=st.data(), twice=st.booleans())
    def confirm(self, data, twice):
        """Open the confirmation link (a person may open it twice)."""
        if not self.registrations:
            return
        chosen = data.draw(st.sampled_from(self.registrations))
        found = self.store.registration(chosen.key)
        if found is None or found.applicant.email is None:
            return
        for _ in range(2 if twice else 1):
            self.now += datetime.timedelta(minutes=5)
            try:
                reg.confirm_email(self.store, chosen.key, found.applicant.email, self.now)
            except InvalidTransition:
                return

    @rule(data=st.data())
    def withdraw(self, data):
        if not self.registrations:
            return
        chosen = data.draw(st.sampled_from(self.registrations))
        self.now += datetime.timedelta(minutes=7)
        try:
            reg.withdraw(self.store, chosen.key, self.now)
        except (InvalidTransition, reg.RegistrationNotFound):
            return

    @rule(hours=st.integers(1, 30), retried=st.booleans())
    def time_passes_and_purge_runs(self, hours, retried):
        """The purge job, and sometimes its retry (a second run deletes nothing more)."""
        self.now += datetime.timedelta(hours=hours)
        for _ in range(2 if retried else 1):
            reg.purge(self.store, self.now, datetime.timedelta(days=365))

    @rule(slots=st.integers(0, 3), crash=st.sampled_from(["none", "retry", "stale"]),
          seed=st.binary(min_size=32, max_size=32))
    def draw(self, slots, crash, seed):
        """An admin's draw now, run to the end; possibly run again, or with a stale worker crashing in."""
        self.now += datetime.timedelta(hours=2)
        schedule = self.store.schedule(POOL)
        new_slots = []
        for _ in range(slots):
            self.slot_number += 1
            new_slots.append(Slot(id=f"s{self.slot_number:04d}", prefecture="01", site="bourg", procedure="first_request",
                                  starts_at=self.now + datetime.timedelta(days=2, minutes=20 * self.slot_number),
                                  duration_minutes=20, counter=1))
        self.store.add_slots(new_slots)
        due = draws.draw_now(schedule, "01", "first_request", "Europe/Paris", self.now)
        # The seed is Hypothesis's, so that it replays a sequence with the same winners (a fresh
        # one would change the later steps' outcomes, and hide a failure as "flaky").
        draws.announce(self.store, schedule, due, self.now, seed=seed)
        if crash == "stale":
            # A first worker freezes and draws, then stalls; a second one takes over and finishes.
            stale_fence = self.store.take_draw_fence(POOL, due.draw_id)
            draws.freeze(self.store, POOL, self.store.draw(POOL, due.draw_id), schedule, stale_fence, self.now,
                         TIMING)
            draws.draw(self.store, POOL, due.draw_id, stale_fence, self.now)
        draws.run(self.store, POOL, due.draw_id, self.now, TIMING)
        if crash == "stale":
            with pytest.raises(StaleDrawWorker):
                draws.commit(self.store, POOL, due.draw_id, stale_fence, schedule, self.now, TIMING)
        if crash == "retry":
            draws.run(self.store, POOL, due.draw_id, self.now, TIMING)

    # Invariants ------------------------------------------------------------------------

    def stored_registrations(self) -> list[dict]:
        """The registrations' hashes as stored, each with its "id" (from its key name)."""
        found = []
        prefix = PoolKeys(POOL).registration("")
        for key in self.redis.scan_iter(match=PoolKeys(POOL).registration("*"), count=1000):
            if not key.endswith(b":history"):
                # By the code's names (store/fields.py); the fingerprints are bytes, not text.
                fields = {long_name(name.decode()): value.decode("latin-1")
                          for name, value in self.redis.hgetall(key).items()}
                found.append(fields | {"id": key.decode().removeprefix(prefix)})
        return found

    @invariant()
    def counters_equal_a_recount(self):
        totals = self.store.stats_totals([POOL])[POOL]
        for event in (Event.REGISTERED, Event.REGISTERED_ASSISTED, Event.DUPLICATE_REFUSED, Event.CONTACT_CAP_REFUSED):
            assert totals[event.value] == self.outcomes[event], event

        stored = self.stored_registrations()
        statuses = Counter(row["status"] for row in stored)
        # Only unconfirmed registrations are purged here (closed ones are kept for a year).
        assert totals["registered"] - totals["purged_unconfirmed"] - totals["replaced_unconfirmed"] == len(stored)
        assert totals["registered_assisted"] == sum(row["channel"] == "assisted" for row in stored)
        assert totals["email_confirmed"] == sum(row["channel"] == "online" and bool(row.get("email_confirmed_at"))
                                                for row in stored)
        assert totals["withdrawn"] == statuses["withdrawn"]
        assert totals["slots_offered"] == statuses["offered"] == len(self.store.offers(POOL))
        assert totals["draw_committed"] == len(self.store.committed_draw_cutoffs(POOL))

        # Gauges are the sets' sizes, and agree with the statuses.
        gauges = self.store.pool_gauges([POOL])[POOL]
        assert gauges == {"waiting": statuses["waiting"], "pending_email": statuses["pending_email"]}

        # The days add up to the totals.
        day_keys = list(self.redis.scan_iter(match=PoolKeys(POOL).stats_day("*"), count=1000))
        summed = metrics.add_counts(metrics.counts(self.redis.hgetall(key)) for key in day_keys)
        assert summed == totals
        assert self.redis.exists(PoolKeys(POOL).stats) == (sum(totals.values()) > 0)

        # Each draw's offers, counted in its own hash, match its record.
        for record in self.store.draws(POOL):
            per_draw = self.store.stats_draws(POOL, [record.draw_id])[record.draw_id]
            assert per_draw["slots_offered"] == (record.offered or 0)

    @invariant()
    def weights_histogram_equals_a_recount(self):
        recount = Counter()
        for row in self.stored_registrations():
            if row["status"] == "waiting":
                key = reg.RegistrationKey("01", "first_request", row["id"])
                recount[self.store.registration(key).draws_lost] += 1
        assert self.store.waiting_by_draws_lost(POOL) == dict(recount)


def test_counters_equal_a_recount_after_any_sequence_of_events(redis_server):
    run_state_machine_as_test(
        lambda: CountersMachine(redis_server),
        settings=settings(max_examples=40, stateful_step_count=25, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]),
    )


def test_the_day_is_the_prefectures_own(store, reference_data):
    # 23:30 UTC on 31 December is already 1 January in Paris, still 31 December in Guadeloupe.
    moment = datetime.datetime(2026, 12, 31, 23, 30, tzinfo=UTC)
    assert store.stats_keys("01:renewal", moment)[1] == PoolKeys("01:renewal").stats_day("2027-01-01")
    assert store.stats_keys("971:renewal", moment)[1] == PoolKeys("971:renewal").stats_day("2026-12-31")
    assert store.stats_keys("01:renewal", moment, draw_id="01-renewal-20270104T1000")[2] == (
        PoolKeys("01:renewal").stats_draw("01-renewal-20270104T1000")
    )


def test_count_event_refuses_unknown_names_and_counts_known_ones(store, reference_data):
    moment = datetime.datetime(2027, 1, 4, 9, 0, tzinfo=UTC)
    with pytest.raises(ValueError, match="unknown event"):
        store.count_event("01:renewal", "registred", moment)
    store.count_event("01:renewal", "rate_limited", moment, amount=3)
    assert store.stats_totals(["01:renewal"])["01:renewal"]["rate_limited"] == 3
    assert store.stats_days("01:renewal", moment.date(), moment.date())[moment.date()]["rate_limited"] == 3


def test_the_lua_helper_counts_in_every_key_it_is_given(store, redis, reference_data):
    """What the offers' scripts do: prepend the counting prelude, pass the keys, call the helpers."""
    from queue_service.store import lua

    script = redis.register_script(lua.source(lua.PRELUDE) + """
count_event('offer_confirmed', 1, KEYS[1], KEYS[2], KEYS[3])
count_event('no_show', 0, KEYS[1], KEYS[2], KEYS[3])
count_wait(KEYS[4], ARGV[1])
return 1
""")
    moment = datetime.datetime(2027, 1, 4, 9, 0, tzinfo=UTC)
    keys = store.stats_keys("01:renewal", moment, draw_id="01-renewal-20270104T1000") + [store.waits_key("01:renewal")]
    script(keys=keys, args=[12.0])
    script(keys=keys, args=[40])
    assert store.stats_totals(["01:renewal"])["01:renewal"]["offer_confirmed"] == 2
    assert store.stats_draws("01:renewal", ["01-renewal-20270104T1000"])["01-renewal-20270104T1000"]["offer_confirmed"] == 2
    assert "no_show" not in {name.decode() for name in redis.hkeys(keys[0])}  # an amount of 0 writes nothing
    assert store.wait_histogram("01:renewal") == {12: 1, 40: 1}


def test_percentiles_and_shares():
    assert metrics.percentile({}, 0.5) is None
    assert metrics.percentile({3: 1, 10: 1, 30: 2}, 0.5) == 10
    assert metrics.percentile({3: 1, 10: 1, 30: 2}, 0.9) == 30
    assert metrics.wait_bins({3: 1, 10: 2, 13: 1}) == [(0, 1), (7, 3)]
    totals = metrics.counts({b"slots_offered": b"10", b"offer_confirmed": b"7", b"renewal_expired_before_appointment": b"1"})
    assert metrics.fill_rate(totals) == 0.7
    assert metrics.renewals_served_in_time(totals) == pytest.approx(6 / 7)
    assert metrics.fill_rate(metrics.counts({})) is None
    assert json.dumps(metrics.EVENTS)  # plain strings, in one tuple
