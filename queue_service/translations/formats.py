"""Dates and times as a reader of each language writes them (Babel, CLDR data).

French and English pages and messages use the patterns written for them
("lundi 4 janvier 2027, 10:30"). Other languages order the day, month, year
and time their own way ("2027年1月4日星期一 10:30", "4 Ocak 2027 Pazartesi"),
so a pattern written for French would read wrong: they get the locale's own
full or long date, its short time, and its way of joining the two.
"""

from __future__ import annotations

import datetime
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime, format_skeleton, format_time, get_datetime_format

# Languages whose pages and messages were written with explicit patterns.
PATTERN_LANGUAGES = ("fr", "en")


def format_moment(moment: datetime.datetime, pattern: str, language: str, timezone: str | None = None) -> str:
    """`moment` on the wall clock of `timezone` (or of its own time zone), in `language`:
    with `pattern` in French and English; with the locale's own order elsewhere, keeping what
    the pattern shows (a weekday if it has E, the time if it has H)."""
    if timezone is not None:
        moment = moment.astimezone(ZoneInfo(timezone))
    if language in PATTERN_LANGUAGES:
        return format_datetime(moment, pattern, tzinfo=moment.tzinfo, locale=language)
    date = format_date(moment, "full" if "E" in pattern else "long", locale=language)
    if "H" not in pattern:
        return date
    time = format_time(moment, "HH:mm", tzinfo=moment.tzinfo, locale=language)
    return str(get_datetime_format("long", locale=language)).replace("'", "").replace("{1}", date).replace("{0}", time)


def format_short_moment(moment: datetime.datetime, language: str, timezone: str | None = None) -> str:
    """`moment` as short as a reader still understands it, for an SMS: the weekday, the day, the
    month abbreviated, and the time, in the locale's own order ("ven. 10 sept. 12:30",
    "Fri, Sep 10, 12:30", "9月10日周五 12:30"); the year is the current or the next one."""
    if timezone is not None:
        moment = moment.astimezone(ZoneInfo(timezone))
    date = format_skeleton("MMMEd", moment, tzinfo=moment.tzinfo, locale=language)
    time = format_time(moment, "HH:mm", tzinfo=moment.tzinfo, locale=language)
    return str(get_datetime_format("short", locale=language)).replace("'", "").replace("{1}", date).replace("{0}", time)
