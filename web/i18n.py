"""Languages: French by default, English on request, switchable on every page.

The choice is a `lang` cookie set by /lang/<code> (a plain link: no
JavaScript needed); without it, the browser's Accept-Language decides, and
French is the fallback for every other language.

An applicant's private pages (those opened with their status link) are in the
language of their registration, whatever the browser says: the one chosen
when registering, the one of their messages. Switching language on such a page
changes the registration's language, so pages and messages follow.

Applicants are offered the languages whose catalogue is complete
(reference.OFFERED_LOCALES); staff pages and the staff API speak French or
English only (STAFF_LOCALES), whatever the cookie or the browser asks. A page
in a language written right to left carries `dir="rtl"`; values that read left
to right whatever the language (references, booking codes, emails, phone
numbers) go through the `ltr` filter, which isolates them (<bdi dir="ltr">).
"""

from __future__ import annotations

import datetime
from urllib.parse import parse_qs, urlsplit

import flask_babel
from babel.numbers import format_decimal, format_percent
from flask import Flask, g, redirect, request
from flask_babel import get_locale, gettext
from markupsafe import Markup, escape
from werkzeug.datastructures import LanguageAccept

from queue_service import registration as registrations
from queue_service.errors import QueueServiceError
from queue_service.reference import (
    LANGUAGE_NAMES,
    OFFERED_LOCALES,
    STAFF_LOCALES,
    Procedure,
    language_tag,
    text_direction,
)
from queue_service.registration.tokens import read_status_token
from queue_service.translations.formats import format_moment
from web import services
from web.extensions import babel

LANG_COOKIE = "lang"
ONE_YEAR_SECONDS = 365 * 24 * 3600
# The blueprints whose pages and answers are staff text (the `messages` domain: fr, en), and
# their URL prefixes (for an unknown address under them, which no blueprint answers).
STAFF_BLUEPRINTS = frozenset({"staff", "staff_api", "development"})
STAFF_PATHS = ("/staff/", "/api/v1/staff/", "/dev/")


def offered_languages() -> tuple[str, ...]:
    """The languages this request may be answered in: the staff's or the applicants'."""
    staff = request.blueprint in STAFF_BLUEPRINTS or (request.path + "/").startswith(STAFF_PATHS)
    return STAFF_LOCALES if staff else OFFERED_LOCALES


def select_locale() -> str:
    offered = offered_languages()
    if g.get("applicant_language") in offered:
        return g.applicant_language
    chosen = request.cookies.get(LANG_COOKIE)
    if chosen in offered:
        return chosen
    return browser_languages().best_match(offered) or services().settings.default_locale


def browser_languages() -> LanguageAccept:
    """The browser's Accept-Language, where a phone in Simplified Chinese says so by its region
    ("zh-CN", "zh-SG") or with a region after the script ("zh-Hans-CN"), none of which matches
    "zh_Hans" as it is: they are read as "zh-Hans". Traditional Chinese ("zh-TW", "zh-Hant") is
    left as it is."""
    def simplified(value: str) -> str:
        tag = value.lower().replace("_", "-")
        return "zh-Hans" if tag in ("zh-cn", "zh-sg") or tag.startswith("zh-hans") else value

    return LanguageAccept([(simplified(value), quality) for value, quality in request.accept_languages])


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
    if code in OFFERED_LOCALES:
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


def _described(code: str) -> tuple[str, str, str, str]:
    return code, language_tag(code), LANGUAGE_NAMES[code], text_direction(code)


def _vary_on_language(response):
    if "Vary" in response.headers:
        response.vary.update(("Cookie", "Accept-Language"))
    else:  # most responses: set at once, not parsed and written again for each name
        response.headers["Vary"] = "Cookie, Accept-Language"
    return response


def init_app(app: Flask) -> None:
    babel.init_app(app, locale_selector=select_locale)
    app.add_url_rule("/lang/<code>", "switch_language", switch_language)
    app.after_request(_vary_on_language)

    @app.template_filter("datetimeformat_iso")
    def format_iso_moment(text: str, pattern: str = "EEEE d MMMM y HH:mm") -> str:
        """An ISO 8601 time from a record, as a reader says it, in the service's time zone."""
        return format_moment(datetime.datetime.fromisoformat(text), pattern, str(get_locale()),
                             app.config["BABEL_DEFAULT_TIMEZONE"])

    @app.template_filter("decimal")
    def decimal(value: float, digits: int = 2) -> str:
        """A number as the reader writes it ("0,5" in French, "0.5" in English), to `digits` decimals at most."""
        return format_decimal(round(value, digits), locale=get_locale(), decimal_quantization=False)

    @app.template_filter("prefecture_time")
    def format_prefecture_moment(moment: datetime.datetime, timezone: str, pattern: str = "d MMMM y, HH:mm") -> str:
        """A time on the prefecture's wall clock (`timezone`), in the reader's language, with no
        offset printed ("28 novembre 2026, 18:20"): the prefecture's time is the one that counts."""
        return format_moment(moment, pattern, str(get_locale()), timezone)

    @app.template_filter("local_time")
    def format_local_moment(moment: datetime.datetime, pattern: str = "EEEE d MMMM y, HH:mm") -> str:
        """An aware time on the wall clock of its own time zone (an appointment in Réunion is
        shown in Réunion's time, wherever the reader is), in the reader's language."""
        return format_moment(moment, pattern, str(get_locale()))

    @app.template_filter("ltr")
    def left_to_right(value: object) -> Markup:
        """A value that reads left to right in every language (a reference, a booking code, an
        email address, a phone number, a link), isolated so that right-to-left text around it
        neither reorders it nor is reordered by it."""
        return Markup('<bdi dir="ltr">%s</bdi>') % escape(value)

    @app.template_filter("isolate")
    def isolate(value: object) -> Markup:
        """A value in the reader's language but built apart from the sentence around it (a date,
        a number with its unit), isolated with its own direction."""
        return Markup("<bdi>%s</bdi>") % escape(value)

    @app.template_filter("procedure_label")
    def procedure_label(procedure: Procedure) -> str:
        """A procedure's name in the reader's language (the reference's French, else its English
        label through the applicant catalogue)."""
        return procedure.label_fr if str(get_locale()) == "fr" else gettext(procedure.label_en)

    @app.template_filter("procedure_description")
    def procedure_description(procedure: Procedure) -> str:
        return procedure.description_fr if str(get_locale()) == "fr" else gettext(procedure.description_en)

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
        offered = offered_languages()
        return {
            "current_language": current,
            "language_tag": language_tag(current),
            "text_direction": text_direction(current),
            # (code, BCP 47 tag, name in itself, direction) of each language the picker offers.
            "languages": [_described(code) for code in offered],
            # The languages a registration's messages may be in (an agent's form offers them too).
            "applicant_languages": [_described(code) for code in OFFERED_LOCALES],
        }
