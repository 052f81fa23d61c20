"""Draw schedules: local-time cron across DST, explicit dates, the admin's form,
and a clock that enqueues every draw exactly once through downtime and restarts."""

import dataclasses
import datetime
import json
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from queue_service.draws.schedules import (
    DrawPolicy,
    DrawSchedule,
    add_draw_date,
    draw_id,
    due_draw_times,
    entry_cutoff,
    local_to_utc,
    next_draw_times,
    parse_draw_id,
    parse_schedule,
    schedule_from_dict,
    schedule_to_dict,
    slot_horizon,
)
from queue_service.errors import ValidationFailed
from web.forms import schedule_values

UTC = datetime.timezone.utc
PARIS = "Europe/Paris"
# Summer time in Paris, 2027: clocks jump from 02:00 to 03:00 on March 28
# (at 01:00 UTC) and fall back from 03:00 to 02:00 on October 31 (at 01:00 UTC).
SPRING_JUMP = datetime.datetime(2027, 3, 28, 1, 0, tzinfo=UTC)
FALL_BACK = datetime.datetime(2027, 10, 31, 1, 0, tzinfo=UTC)
NEW_YEAR = datetime.datetime(2027, 1, 1, tzinfo=UTC)


def at(*fields) -> datetime.datetime:
    return datetime.datetime(*fields, tzinfo=UTC)


def cron_schedule(cron: str, created_at: datetime.datetime = NEW_YEAR, **changes) -> DrawSchedule:
    return DrawSchedule("01", "renewal", PARIS, cron, created_at=created_at, **changes)


def dates_schedule(local_dates: list[str], created_at: datetime.datetime = NEW_YEAR) -> DrawSchedule:
    dates = tuple(local_to_utc(datetime.datetime.fromisoformat(text), PARIS) for text in local_dates)
    return DrawSchedule("01", "renewal", PARIS, None, dates=dates, created_at=created_at)


def paris_ids(times: list[datetime.datetime]) -> list[str]:
    return [draw_id("01", "renewal", moment, PARIS) for moment in times]


# Cron in local time -------------------------------------------------------


def test_monday_ten_oclock_stays_ten_oclock_in_paris_across_both_changes():
    schedule = cron_schedule("0 10 * * MON")
    spring = next_draw_times(schedule, at(2027, 3, 16), count=3)
    autumn = next_draw_times(schedule, at(2027, 10, 19), count=3)
    assert spring == [at(2027, 3, 22, 9), at(2027, 3, 29, 8), at(2027, 4, 5, 8)]
    assert autumn == [at(2027, 10, 25, 8), at(2027, 11, 1, 9), at(2027, 11, 8, 9)]
    assert {identity[-4:] for identity in paris_ids(spring + autumn)} == {"1000"}


def test_a_time_the_spring_jump_skips_fires_once_at_the_jump():
    schedule = cron_schedule("30 2 * * *")
    times = next_draw_times(schedule, at(2027, 3, 26, 12), count=3)
    assert times == [at(2027, 3, 27, 1, 30), SPRING_JUMP, at(2027, 3, 29, 0, 30)]
    assert paris_ids(times) == [
        "01-renewal-20270327T0230",
        "01-renewal-20270328T0300",  # 02:30 never happens that night: the draw runs at 03:00
        "01-renewal-20270329T0230",
    ]


def test_several_times_in_the_spring_gap_merge_into_one_draw():
    schedule = cron_schedule("0,30 2,3 * * SUN")
    times = next_draw_times(schedule, at(2027, 3, 27), count=3)
    # 02:00, 02:30 and 03:00 local are all the instant of the jump; 03:30 is half an hour later.
    assert times == [SPRING_JUMP, SPRING_JUMP + datetime.timedelta(minutes=30), at(2027, 4, 4, 0)]


