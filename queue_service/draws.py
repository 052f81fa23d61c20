"""Draws: from announcement to the public record, each step applied once.

A draw is a state machine stored in Redis:

    scheduled  the seed is drawn and its commitment published (announced ahead of the cutoff)
    frozen     the entrants (waiting before the cutoff) and the slots of the horizon are fixed
    drawn      the lottery (queue_service/lottery.py) has chosen the winners
    committed  one Lua script: offers, slot and registration states, draws counted, outbox
    published  the seed is revealed and the public record served
    held       the bias check failed: staff must review before anything is published

The clock queues a freeze job when the cutoff passes and the draw job at the
draw's time (which freezes first if the freeze has not happened, e.g. when a
draw is caught up after downtime). Every step runs under a fencing token:
a job takes a new token when it starts, and the store refuses a step whose
token is not the latest, so a stale worker (one that was thought dead and
restarted) can never apply anything. A job run again, or after a crash at
any point, resumes from the stored state and reaches the same result, once.
"""

from __future__ import annotations

import datetime
import json
import math
import secrets
from dataclasses import dataclass
from enum import Enum

import numpy as np

from queue_service import fairness, lottery, schedules
from queue_service.errors import N_, InvalidTransition, UnknownDraw
from queue_service.reference import slot_class
from queue_service.schedules import DrawSchedule

URGENT_GROUP = "urgent"


class DrawState(str, Enum):
    SCHEDULED = "scheduled"
    FROZEN = "frozen"
    DRAWN = "drawn"
    COMMITTED = "committed"
    PUBLISHED = "published"
    HELD = "held"


class Trigger(str, Enum):
    SCHEDULE = "schedule"
    ADMIN = "admin"


@dataclass(frozen=True)
class DueDraw:
    """A draw the clock (or an admin) announces or runs."""

    prefecture: str
    procedure: str
    draw_id: str
    scheduled_at: datetime.datetime
    trigger: Trigger

    @property
    def pool(self) -> str:
        return f"{self.prefecture}:{self.procedure}"

    def announcement(self, schedule: DrawSchedule, now: datetime.datetime, seed: bytes) -> dict[str, str]:
        """The record of a newly announced draw: its secret seed and public commitment."""
        cutoff = schedules.entry_cutoff(schedule, self.scheduled_at)
        return {
            "draw_id": self.draw_id,
            "prefecture": self.prefecture,
            "procedure": self.procedure,
            "scheduled_at": self.scheduled_at.isoformat(),
            "cutoff_at": cutoff.isoformat(),
            "trigger": self.trigger.value,
            "state": DrawState.SCHEDULED.value,
            "seed": seed.hex(),
            "commitment": lottery.commitment(seed),
            "announced_at": now.isoformat(),
            # Announced after its cutoff (caught up after downtime, or run now):
            # the commitment could not be published before the entries froze.
            "late": "1" if now >= cutoff else "0",
        }


# Scheduling ------------------------------------------------------------------------

# At most this many draws of one pool are caught up per clock tick.
CATCH_UP_LIMIT = 100


def due_draws(schedule: DrawSchedule, reconciled_until: datetime.datetime | None, now: datetime.datetime) -> list[DueDraw]:
    """The scheduled draws in (reconciled_until, now]; from the schedule's creation when never reconciled.

    Draws missed while the service was down are caught up, oldest first, at
    most CATCH_UP_LIMIT at a time (see `reconciled_mark`).
    """
    since = reconciled_until or schedule.created_at
    return [
        _due(schedule, moment, Trigger.SCHEDULE)
        for moment in schedules.due_draw_times(schedule, since, now, limit=CATCH_UP_LIMIT)
    ]


def next_draw(schedule: DrawSchedule, now: datetime.datetime) -> DueDraw | None:
    """The pool's next draw, to announce (commit to its seed) before its entries close."""
    upcoming_times = schedules.next_draw_times(schedule, now, 1)
    return _due(schedule, upcoming_times[0], Trigger.SCHEDULE) if upcoming_times else None


def _due(schedule: DrawSchedule, moment: datetime.datetime, trigger: Trigger) -> DueDraw:
    draw_id = schedules.draw_id(schedule.prefecture, schedule.procedure, moment, schedule.timezone)
    return DueDraw(schedule.prefecture, schedule.procedure, draw_id, moment, trigger)


