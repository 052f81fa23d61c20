"""Draws: from announcement to the public record, each step applied once.

A draw is a state machine stored in Redis:

    scheduled  the seed is drawn and its commitment published (announced before its entries close)
    frozen     the entrants (waiting at the cutoff) and the slots of the horizon are fixed
    drawn      the lottery (queue_service/draws/lottery.py) has chosen the winners
    committed  one Lua script: offers, slot and registration states, draws counted, outbox
    published  the seed is revealed and the public record served
    held       the bias check failed: staff must review before anything is published

The commitment always comes before the entries close (`DueDraw.entry_times`):
a scheduled draw is announced a draw ahead; one announced after its scheduled
cutoff (caught up after downtime) closes its entries at its announcement; one
an admin runs now closes them a short delay after it, and runs then.

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
from zoneinfo import ZoneInfo

import numpy as np

from queue_service.draws import fairness, lottery, schedules
from queue_service.draws.frozen import FrozenDraw
from queue_service.draws.schedules import DrawSchedule
from queue_service.errors import N_, InvalidTransition, UnknownDraw
from queue_service.inventory.slots import SlotStatus
from queue_service.pools import PoolId
from queue_service.reference import slot_class

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
class Draw:
    """A draw's record, as the store keeps it (store/draws.py reads and writes it).

    Each step adds its fields: those of the steps not yet taken are None.
    """

    # Announced (DueDraw.announcement).
    draw_id: str
    prefecture: str
    procedure: str
    state: DrawState
    trigger: Trigger
    scheduled_at: datetime.datetime
    cutoff_at: datetime.datetime  # entries close
    seed: str  # hex; secret until the draw is published
    commitment: str  # hex SHA-256 of the seed, public from the announcement
    announced_at: datetime.datetime
    # Announced after its cutoff, the commitment too late to bind the entries. Only records written
    # before announcements moved the cutoff (entry_times) say so; they are still shown and verified.
    announced_late: bool = False
    # The cutoff its schedule set, when it was announced after it (caught up after downtime): its
    # entries closed at the announcement instead (cutoff_at), kept to be shown.
    scheduled_cutoff_at: datetime.datetime | None = None
    # Claimed by the clock, once each (worker/jobs.py).
    freeze_claimed_at: datetime.datetime | None = None
    run_claimed_at: datetime.datetime | None = None
    # Frozen.
    frozen_at: datetime.datetime | None = None
    entrants: int | None = None
    urgent_entrants: int | None = None
    slots: int | None = None
    entrants_digest: str | None = None
    horizon_start: datetime.datetime | None = None
    horizon_end: datetime.datetime | None = None
    # Drawn.
    drawn_at: datetime.datetime | None = None
    winners: int | None = None
    # Committed (store/scripts/commit_draw.lua).
    committed_at: datetime.datetime | None = None
    offered: int | None = None
    offers_deadline: datetime.datetime | None = None  # the deadline its offers share (a slot starting sooner: its own)
    # Winners' refs left out: no longer waiting, their slot gone, or (a late commit) too soon to answer.
    not_applied: tuple[str, ...] | None = None
    # Published, or held by the bias check (then published when staff release it).
    published_at: datetime.datetime | None = None
    held_at: datetime.datetime | None = None
    bias_check: tuple[dict, ...] | None = None  # one report per test: test, p_value, chi_square, suspicious
    released_by: str | None = None  # the staff account that released it after review


# A draw run now with no entry delay closes its entries at its announcement.
NO_DELAY = datetime.timedelta(0)


@dataclass(frozen=True)
class DueDraw:
    """A draw the clock (or an admin) announces or runs.

    `scheduled_at` is the time its schedule names or, for a draw run now, the minute its
    confirmation showed: its id names that minute, and it runs when its entries close.
    """

    prefecture: str
    procedure: str
    draw_id: str
    scheduled_at: datetime.datetime
    trigger: Trigger

    @property
    def pool(self) -> str:
        return PoolId.of(self.prefecture, self.procedure)

    def entry_times(self, schedule: DrawSchedule, now: datetime.datetime, entry_delay: datetime.timedelta = NO_DELAY
                    ) -> tuple[datetime.datetime, datetime.datetime, datetime.datetime | None]:
        """When the draw announced at `now` runs, when its entries close, and the cutoff its
        schedule set if the announcement comes after it (else None).

        The commitment, published at the announcement, always comes before the
        entries close. A draw run now closes them `entry_delay` after it and runs
        then. A scheduled draw closes them at its cutoff, cutoff_minutes before it;
        announced after that (caught up after downtime, or its schedule saved
        within the cutoff), at the announcement itself, however late: those
        waiting then enter (docs/lottery.md §13, "When the draw is announced").
        """
        if self.trigger is Trigger.ADMIN:
            closes = now + entry_delay
            return closes, closes, None
        planned = schedules.entry_cutoff(schedule, self.scheduled_at)
        if now <= planned:
            return self.scheduled_at, planned, None
        return self.scheduled_at, now, planned

    def announcement(self, schedule: DrawSchedule, now: datetime.datetime, seed: bytes,
                     entry_delay: datetime.timedelta = NO_DELAY) -> Draw:
        """The record of a newly announced draw: its secret seed and public commitment (`entry_times`)."""
        scheduled_at, cutoff, scheduled_cutoff = self.entry_times(schedule, now, entry_delay)
        return Draw(
            draw_id=self.draw_id,
            prefecture=self.prefecture,
            procedure=self.procedure,
            state=DrawState.SCHEDULED,
            trigger=self.trigger,
            scheduled_at=scheduled_at,
            cutoff_at=cutoff,
            seed=seed.hex(),
            commitment=lottery.commitment(seed),
            announced_at=now,
            scheduled_cutoff_at=scheduled_cutoff,
        )


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


# A "run now" confirmation page names its draw (the minute it was shown) for this long: sent
# later, it is refused and shown again, rather than running a draw nobody saw.
RUN_NOW_CONFIRMATION = datetime.timedelta(minutes=15)


def draw_now(schedule: DrawSchedule | None, prefecture: str, procedure: str, timezone: str, now: datetime.datetime,
             at: datetime.datetime | None = None) -> DueDraw:
    """A draw an admin runs now, on the same path as scheduled ones. Its id is its minute: `at`,
    the minute the confirmation page showed (so that the draw created is the one it named, and
    the same confirmation sent twice names the same draw, run once), or the current minute.
    Announced, it closes its entries a short delay later and runs then (`DueDraw.entry_times`)."""
    if schedule is None:
        raise InvalidTransition(N_("Set the pool's draw schedule and policy before running a draw."))
    moment = (at or now).replace(second=0, microsecond=0)
    if not now - RUN_NOW_CONFIRMATION <= moment <= now:
        raise InvalidTransition(N_("This confirmation is too old or not valid: open the page again to run a draw."))
    draw_id = schedules.draw_id(prefecture, procedure, moment, timezone)
    return DueDraw(prefecture, procedure, draw_id, moment, Trigger.ADMIN)


def run_now_preview(store, due: DueDraw, now: datetime.datetime, entry_delay: datetime.timedelta) -> dict:
    """What the confirmation of a draw run now says: how many wait now, and, confirmed now, when
    its entries would close and it would run (`entry_delay` later). Everyone waiting then
    enters: those who join meanwhile too, not those who leave."""
    return {"waiting": store.waiting_count(due.pool), "entry_delay_seconds": round(entry_delay.total_seconds()),
            "cutoff": now + entry_delay}


def announce(store, schedule: DrawSchedule, due: DueDraw, now: datetime.datetime,
             entry_delay: datetime.timedelta = NO_DELAY, *, seed: bytes | None = None) -> bool:
    """Create the draw's record with a fresh secret seed, unless it exists; True if created.

    A draw run now (`entry_delay`: see `DueDraw.entry_times`) is also listed among the pool's
    draws to run when its entries close: no schedule names it, so the clock finds it there.
    `seed` is for tests that must replay a draw exactly; the service always draws a fresh one."""
    record = due.announcement(schedule, now, secrets.token_bytes(32) if seed is None else seed, entry_delay)
    run_at = record.scheduled_at if due.trigger is Trigger.ADMIN else None
    return store.create_draw(due.pool, record, run_at=run_at)


def upcoming(store, schedule: DrawSchedule, now: datetime.datetime, count: int = 5,
             timing=None) -> list[tuple[datetime.datetime, int]]:
    """The next draws and how many open slots each would offer, as published today, counted as
    their freezes will count them (coming_slot_ranges)."""
    pool = PoolId.of(schedule.prefecture, schedule.procedure)
    times = schedules.next_draw_times(schedule, now, count)
    return list(zip(times, store.open_slot_counts(pool, coming_slot_ranges(schedule, times, timing))))


def coming_slot_ranges(schedule: DrawSchedule, times: list[datetime.datetime], timing=None
                       ) -> list[tuple[datetime.datetime, datetime.datetime]]:
    """The start times of the slots each coming draw (at `times`, in order) will offer: its
    horizon, less what an earlier of these draws offers first (a slot in two horizons goes to
    the earlier draw), less, given the offers' `timing`, the slots too close to answer an offer
    made at the draw (offer_deadline), as its freeze leaves them out. Every page that counts a
    coming draw's slots counts them so, and the draw then offers that many if nothing changes."""
    confirmation = datetime.timedelta(hours=schedule.confirmation_hours)
    ranges, covered_until = [], None
    for moment in times:
        start, end = schedules.slot_horizon(schedule, moment)
        if covered_until is not None:
            start = max(start, covered_until)
        if timing is not None:
            start = max(start, moment + timing.cancel_notice + min(timing.draw_min_answer, confirmation))
        ranges.append((start, max(start, end)))
        covered_until = end if covered_until is None else max(end, covered_until)
    return ranges


