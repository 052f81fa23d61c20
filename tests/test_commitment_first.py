"""The commitment comes before the entrants (issue 18, item 4): a draw run now is announced at
once and closes its entries a short delay later; a draw caught up after downtime closes its
entries at its announcement. No new record says `announced_late`; old ones still show and verify.

On the real Redis, with the clock and the jobs as they run (tests/conftest.py).
"""

import dataclasses
import datetime
import json
import subprocess
import sys

from helpers import DRAW_AT, DRAW_ID, POOL, TIMING, draw_id_at, register_people, schedule

from queue_service import draws, verify
from queue_service import registration as reg
from queue_service.draws import DrawState, Trigger
from queue_service.inventory.slots import Slot
from queue_service.store.draws import draw_fields, draw_from_fields
from queue_service.store.keys import PoolKeys
from worker import clock, jobs
from worker.queues import DRAWS, queue

# An admin runs a draw the day before the scheduled one (which the clock announces meanwhile).
STARTED = DRAW_AT - datetime.timedelta(days=1)
SECOND = datetime.timedelta(seconds=1)


def run_now(redis, settings, moment=STARTED, delay_seconds=60):
    """Start a draw now as the staff page does; returns it (its id names `moment`'s minute) and
    whether this call started it."""
    due = draws.draw_now(schedule(), "01", "first_request", "Europe/Paris", moment)
    started = jobs.start_draw_now(redis, schedule(), due, moment,
                                  settings.replace(run_now_entry_delay_seconds=delay_seconds))
    return due, started


def draw_jobs(redis) -> list[str]:
    return [job_id for job_id in queue(DRAWS, redis).job_ids if job_id.startswith("draw-")]


def entrant_refs(store, draw_id: str) -> set[str]:
    return {row["ref"] for row in draws.public_record(store, POOL, draw_id)["entrants"]}


# Run now ---------------------------------------------------------------------------------------


def test_a_draw_run_now_is_announced_at_once_and_runs_only_once_its_entries_close(redis, pool, run_jobs, settings):
    store, _, people = pool
    due, started = run_now(redis, settings)
    assert started
    record = draws.public_record(store, POOL, due.draw_id)
    # The commitment is public at once, a minute before the entries close; the draw runs then.
    assert record["state"] == "scheduled" and len(record["commitment"]) == 64 and record["seed"] is None
    assert record["announced_late"] is False and record["trigger"] == "admin"
    assert record["announced_at"] == STARTED.isoformat()
    assert record["cutoff_at"] == record["scheduled_at"] == (STARTED + 60 * SECOND).isoformat()
    assert record["scheduled_cutoff_at"] is None
    commitment = record["commitment"]

    # Nothing runs before the cutoff, however often the worker and the clock look.
    assert draw_jobs(redis) == []
    run_jobs()
    assert due.draw_id not in clock.reconcile_draws(redis, store, STARTED + 59 * SECOND)
    run_jobs()
    assert store.draw(POOL, due.draw_id).state is DrawState.SCHEDULED and draw_jobs(redis) == []

    # Who enters: everyone waiting when the entries close, so someone who registers between the
    # click and the cutoff too; not someone who registers after it.
    (meanwhile,) = register_people(store, 1, STARTED + 30 * SECOND, first=60)
    (too_late,) = register_people(store, 1, STARTED + 61 * SECOND, first=61)

    assert clock.reconcile_draws(redis, store, STARTED + 60 * SECOND) == [due.draw_id]
    assert clock.reconcile_draws(redis, store, STARTED + 61 * SECOND) == []  # another clock, or the next tick
    assert draw_jobs(redis) == [f"draw-{due.draw_id}"]
    run_jobs()
    record = draws.public_record(store, POOL, due.draw_id)
    assert record["state"] == "published" and record["commitment"] == commitment
    assert entrant_refs(store, due.draw_id) == {person.ref for person in people} | {meanwhile.ref}
    assert too_late.ref not in entrant_refs(store, due.draw_id)
    assert verify.check_record(json.loads(json.dumps(record))).ok


def test_the_same_confirmation_sent_twice_starts_one_draw(redis, pool, run_jobs, settings):
    store, _, _ = pool
    due, first = run_now(redis, settings)
    before = store.draw(POOL, due.draw_id)
    # The form sent again 20 seconds later names the same minute, so the same draw.
    again, second = run_now(redis, settings, moment=STARTED + 20 * SECOND)
    assert again.draw_id == due.draw_id and (first, second) == (True, False)
    assert store.draw(POOL, due.draw_id) == before  # nothing changed: the same seed, the same cutoff
    clock.reconcile_draws(redis, store, STARTED + 90 * SECOND)
    run_jobs()
    admin_draws = [draw for draw in store.draws(POOL) if draw.trigger is Trigger.ADMIN]
    assert [(draw.draw_id, draw.state) for draw in admin_draws] == [(due.draw_id, DrawState.PUBLISHED)]


