"""What staff, the public and each applicant are told about a pool, from counters and small reads.

Why this module exists
----------------------
The dashboard, the public statistics and the status page answer in
milliseconds with a million registrations: every figure here comes from the
counters (queue_service/metrics/__init__.py), the size of a sorted set, a handful of
draw records, or a count of open slots done inside Redis. Nothing reads the
registrations one by one.

Chances and dates use queue_service/draws/chances.py over the pool's weights,
taken as a histogram: how many wait having lost 0, 1, 2... draws
(Store.waiting_by_draws_lost, one ZCOUNT per committed draw, so O(distinct
weights)), turned into weights by the pool's policy; and over the urgent
group's priority phase, the group's share of the pool taken as at the last
frozen draw. The slots of each
coming draw are the open slots of its horizon not already in an earlier
draw's horizon; where the prefecture has not published that far yet, the
number of slots the pool's recent draws had stands in (marked `estimated`).
"""

from __future__ import annotations

import bisect
import datetime
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import numpy as np

from queue_service import draws as draw_rules
from queue_service import metrics
from queue_service.draws import Draw, DrawState, chances, schedules
from queue_service.draws.schedules import DrawSchedule
from queue_service.metrics import Event
from queue_service.pools import PoolId
from queue_service.registration import RegistrationStatus

#: Upcoming draws projected: a year of weekly draws.
PROJECTED_DRAWS = 52
#: Draws whose slot counts stand in for a horizon not yet published.
RECENT_DRAWS = 8
#: Days of daily series on the dashboard (eight weeks).
DASHBOARD_DAYS = 56


@dataclass(frozen=True)
class PlannedDraw:
    """A coming draw: when, how many slots, whether that number is an estimate."""

    at: datetime.datetime
    cutoff: datetime.datetime
    slots: int
    estimated: bool


@dataclass(frozen=True)
class Outlook:
    """Chance at the next draw and dates by which the chance passes 50 % and 90 %.

    The applicant's own parameters (weight, group, draws entered and lost) come
    with it: the status page shows them in the notice that explains the draw.
    """

    next_draw: PlannedDraw | None
    next_draw_chance: float | None
    date_50: datetime.datetime | None
    date_90: datetime.datetime | None
    weight: str
    group: str | None
    draws_entered: int
    draws_lost: int
    aging: float
    pool_size: int
    uses_estimates: bool


def planned_draws(store, schedule: DrawSchedule, now: datetime.datetime, count: int = PROJECTED_DRAWS,
                  timing=None) -> list[PlannedDraw]:
    """The pool's next draws and the slots each should give away, as published today (counted as
    their freezes will, draws.coming_slot_ranges; `timing`, the offers', leaves out the slots too
    close to answer)."""
    pool = PoolId.of(schedule.prefecture, schedule.procedure)
    times = schedules.next_draw_times(schedule, now, count)
    if not times:
        return []
    ranges = draw_rules.coming_slot_ranges(schedule, times, timing)
    counts = store.open_slot_counts(pool, ranges)
    published_until = store.last_slot_start(pool)
    typical = typical_slots_per_draw(store, pool)
    planned = []
    for moment, (_, end), open_slots in zip(times, ranges, counts):
        final = published_until is not None and published_until >= end
        estimated = not final and open_slots < typical
        planned.append(
            PlannedDraw(moment, schedules.entry_cutoff(schedule, moment), typical if estimated else open_slots, estimated)
        )
    return planned


def typical_slots_per_draw(store, pool: str) -> int:
    """The average number of slots of the pool's recent committed draws (0 without history)."""
    recent = [
        record.slots or 0
        for record in store.draws(pool, limit=RECENT_DRAWS * 2)
        if record.state in (DrawState.PUBLISHED, DrawState.COMMITTED, DrawState.HELD)
    ][:RECENT_DRAWS]
    return round(sum(recent) / len(recent)) if recent else 0


def pool_weights(store, pool: str, schedule: DrawSchedule) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """The waiting pool as (distinct weights, how many have each, the draws lost giving each weight)."""
    by_lost = store.waiting_by_draws_lost(pool)
    lost = sorted(by_lost)
    weights = np.array([float(draw_rules.entrant_weight(schedule.policy, value)) for value in lost], dtype=np.float64)
    return weights, np.array([by_lost[value] for value in lost], dtype=np.float64), lost


