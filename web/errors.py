"""Errors as people and programs expect them.

Pages get an error page in the visitor's language; the JSON API gets an RFC
9457 problem document (application/problem+json). A domain error carries its
own status and message; Redis being unreachable is a 503 that says nothing
was recorded; anything unexpected is logged and answered with a plain 500.
"""

from __future__ import annotations

import math
import time

from flask import Flask, current_app, jsonify, make_response, render_template, request
from flask_babel import gettext, ngettext
from werkzeug.exceptions import BadRequest, HTTPException, InternalServerError

import redis
from flask_limiter import RateLimitExceeded
from flask_wtf.csrf import CSRFError

from queue_service.errors import InvalidText, QueueServiceError, StoreUnavailable, ValidationFailed
from web.budgets import BudgetSpent

PROBLEM_MEDIA_TYPE = "application/problem+json"
API_PREFIX = "/api/"


def wants_problem_json() -> bool:
    return request.path.startswith(API_PREFIX)


def problem(status: int, title: str, detail: str | None = None, **members):
    """An RFC 9457 problem response."""
    body = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    body.update(members)
    response = jsonify(body)
    response.status_code = status
    response.mimetype = PROBLEM_MEDIA_TYPE
    return response


def _respond(status: int, title: str, detail: str | None, code: str | None = None, **members):
    if wants_problem_json():
        return problem(status, title, detail, **({"code": code} if code else {}), **members)
    return make_response(render_template("error.html", status=status, title=title, detail=detail), status)


def translated(errors: dict[str, str]) -> dict[str, str]:
    """Field errors of a ValidationFailed, in the request's language."""
    return {field: gettext(message) for field, message in errors.items()}


def handle_http_error(error: HTTPException):
    status = error.code or 500
    if isinstance(getattr(error, "original_exception", None), (redis.ConnectionError, redis.TimeoutError)):
        # Redis went away after the view answered (the rate limiter counting an accepted
        # registration, as the response leaves): Flask hands that to the 500 handler. It is an
        # outage, and the applicant, told 503, registers again (the same person replaces their
        # registration still unconfirmed).
        return handle_redis_error(error.original_exception)
    if status == 429:
        from web.metrics import note_rate_limited

        note_rate_limited()
    title, detail = _texts(status)
    retry_after = None
    if isinstance(error, (RateLimitExceeded, BudgetSpent)):  # a limit's description ("20 per 1 hour") is for no one
        retry_after = error.retry_after if isinstance(error, BudgetSpent) else seconds_until_reset()
        if retry_after is not None:
            detail = gettext("Too many requests in a short time.") + " " + try_again_in(retry_after)
    elif error.description and error.description != type(error).description:
        detail = error.description  # a handler's own explanation (already in the request's language)
    response = _respond(status, title or error.name, detail)
    # Keep headers such as Allow (405).
    for name, value in error.get_headers():
        if name.lower() != "content-type":
            response.headers[name] = value
    if retry_after is not None:  # Flask-Limiter's own headers are off (extensions.py)
        response.headers["Retry-After"] = str(retry_after)
    return response


def seconds_until_reset() -> int | None:
    """Whole seconds until the limit this request broke lets requests through again."""
    breached = current_app.extensions["queue_service_limiter"].current_limit
    if breached is None:
        return None
    return max(1, math.ceil(breached.window.reset_time - time.time()))  # reset_at adds a second


def try_again_in(seconds: int) -> str:
    """The wait as people say it ("Try again in 12 minutes."), in the request's language, never
    shorter than `seconds`: minutes and hours are rounded up, so it agrees with Retry-After."""
    if seconds < 60:
        return ngettext("Try again in %(num)d second.", "Try again in %(num)d seconds.", seconds)
    if seconds <= 90 * 60:
        return ngettext("Try again in %(num)d minute.", "Try again in %(num)d minutes.", math.ceil(seconds / 60))
    return ngettext("Try again in %(num)d hour.", "Try again in %(num)d hours.", math.ceil(seconds / 3600))


def message_of(error: QueueServiceError) -> str:
    """The error's own message (not its detail) in the request's language."""
    return gettext(error.message, **error.message_values)


def handle_domain_error(error: QueueServiceError):
    code = _kebab(type(error).__name__)
    if isinstance(error, (ValidationFailed, InvalidText)) and wants_problem_json():
        fields = [{"field": field, "message": gettext(message)} for field, message in error.errors.items()]
        detail = gettext(error.detail) if error.detail else None
        response = problem(error.http_status, message_of(error), detail, code=code, errors=fields)
    else:
        response = _respond(error.http_status, message_of(error), gettext(error.detail) if error.detail else None, code,
                            **error.problem_members)
    if error.retry_after is not None:
        response.headers["Retry-After"] = str(error.retry_after)
    return response


def handle_csrf_error(error: CSRFError):
    detail = gettext("This form has expired or was sent from another page. Go back, reload the page and try again.")
    return _respond(400, gettext("Bad request"), detail)


def handle_redis_error(error: redis.RedisError):
    current_app.logger.error("Redis unavailable: %s", error)
    return handle_domain_error(StoreUnavailable())


def handle_unexpected(error: Exception):
    if isinstance(error, HTTPException):
        return handle_http_error(error)
    current_app.logger.exception("unexpected error on %s %s", request.method, request.path)
    return handle_http_error(InternalServerError())


def _texts(status: int) -> tuple[str | None, str | None]:
    """The title and explanation of an HTTP status, in the request's language."""
    texts = {
        400: (gettext("Bad request"), gettext("The request is not valid.")),
        404: (
            gettext("Page not found"),
            gettext("This page does not exist. Check the address, or start again from the home page."),
        ),
        401: (gettext("Sign-in needed"), gettext("Please sign in.")),
        403: (gettext("Access refused"), gettext("Your account does not allow this.")),
        405: (gettext("Method not allowed"), gettext("This method is not allowed here.")),
        413: (gettext("Request too large"), gettext("The request is too large.")),
        429: (
            gettext("Too many requests"),
            gettext("Too many requests from your connection. Please wait a little and try again."),
        ),
        500: (
            gettext("Internal error"),
            gettext("Something went wrong on our side. Nothing you did caused it; please try again later."),
        ),
        503: (
            gettext("Service unavailable"),
            gettext("The service is temporarily unavailable. Please try again in a few minutes."),
        ),
    }
    return texts.get(status, (None, None))


def _kebab(name: str) -> str:
    return "".join(f"-{c.lower()}" if c.isupper() else c for c in name).lstrip("-")


def init_app(app: Flask) -> None:
    app.register_error_handler(CSRFError, handle_csrf_error)
    # Deeply nested JSON exhausts the parser's recursion: a bad request, not a crash.
    app.register_error_handler(RecursionError, lambda error: handle_http_error(BadRequest()))
    app.register_error_handler(HTTPException, handle_http_error)
    app.register_error_handler(QueueServiceError, handle_domain_error)
    app.register_error_handler(redis.ConnectionError, handle_redis_error)
    app.register_error_handler(redis.TimeoutError, handle_redis_error)
    app.register_error_handler(Exception, handle_unexpected)
