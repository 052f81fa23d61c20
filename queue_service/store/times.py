"""Times as the store writes them: ISO-8601 text in UTC, from timezone-aware datetimes only.

Every concern stores moments this way (registrations, draws, sessions, health),
so the one text form and the refusal of naive times are written once. A
registration's own times are exact epoch seconds instead (shorter: Redis keeps
an integer in a listpack in 5 bytes; store/registrations.py), read with
`moment_from_text`, which reads both.
"""

from __future__ import annotations

import datetime


def utc_text(moment: datetime.datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("times passed to the store must be timezone-aware")
    return moment.astimezone(datetime.timezone.utc).isoformat()


def utc_from(raw: bytes | None) -> datetime.datetime | None:
    return None if raw is None else datetime.datetime.fromisoformat(raw.decode())


_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def epoch_text(moment: datetime.datetime) -> str:
    """Exact epoch seconds ("1799053200", or "1799053200.250000" with microseconds)."""
    if moment.tzinfo is None:
        raise ValueError("times passed to the store must be timezone-aware")
    elapsed = moment - _EPOCH
    seconds = elapsed.days * 86400 + elapsed.seconds
    return f"{seconds}.{elapsed.microseconds:06d}" if elapsed.microseconds else str(seconds)


def from_epoch_text(text: str) -> datetime.datetime:
    """The moment `epoch_text` wrote (in UTC)."""
    seconds, _, micro = text.partition(".")
    return _EPOCH + datetime.timedelta(seconds=int(seconds), microseconds=int(micro or 0))


def moment_from_text(text: str) -> datetime.datetime:
    """A moment written by `utc_text` (ISO-8601) or by `epoch_text`."""
    return datetime.datetime.fromisoformat(text) if "T" in text else from_epoch_text(text)
