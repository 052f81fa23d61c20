"""Slots: the appointments a prefecture publishes, and how they are made.

Why this module exists
----------------------
A draw gives away slots, so the slots must be right before anything else:
at the right instant, at a counter that is free, in the slot class
("bourg-mon-am") that applicants' constraints name. A prefecture admin
publishes them in one of two ways, and both end here:

- an opening template (a site, a procedure, a range of days, the days of the
  week, opening hours, the length of an appointment and the number of
  counters), which ``parse_template`` checks and ``slots_from_template``
  turns into slots;
- a CSV file, one slot a row, often exported from French Excel, which
  ``parse_slots_csv`` reads, keeping the good rows and saying, line by line,
  what is wrong with the others.

Both take plain values (a date, a time, a number, or their text) and check
each field with the same functions; only what they say about a wrong field
differs (a form names the field, a CSV error names the line and column).

``overlaps`` then finds the slots that would put one counter in two places
at once, among the new ones and against those already published.

Time
----
A prefecture speaks in local wall-clock time ("Monday at 09:00") in its own
IANA time zone; a slot stores the instant, in UTC. The conversion goes
through ``zoneinfo``, so it is right across daylight-saving changes:

- a wall time that does not exist (the hour skipped when clocks go forward)
  gives no slot;
- a wall time that happens twice (the hour repeated when clocks go back) is
  read as its first occurrence (``fold=0``);
- in a template, a slot that would start before the previous one ends, or
  end after closing time, because the clocks jumped during it, is skipped:
  a template never puts a counter in two places at once.

Nothing here touches Redis, Flask or the clock: ``today``, the time zone and
the known site and procedure codes come in as arguments.
"""

from __future__ import annotations

import csv
import datetime
import io
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from enum import Enum
from heapq import heappop, heappush
from zoneinfo import ZoneInfo

from queue_service import reference
from queue_service.errors import N_, ValidationFailed

__all__ = [
    "SlotStatus",
    "Slot",
    "make_slot_id",
    "local_today",
    "OpeningTemplate",
    "parse_template",
    "slots_from_template",
    "RowError",
    "parse_slots_csv",
    "overlaps",
    "MAX_TEMPLATE_DAYS",
    "MAX_DAYS_AHEAD",
    "MAX_TEMPLATE_SLOTS",
    "MIN_APPOINTMENT_MINUTES",
    "MAX_APPOINTMENT_MINUTES",
    "MAX_COUNTERS",
    "MAX_CSV_ROWS",
    "CSV_COLUMNS",
    "AFTERNOON_STARTS",
    "WEEKDAY_NAMES",
]

UTC = datetime.UTC

#: How many days after its first day a template's last day may be: one
#: quarter, so that a typing error cannot publish a year of slots.
MAX_TEMPLATE_DAYS = 92

#: How far ahead of today a slot may be published: far enough for any timetable, and far
#: from the last day a datetime can hold (9999-12-31), which a start plus its length or
#: a local time read in UTC would overflow.
MAX_DAYS_AHEAD = 5 * 366

#: The most slots one template may publish (before daylight-saving skips).
MAX_TEMPLATE_SLOTS = 5_000

#: The shortest and longest appointment, in minutes.
MIN_APPOINTMENT_MINUTES = 5
MAX_APPOINTMENT_MINUTES = 240

#: The most counters a site may open for one procedure at the same time.
MAX_COUNTERS = 50

#: The most data rows one CSV file may hold; a larger file is refused whole.
MAX_CSV_ROWS = 10_000

#: The columns of a slot CSV file, in the order of the files we hand out.
CSV_COLUMNS: tuple[str, ...] = ("site", "procedure", "date", "start", "duration_minutes", "counter")

#: A slot starting at this local time or later is an afternoon ("pm") slot.
AFTERNOON_STARTS = datetime.time(13, 0)

#: Short English day names, index 0 = Monday, as slot classes spell them.
WEEKDAY_NAMES: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

# A site id may hold hyphens; a procedure code may not, so that an id read
# from the right (counter, start, procedure, then site) is never ambiguous.
_SITE_ID = re.compile(r"[a-z0-9_]+(?:-[a-z0-9_]+)*")
_PROCEDURE_CODE = re.compile(r"[a-z0-9_]+")
_ISO_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_FRENCH_DATE = re.compile(r"([0-9]{2})/([0-9]{2})/([0-9]{4})")
# "09:00"; also "9:00" and "09:00:00", as spreadsheets and time inputs write them.
_WALL_TIME = re.compile(r"([0-9]{1,2}):([0-9]{2})(?::00)?")
_WHOLE_NUMBER = re.compile(r"[0-9]{1,6}")


