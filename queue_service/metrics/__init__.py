"""Queue metrics: the names of the events counted per pool, and the arithmetic on the counters.

Why this module exists
----------------------
Staff, the public page and Prometheus all read the same numbers, and those
must not come from scanning a million registrations. Every change of state
that matters (a registration, a confirmation, a draw's commit, an offer's
answer...) adds one to a counter in the same Lua script that makes the
change, so a counter can never disagree with what happened, even when a job
crashes or is retried (the script runs all or nothing, and a second run that
changes nothing counts nothing).

The counters live in Redis (queue_service/store/keys.py, "Counters"): per pool a
totals hash, a hash per day (in the prefecture's time zone) and a histogram of
waits. This module names the events, once, and turns the hashes into the
figures people read (medians, fill rate, weekly sums). It is pure Python.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from enum import Enum
from zoneinfo import ZoneInfo


class Event(str, Enum):
    """What is counted, per pool, in the totals and in the day it happened."""

    # Registrations (this issue).
    REGISTERED = "registered"  # every registration created, online or assisted
    REGISTERED_ASSISTED = "registered_assisted"  # of those, made by an agent at a counter or by phone
    EMAIL_CONFIRMED = "email_confirmed"  # entered the waiting list by opening the emailed link
    WITHDRAWN = "withdrawn"  # left the pool (pending or waiting) at their own request
    PURGED_UNCONFIRMED = "purged_unconfirmed"  # deleted: email not confirmed in time
    # Deleted: the same person registered again before confirming (a typo in the email, a lost link).
    REPLACED_UNCONFIRMED = "replaced_unconfirmed"
    DUPLICATE_REFUSED = "duplicate_refused"  # refused: the same person already holds a place
    CONTACT_CAP_REFUSED = "contact_cap_refused"  # refused: the email or phone already serves the cap
    RATE_LIMITED = "rate_limited"  # a request about the pool refused by a rate limit (429)
    # Draws.
    DRAW_COMMITTED = "draw_committed"  # a draw applied its result (once per draw)
    SLOTS_OFFERED = "slots_offered"  # offers made by draws' commits
    # Offers and bookings (queue_service/offers/__init__.py, in the scripts that change them).
    OFFER_CONFIRMED = "offer_confirmed"
    OFFER_DECLINED = "offer_declined"
    OFFER_EXPIRED = "offer_expired"
    OFFER_REOFFERED = "offer_reoffered"  # a freed slot offered to the next of the same draw's order
    SLOT_RETURNED_TO_DRAW = "slot_returned_to_draw"  # standby used up: the slot goes to the next draw
    BOOKING_CANCELLED = "booking_cancelled"  # by the applicant
    SLOT_CANCELLED_BY_PREFECTURE = "slot_cancelled_by_prefecture"
    ATTENDED = "attended"
    NO_SHOW = "no_show"
    RENEWAL_EXPIRED_BEFORE_APPOINTMENT = "renewal_expired_before_appointment"


#: The field names of the counter hashes, in the order of the CSV export.
EVENTS: tuple[str, ...] = tuple(event.value for event in Event)

#: The event counted when a registration closes in a status (Store.close_registration).
CLOSING_EVENTS: dict[str, str] = {"withdrawn": Event.WITHDRAWN.value}

#: Events that are signs of abuse or friction, shown together on the dashboard.
ABUSE_EVENTS = (Event.DUPLICATE_REFUSED, Event.CONTACT_CAP_REFUSED, Event.RATE_LIMITED, Event.PURGED_UNCONFIRMED,
                Event.REPLACED_UNCONFIRMED)
#: What became of the slots a draw offered (per draw, and in total).
OUTCOME_EVENTS = (
    Event.OFFER_CONFIRMED,
    Event.OFFER_DECLINED,
    Event.OFFER_EXPIRED,
    Event.OFFER_REOFFERED,
    Event.SLOT_RETURNED_TO_DRAW,
    Event.BOOKING_CANCELLED,
    Event.SLOT_CANCELLED_BY_PREFECTURE,
    Event.ATTENDED,
    Event.NO_SHOW,
)


def stats_day(moment: datetime.datetime, timezone: str) -> str:
    """The day (YYYY-MM-DD) an event at `moment` is counted in: the prefecture's own calendar day."""
    if moment.tzinfo is None:
        raise ValueError("the moment of an event must be timezone-aware")
    return moment.astimezone(ZoneInfo(timezone)).date().isoformat()


def counts(raw: Mapping) -> dict[str, int]:
    """A counter hash as read from Redis (bytes or text) -> {event: count}, every event present."""
    found = {_text(name): int(value) for name, value in raw.items()}
    return {event: found.get(event, 0) for event in EVENTS}


def histogram(raw: Mapping) -> dict[int, int]:
    """A histogram hash (whole days -> count) as read from Redis, sorted by days."""
    return dict(sorted((int(_text(days)), int(count)) for days, count in raw.items() if int(count) > 0))


def percentile(histogram_by_days: Mapping[int, int], fraction: float) -> int | None:
    """The smallest number of days d such that at least `fraction` of the waits are <= d (None if empty)."""
    total = sum(histogram_by_days.values())
    if total == 0:
        return None
    needed = fraction * total
    seen = 0
    for days in sorted(histogram_by_days):
        seen += histogram_by_days[days]
        if seen >= needed:
            return days
    return max(histogram_by_days)


def share(part: int, whole: int) -> float | None:
    """part / whole, or None when there is nothing to divide (shown as a dash, never as 0 %)."""
    return part / whole if whole > 0 else None


def fill_rate(totals: Mapping[str, int]) -> float | None:
    """The share of the offers made by draws that ended in a booking."""
    return share(totals[Event.OFFER_CONFIRMED.value], totals[Event.SLOTS_OFFERED.value])


def renewals_served_in_time(totals: Mapping[str, int]) -> float | None:
    """The share of bookings whose appointment came before the applicant's permit expired."""
    booked = totals[Event.OFFER_CONFIRMED.value]
    late = totals[Event.RENEWAL_EXPIRED_BEFORE_APPOINTMENT.value]
    return share(booked - late, booked)


def days_between(first: datetime.date, last: datetime.date) -> list[datetime.date]:
    """Every day from `first` to `last`, both included."""
    return [first + datetime.timedelta(days=offset) for offset in range((last - first).days + 1)]


def weekly(daily: Mapping[datetime.date, Mapping[str, int]], event: str) -> list[tuple[datetime.date, int]]:
    """Sums of `event` per ISO week (Monday first), oldest first, for the weeks the days cover."""
    sums: dict[datetime.date, int] = {}
    for day, values in daily.items():
        monday = day - datetime.timedelta(days=day.weekday())
        sums[monday] = sums.get(monday, 0) + values.get(event, 0)
    return sorted(sums.items())


def wait_bins(histogram_by_days: Mapping[int, int], width: int = 7) -> list[tuple[int, int]]:
    """The waits grouped in bins of `width` days: [(first day of the bin, count)], empty bins included."""
    if not histogram_by_days:
        return []
    last = max(histogram_by_days) // width
    bins = [0] * (last + 1)
    for days, count in histogram_by_days.items():
        bins[max(days, 0) // width] += count
    return [(number * width, count) for number, count in enumerate(bins)]


def add_counts(rows: Iterable[Mapping[str, int]]) -> dict[str, int]:
    """Event-wise sum of several count mappings (pools of a prefecture, prefectures of the country)."""
    total = {event: 0 for event in EVENTS}
    for row in rows:
        for event in EVENTS:
            total[event] += row.get(event, 0)
    return total


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
