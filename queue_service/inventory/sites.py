"""Sites: the places with counters where appointments happen.

A prefecture admin creates, edits and closes them. A closed site takes no new
slots and is not offered to new applicants; a site can be deleted only while
it has no future slot.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping

from queue_service.errors import N_, SiteInUse, ValidationFailed
from queue_service.reference import SITE_KINDS, OpeningHours, Site

SITE_ID_PATTERN = re.compile(r"[a-z][a-z0-9]{1,19}")
POSTCODE_PATTERN = re.compile(r"\d{5}")
PERIOD_PATTERN = re.compile(r"(\d{1,2}):(\d{2})\s*[-–]\s*(\d{1,2}):(\d{2})")
#: The kind of a new site when none is chosen: most sites are not the prefecture itself.
DEFAULT_KIND = "sub_prefecture"


def hours_field(weekday: int) -> str:
    """The form field holding one weekday's opening periods, e.g. "09:00-12:00, 13:30-16:00"."""
    return f"hours_{weekday}"


def hours_text(site: Site, weekday: int) -> str:
    return ", ".join(
        f"{h.opens:%H:%M}-{h.closes:%H:%M}" for h in sorted(site.opening_hours, key=lambda h: h.opens) if h.weekday == weekday
    )


def parse_site(values: Mapping[str, object], prefecture: str, *, site_id: str | None = None, taken_ids=()) -> Site:
    """A site from the admin's values; `site_id` given when editing. Raises ValidationFailed with every wrong field.

    Values are text, but `closed` is a bool (only True closes the site); `hours_0` to `hours_6` (see
    `hours_field`) hold each weekday's opening periods, e.g. "09:00-12:00, 13:30-16:00".
    """
    def text(name: str) -> str:
        value = values.get(name)
        return value.strip() if isinstance(value, str) else ""

    errors: dict[str, str] = {}
    if site_id is None:
        site_id = text("id").lower()
        if not SITE_ID_PATTERN.fullmatch(site_id):
            errors["id"] = N_("Choose a short identifier: 2 to 20 lower-case letters or digits, starting with a letter.")
        elif site_id in taken_ids:
            errors["id"] = N_("Another site already has this identifier.")
    for name, message in (
        ("name", N_("Enter the site's name.")),
        ("address", N_("Enter the street address.")),
        ("city", N_("Enter the town.")),
    ):
        if not text(name) or len(text(name)) > 120:
            errors[name] = message
    if not POSTCODE_PATTERN.fullmatch(text("postcode")):
        errors["postcode"] = N_("Enter the 5-digit postcode.")
    kind = text("kind") or DEFAULT_KIND
    if kind not in SITE_KINDS:
        errors["kind"] = N_("Choose the kind of site.")
    hours = _opening_hours({weekday: text(hours_field(weekday)) for weekday in range(7)}, errors)
    if errors:
        raise ValidationFailed(errors)
    return Site(
        id=site_id,
        prefecture=prefecture,
        name=text("name"),
        kind=kind,
        address=text("address"),
        postcode=text("postcode"),
        city=text("city"),
        opening_hours=tuple(hours),
        closed=values.get("closed") is True,
    )


def _opening_hours(texts: dict[int, str], errors: dict[str, str]) -> list[OpeningHours]:
    """The opening hours of each weekday's text; a text that is wrong goes to ``errors``."""
    hours = []
    for weekday, day_text in texts.items():
        periods = _parse_periods(day_text)
        if periods is None:
            errors[hours_field(weekday)] = N_("Write opening hours like 09:00-12:00, 13:30-16:00, or leave empty.")
            continue
        hours += [OpeningHours(weekday, opens, closes) for opens, closes in periods]
    return hours


def _parse_periods(text: str) -> list[tuple[datetime.time, datetime.time]] | None:
    """Periods of one day, in order and not overlapping; None if the text is wrong."""
    if not text:
        return []
    periods = []
    for part in text.split(","):
        match = PERIOD_PATTERN.fullmatch(part.strip())
        if not match:
            return None
        try:
            opens = datetime.time(int(match[1]), int(match[2]))
            closes = datetime.time(int(match[3]), int(match[4]))
        except ValueError:
            return None
        if opens >= closes or (periods and opens < periods[-1][1]):
            return None
        periods.append((opens, closes))
    return periods


def check_deletable(future_slots: int) -> None:
    if future_slots:
        raise SiteInUse()
