"""The OpenAPI 3.1 description of the JSON API, served at /api/v1/openapi.json.

A test checks that every route under /api/v1 is described here and that the
document validates, so the two cannot drift apart.
"""

from __future__ import annotations

from queue_service.reference import HALF_DAYS, LOCALES
from queue_service.registration.identity import EMAIL_MAX_LENGTH, NAME_MAX_LENGTH
from web.proof_of_work import MAX_PROOF_LENGTH

PROBLEM = {"$ref": "#/components/responses/Problem"}


# Any request can be refused for bad Unicode in its address (400), too many requests (429)
# or Redis out of reach (503); a body can be too large (413).
ANY_REQUEST = (400, 429, 503)
WITH_BODY = (400, 413, 422, 429, 503)


def _problems(*statuses: int) -> dict:
    return {str(status): PROBLEM for status in sorted({*statuses, *ANY_REQUEST})}


def _json_body(schema: dict) -> dict:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _json(schema_name: str, description: str) -> dict:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema_name}"}}},
    }


def _object(properties: dict, required: list[str] | None = None) -> dict:
    schema = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema


TEXT = {"type": "string"}
GIVEN = {"type": "string", "minLength": 1, "pattern": r"\S"}  # required text: blanks alone are refused
NULLABLE_TEXT = {"type": ["string", "null"]}
DATE = {"type": "string", "format": "date"}
MOMENT = {"type": "string", "format": "date-time"}
PROOF_OF_WORK = {
    "type": "string",
    "maxLength": MAX_PROOF_LENGTH,
    "description": "Optional proof of work: the solution of a challenge from GET /challenge, as the ALTCHA "
                   "widget sends it (base64 of {\"challenge\": …, \"solution\": …}). A valid one, accepted "
                   "once, opens the generous per-address limit; without one the request is served under the "
                   "tighter limit for requests without proof.",
}


def staff_paths() -> dict:
    """The staff API's operations, as its routes declare them (web/staff_api), with their problems."""
    from web.staff_api import OPERATIONS

    paths = {}
    for path, methods in OPERATIONS.items():
        paths[path] = {}
        for method, declared in methods.items():
            operation = {name: value for name, value in declared.items() if name != "x-problems"}
            statuses = declared["x-problems"] + (list(WITH_BODY) if "requestBody" in declared else [])
            operation["responses"] = declared["responses"] | _problems(*statuses)
            paths[path][method] = operation
    return paths