def reconciled_mark(due: list[DueDraw], now: datetime.datetime) -> datetime.datetime:
    """How far a pool is reconciled once `due` are claimed: `now`, unless the
    catch-up was cut at the limit, then the last draw claimed."""
    return due[-1].scheduled_at if len(due) >= CATCH_UP_LIMIT else now


def draw_now(schedule: DrawSchedule | None, prefecture: str, procedure: str, timezone: str, now: datetime.datetime) -> DueDraw:
    """A draw an admin runs now, on the same path as scheduled ones (its id is the current minute)."""
    if schedule is None:
        raise InvalidTransition(N_("Set the pool's draw schedule and policy before running a draw."))
    moment = now.replace(second=0, microsecond=0)
    draw_id = schedules.draw_id(prefecture, procedure, moment, timezone)
    return DueDraw(prefecture, procedure, draw_id, moment, Trigger.ADMIN)


def announce(store, schedule: DrawSchedule, due: DueDraw, now: datetime.datetime) -> bool:
    """Create the draw's record with a fresh secret seed, unless it exists; True if created."""
    return store.create_draw(due.pool, due.draw_id, due.announcement(schedule, now, secrets.token_bytes(32)))


def upcoming(store, schedule: DrawSchedule, now: datetime.datetime, count: int = 5) -> list[tuple[datetime.datetime, int]]:
    """The next draws and how many open slots each would offer, as published today."""
    pool = f"{schedule.prefecture}:{schedule.procedure}"
    planned = []
    for moment in schedules.next_draw_times(schedule, now, count):
        start, end = schedules.slot_horizon(schedule, moment)
        planned.append((moment, store.open_slot_count(pool, start, end)))
    return planned


# The draw job's steps --------------------------------------------------------------------


def freeze_at_cutoff(store, pool: str, draw_id: str, now: datetime.datetime) -> str:
    """The freeze job's body: fix the entrants once the cutoff has passed (safe to run twice)."""
    record = store.draw(pool, draw_id)
    if record is None:
        raise UnknownDraw()
    if record["state"] == DrawState.SCHEDULED.value:
        freeze(store, pool, record, store.schedule(pool), store.take_draw_fence(pool, draw_id), now)
    return store.draw(pool, draw_id)["state"]


def run(store, pool: str, draw_id: str, now: datetime.datetime) -> str:
    """Take the draw as far as it goes: freeze, draw, commit, publish (or hold). Returns the final state."""
    record = store.draw(pool, draw_id)
    if record is None:
        raise UnknownDraw()
    fence = store.take_draw_fence(pool, draw_id)
    schedule = store.schedule(pool)
    if record["state"] == DrawState.SCHEDULED.value:
        freeze(store, pool, record, schedule, fence, now)
    if store.draw(pool, draw_id)["state"] == DrawState.FROZEN.value:
        draw(store, pool, draw_id, fence, now)
    if store.draw(pool, draw_id)["state"] == DrawState.DRAWN.value:
        commit(store, pool, draw_id, fence, schedule, now)
    if store.draw(pool, draw_id)["state"] == DrawState.COMMITTED.value:
        publish_or_hold(store, pool, draw_id, fence, now)
    return store.draw(pool, draw_id)["state"]