# The draw job's steps --------------------------------------------------------------------


def freeze_at_cutoff(store, pool: str, draw_id: str, now: datetime.datetime, timing) -> DrawState:
    """The freeze job's body: fix the entrants once the cutoff has passed (safe to run twice).

    `timing` is the offers' timing (offers.OfferTiming), for `offer_deadline`."""
    record = store.draw(pool, draw_id)
    if record is None:
        raise UnknownDraw()
    if record.state is DrawState.SCHEDULED:
        freeze(store, pool, record, store.schedule(pool), store.take_draw_fence(pool, draw_id), now, timing)
    return store.draw(pool, draw_id).state


def run(store, pool: str, draw_id: str, now: datetime.datetime, timing) -> DrawState:
    """Take the draw as far as it goes: freeze, draw, commit, publish (or hold). Returns the final state.

    `timing` is the offers' timing (offers.OfferTiming), for `offer_deadline`."""
    record = store.draw(pool, draw_id)
    if record is None:
        raise UnknownDraw()
    fence = store.take_draw_fence(pool, draw_id)
    schedule = store.schedule(pool)
    if record.state is DrawState.SCHEDULED:
        freeze(store, pool, record, schedule, fence, now, timing)
    if store.draw(pool, draw_id).state is DrawState.FROZEN:
        draw(store, pool, draw_id, fence, now)
    if store.draw(pool, draw_id).state is DrawState.DRAWN:
        commit(store, pool, draw_id, fence, schedule, now, timing)
    if store.draw(pool, draw_id).state is DrawState.COMMITTED:
        publish_or_hold(store, pool, draw_id, fence, now)
    return store.draw(pool, draw_id).state


