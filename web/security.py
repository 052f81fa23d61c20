"""Security headers on every response, and which answers a cache may keep."""

from __future__ import annotations

from flask import Flask, request
from flask.sessions import SecureCookieSessionInterface

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "img-src 'self' data:",
        "style-src 'self'",
        "script-src 'self'",
        "font-src 'self'",
        "connect-src 'self'",
        # The proof-of-work widget computes in workers loaded from our static files (never blob:).
        "worker-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # Status and offer links carry tokens: never leak them to another site.
    "Referrer-Policy": "no-referrer",
    "Permissions-Policy": "geolocation=(), microphone=(), camera=(), payment=()",
    "Cross-Origin-Opener-Policy": "same-origin",
}
HSTS = "max-age=63072000; includeSubDomains"

# The only answers a browser or a proxy may keep: GETs of these endpoints hold
# nothing private (public pages, reference data, statistics, draw records,
# static files). Every other answer is sent with `Cache-Control: no-store`:
# those with a token or personal data (status, offer, proof, calendar file,
# confirmation links, the API's registration, staff pages and API), forms
# that carry a CSRF token, errors, and any route added later until it is
# listed here.
CACHEABLE_ENDPOINTS = frozenset(
    {
        "static",
        "applicant.home",
        "applicant.choose_prefecture",
        "applicant.prefecture",
        "applicant.statistics",
        "applicant.draw_page",
        "registration.privacy",
        "registration.legal_notice",
        "registration.accessibility",
        "applicant.statistics_index",
        "api.index",
        "api.openapi",
        "api.prefectures",
        "api.prefecture",
        "api.procedures",
        "api.prefecture_statistics",
        "api.draw_record",
        "api.proof_public_key",
    }
)
NO_STORE = "no-store"


def add_security_headers(response):
    # A view may have set one of them (kept); most have none: one pass over the headers, and
    # the missing ones added together (setdefault looked each one up, through an exception).
    present = {name.lower() for name in response.headers.keys()}
    response.headers.extend([(name, value) for name, value in HEADERS.items() if name.lower() not in present])
    if request.is_secure:
        response.headers.setdefault("Strict-Transport-Security", HSTS)
    if request.method not in ("GET", "HEAD") or request.endpoint not in CACHEABLE_ENDPOINTS:
        response.headers["Cache-Control"] = NO_STORE
    return response


# The JSON APIs (web/api.py, web/staff_api): they authenticate with tokens, never with cookies.
API_PREFIX = "/api/"


class PageSessions(SecureCookieSessionInterface):
    """The signed-cookie session, for the pages only: a request to the JSON APIs gets none (no
    cookie read, checked or set; writing to it raises), which also spares every API request
    the session's serializer."""

    def open_session(self, app, request):
        if request.path.startswith(API_PREFIX):
            return self.make_null_session(app)
        return super().open_session(app, request)


def init_app(app: Flask) -> None:
    app.session_interface = PageSessions()
    app.after_request(add_security_headers)
