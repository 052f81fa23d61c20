"""The web app: pages for applicants, the JSON API, health checks, staff pages, metrics.

`create_app` builds everything from a Settings object; nothing is connected or
read at import, so tests, gunicorn workers and the CLI each get their own app.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import redis
from flask import Flask, current_app, request
from werkzeug.middleware.proxy_fix import ProxyFix

from queue_service import translations
from queue_service.connection import connect, connect_queues
from queue_service.draws import DrawState
from queue_service.inventory.slots import SlotStatus
from queue_service.offers import OfferStatus
from queue_service.registration import RegistrationStatus
from queue_service.settings import Settings, load_settings
from queue_service.store import Store


@dataclass(frozen=True)
class Services:
    """What views reach through `services()`: settings, the queues' Redis (RQ's and the rate
    limiter's: the data's unless QS_QUEUE_REDIS_URL sets it apart) and the store (the data)."""

    settings: Settings
    redis: redis.Redis
    store: Store


def services() -> Services:
    return current_app.extensions["queue_service"]


def create_app(config: Settings | None = None) -> Flask:
    settings = config or load_settings()
    app = Flask(__name__)
    from web import decoding

    decoding.init_app(app)  # only valid Unicode in JSON, forms and query strings
    app.json.sort_keys = False  # keep documents in the order they are written
    app.config.update(
        SECRET_KEY=settings.secret_key,
        MAX_CONTENT_LENGTH=settings.max_request_bytes,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.is_production,
        BABEL_DEFAULT_LOCALE=settings.default_locale,
        # Two domains in one folder, merged (Flask-Babel pairs each domain with the directory
        # at the same place): staff text, then applicant text, which wins for a message of both.
        BABEL_TRANSLATION_DIRECTORIES=";".join(str(translations.CATALOG_DIRECTORY) for _ in translations.WEB_DOMAINS),
        BABEL_DOMAIN=";".join(translations.WEB_DOMAINS),
        # Dates and times are shown in the time of metropolitan France.
        BABEL_DEFAULT_TIMEZONE="Europe/Paris",
    )
    data = connect(settings)
    connection = connect_queues(settings, data)  # RQ's and the rate limiter's (the data's unless set apart)
    app.extensions["queue_service"] = Services(settings, connection, Store(data))
    if settings.trusted_proxies:
        hops = settings.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)

    from web import api, applicant, development, errors, health, i18n, metrics, offers, registration, security, staff
    from web import staff_api
    from web.extensions import csrf, init_limiter

    # Templates compare states with the enums, never with their spelling.
    app.jinja_env.globals.update(DrawState=DrawState, OfferStatus=OfferStatus, RegistrationStatus=RegistrationStatus,
                                 SlotStatus=SlotStatus)
    # The proof-of-work widget, if `make` copied it from npm (forms work without it).
    app.jinja_env.globals["altcha_installed"] = (Path(app.static_folder) / "altcha" / "altcha.min.js").is_file()
    i18n.init_app(app)
    csrf.init_app(app)
    limiter = init_limiter(app, settings, connection)
    limiter.exempt(health.blueprint)
    errors.init_app(app)
    security.init_app(app)
    app.register_blueprint(health.blueprint)
    app.register_blueprint(applicant.blueprint)
    app.register_blueprint(api.blueprint)
    app.register_blueprint(staff_api.blueprint)
    app.register_blueprint(registration.blueprint)
    app.register_blueprint(staff.blueprint)
    app.register_blueprint(offers.blueprint)
    if not settings.is_production and settings.mail_backend == "file":
        app.register_blueprint(development.blueprint)  # the local mail and SMS outbox
    metrics.init_app(app)
    limit_sensitive_routes(app, limiter, settings, connection)
    return app


# The routes that create a registration or change its email, with the method that does:
# they share one budget per address and one per email address.
REGISTRATION_CHANGES = (
    ("registration.register", "POST"),
    ("api.create_registration", "POST"),
    ("registration.change_email", "POST"),
    ("api.my_registration", "PATCH"),  # with an "email" member; preferences alone are not counted
)
# The routes a private link opens, each with its own limit per address (rate_limit_links).
LINK_ROUTES = (
    "registration.confirm",
    "registration.status",
    "registration.confirm_email_change",
    "api.confirm_registration",
    "api.my_registration",
    "api.answer_offer",
    "offers.short_link",
    "offers.offer_page",
    "offers.confirm_offer",
    "offers.decline_offer",
    "offers.cancel_booking",
)


def limit_sensitive_routes(app: Flask, limiter, settings: Settings, connection: redis.Redis) -> None:
    """Tighter limits where abuse would hurt: registering, and opening private links.

    The routes that create a registration or change its email share the
    registration budgets (web/budgets.py), checked in one read and spent in one
    write rather than by Flask-Limiter. For that method Flask-Limiter is not
    asked at all (a request filter), unless the route has limits of its own (a
    private link's); its other methods keep the default limit (Flask answers
    OPTIONS itself). Flask-Limiter checks a route's own limits in the wrapper
    its decorator returns, so the wrapped view replaces the registered one.
    No route is exempted with `limiter.exempt`: Flask-Limiter then drops the
    limits decorated on it too, whatever the exemption's scope (the form's GET
    and the API's private link went unlimited so, until 2026-11-29).
    """
    from web.budgets import RegistrationBudgets
    from web.rate_keys import email_in_request

    def limit(endpoint: str, *decorators) -> None:
        view = app.view_functions[endpoint]
        for decorator in decorators:
            view = decorator(view)
        app.view_functions[endpoint] = view

    # The budgets' call also reads the reference version for pool_or_404 when the data live in the
    # same Redis (the default), saving the registration a round trip.
    data = app.extensions["queue_service"].store.redis
    budgets = RegistrationBudgets(settings, connection, reads_reference_version=data is connection)
    app.after_request(budgets.give_back_uncounted)
    for endpoint, method in REGISTRATION_CHANGES:
        limit(endpoint, lambda view, method=method: budgets.guard(view, method))
        others = {other for rule in app.url_map.iter_rules(endpoint) for other in rule.methods} - {method, "OPTIONS"}
        if endpoint not in LINK_ROUTES and others:
            limit(endpoint, limiter.limit(settings.rate_limit_default, methods=sorted(others)))
    for endpoint in ("registration.recover", "api.recover_links"):
        limit(
            endpoint,
            limiter.limit(settings.rate_limit_recovery, methods=["POST"]),
            limiter.limit(settings.rate_limit_recovery_email, methods=["POST"], key_func=email_in_request),
        )
    for endpoint in LINK_ROUTES:
        limit(endpoint, limiter.limit(settings.rate_limit_links))
    # Where the budgets are the only limits (the route and method in REGISTRATION_CHANGES, no link
    # limit), Flask-Limiter is not asked: it would count its default limit there.
    budgets_only = {(endpoint, method) for endpoint, method in REGISTRATION_CHANGES if endpoint not in LINK_ROUTES}
    limiter.request_filter(lambda: (request.endpoint, request.method) in budgets_only)
