"""Proofs of work at the edge: the challenges the API hands out, and what a request's proof earns.

The registration form's widget (and any API client) fetches a challenge from
/api/v1/challenge, solves it and sends the proof in the field `altcha` of the
form or of the JSON body. A valid proof, spent on first use, opens the
generous per-address registration budget; without one the request still goes
through, under the tighter budget (web/__init__.py, limit_sensitive_routes).
"""

from __future__ import annotations

import datetime
import secrets

from flask import g, request

from queue_service import proof_of_work
from queue_service.errors import N_, InvalidText, ValidationFailed
from queue_service.proof_of_work import Difficulty, ProofVerdict
from web import services

# The form field and the JSON member that carry the proof (the widget's `name`).
PROOF_FIELD = "altcha"
# The longest proof a request may send: the widget's are a few hundred characters.
MAX_PROOF_LENGTH = 4096


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def challenge_keys() -> proof_of_work.ChallengeKeys:
    return proof_of_work.challenge_keys(services().settings.secret_key)


def difficulty() -> Difficulty:
    settings = services().settings
    return Difficulty(
        cost=settings.altcha_cost,
        max_number=settings.altcha_max_number,
        lifetime=datetime.timedelta(seconds=settings.altcha_expiry_seconds),
    )


def new_challenge() -> dict:
    return proof_of_work.new_challenge(challenge_keys(), difficulty(), now(), secrets.SystemRandom())


def proof_in_request() -> object:
    """What the request gives as its proof: the form field or the JSON member `altcha`."""
    try:
        if request.is_json:
            body = request.get_json(silent=True)
            return body.get(PROOF_FIELD) if isinstance(body, dict) else None
        return request.form.get(PROOF_FIELD)
    except InvalidText:
        return None  # the view refuses the body (400); the limits apply as to a request without proof


def proof_field_checked(body: dict) -> dict:
    """The JSON body, if its proof (when present) is text of at most MAX_PROOF_LENGTH characters;
    else a 422: a malformed proof is refused, where a wrong one only loses the generous limit."""
    proof = body.get(PROOF_FIELD)
    if proof is not None and (not isinstance(proof, str) or len(proof) > MAX_PROOF_LENGTH):
        raise ValidationFailed({PROOF_FIELD: N_("This proof of work cannot be read: solve a new challenge.")})
    return body


def proof_verdict() -> ProofVerdict:
    """The request's proof judged, and spent if valid: once per request, however often asked."""
    if "proof_verdict" not in g:
        g.proof_verdict = proof_of_work.check_proof(services().store, challenge_keys(), proof_in_request(), now())
    return g.proof_verdict


def proven() -> bool:
    return proof_verdict() is ProofVerdict.VALID
