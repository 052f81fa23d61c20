"""Tests for queue_service.registration.proof: signed proofs of registration.

No fixtures: every test builds its keys and documents with the helpers below.
"""

import base64
import copy
import hashlib
import json
import re

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from hypothesis import assume, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from queue_service.registration.proof import (
    PROOF_FORMAT,
    VerificationResult,
    canonical_json,
    generate_signing_key,
    key_id,
    load_signing_key,
    public_key_text,
    sign_proof,
    verify_proof,
)

# RFC 8032, section 7.1, TEST 1: a published key pair and the signature of
# the empty message, so that the seed encoding is checked against the world.
RFC8032_SEED = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
RFC8032_PUBLIC = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
RFC8032_EMPTY_SIGNATURE = bytes.fromhex(
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46b"
    "d25bf5f0595bbe24655141438e7a100b"
)
# The same key pair as this module writes it.
RFC8032_SEED_TEXT = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"
RFC8032_PUBLIC_TEXT = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"

# A proof as issued with the RFC 8032 key. It must verify for as long as the
# format is fairqueue-proof/v1: proofs already in people's hands stay valid.
ISSUED_PROOF = {
    "format": "fairqueue-proof/v1",
    "statement": {
        "draws": [
            {"date": "2025-03-10", "draw_id": "01-renewal-2025-03-10", "outcome": "not_drawn"},
            {"date": "2025-03-17", "draw_id": "01-renewal-2025-03-17", "outcome": "drawn"},
        ],
        "issued_at": "2025-03-18T10:00:00+01:00",
        "joined_at": "2025-03-04T09:15:00+01:00",
        "prefecture": "01",
        "procedure": "renewal",
        "reference": "01R-7K3Q9X",
        "status": "waiting",
    },
    "key_id": "21fe31dfa154a261",
    "public_key": RFC8032_PUBLIC_TEXT,
    "signature": "F6eFmOMpKZT8aQYAwdEPVCz5aalrCKQ3L3gI1MmDpKFM3-CqP5KgtSyyW7O5P47hGW32_1_lId4HC8k62TWLCg",
}
ISSUED_PROOF_SIGNED_BYTES = (
    b'{"format":"fairqueue-proof/v1","statement":{"draws":[{"date":"2025-03-10",'
    b'"draw_id":"01-renewal-2025-03-10","outcome":"not_drawn"},{"date":"2025-03-17",'
    b'"draw_id":"01-renewal-2025-03-17","outcome":"drawn"}],"issued_at":"2025-03-18T10:00:00+01:00",'
    b'"joined_at":"2025-03-04T09:15:00+01:00","prefecture":"01","procedure":"renewal",'
    b'"reference":"01R-7K3Q9X","status":"waiting"}}'
)

BASE64URL_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
DOCUMENT_FIELDS = ("format", "statement", "key_id", "public_key", "signature")

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=25,
)
json_objects = st.dictionaries(st.text(max_size=8), json_values, max_size=6)


def make_statement(**changes):
    """A proof of registration with two draws; keyword arguments replace fields."""
    statement = {
        "reference": "01R-7K3Q9X",
        "prefecture": "01",
        "procedure": "renewal",
        "joined_at": "2025-03-04T09:15:00+01:00",
        "status": "waiting",
        "draws": [
            {"draw_id": "01-renewal-2025-03-10", "date": "2025-03-10", "outcome": "not_drawn"},
            {"draw_id": "01-renewal-2025-03-17", "date": "2025-03-17", "outcome": "drawn"},
        ],
        "issued_at": "2025-03-18T10:00:00+01:00",
    }
    statement.update(changes)
    return statement


def new_key():
    """A fresh private key and its public text."""
    private = load_signing_key(generate_signing_key())
    return private, public_key_text(private)


def signed_document(statement=None):
    """A proof of ``statement`` (default: ``make_statement()``) and its trusted public key."""
    private, public_text = new_key()
    return sign_proof(private, make_statement() if statement is None else statement), public_text