def freeze(store, pool: str, record: dict, schedule: DrawSchedule, fence: int, now: datetime.datetime) -> None:
    """Fix the entrants (waiting since before the cutoff) and the open slots of the horizon."""
    scheduled_at = datetime.datetime.fromisoformat(record["scheduled_at"])
    cutoff = datetime.datetime.fromisoformat(record["cutoff_at"])
    start, end = schedules.slot_horizon(schedule, scheduled_at)
    slots = [slot for slot in store.slots(pool, start, end) if slot.status.value == "open"]
    frozen_slots = [lottery.Slot(slot.id, slot.slot_class(schedule.timezone)) for slot in slots]
    people = store.draw_candidates(pool, cutoff)
    entrants = [_entrant(person, schedule, scheduled_at) for person in people]
    urgent_cap = math.floor(schedule.policy.urgency_share * len(frozen_slots))
    phases = [lottery.Phase(URGENT_GROUP, urgent_cap)] if urgent_cap and any(e.group for e in entrants) else []
    frozen = {
        "entrants": [
            {"ref": e.ref, "weight": e.weight, "group": e.group, "accepts": None if e.accepts is None else list(e.accepts)}
            for e in entrants
        ],
        "slots": [{"id": s.id, "class": s.slot_class} for s in frozen_slots],
        "phases": [{"group": p.group, "max_winners": p.max_winners} for p in phases],
        # Private to the service: which registration each reference is, and what the bias check needs.
        "registrations": {person["ref"]: person["id"] for person in people},
        "joined_at": {person["ref"]: person["joined_at"] for person in people},
        "channels": {person["ref"]: person["channel"] for person in people},
    }
    changes = {
        "state": DrawState.FROZEN.value,
        "frozen_at": now.isoformat(),
        "entrants": str(len(entrants)),
        "urgent_entrants": str(sum(1 for e in entrants if e.group == URGENT_GROUP)),
        "slots": str(len(frozen_slots)),
        "entrants_digest": lottery.entrants_digest(entrants),
        "horizon_start": start.isoformat(),
        "horizon_end": end.isoformat(),
    }
    store.freeze_draw(pool, record["draw_id"], fence, json.dumps(frozen), changes)


def entrant_weight(policy, draws_lost: int) -> str:
    """An entrant's weight (a canonical decimal string): 1 + aging x draws lost."""
    return lottery.canonical_weight(1 + policy.aging * draws_lost)


def entrant_group(policy, permit_expiry: datetime.date | None, scheduled_at: datetime.datetime) -> str | None:
    """URGENT_GROUP for a permit expiring within the policy's window of the draw, else None."""
    if permit_expiry is None or not policy.urgency_window_days:
        return None
    days_left = (permit_expiry - scheduled_at.date()).days
    return URGENT_GROUP if days_left <= policy.urgency_window_days else None


def _entrant(person: dict, schedule: DrawSchedule, scheduled_at: datetime.datetime) -> lottery.Entrant:
    policy = schedule.policy
    weight = entrant_weight(policy, int(person["draws_lost"]))
    expiry = person.get("permit_expiry")
    group = entrant_group(policy, datetime.date.fromisoformat(expiry) if expiry else None, scheduled_at)
    accepts = None
    if policy.constraints_apply:
        accepts = tuple(slot_class(site, half_day) for site in person["sites"] for half_day in person["half_days"]) or None
    return lottery.Entrant(person["ref"], weight, group, accepts)


def frozen_inputs(frozen: dict) -> tuple[list[lottery.Entrant], list[lottery.Slot], list[lottery.Phase]]:
    entrants = lottery.entrants_from_rows(frozen["entrants"])
    slots = [lottery.Slot(row["id"], row["class"]) for row in frozen["slots"]]
    phases = [lottery.Phase(row["group"], row["max_winners"]) for row in frozen["phases"]]
    return entrants, slots, phases


def draw(store, pool: str, draw_id: str, fence: int, now: datetime.datetime) -> None:
    """Run the lottery on the frozen inputs; a pure function of them and the seed."""
    record = store.draw(pool, draw_id)
    frozen = json.loads(store.draw_frozen(pool, draw_id))
    entrants, slots, phases = frozen_inputs(frozen)
    result = lottery.run_draw(bytes.fromhex(record["seed"]), draw_id, entrants, slots, phases)
    registrations = frozen["registrations"]
    # The registration behind each winner is kept with the result (private; the record shows ref and slot).
    winners = [
        {"ref": ref, "slot": slot_id, "registration": registrations[ref]}
        for ref, slot_id in zip(result.winner_refs, result.slot_ids)
    ]
    changes = {"state": DrawState.DRAWN.value, "drawn_at": now.isoformat(), "winners": str(len(winners))}
    store.save_draw_result(pool, draw_id, fence, json.dumps(winners), changes)


def commit(store, pool: str, draw_id: str, fence: int, schedule: DrawSchedule, now: datetime.datetime) -> None:
    """Apply the result in one atomic step: offers, slots, counters, outbox."""
    winners = json.loads(store.draw_result(pool, draw_id))
    cutoff = datetime.datetime.fromisoformat(store.draw(pool, draw_id)["cutoff_at"])
    store.commit_draw(
        pool,
        draw_id,
        fence,
        winners=[(w["registration"], w["ref"], w["slot"]) for w in winners],
        cutoff=cutoff,
        deadline=now + datetime.timedelta(hours=schedule.confirmation_hours),
        now=now,
    )


