"""Tests for queue_service.inventory.slots: templates, CSV files, local time, overlaps."""

from __future__ import annotations

import datetime
import time
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from queue_service.errors import ValidationFailed
from queue_service.inventory.slots import (
    CSV_COLUMNS,
    MAX_CSV_ROWS,
    OpeningTemplate,
    RowError,
    Slot,
    SlotStatus,
    local_today,
    make_slot_id,
    overlaps,
    parse_slots_csv,
    parse_template,
    slots_from_template,
)

UTC = datetime.UTC
PARIS = "Europe/Paris"
REUNION = "Indian/Reunion"
SITES = ("bourg", "gex", "belley", "nantua")
PROCEDURES = ("first_request", "renewal", "permit_pickup", "student")
TODAY = datetime.date(2027, 1, 1)
HEADER = ",".join(CSV_COLUMNS)


def make_template(**changes) -> OpeningTemplate:
    """Bourg, renewals, Monday 4 to Sunday 10 January 2027, weekdays 09:00-12:00,
    30-minute appointments at 2 counters."""
    fields = dict(
        site="bourg",
        procedure="renewal",
        first_day=datetime.date(2027, 1, 4),
        last_day=datetime.date(2027, 1, 10),
        weekdays=(0, 1, 2, 3, 4),
        opens=datetime.time(9, 0),
        closes=datetime.time(12, 0),
        appointment_minutes=30,
        counters=2,
    )
    fields.update(changes)
    return OpeningTemplate(**fields)


def make_slot(start: datetime.datetime, minutes: int = 30, counter: int = 1, site: str = "bourg", **changes) -> Slot:
    fields = dict(
        id=f"{site}-renewal-{start:%Y%m%dT%H%M}-c{counter}",
        prefecture="01",
        site=site,
        procedure="renewal",
        starts_at=start,
        duration_minutes=minutes,
        counter=counter,
    )
    fields.update(changes)
    return Slot(**fields)


def utc(*args) -> datetime.datetime:
    return datetime.datetime(*args, tzinfo=UTC)


def starts_by_local_time(slots: list[Slot], timezone: str) -> dict[datetime.datetime, datetime.datetime]:
    """{naive local start: UTC start} of counter 1."""
    return {
        slot.local_start(timezone).replace(tzinfo=None): slot.starts_at for slot in slots if slot.counter == 1
    }


def parse_csv(text: str, today: datetime.date = TODAY, timezone: str = PARIS):
    return parse_slots_csv(text, "01", timezone, SITES, PROCEDURES, today)


# Slots and ids ---------------------------------------------------------------


def test_a_slot_keeps_its_start_in_utc_and_ends_after_its_duration():
    paris_nine = datetime.datetime(2027, 1, 4, 9, 0, tzinfo=ZoneInfo(PARIS))
    slot = make_slot(paris_nine, minutes=45)
    assert slot.starts_at == utc(2027, 1, 4, 8, 0)
    assert slot.starts_at.utcoffset() == datetime.timedelta(0)
    assert slot.ends_at == utc(2027, 1, 4, 8, 45)
    assert slot.local_start(PARIS) == paris_nine
    assert slot.status is SlotStatus.OPEN


def test_a_slot_refuses_a_naive_start_and_an_empty_duration():
    with pytest.raises(ValueError, match="aware"):
        make_slot(datetime.datetime(2027, 1, 4, 9, 0))
    with pytest.raises(ValueError, match="duration"):
        make_slot(utc(2027, 1, 4, 8, 0), minutes=0)
    with pytest.raises(ValueError, match="counter"):
        make_slot(utc(2027, 1, 4, 8, 0), counter=0)


def test_slot_ids_read_as_the_local_timetable():
    start = datetime.datetime(2027, 1, 4, 9, 0)
    assert make_slot_id("bourg", "renewal", start, 2) == "bourg-renewal-20270104T0900-c2"
    assert make_slot_id("bourg", "first_request", start, 1) == "bourg-first_request-20270104T0900-c1"
    # The wall time is used as it is, whatever the tzinfo.
    assert make_slot_id("gex", "renewal", start.replace(tzinfo=ZoneInfo(PARIS)), 1) == "gex-renewal-20270104T0900-c1"


def test_slot_ids_refuse_characters_that_could_make_two_slots_alike():
    start = datetime.datetime(2027, 1, 4, 9, 0)
    for site, procedure in [("Bourg", "renewal"), ("bourg en bresse", "renewal"), ("bourg", "re-newal"), ("", "x")]:
        with pytest.raises(ValueError):
            make_slot_id(site, procedure, start, 1)