def non_canonical_last_character(text):
    """``text`` with unused trailing bits set: the same bytes, another spelling."""
    index = BASE64URL_ALPHABET.index(text[-1])
    assert index & 1 == 0, "32 and 64 bytes leave 2 and 4 bits of the last character unused"
    return text[:-1] + BASE64URL_ALPHABET[index | 1]


def nested_lists(depth):
    value = []
    for _ in range(depth):
        value = [value]
    return value


# Sign, then verify ------------------------------------------------------------


def test_a_signed_proof_verifies_and_returns_its_statement():
    document, public_text = signed_document()
    result = verify_proof(document, [public_text])
    assert result == VerificationResult(valid=True, reason="valid", statement=make_statement())


def test_a_proof_verifies_after_travelling_as_json_text():
    statement = make_statement(reference="01R-ÉÈ2ß", status="en attente – convoqué")
    document, public_text = signed_document(statement)
    for ensure_ascii in (True, False):
        travelled = json.loads(json.dumps(document, ensure_ascii=ensure_ascii, indent=2))
        assert verify_proof(travelled, [public_text]).statement == statement


def test_the_proof_has_the_documented_shape_and_any_ed25519_library_can_check_it():
    private, public_text = new_key()
    document = sign_proof(private, make_statement())
    assert set(document) == set(DOCUMENT_FIELDS)
    assert document["format"] == PROOF_FORMAT == "fairqueue-proof/v1"
    assert document["statement"] == make_statement()
    assert document["public_key"] == public_text
    assert document["key_id"] == key_id(public_text)
    assert re.fullmatch(r"[A-Za-z0-9_-]{86}", document["signature"])

    signed_bytes = canonical_json({"format": PROOF_FORMAT, "statement": make_statement()})
    signature = base64.urlsafe_b64decode(document["signature"] + "==")
    private.public_key().verify(signature, signed_bytes)  # raises if it does not match


def test_the_proof_does_not_change_when_the_callers_statement_does():
    statement = make_statement()
    document, public_text = signed_document(statement)
    statement["draws"][0]["outcome"] = "drawn"
    statement["reference"] = "01R-OTHER1"
    assert document["statement"] == make_statement()
    assert verify_proof(document, [public_text]).valid


def test_a_proof_issued_earlier_still_verifies():
    assert canonical_json({"format": PROOF_FORMAT, "statement": ISSUED_PROOF["statement"]}) == ISSUED_PROOF_SIGNED_BYTES
    signature = base64.urlsafe_b64decode(ISSUED_PROOF["signature"] + "==")
    Ed25519PublicKey.from_public_bytes(RFC8032_PUBLIC).verify(signature, ISSUED_PROOF_SIGNED_BYTES)

    result = verify_proof(copy.deepcopy(ISSUED_PROOF), [RFC8032_PUBLIC_TEXT])
    assert result.valid, result.reason
    assert result.statement == ISSUED_PROOF["statement"]


def test_signing_is_deterministic():
    private = load_signing_key(RFC8032_SEED_TEXT)
    assert sign_proof(private, ISSUED_PROOF["statement"]) == ISSUED_PROOF


@hypothesis_settings(deadline=None)
@given(statement=json_objects)
def test_any_json_statement_signs_and_verifies(statement):
    document, public_text = signed_document(statement)
    result = verify_proof(json.loads(json.dumps(document)), [public_text])
    assert result.valid, result.reason
    assert result.statement == statement


def test_proofs_of_every_trusted_key_verify_during_a_key_rotation():
    old_document, old_public = signed_document()
    new_document, new_public = signed_document()
    trusted = [old_public, new_public]
    assert verify_proof(old_document, trusted).valid
    assert verify_proof(new_document, trusted).valid
    assert not verify_proof(old_document, [new_public]).valid


