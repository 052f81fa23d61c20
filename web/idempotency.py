"""Idempotency keys for the staff API's requests that change something.

A client that sends `Idempotency-Key: <any text>` with a POST, PUT, PATCH or
DELETE may send the same request again (after a timeout, a lost connection,
a crash of its own) without doing the thing twice, as the IETF's
Idempotency-Key header draft describes:

- the first request with a key does the work; its answer, if it succeeded
  (2xx or 3xx), is kept for KEPT_FOR and sent again, unchanged, to every
  later request with the same key and the same method, address and body,
  with `Idempotent-Replayed: true`;
- the same key with another request is refused (422): a key names one
  request;
- a repeat that arrives while the first still runs waits for its answer (up
  to WAIT_FOR_FIRST), then is told to try again (409, Retry-After);
- a refusal (4xx: nothing changed) or a failure is not kept: the key can be
  sent again, with the same or a corrected request;
- a secret the answer shows once (a new API token's text) is not kept: the
  replay has it null (`route(..., withheld=...)`).

Keys belong to the account that sends them (two accounts never share one);
the records live in Redis (store/idempotency.py), so every web process of
every machine sees the same.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import time

from flask import Response, current_app, request
from flask_babel import gettext
from werkzeug.exceptions import BadRequest

from web import services
from web.errors import problem

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255
# How long an answer is sent again; and how long a request holds its key while it runs (longer
# than any staff request; a process that dies holding it frees it after this).
KEPT_FOR = datetime.timedelta(hours=24)
PENDING_FOR = datetime.timedelta(minutes=2)
WAIT_FOR_FIRST = 10.0  # seconds
POLL_EVERY = 0.05
# The headers of an answer sent again with it (the body's type, where it created something).
KEPT_HEADERS = ("Content-Type", "Location")


def fingerprint() -> str:
    """What makes two requests the same request: method, address (with its query), body."""
    digest = hashlib.sha256()
    for part in (request.method, request.full_path, request.content_type or ""):
        digest.update(part.encode("utf-8", "surrogateescape") + b"\n")
    digest.update(request.get_data(cache=True))
    return digest.hexdigest()


def key_digest() -> str | None:
    """The SHA-256 of the request's key; None without one; 400 for a key that is not 1 to 255
    printable ASCII characters."""
    key = request.headers.get(HEADER)
    if key is None:
        return None
    if not 0 < len(key) <= MAX_KEY_LENGTH or not (key.isascii() and key.isprintable()):
        raise BadRequest(gettext("An Idempotency-Key is 1 to 255 printable ASCII characters."))
    return hashlib.sha256(key.encode()).hexdigest()


def answer_once(account_id: str, view, withheld: tuple[str, ...] = ()) -> Response:
    """`view()`'s answer, done once per idempotency key (module docstring); the members of a
    JSON answer named in `withheld` (a secret shown once) are kept as null."""
    digest = key_digest()
    if digest is None:
        return current_app.make_response(view())
    store, mine = services().store, fingerprint()
    record = store.claim_idempotency_key(account_id, digest, mine, PENDING_FOR)
    if record is None:
        return _first(store, account_id, digest, mine, view, withheld)
    if record["fingerprint"] != mine:
        return _reused()
    waited = 0.0
    while record is not None and record["state"] == "pending" and waited < WAIT_FOR_FIRST:
        time.sleep(POLL_EVERY)
        waited += POLL_EVERY
        record = store.idempotency_record(account_id, digest)
    if record is None:  # the first request failed and gave the key back: this one does the work
        return answer_once(account_id, view, withheld)
    if record["state"] == "pending":
        response = problem(409, gettext("The first request with this Idempotency-Key is still running."),
                           gettext("Send the request again in a moment to receive its answer."),
                           code="idempotency-key-in-use")
        response.headers["Retry-After"] = "1"
        return response
    return _replay(record["answer"])


def _first(store, account_id: str, digest: str, mine: str, view, withheld: tuple[str, ...] = ()) -> Response:
    try:
        response = current_app.make_response(view())
    except BaseException:
        store.release_idempotency_key(account_id, digest)
        raise
    if response.status_code >= 400:
        store.release_idempotency_key(account_id, digest)
        return response
    answer = {
        "status": response.status_code,
        "headers": {name: response.headers[name] for name in KEPT_HEADERS if name in response.headers},
        "body": response.get_data(as_text=True),
    }
    if withheld and response.is_json:
        answer["body"] = json.dumps(response.get_json() | dict.fromkeys(withheld))
    store.save_idempotent_answer(account_id, digest, mine, answer, KEPT_FOR)
    return response


def _replay(answer: dict) -> Response:
    response = Response(answer["body"], status=answer["status"], headers=answer["headers"])
    response.headers[REPLAYED_HEADER] = "true"
    return response


def _reused() -> Response:
    return problem(422, gettext("This Idempotency-Key was already used for another request."),
                   gettext("Use a new key for each new request; send a key again only with the same request."),
                   code="idempotency-key-reused")