def test_slot_classes_are_read_on_the_local_clock():
    monday_nine = make_slot(datetime.datetime(2027, 1, 4, 9, 0, tzinfo=ZoneInfo(PARIS)))
    friday_afternoon = make_slot(datetime.datetime(2027, 1, 8, 14, 0, tzinfo=ZoneInfo(PARIS)), site="gex")
    assert monday_nine.slot_class(PARIS) == "bourg-mon-am"
    assert friday_afternoon.slot_class(PARIS) == "gex-fri-pm"
    # 12:59 is morning, 13:00 afternoon.
    assert make_slot(datetime.datetime(2027, 1, 5, 12, 59, tzinfo=ZoneInfo(PARIS))).slot_class(PARIS) == "bourg-tue-am"
    assert make_slot(datetime.datetime(2027, 1, 5, 13, 0, tzinfo=ZoneInfo(PARIS))).slot_class(PARIS) == "bourg-tue-pm"
    # 00:30 on Tuesday in Paris is still Monday in UTC.
    just_after_midnight = make_slot(utc(2027, 1, 4, 23, 30))
    assert just_after_midnight.slot_class(PARIS) == "bourg-tue-am"
    assert just_after_midnight.slot_class("UTC") == "bourg-mon-pm"
    # 10:00 in Réunion is 06:00 UTC, and 14:00 there is 10:00 UTC.
    assert make_slot(utc(2027, 1, 4, 10, 0)).slot_class(REUNION) == "bourg-mon-pm"
    assert make_slot(utc(2027, 1, 4, 6, 0)).slot_class(REUNION) == "bourg-mon-am"
    assert make_slot(utc(2027, 1, 9, 8, 0)).slot_class(PARIS) == "bourg-sat-am"


# Templates: parsing ------------------------------------------------------------


def good_form(**changes) -> dict[str, object]:
    form: dict[str, object] = {
        "site": "bourg",
        "procedure": "renewal",
        "first_day": "2027-01-04",
        "last_day": "2027-01-10",
        "weekdays": ["0", "1", "2", "3", "4"],
        "opens": "09:00",
        "closes": "12:00",
        "appointment_minutes": "30",
        "counters": "2",
    }
    form.update(changes)
    return form


def template_errors(form: dict[str, object], today: datetime.date = TODAY) -> dict[str, str]:
    with pytest.raises(ValidationFailed) as raised:
        parse_template(form, SITES, PROCEDURES, today)
    return raised.value.errors


def test_a_good_form_gives_its_template():
    assert parse_template(good_form(), SITES, PROCEDURES, TODAY) == make_template()


def test_a_form_may_give_typed_values_and_weekdays_in_several_spellings():
    typed = good_form(
        first_day=datetime.date(2027, 1, 4),
        last_day=datetime.date(2027, 1, 10),
        opens=datetime.time(9, 0),
        closes=datetime.time(12, 0),
        appointment_minutes=30,
        counters=2,
        weekdays=[4, 3, 2, 1, 0, 0],
    )
    assert parse_template(typed, SITES, PROCEDURES, TODAY) == make_template()
    for weekdays in ("0,1,2,3,4", "mon tue wed thu fri", ("Mon", "tue", 2, "3", "FRI")):
        assert parse_template(good_form(weekdays=weekdays), SITES, PROCEDURES, TODAY).weekdays == (0, 1, 2, 3, 4)


def test_a_form_reads_the_checked_weekdays_of_a_multidict():
    from werkzeug.datastructures import MultiDict

    from web.forms import template_values

    form = MultiDict(list(good_form(weekdays="0").items()) + [("weekdays", "2"), ("weekdays", "4")])
    assert parse_template(template_values(form), SITES, PROCEDURES, TODAY).weekdays == (0, 2, 4)


def test_every_wrong_field_is_reported_at_once():
    errors = template_errors(
        {
            "site": "lyon",
            "procedure": "visa",
            "first_day": "04/01/2027",
            "last_day": "2027-02-30",
            "weekdays": ["0", "7"],
            "opens": "9h",
            "closes": "25:00",
            "appointment_minutes": "4",
            "counters": "51",
        }
    )
    assert set(errors) == {
        "site", "procedure", "first_day", "last_day", "weekdays", "opens", "closes", "appointment_minutes", "counters"
    }
    assert all(isinstance(message, str) and message.endswith(".") for message in errors.values())


