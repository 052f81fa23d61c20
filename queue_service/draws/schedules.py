"""Draw schedules: when each pool's lottery runs, and the policy it runs with.

Why this module exists
----------------------
Each prefecture admin decides, per pool (prefecture x procedure), when the
draws run: a cron expression read in the prefecture's local time, a list of
explicit local dates, or both (a repeating schedule with a few extra draws). A clock process ticks every few seconds and must enqueue
every scheduled draw exactly once, including the draws it missed while the
service was down. This module turns an admin's choices into a checked
``DrawSchedule`` and answers the clock's only question: which draws are due
between the last time I looked and now? It is plain Python: time comes in as
an argument, nothing touches Redis.

Local time, and the two nights a year it misbehaves
---------------------------------------------------
A cron expression is matched against the local wall clock, so "0 10 * * MON"
is 10:00 in Paris all year (09:00 UTC in winter, 08:00 UTC in summer). A
local wall time becomes an instant by one rule, ``local_to_utc``, used for
cron times, explicit dates and horizon boundaries alike:

- a time the clocks jump over (02:30 on the last Sunday of March in Paris)
  fires once, at the first instant after the jump (03:00 local, 01:00 UTC);
  several times inside the same gap collapse into that one draw;
- a time that happens twice (02:30 on the last Sunday of October) fires once,
  at its first occurrence (still summer time, 00:30 UTC).

Every scheduled instant therefore has a distinct local wall time to the
minute, which is what makes ``draw_id`` (built from that wall time) unique
and reversible.

Exactly once, with a clock that may stop and restart
----------------------------------------------------
``due_draw_times(schedule, since, now)`` returns every scheduled time t with
``since < t <= now`` (never at or before ``schedule.created_at``), oldest
first. A clock keeps its own ``since``; claims that must not happen twice are
made by the caller on ``draw_id`` with ``SET NX``. Any number of clocks, any
restart that moves ``since`` back, and any downtime then give each draw once,
provided ``since`` only moves forward past times that were claimed.
"""

from __future__ import annotations

import dataclasses
import datetime
import heapq
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, CroniterError, croniter

from queue_service.errors import N_, ValidationFailed

__all__ = [
    "DrawPolicy",
    "DrawSchedule",
    "SWITCHES",
    "admin_values",
    "editable_values",
    "add_draw_date",
    "parse_schedule",
    "local_to_utc",
    "next_draw_times",
    "due_draw_times",
    "draw_id",
    "parse_draw_id",
    "entry_cutoff",
    "slot_horizon",
    "schedule_to_dict",
    "schedule_from_dict",
]

UTC = datetime.timezone.utc

#: Bounds of the values an admin sets, inclusive unless said otherwise.
MAX_CUTOFF_MINUTES = 7 * 24 * 60
MAX_HORIZON_DAYS = 180
MIN_CONFIRMATION_HOURS = 1
MAX_CONFIRMATION_HOURS = 14 * 24
MAX_AGING = 10.0
MAX_URGENCY_WINDOW_DAYS = 365
#: At most this many explicit dates in one schedule.
MAX_DATES = 100
#: A cron schedule may run at most one draw per hour on average over this window.
CRON_RATE_WINDOW = datetime.timedelta(days=30)
MAX_CRON_DRAWS_IN_WINDOW = 30 * 24
#: A cron schedule must run at least one draw within this window, or it is a mistake.
CRON_FIRST_DRAW_WINDOW = datetime.timedelta(days=366)

#: An explicit date as the admin types it: local time, to the minute.
_LOCAL_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})[ T]+(\d{2}):(\d{2})")
#: A part of a draw id that is a prefecture or procedure code.
_CODE = re.compile(r"[0-9A-Za-z_]+")
_DRAW_ID = re.compile(r"([0-9A-Za-z_]+)-([0-9A-Za-z_]+)-(\d{8}T\d{4})")
_DRAW_ID_TIME = "%Y%m%dT%H%M"


# Values ------------------------------------------------------------------