def offer_deadline(offered_at: datetime.datetime, slot_start: datetime.datetime, confirmation: datetime.timedelta,
                   timing) -> datetime.datetime | None:
    """When a draw's offer of a slot starting at `slot_start`, made at `offered_at`, must be answered;
    None when the slot cannot be offered.

    The pool's confirmation window, but never later than the booking's
    cancellation notice before the slot (`timing.cancel_notice`): a winner
    must not hold a slot past the moment a booking of it could still be given
    back (the same rule as standby, offers.fill_standby). When that leaves
    less than `timing.draw_min_answer` to answer (or less than the pool's
    window, if that is shorter), the draw does not offer the slot.
    """
    deadline = min(offered_at + confirmation, slot_start - timing.cancel_notice)
    if deadline - offered_at < min(timing.draw_min_answer, confirmation):
        return None
    return deadline


def freeze(store, pool: str, record: Draw, schedule: DrawSchedule, fence: int, now: datetime.datetime,
           timing) -> None:
    """Fix the entrants (those waiting at the cutoff) and the open slots of the horizon that leave
    time to answer an offer made at the draw's time (`offer_deadline`): for a draw caught up after
    downtime, whose entries closed at its announcement after its time, at that cutoff."""
    scheduled_at, cutoff = record.scheduled_at, record.cutoff_at
    offered_at = max(scheduled_at, cutoff)
    start, end = schedules.slot_horizon(schedule, scheduled_at)
    confirmation = datetime.timedelta(hours=schedule.confirmation_hours)
    slots = [slot for slot in store.slots(pool, start, end) if slot.status is SlotStatus.OPEN
             and offer_deadline(offered_at, slot.starts_at, confirmation, timing) is not None]
    frozen_slots = lottery.SlotColumns([slot.id for slot in slots], [slot.slot_class(schedule.timezone) for slot in slots])
    frozen = frozen_draw(waiting_at_cutoff(store, pool, cutoff), schedule, scheduled_at, frozen_slots)
    urgent = len(frozen.entrants.members(URGENT_GROUP))
    changes = {
        "state": DrawState.FROZEN.value,
        "frozen_at": now.isoformat(),
        "entrants": str(len(frozen.entrants)),
        "urgent_entrants": str(urgent),
        "slots": str(len(frozen_slots)),
        "entrants_digest": lottery.entrants_digest(frozen.entrants),
        "horizon_start": start.isoformat(),
        "horizon_end": end.isoformat(),
    }
    store.freeze_draw(pool, record.draw_id, fence, frozen.to_fields(), changes)


