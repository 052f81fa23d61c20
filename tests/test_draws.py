"""Draws on the real Redis: announced, frozen, drawn, committed once, published, verifiable."""

import datetime
import json
import random
import subprocess
import sys

import pytest
from helpers import (CREATED, DRAW_AT, DRAW_ID, POOL, SECRET, TIMING, announce_freeze_and_draw, draw_id_at, english_day,
                     schedule)

from queue_service import draws
from queue_service import offers as offer_rules
from queue_service import registration as reg
from queue_service.draws import lottery
from queue_service.draws.schedules import DrawPolicy, DrawSchedule
from queue_service.errors import StaleDrawWorker
from queue_service.inventory.slots import Slot
from queue_service.reference import DEMO_AGDREF_NUMBERS, procedure_by_code
from queue_service.registration.agdref import UploadedRecords
from queue_service.store.keys import PoolKeys
from worker import clock

# Each test runs on the single Redis and again on a Redis Cluster (tests/conftest.py).
pytestmark = pytest.mark.topologies


def run_clock_and_jobs(queue_redis, store, run_jobs, moment):
    enqueued = clock.reconcile_draws(queue_redis, store, moment)
    run_jobs()
    return enqueued


def test_a_draw_is_announced_before_its_cutoff_with_its_commitment_only(queue_redis, pool):
    store, _, _ = pool
    clock.reconcile_draws(queue_redis, store, DRAW_AT - datetime.timedelta(days=2))
    record = draws.public_record(store, POOL, DRAW_ID)
    assert record["state"] == "scheduled" and record["seed"] is None and record["announced_late"] is False
    assert len(record["commitment"]) == 64 and record["entrants"] is None


def test_the_scheduled_draw_runs_commits_and_publishes_a_verifiable_record(queue_redis, pool, run_jobs, tmp_path, mailbox):
    store, slots, people = pool
    clock.reconcile_draws(queue_redis, store, DRAW_AT - datetime.timedelta(days=2))
    commitment = store.draw(POOL, DRAW_ID).commitment
    assert run_clock_and_jobs(queue_redis, store, run_jobs, DRAW_AT + datetime.timedelta(seconds=5)) == [DRAW_ID]
    record = draws.public_record(store, POOL, DRAW_ID)
    assert record["state"] == "published" and record["commitment"] == commitment
    assert record["statistics"] == {"entrants": 60, "slots": 20, "winners": 20}, store.draw(POOL, DRAW_ID)

    offers = store.offers(POOL)
    assert len(offers) == 20 and len({offer.slot_id for offer in offers.values()}) == 20
    # The draw job handed its 20 messages to send jobs, which sent them.
    assert store.outbox(POOL) == [] and len(mailbox.messages) == 20
    statuses = [store.registration(person.key).status.value for person in people]
    assert statuses.count("offered") == 20 and statuses.count("waiting") == 40
    losers = [store.registration(p.key) for p in people if store.registration(p.key).status.value == "waiting"]
    assert all(loser.draws_lost == 1 and loser.draws_entered == 1 for loser in losers)
    assert store.waiting_count(POOL) == 40

    path = tmp_path / "record.json"
    path.write_text(json.dumps(record))
    verified = subprocess.run([sys.executable, "-m", "queue_service.verify", str(path)], capture_output=True, text=True)
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_constraints_are_respected(queue_redis, pool, run_jobs):
    store, slots, people = pool
    run_clock_and_jobs(queue_redis, store, run_jobs, DRAW_AT + datetime.timedelta(seconds=5))
    classes = {slot.id: slot.slot_class("Europe/Paris") for slot in slots}
    for registration_id, offer in store.offers(POOL).items():
        person = next(p for p in people if p.key.registration_id == registration_id)
        accepted_sites = person.applicant.sites
        assert classes[offer.slot_id].split("-")[0] in accepted_sites


def test_running_the_draw_again_changes_nothing(queue_redis, pool, run_jobs, mailbox):
    store, _, people = pool
    run_clock_and_jobs(queue_redis, store, run_jobs, DRAW_AT + datetime.timedelta(seconds=5))
    before = {p.key.registration_id: store.registration(p.key) for p in people}
    rerun = draws.run(store, POOL, DRAW_ID, DRAW_AT + datetime.timedelta(minutes=1), TIMING)
    assert rerun is draws.DrawState.PUBLISHED
    after = {p.key.registration_id: store.registration(p.key) for p in people}
    run_jobs()
    assert after == before and store.outbox(POOL) == [] and len(mailbox.messages) == 20


