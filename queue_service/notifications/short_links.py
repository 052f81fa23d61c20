"""Short links for SMS: `<base_url>/o/<code>`, redirected to the offer page.

The offer link carries a signed status token (about 130 characters with the
service's address); in an SMS written in UCS-2 (Arabic, Cyrillic, Chinese,
Turkish, Dari: 67 characters a segment) it alone would take two segments.
An SMS carries instead a code of 12 characters of Crockford's alphabet (60
bits: no I, L, O, U, nothing that reads as another character), kept in Redis
with the path it leads to, until the link stops mattering: the offer's
deadline, or the booked appointment, plus LINK_MARGIN.

The code is the first 60 bits of an HMAC-SHA256 of the pool and the outbox
message's id, keyed with the service's secret: a message composed twice (a
retried job) gets the same code, two messages different ones, and no one can
make a code without the secret. An expired code is kept GONE_FOR longer, so
that it answers "expired" (410) rather than "unknown" (404).
"""

from __future__ import annotations

import datetime
import hashlib
import hmac

from queue_service.errors import ExpiredShortLink, UnknownShortLink
from queue_service.notifications import links
from queue_service.offers import CODE_ALPHABET, normalise_code

CODE_LENGTH = 12  # 60 bits, 5 a character
# How long a short link keeps working after the moment it is about (the offer's deadline, the
# booked appointment's start): its page then says what became of the offer.
LINK_MARGIN = datetime.timedelta(days=1)
# How long an expired code is still known, to answer "this link has expired".
GONE_FOR = datetime.timedelta(days=30)


def code_for(secret: str, pool: str, message_id: str) -> str:
    """The short link code of the outbox message `message_id` of `pool`."""
    digest = hmac.digest(secret.encode(), f"sms-link\x00{pool}\x00{message_id}".encode(), hashlib.sha256)
    number = int.from_bytes(digest[:8], "big") >> (64 - 5 * CODE_LENGTH)
    return "".join(CODE_ALPHABET[(number >> (5 * (CODE_LENGTH - 1 - i))) & 31] for i in range(CODE_LENGTH))


def create(store, secret: str, base_url: str, pool: str, message_id: str, path: str, until: datetime.datetime,
           now: datetime.datetime) -> str:
    """The short link of a message, leading to `path` until `until` plus LINK_MARGIN; made once per
    message (composed again, it is the same link and leads where it first led)."""
    code = code_for(secret, pool, message_id)
    store.save_short_link(code, path, until + LINK_MARGIN, until + LINK_MARGIN + GONE_FOR, now)
    return links.short_link(base_url, code)


def resolve(store, text: str, now: datetime.datetime) -> str:
    """The path a short link's code leads to; UnknownShortLink if the service never made it (or
    forgot it), ExpiredShortLink once its time has passed. Lower case and look-alike letters
    (O for 0, I and L for 1) are read as the code they stand for."""
    code = normalise_code(text)
    if len(code) != CODE_LENGTH or any(char not in CODE_ALPHABET for char in code):
        raise UnknownShortLink()
    found = store.short_link(code)
    if found is None:
        raise UnknownShortLink()
    if now.timestamp() > found["until"]:
        raise ExpiredShortLink()
    return found["path"]
