"""Languages: French by default, English on request, switchable on every page.

The choice is a `lang` cookie set by /lang/<code> (a plain link: no
JavaScript needed); without it, the browser's Accept-Language decides, and
French is the fallback for every other language.

An applicant's private pages (those opened with their status link) are in the
language of their registration, whatever the browser says: the one chosen
when registering, the one of their messages. Switching language on such a page
changes the registration's language, so pages and messages follow.
"""

from __future__ import annotations

import datetime
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import flask_babel
from babel import dates as babel_dates
from babel.numbers import format_decimal, format_percent
from flask import Flask, g, redirect, request
from flask_babel import format_datetime, get_locale

from queue_service import registration as registrations
from queue_service.errors import QueueServiceError
from queue_service.reference import LOCALES
from queue_service.registration.tokens import read_status_token
from web import services
from web.extensions import babel

LANG_COOKIE = "lang"
ONE_YEAR_SECONDS = 365 * 24 * 3600
LANGUAGE_NAMES = {"fr": "Français", "en": "English"}


def select_locale() -> str:
    if g.get("applicant_language") in LOCALES:
        return g.applicant_language
    chosen = request.cookies.get(LANG_COOKIE)
    if chosen in LOCALES:
        return chosen
    return request.accept_languages.best_match(LOCALES) or services().settings.default_locale


def safe_next(target: str | None) -> str:
    """A local path to go back to; anything else (another site) becomes the home page."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in target):
        return "/"  # browsers drop tabs and newlines: "/\t/evil" would become "//evil"
    return target


def speak_applicants_language(registration) -> None:
    """The rest of this request speaks the language of `registration` (one of its private pages)."""
    g.applicant_language = registration.applicant.language
    flask_babel.refresh()


def switch_language(code: str):
    target = safe_next(request.args.get("next"))
    response = redirect(target)
    if code in LOCALES:
        response.set_cookie(LANG_COOKIE, code, max_age=ONE_YEAR_SECONDS, samesite="Lax", httponly=True)
        _remember_on_registration(target, code)
    return response


def _remember_on_registration(target: str, code: str) -> None:
    """A switch from a private page (its status link in `target`) changes the registration's language."""
    token = parse_qs(urlsplit(target).query).get("t", [""])[0]
    if not token:
        return
    try:
        key, link_version = read_status_token(services().settings.secret_key, token)
        found = registrations.load_from_link(services().store, key, link_version)
    except QueueServiceError:
        return  # not a (current) status link: the cookie alone changes
    registrations.change_language(services().store, found, code)


def _vary_on_language(response):
    response.vary.add("Cookie")
    response.vary.add("Accept-Language")
    return response


def init_app(app: Flask) -> None:
    babel.init_app(app, locale_selector=select_locale)
    app.add_url_rule("/lang/<code>", "switch_language", switch_language)
    app.after_request(_vary_on_language)

    @app.template_filter("datetimeformat_iso")
    def format_iso_moment(text: str, pattern: str = "EEEE d MMMM y HH:mm") -> str:
        """An ISO 8601 time from a record, as a reader says it, in the service's time zone."""
        return format_datetime(datetime.datetime.fromisoformat(text), pattern)

    @app.template_filter("decimal")
    def decimal(value: float, digits: int = 2) -> str:
        """A number as the reader writes it ("0,5" in French, "0.5" in English), to `digits` decimals at most."""
        return format_decimal(round(value, digits), locale=get_locale(), decimal_quantization=False)

    @app.template_filter("prefecture_time")
    def format_prefecture_moment(moment: datetime.datetime, timezone: str, pattern: str = "d MMMM y, HH:mm") -> str:
        """A time on the prefecture's wall clock (`timezone`), in the reader's language, with no
        offset printed ("28 novembre 2026, 18:20"): the prefecture's time is the one that counts."""
        return babel_dates.format_datetime(moment, pattern, tzinfo=ZoneInfo(timezone), locale=str(get_locale()))

    @app.template_filter("local_time")
    def format_local_moment(moment: datetime.datetime, pattern: str = "EEEE d MMMM y, HH:mm") -> str:
        """An aware time on the wall clock of its own time zone (an appointment in Réunion is
        shown in Réunion's time, wherever the reader is), in the reader's language."""
        return babel_dates.format_datetime(moment, pattern, tzinfo=moment.tzinfo, locale=str(get_locale()))
    @app.template_filter("percent")
    def percent(value: float | None) -> str:
        """A share as people read it ("12,5 %" in French); a dash when there is nothing to divide."""
        if value is None:
            return "–"

        def shown(share: float) -> str:
            # The locale's own pattern ("66,7 %" in French, "66.7%" in English), to one decimal.
            return format_percent(round(share, 3), locale=get_locale(), decimal_quantization=False)

        if 0 < value < 0.001:
            return "< " + shown(0.001)
        if 0.999 < value < 1:
            return "> " + shown(0.999)
        return shown(value)

    @app.context_processor
    def language_context():
        current = str(get_locale())
        return {
            "current_language": current,
            "other_languages": [(code, LANGUAGE_NAMES[code]) for code in LOCALES if code != current],
            "language_names": LANGUAGE_NAMES,
        }