# How many times the freeze reads the candidates again when a draw was committed meanwhile.
CANDIDATE_READS = 5


def waiting_at_cutoff(store, pool: str, cutoff: datetime.datetime) -> list[dict]:
    """The registrations that were waiting at the instant `cutoff`, whenever the freeze runs.

    Each wait in the waiting list is known by when it began and ended
    (store.draw_candidates: those going on, those recorded as ended, and
    those a draw committed after the cutoff ended). The entrants are those
    whose wait covers the cutoff (`waiting_at`): not someone who came back
    to the list after it, and someone who left after it still is (if they
    win, the commit finds them gone: `not_applied`).
    """
    for _ in range(CANDIDATE_READS):
        committed = store.committed_draw_times(pool)
        left_by_commit = {
            registration: committed_at
            for draw_id, committed_at in committed.items() if committed_at > cutoff
            for registration, _ in applied_offers(store, pool, draw_id)
        }
        waits = store.draw_candidates(pool, cutoff, left_by_commit, len(committed))
        if waits is not None:
            break
    else:
        raise RuntimeError(f"pool {pool}: draws kept being committed while the freeze read its entrants")
    entrants: dict[str, dict] = {}
    for wait in waits:
        if waiting_at(cutoff.timestamp(), wait["entered_at"], wait["left_at"]):
            entrants.setdefault(wait["id"], wait)  # one wait covers the cutoff: a second would be the same one
    return list(entrants.values())


def waiting_at(instant: float, entered: float, left: float | None) -> bool:
    """Whether a wait that began at `entered` and ended at `left` (None: it goes on) covers `instant`
    (epochs). A registration that joins at the very cutoff is in; one that leaves at it is out."""
    return entered <= instant and (left is None or left > instant)


