"""API tokens: a program's token creates narrower ones (a scanner's, a script's), lists and
revokes those of its account, as the page /staff/tokens does (accounts.new_api_token).

These routes have no prefecture in the address: `route` checks `tokens:write` against the
token's own prefecture (None for a national admin), which is what they act on: the
account's tokens. The prefecture a new token acts for is checked by new_api_token
(token_prefecture): the creator's own, any only for a national admin not narrowed to one.
Listing needs `tokens:write` too, not `read`: `read` is for a prefecture's data, and a
read-only token that leaked should not show which tokens exist and what they may do.
"""

from __future__ import annotations

from flask import jsonify, url_for

from queue_service.errors import N_, UnknownPrefecture, UnknownToken, ValidationFailed
from queue_service.staff import accounts
from queue_service.staff.accounts import ApiToken, Scope
from web import services
from web.api import json_body
from web.registration import now
from web.staff_api import answer, created, json_body_of, route

SCOPE_NAMES = [scope.value for scope in Scope]
TOKEN_SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "label": {"type": "string"},
        "scopes": {"type": "array", "items": {"type": "string", "enum": SCOPE_NAMES}},
        "prefecture": {"type": ["string", "null"], "description": "null: a national admin's, for every prefecture"},
        "created_at": {"type": "string", "format": "date-time"},
    },
}
TOKEN_EXAMPLE = {"id": "5c1f0e9a2b7d4e13", "label": "counter scanner, Bourg", "scopes": ["counter:check-in"],
                 "prefecture": "01", "created_at": "2027-01-04T08:00:00+00:00"}
NEW_TOKEN_BODY = {
    "type": "object",
    "required": ["label"],
    "properties": {
        "label": {"type": "string", "minLength": 1, "maxLength": 100, "description": "What it is for"},
        "scopes": {"type": "array", "items": {"type": "string", "enum": SCOPE_NAMES}, "minItems": 1,
                   "description": "Absent: every scope of the creating token (never more)"},
        "prefecture": {"type": ["string", "null"],
                       "description": "A national admin's token may name one (or null for all); others get their own"},
    },
}


def shown(token: ApiToken) -> dict:
    """What the API shows of a token: never its text (stored only as a digest)."""
    return {"id": token.id, "label": token.label, "scopes": sorted(scope.value for scope in token.scopes),
            "prefecture": token.prefecture, "created_at": token.created_at.isoformat()}


def asked_prefecture(body: dict) -> str | None:
    prefecture = body.get("prefecture")
    if prefecture is None or prefecture == "":
        return None
    try:
        if isinstance(prefecture, str):
            return services().store.prefecture(prefecture).code
    except UnknownPrefecture:
        pass
    raise ValidationFailed({"prefecture": N_("Choose a prefecture from the list, or none.")})


@route("/tokens", "POST", Scope.TOKENS_WRITE,
       summary="Create a token, never wider than the one creating it",
       description="The new token belongs to the same account; its `scopes` must be among the creating token's "
                   "(422 otherwise) and it acts for the creating token's prefecture (a national admin's may name "
                   "one). `token` is its text, shown this once: sent again with the same Idempotency-Key, the "
                   "answer has `token` null (the text is not kept) and no second token is created.",
       body=json_body_of(NEW_TOKEN_BODY, example={"label": "counter scanner, Bourg", "scopes": ["counter:check-in"]}),
       responses={"201": answer("Created", {"allOf": [TOKEN_SCHEMA, {"type": "object", "properties": {
           "token": {"type": ["string", "null"]}}}]}, example=TOKEN_EXAMPLE | {"token": "qst_4bG…"})},
       withheld=("token",))
def create_token(principal):
    body = json_body()
    store = services().store
    owner = store.staff_account(principal.account_id)
    text, token = accounts.new_api_token(store, owner, body.get("label"), now(), prefecture=asked_prefecture(body),
                                         scopes=body.get("scopes"), creator=principal)
    return created(shown(token) | {"token": text}, url_for("staff_api.list_tokens"))


@route("/tokens", "GET", Scope.TOKENS_WRITE,
       summary="The tokens of the account (never their text)",
       description="Every token of the token's account, this one included (`current` says which).",
       responses={"200": answer("The tokens", {"type": "array", "items": TOKEN_SCHEMA},
                                example=[TOKEN_EXAMPLE | {"current": True}])})
def list_tokens(principal):
    listed = [token for _, token in services().store.api_tokens(principal.account_id)]
    return jsonify([shown(token) | {"current": token.id == principal.token_id}
                    for token in sorted(listed, key=lambda token: token.created_at)])


@route("/tokens/<token_id>", "DELETE", Scope.TOKENS_WRITE,
       summary="Revoke a token of the account (this one too, if named)",
       description="It stops working at once. An id that is not one of the account's tokens answers 404.",
       responses={"204": {"description": "Revoked"}})
def revoke_token(principal, token_id: str):
    if not services().store.revoke_api_token(principal.account_id, token_id):
        raise UnknownToken()
    return "", 204
