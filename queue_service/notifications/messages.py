"""The messages sent to applicants, rendered in their language.

Templates live next to this module, in templates/email (a subject, a .txt and
an .html per kind) and templates/sms (a .txt per kind); they are translated
with the applicant catalogue (queue_service.translations.APPLICANT_DOMAIN) and rendered without
Flask, so that the worker can send them. Their links come from
notifications.links; an SMS carries a short one (notifications.short_links),
made when it is composed. They never carry identity numbers or birth dates: only
the public reference, the pool and the links.
"""

from __future__ import annotations

import datetime
import functools
import unicodedata
from email.message import Message
from pathlib import Path

import jinja2
from babel.support import Translations
from markupsafe import Markup

from queue_service import offers, translations
from queue_service.notifications import links, mail, short_links
from queue_service.reference import (
    Prefecture,
    Procedure,
    french_of,
    language_tag,
    spoken_language,
    text_direction,
)
from queue_service.registration import (
    Registration,
    RegistrationMessage,
    RegistrationStatus,
    email_print,
    status_link_token,
)
from queue_service.registration.tokens import confirmation_token
from queue_service.settings import Settings
from queue_service.store import Store
from queue_service.translations.formats import format_moment, format_short_moment

TEMPLATES = Path(__file__).resolve().parent / "templates" / "email"
SMS_TEMPLATES = Path(__file__).resolve().parent / "templates" / "sms"
# Messages about a registration (by email only), and about an offer or a booking (by email
# and SMS): every one is written to the pool's outbox by the script that makes the change.
KINDS = tuple(kind.value for kind in RegistrationMessage)
OFFER_KINDS = ("offer", "booked", "reminder", "expired", "booking_cancelled", "slot_cancelled")
# The channels a message may go by, as deliveries are recorded.
EMAIL, SMS = "email", "sms"
# The SMS that carry a short link to the offer page (notifications/short_links.py), each with
# the moment of offer_context after which its link no longer matters.
SMS_LINK_UNTIL = {"offer": "deadline_at", "reminder": "starts_at"}


# Values that keep their own direction inside a message written right to left: codes and
# references (always left to right), dates, places and names (their own direction).
LEFT_TO_RIGHT = ("ref", "code")
ISOLATED = ("when", "deadline", "short_when", "short_deadline", "cancel_by", "site", "address", "prefecture",
            "of_prefecture")
# Unicode's first-strong, left-to-right and pop isolates, for plain text (emails, SMS).
FSI, LRI, PDI = "\u2068", "\u2066", "\u2069"


@functools.cache
def _catalog(language: str) -> Translations:
    return Translations.load(str(translations.CATALOG_DIRECTORY), [language], domain=translations.APPLICANT_DOMAIN)


@functools.cache
def _environment(language: str, folder: Path = TEMPLATES) -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(folder),
        autoescape=jinja2.select_autoescape(["html"]),
        extensions=["jinja2.ext.i18n"],
        undefined=jinja2.StrictUndefined,
    )
    environment.install_gettext_translations(_catalog(language), newstyle=True)
    return environment


def _written(context: dict, language: str, html: bool) -> dict:
    """`context` for a template in `language`: its direction, and, in a language written right
    to left, the values of LEFT_TO_RIGHT and ISOLATED isolated from the text around them
    (<bdi> in HTML, Unicode isolates in plain text and SMS; none in a left-to-right language,
    where an isolate would only cost an SMS its GSM-7 alphabet)."""
    direction = text_direction(language)
    written = dict(context, language_tag=language_tag(language), direction=direction,
                   start="right" if direction == "rtl" else "left", end="left" if direction == "rtl" else "right")
    if direction == "ltr":
        return written
    for name in LEFT_TO_RIGHT + ISOLATED:
        value = context.get(name)
        if not value:
            continue
        if html:
            opening = Markup('<bdi dir="ltr">') if name in LEFT_TO_RIGHT else Markup("<bdi>")
            written[name] = opening + value + Markup("</bdi>")
        else:
            written[name] = (LRI if name in LEFT_TO_RIGHT else FSI) + str(value) + PDI
    return written