def test_missing_fields_are_required():
    errors = template_errors({})
    assert set(errors) == {
        "site", "procedure", "first_day", "last_day", "weekdays", "opens", "closes", "appointment_minutes", "counters"
    }
    assert errors["site"] == "This field is required."
    assert errors["weekdays"] == "Choose at least one day of the week."


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"first_day": "2026-12-31"}, "first_day"),
        ({"last_day": "2027-01-03"}, "last_day"),
        ({"last_day": "2027-04-07"}, "last_day"),  # 93 days after 4 January
        ({"weekdays": []}, "weekdays"),
        ({"weekdays": ["sat"], "last_day": "2027-01-08"}, "weekdays"),  # no Saturday from the 4th to the 8th
        ({"opens": "12:00"}, "closes"),
        ({"closes": "08:00"}, "closes"),
        ({"appointment_minutes": "241"}, "appointment_minutes"),
        ({"appointment_minutes": "-5"}, "appointment_minutes"),
        ({"appointment_minutes": True}, "appointment_minutes"),
        ({"closes": "09:20"}, "appointment_minutes"),  # no 30-minute appointment fits
        ({"counters": "0"}, "counters"),
        ({"counters": "1.5"}, "counters"),
    ],
)
def test_each_rule_names_its_field(changes, field):
    assert set(template_errors(good_form(**changes))) == {field}


def test_rules_across_fields_are_reported_with_the_others():
    errors = template_errors(good_form(site="lyon", closes="09:20", weekdays="sat", last_day="2027-01-08"))
    assert set(errors) == {"site", "appointment_minutes", "weekdays"}
    errors = template_errors(good_form(counters="x", first_day="2027-01-01", last_day="2027-04-03", closes="18:00"))
    assert set(errors) == {"counters"}  # the total cannot be counted without counters
    errors = template_errors(good_form(procedure="visa", last_day="2027-04-03", closes="18:00", counters="50"))
    assert set(errors) == {"procedure", "last_day"}


def test_the_limits_themselves_are_accepted():
    template = parse_template(
        good_form(first_day="2027-01-01", last_day="2027-04-03", appointment_minutes="5", counters="1"),
        SITES, PROCEDURES, TODAY,
    )
    assert (template.last_day - template.first_day).days == 92
    assert parse_template(good_form(appointment_minutes="240", closes="13:00"), SITES, PROCEDURES, TODAY)
    assert parse_template(good_form(counters="50"), SITES, PROCEDURES, TODAY).counters == 50


def test_today_is_the_prefectures_day_not_the_utc_date():
    """The slots page took the UTC date for today: just after midnight in Paris it took slots
    for the day just ended, and in Guadeloupe from 20:00 it refused the rest of the day."""
    sunday_just_after_midnight_in_paris = utc(2026, 11, 28, 23, 20)
    today = local_today(sunday_just_after_midnight_in_paris, PARIS)
    assert today == datetime.date(2026, 11, 29)
    assert set(template_errors(good_form(first_day="2026-11-28", last_day="2026-12-04"), today)) == {"first_day"}
    assert parse_template(good_form(first_day="2026-11-29", last_day="2026-12-04"), SITES, PROCEDURES, today)
    thursday_evening_in_guadeloupe = utc(2026, 12, 4, 0, 30)  # 20:30 on Thursday 3 December there
    today = local_today(thursday_evening_in_guadeloupe, "America/Guadeloupe")
    assert today == datetime.date(2026, 12, 3)
    slots, errors = parse_csv(f"{HEADER}\nbourg,renewal,2026-12-03,21:00,30,1\n", today, "America/Guadeloupe")
    assert errors == [] and [slot.starts_at for slot in slots] == [utc(2026, 12, 4, 1, 0)]
    with pytest.raises(ValueError, match="aware"):
        local_today(datetime.datetime(2026, 11, 28, 23, 20), PARIS)


def test_a_template_may_give_at_most_5000_slots():
    # 20 weekdays x 25 slots of 20 minutes (09:00-17:20) x 10 counters = 5,000.
    at_limit = good_form(
        first_day="2027-01-04", last_day="2027-01-29", opens="09:00", closes="17:20",
        appointment_minutes="20", counters="10",
    )
    assert len(slots_from_template(parse_template(at_limit, SITES, PROCEDURES, TODAY), "01", PARIS)) == 5000
    errors = template_errors({**at_limit, "closes": "17:40"})
    assert set(errors) == {"last_day"}
    assert "5,000" in errors["last_day"]


# Templates: slots ----------------------------------------------------------------