def frozen_draw(
    people: list[dict], schedule: DrawSchedule, scheduled_at: datetime.datetime, slots: lottery.SlotColumns
) -> FrozenDraw:
    """The draw's inputs from the candidates (store.draw_candidates) and the open slots, as columns.

    Each distinct weight, group, constraint set and channel is worked out
    once and the entrants refer to it by position (see queue_service/draws/frozen.py).
    """
    policy = schedule.policy
    # A pool has few distinct losses, expiry dates and site choices: each is worked out once.
    weight_of: dict[int, str] = {}
    group_of: dict[str | None, str | None] = {}
    accepts_of: dict[tuple, tuple[str, ...] | None] = {}
    tables: dict[str, dict] = {"weight": {}, "group": {None: 0}, "accepts": {None: 0}, "channel": {}}
    codes: dict[str, list[int]] = {name: [] for name in tables}

    def add(name: str, value) -> None:
        codes[name].append(tables[name].setdefault(value, len(tables[name])))

    for person in people:
        lost, expiry = int(person["draws_lost"]), person.get("permit_expiry")
        choice = (tuple(person["sites"]), tuple(person["half_days"]))
        if lost not in weight_of:
            weight_of[lost] = entrant_weight(policy, lost)
        if expiry not in group_of:
            group_of[expiry] = entrant_group(policy, datetime.date.fromisoformat(expiry) if expiry else None, scheduled_at,
                                             schedule.timezone)
        if choice not in accepts_of:
            accepts_of[choice] = entrant_accepts(policy, *choice)
        add("weight", weight_of[lost])
        add("group", group_of[expiry])
        add("accepts", accepts_of[choice])
        add("channel", person["channel"])
    entrants = lottery.EntrantColumns(
        refs=[person["ref"] for person in people],
        weights=tuple(tables["weight"]),
        weight_codes=np.array(codes["weight"], dtype=np.int32),
        groups=tuple(tables["group"]),
        group_codes=np.array(codes["group"], dtype=np.int32),
        accept_sets=tuple(tables["accepts"]),
        accept_codes=np.array(codes["accepts"], dtype=np.int32),
    )
    return FrozenDraw(
        entrants=entrants,
        slots=slots,
        phases=draw_phases(policy, entrants, len(slots)),
        registrations=[person["id"] for person in people],
        joined_at=np.array([person["joined_at"] for person in people], dtype=np.float64),
        channels=tuple(tables["channel"]),
        channel_codes=np.array(codes["channel"], dtype=np.int32),
    )


def draw_phases(policy, entrants: lottery.EntrantColumns, slot_count: int) -> list[lottery.Phase]:
    """The draw's priority phases: the urgent group first, for floor(urgency_share x slots) slots at
    most, when it has members (the policy simulator, queue_service/simulator, calls it too)."""
    urgent_cap = math.floor(policy.urgency_share * slot_count)
    has_urgent = len(entrants.members(URGENT_GROUP)) > 0
    return [lottery.Phase(URGENT_GROUP, urgent_cap)] if urgent_cap and has_urgent else []


def entrant_weight(policy, draws_lost: int) -> str:
    """An entrant's weight (a canonical decimal string): 1 + aging x draws lost."""
    return lottery.canonical_weight(1 + policy.aging * draws_lost)


def entrant_group(policy, permit_expiry: datetime.date | None, scheduled_at: datetime.datetime,
                  timezone: str) -> str | None:
    """URGENT_GROUP for a permit expiring within the policy's window of the draw, else None.

    The days are counted from the draw's day on the prefecture's clock: a draw run at 00:20 in
    Paris is on that day, although it is still the day before in UTC."""
    if permit_expiry is None or not policy.urgency_window_days:
        return None
    days_left = (permit_expiry - scheduled_at.astimezone(ZoneInfo(timezone)).date()).days
    return URGENT_GROUP if days_left <= policy.urgency_window_days else None


def entrant_accepts(policy, sites: tuple[str, ...], half_days: tuple[str, ...]) -> tuple[str, ...] | None:
    """The slot classes an entrant accepts (sorted), or None for any slot."""
    if not policy.constraints_apply:
        return None
    return tuple(sorted({slot_class(site, half_day) for site in sites for half_day in half_days})) or None