def test_a_time_that_happens_twice_in_autumn_fires_once_at_its_first_occurrence():
    schedule = cron_schedule("30 2 * * *")
    times = next_draw_times(schedule, at(2027, 10, 29, 12), count=3)
    assert times == [at(2027, 10, 30, 0, 30), at(2027, 10, 31, 0, 30), at(2027, 11, 1, 1, 30)]
    assert paris_ids(times) == ["01-renewal-20271030T0230", "01-renewal-20271031T0230", "01-renewal-20271101T0230"]
    # Looking from inside the repeated hour (02:15 winter time), 02:30 is not due again.
    assert next_draw_times(schedule, at(2027, 10, 31, 1, 15), count=1) == [at(2027, 11, 1, 1, 30)]
    assert due_draw_times(schedule, at(2027, 10, 31, 0, 45), at(2027, 10, 31, 2)) == []


def test_hourly_cron_over_the_autumn_night_skips_the_repeated_hour():
    schedule = cron_schedule("0 * * * *")
    times = due_draw_times(schedule, at(2027, 10, 30, 22, 30), at(2027, 10, 31, 3, 30))
    # Local 01:00, 02:00 (summer), 03:00, 04:00, 05:00 (winter): 02:00 winter time is the same wall time.
    assert times == [at(2027, 10, 30, 23), at(2027, 10, 31, 0), at(2027, 10, 31, 2), at(2027, 10, 31, 3)]


def _expected_by_matching_every_minute(cron: str, start: datetime.datetime, end: datetime.datetime) -> list:
    """An oracle that does not use croniter's iteration nor local_to_utc: test each UTC minute."""
    zone = ZoneInfo(PARIS)
    expected = set()
    moment = start + datetime.timedelta(minutes=1)
    while moment <= end:
        local = moment.astimezone(zone)
        if local.fold == 0 and croniter.match(cron, local.replace(tzinfo=None)):
            expected.add(moment)
        moment += datetime.timedelta(minutes=1)
    if start < SPRING_JUMP <= end:
        gap = [datetime.datetime(2027, 3, 28, 2, minute) for minute in range(60)]
        if any(croniter.match(cron, wall_time) for wall_time in gap):
            expected.add(SPRING_JUMP)
    return sorted(expected)


@pytest.mark.parametrize("cron", ["30 2 * * *", "*/20 1-3 * * SUN", "0 * * * *", "45 1,2,3 * * *", "0 10 * * MON"])
@pytest.mark.parametrize("change", [SPRING_JUMP, FALL_BACK])
def test_cron_times_match_a_minute_by_minute_oracle_around_each_change(cron, change):
    start, end = change - datetime.timedelta(hours=36), change + datetime.timedelta(hours=36)
    schedule = cron_schedule(cron)
    assert due_draw_times(schedule, start, end, limit=1000) == _expected_by_matching_every_minute(cron, start, end)


@hypothesis_settings(max_examples=300, deadline=None)
@given(
    wall_times=st.lists(
        st.datetimes(min_value=datetime.datetime(2026, 1, 1), max_value=datetime.datetime(2040, 1, 1)),
        min_size=2,
        max_size=2,
    ),
    timezone=st.sampled_from([PARIS, "America/Miquelon", "Australia/Lord_Howe", "America/Santiago"]),
)
def test_a_later_wall_time_never_fires_earlier(wall_times, timezone):
    earlier, later = sorted(wall_times)
    assert local_to_utc(earlier, timezone) <= local_to_utc(later, timezone)
    # It fires at that wall time, or at the end of the jump that skips it.
    fired = local_to_utc(earlier, timezone).astimezone(ZoneInfo(timezone))
    assert fired.replace(tzinfo=None) >= earlier


# Explicit dates -----------------------------------------------------------


def test_explicit_local_dates_are_parsed_sorted_and_read_in_paris_time():
    form = {"dates": "2027-11-02 09:30\r\n\n2027-03-28 02:30\n  2027-10-31 02:30  \n2027-06-01 10:00\n2027-06-01 10:00"}
    schedule = parse_schedule(schedule_values(form), "01", "renewal", PARIS, NEW_YEAR)
    assert schedule.cron is None
    assert schedule.dates == (SPRING_JUMP, at(2027, 6, 1, 8), at(2027, 10, 31, 0, 30), at(2027, 11, 2, 8, 30))
    assert next_draw_times(schedule, at(2027, 6, 1, 8), count=5) == [at(2027, 10, 31, 0, 30), at(2027, 11, 2, 8, 30)]
    assert due_draw_times(schedule, NEW_YEAR, at(2027, 10, 31, 0, 30)) == list(schedule.dates[:3])
    assert next_draw_times(schedule, at(2028, 1, 1)) == []


