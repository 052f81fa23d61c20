"""Messages to applicants: composed from templates in their language, delivered by mail and SMS."""

from __future__ import annotations

import datetime

from queue_service.errors import N_, InvalidTransition


def retry_delivery(store, pool: str, message_id: str, channel: str, by: str, now: datetime.datetime) -> None:
    """Staff send again a message that could not be delivered (the mail server refused it, or its
    retries ran out): it goes back to the pool's outbox, its record saying who asked and when.
    The send job still sends nothing twice."""
    if not store.retry_delivery(pool, message_id, channel, by, now):
        raise InvalidTransition(N_("This message was delivered, or cannot be sent again from here."))
