"""Every SMS fits two segments in every applicant language, with the longest realistic values.

A text in the GSM 03.38 alphabet takes 160 characters in one segment, 153 a segment beyond;
one character outside it (Arabic, Cyrillic, Chinese, an accent GSM lacks, a Unicode isolate)
sends the whole text in UCS-2: 70 UTF-16 units in one segment, 67 a segment beyond.
"""

import datetime
import math

import pytest

from queue_service.notifications import links, messages, short_links
from queue_service.offers import CODE_ALPHABET, CODE_LENGTH
from queue_service.reference import LOCALES, PREFECTURES
from queue_service.translations.formats import format_moment, format_short_moment

MAX_SEGMENTS = 2
GSM_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENSION = set("^{}\\[~]|€")  # two septets each
SMS_KINDS = sorted(path.stem for path in messages.SMS_TEMPLATES.glob("*.txt"))
# A production address of the service, longer than most.
BASE_URL = "https://rendez-vous-etrangers.prefecture.interieur.gouv.fr"


def segments(text: str) -> int:
    if all(char in GSM_BASIC or char in GSM_EXTENSION for char in text):
        septets = len(text) + sum(char in GSM_EXTENSION for char in text)
        return 1 if septets <= 160 else math.ceil(septets / 153)
    units = len(text.encode("utf-16-le")) // 2
    return 1 if units <= 70 else math.ceil(units / 67)


def moments(language: str, shorten) -> list[str]:
    """The dates and times the messages print, over a year of days (weekday and month names vary
    in length and in alphabet: "août" has a letter GSM lacks)."""
    start = datetime.datetime(2027, 1, 1, 10, 30, tzinfo=datetime.timezone.utc)
    return sorted({shorten(start + datetime.timedelta(days=day), language) for day in range(366)}, key=len)


def contexts(language: str) -> list[dict]:
    """Message contexts with the longest prefecture name, booking code and link, one per date."""
    prefecture = max(PREFECTURES, key=lambda one: len(messages.of_prefecture(one, language)))
    long_moment = moments(language, lambda moment, language: format_moment(
        moment, "EEEE d MMMM y, HH:mm", language, "Europe/Paris"))[-1]
    return [{
        "of_prefecture": messages.of_prefecture(prefecture, language),
        "when": long_moment, "deadline": long_moment,
        "short_when": short, "short_deadline": short,
        "code": CODE_ALPHABET[-1] * CODE_LENGTH,
        # An SMS carries the short link (every code has the same length).
        "short_link": links.short_link(BASE_URL, CODE_ALPHABET[-1] * short_links.CODE_LENGTH),
    } for short in moments(language, lambda moment, language: format_short_moment(moment, language, "Europe/Paris"))]


def test_the_counting_follows_gsm_and_ucs2():
    assert segments("a" * 160) == 1 and segments("a" * 161) == 2 and segments("a" * 306) == 2
    assert segments("€" * 80) == 1 and segments("€" * 81) == 2
    assert segments("ب" * 70) == 1 and segments("ب" * 71) == 2 and segments("ب" * 134) == 2 and segments("ب" * 135) == 3
    assert segments("\u2068" + "a" * 100 + "\u2069") == 2  # an isolate forces UCS-2


# Every language a registration may be in, offered yet or not: its SMS must fit the day it is.
@pytest.mark.parametrize("language", LOCALES)
@pytest.mark.parametrize("kind", SMS_KINDS)
def test_every_sms_fits_two_segments(kind, language):
    for context in contexts(language):
        text = messages.render_sms(kind, context, language)
        assert segments(text) <= MAX_SEGMENTS, f"{len(text)} characters, {segments(text)} segments: {text}"
        if kind in messages.SMS_LINK_UNTIL:  # it fits with its link, not by leaving it out
            assert context["short_link"] in text, text


@pytest.mark.parametrize("language", ["fr", "en"])
def test_french_and_english_sms_stay_in_the_gsm_alphabet(language):
    """Typography and accents GSM lacks are folded: each would send the text in UCS-2, halving its room."""
    for kind in SMS_KINDS:
        for context in contexts(language):
            text = messages.render_sms(kind, context, language)
            assert all(char in GSM_BASIC or char in GSM_EXTENSION for char in text), text


def test_an_arabic_sms_keeps_its_alphabet_and_isolates_its_values():
    context = contexts("ar")[0]
    text = messages.render_sms("booked", context, "ar")
    assert "حُجز موعدك" in text
    assert "\u2066" + context["code"] + "\u2069" in text  # the code, left to right
    assert "\u2068" + context["short_when"] + "\u2069" in text  # the date, in its own direction