class SlotStatus(str, Enum):
    """Where a slot stands."""

    #: Published and free: the next draw may give it away.
    OPEN = "open"
    #: Given to a registration by a draw, awaiting confirmation.
    OFFERED = "offered"
    #: Confirmed by the applicant: a booking.
    BOOKED = "booked"
    #: Freed by a decline, an expiry or a cancellation: offered to the next
    #: entrant of the same draw's order, never to the first comer.
    STANDBY = "standby"
    #: Withdrawn by the prefecture; it holds no counter.
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class Slot:
    """One appointment: a site's counter, from ``starts_at`` for ``duration_minutes``.

    ``starts_at`` is an instant; any aware datetime is accepted and stored in
    UTC. Local times are derived from it with the prefecture's time zone.
    """

    id: str
    prefecture: str
    site: str
    procedure: str
    starts_at: datetime.datetime
    duration_minutes: int
    counter: int
    status: SlotStatus = SlotStatus.OPEN

    def __post_init__(self) -> None:
        if self.starts_at.tzinfo is None or self.starts_at.utcoffset() is None:
            raise ValueError(f"slot {self.id!r}: starts_at must be an aware datetime, got {self.starts_at!r}")
        if self.duration_minutes <= 0:
            raise ValueError(f"slot {self.id!r}: duration_minutes must be positive, got {self.duration_minutes}")
        if self.counter < 1:
            raise ValueError(f"slot {self.id!r}: counters are numbered from 1, got {self.counter}")
        # Frozen: normalising the stored values is the one write allowed here.
        object.__setattr__(self, "starts_at", self.starts_at.astimezone(UTC))
        object.__setattr__(self, "status", SlotStatus(self.status))

    @property
    def ends_at(self) -> datetime.datetime:
        """The instant the appointment ends (UTC), ``duration_minutes`` after it starts."""
        return self.starts_at + datetime.timedelta(minutes=self.duration_minutes)

    def local_start(self, timezone: str) -> datetime.datetime:
        """The start as an aware datetime on the wall clock of ``timezone``."""
        return self.starts_at.astimezone(ZoneInfo(timezone))

    def slot_class(self, timezone: str) -> str:
        """The slot class applicants' constraints name, e.g. "bourg-mon-am".

        Day and half-day are read on the local clock: a slot at 00:30 on a
        Tuesday in Paris is "tue-am", although it is still Monday in UTC.
        """
        local = self.local_start(timezone)
        part = "am" if local.time() < AFTERNOON_STARTS else "pm"
        return reference.slot_class(self.site, f"{WEEKDAY_NAMES[local.weekday()]}-{part}")


def make_slot_id(site: str, procedure: str, local_start: datetime.datetime, counter: int) -> str:
    """The id of a slot, from what makes it unique, e.g. "bourg-renewal-20270104T0900-c2".

    ``local_start`` is read as a wall-clock time (any tzinfo is ignored), so
    the id reads as the prefecture's timetable does. The two occurrences of
    a repeated hour (clocks going back) would share an id; this module only
    ever makes the first one.
    """
    if not _SITE_ID.fullmatch(site):
        raise ValueError(f"site id {site!r} must be lower-case letters, digits, '_' and inner '-'")
    if not _PROCEDURE_CODE.fullmatch(procedure):
        raise ValueError(f"procedure code {procedure!r} must be lower-case letters, digits and '_'")
    if counter < 1:
        raise ValueError(f"counters are numbered from 1, got {counter}")
    return f"{site}-{procedure}-{local_start:%Y%m%dT%H%M}-c{counter}"


# --------------------------------------------------------------------------
# Opening templates
# --------------------------------------------------------------------------