def _render(language: str, kind: str, context: dict) -> tuple[str, str, str]:
    """The subject, the text and the HTML of an email of `kind` in `language`."""
    environment = _environment(language)
    text_context, html_context = _written(context, language, html=False), _written(context, language, html=True)
    subject = environment.get_template(f"{kind}.subject.txt").render(text_context).strip()
    text = environment.get_template(f"{kind}.txt").render(text_context)
    html = environment.get_template(f"{kind}.html").render(html_context)
    return subject, text, html


def procedure_label(procedure: Procedure, language: str) -> str:
    """A procedure's name in `language`: the reference's French, else its English label
    translated by the applicant catalogue."""
    return procedure.label_fr if language == "fr" else _catalog(language).gettext(procedure.label_en)


def of_prefecture(prefecture: Prefecture, language: str) -> str:
    """How a message names the prefecture after "the prefecture": "de l'Ain", "du Rhône" in
    French (with the département's article), "of Ain" in English, its name in other languages
    (whose sentences place it themselves)."""
    if language == "fr":
        return french_of(prefecture)
    if language == "en":
        return f"of {prefecture.name}"
    return prefecture.name


def outgoing(settings: Settings, store: Store, registration: Registration, message: dict,
             now: datetime.datetime) -> dict[str, Message | str]:
    """What the outbox `message` sends about `registration`, by channel: a Message for
    EMAIL, a text for SMS; only the channels the applicant can be reached by.

    A message about the registration goes by email (to the new address for an
    email change); one about an offer or a booking by email and, unless SMS
    are off, by SMS.
    """
    kind = message["kind"]
    if kind in KINDS:
        recipient = registration.pending_email if kind == RegistrationMessage.EMAIL_CHANGE else registration.applicant.email
        return {EMAIL: compose(settings, store, registration, kind, now, message["id"])} if recipient else {}
    context = offer_context(settings, store, registration, message["slot"], now)
    channels: dict[str, Message | str] = {}
    if registration.applicant.email:
        channels[EMAIL] = compose_offer_email(settings, context, registration, kind, message["id"])
    if registration.applicant.phone and settings.sms_backend != "none":
        channels[SMS] = compose_offer_sms(sms_context(settings, store, registration, message, context, now),
                                          registration, kind)
    return channels


def sms_context(settings: Settings, store: Store, registration: Registration, message: dict, context: dict,
                now: datetime.datetime) -> dict:
    """`context` for the SMS of `message`: with its short link ("short_link") if its kind carries
    one, made once per message and leading to the offer page until the link no longer matters."""
    moment = SMS_LINK_UNTIL.get(message["kind"])
    if moment is None:
        return context
    until = context[moment] or context["starts_at"]
    path = links.offer_path(status_link_token(settings.secret_key, registration))
    link = short_links.create(store, settings.secret_key, settings.base_url, registration.key.pool, message["id"],
                              path, until, now)
    return dict(context, short_link=link)


def compose(
    settings: Settings, store: Store, registration: Registration, kind: str, now: datetime.datetime,
    message_id: str | None = None,
) -> Message:
    """The message of `kind` (KINDS) for `registration`, to its email address (or its new one);
    `message_id` (the outbox message's) goes in a header, as for the offers' messages."""
    if kind not in KINDS:
        raise ValueError(f"unknown message kind {kind!r}")
    key = registration.key
    language = spoken_language(registration.applicant.language)
    prefecture, procedure, _ = store.pool_reference(key.prefecture, key.procedure)  # kept in memory
    recipient = registration.pending_email if kind == "email_change" else registration.applicant.email
    context = {
        "ref": registration.ref,
        "prefecture": prefecture.name,
        "of_prefecture": of_prefecture(prefecture, language),
        "procedure": procedure_label(procedure, language),
        "hours": settings.confirmation_link_hours,
        "status_link": links.status_link(settings.base_url, status_link_token(settings.secret_key, registration)),
        "recover_link": links.recover_link(settings.base_url),
    }
    link_print = email_print(settings.identity_key.encode(), key.pool, recipient) if recipient else ""
    if kind == "confirm":
        token = confirmation_token(settings.secret_key, key, link_print, registration.created_at)
        context["link"] = links.confirmation_link(settings.base_url, token)
    elif kind == "email_change":
        token = confirmation_token(settings.secret_key, key, link_print, now)
        context["link"] = links.email_change_link(settings.base_url, token)
    subject, text, html = _render(language, kind, context)
    composed = mail.new_message(settings, recipient, subject, text, html)
    if message_id is not None:
        composed["X-QS-Message"] = message_id
    return composed