def test_a_stale_worker_cannot_commit(queue_redis, pool):
    store, _, _ = pool
    stale = announce_freeze_and_draw(store)
    store.take_draw_fence(POOL, DRAW_ID)  # a newer run took over
    with pytest.raises(StaleDrawWorker):
        draws.commit(store, POOL, DRAW_ID, stale, schedule(), DRAW_AT, TIMING)
    assert store.draw(POOL, DRAW_ID).state is draws.DrawState.DRAWN and store.offers(POOL) == {}
    # The newer run finishes the job.
    assert draws.run(store, POOL, DRAW_ID, DRAW_AT, TIMING) is draws.DrawState.PUBLISHED
    assert len(store.offers(POOL)) == 20


def test_entrants_are_those_waiting_before_the_cutoff(queue_redis, pool, run_jobs):
    store, _, _ = pool
    clock.reconcile_draws(queue_redis, store, DRAW_AT - datetime.timedelta(days=2))  # announced a draw ahead
    latecomers = register_people_late(store)
    run_clock_and_jobs(queue_redis, store, run_jobs, DRAW_AT + datetime.timedelta(seconds=5))
    record = draws.public_record(store, POOL, DRAW_ID)
    refs = {row["ref"] for row in record["entrants"]}
    assert len(refs) == 60 and not refs & {late.ref for late in latecomers}


def register_people_late(store):
    rng = random.Random(99)
    joined = DRAW_AT - datetime.timedelta(minutes=30)  # after the 60-minute cutoff
    form = {"family_name": "Late", "given_names": "Comer", "birth_date": "1980-02-02", "nationality": "TN",
            "email": "late@example.org", "phone": "+33612399999", "consent": "yes"}
    applicant = reg.parse_applicant(form, procedure_by_code("first_request"), ["bourg", "gex"], joined.date())
    created = reg.register(store, "01", "first_request", applicant, now=joined, rng=rng, identity_secret=SECRET,
                           limits=reg.Limits(4, datetime.timedelta(hours=24)), records=UploadedRecords(store, SECRET))
    reg.confirm_email(store, created.key, applicant.email, joined)
    return [created]


def test_urgent_renewals_are_drawn_first_for_their_share(store, reference_data):
    renewal = DrawSchedule(prefecture="01", procedure="renewal", timezone="Europe/Paris", cron="0 10 * * MON",
                           horizon_from_days=1, horizon_to_days=14, created_at=CREATED,
                           policy=DrawPolicy(urgency_window_days=30, urgency_share=0.5, constraints_apply=False))
    store.save_schedule(renewal)
    start = DRAW_AT + datetime.timedelta(days=2)
    store.add_slots([Slot(id=f"s{n}", prefecture="01", site="bourg", procedure="renewal",
                          starts_at=start + datetime.timedelta(minutes=30 * n), duration_minutes=30, counter=1)
                     for n in range(4)])
    records = UploadedRecords(store, SECRET)
    records.replace("01", DEMO_AGDREF_NUMBERS)
    joined = CREATED + datetime.timedelta(days=1)
    urgent_refs = set()
    for number, agdref in enumerate(DEMO_AGDREF_NUMBERS[:12]):
        expiry = (DRAW_AT + datetime.timedelta(days=10 if number < 2 else 200)).date().isoformat()
        form = {"family_name": f"Renew {chr(65 + number)}", "given_names": "X", "birth_date": "1985-05-05",
                "nationality": "DZ", "email": f"r{number}@example.org", "phone": f"+3361240{number:04d}",
                "agdref": agdref, "permit_expiry": expiry, "consent": "yes"}
        applicant = reg.parse_applicant(form, procedure_by_code("renewal"), ["bourg"], joined.date())
        created = reg.register(store, "01", "renewal", applicant, now=joined, rng=random.Random(number),
                               identity_secret=SECRET, limits=reg.Limits(4, datetime.timedelta(hours=24)),
                               records=records)
        reg.confirm_email(store, created.key, applicant.email, joined)
        if number < 2:
            urgent_refs.add(created.ref)
    due = draws.due_draws(renewal, None, DRAW_AT + datetime.timedelta(seconds=5))[0]
    draws.announce(store, renewal, due, DRAW_AT)
    assert draws.run(store, "01:renewal", due.draw_id, DRAW_AT, TIMING) is draws.DrawState.PUBLISHED
    record = draws.public_record(store, "01:renewal", due.draw_id)
    assert record["phases"] == [{"group": "urgent", "max_winners": 2}]
    assert urgent_refs <= {winner["ref"] for winner in record["winners"]}