def test_with_no_delay_the_entries_close_at_the_announcement_and_the_job_is_queued_at_once(redis, pool, run_jobs,
                                                                                          settings):
    store, _, people = pool
    due, started = run_now(redis, settings, delay_seconds=0)
    record = store.draw(POOL, due.draw_id)
    assert started and record.cutoff_at == record.announced_at == record.scheduled_at == STARTED
    assert not record.announced_late and draw_jobs(redis) == [f"draw-{due.draw_id}"]
    (after,) = register_people(store, 1, STARTED + SECOND, first=60)
    assert clock.reconcile_draws(redis, store, STARTED + SECOND) == []  # claimed already: not queued twice
    run_jobs()
    assert store.draw(POOL, due.draw_id).state is DrawState.PUBLISHED
    assert entrant_refs(store, due.draw_id) == {person.ref for person in people}
    assert after.ref not in entrant_refs(store, due.draw_id)


def test_a_draw_run_now_runs_once_after_the_clock_was_down_and_restarted(redis, pool, run_jobs, settings):
    store, _, _ = pool
    due, _ = run_now(redis, settings)
    # The clock was down from the click until ten minutes later, and lost its reconciliation mark.
    store.redis.delete(PoolKeys(POOL).reconciled)
    later = STARTED + datetime.timedelta(minutes=10)
    assert due.draw_id in clock.reconcile_draws(redis, store, later)
    assert due.draw_id not in clock.reconcile_draws(redis, store, later + SECOND)
    run_jobs()
    assert store.draw(POOL, due.draw_id).state is DrawState.PUBLISHED
    assert store.draws_to_run(POOL, later + datetime.timedelta(days=1)) == []


# Caught up after downtime --------------------------------------------------------------------------