def local_today(now: datetime.datetime, timezone: str) -> datetime.date:
    """The day it is at ``now`` on the prefecture's clock: the ``today`` before which no slot
    may be published, and the first day the slots page lists.

    Not the UTC date: just after midnight in Paris (22:00 or 23:00 UTC) that is still the
    day before, and in the Antilles it is already the next day from 20:00 local time.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(ZoneInfo(timezone)).date()


@dataclass(frozen=True)
class OpeningTemplate:
    """Opening hours to publish as slots: from ``first_day`` to ``last_day``
    (inclusive) on the ``weekdays`` chosen (0 = Monday), from ``opens`` to
    ``closes`` local time, ``counters`` appointments of ``appointment_minutes``
    side by side."""

    site: str
    procedure: str
    first_day: datetime.date
    last_day: datetime.date
    weekdays: tuple[int, ...]
    opens: datetime.time
    closes: datetime.time
    appointment_minutes: int
    counters: int


def parse_template(
    values: Mapping[str, object],
    site_ids: Iterable[str],
    procedure_codes: Iterable[str],
    today: datetime.date,
) -> OpeningTemplate:
    """Check the values of an opening template and return it.

    ``values`` holds the fields of ``OpeningTemplate`` as plain values:
    typed (``date``, ``time``, ``int``) or their text (dates "YYYY-MM-DD",
    times "HH:MM"); ``weekdays`` as a list (of 0..6 or "mon".."sun") or a
    text of them separated by commas or spaces. Raises ``ValidationFailed``
    naming every wrong field; a template with too many slots is reported on
    ``last_day``.
    """
    errors: dict[str, str] = {}
    site = _form_field(values, "site", _member(site_ids), N_("Choose one of the prefecture's sites."), errors)
    procedure = _form_field(values, "procedure", _member(procedure_codes), N_("Choose one of the procedures."), errors)
    first_day, last_day = _form_days(values, today, errors)
    weekdays = _form_weekdays(values.get("weekdays"), errors)
    opens, closes = _form_hours(values, errors)
    appointment_minutes = _form_field(
        values, "appointment_minutes", _whole(MIN_APPOINTMENT_MINUTES, MAX_APPOINTMENT_MINUTES),
        N_("Enter a number of minutes from 5 to 240."), errors,
    )
    counters = _form_field(
        values, "counters", _whole(1, MAX_COUNTERS), N_("Enter a number of counters from 1 to 50."), errors
    )
    template = OpeningTemplate(
        site=site,
        procedure=procedure,
        first_day=first_day,
        last_day=last_day,
        weekdays=weekdays,
        opens=opens,
        closes=closes,
        appointment_minutes=appointment_minutes,
        counters=counters,
    )
    _check_template(template, errors)
    if errors:
        raise ValidationFailed(errors)
    return template


def _form_field(
    values: Mapping[str, object], field: str, read: Callable[[object], object], message: str, errors: dict[str, str]
):
    """The field as ``read`` reads it; if it cannot, None and its error: required, or ``message``."""
    parsed = read(values.get(field))
    if parsed is _MISSING:
        errors[field] = N_("This field is required.")
        return None
    if parsed is None:
        errors[field] = message
    return parsed


def _form_days(
    values: Mapping[str, object], today: datetime.date, errors: dict[str, str]
) -> tuple[datetime.date | None, datetime.date | None]:
    """The first and last day: not in the past, in order, at most ``MAX_TEMPLATE_DAYS`` apart."""
    first_day = _form_field(values, "first_day", _read_day, N_("Enter a date as YYYY-MM-DD."), errors)
    last_day = _form_field(values, "last_day", _read_day, N_("Enter a date as YYYY-MM-DD."), errors)
    if first_day is not None and first_day < today:
        errors["first_day"] = N_("The first day cannot be in the past.")
    elif first_day is not None and (first_day - today).days > MAX_DAYS_AHEAD:
        errors["first_day"] = N_("The first day can be at most five years ahead.")
    if first_day is not None and last_day is not None:
        if last_day < first_day:
            errors["last_day"] = N_("The last day cannot be before the first day.")
        elif (last_day - first_day).days > MAX_TEMPLATE_DAYS:
            errors["last_day"] = N_("The last day can be at most 92 days after the first day.")
    return first_day, last_day


def _form_weekdays(value: object, errors: dict[str, str]) -> tuple[int, ...] | None:
    weekdays = _parse_weekdays(value)
    if weekdays is None:
        errors["weekdays"] = N_("Choose days of the week from Monday to Sunday.")
    elif not weekdays:
        errors["weekdays"] = N_("Choose at least one day of the week.")
    return weekdays


def _form_hours(
    values: Mapping[str, object], errors: dict[str, str]
) -> tuple[datetime.time | None, datetime.time | None]:
    """Opening and closing time, closing after opening."""
    opens = _form_field(values, "opens", _read_time, N_("Enter a time as HH:MM."), errors)
    closes = _form_field(values, "closes", _read_time, N_("Enter a time as HH:MM."), errors)
    if opens is not None and closes is not None and closes <= opens:
        errors["closes"] = N_("The closing time must be after the opening time.")
    return opens, closes


def _check_template(template: OpeningTemplate, errors: dict[str, str]) -> None:
    """The rules across fields, for the fields read without error (the others are None)."""
    hours_valid = not {"opens", "closes", "appointment_minutes"} & errors.keys()
    if hours_valid and _minutes_between(template.opens, template.closes) < template.appointment_minutes:
        errors["appointment_minutes"] = N_("An appointment this long does not fit between opening and closing.")
    if {"first_day", "last_day", "weekdays"} & errors.keys():
        return
    open_days = sum(1 for _ in _open_days(template.first_day, template.last_day, template.weekdays))
    if open_days == 0:
        errors["weekdays"] = N_("None of these days of the week falls between the first and the last day.")
    elif hours_valid and not {"appointment_minutes", "counters"} & errors.keys():
        per_day = _minutes_between(template.opens, template.closes) // template.appointment_minutes
        if open_days * per_day * template.counters > MAX_TEMPLATE_SLOTS:
            errors["last_day"] = N_(
                "These dates, hours and counters give more than 5,000 appointments. "
                "Publish a shorter period, or fewer counters."
            )


def slots_from_template(template: OpeningTemplate, prefecture: str, timezone: str) -> list[Slot]:
    """The slots of a template, sorted by (starts_at, site, counter).

    Starts are ``opens``, ``opens`` + one appointment, ... while the
    appointment ends by ``closes`` on the wall clock. A start that does not
    exist (clocks going forward) is skipped, a repeated one is its first
    occurrence, and a slot the clock change would make overlap the previous
    one or run past closing is skipped: see the module docstring.
    """
    zone = ZoneInfo(timezone)
    length = datetime.timedelta(minutes=template.appointment_minutes)
    starts: list[tuple[datetime.datetime, datetime.datetime]] = []  # (wall time, instant)
    previous_end: datetime.datetime | None = None
    for day in _open_days(template.first_day, template.last_day, template.weekdays):
        closing = datetime.datetime.combine(day, template.closes)
        wall = datetime.datetime.combine(day, template.opens)
        while wall + length <= closing:
            start = _wall_to_utc(wall, zone)
            if start is not None and (previous_end is None or start >= previous_end):
                end = start + length
                if _utc_to_wall(end, zone) <= closing:
                    starts.append((wall, start))
                    previous_end = end
            wall += length
    slots = [
        Slot(
            id=make_slot_id(template.site, template.procedure, wall, counter),
            prefecture=prefecture,
            site=template.site,
            procedure=template.procedure,
            starts_at=start,
            duration_minutes=template.appointment_minutes,
            counter=counter,
        )
        for wall, start in starts
        for counter in range(1, template.counters + 1)
    ]
    slots.sort(key=lambda slot: (slot.starts_at, slot.site, slot.counter))
    return slots


# --------------------------------------------------------------------------
# CSV files
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class RowError:
    """What is wrong with one line of a CSV file (``line`` counts from 1)."""

    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass(frozen=True)
class _RowChecks:
    """What a CSV row is checked against."""

    prefecture: str
    zone: ZoneInfo
    site_ids: frozenset[str]
    procedure_codes: frozenset[str]
    today: datetime.date


def parse_slots_csv(
    text: str,
    prefecture: str,
    timezone: str,
    site_ids: Iterable[str],
    procedure_codes: Iterable[str],
    today: datetime.date,
) -> tuple[list[Slot], list[RowError]]:
    """Read a slot CSV file: the good rows as slots (in file order), and one
    ``RowError`` for each bad row, naming its columns.

    The header names ``CSV_COLUMNS`` in any order and case; the separator is
    ',' or ';' (French Excel); a UTF-8 byte-order mark and blank lines are
    ignored. Dates are "YYYY-MM-DD" (or "DD/MM/YYYY", as French Excel
    rewrites them), not before ``today``; starts are local "HH:MM". A row with
    the same site, counter and start as an earlier one is refused. A header
    that is wrong, or more than ``MAX_CSV_ROWS`` rows, gives a single error
    and no slot.
    """
    rows, reading_error = _csv_rows(text)
    if not rows:
        return [], [reading_error or RowError(1, "the file is empty; the first line must name the columns")]
    if len(rows) > MAX_CSV_ROWS + 1:  # the header, then the data rows
        return [], [RowError(rows[-1][0], f"more than {MAX_CSV_ROWS:,} rows; split the file")]
    header_line, header = rows[0]
    names = [name.lower() for name in header]
    header_problem = _header_problem(names)
    if header_problem:
        return [], [RowError(header_line, header_problem)]
    checks = _RowChecks(prefecture, ZoneInfo(timezone), frozenset(site_ids), frozenset(procedure_codes), today)
    slots, errors = _csv_slots(rows[1:], names, checks)
    if reading_error:
        errors.append(reading_error)
    return slots, errors


def _csv_rows(text: str) -> tuple[list[tuple[int, list[str]]], RowError | None]:
    """The filled rows (line, stripped cells), at most one beyond the limit, and the
    error that stopped the reading early, if any."""
    if text.startswith("\ufeff"):
        text = text[1:]
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_guess_separator(text))
    rows: list[tuple[int, list[str]]] = []
    try:
        for line, cells in _filled_rows(reader):
            rows.append((line, cells))
            if len(rows) > MAX_CSV_ROWS + 1:
                break
    except csv.Error as error:
        return rows, RowError(reader.line_num, f"the file cannot be read from here on ({error})")
    return rows, None


def _csv_slots(
    rows: list[tuple[int, list[str]]], names: list[str], checks: _RowChecks
) -> tuple[list[Slot], list[RowError]]:
    """The slots of the data rows, and the errors of the rows that are not slots."""
    slots: list[Slot] = []
    errors: list[RowError] = []
    first_line_of: dict[tuple[str, int, datetime.datetime], int] = {}
    for line, cells in rows:
        problems = [f"{len(cells)} values for {len(names)} columns"] if len(cells) > len(names) else []
        slot = _csv_slot(_csv_values(names, cells), checks, problems)
        if slot is not None:
            key = (slot.site, slot.counter, slot.starts_at)
            if key in first_line_of:
                problems.append(f"start: same site, counter and start as line {first_line_of[key]}")
            else:
                first_line_of[key] = line
        if problems:
            errors.append(RowError(line, "; ".join(problems)))
        else:
            slots.append(slot)
    return slots, errors


def _csv_values(names: list[str], cells: list[str]) -> dict[str, object]:
    """A row as plain values: codes in lower case, a French date ("DD/MM/YYYY") as a date, the rest as text."""
    values: dict[str, object] = dict(zip(names, cells))
    for column in ("site", "procedure"):
        values[column] = values.get(column, "").lower()
    values["date"] = _french_date(values.get("date", "")) or values.get("date", "")
    return values


def _csv_slot(values: dict[str, object], checks: _RowChecks, problems: list[str]) -> Slot | None:
    """The slot of a row's values; None, with the row's problems added, if it has any."""
    site = _csv_field(values, "site", _member(checks.site_ids), "site: unknown site", problems)
    procedure = _csv_field(
        values, "procedure", _member(checks.procedure_codes), "procedure: unknown procedure", problems
    )
    day = _csv_field(values, "date", _read_day, "date: not a date (YYYY-MM-DD)", problems)
    if day is not None and day < checks.today:
        problems.append("date: in the past")
        day = None
    elif day is not None and (day - checks.today).days > MAX_DAYS_AHEAD:
        problems.append("date: more than five years ahead")
        day = None
    start = _csv_field(values, "start", _read_time, "start: not a time (HH:MM)", problems)
    duration = _csv_field(
        values, "duration_minutes", _whole(MIN_APPOINTMENT_MINUTES, MAX_APPOINTMENT_MINUTES),
        "duration_minutes: not a number of minutes from 5 to 240", problems,
    )
    counter = _csv_field(
        values, "counter", _whole(1, MAX_COUNTERS), "counter: not a counter number from 1 to 50", problems
    )
    starts_at = None
    if day is not None and start is not None:
        starts_at = _wall_to_utc(datetime.datetime.combine(day, start), checks.zone)
        if starts_at is None:
            problems.append("start: this time does not exist on that day (the clocks go forward)")
    if problems:
        return None
    return Slot(
        id=make_slot_id(site, procedure, datetime.datetime.combine(day, start), counter),
        prefecture=checks.prefecture,
        site=site,
        procedure=procedure,
        starts_at=starts_at,
        duration_minutes=duration,
        counter=counter,
    )


def _csv_field(
    values: dict[str, object], column: str, read: Callable[[object], object], message: str, problems: list[str]
):
    """The column's value as ``read`` reads it; if it cannot, None and its problem: missing, or ``message``."""
    parsed = read(values.get(column, ""))
    if parsed is _MISSING:
        problems.append(f"{column}: missing value")
        return None
    if parsed is None:
        problems.append(message)
    return parsed