def test_dates_must_be_in_the_future_well_formed_and_at_most_a_hundred():
    def error(dates):
        with pytest.raises(ValidationFailed) as raised:
            parse_schedule(schedule_values({"dates": dates}), "01", "renewal", PARIS, at(2027, 6, 1, 8))
        return raised.value.errors

    assert error("2027-06-01 10:00\n2027-07-01 10:00") == {"dates": "Every date must be in the future."}
    bad_format = {"dates": "Write one date per line as YYYY-MM-DD HH:MM, in the prefecture's local time."}
    for text in ["2027-07-01", "2027-07-01 10:00:00", "01/07/2027 10:00", "2027-02-30 10:00", "2027-07-01 24:00"]:
        assert error(text) == bad_format, text
    many = "\n".join(f"2028-01-01 {hour:02d}:{minute:02d}" for hour in range(10) for minute in range(0, 60, 6))
    assert len(many.splitlines()) == 100
    assert len(parse_schedule(schedule_values({"dates": many}), "01", "renewal", PARIS, NEW_YEAR).dates) == 100
    assert error(many + "\n2028-01-02 10:00") == {"dates": "A schedule holds at most 100 dates."}


# The admin's form ---------------------------------------------------------


def test_a_form_with_defaults_gives_the_documented_schedule():
    form = {"cron": "  0 10   * * MON ", "constraints_apply": "on", "declined_returns_to_pool": "on",
            "expired_returns_to_pool": "on"}
    schedule = parse_schedule(schedule_values(form), "01", "renewal", PARIS, NEW_YEAR)
    assert schedule == DrawSchedule(
        prefecture="01",
        procedure="renewal",
        timezone=PARIS,
        cron="0 10 * * MON",
        dates=(),
        cutoff_minutes=60,
        horizon_from_days=7,
        horizon_to_days=28,
        confirmation_hours=48,
        policy=DrawPolicy(aging=0.0, urgency_window_days=60, urgency_share=0.1, constraints_apply=True),
        active=True,
        created_at=NEW_YEAR,
    )


def test_form_values_as_a_browser_and_as_json_send_them():
    from_browser = {
        "cron": "0 10 * * MON",
        "dates": "",
        "cutoff_minutes": "120",
        "horizon_from_days": "0",
        "horizon_to_days": "180",
        "confirmation_hours": "336",
        "aging": "0,5",
        "urgency_window_days": "365",
        "urgency_share": "1",
        "constraints_apply": "off",
    }
    from_json = {
        "cron": "0 10 * * MON",
        "cutoff_minutes": 120,
        "horizon_from_days": 0,
        "horizon_to_days": 180,
        "confirmation_hours": 336,
        "aging": 0.5,
        "urgency_window_days": 365,
        "urgency_share": 1,
        "constraints_apply": False,
    }
    browser = parse_schedule(schedule_values(from_browser), "01", "renewal", PARIS, NEW_YEAR)
    assert browser == parse_schedule(schedule_values(from_json), "01", "renewal", PARIS, NEW_YEAR)
    assert (browser.cutoff_minutes, browser.horizon_from_days, browser.horizon_to_days) == (120, 0, 180)
    assert browser.policy == DrawPolicy(aging=0.5, urgency_window_days=365, urgency_share=1.0, constraints_apply=False,
                                        declined_returns_to_pool=False, expired_returns_to_pool=False)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("on", True), ("YES", True), ("true", True), ("1", True), (True, True), (None, False), ("", False), (False, False)],
)
def test_constraints_apply_reads_a_checkbox(value, expected):
    form = {"cron": "0 10 * * MON"} if value is None else {"cron": "0 10 * * MON", "constraints_apply": value}
    assert parse_schedule(schedule_values(form), "01", "renewal", PARIS, NEW_YEAR).policy.constraints_apply is expected


