"""The applicant's languages: the picker, right to left, bidi isolation, staff pages kept in
French or English, and an email and an SMS composed in Arabic (issue 20)."""

import re
from email.header import decode_header, make_header

import pytest
from helpers import ENGLISH, api_person, plain_text

from queue_service import reference
from queue_service.notifications import messages
from queue_service.reference import LANGUAGE_NAMES, LOCALES, OFFERED_LOCALES, language_tag, text_direction
from web import i18n

ARABIC = {"Accept-Language": "ar-MA,ar;q=0.9,fr;q=0.5"}
LRI, FSI, PDI = "\u2066", "\u2068", "\u2069"


def html_element(page: str) -> str:
    return re.search(r"<html[^>]*>", page).group(0)


def withhold(monkeypatch, code: str) -> None:
    """`code` stays in LOCALES but is not offered, as a language whose catalogue is not complete
    yet (every language is offered today). The code reads OFFERED_LOCALES at call time."""
    offered = tuple(language for language in OFFERED_LOCALES if language != code)
    monkeypatch.setattr(reference, "OFFERED_LOCALES", offered)
    monkeypatch.setattr(i18n, "OFFERED_LOCALES", offered)


def test_the_picker_names_each_offered_language_in_itself_and_works_without_javascript(client):
    page = client.get("/", headers={"Accept-Language": "fr"}).get_data(as_text=True)
    picker = re.search(r'<nav class="qs-languages".*?</nav>', page, re.S).group(0)
    assert "<script" not in picker and "<form" not in picker  # plain links
    for code in OFFERED_LOCALES:
        tag, name = language_tag(code), LANGUAGE_NAMES[code]
        if code == "fr":
            assert f'<span aria-current="true" lang="fr" dir="ltr">{name}</span>' in picker
        else:
            direction = text_direction(code)
            assert (f'<a href="/lang/{code}?next=/" lang="{tag}" hreflang="{tag}" dir="{direction}">{name}</a>'
                    in picker), code

    switched = client.get("/lang/ar?next=/")
    assert switched.status_code == 302 and switched.headers["Location"] == "/"
    page = client.get("/", headers={"Accept-Language": "fr"}).get_data(as_text=True)
    assert html_element(page) == '<html lang="ar" dir="rtl">'
    assert "css/rtl.css" in page and "مواعيد المحافظة" in page


def test_the_browser_language_chooses_among_the_offered_ones(client):
    assert html_element(client.get("/", headers=ARABIC).get_data(as_text=True)) == '<html lang="ar" dir="rtl">'
    page = client.get("/", headers={"Accept-Language": "es-ES,es;q=0.9"}).get_data(as_text=True)
    assert html_element(page) == '<html lang="es" dir="ltr">' and "css/rtl.css" not in page
    for chinese in ("zh-CN", "zh-Hans-CN,fr;q=0.5", "zh-SG", "zh-Hans"):  # a phone in Simplified Chinese
        page = client.get("/", headers={"Accept-Language": chinese}).get_data(as_text=True)
        assert html_element(page) == '<html lang="zh-Hans" dir="ltr">', chinese
    page = client.get("/", headers={"Accept-Language": "zh-TW"}).get_data(as_text=True)
    assert html_element(page) == '<html lang="fr" dir="ltr">'  # Traditional Chinese: not offered
    page = client.get("/", headers={"Accept-Language": "fa-AF,fa;q=0.9"}).get_data(as_text=True)
    assert html_element(page) == '<html lang="fa-AF" dir="rtl">' and "css/rtl.css" in page


def test_a_language_not_offered_is_neither_in_the_picker_nor_chosen_nor_kept_in_a_cookie(client, monkeypatch):
    withhold(monkeypatch, "es")
    page = client.get("/", headers={"Accept-Language": "es-ES,es;q=0.9"}).get_data(as_text=True)
    assert html_element(page) == '<html lang="fr" dir="ltr">'  # French, the default, until it is offered
    picker = re.search(r'<nav class="qs-languages".*?</nav>', page, re.S).group(0)
    assert LANGUAGE_NAMES["es"] not in picker and LANGUAGE_NAMES["pt"] in picker
    assert client.get("/lang/es?next=/").headers.get("Set-Cookie") is None