def publish_or_hold(store, pool: str, draw_id: str, fence: int, now: datetime.datetime) -> None:
    """Check the winners against registration time and channel; publish, or hold for review."""
    frozen = json.loads(store.draw_frozen(pool, draw_id))
    winners = {winner["ref"] for winner in json.loads(store.draw_result(pool, draw_id))}
    reports = bias_reports(frozen, winners)
    summary = json.dumps(
        [{"test": r.test, "p_value": r.p_value, "chi_square": r.chi_square, "suspicious": r.suspicious} for r in reports]
    )
    held = fairness.is_suspicious(reports)
    state = DrawState.HELD if held else DrawState.PUBLISHED
    store.update_draw_state(
        pool, draw_id, fence, DrawState.COMMITTED.value, {"state": state.value, f"{state.value}_at": now.isoformat(),
                                                          "bias_check": summary}
    )


def bias_reports(frozen: dict, winners: set[str]) -> list:
    refs = [row["ref"] for row in frozen["entrants"]]
    if not refs or not winners:
        return []
    return fairness.check_draw(
        np.array([frozen["joined_at"][ref] for ref in refs], dtype=float),
        np.array([frozen["channels"][ref] for ref in refs]),
        np.array([float(row["weight"]) for row in frozen["entrants"]]),
        np.array([ref in winners for ref in refs]),
    )


def release_held(store, pool: str, draw_id: str, now: datetime.datetime, by: str = "") -> None:
    """Staff reviewed a held draw and found it sound: publish it (`by`: the account that decided)."""
    changes = {"state": DrawState.PUBLISHED.value, "published_at": now.isoformat(), "released_by": by}
    if not store.update_draw_state(pool, draw_id, None, DrawState.HELD.value, changes):
        raise InvalidTransition(N_("Only a held draw can be released."))


# The public record ----------------------------------------------------------------------------


def public_record(store, pool: str, draw_id: str) -> dict:
    """The draw's public record (DESIGN.md): before publication, the commitment and what is frozen so far."""
    record = store.draw(pool, draw_id)
    if record is None:
        raise UnknownDraw()
    state = DrawState(record["state"])
    frozen_text = store.draw_frozen(pool, draw_id)
    frozen = json.loads(frozen_text) if frozen_text else None
    published = state is DrawState.PUBLISHED
    winners = (
        [{"ref": w["ref"], "slot": w["slot"]} for w in json.loads(store.draw_result(pool, draw_id))] if published else None
    )
    return {
        "spec": lottery.SPEC,
        "draw_id": draw_id,
        "commitment": record["commitment"],
        "seed": record["seed"] if published else None,
        "beacon": None,
        "entrants_digest": record.get("entrants_digest"),
        "entrants": sorted(frozen["entrants"], key=lambda row: row["ref"]) if frozen else None,
        "slots": sorted(frozen["slots"], key=lambda row: row["id"]) if frozen else None,
        "phases": frozen["phases"] if frozen else None,
        "winners": winners,
        # Winners who had left the waiting list, or whose slot was cancelled, since the freeze.
        "not_applied": json.loads(record.get("not_applied") or "[]") if published else None,
        "state": state.value,
        "prefecture": record["prefecture"],
        "procedure": record["procedure"],
        "scheduled_at": record["scheduled_at"],
        "cutoff_at": record["cutoff_at"],
        "announced_at": record["announced_at"],
        "announced_late": record.get("late") == "1",
        "statistics": {
            "entrants": int(record.get("entrants", 0) or 0),
            "slots": int(record.get("slots", 0) or 0),
            "winners": int(record.get("winners", 0) or 0),
        },
    }


def own_key(record: dict, ref: str) -> dict | None:
    """An entrant's key and outcome recomputed from a published record, for the draw's public page."""
    if record["seed"] is None or record["entrants"] is None:
        return None
    row = next((row for row in record["entrants"] if row["ref"] == ref), None)
    if row is None:
        return None
    key = lottery.entrant_key(bytes.fromhex(record["seed"]), record["draw_id"], ref, row["weight"])
    slot = next((winner["slot"] for winner in record["winners"] or [] if winner["ref"] == ref), None)
    return {"ref": ref, "weight": row["weight"], "key": key, "won": slot is not None, "slot": slot}