def test_a_draw_missed_while_the_clock_was_down_closes_its_entries_at_its_announcement(redis, pool, run_jobs,
                                                                                       client):
    """Its commitment could not come before its scheduled cutoff; it comes before the entrants
    are fixed: those waiting at the announcement. The scheduled cutoff stays in the record."""
    store, _, people = pool
    (latecomer,) = register_people(store, 1, DRAW_AT - datetime.timedelta(minutes=30), first=60)  # after that cutoff
    leaving = people[0]
    reg.withdraw(store, leaving.key, DRAW_AT - datetime.timedelta(minutes=10))  # waiting at that cutoff, not after
    back = DRAW_AT + datetime.timedelta(hours=2)  # the clock comes back
    assert clock.reconcile_draws(redis, store, back) == [DRAW_ID]
    record = store.draw(POOL, DRAW_ID)
    assert not record.announced_late and record.cutoff_at == record.announced_at == back
    assert record.scheduled_cutoff_at == DRAW_AT - datetime.timedelta(hours=1) and record.scheduled_at == DRAW_AT
    run_jobs()
    published = draws.public_record(store, POOL, DRAW_ID)
    assert published["state"] == "published" and published["announced_late"] is False
    assert published["scheduled_cutoff_at"] == (DRAW_AT - datetime.timedelta(hours=1)).isoformat()
    assert entrant_refs(store, DRAW_ID) == {person.ref for person in people[1:]} | {latecomer.ref}
    report = verify.check_record(json.loads(json.dumps(published)))
    assert report.ok and any("came first" in note for note in report.notes)
    page = client.get(f"/draws/{DRAW_ID}", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert 'id="moved-cutoff"' in page and "the commitment still came first" in page
    assert 'id="announced-late"' not in page


def later_slots(store, first_day: datetime.datetime, count: int, prefix: str) -> list[Slot]:
    slots = [Slot(id=f"{prefix}-{number:02d}", prefecture="01", site="bourg", procedure="first_request",
                  starts_at=first_day + datetime.timedelta(minutes=30 * number), duration_minutes=30, counter=1)
             for number in range(count)]
    store.add_slots(slots)
    return slots


def test_a_draw_missed_by_days_offers_only_the_slots_its_winners_can_still_answer(redis, pool, run_jobs):
    """Caught up four days late, the slots of its horizon that started meanwhile (or leave no
    time to answer) are left out at the freeze, as they would be from a draw held now."""
    store, early_slots, _ = pool  # three days after the draw: gone by the time it is caught up
    still_open = later_slots(store, DRAW_AT + datetime.timedelta(days=8), 5, "late")
    back = DRAW_AT + datetime.timedelta(days=4)
    assert clock.reconcile_draws(redis, store, back) == [DRAW_ID]
    run_jobs()
    record = draws.public_record(store, POOL, DRAW_ID)
    assert record["state"] == "published" and record["announced_late"] is False
    assert {slot["id"] for slot in record["slots"]} == {slot.id for slot in still_open}
    assert len(record["winners"]) == 5 and record["not_applied"] == []


def test_two_draws_missed_are_announced_together_and_share_their_entrants(redis, pool, run_jobs):
    """The rule pinned (docs/lottery.md §13): both close their entries at the same announcement;
    the earlier one's winners also enter the later one, which does not offer them a second slot."""
    store, _, _ = pool
    later_slots(store, DRAW_AT + datetime.timedelta(days=8), 5, "week2")  # in the first draw's horizon
    later_slots(store, DRAW_AT + datetime.timedelta(days=15), 5, "week3")  # in the second's only
    back = DRAW_AT + datetime.timedelta(days=8)
    second_id = draw_id_at(DRAW_AT + datetime.timedelta(days=7))
    assert clock.reconcile_draws(redis, store, back) == [DRAW_ID, second_id]
    run_jobs()
    first, second = store.draw(POOL, DRAW_ID), store.draw(POOL, second_id)
    assert first.cutoff_at == second.cutoff_at == back and not (first.announced_late or second.announced_late)
    assert first.state is second.state is DrawState.PUBLISHED and first.entrants == second.entrants == 60
    first_winners = set(draws.drawn_winners(store, POOL, DRAW_ID)["refs"])
    assert set(second.not_applied) <= first_winners
    offers = store.offers(POOL)
    assert len(offers) == first.offered + second.offered  # one offer per registration (one hash field each)
    assert len({offer.slot_id for offer in offers.values()}) == len(offers)


def test_a_schedule_saved_within_the_cutoff_announces_its_draw_with_the_entries_closing_then(redis, pool):
    store, _, _ = pool
    saved = DRAW_AT - datetime.timedelta(minutes=30)  # 30 minutes before a draw whose cutoff is 60 minutes before
    store.save_schedule(dataclasses.replace(schedule(), created_at=saved))
    clock.reconcile_draws(redis, store, saved)
    record = store.draw(POOL, DRAW_ID)
    assert not record.announced_late and record.cutoff_at == record.announced_at == saved
    assert record.scheduled_cutoff_at == DRAW_AT - datetime.timedelta(hours=1) and record.scheduled_at == DRAW_AT
    assert queue(DRAWS, redis).job_ids == [f"freeze-{DRAW_ID}"]  # the entrants are fixed now


# Records written before ------------------------------------------------------------------------


def test_an_old_late_record_still_shows_so_and_verifies(redis, pool, client, tmp_path):
    """Caught up by an older version: its cutoff the scheduled one, its announcement after it."""
    store, _, _ = pool
    due = draws.due_draws(schedule(), None, DRAW_AT + SECOND)[0]
    announced = due.announcement(schedule(), DRAW_AT - datetime.timedelta(days=2), bytes(range(32)))
    old = dataclasses.replace(announced, announced_at=DRAW_AT + 5 * SECOND, announced_late=True)
    assert store.create_draw(POOL, old)
    assert draws.run(store, POOL, DRAW_ID, DRAW_AT + 5 * SECOND, TIMING) is DrawState.PUBLISHED
    record = client.get(f"/api/v1/draws/{DRAW_ID}/record").get_json()
    assert record["announced_late"] is True and record["scheduled_cutoff_at"] is None
    page = client.get(f"/draws/{DRAW_ID}", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert 'id="announced-late"' in page and 'id="moved-cutoff"' not in page
    path = tmp_path / "record.json"
    path.write_text(json.dumps(record))
    verified = subprocess.run([sys.executable, "-m", "queue_service.verify", str(path)], capture_output=True, text=True)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "note: announced late" in verified.stdout and verified.stdout.rstrip().splitlines()[-1].startswith("OK")


def test_the_record_codec_keeps_the_scheduled_cutoff(store, reference_data):
    store.save_schedule(schedule())
    due = draws.due_draws(schedule(), None, DRAW_AT + SECOND)[0]
    record = due.announcement(schedule(), DRAW_AT + SECOND, bytes(32))
    assert record.scheduled_cutoff_at == DRAW_AT - datetime.timedelta(hours=1)
    assert draw_from_fields(draw_fields(record)) == record
    assert store.create_draw(POOL, record) and store.draw(POOL, DRAW_ID) == record


def test_the_entry_times_rule(pool):
    """Every announcement: the entries close at or after it; the draw runs at or after they close."""
    plan = schedule()
    scheduled = draws.due_draws(plan, None, DRAW_AT + SECOND)[0]
    admin = draws.draw_now(plan, "01", "first_request", "Europe/Paris", STARTED)
    for moment in (DRAW_AT - datetime.timedelta(days=2), DRAW_AT - datetime.timedelta(minutes=61),
                   DRAW_AT - datetime.timedelta(minutes=1), DRAW_AT + datetime.timedelta(days=3)):
        runs, closes, planned = scheduled.entry_times(plan, moment)
        assert moment <= closes and runs == DRAW_AT
        assert (planned is None) is (moment <= DRAW_AT - datetime.timedelta(hours=1))
    for delay in (0, 1, 60, 3600):
        runs, closes, planned = admin.entry_times(plan, STARTED, datetime.timedelta(seconds=delay))
        assert runs == closes == STARTED + datetime.timedelta(seconds=delay) and planned is None