def test_a_week_of_weekdays_gives_5_days_x_6_slots_x_2_counters():
    slots = slots_from_template(make_template(), "01", PARIS)
    assert len(slots) == 60
    assert len({slot.id for slot in slots}) == 60
    assert {slot.local_start(PARIS).date() for slot in slots} == {
        datetime.date(2027, 1, day) for day in range(4, 9)
    }
    monday = [slot for slot in slots if slot.local_start(PARIS).date() == datetime.date(2027, 1, 4)]
    assert [slot.id for slot in monday[:4]] == [
        "bourg-renewal-20270104T0900-c1",
        "bourg-renewal-20270104T0900-c2",
        "bourg-renewal-20270104T0930-c1",
        "bourg-renewal-20270104T0930-c2",
    ]
    assert slots == sorted(slots, key=lambda slot: (slot.starts_at, slot.site, slot.counter))
    assert all(slot.prefecture == "01" and slot.status is SlotStatus.OPEN for slot in slots)
    assert {slot.slot_class(PARIS) for slot in slots} == {f"bourg-{day}-am" for day in ("mon", "tue", "wed", "thu", "fri")}


def test_the_last_appointment_ends_by_closing_time():
    slots = slots_from_template(make_template(closes=datetime.time(11, 50), counters=1), "01", PARIS)
    monday = [slot for slot in slots if slot.local_start(PARIS).date() == datetime.date(2027, 1, 4)]
    assert [slot.local_start(PARIS).strftime("%H:%M") for slot in monday] == ["09:00", "09:30", "10:00", "10:30", "11:00"]
    assert len(slots) == 5 * 5


def test_nine_in_paris_is_eight_utc_before_the_spring_change_and_seven_after():
    week = make_template(
        first_day=datetime.date(2027, 3, 22), last_day=datetime.date(2027, 3, 29), weekdays=tuple(range(7))
    )
    starts = starts_by_local_time(slots_from_template(week, "01", PARIS), PARIS)
    assert starts[datetime.datetime(2027, 3, 22, 9, 0)] == utc(2027, 3, 22, 8, 0)
    assert starts[datetime.datetime(2027, 3, 27, 9, 0)] == utc(2027, 3, 27, 8, 0)
    assert starts[datetime.datetime(2027, 3, 28, 9, 0)] == utc(2027, 3, 28, 7, 0)  # Sunday, after 02:00
    assert starts[datetime.datetime(2027, 3, 29, 9, 0)] == utc(2027, 3, 29, 7, 0)


def test_nine_in_paris_is_seven_utc_before_the_autumn_change_and_eight_after():
    week = make_template(
        first_day=datetime.date(2027, 10, 25), last_day=datetime.date(2027, 11, 1), weekdays=tuple(range(7))
    )
    starts = starts_by_local_time(slots_from_template(week, "01", PARIS), PARIS)
    assert starts[datetime.datetime(2027, 10, 25, 9, 0)] == utc(2027, 10, 25, 7, 0)
    assert starts[datetime.datetime(2027, 10, 30, 9, 0)] == utc(2027, 10, 30, 7, 0)
    assert starts[datetime.datetime(2027, 10, 31, 9, 0)] == utc(2027, 10, 31, 8, 0)  # Sunday, after 03:00
    assert starts[datetime.datetime(2027, 11, 1, 9, 0)] == utc(2027, 11, 1, 8, 0)


def test_a_time_the_spring_change_skips_gives_no_slot():
    night = make_template(
        first_day=datetime.date(2027, 3, 28), last_day=datetime.date(2027, 3, 28), weekdays=(6,),
        opens=datetime.time(1, 0), closes=datetime.time(4, 0), counters=1,
    )
    slots = slots_from_template(night, "01", PARIS)
    local_starts = [slot.local_start(PARIS).strftime("%H:%M") for slot in slots]
    # 02:00 and 02:30 do not exist; 01:30 ends at 01:00 UTC, when 03:00 begins.
    assert local_starts == ["01:00", "01:30", "03:00", "03:30"]
    assert [slot.starts_at for slot in slots] == [
        utc(2027, 3, 28, 0, 0), utc(2027, 3, 28, 0, 30), utc(2027, 3, 28, 1, 0), utc(2027, 3, 28, 1, 30)
    ]
    assert "bourg-renewal-20270328T0230-c1" not in {slot.id for slot in slots}
    assert overlaps(slots, []) == []


def test_a_slot_the_spring_change_would_make_overlap_the_next_is_skipped():
    night = make_template(
        first_day=datetime.date(2027, 3, 28), last_day=datetime.date(2027, 3, 28), weekdays=(6,),
        opens=datetime.time(1, 30), closes=datetime.time(4, 30), appointment_minutes=45, counters=1,
    )
    slots = slots_from_template(night, "01", PARIS)
    # 01:30 CET lasts until 03:15 CEST: 02:15 does not exist and 03:00 would overlap it.
    assert [slot.local_start(PARIS).strftime("%H:%M") for slot in slots] == ["01:30", "03:45"]
    assert overlaps(slots, []) == []