def test_malformed_entries_in_the_trusted_list_are_ignored():
    document, public_text = signed_document()
    trusted = [None, "", "not a key", 42, {"key": public_text}, public_text + "A", public_text]
    assert verify_proof(document, trusted).valid


# canonical_json -------------------------------------------------------------


def test_canonical_json_is_sorted_compact_utf8():
    document = {"b": [1, True, None, 2.5], "a": "é’", "c": {"z": 1, "y": {"β": "x", "α": ""}}}
    expected = '{"a":"é’","b":[1,true,null,2.5],"c":{"y":{"α":"","β":"x"},"z":1}}'.encode("utf-8")
    assert canonical_json(document) == expected


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_canonical_json_and_sign_proof_refuse_what_json_cannot_carry(value):
    with pytest.raises(ValueError):
        canonical_json({"x": value})
    with pytest.raises(ValueError):
        sign_proof(new_key()[0], make_statement(score=value))


@pytest.mark.parametrize("statement", [None, [], "01R-7K3Q9X", [("reference", "01R-7K3Q9X")]])
def test_sign_proof_refuses_a_statement_that_is_not_a_dict(statement):
    with pytest.raises(TypeError):
        sign_proof(new_key()[0], statement)


# Any change to the statement fails ------------------------------------------


def _set_outcome(statement):
    statement["draws"][0]["outcome"] = "drawn"


def _set_draw_date(statement):
    statement["draws"][1]["date"] = "2025-03-18"


def _set_draw_id(statement):
    statement["draws"][1]["draw_id"] = "01-renewal-2025-03-24"


def _set_joined_at(statement):
    statement["joined_at"] = "2025-03-03T09:15:00+01:00"


def _set_reference(statement):
    statement["reference"] = "01R-7K3Q9Y"


def _pad_reference(statement):
    statement["reference"] = "01R-7K3Q9X "


def _set_prefecture(statement):
    statement["prefecture"] = "2A"


def _set_status(statement):
    statement["status"] = "offered"


def _set_issued_at(statement):
    statement["issued_at"] = "2026-03-18T10:00:00+01:00"


def _drop_a_draw(statement):
    del statement["draws"][0]


def _add_a_draw(statement):
    statement["draws"].append({"draw_id": "01-renewal-2025-03-24", "date": "2025-03-24", "outcome": "drawn"})


def _swap_draws(statement):
    statement["draws"].reverse()


def _add_a_field(statement):
    statement["note"] = "priority applicant"


def _remove_a_field(statement):
    del statement["status"]


def _outcome_of_another_type(statement):
    statement["draws"][0]["outcome"] = True


@pytest.mark.parametrize(
    "change",
    [
        _set_outcome,
        _set_draw_date,
        _set_draw_id,
        _set_joined_at,
        _set_reference,
        _pad_reference,
        _set_prefecture,
        _set_status,
        _set_issued_at,
        _drop_a_draw,
        _add_a_draw,
        _swap_draws,
        _add_a_field,
        _remove_a_field,
        _outcome_of_another_type,
    ],
)
def test_any_change_to_the_statement_fails(change):
    document, public_text = signed_document()
    change(document["statement"])
    assert document["statement"] != make_statement()
    result = verify_proof(document, [public_text])
    assert result == VerificationResult(
        valid=False, reason="the signature does not match the statement", statement=None
    )


@hypothesis_settings(deadline=None)
@given(signed=json_objects, presented=json_objects)
def test_a_signature_does_not_carry_over_to_another_statement(signed, presented):
    assume(canonical_json(signed) != canonical_json(presented))
    document, public_text = signed_document(signed)
    document["statement"] = presented
    assert not verify_proof(document, [public_text]).valid


