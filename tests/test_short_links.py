"""The short link an offer's or a reminder's SMS carries (`/o/<code>`): made once per message,
unguessable, leading to the offer page until the offer's deadline (or the booked appointment)
has passed, and answering a page in the reader's language for a code unknown or expired."""

from __future__ import annotations

import datetime
import re
import urllib.parse

import pytest

from helpers import DRAW_ID, POOL, first_offer, key_of, offered
from queue_service.errors import ExpiredShortLink, UnknownShortLink
from queue_service.notifications import links, messages, short_links
from queue_service.offers import CODE_ALPHABET
from queue_service.registration.tokens import status_token
from queue_service.store.keys import short_link_key

NOW = datetime.datetime.now(datetime.timezone.utc)
SHORT_LINK = re.compile(r"https?://\S+/o/([0-9A-Z]{12})$")


def offer_message(registration_id: str, slot_id: str, kind: str = "offer") -> dict:
    return {"id": f"{kind}:{DRAW_ID}:{registration_id}", "kind": kind, "registration_id": registration_id,
            "draw_id": DRAW_ID, "slot": slot_id}


def sms_of(settings, store, registration_id: str, message: dict) -> str:
    """The SMS the worker composes for `message` (the file backend: SMS are on)."""
    found = store.registration(key_of(registration_id))
    return messages.outgoing(settings, store, found, message, NOW)[messages.SMS]


def code_in(text: str) -> str:
    found = SHORT_LINK.search(text)
    assert found, text
    return found.group(1)


# The code, without Redis ----------------------------------------------------------------


def test_a_code_is_twelve_characters_of_crockfords_alphabet_and_names_one_message():
    code = short_links.code_for("s" * 32, POOL, "offer:d1:r1")
    assert len(code) == short_links.CODE_LENGTH == 12 and set(code) <= set(CODE_ALPHABET)
    assert short_links.code_for("s" * 32, POOL, "offer:d1:r1") == code  # the same message, the same code
    assert short_links.code_for("s" * 32, POOL, "offer:d1:r2") != code
    assert short_links.code_for("s" * 32, "01:renewal", "offer:d1:r1") != code
    assert short_links.code_for("t" * 32, POOL, "offer:d1:r1") != code  # made with the secret only
    codes = {short_links.code_for("s" * 32, POOL, f"offer:d1:r{number}") for number in range(5000)}
    assert len(codes) == 5000


@pytest.mark.parametrize("text", ["", "ABC", "7K3Q9XA2BC7K9", "ЖЖЖЖЖЖЖЖЖЖЖЖ", "../../offer?t=x"])
def test_a_malformed_code_is_unknown_without_reading_the_store(text):
    with pytest.raises(UnknownShortLink):
        short_links.resolve(None, text, NOW)


# Composed by the worker, kept in Redis ------------------------------------------------------


def test_an_offer_sms_carries_a_short_link_made_once_per_message(drawn, settings):
    store, _, _ = drawn
    (first, first_offer_), (second, second_offer) = sorted(offered(store).items())[:2]
    text = sms_of(settings, store, first, offer_message(first, first_offer_.slot_id))
    assert "/offer?t=" not in text and text.endswith(links.short_link(settings.base_url, code_in(text)))
    code = code_in(text)
    # The same message composed again (a retried job): the same link, still one record.
    again = sms_of(settings, store, first, offer_message(first, first_offer_.slot_id))
    assert code_in(again) == code
    # Another message, another code: the other winner's, and the same winner's reminder.
    other = code_in(sms_of(settings, store, second, offer_message(second, second_offer.slot_id)))
    reminder = code_in(sms_of(settings, store, first, offer_message(first, first_offer_.slot_id, "reminder")))
    assert len({code, other, reminder}) == 3
    record = store.short_link(code)
    assert record["path"] == links.offer_path(status_token(settings.secret_key, key_of(first)))
    # Kept until the offer's deadline and a day, then known as expired for 30 days more.
    assert record["until"] == int((first_offer_.deadline + short_links.LINK_MARGIN).timestamp())
    kept = first_offer_.deadline + short_links.LINK_MARGIN + short_links.GONE_FOR - NOW
    assert abs(store.redis.ttl(short_link_key(code)) - kept.total_seconds()) < 5