def test_a_slot_the_spring_change_would_make_run_past_closing_is_skipped():
    night = make_template(
        first_day=datetime.date(2027, 3, 27), last_day=datetime.date(2027, 3, 28), weekdays=(5, 6),
        opens=datetime.time(1, 30), closes=datetime.time(3, 0), appointment_minutes=60, counters=1,
    )
    slots = slots_from_template(night, "01", PARIS)
    # On Sunday, 01:30 CET plus an hour is 03:30 CEST: past closing. Saturday is a normal night.
    assert [slot.id for slot in slots] == ["bourg-renewal-20270327T0130-c1"]


def test_a_time_the_autumn_change_repeats_is_taken_once_at_its_first_occurrence():
    night = make_template(
        first_day=datetime.date(2027, 10, 31), last_day=datetime.date(2027, 10, 31), weekdays=(6,),
        opens=datetime.time(2, 0), closes=datetime.time(3, 0), counters=1,
    )
    slots = slots_from_template(night, "01", PARIS)
    # 02:00 and 02:30 summer time (CEST, UTC+2): the first occurrence.
    assert [slot.starts_at for slot in slots] == [utc(2027, 10, 31, 0, 0), utc(2027, 10, 31, 0, 30)]
    assert [slot.local_start(PARIS).utcoffset() for slot in slots] == [datetime.timedelta(hours=2)] * 2


def test_reunion_keeps_the_same_offset_all_year():
    for first_day in (datetime.date(2027, 3, 22), datetime.date(2027, 10, 25)):
        week = make_template(first_day=first_day, last_day=first_day + datetime.timedelta(days=7), weekdays=tuple(range(7)))
        slots = slots_from_template(week, "974", REUNION)
        assert len(slots) == 8 * 6 * 2
        for slot in slots:
            assert slot.local_start(REUNION).utcoffset() == datetime.timedelta(hours=4)
            assert slot.prefecture == "974"
        starts = starts_by_local_time(slots, REUNION)
        for offset in range(8):
            day = first_day + datetime.timedelta(days=offset)
            assert starts[datetime.datetime.combine(day, datetime.time(9, 0))] == datetime.datetime.combine(
                day, datetime.time(5, 0), tzinfo=UTC
            )


# CSV files -------------------------------------------------------------------


def test_a_good_file_gives_its_slots():
    text = f"{HEADER}\nbourg,renewal,2027-01-04,09:00,30,1\ngex,student,2027-01-08,14:00,20,3\n"
    slots, errors = parse_csv(text)
    assert errors == []
    assert slots == [
        Slot("bourg-renewal-20270104T0900-c1", "01", "bourg", "renewal", utc(2027, 1, 4, 8, 0), 30, 1),
        Slot("gex-student-20270108T1400-c3", "01", "gex", "student", utc(2027, 1, 8, 13, 0), 20, 3),
    ]
    assert [slot.slot_class(PARIS) for slot in slots] == ["bourg-mon-am", "gex-fri-pm"]


def test_bad_rows_are_reported_with_their_line_and_good_rows_kept():
    text = "\n".join(
        [
            HEADER,
            "bourg,renewal,2027-01-04,09:00,30,1",  # 2 good
            "lyon,renewal,2027-01-04,09:00,30,1",  # 3 unknown site
            "bourg,renewal,2027-02-30,09:00,30,1",  # 4 no such date
            "bourg,renewal,2027-01-04,9h30,30,1",  # 5 not a time
            "bourg,renewal,2027-01-04,10:00,30",  # 6 no counter
            "",  # 7 blank
            "bourg,renewal,2027-01-04,09:00,30,1",  # 8 same as line 2
            "bourg,renewal,2026-12-31,09:00,30,1",  # 9 in the past
            "bourg,visa,2027-01-04,11:00,0,99",  # 10 three wrong columns
            "bourg,renewal,2027-03-28,02:30,30,1",  # 11 does not exist in Paris
            "bourg,renewal,2027-01-04,11:00,30,1,extra",  # 12 one value too many
            "gex,permit_pickup,2027-01-05,14:00,15,2",  # 13 good
            "",
        ]
    )
    slots, errors = parse_csv(text)
    assert [slot.id for slot in slots] == ["bourg-renewal-20270104T0900-c1", "gex-permit_pickup-20270105T1400-c2"]
    assert [error.line for error in errors] == [3, 4, 5, 6, 8, 9, 10, 11, 12]
    messages = {error.line: error.message for error in errors}
    assert messages[3].startswith("site:")
    assert messages[4].startswith("date:")
    assert messages[5].startswith("start:")
    assert messages[6] == "counter: missing value"
    assert messages[8] == "start: same site, counter and start as line 2"
    assert messages[9] == "date: in the past"
    assert [part.split(":")[0] for part in messages[10].split("; ")] == ["procedure", "duration_minutes", "counter"]
    assert "does not exist" in messages[11]
    assert "7 values for 6 columns" in messages[12]
    assert str(errors[0]) == f"line 3: {messages[3]}"