def test_every_wrong_field_is_reported_at_once():
    form = {
        "cron": "* * * * *",
        "cutoff_minutes": "10081",
        "horizon_from_days": "-1",
        "horizon_to_days": "181",
        "confirmation_hours": "0",
        "aging": "10.5",
        "urgency_window_days": "366",
        "urgency_share": "1.1",
        "constraints_apply": "maybe",
    }
    with pytest.raises(ValidationFailed) as raised:
        parse_schedule(form, "01", "renewal", PARIS, NEW_YEAR)
    assert raised.value.http_status == 422
    assert raised.value.errors == {
        "cron": "Draws cannot run more often than once an hour on average.",
        "cutoff_minutes": "Enter a whole number of minutes from 0 to 10080 (one week).",
        "horizon_from_days": "Enter a whole number of days from 0 to 179.",
        "horizon_to_days": "Enter a whole number of days from 1 to 180.",
        "confirmation_hours": "Enter a whole number of hours from 1 to 336 (two weeks).",
        "aging": "Enter a number from 0 to 10.",
        "urgency_window_days": "Enter a whole number of days from 0 to 365.",
        "urgency_share": "Enter a share from 0 to 1, such as 0.1 for a tenth of the slots.",
        "constraints_apply": "Tick the box or leave it empty.",
    }


@pytest.mark.parametrize(
    "changes",
    [
        {"cutoff_minutes": "1.5"},
        {"cutoff_minutes": True},
        {"horizon_from_days": "28"},  # not before the default end, 28
        {"horizon_from_days": "10", "horizon_to_days": "9"},
        {"aging": "nan"},
        {"aging": float("inf")},
        {"aging": "-0.1"},
        {"urgency_share": "10 %"},
        {"confirmation_hours": "two days"},
    ],
)
def test_one_wrong_number_is_reported_under_its_own_name(changes):
    with pytest.raises(ValidationFailed) as raised:
        parse_schedule({"cron": "0 10 * * MON", **changes}, "01", "renewal", PARIS, NEW_YEAR)
    field = "horizon_to_days" if "horizon_from_days" in changes else next(iter(changes))
    assert set(raised.value.errors) == {field}


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({}, "Give a cron expression or a list of dates."),
        ({"cron": " ", "dates": "\n"}, "Give a cron expression or a list of dates."),
    ],
)
def test_a_cron_expression_or_dates_is_needed(form, message):
    with pytest.raises(ValidationFailed) as raised:
        parse_schedule(form, "01", "renewal", PARIS, NEW_YEAR)
    assert raised.value.errors == {"cron": message, "dates": message}


# Both a cron expression and dates: this was refused ("not both") until an admin could add one
# explicit draw to a repeating schedule; now the schedule gives the draws of both.

def test_a_cron_expression_and_dates_give_the_draws_of_both_each_once():
    schedule = parse_schedule({"cron": "0 10 * * MON", "dates": ["2027-01-06 14:00", "2027-01-11 10:00"]},
                              "01", "renewal", PARIS, NEW_YEAR)
    assert schedule.cron == "0 10 * * MON" and len(schedule.dates) == 2
    # 11 January at 10:00 is both a Monday of the cron and a date: one draw.
    assert paris_ids(next_draw_times(schedule, NEW_YEAR, 4)) == [
        "01-renewal-20270104T1000", "01-renewal-20270106T1400", "01-renewal-20270111T1000", "01-renewal-20270118T1000"]
    assert paris_ids(due_draw_times(schedule, NEW_YEAR, at(2027, 1, 10))) == [
        "01-renewal-20270104T1000", "01-renewal-20270106T1400"]


def test_a_wrong_date_beside_a_good_cron_expression_is_reported_under_dates_only():
    with pytest.raises(ValidationFailed) as raised:
        parse_schedule({"cron": "0 10 * * MON", "dates": ["2026-12-01 10:00"]}, "01", "renewal", PARIS, NEW_YEAR)
    assert raised.value.errors == {"dates": "Every date must be in the future."}