# --------------------------------------------------------------------------
# Overlaps
# --------------------------------------------------------------------------


def overlaps(candidates: list[Slot], existing: list[Slot]) -> list[tuple[Slot, Slot]]:
    """Pairs of slots that would hold the same counter of a site at the same time.

    Intervals are [starts_at, ends_at): a slot ending when the next starts
    does not overlap it. Pairs are (candidate, candidate), earlier start
    first, or (candidate, existing); two existing slots are not compared,
    and cancelled slots hold no counter. Sorting, then sweeping each counter
    with a heap of the slots still running, costs O(n log n) plus one step
    per pair found.
    """
    entries = [(slot, True) for slot in candidates if slot.status is not SlotStatus.CANCELLED]
    entries += [(slot, False) for slot in existing if slot.status is not SlotStatus.CANCELLED]
    entries.sort(key=lambda entry: (entry[0].site, entry[0].counter, entry[0].starts_at, entry[0].ends_at))

    pairs: list[tuple[Slot, Slot]] = []
    counter_key: tuple[str, int] | None = None
    # Heaps of (ends_at, sequence, slot) still running at the current start.
    running_candidates: list[tuple[datetime.datetime, int, Slot]] = []
    running_existing: list[tuple[datetime.datetime, int, Slot]] = []
    for sequence, (slot, is_candidate) in enumerate(entries):
        if (slot.site, slot.counter) != counter_key:
            counter_key = (slot.site, slot.counter)
            running_candidates, running_existing = [], []
        for running in (running_candidates, running_existing):
            while running and running[0][0] <= slot.starts_at:
                heappop(running)
        pairs.extend((other, slot) for _, _, other in running_candidates)
        if is_candidate:
            pairs.extend((slot, other) for _, _, other in running_existing)
        heappush(running_candidates if is_candidate else running_existing, (slot.ends_at, sequence, slot))
    return pairs


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------