def draw(store, pool: str, draw_id: str, fence: int, now: datetime.datetime) -> None:
    """Run the lottery on the frozen inputs; a pure function of them and the seed."""
    record = store.draw(pool, draw_id)
    frozen = FrozenDraw.from_fields(store.draw_frozen(pool, draw_id))
    result = lottery.run_draw(bytes.fromhex(record.seed), draw_id, frozen.entrants, frozen.slots, frozen.phases)
    registrations = [frozen.registrations[index] for index in result.winner_indices]
    # The registration behind each winner is kept with the result (private; the record shows ref and slot),
    # and the order in which they joined the waiting list, for the commit (see store/scripts/commit_draw.lua).
    joined = frozen.joined_at[np.array(result.winner_indices, dtype=np.int64)]
    by_wait = np.lexsort((np.array(registrations, dtype=str), joined)).tolist() if registrations else []
    winners = {
        "refs": result.winner_refs,
        "slots": result.slot_ids,
        "registrations": registrations,
        "entrants": result.winner_indices,
        "by_wait": by_wait,
    }
    changes = {"state": DrawState.DRAWN.value, "drawn_at": now.isoformat(), "winners": str(len(result.winner_refs))}
    store.save_draw_result(pool, draw_id, fence, json.dumps(winners), changes)


def commit(store, pool: str, draw_id: str, fence: int, schedule: DrawSchedule, now: datetime.datetime,
           timing) -> None:
    """Apply the result in one atomic step: offers, slots, counters, outbox.

    The offers share one deadline (the confirmation window from now), except
    those whose slot starts too soon for it (`offer_deadline`): each of these
    gets an earlier deadline of its own, or, when a late commit leaves less
    than the minimum time to answer, is not made (its slot goes to standby).
    """
    record = store.draw(pool, draw_id)
    confirmation = datetime.timedelta(hours=schedule.confirmation_hours)
    deadline = now + confirmation
    # Only slots starting before the shared deadline plus the notice answer earlier: a horizon's first days.
    soon = store.slots(pool, record.horizon_start or now, deadline + timing.cancel_notice)
    own_deadlines = {slot.id: offer_deadline(now, slot.starts_at, confirmation, timing) for slot in soon}
    store.commit_draw(pool, draw_id, fence, cutoff=record.cutoff_at, deadline=deadline, own_deadlines=own_deadlines,
                      now=now)


def applied_offers(store, pool: str, draw_id: str) -> list[tuple[str, str]]:
    """The (registration id, slot id) of each offer a committed draw made: its winners but those
    in "not_applied". The commit writes what they share once; this is the list behind it."""
    record = store.draw(pool, draw_id)
    if record is None or record.state not in (DrawState.COMMITTED, DrawState.PUBLISHED, DrawState.HELD):
        return []
    drawn = drawn_winners(store, pool, draw_id)
    not_applied = set(record.not_applied or ())
    return [
        (registration, slot_id)
        for ref, slot_id, registration in zip(drawn["refs"], drawn["slots"], drawn["registrations"])
        if ref not in not_applied
    ]


def offer_messages(store, pool: str, draw_id: str) -> list[dict]:
    """The outbox messages of a committed draw's offers, one per offer.

    The commit writes one outbox entry for them all ({"kind": "draw_offers"});
    the dispatcher hands these to the send jobs. Ids are stable
    ("offer:<draw>:<registration>"), so a message handed twice is sent once.
    """
    return [
        {"id": f"offer:{draw_id}:{registration}", "kind": "offer", "registration_id": registration,
         "draw_id": draw_id, "slot": slot_id}
        for registration, slot_id in applied_offers(store, pool, draw_id)
    ]


def publish_or_hold(store, pool: str, draw_id: str, fence: int, now: datetime.datetime) -> None:
    """Check the winners against registration time and channel; publish, or hold for review."""
    frozen = FrozenDraw.from_fields(store.draw_frozen(pool, draw_id))
    reports = bias_reports(frozen, drawn_winners(store, pool, draw_id))
    summary = json.dumps(
        [{"test": r.test, "p_value": r.p_value, "chi_square": r.chi_square, "suspicious": r.suspicious} for r in reports]
    )
    held = fairness.is_suspicious(reports)
    state = DrawState.HELD if held else DrawState.PUBLISHED
    store.update_draw_state(
        pool, draw_id, fence, DrawState.COMMITTED, {"state": state.value, f"{state.value}_at": now.isoformat(),
                                                    "bias_check": summary}
    )