@hypothesis_settings(deadline=None)
@given(byte_index=st.integers(min_value=0, max_value=63), bit=st.integers(min_value=0, max_value=7))
def test_any_flipped_bit_of_the_signature_fails(byte_index, bit):
    document, public_text = signed_document()
    signature = bytearray(base64.urlsafe_b64decode(document["signature"] + "=="))
    signature[byte_index] ^= 1 << bit
    document["signature"] = base64.urlsafe_b64encode(bytes(signature)).decode().rstrip("=")
    assert not verify_proof(document, [public_text]).valid


def test_another_format_fails():
    document, public_text = signed_document()
    document["format"] = "fairqueue-proof/v2"
    result = verify_proof(document, [public_text])
    assert not result.valid
    assert "format" in result.reason


def test_a_field_outside_the_signature_fails():
    document, public_text = signed_document()
    document["note"] = "checked by the prefecture"
    result = verify_proof(document, [public_text])
    assert not result.valid
    assert "fields" in result.reason


@pytest.mark.parametrize("field", DOCUMENT_FIELDS)
def test_a_missing_field_fails(field):
    document, public_text = signed_document()
    del document[field]
    result = verify_proof(document, [public_text])
    assert not result.valid
    assert field in result.reason


# Forgery ----------------------------------------------------------------------


def test_a_proof_signed_with_an_untrusted_key_fails_even_with_that_key_embedded():
    _, service_public = new_key()
    forged, forger_public = signed_document(make_statement(status="offered"))
    assert forged["public_key"] == forger_public
    assert verify_proof(forged, [forger_public]).valid  # a genuine signature, but not the service's
    result = verify_proof(forged, [service_public])
    assert result == VerificationResult(
        valid=False, reason="the proof was not signed with a trusted key", statement=None
    )


def test_a_forger_claiming_the_service_key_fails():
    _, service_public = new_key()
    forged, _ = signed_document(make_statement(status="offered"))
    forged["key_id"] = key_id(service_public)
    forged["public_key"] = service_public
    result = verify_proof(forged, [service_public])
    assert result.reason == "the signature does not match the statement"
    assert not result.valid


def test_a_forger_embedding_their_key_under_the_service_key_id_fails():
    _, service_public = new_key()
    forged, _ = signed_document(make_statement(status="offered"))
    forged["key_id"] = key_id(service_public)
    result = verify_proof(forged, [service_public])
    assert result.reason == "the public_key does not match the key_id"
    assert not result.valid


@pytest.mark.parametrize("trusted", [[], (), None, "", {}, 42])
def test_without_trusted_keys_nothing_verifies(trusted):
    document, public_text = signed_document()
    assert not verify_proof(document, trusted).valid


def test_a_single_key_given_as_text_instead_of_a_list_is_not_split_into_characters():
    document, public_text = signed_document()
    assert not verify_proof(document, public_text).valid


# Garbage never raises ---------------------------------------------------------


@hypothesis_settings(deadline=None)
@given(document=json_values)
def test_any_json_value_as_a_proof_fails_without_raising(document):
    result = verify_proof(document, [RFC8032_PUBLIC_TEXT])
    assert result.valid is False
    assert result.statement is None
    assert isinstance(result.reason, str) and result.reason


@hypothesis_settings(deadline=None)
@given(field=st.sampled_from(DOCUMENT_FIELDS), value=json_values)
def test_any_json_value_in_any_field_fails_without_raising(field, value):
    document, public_text = signed_document()
    original = document[field]
    assume(value != original)
    if field in ("public_key", "signature"):
        assume(not (isinstance(value, str) and value.rstrip("=") == original))  # padded is accepted
    document[field] = value
    result = verify_proof(document, [public_text])
    assert result.valid is False
    assert result.reason


@hypothesis_settings(deadline=None)
@given(trusted=json_values)
def test_any_json_value_as_the_trusted_keys_does_not_raise(trusted):
    result = verify_proof(copy.deepcopy(ISSUED_PROOF), trusted)
    assert result.valid is False