def applicant_outlook(store, registration, schedule: DrawSchedule | None, now: datetime.datetime,
                      timing=None) -> Outlook | None:
    """What the status page says about a waiting registration's chances (None if it is not waiting)."""
    if registration.status is not RegistrationStatus.WAITING or schedule is None or not schedule.active:
        return None
    pool = registration.key.pool
    joined = store.joined_at(registration.key)
    planned = [draw for draw in planned_draws(store, schedule, now, timing=timing)
               if joined is None or draw.cutoff.timestamp() >= joined]
    weights, counts, lost_values = pool_weights(store, pool, schedule)
    # The others: the pool less the applicant, who is counted in the bin of the draws lost since joining.
    own_bin = _draws_lost_since(store, pool, joined)
    if own_bin in lost_values:
        counts = counts.copy()
        counts[lost_values.index(own_bin)] -= 1
    policy = schedule.policy
    weight = draw_rules.entrant_weight(policy, registration.draws_lost)
    groups = [draw_rules.entrant_group(policy, registration.applicant.permit_expiry, draw.at, schedule.timezone)
              for draw in planned]
    group = groups[0] if groups else None
    urgent_from = next((index for index, found in enumerate(groups) if found), None)
    projection = _projection(float(weight), weights, counts, planned, policy.aging,
                             urgent_phase(store, pool, schedule, urgent_from))
    return Outlook(
        next_draw=planned[0] if planned else None,
        next_draw_chance=projection.next_draw_chance if planned else None,
        date_50=projection.date_50,
        date_90=projection.date_90,
        weight=weight,
        group=group,
        draws_entered=registration.draws_entered,
        draws_lost=registration.draws_lost,
        aging=policy.aging,
        pool_size=int(counts.sum()) + 1,
        uses_estimates=_estimates_used(planned, projection),
    )


def newcomer_outlook(store, schedule: DrawSchedule | None, now: datetime.datetime) -> dict | None:
    """The expected wait of someone who enters the pool now: dates their chance passes 50 % and 90 %."""
    if schedule is None or not schedule.active:
        return None
    pool = PoolId.of(schedule.prefecture, schedule.procedure)
    planned = [draw for draw in planned_draws(store, schedule, now) if draw.cutoff >= now]
    weights, counts, _ = pool_weights(store, pool, schedule)
    projection = _projection(float(draw_rules.entrant_weight(schedule.policy, 0)), weights, counts, planned,
                             schedule.policy.aging, urgent_phase(store, pool, schedule, None))
    return {
        "next_draw_chance": projection.next_draw_chance if planned else None,
        "date_50": projection.date_50,
        "date_90": projection.date_90,
        "days_50": (projection.date_50 - now).days if projection.date_50 else None,
        "days_90": (projection.date_90 - now).days if projection.date_90 else None,
        "estimated": _estimates_used(planned, projection),
    }


def _projection(weight: float, weights: np.ndarray, counts: np.ndarray, planned: list[PlannedDraw], aging: float,
                urgent: chances.UrgentPhase | None):
    upcoming = [chances.UpcomingDraw(draw.at, draw.slots) for draw in planned]
    return chances.project_chances(weight, weights, upcoming, aging, pool_counts=counts, urgent=urgent)


def urgent_phase(store, pool: str, schedule: DrawSchedule, applicant_urgent_from: int | None):
    """The priority phase coming draws will have, or None without one.

    The share of the pool in the urgent group is taken from the last frozen
    draw (the pool is assumed stationary, as for its weights): counting it now
    would mean reading every waiting renewal's permit expiry.
    """
    policy = schedule.policy
    if not (policy.urgency_window_days and policy.urgency_share):
        return None
    last = next((record for record in store.draws(pool, limit=RECENT_DRAWS) if record.entrants is not None), None)
    fraction = (last.urgent_entrants or 0) / last.entrants if last and last.entrants else 0.0
    if fraction == 0 and applicant_urgent_from is None:
        return None
    return chances.UrgentPhase(policy.urgency_share, fraction, applicant_urgent_from)


def _estimates_used(planned: list[PlannedDraw], projection) -> bool:
    """Whether a draw up to the one reaching 90 % (or the last) counts estimated slots."""
    last = projection.date_90
    for draw in planned:
        if draw.estimated:
            return True
        if last is not None and draw.at >= last:
            return False
    return False


def _draws_lost_since(store, pool: str, joined: float | None) -> int | None:
    if joined is None:
        return None
    cutoffs = store.committed_draw_cutoffs(pool)
    return len(cutoffs) - bisect.bisect_right(cutoffs, joined)


# Summaries for staff and the public ----------------------------------------------------------


