"""Signed tokens carried by links: the private status link and the email confirmation.

A token names a registration by its pool and opaque id, never by personal
data. It is signed with the service's secret (itsdangerous), so it cannot be
forged or edited. Time is passed in: the confirmation token carries its issue
time and is checked against `now`.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from itsdangerous import BadData, URLSafeSerializer

from queue_service.errors import ExpiredLink, InvalidLink
from queue_service.pools import PoolId

STATUS_SALT = "qs.status-link.v1"
CONFIRMATION_SALT = "qs.confirm-email.v1"


@dataclass(frozen=True)
class RegistrationKey:
    """Where a registration lives: its pool (prefecture, procedure) and its id."""

    prefecture: str
    procedure: str
    registration_id: str

    @property
    def pool(self) -> str:
        return PoolId.of(self.prefecture, self.procedure)


def status_token(secret: str, key: RegistrationKey, version: int = 0) -> str:
    """The private status link's token. `version` is the registration's link version: it
    grows when the email changes, so that older links stop working (version 0, the
    first, is left out: links sent before versions existed stay valid)."""
    payload: list[str | int] = [key.prefecture, key.procedure, key.registration_id]
    if version:
        payload.append(version)
    return URLSafeSerializer(secret, salt=STATUS_SALT).dumps(payload)


def read_status_token(secret: str, token: str) -> tuple[RegistrationKey, int]:
    """The registration a status token names, and the link version it was made for."""
    payload = _load(secret, STATUS_SALT, token)
    if not isinstance(payload, list) or len(payload) not in (3, 4):
        raise InvalidLink()
    names, version = payload[:3], payload[3] if len(payload) == 4 else 0
    if not all(isinstance(part, str) for part in names) or type(version) is not int or version < 0:
        raise InvalidLink()
    return RegistrationKey(*names), version


def confirmation_token(secret: str, key: RegistrationKey, email_print: str, issued_at: datetime.datetime) -> str:
    """A link that confirms an address for the registration; valid for a limited time.

    The address travels as its keyed hash (`email_print`): the token is signed,
    not encrypted, and links end up in browser histories and proxy logs.
    """
    payload = [key.prefecture, key.procedure, key.registration_id, email_print, int(issued_at.timestamp())]
    return URLSafeSerializer(secret, salt=CONFIRMATION_SALT).dumps(payload)


def read_confirmation_token(
    secret: str, token: str, now: datetime.datetime, max_age: datetime.timedelta
) -> tuple[RegistrationKey, str]:
    """The registration and the keyed hash of the address the token confirms; raises if forged or too old."""
    payload = _load(secret, CONFIRMATION_SALT, token)
    if not (isinstance(payload, list) and len(payload) == 5 and isinstance(payload[4], int)):
        raise InvalidLink()
    prefecture, procedure, registration_id, email, issued = payload
    if not all(isinstance(part, str) for part in (prefecture, procedure, registration_id, email)):
        raise InvalidLink()
    if now.timestamp() - issued > max_age.total_seconds():
        raise ExpiredLink()
    return RegistrationKey(prefecture, procedure, registration_id), email


def _load(secret: str, salt: str, token: str) -> object:
    if not isinstance(token, str) or len(token) > 1000:
        raise InvalidLink()
    try:
        return URLSafeSerializer(secret, salt=salt).loads(token)
    except BadData:
        raise InvalidLink() from None