@hypothesis_settings(deadline=None)
@given(document=st.fixed_dictionaries({name: json_values for name in DOCUMENT_FIELDS}))
def test_documents_with_every_field_present_but_garbage_fail_without_raising(document):
    assert verify_proof(document, [RFC8032_PUBLIC_TEXT]).valid is False


def _bad_encodings(good_text):
    """Texts a verifier must refuse where ``good_text`` is expected."""
    raw = base64.urlsafe_b64decode(good_text + "==")
    return [
        "",
        good_text[:-1],
        good_text + "A",
        good_text[:-4],
        good_text + "=" * (3 - (-len(good_text) % 4)),  # padding, but not the right amount
        good_text[:20] + "=" + good_text[20:],
        good_text + "===",
        "=" + good_text,
        good_text[:10] + " " + good_text[10:],
        good_text + "\n",
        good_text[:-1] + "٣",  # an Arabic-Indic digit: a digit, but not base64
        "+" + good_text[1:],  # the standard base64 alphabet
        "/" + good_text[1:],
        non_canonical_last_character(good_text),
        base64.urlsafe_b64encode(raw + b"\0").decode(),
        base64.b16encode(raw).decode(),
        None,
        12,
        12.5,
        True,
        [good_text],
        {"value": good_text},
    ]


@pytest.mark.parametrize("case", range(len(_bad_encodings(RFC8032_PUBLIC_TEXT))))
@pytest.mark.parametrize("field", ["signature", "public_key"])
def test_bad_base64_in_the_signature_or_public_key_fails_without_raising(field, case):
    document, public_text = signed_document()
    document[field] = _bad_encodings(document[field])[case]
    result = verify_proof(document, [public_text])
    assert result.valid is False
    assert field in result.reason


@pytest.mark.parametrize("field", ["signature", "public_key"])
def test_correct_padding_is_accepted(field):
    document, public_text = signed_document()
    document[field] += "=" * (-len(document[field]) % 4)
    assert verify_proof(document, [public_text]).valid


@pytest.mark.parametrize(
    "statement",
    [
        {"reference": float("nan")},
        {"reference": float("inf")},
        {"reference": "\ud800"},  # a lone surrogate has no UTF-8 form
        {1: "mixed", "key": "types"},
        {"draws": {"a set"}},
        {"draws": b"bytes"},
        {"draws": nested_lists(100_000)},
    ],
    ids=["nan", "infinity", "lone-surrogate", "mixed-keys", "set", "bytes", "deep-nesting"],
)
def test_a_statement_json_cannot_carry_fails_without_raising(statement):
    document, public_text = signed_document()
    document["statement"] = statement
    result = verify_proof(document, [public_text])
    assert result == VerificationResult(
        valid=False, reason="the statement cannot be written as canonical JSON", statement=None
    )


@pytest.mark.parametrize("key_id_value", [None, 12, ["21fe31dfa154a261"], "", "21FE31DFA154A261", "21fe31dfa154a26"])
def test_a_wrong_key_id_fails_without_raising(key_id_value):
    document = copy.deepcopy(ISSUED_PROOF)
    document["key_id"] = key_id_value
    assert verify_proof(document, [RFC8032_PUBLIC_TEXT]).valid is False


# Keys -------------------------------------------------------------------------


def test_a_generated_key_is_43_characters_of_unpadded_urlsafe_base64():
    first, second = generate_signing_key(), generate_signing_key()
    for text in (first, second):
        assert re.fullmatch(r"[A-Za-z0-9_-]{43}", text)
        assert len(base64.urlsafe_b64decode(text + "=")) == 32
    assert first != second


def test_a_generated_key_round_trips():
    text = generate_signing_key()
    private = load_signing_key(text)
    raw_seed = private.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    assert base64.urlsafe_b64encode(raw_seed).decode().rstrip("=") == text
    assert public_key_text(load_signing_key(text)) == public_key_text(private)


