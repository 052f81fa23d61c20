"""Proofs of work (ALTCHA): accepted once, refused replayed, expired, forged or wrong; never a crash."""

import base64
import datetime
import json
import random

import altcha
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from queue_service import proof_of_work
from queue_service.proof_of_work import Difficulty, ProofVerdict, challenge_keys, check_proof, new_challenge, solve
from queue_service.store.keys import spent_challenge_key

SECRET = "test-secret-" + "x" * 40
KEYS = challenge_keys(SECRET)
# Small enough for tests to solve in milliseconds.
EASY = Difficulty(cost=10, max_number=40, lifetime=datetime.timedelta(minutes=5))


@pytest.fixture
def now() -> datetime.datetime:
    """The time of the test: the altcha package checks expiry against the clock, not a given time."""
    return datetime.datetime.now(datetime.timezone.utc)


def challenge(now, keys=KEYS, difficulty=EASY) -> dict:
    return new_challenge(keys, difficulty, now, random.Random(7))


def edited(proof: str, change) -> str:
    """The proof with its decoded document changed by `change`."""
    document = json.loads(base64.b64decode(proof))
    change(document)
    return base64.b64encode(json.dumps(document).encode()).decode()


def test_a_proof_is_accepted_once_and_refused_when_replayed(store, now):
    proof = solve(challenge(now))
    assert check_proof(store, KEYS, proof, now) is ProofVerdict.VALID
    assert check_proof(store, KEYS, proof, now) is ProofVerdict.REPLAYED
    assert check_proof(store, KEYS, proof, now + datetime.timedelta(minutes=4)) is ProofVerdict.REPLAYED


def test_a_spent_proof_is_remembered_until_its_challenge_expires_and_no_longer(store, now):
    issued = challenge(now)
    proof = solve(issued)
    assert check_proof(store, KEYS, proof, now) is ProofVerdict.VALID
    signature = issued["signature"]
    remaining = store.redis.ttl(spent_challenge_key(signature))
    expires_in = issued["parameters"]["expiresAt"] - now.timestamp()
    assert expires_in <= remaining <= expires_in + 61


def test_an_expired_challenge_proves_nothing(store, now):
    issued = challenge(now - datetime.timedelta(minutes=6))  # expired a minute ago
    assert check_proof(store, KEYS, solve(issued), now) is ProofVerdict.EXPIRED
    assert not store.redis.exists(spent_challenge_key(issued["signature"]))


def test_a_challenge_signed_with_another_key_or_edited_is_forged(store, now):
    assert check_proof(store, challenge_keys("another secret"), solve(challenge(now)), now) is ProofVerdict.FORGED
    easier = edited(solve(challenge(now)), lambda document: document["challenge"]["parameters"].update(cost=1))
    assert check_proof(store, KEYS, easier, now) is ProofVerdict.FORGED
    later = edited(solve(challenge(now)), lambda document: document["challenge"]["parameters"].update(
        expiresAt=int(now.timestamp()) + 86400))
    assert check_proof(store, KEYS, later, now) is ProofVerdict.FORGED
    unsigned = edited(solve(challenge(now)), lambda document: document["challenge"].pop("signature"))
    assert check_proof(store, KEYS, unsigned, now) is ProofVerdict.FORGED


def test_challenges_are_signed_with_a_key_derived_from_the_secret_not_the_secret_itself(store, now):
    assert SECRET.encode() not in (KEYS.challenge, KEYS.derived_key) and KEYS.challenge != KEYS.derived_key
    raw = proof_of_work.ChallengeKeys(SECRET.encode(), SECRET.encode())
    assert check_proof(store, KEYS, solve(challenge(now, keys=raw)), now) is ProofVerdict.FORGED
    assert SECRET not in repr(KEYS)


def test_a_wrong_answer_to_our_challenge_is_wrong_and_not_spent(store, now):
    issued = challenge(now)
    wrong = edited(solve(issued), lambda document: document["solution"].update(derivedKey="00" * 32))
    assert check_proof(store, KEYS, wrong, now) is ProofVerdict.WRONG
    assert check_proof(store, KEYS, solve(issued), now) is ProofVerdict.VALID  # the right one still counts


def test_no_proof_is_missing_and_nothing_is_written(store, now):
    for nothing in (None, ""):
        assert check_proof(store, KEYS, nothing, now) is ProofVerdict.MISSING
    assert store.redis.dbsize() == 0


def test_the_hidden_number_is_between_half_the_maximum_and_the_maximum(now):
    difficulty = Difficulty(cost=1, max_number=60, lifetime=datetime.timedelta(minutes=5))
    rng = random.Random(3)
    numbers = set()
    for _ in range(40):
        issued = altcha.Challenge.from_dict(new_challenge(KEYS, difficulty, now, rng))
        numbers.add(altcha.solve_challenge(issued, timeout=0).counter)
    assert min(numbers) >= 30 and max(numbers) <= 60 and len(numbers) > 10
    assert difficulty.mean_tries == 46


def test_the_challenge_is_what_the_widget_reads(now):
    issued = challenge(now)
    assert set(issued) == {"parameters", "signature"}
    parameters = issued["parameters"]
    assert parameters["algorithm"] == "PBKDF2/SHA-256" and parameters["cost"] == EASY.cost
    assert parameters["expiresAt"] == int((now + EASY.lifetime).timestamp())
    assert len(parameters["keyPrefix"]) == 32 and parameters["keySignature"]  # one number fits; checked by HMAC


@hypothesis_settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(proof=st.one_of(
    st.text(max_size=60),
    st.binary(max_size=200).map(lambda raw: base64.b64encode(raw).decode()),
    st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=10),
                 lambda children: st.lists(children, max_size=3) | st.dictionaries(
                     st.sampled_from(["challenge", "solution", "parameters", "signature", "algorithm", "nonce", "salt",
                                      "cost", "keyPrefix", "keySignature", "expiresAt", "counter", "derivedKey", "x"]),
                     children, max_size=5), max_leaves=15)
    .map(lambda document: base64.b64encode(json.dumps(document).encode()).decode()),
    st.integers(), st.lists(st.integers(), max_size=2),
))
def test_anything_a_client_sends_is_judged_without_error_or_trace(store, now, proof):
    assert check_proof(store, KEYS, proof, now) in (ProofVerdict.MALFORMED, ProofVerdict.FORGED, ProofVerdict.EXPIRED,
                                                     ProofVerdict.MISSING)
    assert store.redis.dbsize() == 0
