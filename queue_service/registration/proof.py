"""Signed proofs of registration that a third party can check offline.

Why this module exists
----------------------
An applicant waiting for a prefecture appointment may have to show a lawyer
or a court that they registered, when, and which draws they took part in.
The service hands them a small JSON document signed with its Ed25519 key;
anyone holding the service's public key can check it with this module (or
with any Ed25519 library: the signed bytes are described below), without
access to the service or its database. Plain Python only: no Flask, no Redis,
nothing done at import; the key, the statement and the time it was issued
all come in as arguments.

The signed document (format ``fairqueue-proof/v1``)
---------------------------------------------------
::

    {
      "format": "fairqueue-proof/v1",
      "statement": {...},
      "key_id": "21fe31dfa154a261",
      "public_key": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
      "signature": "<86 characters>"
    }

``signature`` is the Ed25519 signature of ``canonical_json({"format": ...,
"statement": ...})``: the JSON text with keys sorted at every level, no
whitespace, non-ASCII characters written as themselves, encoded as UTF-8.
``key_id`` is the first 16 hex digits of the SHA-256 of the raw 32-byte
public key. ``public_key`` is a hint for the reader only: ``verify_proof``
checks the signature with a key from its own trusted list, found by
``key_id``, so a document signed with anyone else's key never verifies.

Encoding of keys and signatures
-------------------------------
Private keys, public keys and signatures are written in the URL-safe base64
alphabet of RFC 4648 section 5 (``A-Z a-z 0-9 - _``) *without* ``=`` padding,
as in JWS: a private key (the raw 32-byte Ed25519 seed) and a public key are
43 characters, a signature (64 bytes) is 86. On input, the correct ``=``
padding is also accepted; anything else (the ``+`` and ``/`` of standard
base64, spaces inside, a wrong length, unused trailing bits that are not
zero) is rejected, so every key and signature has one accepted spelling
apart from its optional padding. ``load_signing_key`` ignores whitespace
around the key, since keys are often read from files or environment
variables that end with a newline.

The statement
-------------
The content of the statement is the caller's: any JSON object is signed as
given. The service's proof of registration uses these fields::

    reference    the applicant's public reference, e.g. "01R-7K3Q9X"
    prefecture   the prefecture code, e.g. "01" or "2A"
    procedure    the procedure code, e.g. "renewal"
    joined_at    when the applicant joined the pool, ISO 8601 with offset
    status       the applicant's status in the pool when the proof was issued
    draws        every draw entered, oldest first, each
                 {"draw_id": ..., "date": ISO 8601 date, "outcome": ...}
    issued_at    when the proof was issued, ISO 8601 with offset

Only values that JSON can carry belong in a statement (no NaN or infinity,
no lone surrogates); ``sign_proof`` raises on anything else rather than sign
something a verifier elsewhere could not reproduce.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from queue_service.errors import N_

__all__ = [
    "PROOF_FORMAT",
    "VerificationResult",
    "canonical_json",
    "generate_signing_key",
    "key_id",
    "load_signing_key",
    "public_key_text",
    "sign_proof",
    "verify_proof",
]

#: The value of the ``format`` field; a new layout gets a new version.
PROOF_FORMAT = "fairqueue-proof/v1"

#: Sizes in bytes of an Ed25519 seed (private key), public key and signature.
SEED_BYTES = 32
PUBLIC_KEY_BYTES = 32
SIGNATURE_BYTES = 64

#: The fields of a signed document, no more and no fewer: a field outside the
#: signature (a "note", a second "status") must not ride along with a proof.
DOCUMENT_FIELDS = frozenset({"format", "statement", "key_id", "public_key", "signature"})

_BASE64URL_TEXT = re.compile(r"[A-Za-z0-9_-]*={0,2}")


@dataclass(frozen=True)
class VerificationResult:
    """The answer of ``verify_proof``.

    ``reason`` is a short English sentence: "valid" when ``valid`` is true,
    otherwise what is wrong (``message`` and ``values`` give it to translate). ``statement`` is the signed statement, parsed
    back from the exact bytes that were signed, when valid; ``None`` if not.
    """

    valid: bool
    reason: str
    statement: dict | None = None
    # The reason as a message to translate (N_) and its values, for a page in the reader's language.
    message: str = field(default="", compare=False)
    values: dict | None = field(default=None, compare=False)


# Keys ----------------------------------------------------------------------


def generate_signing_key() -> str:
    """A new private key: the 32-byte Ed25519 seed as unpadded URL-safe base64."""
    private = Ed25519PrivateKey.generate()
    seed = private.private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )
    return _encode_base64url(seed)


def load_signing_key(text: str) -> Ed25519PrivateKey:
    """The private key written by ``generate_signing_key``.

    Raises ``ValueError`` if ``text`` is not the URL-safe base64 of exactly
    32 bytes. The message never repeats the text: it is a secret.
    """
    if not isinstance(text, str):
        raise ValueError(f"signing key must be text, not {type(text).__name__}")
    seed = _decode_base64url(text.strip(), SEED_BYTES, "signing key")
    return Ed25519PrivateKey.from_private_bytes(seed)


def public_key_text(private: Ed25519PrivateKey) -> str:
    """The public half of ``private``: 32 raw bytes as unpadded URL-safe base64."""
    raw = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return _encode_base64url(raw)


def key_id(public_text: str) -> str:
    """First 16 hex digits of the SHA-256 of the raw public key.

    Raises ``ValueError`` if ``public_text`` is not a public key as written by
    ``public_key_text``.
    """
    raw = _decode_base64url(public_text, PUBLIC_KEY_BYTES, "public key")
    return _key_id_of_raw(raw)


# Signing and verifying -----------------------------------------------------


def canonical_json(document: dict) -> bytes:
    """The one byte string that stands for ``document`` when it is signed.

    Raises ``TypeError`` or ``ValueError`` for what JSON cannot carry (NaN,
    objects, keys of mixed types) and ``UnicodeEncodeError`` for lone
    surrogates.
    """
    text = json.dumps(
        document,
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    )
    return text.encode("utf-8")


def sign_proof(private: Ed25519PrivateKey, statement: dict) -> dict:
    """The signed document for ``statement`` (see the module docstring).

    The document holds a copy of the statement parsed back from the signed
    bytes, so changing ``statement`` afterwards does not change the proof,
    and the proof holds exactly what was signed.
    """
    if not isinstance(statement, dict):
        raise TypeError(f"statement must be a dict, not {type(statement).__name__}")
    signed_bytes = canonical_json({"format": PROOF_FORMAT, "statement": statement})
    public_text = public_key_text(private)
    return {
        "format": PROOF_FORMAT,
        "statement": json.loads(signed_bytes)["statement"],
        "key_id": key_id(public_text),
        "public_key": public_text,
        "signature": _encode_base64url(private.sign(signed_bytes)),
    }


def verify_proof(document: object, trusted_public_keys: list[str]) -> VerificationResult:
    """Whether ``document`` is a proof signed by one of ``trusted_public_keys``.

    Never raises on a document or key list built from JSON values (or on
    other types in their place): whatever is wrong comes back as
    ``valid=False`` with a reason. Entries of ``trusted_public_keys`` that are
    not public keys are ignored; they can match no document.
    """
    if not isinstance(document, dict):
        return _invalid(N_("the proof is not a JSON object"))
    missing = [name for name in sorted(DOCUMENT_FIELDS) if name not in document]
    if missing:
        return _invalid(N_("the proof has no %(field)s field"), field=repr(missing[0]))
    if len(document) != len(DOCUMENT_FIELDS):
        return _invalid(N_("the proof has fields that are not part of the format"))

    proof_format = document["format"]
    if not isinstance(proof_format, str) or proof_format != PROOF_FORMAT:
        return _invalid(N_("the proof is not in the %(format)s format"), format=PROOF_FORMAT)
    if not isinstance(document["statement"], dict):
        return _invalid(N_("the statement is not a JSON object"))

    claimed_key_id = document["key_id"]
    if not isinstance(claimed_key_id, str):
        return _invalid(N_("the key_id is not text"))
    trusted_raw = _trusted_key_by_id(trusted_public_keys).get(claimed_key_id)
    if trusted_raw is None:
        return _invalid(N_("the proof was not signed with a trusted key"))
    try:
        embedded_raw = _decode_base64url(document["public_key"], PUBLIC_KEY_BYTES, "public key")
    except ValueError:
        return _invalid(N_("the public_key is not a base64url public key"))
    if embedded_raw != trusted_raw:
        return _invalid(N_("the public_key does not match the key_id"))
    try:
        signature = _decode_base64url(document["signature"], SIGNATURE_BYTES, "signature")
    except ValueError:
        return _invalid(N_("the signature is not a base64url Ed25519 signature"))

    try:
        signed_bytes = canonical_json({"format": PROOF_FORMAT, "statement": document["statement"]})
        statement = json.loads(signed_bytes)["statement"]
    except (TypeError, ValueError, RecursionError):
        # UnicodeEncodeError (lone surrogates) is a ValueError.
        return _invalid(N_("the statement cannot be written as canonical JSON"))

    try:
        Ed25519PublicKey.from_public_bytes(trusted_raw).verify(signature, signed_bytes)
    except (InvalidSignature, ValueError):
        return _invalid(N_("the signature does not match the statement"))
    return VerificationResult(valid=True, reason="valid", statement=statement)


# Helpers -------------------------------------------------------------------


def _invalid(message: str, **values: str) -> VerificationResult:
    return VerificationResult(valid=False, reason=message % values, statement=None, message=message, values=values)


def _trusted_key_by_id(trusted_public_keys: object) -> dict[str, bytes]:
    """The raw trusted keys by key id; entries that are not keys are skipped.

    A lone string is not taken as a list of one-character keys.
    """
    if not isinstance(trusted_public_keys, (list, tuple, set, frozenset)):
        return {}
    by_id = {}
    for public_text in trusted_public_keys:
        try:
            raw = _decode_base64url(public_text, PUBLIC_KEY_BYTES, "public key")
        except ValueError:
            continue
        by_id[_key_id_of_raw(raw)] = raw
    return by_id


def _key_id_of_raw(raw_public_key: bytes) -> str:
    return hashlib.sha256(raw_public_key).hexdigest()[:16]


def _encode_base64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _decode_base64url(text: object, length: int, what: str) -> bytes:
    """The ``length`` bytes that ``text`` encodes, in its one accepted spelling.

    Raises ``ValueError`` naming ``what`` (never quoting ``text``, which may
    be a secret) if ``text`` is not unpadded or correctly padded URL-safe
    base64 of exactly ``length`` bytes with zero unused bits.
    """
    expected_chars = len(_encode_base64url(bytes(length)))
    problem = f"{what} must be {expected_chars} characters of URL-safe base64 ({length} bytes)"
    if not isinstance(text, str):
        raise ValueError(f"{problem}, not {type(text).__name__}")
    if not _BASE64URL_TEXT.fullmatch(text):
        raise ValueError(f"{problem}; it holds characters outside A-Z a-z 0-9 - _")
    unpadded = text.rstrip("=")
    padding = "=" * (-len(unpadded) % 4)
    if text not in (unpadded, unpadded + padding):
        raise ValueError(f"{problem}; its '=' padding is wrong")
    if len(unpadded) != expected_chars:
        raise ValueError(f"{problem}; it has {len(unpadded)}")
    try:
        raw = base64.urlsafe_b64decode(unpadded + padding)
    except (binascii.Error, ValueError) as error:
        raise ValueError(f"{problem}; it does not decode") from error
    if _encode_base64url(raw) != unpadded:
        raise ValueError(f"{problem}; its last character is not a canonical one")
    return raw
