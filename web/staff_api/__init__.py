"""The staff JSON API (/api/v1/staff): what a prefecture does on its staff pages, for its
own systems.

Every route is declared with `route(rule, method, scope, ...)`, which

- authenticates the request's API token (`Authorization: Bearer qst_…`) and
  checks the route's scope for the prefecture in the address (or the token's
  own, for routes without one), with the same table as the pages
  (queue_service.staff.accounts): 401, then 403;
- runs a request that changes something once per `Idempotency-Key`
  (web/idempotency.py);
- describes the route in the OpenAPI document (web/openapi.py reads
  OPERATIONS), with the scope it needs, so that the two cannot drift apart.

The views call the same domain functions as the pages in web/staff.py;
errors are RFC 9457 problems (web/errors.py).
"""

from __future__ import annotations

import functools
import re

from flask import Blueprint, jsonify, request

from queue_service.staff import accounts
from queue_service.staff.accounts import Principal, Scope
from web import idempotency, services
from web.extensions import csrf

blueprint = Blueprint("staff_api", __name__, url_prefix="/api/v1/staff")
csrf.exempt(blueprint)  # tokens, never cookies: no CSRF token to send

# OpenAPI operations of the staff API, by path (as the document writes it) and method.
OPERATIONS: dict[str, dict[str, dict]] = {}

CHANGES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# The statuses any staff route can answer with a problem besides its own (web/openapi.py adds
# 400, 429 and 503 to every route).
STAFF_PROBLEMS = (401, 403, 404)


@blueprint.after_request
def challenge_bearer(response):
    """A 401 says which credentials to send (RFC 9110 §11.6.1)."""
    if response.status_code == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="api"'
    return response


def authorised(scope: Scope, prefecture: str | None) -> Principal:
    """The principal of the request's token, allowed `scope` on `prefecture`; 404 for an
    unknown prefecture once allowed."""
    scheme, _, text = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        raise accounts.NotSignedIn()
    principal = accounts.token_principal(services().store, text.strip())
    accounts.require_scope(principal, scope, principal.prefecture if prefecture is None else prefecture)
    if prefecture is not None:
        services().store.prefecture(prefecture)  # 404 for an unknown code
    return principal


def route(rule: str, method: str, scope: Scope, *, summary: str, description: str = "",
          parameters: tuple[dict, ...] = (), body: dict | None = None, responses: dict[str, dict],
          problems: tuple[int, ...] = (), withheld: tuple[str, ...] = ()):
    """Declare a staff API route (module docstring). The view takes the principal, then the
    rule's variables. `body` is a request body as OpenAPI writes it (see `json_body_of`);
    `responses` the operation's own answers (web/openapi.py adds the problems: these
    `problems`, STAFF_PROBLEMS, and those of any request with a body). `withheld` names the
    members of the answer never kept for an idempotent replay (a secret shown once): a
    replay has them null."""
    def declare(view):
        @functools.wraps(view)
        def handle(**variables):
            principal = authorised(scope, variables.get("code"))
            if method not in CHANGES:
                return view(principal, **variables)
            return idempotency.answer_once(principal.account_id, lambda: view(principal, **variables), withheld)

        blueprint.add_url_rule(rule, endpoint=view.__name__, view_func=handle, methods=[method])
        path = "/staff" + re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule)
        names = re.findall(r"\{([a-z_]+)\}", path)
        operation = {
            "summary": summary,
            "description": (description + "\n\n" if description else "") + f"Needs a token with the scope `{scope.value}`.",
            "operationId": f"staff_{view.__name__}",
            "tags": ["staff"],
            "security": [{"apiToken": [scope.value]}],
            "parameters": [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                           for name in names] + list(parameters),
            "responses": responses,
            "x-problems": sorted({*problems, *STAFF_PROBLEMS}),
        }
        if method in CHANGES:
            operation["parameters"].append(IDEMPOTENCY_PARAMETER)
            operation["x-problems"] = sorted({*operation["x-problems"], 409, 422})
        if body is not None:
            operation["requestBody"] = body
        OPERATIONS.setdefault(path, {})[method.lower()] = operation
        return view

    return declare


IDEMPOTENCY_PARAMETER = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[\\x20-\\x7e]+$"},
    "description": "Any text of yours naming this request (a UUID, say): sent again with the same request, "
                   "it returns the first answer and changes nothing; with another request, 422. Kept 24 hours.",
    "example": "3f6c1d2e-6a4b-4d0e-9a51-2b7f0c9e8d41",
}


def json_body_of(schema: dict, example: dict | None = None) -> dict:
    """An OpenAPI request body of JSON."""
    content = {"schema": schema}
    if example is not None:
        content["example"] = example
    return {"required": True, "content": {"application/json": content}}


def answer(description: str, schema: dict | None = None, example: object = None) -> dict:
    """An OpenAPI response of JSON."""
    content = {"schema": schema or {"type": "object"}}
    if example is not None:
        content["example"] = example
    return {"description": description, "content": {"application/json": content}}


def created(body: dict, location: str):
    """201 Created, with the new thing's address."""
    response = jsonify(body)
    response.status_code = 201
    response.headers["Location"] = location
    return response


# The routes, one module a domain; importing them declares them.
from web.staff_api import (  # noqa: E402,F401
    counter,
    draws,
    messages,
    offers,
    registrations,
    schedules,
    sites,
    slots,
    tokens,
)