def test_one_draw_added_to_a_cron_schedule_keeps_its_draws_and_its_creation():
    created = NEW_YEAR - datetime.timedelta(days=30)
    schedule = cron_schedule("0 10 * * MON", created_at=created, cutoff_minutes=30)
    added, moment = add_draw_date(schedule, "2027-01-06T14:00", NEW_YEAR)
    assert moment == at(2027, 1, 6, 13, 0)
    assert added == dataclasses.replace(schedule, dates=(moment,)) and added.created_at == created
    assert paris_ids(next_draw_times(added, NEW_YEAR, 3)) == [
        "01-renewal-20270104T1000", "01-renewal-20270106T1400", "01-renewal-20270111T1000"]
    again, _ = add_draw_date(added, "2027-01-06 14:00", NEW_YEAR)
    assert again == added  # a time the schedule already gives adds nothing
    on_a_monday, _ = add_draw_date(schedule, "2027-01-11 10:00", NEW_YEAR)
    assert next_draw_times(on_a_monday, NEW_YEAR, 3) == next_draw_times(schedule, NEW_YEAR, 3)


@pytest.mark.parametrize(("text", "message"), [
    ("2026-12-31 10:00", "Every date must be in the future."),
    ("2029-06-01 10:00", "Every date must be within the next two years."),
    ("next monday", "Write the draw's time as YYYY-MM-DD HH:MM, in the prefecture's local time."),
    ("2027-02-30 10:00", "Write the draw's time as YYYY-MM-DD HH:MM, in the prefecture's local time."),
    (None, "Write the draw's time as YYYY-MM-DD HH:MM, in the prefecture's local time."),
    ("", "Write the draw's time as YYYY-MM-DD HH:MM, in the prefecture's local time."),
])
def test_an_added_draw_in_the_past_beyond_two_years_or_not_a_time_is_refused(text, message):
    with pytest.raises(ValidationFailed) as raised:
        add_draw_date(cron_schedule("0 10 * * MON"), text, NEW_YEAR)
    assert raised.value.errors == {"at": message}


def test_an_added_draw_beyond_the_hundred_dates_to_come_is_refused():
    full = dates_schedule([f"2027-02-{day:02d} {hour:02d}:00" for day in range(1, 26) for hour in (8, 10, 14, 16)])
    assert len(full.dates) == 100
    with pytest.raises(ValidationFailed) as raised:
        add_draw_date(full, "2027-03-01 10:00", NEW_YEAR)
    assert raised.value.errors == {"at": "A schedule holds at most 100 dates."}


@pytest.mark.parametrize(
    ("cron", "message"),
    [
        ("* * * * *", "Draws cannot run more often than once an hour on average."),
        ("*/30 * * * *", "Draws cannot run more often than once an hour on average."),
        ("*/5 9-17 * * MON-FRI", "Draws cannot run more often than once an hour on average."),
        ("@daily", "Write a cron expression of five fields: minute, hour, day of month, month, day of week."),
        ("0 0 10 * * MON", "Write a cron expression of five fields: minute, hour, day of month, month, day of week."),
        ("0 25 * * *", "This cron expression is not valid."),
        ("0 10 * * FUNDAY", "This cron expression is not valid."),
        ("R 10 * * *", "This cron expression is not valid."),
        ("H 10 * * *", "This cron expression is not valid."),
        ("0 10 30 2 *", "This cron expression gives no draw in the coming year."),
    ],
)
def test_cron_expressions_that_cannot_be_schedules(cron, message):
    with pytest.raises(ValidationFailed) as raised:
        parse_schedule({"cron": cron}, "01", "renewal", PARIS, NEW_YEAR)
    assert raised.value.errors == {"cron": message}


@pytest.mark.parametrize("cron", ["0 * * * *", "0 10 * * MON", "0 9 1 * *", "15 14 * * MON#2", "0 10 L * *", "0 10 1 1 *"])
def test_cron_expressions_that_can(cron):
    assert parse_schedule({"cron": cron}, "01", "renewal", PARIS, NEW_YEAR).cron == cron