def test_staff_pages_stay_in_french_or_english_whatever_the_applicant_side_speaks(client):
    client.set_cookie("lang", "ar")
    for path in ("/staff/login", "/staff/no-such-page"):
        page = client.get(path, headers=ARABIC).get_data(as_text=True)
        assert html_element(page) == '<html lang="fr" dir="ltr">', path
        assert "العربية" not in page and not re.search(r"[\u0600-\u06ff]", page), path
    page = client.get("/staff/login", headers=ENGLISH).get_data(as_text=True)
    assert html_element(page) == '<html lang="en" dir="ltr">'
    assert 'hreflang="fr"' in page and 'hreflang="ar"' not in page  # the staff picker: French and English
    answer = client.get("/api/v1/staff/prefectures/01/pools", headers=ARABIC)
    assert answer.headers.get("Content-Language", "fr") in ("fr", "en")
    assert not re.search(r"[\u0600-\u06ff]", answer.get_data(as_text=True))


def test_an_arabic_registration_gets_its_email_right_to_left_with_values_isolated(client, mailbox, deliver_messages):
    created = client.post("/api/v1/registrations", json=api_person(language="ar", email="amina@example.org"))
    assert created.status_code == 201, created.get_json()
    ref = created.get_json()["ref"]
    deliver_messages()
    message = mailbox.messages[0]
    html = next(part for part in message.walk() if part.get_content_type() == "text/html").get_payload(
        decode=True).decode()
    text = plain_text(message)
    assert '<html lang="ar" dir="rtl">' in html and '<body dir="rtl"' in html
    assert f'<bdi dir="ltr">{ref}</bdi>' in html
    assert f"{LRI}{ref}{PDI}" in text
    assert str(make_header(decode_header(message["Subject"]))).startswith("أكّد تسجيلك")
    assert "تجديد بطاقة الإقامة (renouvellement de titre de séjour)" in text  # the procedure, in Arabic


def test_the_status_page_in_arabic_isolates_the_reference_and_the_email(client, mailbox, deliver_messages):
    created = client.post("/api/v1/registrations", json=api_person(language="ar", email="amina@example.org"))
    deliver_messages()
    confirm = re.search(r"/confirm\?t=([\w.\-]+)", plain_text(mailbox.messages[0])).group(1)
    status_token = client.post("/api/v1/registrations/confirm", json={"token": confirm}).get_json()["status_token"]
    page = client.get(f"/status?t={status_token}", headers={"Accept-Language": "fr"}).get_data(as_text=True)
    assert html_element(page) == '<html lang="ar" dir="rtl">'  # the registration's language
    ref = created.get_json()["ref"]
    assert f'<dd class="qs-ref"><bdi dir="ltr">{ref}</bdi></dd>' in page
    assert '<bdi dir="ltr">amina@example.org</bdi>' in page
    assert "في قائمة الانتظار" in page


def test_a_registration_in_a_language_not_offered_yet_is_kept_and_spoken_to_in_french(client, store, mailbox,
                                                                                       deliver_messages, monkeypatch):
    withhold(monkeypatch, "uk")
    created = client.post("/api/v1/registrations", json=api_person(language="uk", email="olena@example.org"))
    assert created.status_code == 201
    key = store.registration_key_by_ref("01:renewal", created.get_json()["ref"])
    assert store.registration(key).applicant.language == "uk"
    deliver_messages()
    assert "Confirmez" in mailbox.messages[0]["Subject"]
    refused = client.post("/api/v1/registrations", json=api_person(language="xx", email="x@example.org"))
    assert refused.status_code == 422


def test_the_openapi_document_lists_every_applicant_language(client):
    document = client.get("/api/v1/openapi.json").get_json()
    assert list(LOCALES) in _enums(document)


def _enums(node):
    if isinstance(node, dict):
        if "enum" in node:
            yield node["enum"]
        for value in node.values():
            yield from _enums(value)
    elif isinstance(node, list):
        for value in node:
            yield from _enums(value)


@pytest.mark.parametrize("kind", ["booked", "offer"])
def test_an_sms_composed_in_arabic_reads_right_to_left_with_its_values_left_to_right(kind):
    context = {"of_prefecture": "Ain", "when": "x", "deadline": "x", "short_when": "الجمعة، 10 سبتمبر، 12:30",
               "short_deadline": "الأربعاء، 8 سبتمبر، 12:30", "code": "7K3Q9XA2BC",
               "short_link": "https://example.org/o/7K3Q9XA2BC7K"}
    text = messages.render_sms(kind, context, "ar")
    if kind == "booked":
        assert text.startswith("محافظة")
        assert f"{FSI}{context['short_when']}{PDI}" in text
        assert f"{LRI}7K3Q9XA2BC{PDI}" in text
    else:
        assert text.startswith("فزت")
        assert f"{FSI}{context['short_deadline']}{PDI}" in text
        assert text.endswith("https://example.org/o/7K3Q9XA2BC7K")