def test_the_key_encoding_matches_rfc_8032():
    private = load_signing_key(RFC8032_SEED_TEXT)
    assert private.sign(b"") == RFC8032_EMPTY_SIGNATURE
    assert public_key_text(private) == RFC8032_PUBLIC_TEXT
    assert base64.urlsafe_b64decode(RFC8032_PUBLIC_TEXT + "=") == RFC8032_PUBLIC
    assert key_id(RFC8032_PUBLIC_TEXT) == hashlib.sha256(RFC8032_PUBLIC).hexdigest()[:16] == "21fe31dfa154a261"


@hypothesis_settings(deadline=None)
@given(seed=st.binary(min_size=32, max_size=32))
def test_any_seed_round_trips(seed):
    text = base64.urlsafe_b64encode(seed).decode().rstrip("=")
    private = load_signing_key(text)
    expected = Ed25519PrivateKey.from_private_bytes(seed)
    assert public_key_text(private) == public_key_text(expected)
    assert private.sign(b"proof") == expected.sign(b"proof")
    public_text = public_key_text(private)
    assert re.fullmatch(r"[0-9a-f]{16}", key_id(public_text))
    assert key_id(public_text) == hashlib.sha256(base64.urlsafe_b64decode(public_text + "=")).hexdigest()[:16]


@pytest.mark.parametrize(
    "text", [RFC8032_SEED_TEXT + "=", RFC8032_SEED_TEXT + "\n", "  " + RFC8032_SEED_TEXT + "\r\n"]
)
def test_a_key_with_padding_or_surrounding_whitespace_loads(text):
    assert public_key_text(load_signing_key(text)) == RFC8032_PUBLIC_TEXT


def test_different_keys_have_different_key_ids():
    assert len({key_id(new_key()[1]) for _ in range(20)}) == 20


@pytest.mark.parametrize("text", [None, 42, "", "short", RFC8032_SEED_TEXT + "=="])
def test_key_id_of_something_that_is_not_a_public_key_raises_value_error(text):
    with pytest.raises(ValueError):
        key_id(text)


MALFORMED_PRIVATE_KEYS = [
    "",
    "   ",
    "abc",
    RFC8032_SEED_TEXT[:-1],
    RFC8032_SEED_TEXT + "A",
    base64.urlsafe_b64encode(RFC8032_SEED[:31]).decode(),
    base64.urlsafe_b64encode(RFC8032_SEED + b"\0").decode(),
    base64.b64encode(bytes(range(200, 232))).decode(),  # standard base64: + and /
    RFC8032_SEED_TEXT[:20] + " " + RFC8032_SEED_TEXT[20:],
    RFC8032_SEED_TEXT + "==",
    non_canonical_last_character(RFC8032_SEED_TEXT),
    RFC8032_SEED.hex(),
    # The RFC 8032 key as PEM: only the raw seed is accepted.
    Ed25519PrivateKey.from_private_bytes(RFC8032_SEED)
    .private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    .decode(),
    None,
    RFC8032_SEED,
    32,
]


@pytest.mark.parametrize("text", MALFORMED_PRIVATE_KEYS, ids=range(len(MALFORMED_PRIVATE_KEYS)))
def test_a_malformed_private_key_raises_a_clear_value_error(text):
    with pytest.raises(ValueError, match="signing key must be") as raised:
        load_signing_key(text)
    if isinstance(text, str) and len(text.strip()) >= 8:
        assert text.strip() not in str(raised.value)  # a secret is never echoed
        assert text.strip()[:8] not in str(raised.value)


@hypothesis_settings(deadline=None)
@given(text=st.text(max_size=60))
def test_loading_any_text_either_gives_a_key_or_raises_value_error(text):
    try:
        private = load_signing_key(text)
    except ValueError:
        return
    assert isinstance(private, Ed25519PrivateKey)
    assert len(text.strip().rstrip("=")) == 43