def test_the_urgency_window_counts_from_the_draws_day_in_the_prefecture():
    """A draw run at 00:20 on Sunday in Paris (an admin's "draw now") is Sunday's, although it
    is still Saturday in UTC: counted from the UTC date, a permit expiring 30 days after that
    Sunday was 31 days away, and not urgent in a 30-day window."""
    policy = DrawPolicy(urgency_window_days=30, urgency_share=0.1)
    sunday_just_after_midnight_in_paris = datetime.datetime(2026, 11, 28, 23, 20, tzinfo=datetime.timezone.utc)
    in_30_days, in_31_days = datetime.date(2026, 12, 29), datetime.date(2026, 12, 30)
    assert draws.entrant_group(policy, in_30_days, sunday_just_after_midnight_in_paris, "Europe/Paris") == "urgent"
    assert draws.entrant_group(policy, in_31_days, sunday_just_after_midnight_in_paris, "Europe/Paris") is None
    assert draws.entrant_group(policy, in_30_days, sunday_just_after_midnight_in_paris, "UTC") is None  # Saturday's


def test_a_held_draw_is_published_only_when_released(queue_redis, pool, run_jobs):
    store, _, _ = pool
    fence = announce_freeze_and_draw(store)
    draws.commit(store, POOL, DRAW_ID, fence, schedule(), DRAW_AT, TIMING)
    # As the bias check does when it fails:
    store.update_draw_state(POOL, DRAW_ID, fence, draws.DrawState.COMMITTED, {"state": "held"})
    assert draws.public_record(store, POOL, DRAW_ID)["seed"] is None
    draws.release_held(store, POOL, DRAW_ID, DRAW_AT)
    assert draws.public_record(store, POOL, DRAW_ID)["seed"] is not None