def test_the_header_is_matched_in_any_order_and_case():
    text = "Counter,START,date,Duration_Minutes,procedure,Site\n2,10:15,2027-01-04,15,renewal,nantua\n"
    slots, errors = parse_csv(text)
    assert errors == []
    assert [(slot.site, slot.counter, slot.duration_minutes, slot.starts_at) for slot in slots] == [
        ("nantua", 2, 15, utc(2027, 1, 4, 9, 15))
    ]


@pytest.mark.parametrize(
    ("header", "words"),
    [
        (HEADER + ",room", ["unknown", "'room'"]),
        ("site,procedure,date,start,duration_minutes", ["missing", "counter"]),
        (HEADER + ",site", ["twice", "site"]),
    ],
)
def test_a_wrong_header_is_one_error_on_its_line_and_no_slot(header, words):
    slots, errors = parse_csv(f"{header}\nbourg,renewal,2027-01-04,09:00,30,1,1\n")
    assert slots == []
    assert len(errors) == 1 and errors[0].line == 1
    assert all(word in errors[0].message for word in words)


def test_an_excel_export_with_semicolons_a_bom_crlf_and_french_dates_is_read():
    text = (
        "\ufeffsite;procedure;date;start;duration_minutes;counter\r\n"
        "Bourg;RENEWAL;04/01/2027;09:00;30;1\r\n"
        ";;;;;\r\n"
        "gex;renewal;2027-01-05;14:30:00;30;2\r\n"
        "belley;renewal;31/02/2027;09:00;30;1\r\n"
    )
    slots, errors = parse_csv(text)
    assert [slot.id for slot in slots] == ["bourg-renewal-20270104T0900-c1", "gex-renewal-20270105T1430-c2"]
    assert errors == [RowError(5, "date: not a date (YYYY-MM-DD)")]


def test_a_quoted_value_spanning_lines_keeps_later_line_numbers_right():
    text = f'{HEADER}\n"bour\ng",renewal,2027-01-04,09:00,30,1\nlyon,renewal,2027-01-04,09:00,30,1\n'
    slots, errors = parse_csv(text)
    assert slots == []
    assert [error.line for error in errors] == [2, 4]


def test_an_empty_file_is_one_error():
    assert parse_csv("") == ([], [RowError(1, "the file is empty; the first line must name the columns")])
    assert parse_csv("\ufeff\n\n")[1][0].line == 1


def test_more_than_10000_rows_is_one_error():
    row = "bourg,renewal,2027-01-04,09:00,30,1\n"
    slots, errors = parse_csv(HEADER + "\n" + row * (MAX_CSV_ROWS + 1))
    assert slots == []
    assert len(errors) == 1
    assert errors[0].line == MAX_CSV_ROWS + 2
    assert "10,000" in errors[0].message
    # 10,000 rows are read (as one good row and 9,999 duplicates).
    slots, errors = parse_csv(HEADER + "\n" + row * MAX_CSV_ROWS)
    assert len(slots) == 1 and len(errors) == MAX_CSV_ROWS - 1


def test_a_template_written_as_csv_reads_back_as_the_same_slots():
    template = make_template(
        first_day=datetime.date(2027, 3, 26), last_day=datetime.date(2027, 3, 29), weekdays=tuple(range(7)),
        opens=datetime.time(1, 0), closes=datetime.time(4, 0),
    )
    slots = slots_from_template(template, "01", PARIS)
    rows = [HEADER] + [
        f"{s.site},{s.procedure},{s.local_start(PARIS):%Y-%m-%d},{s.local_start(PARIS):%H:%M},{s.duration_minutes},{s.counter}"
        for s in slots
    ]
    parsed, errors = parse_csv("\n".join(rows))
    assert errors == []
    assert parsed == slots