def test_what_the_service_passes_in_is_checked_too():
    with pytest.raises(ValueError):
        parse_schedule({"cron": "0 10 * * MON"}, "01", "renewal", "Europe/Nowhere", NEW_YEAR)
    with pytest.raises(ValueError):
        parse_schedule({"cron": "0 10 * * MON"}, "01", "renewal", PARIS, datetime.datetime(2027, 1, 1))
    with pytest.raises(ValueError):
        parse_schedule({"cron": "0 10 * * MON"}, "0-1", "renewal", PARIS, NEW_YEAR)
    with pytest.raises(ValueError):
        DrawPolicy(aging=-1)
    with pytest.raises(ValueError):
        dataclasses.replace(cron_schedule("0 10 * * MON"), horizon_from_days=28)


# Due draws ----------------------------------------------------------------


def test_catch_up_after_downtime_oldest_first_within_the_limit():
    schedule = cron_schedule("0 10 * * MON")
    mondays = [at(2027, 1, 4, 9), at(2027, 1, 11, 9), at(2027, 1, 18, 9), at(2027, 1, 25, 9)]
    assert due_draw_times(schedule, at(2027, 1, 1), at(2027, 1, 28)) == mondays
    assert due_draw_times(schedule, at(2027, 1, 1), at(2027, 1, 28), limit=2) == mondays[:2]
    assert due_draw_times(schedule, mondays[1], at(2027, 1, 28), limit=2) == mondays[2:]
    # since < t <= now: a tick exactly at the draw time takes it, the next tick does not.
    assert due_draw_times(schedule, at(2027, 1, 4, 8, 59, 59), mondays[0]) == mondays[:1]
    assert due_draw_times(schedule, mondays[0], mondays[0] + datetime.timedelta(seconds=5)) == []


def test_nothing_is_due_before_the_schedule_was_made_nor_when_it_is_paused():
    schedule = cron_schedule("0 10 * * MON", created_at=at(2027, 1, 11, 9))
    assert due_draw_times(schedule, at(2026, 1, 1), at(2027, 1, 19)) == [at(2027, 1, 18, 9)]
    assert next_draw_times(schedule, at(2026, 1, 1), count=1) == [at(2027, 1, 18, 9)]
    paused = dataclasses.replace(schedule, active=False)
    assert due_draw_times(paused, at(2026, 1, 1), at(2028, 1, 1)) == []
    assert next_draw_times(paused, at(2026, 1, 1)) == []


def test_entry_cutoff_and_slot_horizon_use_local_midnights_across_the_spring_change():
    schedule = cron_schedule("0 10 * * SUN", cutoff_minutes=90)
    draw = at(2027, 3, 21, 9)  # Sunday 10:00 winter time
    assert entry_cutoff(schedule, draw) == at(2027, 3, 21, 7, 30)
    # March 28 starts at midnight winter time; April 18 at midnight summer time.
    assert slot_horizon(schedule, draw) == (at(2027, 3, 27, 23), at(2027, 4, 17, 22))
    # A draw at 00:30 local belongs to its local date, not to the UTC one.
    assert slot_horizon(schedule, at(2027, 7, 4, 22, 30))[0] == at(2027, 7, 11, 22)


# Draw ids -----------------------------------------------------------------


def test_draw_id_is_the_local_wall_time_of_the_draw():
    assert draw_id("01", "renewal", at(2027, 1, 4, 9), PARIS) == "01-renewal-20270104T1000"
    assert parse_draw_id("01-renewal-20270104T1000") == ("01", "renewal", datetime.datetime(2027, 1, 4, 10, 0))
    assert parse_draw_id("2A-first_request-20270704T0930")[:2] == ("2A", "first_request")
    with pytest.raises(ValueError):
        draw_id("01", "renewal", at(2027, 1, 4, 9, 0, 30), PARIS)
    with pytest.raises(ValueError):
        draw_id("01", "renewal", datetime.datetime(2027, 1, 4, 9), PARIS)