def test_a_message_without_a_link_makes_no_short_link(drawn, settings, redis):
    store, _, _ = drawn
    registration_id, offer = sorted(offered(store).items())[0]
    before = set(redis.keys(short_link_key("*")))
    text = sms_of(settings, store, registration_id, offer_message(registration_id, offer.slot_id, "expired"))
    assert "/o/" not in text and set(redis.keys(short_link_key("*"))) == before


def test_a_reminders_link_lasts_until_the_appointment(drawn, settings):
    store, slots, _ = drawn
    registration_id, offer = sorted(offered(store).items())[0]
    code = code_in(sms_of(settings, store, registration_id, offer_message(registration_id, offer.slot_id, "reminder")))
    slot = store.slot(POOL, offer.slot_id)
    assert store.short_link(code)["until"] == int((slot.starts_at + short_links.LINK_MARGIN).timestamp())


# The page -------------------------------------------------------------------------------------


def test_the_short_link_leads_to_the_offer_page(drawn, settings, make_app):
    store, _, _ = drawn
    key, offer = first_offer(store)
    code = code_in(sms_of(settings, store, key.registration_id, offer_message(key.registration_id, offer.slot_id)))
    client = make_app().test_client()
    response = client.get(f"/o/{code}")
    assert response.status_code == 303
    target = urllib.parse.urlsplit(response.headers["Location"])
    assert target.path == "/offer" and urllib.parse.parse_qs(target.query) == {
        "t": [status_token(settings.secret_key, key)]}
    assert "no-store" in response.headers["Cache-Control"]
    page = client.get(f"/o/{code}", follow_redirects=True)
    assert page.status_code == 200 and page.request.path == "/offer"
    assert 'id="deadline"' in page.get_data(as_text=True)  # the pending offer, to answer
    # Typed by hand: lower case and look-alike letters read as the code.
    assert client.get(f"/o/{code.lower()}").status_code == 303


def test_an_unknown_code_answers_a_page_not_found_in_the_readers_language(app, settings):
    client = app.test_client()
    code = short_links.code_for(settings.secret_key, POOL, "offer:never-sent")
    arabic = client.get(f"/o/{code}", headers={"Accept-Language": "ar"})
    assert arabic.status_code == 404 and "Location" not in arabic.headers
    page = arabic.get_data(as_text=True)
    assert 'lang="ar"' in page and 'dir="rtl"' in page and "هذا الرابط غير صالح" in page
    french = client.get("/o/not-a-code", headers={"Accept-Language": "fr"})
    assert french.status_code == 404 and "Ce lien n’est pas valide" in french.get_data(as_text=True)


def test_an_expired_code_answers_gone_and_nothing_else(app, store, settings):
    passed = NOW - datetime.timedelta(days=2)  # its offer's deadline; the margin (a day) is over too
    link = short_links.create(store, settings.secret_key, settings.base_url, POOL, "offer:expired", "/offer?t=secret",
                              passed, NOW)
    code = link.rsplit("/", 1)[1]
    with pytest.raises(ExpiredShortLink):
        short_links.resolve(store, code, NOW)
    response = app.test_client().get(f"/o/{code}", headers={"Accept-Language": "en"})
    page = response.get_data(as_text=True)
    assert response.status_code == 410 and "Location" not in response.headers
    assert "This link from a text message has expired" in page and "secret" not in page
    # Still valid a moment before its time is up.
    assert short_links.resolve(store, code, passed + short_links.LINK_MARGIN) == "/offer?t=secret"


def test_short_links_are_rate_limited_like_the_other_private_links(reference_data, make_app, settings):
    client = make_app(rate_limit_links="3 per minute").test_client()
    codes = [short_links.code_for(settings.secret_key, POOL, f"offer:guess-{number}") for number in range(4)]
    answers = [client.get(f"/o/{code}", headers={"Accept-Language": "en"}).status_code for code in codes]
    assert answers == [404, 404, 404, 429]