# Overlaps ----------------------------------------------------------------------


def test_overlaps_are_found_on_the_same_counter():
    nine = make_slot(utc(2027, 1, 4, 8, 0), minutes=30)
    nine_fifteen = make_slot(utc(2027, 1, 4, 8, 15), minutes=30)
    assert overlaps([nine, nine_fifteen], []) == [(nine, nine_fifteen)]
    assert overlaps([nine_fifteen], [nine]) == [(nine_fifteen, nine)]
    assert overlaps([nine], [nine_fifteen]) == [(nine, nine_fifteen)]
    long_one = make_slot(utc(2027, 1, 4, 7, 0), minutes=240, id="long")
    assert set(overlaps([long_one], [nine, nine_fifteen])) == {(long_one, nine), (long_one, nine_fifteen)}


def test_no_overlap_on_another_counter_another_site_or_end_to_end():
    nine = make_slot(utc(2027, 1, 4, 8, 0), minutes=30)
    other_counter = make_slot(utc(2027, 1, 4, 8, 0), counter=2)
    other_site = make_slot(utc(2027, 1, 4, 8, 0), site="gex")
    nine_thirty = make_slot(utc(2027, 1, 4, 8, 30))
    assert overlaps([nine, other_counter, other_site, nine_thirty], []) == []
    assert overlaps([nine_thirty], [nine]) == []


def test_cancelled_and_existing_only_pairs_are_ignored():
    nine = make_slot(utc(2027, 1, 4, 8, 0))
    cancelled = make_slot(utc(2027, 1, 4, 8, 0), id="cancelled", status=SlotStatus.CANCELLED)
    booked_a = make_slot(utc(2027, 1, 4, 8, 0), id="a", status=SlotStatus.BOOKED)
    booked_b = make_slot(utc(2027, 1, 4, 8, 10), id="b", status="booked")
    assert booked_b.status is SlotStatus.BOOKED
    assert overlaps([nine], [cancelled]) == []
    assert overlaps([], [booked_a, booked_b]) == []
    assert set(overlaps([nine], [booked_a, booked_b, cancelled])) == {(nine, booked_a), (nine, booked_b)}


def test_overlaps_of_many_slots_take_no_quadratic_time():
    start = utc(2027, 1, 4, 0, 0)
    minute = datetime.timedelta(minutes=1)
    candidates = [make_slot(start + 2 * i * minute, minutes=1, id=f"c{i}") for i in range(40_000)]
    existing = [make_slot(start + (2 * i + 1) * minute, minutes=1, id=f"e{i}") for i in range(40_000)]
    began = time.perf_counter()
    assert overlaps(candidates, existing) == []
    # Quadratic would be 3.2e9 comparisons: minutes, not this.
    assert time.perf_counter() - began < 5


# Properties --------------------------------------------------------------------

#: The clock changes of 2027 in a few zones: Paris at 02:00/03:00, Havana and
#: Santiago at midnight, Lord Howe by half an hour. Réunion and Cayenne have none.
CLOCK_CHANGES = [
    (PARIS, datetime.date(2027, 3, 28)),
    (PARIS, datetime.date(2027, 10, 31)),
    ("America/Havana", datetime.date(2027, 3, 14)),
    ("America/Havana", datetime.date(2027, 11, 7)),
    ("Australia/Lord_Howe", datetime.date(2027, 4, 4)),
    ("Australia/Lord_Howe", datetime.date(2027, 10, 3)),
    ("America/Santiago", datetime.date(2027, 4, 3)),
    ("America/Santiago", datetime.date(2027, 9, 5)),
]
ZONES = sorted({zone for zone, _ in CLOCK_CHANGES} | {REUNION, "America/Cayenne"})