def test_public_record_endpoint_and_page(client, queue_redis, pool, run_jobs):
    store, _, _ = pool
    run_clock_and_jobs(queue_redis, store, run_jobs, DRAW_AT + datetime.timedelta(seconds=5))
    record = client.get(f"/api/v1/draws/{DRAW_ID}/record").get_json()
    assert record["spec"] == "fairdraw/v1" and record["seed"]
    page = client.get(f"/draws/{DRAW_ID}", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert record["commitment"] in page and record["seed"] in page
    winner = record["winners"][0]["ref"]
    mine = client.get(f"/draws/{DRAW_ID}?ref={winner}", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "Drawn: an appointment on" in mine
    assert client.get("/api/v1/draws/nonsense/record").status_code == 404
    assert client.get("/api/v1/draws/01-renewal-20990101T1000/record").status_code == 404


def test_the_proof_lists_the_draws_entered(client, queue_redis, pool, run_jobs, settings):
    from queue_service.registration.tokens import status_token

    store, _, people = pool
    run_clock_and_jobs(queue_redis, store, run_jobs, DRAW_AT + datetime.timedelta(seconds=5))
    outcomes = set()
    for person in people:
        found = store.registration(person.key)
        token = status_token(settings.secret_key, person.key)
        proof = client.get("/api/v1/registration/proof", headers={"Authorization": f"Bearer {token}"}).get_json()
        (entered,) = proof["statement"]["draws"]
        assert entered["draw_id"] == DRAW_ID
        assert entered["outcome"] == ("offered" if found.status.value == "offered" else "not_drawn")
        assert (found.draws_entered, found.draws_lost) == ((1, 0) if entered["outcome"] == "offered" else (1, 1))
        outcomes.add(entered["outcome"])
    assert outcomes == {"offered", "not_drawn"}


def test_a_slot_cancelled_or_a_winner_gone_since_the_freeze_is_not_offered(queue_redis, pool):
    store, _, _ = pool
    fence = announce_freeze_and_draw(store)
    drawn = draws.drawn_winners(store, POOL, DRAW_ID)
    first, second = ({"ref": drawn["refs"][i], "slot": drawn["slots"][i]} for i in range(2))
    offer_rules.cancel_slot(store, POOL, first["slot"], DRAW_AT)  # staff cancel a slot after the freeze
    gone = store.registration_key_by_ref(POOL, second["ref"])
    reg.withdraw(store, gone, DRAW_AT)  # a winner withdraws after the freeze
    draws.commit(store, POOL, DRAW_ID, fence, schedule(), DRAW_AT, TIMING)
    draws.publish_or_hold(store, POOL, DRAW_ID, fence, DRAW_AT)
    offers = store.offers(POOL)
    assert first["slot"] not in {offer.slot_id for offer in offers.values()} and len(offers) == 18
    # The withdrawal's notice, then the draw's one outbox entry: it stands for a message to each
    # of the 18, not to the two left out.
    assert [m["kind"] for m in store.outbox(POOL)] == ["withdrawn", "draw_offers"]
    assert sorted(m["registration_id"] for m in draws.offer_messages(store, POOL, DRAW_ID)) == sorted(offers)
    record = draws.public_record(store, POOL, DRAW_ID)
    assert sorted(record["not_applied"]) == sorted([first["ref"], second["ref"]])
    slot_states = {slot.id: slot.status.value for slot in store.slots(POOL, DRAW_AT, DRAW_AT + datetime.timedelta(days=30))}
    # The withdrawn winner's slot waits for the next entrant of the draw's order; the cancelled one stays so.
    assert slot_states[first["slot"]] == "cancelled" and slot_states[second["slot"]] == "standby"
    assert store.standby_slots(POOL) == {second["slot"]: DRAW_ID}


def test_two_draws_over_the_same_slots_never_offer_one_twice(queue_redis, pool):
    store, _, _ = pool
    now_draw = draws.draw_now(schedule(), "01", "first_request", "Europe/Paris", DRAW_AT - datetime.timedelta(hours=2))
    scheduled = draws.due_draws(schedule(), None, DRAW_AT + datetime.timedelta(seconds=5))[0]
    for due in (scheduled, now_draw):
        draws.announce(store, schedule(), due, DRAW_AT - datetime.timedelta(days=1))
    fence = store.take_draw_fence(POOL, scheduled.draw_id)
    # Frozen, then its worker dies.
    draws.freeze(store, POOL, store.draw(POOL, scheduled.draw_id), schedule(), fence, DRAW_AT, TIMING)
    draws.run(store, POOL, now_draw.draw_id, DRAW_AT, TIMING)  # an admin's draw takes the same slots
    draws.run(store, POOL, scheduled.draw_id, DRAW_AT, TIMING)  # the first one resumes
    slots = [offer.slot_id for offer in store.offers(POOL).values()]
    assert len(slots) == len(set(slots)) == 20


def test_the_prefecture_page_links_to_the_next_and_last_draws(client, queue_redis, pool, run_jobs):
    store, _, _ = pool
    run_clock_and_jobs(queue_redis, store, run_jobs, DRAW_AT + datetime.timedelta(seconds=5))
    page = client.get("/p/01", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert f'href="/draws/{DRAW_ID}"' in page  # the last, published
    next_draw = DRAW_AT + datetime.timedelta(days=7)
    assert f'href="/draws/{draw_id_at(next_draw)}"' in page and f"Next draw: {english_day(next_draw)} 10:00" in page


def test_entrants_are_frozen_when_the_cutoff_passes_and_drawn_at_the_draw_time(queue_redis, pool, run_jobs):
    store, _, people = pool
    after_cutoff = DRAW_AT - datetime.timedelta(minutes=30)  # the cutoff is 60 minutes before the draw
    clock.reconcile_draws(queue_redis, store, DRAW_AT - datetime.timedelta(hours=2))
    assert store.draw(POOL, DRAW_ID).state is draws.DrawState.SCHEDULED
    clock.reconcile_draws(queue_redis, store, after_cutoff)
    clock.reconcile_draws(queue_redis, store, after_cutoff + datetime.timedelta(seconds=5))  # a second tick: no second freeze
    run_jobs()
    record = draws.public_record(store, POOL, DRAW_ID)
    assert record["state"] == "frozen" and record["entrants_digest"] and record["seed"] is None
    assert len(record["entrants"]) == 60

    # Someone frozen in who leaves before the draw is not given a slot; the others are.
    leaving = people[0]
    reg.withdraw(store, leaving.key, after_cutoff + datetime.timedelta(minutes=1))
    run_clock_and_jobs(queue_redis, store, run_jobs, DRAW_AT + datetime.timedelta(seconds=5))
    record = draws.public_record(store, POOL, DRAW_ID)
    assert record["state"] == "published" and len(record["entrants"]) == 60
    offered = {offer.ref for offer in store.offers(POOL).values()}
    assert leaving.ref not in offered
    assert len(offered) + len(record["not_applied"]) == 20


# Who enters: those waiting at the cutoff instant -------------------------------------------------


def expected_digest(people, weights: dict[str, str], policy) -> str:
    """The entrants digest of `weights` (ref -> weight), the others' rows as the freeze writes them."""
    return lottery.entrants_digest([
        lottery.Entrant(person.ref, weights[person.ref], None,
                        draws.entrant_accepts(policy, person.applicant.sites, person.applicant.half_days))
        for person in people if person.ref in weights
    ])


def test_entrants_are_those_waiting_at_the_cutoff_whenever_the_freeze_runs(drawn):
    """Issue 13: applicants whose offer was given back after the cutoff entered a draw they were not
    waiting for at the cutoff; and those who left after it were missing."""
    store, _, people = drawn
    aging = schedule(aging=1.0)
    store.save_schedule(aging)
    admin_draw = draws.draw_now(aging, "01", "first_request", "Europe/Paris", DRAW_AT + datetime.timedelta(hours=10))
    draws.announce(store, aging, admin_draw, DRAW_AT + datetime.timedelta(hours=10))
    cutoff = store.draw(POOL, admin_draw.draw_id).cutoff_at
    by_ref = {person.ref: person for person in people}
    winners = sorted(offer.ref for offer in store.offers(POOL).values())
    back_before, back_after = by_ref[winners[0]], by_ref[winners[1]]

    offer_rules.decline(store, back_before.key, aging, cutoff - datetime.timedelta(hours=1))
    offer_rules.decline(store, back_after.key, aging, cutoff + datetime.timedelta(minutes=1))
    # Their two slots go to two waiting losers; one declines it at once, the other keeps it.
    assert offer_rules.fill_standby(store, POOL, aging, TIMING, cutoff + datetime.timedelta(minutes=2)) == 2
    standby_takers = [by_ref[offer.ref] for offer in store.offers(POOL).values() if offer.standby]
    offer_rules.decline(store, standby_takers[0].key, aging, cutoff + datetime.timedelta(minutes=3))
    withdrawn = next(p for p in people if store.registration(p.key).status.value == "waiting"
                     and p.ref not in winners and p not in standby_takers)
    reg.withdraw(store, withdrawn.key, cutoff + datetime.timedelta(minutes=4))

    draws.freeze_at_cutoff(store, POOL, admin_draw.draw_id, cutoff + datetime.timedelta(minutes=5), TIMING)
    record = draws.public_record(store, POOL, admin_draw.draw_id)
    entered = {row["ref"] for row in record["entrants"]}
    assert back_after.ref not in entered  # back in the list a minute after the cutoff
    assert {back_before.ref, withdrawn.ref, *(p.ref for p in standby_takers)} <= entered
    # At the cutoff: the 20 who lost the first draw (one lost draw: weight 2 with aging 1), and the
    # winner who declined before it (the draw they won is not lost: weight 1).
    losers = {person.ref for person in people if person.ref not in winners}
    expected = {ref: "2" for ref in losers} | {back_before.ref: "1"}
    assert entered == set(expected)
    assert record["entrants_digest"] == expected_digest(people, expected, aging.policy)


def test_winners_of_a_draw_committed_after_the_cutoff_are_entrants_and_it_is_not_yet_lost(pool):
    """A draw committed between another's cutoff and its freeze (run by an admin, or caught up):
    its winners were waiting at that cutoff, and its losers had not lost it yet."""
    store, _, people = pool
    aging = schedule(aging=1.0)
    store.save_schedule(aging)
    scheduled = draws.due_draws(aging, None, DRAW_AT + datetime.timedelta(seconds=5))[0]
    draws.announce(store, aging, scheduled, DRAW_AT - datetime.timedelta(days=2))
    cutoff = store.draw(POOL, DRAW_ID).cutoff_at
    now_draw = draws.draw_now(aging, "01", "first_request", "Europe/Paris", cutoff + datetime.timedelta(minutes=30))
    draws.announce(store, aging, now_draw, cutoff + datetime.timedelta(minutes=30))
    draws.run(store, POOL, now_draw.draw_id, cutoff + datetime.timedelta(minutes=30), TIMING)  # after the cutoff
    assert store.draw(POOL, now_draw.draw_id).offered == 20
    declined = next(offer for offer in store.offers(POOL).values())
    offer_rules.decline(store, store.registration_key_by_ref(POOL, declined.ref), aging,
                        cutoff + datetime.timedelta(minutes=40))

    draws.freeze_at_cutoff(store, POOL, DRAW_ID, cutoff + datetime.timedelta(minutes=50), TIMING)
    record = draws.public_record(store, POOL, DRAW_ID)
    expected = {person.ref: "1" for person in people}  # all 60 waited at the cutoff, none had lost a draw
    assert {row["ref"]: row["weight"] for row in record["entrants"]} == expected
    assert record["entrants_digest"] == expected_digest(people, expected, aging.policy)


def test_a_wait_covers_the_instants_from_its_beginning_to_its_end():
    assert draws.waiting_at(10.0, 10.0, None) and draws.waiting_at(10.0, 5.0, 10.5)
    assert not draws.waiting_at(10.0, 10.5, None) and not draws.waiting_at(10.0, 5.0, 10.0)


def test_ended_waits_are_kept_as_long_as_closed_registrations(drawn):
    store, _, people = drawn
    waiting = next(p for p in people if store.registration(p.key).status.value == "waiting")
    reg.withdraw(store, waiting.key, DRAW_AT)
    assert store.redis.zcard(PoolKeys(POOL).waits_ended) == 1
    retention = datetime.timedelta(days=90)
    reg.purge(store, DRAW_AT + retention, retention)
    assert store.redis.zcard(PoolKeys(POOL).waits_ended) == 1
    reg.purge(store, DRAW_AT + retention + datetime.timedelta(seconds=1), retention)
    assert store.redis.zcard(PoolKeys(POOL).waits_ended) == 0


# A draw's deadline near the appointment ------------------------------------------------------------


def test_a_draws_offer_deadline_is_capped_by_the_cancellation_notice_and_leaves_time_to_answer():
    at, window, hours = DRAW_AT, datetime.timedelta(hours=48), lambda n: datetime.timedelta(hours=n)
    assert draws.offer_deadline(at, at + hours(96), window, TIMING) == at + window
    assert draws.offer_deadline(at, at + hours(48), window, TIMING) == at + hours(24)  # the notice comes first
    assert draws.offer_deadline(at, at + hours(36), window, TIMING) == at + hours(12)  # the minimum, just
    assert draws.offer_deadline(at, at + hours(36) - datetime.timedelta(seconds=1), window, TIMING) is None
    # A pool whose window is shorter than the minimum keeps its window.
    assert draws.offer_deadline(at, at + hours(96), hours(6), TIMING) == at + hours(6)
    assert draws.offer_deadline(at, at + hours(30) - datetime.timedelta(seconds=1), hours(6), TIMING) is None


def test_a_draw_committed_too_late_for_a_slots_notice_hands_that_slot_to_standby(pool):
    """A draw caught up after downtime: an offer whose slot's notice comes less than 12 hours after the
    commit is not made; its slot waits for the next entrant of the draw's order (standby)."""
    store, slots, _ = pool
    fence = announce_freeze_and_draw(store)  # frozen at the draw's time: every slot leaves 48 hours to answer
    late = DRAW_AT + datetime.timedelta(hours=40)
    draws.commit(store, POOL, DRAW_ID, fence, schedule(), late, TIMING)
    drawn = draws.drawn_winners(store, POOL, DRAW_ID)
    starts = {slot.id: slot.starts_at for slot in slots}
    too_soon = {slot_id for slot_id in drawn["slots"]
                if starts[slot_id] - TIMING.cancel_notice - late < TIMING.draw_min_answer}
    assert 0 < len(too_soon) < len(drawn["slots"])
    record = store.draw(POOL, DRAW_ID)
    assert set(record.not_applied) == {ref for ref, slot_id in zip(drawn["refs"], drawn["slots"])
                                       if slot_id in too_soon}
    assert store.standby_slots(POOL) == {slot_id: DRAW_ID for slot_id in too_soon}
    made = store.offers(POOL).values()
    assert len(made) == len(drawn["slots"]) - len(too_soon)
    # The others answer by their slot's notice, all earlier than the shared deadline of the late commit.
    assert all(offer.deadline == starts[offer.slot_id] - TIMING.cancel_notice < record.offers_deadline
               for offer in made)
    for ref in record.not_applied:
        assert store.registration(store.registration_key_by_ref(POOL, ref)).status.value == "waiting"