def drawn_winners(store, pool: str, draw_id: str) -> dict[str, list]:
    """The draw's saved result as columns: refs, slots, registrations (and entrants, when kept)."""
    result = json.loads(store.draw_result(pool, draw_id))
    if isinstance(result, dict):
        return result
    # Saved before results were columns: one object per winner.
    return {name: [row[field] for row in result] for name, field in
            (("refs", "ref"), ("slots", "slot"), ("registrations", "registration"))}


def bias_reports(frozen: FrozenDraw, winners: dict[str, list]) -> list:
    """The bias check's tests on the winners (the draw's result, as columns)."""
    if not len(frozen.entrants) or not winners["refs"]:
        return []
    if "entrants" in winners:
        indices = winners["entrants"]
    else:
        position = {ref: index for index, ref in enumerate(frozen.entrants.refs)}
        indices = [position[ref] for ref in winners["refs"]]
    won = np.zeros(len(frozen.entrants), dtype=bool)
    won[indices] = True
    return fairness.check_draw(frozen.joined_at, frozen.channel_of_each(), frozen.weight_values(), won)


def release_held(store, pool: str, draw_id: str, now: datetime.datetime, by: str = "") -> None:
    """Staff reviewed a held draw and found it sound: publish it (`by`: the account that decided)."""
    changes = {"state": DrawState.PUBLISHED.value, "published_at": now.isoformat(), "released_by": by}
    if not store.update_draw_state(pool, draw_id, None, DrawState.HELD, changes):
        raise InvalidTransition(N_("Only a held draw can be released."))


# The public record ----------------------------------------------------------------------------


def public_record(store, pool: str, draw_id: str) -> dict:
    """The draw's public record (DESIGN.md): before publication, the commitment and what is frozen so far."""
    record = store.draw(pool, draw_id)
    if record is None:
        raise UnknownDraw()
    fields = store.draw_frozen(pool, draw_id)
    frozen = FrozenDraw.from_fields(fields) if fields else None
    published = record.state is DrawState.PUBLISHED
    if published:
        drawn = drawn_winners(store, pool, draw_id)
        winners = [{"ref": ref, "slot": slot_id} for ref, slot_id in zip(drawn["refs"], drawn["slots"])]
    else:
        winners = None
    return {
        "spec": lottery.SPEC,
        "draw_id": draw_id,
        "commitment": record.commitment,
        "seed": record.seed if published else None,
        "beacon": None,
        "entrants_digest": record.entrants_digest,
        "entrants": sorted(frozen.entrants.rows(), key=lambda row: row["ref"]) if frozen else None,
        "slots": frozen.slots.rows() if frozen else None,
        "phases": [{"group": p.group, "max_winners": p.max_winners} for p in frozen.phases] if frozen else None,
        "winners": winners,
        # Winners who had left the waiting list, or whose slot was cancelled, since the freeze (or,
        # committed late, whose slot started too soon to answer).
        "not_applied": list(record.not_applied or ()) if published else None,
        "state": record.state.value,
        "prefecture": record.prefecture,
        "procedure": record.procedure,
        "scheduled_at": record.scheduled_at.isoformat(),
        "cutoff_at": record.cutoff_at.isoformat(),
        "announced_at": record.announced_at.isoformat(),
        # True only in records written before a late announcement moved the cutoff (DueDraw.entry_times).
        "announced_late": record.announced_late,
        # Caught up after downtime: the cutoff its schedule set; its entries closed at the announcement.
        "scheduled_cutoff_at": record.scheduled_cutoff_at.isoformat() if record.scheduled_cutoff_at else None,
        "trigger": record.trigger.value,
        "statistics": {
            "entrants": record.entrants or 0,
            "slots": record.slots or 0,
            "winners": record.winners or 0,
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