def offer_context(settings: Settings, store: Store, registration: Registration, slot_id: str,
                  now: datetime.datetime) -> dict:
    """What the messages about an offer or a booking say: the slot, the deadline, the links; no identity data."""
    key = registration.key
    language = spoken_language(registration.applicant.language)
    prefecture, procedure, _ = store.pool_reference(key.prefecture, key.procedure)  # kept in memory
    slot = store.slot(key.pool, slot_id)
    site = store.site(key.prefecture, slot.site)
    shown = offers.display(store.offer(key), slot, offers.OfferTiming.from_settings(settings), prefecture.timezone, now)

    def local(moment: datetime.datetime) -> str:
        return format_moment(moment, "EEEE d MMMM y, HH:mm", language)  # on the prefecture's clock

    return {
        "ref": registration.ref,
        "prefecture": prefecture.name,
        "of_prefecture": of_prefecture(prefecture, language),
        "procedure": procedure_label(procedure, language),
        "when": local(shown.starts_at),
        "site": site.name if site else slot.site,
        "address": f"{site.address}, {site.postcode} {site.city}" if site else "",
        "deadline": local(shown.deadline) if shown.deadline else "",
        # The same moments, shorter, for an SMS (two segments at most: tests/test_sms_budget.py).
        "short_when": format_short_moment(shown.starts_at, language),
        "short_deadline": format_short_moment(shown.deadline, language) if shown.deadline else "",
        "cancel_by": local(shown.cancel_by),
        # The same moments as they are, for an SMS's short link (SMS_LINK_UNTIL).
        "starts_at": shown.starts_at,
        "deadline_at": shown.deadline,
        "code": shown.code or "",
        "offer_link": links.offer_link(settings.base_url, status_link_token(settings.secret_key, registration)),
        "back_in_pool": registration.status is RegistrationStatus.WAITING,
        "documents": offers.documents_to_bring(key.procedure),
    }


def compose_offer_email(settings: Settings, context: dict, registration: Registration, kind: str,
                        message_id: str) -> Message:
    """The email of an offer `kind` (OFFER_KINDS) in the applicant's language; `message_id` (the
    outbox message's) goes in a header, to trace a delivery and to find duplicates."""
    if kind not in OFFER_KINDS:
        raise ValueError(f"unknown message kind {kind!r}")
    subject, text, html = _render(spoken_language(registration.applicant.language), kind, context)
    message = mail.new_message(settings, registration.applicant.email, subject, text, html)
    message["X-QS-Message"] = message_id
    return message


def compose_offer_sms(context: dict, registration: Registration, kind: str) -> str:
    """The text message of an offer `kind`, one short paragraph in the applicant's language."""
    if kind not in OFFER_KINDS:
        raise ValueError(f"unknown message kind {kind!r}")
    return render_sms(kind, context, spoken_language(registration.applicant.language))


def render_sms(kind: str, context: dict, language: str) -> str:
    """The text of an SMS of `kind` in `language` (one of the offered ones), on one line, in the
    GSM alphabet when folding its few other characters gets it there."""
    return gsm_folded(" ".join(_environment(language, SMS_TEMPLATES).get_template(f"{kind}.txt")
                               .render(_written(context, language, html=False)).split()))


# The GSM 03.38 alphabet (basic set and extension): an SMS written only with these takes 160
# characters a segment; one character outside it sends the whole text in UCS-2, 70 a segment.
GSM_ALPHABET = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà^{}\\[~]|€"
)
_TYPOGRAPHY = str.maketrans({"’": "'", "‘": "'", "“": '"', "”": '"', "«": '"', "»": '"', "–": "-", "—": "-",
                             "…": "...", "\u00a0": " ", "\u202f": " "})


def gsm_folded(text: str) -> str:
    """`text` in the GSM alphabet if it is Latin text that only needs its typography and a few
    accents folded ("août" → "aout", "d’identité" → "d'identité"), which halves its cost; as it
    is otherwise (Arabic, Cyrillic, Chinese are sent in UCS-2)."""
    if all(char in GSM_ALPHABET for char in text):
        return text
    folded = "".join(
        char if char in GSM_ALPHABET else unicodedata.normalize("NFD", char)[0]
        for char in text.translate(_TYPOGRAPHY)
    )
    return folded if all(char in GSM_ALPHABET for char in folded) else text
