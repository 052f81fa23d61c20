"""Times as the store writes them: ISO-8601 text in UTC, from timezone-aware datetimes only.

Every concern stores moments this way (registrations, draws, sessions, health),
so the one text form and the refusal of naive times are written once.
"""

from __future__ import annotations

import datetime


def utc_text(moment: datetime.datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("times passed to the store must be timezone-aware")
    return moment.astimezone(datetime.timezone.utc).isoformat()


def utc_from(raw: bytes | None) -> datetime.datetime | None:
    return None if raw is None else datetime.datetime.fromisoformat(raw.decode())