def _wall_to_utc(wall: datetime.datetime, zone: ZoneInfo) -> datetime.datetime | None:
    """The instant of a local wall time (its first occurrence if repeated),
    or None if the clocks skip it."""
    instant = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if _utc_to_wall(instant, zone) != wall.replace(fold=0):
        return None
    return instant


def _utc_to_wall(instant: datetime.datetime, zone: ZoneInfo) -> datetime.datetime:
    """The naive local wall time of an instant."""
    return instant.astimezone(zone).replace(tzinfo=None, fold=0)


def _open_days(
    first_day: datetime.date, last_day: datetime.date, weekdays: tuple[int, ...]
) -> Iterator[datetime.date]:
    """The days from ``first_day`` to ``last_day`` that fall on one of ``weekdays``."""
    for offset in range((last_day - first_day).days + 1):
        day = first_day + datetime.timedelta(days=offset)
        if day.weekday() in weekdays:
            yield day


def _minutes_between(opens: datetime.time, closes: datetime.time) -> int:
    return (closes.hour * 60 + closes.minute) - (opens.hour * 60 + opens.minute)


def _text(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


# Field checks, shared by templates and CSV rows. Each reads a plain value
# (typed, or its text) and gives the typed value, or None if it is wrong.

#: What a field check gives when nothing was given: no value of the field's type, and no text.
_MISSING = object()


def _is_whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _member(known: Iterable[str]) -> Callable[[object], object]:
    """A check of a code (site, procedure) among ``known``."""
    known = set(known)

    def read(value: object) -> object:
        if not _text(value):
            return _MISSING
        return _text(value) if _text(value) in known else None

    return read


def _whole(low: int, high: int) -> Callable[[object], object]:
    """A check of a whole number (an int, or its digits) from ``low`` to ``high``."""

    def read(value: object) -> object:
        if _is_whole(value):
            number = value
        elif not _text(value):
            return _MISSING
        else:
            number = int(_text(value)) if _WHOLE_NUMBER.fullmatch(_text(value)) else None
        return number if number is not None and low <= number <= high else None

    return read


def _read_day(value: object) -> object:
    """A date, or its text "YYYY-MM-DD"."""
    if isinstance(value, datetime.date) and not isinstance(value, datetime.datetime):
        return value
    return _parse_iso_date(_text(value)) if _text(value) else _MISSING


def _read_time(value: object) -> object:
    """A naive time on a whole minute, or its text "HH:MM"."""
    if isinstance(value, datetime.time):
        return None if value.second or value.microsecond or value.tzinfo is not None else value
    return _parse_wall_time(_text(value)) if _text(value) else _MISSING


def _parse_iso_date(text: str) -> datetime.date | None:
    match = _ISO_DATE.fullmatch(text)
    if not match:
        return None
    return _date_or_none(int(match[1]), int(match[2]), int(match[3]))


def _french_date(text: str) -> datetime.date | None:
    match = _FRENCH_DATE.fullmatch(text)
    if not match:
        return None
    return _date_or_none(int(match[3]), int(match[2]), int(match[1]))


def _date_or_none(year: int, month: int, day: int) -> datetime.date | None:
    try:
        return datetime.date(year, month, day)
    except ValueError:
        return None


def _parse_wall_time(text: str) -> datetime.time | None:
    match = _WALL_TIME.fullmatch(text)
    if not match or int(match[1]) > 23 or int(match[2]) > 59:
        return None
    return datetime.time(int(match[1]), int(match[2]))


def _parse_weekdays(value: object) -> tuple[int, ...] | None:
    """Sorted distinct weekdays (0 = Monday), () if none, None if one is not a day."""
    if value is None:
        items: list[object] = []
    elif isinstance(value, str):
        items = [part for part in re.split(r"[\s,;]+", value) if part]
    elif isinstance(value, Iterable):
        items = list(value)
    else:
        items = [value]
    days = set()
    for item in items:
        if isinstance(item, int) and not isinstance(item, bool):
            day = item if 0 <= item <= 6 else None
        elif isinstance(item, str) and item.strip().lower() in WEEKDAY_NAMES:
            day = WEEKDAY_NAMES.index(item.strip().lower())
        elif isinstance(item, str) and item.strip() in {"0", "1", "2", "3", "4", "5", "6"}:
            day = int(item.strip())
        else:
            day = None
        if day is None:
            return None
        days.add(day)
    return tuple(sorted(days))


def _guess_separator(text: str) -> str:
    """';' if the first filled line has more of them than commas, else ','."""
    for line in text.splitlines():
        if line.strip():
            return ";" if line.count(";") > line.count(",") else ","
    return ","


def _filled_rows(reader: Iterator[list[str]]) -> Iterator[tuple[int, list[str]]]:
    """Each row with a value in it (stripped cells), with the line it starts on.

    A row of empty cells (";;;;;", as spreadsheets export a blank row) is blank.
    """
    line = 1
    for cells in reader:
        if any(cell.strip() for cell in cells):
            yield line, [cell.strip() for cell in cells]
        line = reader.line_num + 1


def _header_problem(names: list[str]) -> str:
    problems = []
    unknown = [name for name in names if name not in CSV_COLUMNS]
    if unknown:
        problems.append("unknown column(s): " + ", ".join(repr(name) for name in unknown))
    missing = [column for column in CSV_COLUMNS if column not in names]
    if missing:
        problems.append("missing column(s): " + ", ".join(missing))
    repeated = sorted({name for name in names if names.count(name) > 1 and name in CSV_COLUMNS})
    if repeated:
        problems.append("column(s) named twice: " + ", ".join(repeated))
    if problems:
        problems.append("the first line must name the columns " + ", ".join(CSV_COLUMNS))
    return "; ".join(problems)