@pytest.mark.parametrize(
    "text",
    ["", "01-renewal", "01-renewal-20270104T100", "01-renewal-20271304T1000", "01-renewal-20270104T2500",
     "01--20270104T1000", "01-re-newal-20270104T1000", "01-renewal-20270104T1000\n", 42],
)
def test_parse_draw_id_refuses_what_is_not_a_draw_id(text):
    with pytest.raises(ValueError):
        parse_draw_id(text)


@hypothesis_settings(max_examples=300, deadline=None)
@given(
    prefecture=st.sampled_from(["01", "2A", "971"]),
    procedure=st.sampled_from(["first_request", "renewal", "permit_pickup", "student"]),
    wall_time=st.datetimes(min_value=datetime.datetime(2026, 1, 1), max_value=datetime.datetime(2040, 1, 1)),
    timezone=st.sampled_from([PARIS, "America/Cayenne", "Indian/Reunion", "Pacific/Noumea", "America/Miquelon"]),
)
def test_draw_id_round_trips_for_every_time_a_schedule_can_produce(prefecture, procedure, wall_time, timezone):
    scheduled_at = local_to_utc(wall_time.replace(second=0, microsecond=0), timezone)
    identity = draw_id(prefecture, procedure, scheduled_at, timezone)
    parsed_prefecture, parsed_procedure, local = parse_draw_id(identity)
    assert (parsed_prefecture, parsed_procedure) == (prefecture, procedure)
    assert local_to_utc(local, timezone) == scheduled_at


# Storage ------------------------------------------------------------------

aware_minutes = st.datetimes(
    min_value=datetime.datetime(2026, 1, 1),
    max_value=datetime.datetime(2030, 1, 1),
    timezones=st.sampled_from([UTC, ZoneInfo(PARIS), ZoneInfo("Indian/Reunion")]),
).map(lambda moment: moment.replace(second=0, microsecond=0))

policies = st.builds(
    DrawPolicy,
    aging=st.floats(0, 10),
    urgency_window_days=st.integers(0, 365),
    urgency_share=st.floats(0, 1),
    constraints_apply=st.booleans(),
)


@st.composite
def schedules(draw):
    horizon_to = draw(st.integers(1, 180))
    with_cron = draw(st.booleans())
    return DrawSchedule(
        prefecture=draw(st.sampled_from(["01", "2A", "971"])),
        procedure=draw(st.sampled_from(["renewal", "first_request"])),
        timezone=draw(st.sampled_from([PARIS, "Indian/Reunion"])),
        cron=draw(st.sampled_from(["0 10 * * MON", "30 2 * * *"])) if with_cron else None,
        dates=tuple(draw(st.lists(aware_minutes, max_size=5))),  # with a cron expression too
        cutoff_minutes=draw(st.integers(0, 10080)),
        horizon_from_days=draw(st.integers(0, horizon_to - 1)),
        horizon_to_days=horizon_to,
        confirmation_hours=draw(st.integers(1, 336)),
        policy=draw(policies),
        active=draw(st.booleans()),
        # A schedule is created now, by the clock of a server: any time of this century (at the
        # ends of datetime's range a Paris time has no UTC one, and the test failed on year 1).
        created_at=draw(st.datetimes(min_value=datetime.datetime(2000, 1, 1), max_value=datetime.datetime(2100, 1, 1),
                                     timezones=st.sampled_from([UTC, ZoneInfo(PARIS)]))),
    )


@hypothesis_settings(max_examples=200, deadline=None)
@given(schedule=schedules())
def test_schedule_dict_round_trips_through_json(schedule):
    stored = json.dumps(schedule_to_dict(schedule))
    loaded = schedule_from_dict(json.loads(stored))
    assert loaded == schedule
    assert loaded.created_at.tzinfo is UTC and all(moment.tzinfo is UTC for moment in loaded.dates)
    assert json.dumps(schedule_to_dict(loaded)) == stored
    assert next_draw_times(loaded, NEW_YEAR) == next_draw_times(schedule, NEW_YEAR)


# The clock ----------------------------------------------------------------