def openapi_document() -> dict:
    registration_input = _object(
        {
            "prefecture": {**GIVEN, "maxLength": 3, "description": "Département code, e.g. 01, 2A, 974"},
            "procedure": {"type": "string", "enum": ["first_request", "renewal", "permit_pickup", "student"]},
            "family_name": {**GIVEN, "maxLength": NAME_MAX_LENGTH, "description": "Any script; 1 to 100 characters"},
            "given_names": {**GIVEN, "maxLength": NAME_MAX_LENGTH},
            "birth_date": {"type": "string", "pattern": r"^\s*([0-9]{4}-[0-9]{2}-[0-9]{2}|[0-9]{1,2}/[0-9]{1,2}/[0-9]{4})\s*$",
                           "description": "YYYY-MM-DD or DD/MM/YYYY; at most 120 years ago"},
            "nationality": {**GIVEN, "maxLength": 40, "description": "ISO 3166-1 alpha-2 code (not FR), or 'stateless'"},
            "email": {**GIVEN, "format": "email", "maxLength": EMAIL_MAX_LENGTH},
            "phone": {"type": ["string", "null"], "maxLength": 40,
                      "description": "Mobile number, French or international, for text messages; optional (absent, "
                                     "null or empty for none); stored as E.164"},
            "agdref": {**GIVEN, "maxLength": 40, "description": "10 digits; required for renewal and permit_pickup"},
            "permit_expiry": {**GIVEN, "maxLength": 40, "description": "YYYY-MM-DD or DD/MM/YYYY; required for renewal"},
            "sites": {"type": "array", "items": TEXT, "minItems": 1, "description": "Site ids; absent means all"},
            "half_days": {"type": "array", "items": {"type": "string", "enum": list(HALF_DAYS)}, "minItems": 1,
                          "description": "Absent means all"},
            "language": {"type": "string", "enum": list(LOCALES)},
            "consent": {"const": True, "description": "The privacy notice (/privacy) is accepted"},
            "altcha": PROOF_OF_WORK,
        },
        ["prefecture", "procedure", "family_name", "given_names", "birth_date", "nationality", "email", "consent"],
    )
    registration = _object(
        {
            "ref": TEXT,
            "prefecture": TEXT,
            "procedure": TEXT,
            "status": {
                "type": "string",
                "enum": ["pending_email", "waiting", "offered", "confirmed", "attended", "no_show", "declined",
                         "expired", "cancelled", "withdrawn"],
            },
            "channel": {"type": "string", "enum": ["online", "assisted"]},
            "created_at": MOMENT,
            "email_confirmed_at": {"type": ["string", "null"], "format": "date-time"},
            "draws_entered": {"type": "integer"},
            "email": NULLABLE_TEXT,
            "pending_email": NULLABLE_TEXT,
            "phone": NULLABLE_TEXT,
            "sites": {"type": "array", "items": TEXT},
            "half_days": {"type": "array", "items": TEXT},
            "language": TEXT,
            "offer": {
                "type": ["object", "null"],
                "description": "The latest offer or booking; null before any",
                "properties": {
                    "status": {"type": "string", "enum": ["pending", "confirmed", "declined", "expired", "cancelled",
                                                          "slot_cancelled", "attended", "no_show"]},
                    "starts_at": MOMENT,
                    "ends_at": MOMENT,
                    "site": TEXT,
                    "deadline": MOMENT,
                    "booking_code": NULLABLE_TEXT,
                    "cancel_by": {"type": ["string", "null"], "format": "date-time"},
                },
            },
        }
    )
    bearer = [{"statusToken": []}]
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Prefecture appointments: waiting lists and fair draws",
            "version": "1",
            "description": "Errors are RFC 9457 problem documents (application/problem+json).",
        },
        "servers": [{"url": "/api/v1"}],
        "paths": {
            "/": {"get": {"summary": "Links to the API's collections", "responses": {"200": {"description": "Links"}, **_problems()}}},
            "/openapi.json": {"get": {"summary": "This document", "responses": {"200": {"description": "OpenAPI"}, **_problems()}}},
            "/prefectures": {
                "get": {"summary": "Every prefecture", "responses": {"200": _json("PrefectureList", "Prefectures"), **_problems()}}
            },
            "/prefectures/{code}": {
                "get": {
                    "summary": "One prefecture and its sites",
                    "parameters": [{"name": "code", "in": "path", "required": True, "schema": TEXT}],
                    "responses": {"200": _json("PrefectureWithSites", "The prefecture"), **_problems(404)},
                }
            },
            "/prefectures/{code}/statistics": {
                "get": {
                    "summary": "Public statistics of a prefecture: pool sizes, slots offered per week, median wait, "
                               "renewals served before their permit expired, every draw with its record (no personal data)",
                    "parameters": [{"name": "code", "in": "path", "required": True, "schema": TEXT}],
                    "responses": {"200": _json("PublicStatistics", "The statistics"), **_problems(404)},
                }
            },
            "/procedures": {
                "get": {"summary": "The procedures", "responses": {"200": {"description": "Procedures"}, **_problems()}}
            },
            "/challenge": {
                "get": {
                    "summary": "A proof-of-work challenge (ALTCHA v2, self-hosted) to solve before registering",
                    "description": "Derive keys with the challenge's algorithm (PBKDF2/SHA-256, `cost` iterations, "
                                   "salt from `salt`, password = bytes of `nonce` followed by the number as a "
                                   "big-endian uint32) for the numbers 0, 1, 2… until a key starts with "
                                   "`keyPrefix`; send base64 of {\"challenge\": <this document>, \"solution\": "
                                   "{\"counter\": n, \"derivedKey\": <hex>}} as `altcha` before `expiresAt`. "
                                   "The widget and the `altcha` libraries (altcha.solve_challenge in Python) do "
                                   "this; each challenge proves one request.",
                    "responses": {"200": _json("Challenge", "A fresh challenge"), **_problems()},
                }
            },
            "/registrations": {
                "post": {
                    "summary": "Register in a waiting list (then confirm the emailed link)",
                    "requestBody": _json_body({"$ref": "#/components/schemas/RegistrationInput"}),
                    "responses": {
                        "201": _json("Created", "Registered; waiting for the email confirmation"),
                        **_problems(*WITH_BODY, 404, 409),
                    },
                }
            },
            "/registrations/recover": {
                "post": {
                    "summary": "Send the links of the registrations using an email address to it again",
                    "description": "The confirmation link of a registration not confirmed yet, the private status "
                                   "link of the others. The answer is the same whether or not any registration "
                                   "uses the address.",
                    "requestBody": _json_body(_object(
                        {"email": {**GIVEN, "format": "email", "maxLength": EMAIL_MAX_LENGTH}}, ["email"])),
                    "responses": {
                        "202": {"description": "Accepted: any links are on their way",
                                "content": {"application/json": {"schema": _object({"message": TEXT}, ["message"])}}},
                        **_problems(*WITH_BODY),
                    },
                }
            },
            "/registrations/confirm": {
                "post": {
                    "summary": "Confirm the email with the token of the emailed link",
                    "requestBody": _json_body(_object({"token": GIVEN}, ["token"])),
                    "responses": {
                        "200": _json("ConfirmedRegistration", "The registration and its private status token"),
                        **_problems(*WITH_BODY, 404, 409, 410),
                    },
                }
            },
            "/registration": {
                "get": {
                    "summary": "My registration",
                    "security": bearer,
                    "responses": {"200": _json("Registration", "The registration"), **_problems(401, 404)},
                },
                "patch": {
                    "summary": "Change phone, sites, half-days; a new email is confirmed by a link sent to it",
                    "security": bearer,
                    "requestBody": _json_body(
                        _object(
                            {
                                "phone": {"type": ["string", "null"], "maxLength": 40,
                                          "description": "Empty or null removes the mobile"},
                                "sites": {"type": "array", "items": TEXT, "minItems": 1},
                                "half_days": {"type": "array", "items": {"type": "string", "enum": list(HALF_DAYS)},
                                              "minItems": 1},
                                "email": {**GIVEN, "format": "email", "maxLength": EMAIL_MAX_LENGTH},
                                "altcha": {**PROOF_OF_WORK, "description": "With an email: as for registering"},
                            }
                        )
                    ),
                    "responses": {"200": _json("Registration", "Updated"), **_problems(*WITH_BODY, 401, 404, 409)},
                },
                "delete": {
                    "summary": "Withdraw from the waiting list",
                    "security": bearer,
                    "responses": {"200": _json("Registration", "Withdrawn"), **_problems(401, 404, 409)},
                },
            },
            "/registration/offer": {
                "post": {
                    "summary": "Confirm or decline the offered appointment before its deadline, or cancel the booking",
                    "security": bearer,
                    "requestBody": _json_body(
                        _object({"answer": {"type": "string", "enum": ["confirm", "decline", "cancel"]}}, ["answer"])
                    ),
                    "responses": {"200": _json("Registration", "The registration, with its offer"),
                                  **_problems(*WITH_BODY, 401, 404, 409)},
                },
            },
            "/registration/proof": {
                "get": {
                    "summary": "A signed proof of registration",
                    "security": bearer,
                    "responses": {"200": _json("SignedProof", "The proof"), **_problems(401, 404)},
                }
            },
            "/proofs/verify": {
                "post": {
                    "summary": "Check a signed proof of registration: any JSON object gets a verdict (valid: false "
                               "with the reason for anything but a proof signed with our key)",
                    "requestBody": _json_body(
                        _object({name: {} for name in ("format", "statement", "key_id", "public_key", "signature")})
                        | {"description": "A SignedProof, or what claims to be one: any value of any field is judged"}
                    ),
                    "responses": {"200": _json("Verification", "The verdict"), **_problems(*WITH_BODY)},
                }
            },
            **staff_paths(),
            "/draws/{draw_id}/record": {
                "get": {
                    "summary": "The public record of a draw (fairdraw/v1): verify it with python -m queue_service.verify",
                    "parameters": [{"name": "draw_id", "in": "path", "required": True, "schema": TEXT}],
                    "responses": {"200": {"description": "The record"}, **_problems(404)},
                }
            },
            "/proofs/public-key": {
                "get": {"summary": "The key proofs are signed with", "responses": {"200": _json("PublicKey", "Key"), **_problems()}}
            },
        },
        "components": {
            "securitySchemes": {
                "apiToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A staff API token (qst_…), created on /staff/tokens or with POST "
                                   "/staff/tokens: it acts for one prefecture (or, a national admin's, for all) with "
                                   "the scopes it was given, never more than its account may do. Each route names "
                                   "the scope it needs.",
                },
                "statusToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The private status token (the t= of the emailed status link)",
                }
            },
            "responses": {
                "Problem": {
                    "description": "An RFC 9457 problem",
                    "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
                }
            },
            "schemas": {
                "Problem": _object(
                    {
                        "type": TEXT,
                        "title": TEXT,
                        "status": {"type": "integer"},
                        "detail": TEXT,
                        "code": TEXT,
                        "errors": {"type": "array", "items": _object({"field": TEXT, "message": TEXT})},
                    },
                    ["type", "title", "status"],
                ),
                "Prefecture": _object({"code": TEXT, "name": TEXT, "timezone": TEXT}),
                "PrefectureList": _object(
                    {"items": {"type": "array", "items": {"$ref": "#/components/schemas/Prefecture"}}}
                ),
                "PrefectureWithSites": _object(
                    {"code": TEXT, "name": TEXT, "timezone": TEXT, "sites": {"type": "array", "items": {"type": "object"}}}
                ),
                "PublicStatistics": _object(
                    {
                        "prefecture": {"$ref": "#/components/schemas/Prefecture"},
                        "generated_at": MOMENT,
                        "pools": {
                            "type": "array",
                            "items": _object(
                                {
                                    "procedure": TEXT,
                                    "waiting": {"type": "integer"},
                                    "slots_offered_total": {"type": "integer"},
                                    "slots_offered_per_week": {
                                        "type": "array",
                                        "items": _object({"week_of": DATE, "slots_offered": {"type": "integer"}}),
                                    },
                                    "draws_committed": {"type": "integer"},
                                    "median_wait_days": {"type": ["integer", "null"]},
                                    "renewals_served_before_expiry": {"type": ["number", "null"]},
                                    "draws": {
                                        "type": "array",
                                        "items": _object(
                                            {
                                                "draw_id": TEXT,
                                                "scheduled_at": MOMENT,
                                                "state": TEXT,
                                                "commitment": NULLABLE_TEXT,
                                                "entrants": {"type": "integer"},
                                                "slots": {"type": "integer"},
                                                "offered": {"type": "integer"},
                                                "record": {**TEXT, "description": "The draw's public record (JSON)"},
                                                "page": {**TEXT, "description": "The draw's public page"},
                                            }
                                        ),
                                    },
                                }
                            ),
                        },
                    }
                ),
                "Challenge": _object(
                    {
                        "parameters": _object(
                            {
                                "algorithm": {"type": "string", "enum": ["PBKDF2/SHA-256"]},
                                "cost": {"type": "integer", "minimum": 1, "description": "PBKDF2 iterations"},
                                "keyLength": {"type": "integer"},
                                "keyPrefix": {**TEXT, "description": "Hex: what the derived key starts with"},
                                "keySignature": TEXT,
                                "nonce": TEXT,
                                "salt": TEXT,
                                "expiresAt": {"type": "integer", "description": "Unix time"},
                            },
                            ["algorithm", "cost", "keyLength", "keyPrefix", "nonce", "salt", "expiresAt"],
                        ),
                        "signature": TEXT,
                    },
                    ["parameters", "signature"],
                ),
                "RegistrationInput": registration_input,
                "Created": _object({"ref": TEXT, "status": TEXT, "confirm_by": MOMENT, "message": TEXT}),
                "Registration": registration,
                "ConfirmedRegistration": {
                    "allOf": [{"$ref": "#/components/schemas/Registration"}, _object({"status_token": TEXT})]
                },
                "SignedProof": _object(
                    {"format": TEXT, "statement": {"type": "object"}, "key_id": TEXT, "public_key": TEXT,
                     "signature": TEXT}
                ),
                "Verification": _object({"valid": {"type": "boolean"}, "reason": TEXT, "statement": {}}),
                "PublicKey": _object({"algorithm": TEXT, "encoding": TEXT, "public_key": TEXT, "key_id": TEXT}),
            },
        },
    }