@st.composite
def templates(draw, around: datetime.date | None = None) -> OpeningTemplate:
    """A template; if ``around`` is given, one whose range holds that day,
    often with hours around the night, when clocks change."""
    weekdays = draw(st.sets(st.integers(0, 6), min_size=1))
    if around is None:
        first_day = draw(st.dates(datetime.date(2027, 1, 1), datetime.date(2027, 12, 31)))
        last_day = first_day + datetime.timedelta(days=draw(st.integers(0, 4)))
    else:
        first_day = around - datetime.timedelta(days=draw(st.integers(0, 2)))
        last_day = around + datetime.timedelta(days=draw(st.integers(0, 2)))
        weekdays.add(around.weekday())
    minutes = draw(st.one_of(st.sampled_from([15, 20, 30, 45, 60, 90]), st.integers(5, 240)))
    opens = draw(st.one_of(st.integers(0, 4 * 60), st.integers(20 * 60, 23 * 60), st.integers(0, 23 * 60))) // 5 * 5
    # Mostly a few appointments' worth of opening hours, and a remainder.
    length = minutes * draw(st.integers(1, 8)) + draw(st.integers(0, minutes - 1))
    closes = min(opens + length, 23 * 60 + 59)
    return make_template(
        site=draw(st.sampled_from(SITES)),
        first_day=first_day,
        last_day=last_day,
        weekdays=tuple(sorted(weekdays)),
        opens=datetime.time(opens // 60, opens % 60),
        closes=datetime.time(closes // 60, closes % 60),
        appointment_minutes=minutes,
        counters=draw(st.integers(1, 3)),
    )


@st.composite
def templates_and_zones(draw) -> tuple[OpeningTemplate, str]:
    if draw(st.integers(0, 4)):
        zone, day = draw(st.sampled_from(CLOCK_CHANGES))
        return draw(templates(around=day)), zone
    return draw(templates()), draw(st.sampled_from(ZONES))


@settings(max_examples=400, deadline=None)
@given(template_and_zone=templates_and_zones())
def test_template_slots_never_overlap_and_stay_within_opening_hours(template_and_zone):
    template, timezone = template_and_zone
    slots = slots_from_template(template, "01", timezone)
    zone = ZoneInfo(timezone)
    assert len({slot.id for slot in slots}) == len(slots)
    by_counter: dict[int, list[Slot]] = {}
    for slot in slots:
        by_counter.setdefault(slot.counter, []).append(slot)
        local_start = slot.starts_at.astimezone(zone)
        local_end = slot.ends_at.astimezone(zone)
        assert local_start.weekday() in template.weekdays
        assert template.first_day <= local_start.date() <= template.last_day
        assert local_start.time() >= template.opens
        # It ends the same day, no later than closing, on the local clock.
        assert local_end.replace(tzinfo=None) <= datetime.datetime.combine(local_start.date(), template.closes)
        assert slot.slot_class(timezone).startswith(f"{template.site}-")
    for counter_slots in by_counter.values():
        counter_slots.sort(key=lambda slot: slot.starts_at)
        for earlier, later in zip(counter_slots, counter_slots[1:]):
            assert earlier.ends_at <= later.starts_at
    assert sorted(by_counter) == list(range(1, template.counters + 1)) or not slots
    assert overlaps(slots, []) == []


@settings(max_examples=300, deadline=None)
@given(template=templates())
def test_away_from_clock_changes_a_template_gives_every_slot_on_paper(template):
    slots = slots_from_template(template, "974", REUNION)
    minutes = (template.closes.hour * 60 + template.closes.minute) - (template.opens.hour * 60 + template.opens.minute)
    days = sum(
        1
        for offset in range((template.last_day - template.first_day).days + 1)
        if (template.first_day + datetime.timedelta(days=offset)).weekday() in template.weekdays
    )
    assert len(slots) == days * (minutes // template.appointment_minutes) * template.counters


@st.composite
def slot_lists(draw, prefix: str) -> list[Slot]:
    base = utc(2027, 1, 4, 8, 0)
    return [
        make_slot(
            base + datetime.timedelta(minutes=draw(st.integers(0, 240))),
            minutes=draw(st.integers(1, 90)),
            counter=draw(st.integers(1, 2)),
            site=draw(st.sampled_from(SITES[:2])),
            id=f"{prefix}{index}",
            status=draw(st.sampled_from(list(SlotStatus))),
        )
        for index in range(draw(st.integers(0, 12)))
    ]


@settings(max_examples=300, deadline=None)
@given(candidates=slot_lists("c"), existing=slot_lists("e"))
def test_overlaps_finds_what_comparing_every_pair_finds(candidates, existing):
    def clash(a: Slot, b: Slot) -> bool:
        return (
            a.site == b.site and a.counter == b.counter and a.starts_at < b.ends_at and b.starts_at < a.ends_at
            and SlotStatus.CANCELLED not in (a.status, b.status)
        )

    expected = {
        frozenset((a.id, b.id)) for i, a in enumerate(candidates) for b in candidates[i + 1:] if clash(a, b)
    } | {frozenset((a.id, b.id)) for a in candidates for b in existing if clash(a, b)}
    found = overlaps(candidates, existing)
    assert {frozenset((a.id, b.id)) for a, b in found} == expected
    assert len(found) == len(expected)
    for first, second in found:
        assert first.id.startswith("c")
        if second.id.startswith("c"):
            assert first.starts_at <= second.starts_at
