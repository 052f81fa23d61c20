"""Messages to applicants: composed from templates in their language, delivered by mail and SMS."""

from __future__ import annotations

import datetime

from queue_service.errors import N_, InvalidTransition, UnknownMessage
from queue_service.pools import PoolId

# The channels a message goes by, as delivery records name them.
CHANNELS = ("email", "sms")


def undelivered(store, prefecture: str) -> list[dict]:
    """The prefecture's messages to applicants not delivered (failed and retrying, or given up),
    pool by pool, newest first in each: the delivery record (Store.delivery_failures) with its
    pool's procedure code."""
    return [
        {"procedure": procedure.code, **failure}
        for procedure in store.procedures()
        for failure in store.delivery_failures(PoolId.of(prefecture, procedure.code))
    ]


def retry_delivery(store, pool: str, message_id: str, channel: str, by: str, now: datetime.datetime) -> dict:
    """Staff send again a message that could not be delivered (the mail server refused it, or its
    retries ran out): it goes back to the pool's outbox, its record saying who asked and when.
    The send job still sends nothing twice. Returns the delivery's record as it was."""
    record = store.delivery(pool, message_id, channel) if channel in CHANNELS else None
    if record is None:
        raise UnknownMessage()
    if not store.retry_delivery(pool, message_id, channel, by, now):
        raise InvalidTransition(N_("This message was delivered, or cannot be sent again from here."))
    return record
