"""Proof of work (ALTCHA): a request that spent a little computing time earns the generous limit.

Bots pay, people don't: a person's browser solves one challenge per form sent
(about a second, in the background), a program that registers thousands pays
that second thousands of times. Nothing is stored on the device and nobody
else is asked: the challenge comes from this service and is checked here.

A challenge hides a number: the client derives a key with PBKDF2-SHA-256
(`cost` iterations) from the challenge's nonce and each number in turn, from 0,
until the key starts with the challenge's prefix. The number is drawn between
half of `max_number` and `max_number`, so every client works about as long
(three quarters of `max_number` tries on average, never more than
`max_number`): no unlucky phone waits three times longer than the others.
The server derives that one key when it creates the challenge and checks a
solution with one HMAC (the key's signature travels in the challenge).

Challenges are signed with keys derived from the service's secret (never the
secret itself) and expire; a proof is spent when first checked (its signature
is recorded until the challenge expires), so a replay proves nothing.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import functools
import hashlib
import hmac
import json
import random
from dataclasses import dataclass
from enum import Enum

import altcha

# What the widget and the API client compute: PBKDF2 with SHA-256 (WebCrypto has it natively).
ALGORITHM = "PBKDF2/SHA-256"
# A proof longer than this is no proof: ours are about 600 characters.
MAX_PROOF_LENGTH = 4096
# Purposes the two signing keys are derived for, from the service's secret.
CHALLENGE_KEY_PURPOSE = b"qs/altcha/challenge/v1"
DERIVED_KEY_PURPOSE = b"qs/altcha/derived-key/v1"


class ProofVerdict(str, Enum):
    """What a request's proof of work is worth. Only VALID earns anything."""

    VALID = "valid"
    MISSING = "missing"  # none given
    MALFORMED = "malformed"  # not a base64 ALTCHA payload
    FORGED = "forged"  # a challenge this service did not sign as it stands
    EXPIRED = "expired"  # signed by us, but too old
    WRONG = "wrong"  # our challenge, a solution that is not its answer
    REPLAYED = "replayed"  # a proof already spent


@dataclass(frozen=True)
class Difficulty:
    """How much work a challenge asks for, and for how long it may be used."""

    cost: int  # PBKDF2 iterations per number tried
    max_number: int  # the hidden number is drawn in [max_number // 2, max_number]
    lifetime: datetime.timedelta

    @property
    def mean_tries(self) -> float:
        """Key derivations a client makes on average (numbers 0 to the hidden one)."""
        low = self.max_number // 2
        return (low + self.max_number) / 2 + 1


@dataclass(frozen=True)
class ChallengeKeys:
    """The HMAC keys of challenges: one signs the parameters, one the key a solution must derive."""

    challenge: bytes
    derived_key: bytes

    def __repr__(self) -> str:
        return "ChallengeKeys(…)"  # never logged


@functools.lru_cache(maxsize=4)  # one secret per app; derived once, not at every request
def challenge_keys(secret_key: str) -> ChallengeKeys:
    """Keys derived from the service's secret for challenges alone: a leaked or weak challenge
    key would tell nothing about the secret that signs sessions and links."""

    def derive(purpose: bytes) -> bytes:
        return hmac.new(secret_key.encode(), purpose, hashlib.sha256).digest()

    return ChallengeKeys(derive(CHALLENGE_KEY_PURPOSE), derive(DERIVED_KEY_PURPOSE))


def new_challenge(keys: ChallengeKeys, difficulty: Difficulty, now: datetime.datetime, rng: random.Random) -> dict:
    """A fresh signed challenge, as the widget and API clients read it: {"parameters": …, "signature": …}."""
    number = rng.randint(difficulty.max_number // 2, difficulty.max_number)
    challenge = altcha.create_challenge(
        ALGORITHM,
        difficulty.cost,
        counter=number,
        expires_at=int((now + difficulty.lifetime).timestamp()),
        hmac_secret=keys.challenge,
        hmac_key_secret=keys.derived_key,
    )
    return challenge.to_dict()


def check_proof(store, keys: ChallengeKeys, proof: object, now: datetime.datetime) -> ProofVerdict:
    """What `proof` (the base64 payload the widget posts) is worth; a valid one is spent."""
    if proof is None or proof == "":
        return ProofVerdict.MISSING
    payload = _payload(proof)
    if payload is None:
        return ProofVerdict.MALFORMED
    result = altcha.verify_solution(payload, keys.challenge, hmac_key_secret=keys.derived_key)
    if result.invalid_signature:
        return ProofVerdict.FORGED
    expires_at = payload.challenge.parameters.expires_at
    if result.expired or type(expires_at) is not int or expires_at <= now.timestamp():
        return ProofVerdict.EXPIRED
    if not result.verified:
        return ProofVerdict.WRONG
    until = datetime.datetime.fromtimestamp(expires_at, datetime.timezone.utc)
    if not store.spend_challenge(payload.challenge.signature, until, now):
        return ProofVerdict.REPLAYED
    return ProofVerdict.VALID


def _payload(proof: object) -> altcha.Payload | None:
    """The payload in `proof`, or None if it is not one (whatever the client sent)."""
    if not isinstance(proof, str) or len(proof) > MAX_PROOF_LENGTH:
        return None
    try:
        document = json.loads(base64.b64decode(proof.encode("ascii"), validate=True))
        return altcha.Payload.from_dict(document)
    except (ValueError, binascii.Error, UnicodeError, KeyError, TypeError, AttributeError, RecursionError):
        return None


def solve(challenge: dict) -> str:
    """The proof a client sends for `challenge` (what the widget computes): for tests, the
    benchmark and API clients written in Python."""
    parsed = altcha.Challenge.from_dict(challenge)
    solution = altcha.solve_challenge(parsed, timeout=0)
    return altcha.Payload(parsed, solution).to_base64()