def pool_summary(store, pool: str, timezone: str, now: datetime.datetime, days: int = DASHBOARD_DAYS,
                 draws_listed: int = 10) -> dict:
    """Everything the dashboard shows about one pool."""
    today = datetime.date.fromisoformat(metrics.stats_day(now, timezone))
    first = today - datetime.timedelta(days=days - 1)
    daily = store.stats_days(pool, first, today)
    totals = store.stats_totals([pool])[pool]
    gauges = store.pool_gauges([pool])[pool]
    waits = store.wait_histogram(pool)
    recent = store.draws(pool, limit=draws_listed)
    outcomes = store.stats_draws(pool, [record.draw_id for record in recent])
    schedule = store.schedule(pool)
    last_week = [values for day, values in daily.items() if day > today - datetime.timedelta(days=7)]
    return {
        "pool": pool,
        "gauges": gauges,
        "totals": totals,
        "last_7_days": metrics.add_counts(last_week),
        "daily": daily,
        "weekly_offered": metrics.weekly(daily, Event.SLOTS_OFFERED.value),
        "weekly_registered": metrics.weekly(daily, Event.REGISTERED.value),
        "draws": [draw_row(record, outcomes[record.draw_id]) for record in recent],
        "pool_size_by_week": pool_size_by_week(recent, gauges["waiting"], today, timezone),
        "waits": waits,
        "wait_bins": metrics.wait_bins(waits),
        "median_wait": metrics.percentile(waits, 0.5),
        "p90_wait": metrics.percentile(waits, 0.9),
        "fill_rate": metrics.fill_rate(totals),
        "attendance": metrics.share(totals[Event.ATTENDED.value],
                                    totals[Event.ATTENDED.value] + totals[Event.NO_SHOW.value]),
        "renewals_in_time": metrics.renewals_served_in_time(totals) if pool.endswith(":renewal") else None,
        "newcomer": newcomer_outlook(store, schedule, now),
        "schedule": schedule,
    }


def draw_row(record: Draw, outcomes: dict[str, int]) -> dict:
    """One draw as the dashboard and the public page list it."""
    return {
        "draw_id": record.draw_id,
        "scheduled_at": record.scheduled_at,
        "state": record.state,
        "commitment": record.commitment,
        "entrants": record.entrants or 0,
        "slots": record.slots or 0,
        "offered": record.offered or 0,
        "outcomes": {event.value: outcomes.get(event.value, 0) for event in metrics.OUTCOME_EVENTS},
    }


def pool_size_by_week(recent: list[Draw], waiting_now: int, today: datetime.date, timezone: str) -> list[tuple]:
    """The pool's size at each draw (its entrants), one point per week, and today's."""
    zone = ZoneInfo(timezone)
    by_week: dict[datetime.date, int] = {}
    for record in recent:
        if record.entrants is not None:
            day = record.scheduled_at.astimezone(zone).date()
            monday = day - datetime.timedelta(days=day.weekday())
            by_week.setdefault(monday, record.entrants)  # newest first: the week's last draw
    monday = today - datetime.timedelta(days=today.weekday())
    by_week[monday] = waiting_now
    return sorted(by_week.items())


def public_summary(store, prefecture, now: datetime.datetime, weeks: int = 12) -> dict:
    """The public statistics of a prefecture: counts and draws, no personal data."""
    today = datetime.date.fromisoformat(metrics.stats_day(now, prefecture.timezone))
    first = today - datetime.timedelta(days=7 * weeks - 1)
    pools = []
    for procedure in store.procedures():
        pool = PoolId.of(prefecture.code, procedure.code)
        totals = store.stats_totals([pool])[pool]
        daily = store.stats_days(pool, first, today)
        waits = store.wait_histogram(pool)
        recent = store.draws(pool, limit=20)
        outcomes = store.stats_draws(pool, [record.draw_id for record in recent])
        pools.append(
            {
                "procedure": procedure,
                "waiting": store.pool_gauges([pool])[pool]["waiting"],
                "slots_offered_per_week": metrics.weekly(daily, Event.SLOTS_OFFERED.value),
                "slots_offered_total": totals[Event.SLOTS_OFFERED.value],
                "draws_committed": totals[Event.DRAW_COMMITTED.value],
                "median_wait_days": metrics.percentile(waits, 0.5),
                "renewals_served_before_expiry": (
                    metrics.renewals_served_in_time(totals) if procedure.code == "renewal" else None
                ),
                "draws": [draw_row(record, outcomes[record.draw_id]) for record in recent],
            }
        )
    return {"prefecture": prefecture, "pools": pools, "generated_at": now}


def national_rows(store, prefectures, now: datetime.datetime) -> list[dict]:
    """One row per prefecture that has pools: sizes and the last seven days, summed over its pools."""
    known = sorted(set(store.pools()) | set(store.scheduled_pools()))
    gauges = store.pool_gauges(known)
    totals = store.stats_totals(known)
    rows = []
    for prefecture in prefectures:
        pools = [pool for pool in known if PoolId(pool).prefecture == prefecture.code]
        if not pools:
            continue
        today = datetime.date.fromisoformat(metrics.stats_day(now, prefecture.timezone))
        week = []
        for pool in pools:
            week += store.stats_days(pool, today - datetime.timedelta(days=6), today).values()
        summed = metrics.add_counts(totals[pool] for pool in pools)
        rows.append(
            {
                "prefecture": prefecture,
                "waiting": sum(gauges[pool]["waiting"] for pool in pools),
                "pending_email": sum(gauges[pool]["pending_email"] for pool in pools),
                "last_7_days": metrics.add_counts(week),
                "totals": summed,
                "fill_rate": metrics.fill_rate(summed),
            }
        )
    return rows

