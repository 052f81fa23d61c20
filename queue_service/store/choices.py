"""An applicant's choices of sites and half-days as the registration hash stores them, short.

A registration's hash stays a compact listpack only while every value fits in
64 bytes (see store/registrations.py): ten half-days as JSON take 100. So the
sites are joined by commas and each half-day is one digit, its position in
HALF_DAYS. Both decoders also read the JSON lists written before.
"""

from __future__ import annotations

import json

from queue_service.reference import HALF_DAYS


def encode_sites(sites) -> str:
    """Site ids joined by commas (JSON for an id that holds a comma or begins with "[")."""
    if any("," in site or site.startswith("[") for site in sites):
        return json.dumps(list(sites))
    return ",".join(sites)


def encode_half_days(half_days) -> str:
    """Each half-day as the digit of its position in HALF_DAYS ("0" is Monday morning); JSON if one is unknown."""
    if len(HALF_DAYS) > 10 or any(half_day not in HALF_DAYS for half_day in half_days):
        return json.dumps(list(half_days))
    return "".join(str(HALF_DAYS.index(half_day)) for half_day in half_days)


def decode_sites(raw: str) -> tuple[str, ...]:
    """The sites of `encode_sites`, or of the JSON list written before."""
    if raw.startswith("["):
        return tuple(json.loads(raw))
    return tuple(raw.split(",")) if raw else ()


def decode_half_days(raw: str) -> tuple[str, ...]:
    """The half-days of `encode_half_days`, or of the JSON list written before."""
    if raw.startswith("["):
        return tuple(json.loads(raw))
    return tuple(HALF_DAYS[int(digit)] for digit in raw)