@dataclass(frozen=True)
class DrawPolicy:
    """How a pool's draw weighs and orders its entrants (DESIGN.md, "Draw policy").

    ``aging``: weight = 1 + aging x draws_lost (0 is a pure lottery).
    ``urgency_window_days``: a renewal whose permit expires within this many
    days of the draw is urgent. ``urgency_share``: the share of the draw's
    slots reserved for urgent entrants (the cap of the "urgent" phase).
    ``constraints_apply``: whether applicants' site and half-day constraints
    restrict the slots they can be offered. ``declined_returns_to_pool`` and
    ``expired_returns_to_pool``: whether a winner who declines, or lets the
    deadline pass, goes back to the waiting list with their weight (otherwise
    their registration ends).
    """

    aging: float = 0.0
    urgency_window_days: int = 60
    urgency_share: float = 0.1
    constraints_apply: bool = True
    declined_returns_to_pool: bool = True
    expired_returns_to_pool: bool = True

    def __post_init__(self) -> None:
        if not _is_number(self.aging) or not 0 <= self.aging <= MAX_AGING:
            raise ValueError(f"aging must be a number from 0 to {MAX_AGING:g}")
        if not _is_int(self.urgency_window_days) or not 0 <= self.urgency_window_days <= MAX_URGENCY_WINDOW_DAYS:
            raise ValueError(f"urgency_window_days must be an integer from 0 to {MAX_URGENCY_WINDOW_DAYS}")
        if not _is_number(self.urgency_share) or not 0 <= self.urgency_share <= 1:
            raise ValueError("urgency_share must be a number from 0 to 1")
        for name in ("constraints_apply", "declined_returns_to_pool", "expired_returns_to_pool"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be a bool")


@dataclass(frozen=True)
class DrawSchedule:
    """When one pool's draws run, and with which policy.

    Draw times come from ``cron`` (five fields, matched against the local
    wall clock of ``timezone``; None for none) and from ``dates`` (aware
    datetimes; held in UTC, sorted and without repeats): either or both, so
    that an admin can add a draw to a repeating schedule. Entries close
    ``cutoff_minutes`` before a draw; a draw offers the slots that start from
    local midnight of (draw date + ``horizon_from_days``) to local midnight
    of (draw date + ``horizon_to_days``); a winner has ``confirmation_hours``
    to confirm. No draw is ever due at or before ``created_at``.
    """

    prefecture: str
    procedure: str
    timezone: str
    cron: str | None
    dates: tuple[datetime.datetime, ...] = ()
    cutoff_minutes: int = 60
    horizon_from_days: int = 7
    horizon_to_days: int = 28
    confirmation_hours: int = 48
    policy: DrawPolicy = field(default_factory=DrawPolicy)
    active: bool = True
    created_at: datetime.datetime = field(kw_only=True)

    def __post_init__(self) -> None:
        _check_code(self.prefecture, "prefecture")
        _check_code(self.procedure, "procedure")
        _zone(self.timezone)
        _check_aware(self.created_at, "created_at")
        if not isinstance(self.dates, tuple):
            raise ValueError("dates must be a tuple")
        for moment in self.dates:
            _check_aware(moment, "each date")
            if moment.second or moment.microsecond:
                raise ValueError("dates must fall on whole minutes")
        # Held in UTC, sorted, each instant once: equal schedules compare equal
        # and store the same, and two local dates that name one instant (both
        # sides of a DST jump) give one draw.
        object.__setattr__(self, "created_at", self.created_at.astimezone(UTC))
        object.__setattr__(self, "dates", tuple(sorted({moment.astimezone(UTC) for moment in self.dates})))
        if self.cron is not None and not isinstance(self.cron, str):
            raise ValueError("cron must be a str or None")
        if not _is_int(self.cutoff_minutes) or not 0 <= self.cutoff_minutes <= MAX_CUTOFF_MINUTES:
            raise ValueError(f"cutoff_minutes must be an integer from 0 to {MAX_CUTOFF_MINUTES}")
        if not (
            _is_int(self.horizon_from_days)
            and _is_int(self.horizon_to_days)
            and 0 <= self.horizon_from_days < self.horizon_to_days <= MAX_HORIZON_DAYS
        ):
            raise ValueError(f"0 <= horizon_from_days < horizon_to_days <= {MAX_HORIZON_DAYS} must hold")
        if not _is_int(self.confirmation_hours) or not (
            MIN_CONFIRMATION_HOURS <= self.confirmation_hours <= MAX_CONFIRMATION_HOURS
        ):
            raise ValueError(
                f"confirmation_hours must be an integer from {MIN_CONFIRMATION_HOURS} to {MAX_CONFIRMATION_HOURS}"
            )
        if not isinstance(self.policy, DrawPolicy):
            raise ValueError("policy must be a DrawPolicy")
        if not isinstance(self.active, bool):
            raise ValueError("active must be a bool")


# Local time --------------------------------------------------------------


def _zone(name: str) -> ZoneInfo:
    if not isinstance(name, str) or not name:
        raise ValueError("timezone must be an IANA time zone name such as 'Europe/Paris'")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise ValueError(f"unknown time zone {name!r}") from error


def _check_aware(moment: object, what: str) -> None:
    if not isinstance(moment, datetime.datetime) or moment.utcoffset() is None:
        raise ValueError(f"{what} must be a timezone-aware datetime")


def _check_code(code: object, what: str) -> None:
    if not isinstance(code, str) or not _CODE.fullmatch(code):
        raise ValueError(f"{what} must be letters, digits or '_' (it is part of draw ids)")


def local_to_utc(local: datetime.datetime, timezone: str) -> datetime.datetime:
    """The instant (aware, UTC) at which the local wall time ``local`` (naive) fires.

    A wall time that happens twice fires at its first occurrence; one that
    the clocks jump over fires at the first instant after the jump. The map
    is non-decreasing: a later wall time never gives an earlier instant.
    """
    if local.tzinfo is not None:
        raise ValueError("local_to_utc takes a naive local time")
    zone = _zone(timezone)
    first = local.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if first.astimezone(zone).replace(tzinfo=None) == local:
        return first
    # `local` is in a gap. fold=0 reads it with the offset before the jump,
    # fold=1 with the offset after, so the jump lies between those instants:
    # find the first instant already on the offset after, to the second.
    after_offset = local.replace(tzinfo=zone, fold=1).utcoffset()
    low = local.replace(tzinfo=zone, fold=1).astimezone(UTC)  # before the jump
    high = first  # after the jump
    while high - low > datetime.timedelta(seconds=1):
        middle = low + datetime.timedelta(seconds=(high - low).total_seconds() // 2)
        if middle.astimezone(zone).utcoffset() == after_offset:
            high = middle
        else:
            low = middle
    return high


def _utc(moment: datetime.datetime, what: str) -> datetime.datetime:
    _check_aware(moment, what)
    return moment.astimezone(UTC)


# Draw times --------------------------------------------------------------


def _cron_times(expression: str, timezone: str, after: datetime.datetime) -> Iterator[datetime.datetime]:
    """Instants (UTC) of a local-time cron expression strictly after ``after``, ascending."""
    zone = _zone(timezone)
    # No wall time at or before the local reading of `after` fires after it
    # (local_to_utc never gives a later wall time an earlier instant, and reads
    # a repeated wall time as its first occurrence), so start there.
    start = after.astimezone(zone).replace(tzinfo=None, second=0, microsecond=0)
    wall_times = croniter(expression, start, ret_type=datetime.datetime)
    last = after
    while True:
        try:
            wall_time = wall_times.get_next(datetime.datetime)
        except CroniterBadDateError:  # the expression never matches again
            return
        moment = local_to_utc(wall_time, timezone)
        if moment > last:  # also merges the wall times of one DST gap
            last = moment
            yield moment


def _times_after(schedule: DrawSchedule, after: datetime.datetime) -> Iterator[datetime.datetime]:
    """Scheduled instants strictly after ``after`` and after ``created_at``, ascending."""
    after = max(_utc(after, "after"), schedule.created_at.astimezone(UTC))
    dates = (moment for moment in schedule.dates if moment > after)
    if schedule.cron is None:
        yield from dates
        return
    # Both, merged: a date that is also a cron time is one draw (one instant, one draw id).
    last = None
    for moment in heapq.merge(_cron_times(schedule.cron, schedule.timezone, after), dates):
        if moment != last:
            last = moment
            yield moment


def next_draw_times(schedule: DrawSchedule, after: datetime.datetime, count: int = 5) -> list[datetime.datetime]:
    """The next ``count`` draw times (aware UTC) strictly after ``after``.

    Times at or before ``schedule.created_at`` are left out, as they will
    never be due; an inactive schedule has no next draw ([]).
    """
    if count < 0:
        raise ValueError("count must be >= 0")
    if not schedule.active or count == 0:
        return []
    times = []
    for moment in _times_after(schedule, after):
        times.append(moment)
        if len(times) == count:
            break
    return times


def due_draw_times(
    schedule: DrawSchedule, since: datetime.datetime, now: datetime.datetime, limit: int = 100
) -> list[datetime.datetime]:
    """Every draw time t with since < t <= now and t > created_at, oldest first, at most ``limit``.

    After a long downtime more than ``limit`` draws may be due: when the
    list is full, the caller sets ``since`` to its last item and asks again.
    """
    if limit < 1:
        raise ValueError("limit must be >= 1")
    now = _utc(now, "now")
    if not schedule.active:
        return []
    times = []
    for moment in _times_after(schedule, since):
        if moment > now:
            break
        times.append(moment)
        if len(times) == limit:
            break
    return times


def entry_cutoff(schedule: DrawSchedule, scheduled_at: datetime.datetime) -> datetime.datetime:
    """When entries to the draw at ``scheduled_at`` freeze (aware UTC): ``cutoff_minutes`` before it."""
    return _utc(scheduled_at, "scheduled_at") - datetime.timedelta(minutes=schedule.cutoff_minutes)


def slot_horizon(schedule: DrawSchedule, scheduled_at: datetime.datetime) -> tuple[datetime.datetime, datetime.datetime]:
    """The slots a draw offers: those starting in [start, end), both aware UTC.

    start and end are local midnights of the draw's local date plus
    ``horizon_from_days`` and plus ``horizon_to_days``.
    """
    draw_date = _utc(scheduled_at, "scheduled_at").astimezone(_zone(schedule.timezone)).date()

    def midnight(days: int) -> datetime.datetime:
        day = draw_date + datetime.timedelta(days=days)
        return local_to_utc(datetime.datetime(day.year, day.month, day.day), schedule.timezone)

    return midnight(schedule.horizon_from_days), midnight(schedule.horizon_to_days)


# Draw ids ----------------------------------------------------------------


def draw_id(prefecture: str, procedure: str, scheduled_at: datetime.datetime, timezone: str) -> str:
    """The id of a pool's draw at ``scheduled_at``: its local wall time to the minute.

    "01-renewal-20270104T1000" is Ain's renewal draw of 4 January 2027 at
    10:00 Paris time. Unique for the times a schedule produces (see the
    module docstring); ``scheduled_at`` must fall on a whole minute.
    """
    _check_code(prefecture, "prefecture")
    _check_code(procedure, "procedure")
    _check_aware(scheduled_at, "scheduled_at")
    if scheduled_at.second or scheduled_at.microsecond:
        raise ValueError("a draw time falls on a whole minute")
    local = scheduled_at.astimezone(_zone(timezone))
    return f"{prefecture}-{procedure}-{local:{_DRAW_ID_TIME}}"


def parse_draw_id(text: str) -> tuple[str, str, datetime.datetime]:
    """(prefecture, procedure, naive local wall time) of a draw id; ValueError if it is not one.

    ``local_to_utc(wall_time, timezone)`` gives back the draw's instant.
    """
    match = _DRAW_ID.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"not a draw id: {text!r}")
    prefecture, procedure, stamp = match.groups()
    return prefecture, procedure, datetime.datetime.strptime(stamp, _DRAW_ID_TIME)


# The admin's values -------------------------------------------------------

#: The policy's yes-or-no settings: bools, in the order the admin sees them.
SWITCHES: tuple[str, ...] = ("constraints_apply", "declined_returns_to_pool", "expired_returns_to_pool")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


def _blank(value: object) -> bool:
    """Nothing given: None, blank text or an empty list."""
    if isinstance(value, str):
        return not value.strip()
    return value is None or (isinstance(value, (list, tuple)) and not value)


def _read_int(value: object, low: int, high: int) -> int | None:
    """An int, or its text, in [low, high]; None if it is not one."""
    if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d{1,9}\s*", value):
        value = int(value)
    if _is_int(value) and low <= value <= high:
        return value
    return None


def _read_float(value: object, low: float, high: float) -> float | None:
    """A number, or its text ("0,5" is read as 0.5), in [low, high], as a float; None if it is not one."""
    if isinstance(value, str):
        text = value.strip().replace(",", ".")
        if not re.fullmatch(r"[+-]?(\d+(\.\d*)?|\.\d+)", text):
            return None
        value = float(text)
    if _is_number(value) and low <= value <= high:
        return float(value)
    return None


#: The numbers an admin sets: (field, reader, lowest, highest, what to say when it is wrong).
#: Their defaults are those of DrawSchedule and DrawPolicy (see ``admin_values``).
_NUMBERS = (
    ("cutoff_minutes", _read_int, 0, MAX_CUTOFF_MINUTES,
     N_("Enter a whole number of minutes from 0 to 10080 (one week).")),
    ("horizon_from_days", _read_int, 0, MAX_HORIZON_DAYS - 1, N_("Enter a whole number of days from 0 to 179.")),
    ("horizon_to_days", _read_int, 1, MAX_HORIZON_DAYS, N_("Enter a whole number of days from 1 to 180.")),
    ("confirmation_hours", _read_int, MIN_CONFIRMATION_HOURS, MAX_CONFIRMATION_HOURS,
     N_("Enter a whole number of hours from 1 to 336 (two weeks).")),
    ("aging", _read_float, 0.0, MAX_AGING, N_("Enter a number from 0 to 10.")),
    ("urgency_window_days", _read_int, 0, MAX_URGENCY_WINDOW_DAYS, N_("Enter a whole number of days from 0 to 365.")),
    ("urgency_share", _read_float, 0.0, 1.0, N_("Enter a share from 0 to 1, such as 0.1 for a tenth of the slots.")),
)

#: What an admin sets besides the draw times, in the order they see it.
_SETTINGS: tuple[str, ...] = (*(number[0] for number in _NUMBERS), *SWITCHES)


def admin_values(schedule: DrawSchedule | None = None) -> dict[str, object]:
    """The numbers and switches an admin sets, as ``schedule`` has them.

    Without a schedule, their defaults: those DrawSchedule and DrawPolicy
    declare, written nowhere else (the parser and the admin's form read them here).
    """
    if schedule is None:
        declared = {item.name: item.default for item in dataclasses.fields(DrawSchedule)}
        policy = DrawPolicy()
    else:
        declared = {item.name: getattr(schedule, item.name) for item in dataclasses.fields(DrawSchedule)}
        policy = schedule.policy
    values = declared | dataclasses.asdict(policy)
    return {name: values[name] for name in _SETTINGS}


def editable_values(schedule: DrawSchedule, now: datetime.datetime) -> dict[str, object]:
    """What an admin edits of ``schedule``, as ``parse_schedule`` reads it back: ``cron`` (None
    without one), ``dates`` still to come (past ones are done) as local "YYYY-MM-DD HH:MM"
    texts, and the ``admin_values``."""
    zone = _zone(schedule.timezone)
    now = _utc(now, "now")
    return {
        "cron": schedule.cron,
        "dates": [f"{moment.astimezone(zone):%Y-%m-%d %H:%M}" for moment in schedule.dates if moment > now],
        **admin_values(schedule),
    }


def add_draw_date(
    schedule: DrawSchedule, local_time: object, now: datetime.datetime
) -> tuple[DrawSchedule, datetime.datetime]:
    """(``schedule`` with one more draw, that draw's instant): the draw at the local wall time
    ``local_time`` ("YYYY-MM-DD HH:MM"), the schedule's cron expression, other dates, settings
    and creation unchanged, so that no draw it already gives is lost or moved (a time it
    already gives adds nothing). Raises
    ValidationFailed under "at" for a time that is not one, not in the future, more than two
    years ahead, or one date too many (MAX_DATES to come)."""
    now = _utc(now, "now")
    moments = _local_dates([local_time], schedule.timezone) if isinstance(local_time, str) else None
    if not moments:
        raise ValidationFailed({"at": N_("Write the draw's time as YYYY-MM-DD HH:MM, in the prefecture's local time.")})
    coming = {moment for moment in schedule.dates if moment > now} | moments
    message = _dates_error(coming, now)
    if message:
        raise ValidationFailed({"at": message})
    (moment,) = moments
    return dataclasses.replace(schedule, dates=(*schedule.dates, moment)), moment


def _cron_error(expression: str, now: datetime.datetime, timezone: str) -> str | None:
    """Why a cron expression cannot be a schedule, or None if it can."""
    fields = expression.split()
    if len(fields) != 5:
        return N_("Write a cron expression of five fields: minute, hour, day of month, month, day of week.")
    # "R" draws a random time and "H" a hashed one: neither says when the draw runs.
    parts = [part for cron_field in fields for part in cron_field.upper().split(",")]
    if any(part.startswith(("R", "H")) for part in parts):
        return N_("This cron expression is not valid.")
    try:
        times = _cron_times(" ".join(fields), timezone, now)
        first = next(times, None)
    except (CroniterError, ValueError, KeyError, IndexError):
        return N_("This cron expression is not valid.")
    if first is None or first > now + CRON_FIRST_DRAW_WINDOW:
        return N_("This cron expression gives no draw in the coming year.")
    count = 1
    for moment in times:
        if moment > now + CRON_RATE_WINDOW:
            break
        count += 1
        if count > MAX_CRON_DRAWS_IN_WINDOW:
            return N_("Draws cannot run more often than once an hour on average.")
    return None


def _read_cron(value: object, now: datetime.datetime, timezone: str, errors: dict[str, str]) -> str | None:
    """The cron expression with its spacing tidied; its error goes to ``errors``."""
    if not isinstance(value, str):
        errors["cron"] = N_("This cron expression is not valid.")
        return None
    cron = " ".join(value.split())
    message = _cron_error(cron, now, timezone)
    if message:
        errors["cron"] = message
    return cron


def _local_dates(lines: object, timezone: str) -> set[datetime.datetime] | None:
    """The instants (UTC) of a list of local "YYYY-MM-DD HH:MM" texts, blank ones skipped; None if one is wrong."""
    if not isinstance(lines, (list, tuple)) or not all(isinstance(line, str) for line in lines):
        return None
    moments = set()
    for line in lines:
        if not line.strip():
            continue
        match = _LOCAL_DATE.fullmatch(line.strip())
        try:
            if match is None:
                return None
            local = datetime.datetime(*(int(number) for number in match.groups()))
            moments.add(local_to_utc(local, timezone))
        except (ValueError, OverflowError):  # OverflowError: year 1 or 9999 shifted out of range
            return None
    return moments


def _dates_error(moments: set[datetime.datetime] | None, now: datetime.datetime) -> str | None:
    """Why these dates cannot be a schedule, or None if they can."""
    if not moments:
        return N_("Write one date per line as YYYY-MM-DD HH:MM, in the prefecture's local time.")
    if len(moments) > MAX_DATES:
        return N_("A schedule holds at most 100 dates.")
    if min(moments) <= now:
        return N_("Every date must be in the future.")
    if max(moments) > now + datetime.timedelta(days=731):
        return N_("Every date must be within the next two years.")
    return None


def _read_dates(
    value: object, now: datetime.datetime, timezone: str, errors: dict[str, str]
) -> tuple[datetime.datetime, ...]:
    """The dates (aware UTC, sorted, without repeats); their error goes to ``errors``."""
    moments = _local_dates(value, timezone)
    message = _dates_error(moments, now)
    if message:
        errors["dates"] = message
        return ()
    return tuple(sorted(moments))


def _read_draw_times(
    values: Mapping[str, object], now: datetime.datetime, timezone: str, errors: dict[str, str]
) -> tuple[str | None, tuple[datetime.datetime, ...]]:
    """(cron, dates) from one or both of the two fields; an error under both names if neither is given."""
    cron, dates = values.get("cron"), values.get("dates")
    if _blank(cron) and _blank(dates):
        errors["cron"] = errors["dates"] = N_("Give a cron expression or a list of dates.")
        return None, ()
    return (None if _blank(cron) else _read_cron(cron, now, timezone, errors),
            () if _blank(dates) else _read_dates(dates, now, timezone, errors))


def _read_numbers(values: Mapping[str, object], errors: dict[str, str]) -> dict[str, int | float | None]:
    """Each number of ``_NUMBERS``, its default if absent or blank; its error goes to ``errors``."""
    defaults = admin_values()
    numbers = {}
    for name, read, low, high, message in _NUMBERS:
        value = values.get(name)
        numbers[name] = defaults[name] if _blank(value) else read(value, low, high)
        if numbers[name] is None:
            errors[name] = message
    starts, ends = numbers["horizon_from_days"], numbers["horizon_to_days"]
    if starts is not None and ends is not None and starts >= ends:
        errors["horizon_to_days"] = N_("The horizon must end after it starts.")
    return numbers


def _read_switches(values: Mapping[str, object], errors: dict[str, str]) -> dict[str, object]:
    """Each of ``SWITCHES``, its default if absent; one that is not a bool is an error."""
    defaults = admin_values()
    switches = {}
    for name in SWITCHES:
        switches[name] = defaults[name] if values.get(name) is None else values[name]
        if not isinstance(switches[name], bool):
            errors[name] = N_("Tick the box or leave it empty.")
    return switches


def parse_schedule(
    values: Mapping[str, object], prefecture: str, procedure: str, timezone: str, now: datetime.datetime
) -> DrawSchedule:
    """Check the values an admin chose and build the schedule, created at ``now``.

    Values are plain, never a form's encodings: ``cron`` (text) and/or
    ``dates`` (a list of local times, "YYYY-MM-DD HH:MM"), at least one; the
    numbers of ``admin_values`` as numbers or their text; the ``SWITCHES`` as
    bools. A number absent or blank, or a switch absent, takes its default.
    Raises ValidationFailed naming every wrong field; raises ValueError for a
    bad prefecture, procedure, time zone or naive ``now``, which come from the
    service, not the admin.
    """
    _check_code(prefecture, "prefecture")
    _check_code(procedure, "procedure")
    _zone(timezone)
    now = _utc(now, "now")
    errors: dict[str, str] = {}
    cron, dates = _read_draw_times(values, now, timezone, errors)
    chosen = _read_numbers(values, errors) | _read_switches(values, errors)
    if errors:
        # In the order of the form, as the admin reads the list of errors.
        raise ValidationFailed({name: errors[name] for name in ("cron", "dates", *_SETTINGS) if name in errors})
    policy_fields = {item.name for item in dataclasses.fields(DrawPolicy)}
    return DrawSchedule(
        prefecture=prefecture,
        procedure=procedure,
        timezone=timezone,
        cron=cron,
        dates=dates,
        policy=DrawPolicy(**{name: value for name, value in chosen.items() if name in policy_fields}),
        active=True,
        created_at=now,
        **{name: value for name, value in chosen.items() if name not in policy_fields},
    )


# Storage -----------------------------------------------------------------


def schedule_to_dict(schedule: DrawSchedule) -> dict:
    """A JSON-safe dict of the schedule; times as ISO 8601 in UTC."""
    return {
        "prefecture": schedule.prefecture,
        "procedure": schedule.procedure,
        "timezone": schedule.timezone,
        "cron": schedule.cron,
        "dates": [moment.isoformat() for moment in schedule.dates],
        "cutoff_minutes": schedule.cutoff_minutes,
        "horizon_from_days": schedule.horizon_from_days,
        "horizon_to_days": schedule.horizon_to_days,
        "confirmation_hours": schedule.confirmation_hours,
        "policy": {
            "aging": float(schedule.policy.aging),
            "urgency_window_days": schedule.policy.urgency_window_days,
            "urgency_share": float(schedule.policy.urgency_share),
            "constraints_apply": schedule.policy.constraints_apply,
            "declined_returns_to_pool": schedule.policy.declined_returns_to_pool,
            "expired_returns_to_pool": schedule.policy.expired_returns_to_pool,
        },
        "active": schedule.active,
        "created_at": schedule.created_at.isoformat(),
    }


def schedule_from_dict(data: Mapping[str, object]) -> DrawSchedule:
    """The schedule ``schedule_to_dict`` wrote (ValueError, KeyError or TypeError if it is not one)."""
    policy = data["policy"]
    return DrawSchedule(
        prefecture=data["prefecture"],
        procedure=data["procedure"],
        timezone=data["timezone"],
        cron=data["cron"],
        dates=tuple(datetime.datetime.fromisoformat(text) for text in data["dates"]),
        cutoff_minutes=data["cutoff_minutes"],
        horizon_from_days=data["horizon_from_days"],
        horizon_to_days=data["horizon_to_days"],
        confirmation_hours=data["confirmation_hours"],
        policy=DrawPolicy(
            aging=float(policy["aging"]),
            urgency_window_days=policy["urgency_window_days"],
            urgency_share=float(policy["urgency_share"]),
            constraints_apply=policy["constraints_apply"],
            # Schedules saved before these settings existed keep the default.
            declined_returns_to_pool=policy.get("declined_returns_to_pool", DrawPolicy.declined_returns_to_pool),
            expired_returns_to_pool=policy.get("expired_returns_to_pool", DrawPolicy.expired_returns_to_pool),
        ),
        active=data["active"],
        created_at=datetime.datetime.fromisoformat(data["created_at"]),
    )