SIMULATED_DAYS = 60
SIMULATED_CRONS = ["30 2 * * *", "0 10 * * MON", "0 * * * *", "*/20 1-3 * * SUN", "0 2,3 * * *"]
SIMULATED_DATES = [
    "2027-03-20 10:00", "2027-03-28 02:00", "2027-03-28 02:30", "2027-03-28 03:00", "2027-04-06 09:00",
    "2027-10-15 14:00", "2027-10-31 02:00", "2027-10-31 02:59", "2027-10-31 03:00", "2027-11-20 10:00",
]

tick_steps = st.lists(
    st.tuples(
        st.one_of(  # seconds since the previous tick: a few seconds, hours, or days of downtime
            st.integers(1, 60), st.integers(61, 6 * 3600), st.integers(6 * 3600, 4 * 86400)
        ),
        st.integers(0, 1),  # which clock ticks
        st.booleans(),  # it restarts just before, and forgets how far it had got
        st.floats(0, 1),  # how far back its `since` goes on restart
    ),
    min_size=1,
    max_size=80,
)


def scheduled_until(schedule: DrawSchedule, end: datetime.datetime) -> list[datetime.datetime]:
    """Every draw time of the schedule up to ``end``, from next_draw_times alone."""
    times = [schedule.created_at]
    while True:
        following = next_draw_times(schedule, times[-1], count=1)
        if not following or following[0] > end:
            return times[1:]
        times += following


@hypothesis_settings(max_examples=60, deadline=None)
@given(
    cron=st.sampled_from(SIMULATED_CRONS + [None]),
    created_at=st.sampled_from([at(2027, 3, 10), at(2027, 10, 5)]).flatmap(
        lambda day: st.integers(0, 20 * 86400).map(lambda seconds: day + datetime.timedelta(seconds=seconds))
    ),
    skews=st.tuples(st.integers(-120, 120), st.integers(-120, 120)),
    limit=st.integers(1, 30),
    steps=tick_steps,
)
def test_clocks_that_stop_restart_and_race_claim_each_draw_exactly_once(cron, created_at, skews, limit, steps):
    schedule = cron_schedule(cron, created_at) if cron else dates_schedule(SIMULATED_DATES, created_at)
    end = created_at + datetime.timedelta(days=SIMULATED_DAYS)
    long_before = created_at - datetime.timedelta(days=1)
    claimed: set[str] = set()  # the draw ids taken with SET NX, shared by both clocks
    since = [long_before, long_before]  # each clock's own memory of how far it got
    last_returned = [long_before, long_before]  # to check a running clock never looks back
    latest_now = created_at
    tick = created_at

    for gap, clock, restarts, rewind in steps:
        tick += datetime.timedelta(seconds=gap)
        if tick > end:
            break
        now = tick + datetime.timedelta(seconds=skews[clock])  # the clocks' hosts disagree a little
        if restarts:
            since[clock] = long_before + (since[clock] - long_before) * rewind
            last_returned[clock] = long_before
        while True:
            due = due_draw_times(schedule, since[clock], now, limit=limit)
            assert len(due) <= limit
            for scheduled_at in due:
                assert max(since[clock], created_at) < scheduled_at <= now
                assert scheduled_at > last_returned[clock]
                last_returned[clock] = scheduled_at
                claimed.add(draw_id("01", "renewal", scheduled_at, PARIS))  # SET NX: a second claim is a no-op
            if len(due) < limit:
                since[clock] = max(since[clock], now)
                break
            since[clock] = due[-1]
        latest_now = max(latest_now, now)

    expected = scheduled_until(schedule, latest_now)
    expected_ids = set(paris_ids(expected))
    assert len(expected_ids) == len(expected)  # one id per draw, even on the DST nights
    assert claimed == expected_ids


@pytest.mark.parametrize("line", ["0001-01-01 00:00", "9999-12-31 23:59"])
def test_dates_at_the_ends_of_the_calendar_are_refused_cleanly(line):
    from queue_service.errors import ValidationFailed

    with pytest.raises(ValidationFailed):
        parse_schedule({"dates": [line]}, "01", "renewal", "Europe/Paris", datetime.datetime.now(datetime.timezone.utc))
