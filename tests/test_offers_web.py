"""The offer and booking pages, and the counter check-in, through the web app."""

import datetime
import json
import re

import pytest
from helpers import DRAW_AT, ENGLISH, POOL, csrf_token, first_offer, sign_in

from queue_service import offers
from queue_service.registration.tokens import status_token
from queue_service.store.keys import PoolKeys

# The pages run on the real clock; the test draw is in 2027, so its offers are still open today.


def link(client, settings, key) -> str:
    """The status link of an applicant of the `drawn` pool (French speakers), who switched their pages
    to English on one of them, as the language menu does."""
    token = status_token(settings.secret_key, key)
    assert client.get(f"/lang/en?next=/status?t={token}").status_code == 302
    return token


def post(client, path: str, token_page: str, data: dict | None = None):
    return client.post(path, data={"csrf_token": csrf_token(client, token_page), **(data or {})}, headers=ENGLISH)


def test_the_offer_page_shows_the_slot_and_the_deadline_then_books_with_a_code_qr_and_calendar(drawn, client,
                                                                                               settings):
    store, _, _ = drawn
    key, offer = first_offer(store)
    t = link(client, settings, key)
    page = client.get(f"/offer?t={t}", headers=ENGLISH).get_data(as_text=True)
    assert "You were drawn" in page and 'id="deadline"' in page and "What to bring" in page
    assert "Bourg" in page or "Gex" in page

    answer = post(client, f"/offer/confirm?t={t}", f"/offer?t={t}")
    assert answer.status_code == 302 and "done=booked" in answer.location
    page = client.get(answer.location, headers=ENGLISH).get_data(as_text=True)
    code = offers.display_code(store.offer(key).booking_code)
    assert code in page and "booking-qr" in page and ".ics" in page

    qr = client.get(f"/booking/qr.svg?t={t}")
    assert qr.status_code == 200 and qr.mimetype == "image/svg+xml" and b"<svg" in qr.data
    calendar = client.get(f"/booking/appointment.ics?t={t}", headers=ENGLISH)
    assert calendar.mimetype == "text/calendar" and "attachment" in calendar.headers["Content-Disposition"]
    assert code in calendar.get_data(as_text=True) and "BEGIN:VEVENT" in calendar.get_data(as_text=True)

    again = post(client, f"/offer/confirm?t={t}", f"/offer/decline?t={t}")
    assert again.status_code == 409 and "already been answered" in again.get_data(as_text=True)


def test_declining_from_the_page_asks_first_then_keeps_the_applicant_waiting(drawn, client, settings):
    store, _, _ = drawn
    key, _ = first_offer(store)
    t = link(client, settings, key)
    page = client.get(f"/offer/decline?t={t}", headers=ENGLISH).get_data(as_text=True)
    assert "You stay in the waiting list" in page
    answer = post(client, f"/offer/decline?t={t}", f"/offer/decline?t={t}")
    assert answer.status_code == 302 and store.registration(key).status.value == "waiting"
    status = client.get(answer.location, headers=ENGLISH).get_data(as_text=True)
    assert "Offer declined" in status


def test_bad_links_and_pages_without_a_booking_answer_clearly(drawn, client, settings):
    store, _, people = drawn
    assert client.get("/offer?t=forged", headers=ENGLISH).status_code == 404
    assert client.get("/booking/qr.svg?t=forged").status_code == 404
    waiting = next(p for p in people if store.registration(p.key).status.value == "waiting")
    t = link(client, settings, waiting.key)
    page = client.get(f"/offer?t={t}", headers=ENGLISH)
    assert page.status_code == 200 and "no offer of an appointment yet" in page.get_data(as_text=True)
    assert client.get(f"/booking/appointment.ics?t={t}", headers=ENGLISH).status_code == 409
    refused = post(client, f"/offer/confirm?t={t}", f"/status?t={t}")
    assert refused.status_code == 409 and store.registration(waiting.key).status.value == "waiting"
    assert client.post(f"/offer/confirm?t={t}").status_code == 400  # no CSRF token


def test_an_agent_checks_a_code_sees_the_identity_and_marks_attended(drawn, app, staff, settings):  # noqa: F811
    store, _, _ = drawn
    key, _ = first_offer(store)
    booked = offers.confirm(store, key, settings.identity_key.encode(), datetime.datetime.now(datetime.timezone.utc))
    person = store.registration(key)
    slot = store.slot(POOL, store.offer(key).slot_id)
    agent = sign_in(app, "agent01")
    typed = offers.display_code(booked.booking_code).lower().replace("-", " ")
    page = agent.get(f"/staff/p/01/check-in?code={typed}&site={slot.site}", headers=ENGLISH).get_data(as_text=True)
    assert person.applicant.family_name in page and "01/01/1990" in page and "mark-attended" in page
    assert '<dd id="person-nationality">Morocco</dd>' in page  # a word, not "MA"
    assert "Booked: waiting for check-in" in page
    # The booking is for January 2027, not today: the page says so before anything is done...
    assert 'id="counter-warning"' in page and "not for today" in page
    refused = post(agent, "/staff/p/01/check-in", f"/staff/p/01/check-in?code={typed}",
                   {"code": typed, "site": slot.site, "action": "attended"})
    assert refused.status_code == 409 and "not for today" in refused.get_data(as_text=True)
    assert store.registration(key).status.value == "confirmed"  # ...and a click alone changes nothing
    answer = post(agent, "/staff/p/01/check-in", f"/staff/p/01/check-in?code={typed}",
                  {"code": typed, "site": slot.site, "action": "attended", "override": "yes"})
    assert answer.status_code == 200 and "marked as attended" in answer.get_data(as_text=True)
    assert store.registration(key).status.value == "attended"
    (event,) = [event for event in store.history(key) if event["kind"] == "attended"]
    assert event["detail"]["by"] == staff["agent01"].id and event["detail"]["override"] == "not_today"
    again = post(agent, "/staff/p/01/check-in", "/staff/p/01/check-in", {"code": typed, "action": "attended"})
    assert again.status_code == 409 and "not waiting for check-in" in again.get_data(as_text=True)

    wrong = agent.get("/staff/p/01/check-in?code=ZZZZZ-ZZZZZ", headers=ENGLISH)
    assert wrong.status_code == 404 and "No appointment has this code" in wrong.get_data(as_text=True)
    assert agent.get(f"/staff/p/69/check-in?code={typed}", headers=ENGLISH).status_code == 403


def test_a_booking_for_another_site_is_flagged_at_the_counter(drawn, app, staff, settings):  # noqa: F811
    store, _, _ = drawn
    key, _ = first_offer(store)
    booked = offers.confirm(store, key, settings.identity_key.encode(), datetime.datetime.now(datetime.timezone.utc))
    slot = store.slot(POOL, store.offer(key).slot_id)
    other = "gex" if slot.site == "bourg" else "bourg"
    agent = sign_in(app, "agent01")
    typed = offers.display_code(booked.booking_code)
    page = agent.get(f"/staff/p/01/check-in?code={typed}&site={other}", headers=ENGLISH).get_data(as_text=True)
    assert "not for this site" in page and "not for today" in page
    answer = post(agent, "/staff/p/01/check-in", f"/staff/p/01/check-in?code={typed}",
                  {"code": typed, "site": other, "action": "attended", "override": "yes"})
    assert answer.status_code == 200
    (event,) = [event for event in store.history(key) if event["kind"] == "attended"]
    assert event["detail"]["override"] == "not_today,other_site"


def test_counter_warnings_name_what_does_not_match():
    from queue_service.inventory.slots import Slot

    start = datetime.datetime(2027, 1, 6, 8, 0, tzinfo=datetime.timezone.utc)  # 09:00 in Paris
    slot = Slot(id="s", prefecture="01", site="bourg", procedure="renewal", starts_at=start, duration_minutes=30,
                counter=1)
    paris_day = datetime.date(2027, 1, 6)
    assert offers.counter_warnings(slot, "bourg", paris_day) == []
    assert offers.counter_warnings(slot, None, paris_day) == []  # no site chosen: the day alone is checked
    assert offers.counter_warnings(slot, "gex", paris_day) == [offers.CounterWarning.OTHER_SITE]
    assert offers.counter_warnings(slot, "bourg", paris_day.replace(day=5)) == [offers.CounterWarning.NOT_TODAY]


def test_a_scanner_checks_a_booking_in_through_the_api_with_the_counter_rules(drawn, app, staff, settings):  # noqa: F811
    from queue_service.staff import accounts

    store, _, _ = drawn
    key, _ = first_offer(store)
    booked = offers.confirm(store, key, settings.identity_key.encode(), datetime.datetime.now(datetime.timezone.utc))
    slot = store.slot(POOL, store.offer(key).slot_id)
    code = offers.display_code(booked.booking_code)
    client = app.test_client()
    now = datetime.datetime.now(datetime.timezone.utc)
    agent_token, _ = accounts.new_api_token(store, staff["agent01"], "scanner", now)
    bearer = {"Authorization": f"Bearer {agent_token}"}
    base = "/api/v1/staff/prefectures/01/bookings"

    looked_up = client.get(f"{base}/{code.lower()}?site={slot.site}", headers=bearer)
    assert looked_up.status_code == 200
    booking = looked_up.get_json()
    assert booking["person"]["family_name"] == store.registration(key).applicant.family_name
    assert booking["status"] == "confirmed" and booking["warnings"] == ["not_today"]
    refused = client.post(f"{base}/{code}/check-in", json={"site": slot.site}, headers=bearer)
    assert refused.status_code == 409 and refused.mimetype == "application/problem+json"
    assert refused.get_json()["warnings"] == ["not_today"] and store.registration(key).status.value == "confirmed"
    done = client.post(f"{base}/{code}/check-in", json={"site": slot.site, "override": True}, headers=bearer)
    assert done.status_code == 200 and done.get_json()["status"] == "attended"
    (event,) = [event for event in store.history(key) if event["kind"] == "attended"]
    assert event["detail"]["by"] == staff["agent01"].id and event["detail"]["override"] == "not_today"

    assert client.get(f"{base}/ZZZZZ-ZZZZZ", headers=bearer).status_code == 404
    assert client.get(f"{base}/{code}").status_code == 401
    other, _ = accounts.new_api_token(store, staff["admin69"], "other", now)
    assert client.get(f"{base}/{code}", headers={"Authorization": f"Bearer {other}"}).status_code == 403


def test_staff_cancel_a_booked_slot_and_its_holder_is_back_in_the_pool(drawn, app, staff, settings,  # noqa: F811
                                                                     deliver_messages, mailbox):
    store, _, _ = drawn
    key, offer = first_offer(store)
    offers.confirm(store, key, settings.identity_key.encode(), datetime.datetime.now(datetime.timezone.utc))
    admin = sign_in(app, "admin01")
    month = f"from={DRAW_AT:%Y-%m-%d}&to={DRAW_AT + datetime.timedelta(days=28):%Y-%m-%d}"  # the slots are 3 days after
    page = admin.get(f"/staff/p/01/slots?{month}", headers=ENGLISH).get_data(as_text=True)
    assert offer.slot_id in page
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    answer = admin.post(f"/staff/p/01/slots/first_request/{offer.slot_id}/cancel", data={"csrf_token": token})
    assert answer.status_code == 302
    assert store.registration(key).status.value == "waiting"
    deliver_messages()
    assert any(store.registration(key).applicant.email in r for r in mailbox.recipients)


@pytest.mark.parametrize("path", ["/dev/outbox", "/dev/outbox/nothing.eml", "/dev/outbox/..%2Fsecrets.toml"])
def test_the_development_outbox_exists_only_with_the_file_backend(make_app, reference_data, path):
    assert make_app().test_client().get(path).status_code == 404  # tests send by SMTP: no such page
    assert make_app(mail_backend="file").test_client().get("/dev/outbox").status_code == 200
    if path != "/dev/outbox":
        assert make_app(mail_backend="file").test_client().get(path).status_code == 404


def test_the_api_shows_the_offer_and_takes_an_answer(drawn, client, settings):
    store, _, _ = drawn
    key, _ = first_offer(store)
    bearer = {"Authorization": f"Bearer {link(client, settings, key)}"}
    shown = client.get("/api/v1/registration", headers=bearer).get_json()
    assert shown["status"] == "offered" and shown["offer"]["status"] == "pending"
    stored = json.loads(store.redis.hget(PoolKeys(POOL).offers, key.registration_id))  # the text the script wrote
    assert shown["offer"]["deadline"] == stored["deadline"] and shown["offer"]["booking_code"] is None

    bad = client.post("/api/v1/registration/offer", json={"answer": "maybe"}, headers=bearer)
    assert bad.status_code == 422 and bad.mimetype == "application/problem+json"
    assert store.registration(key).status.value == "offered"

    booked = client.post("/api/v1/registration/offer", json={"answer": "confirm"}, headers=bearer).get_json()
    assert booked["status"] == "confirmed" and booked["offer"]["booking_code"] == offers.display_code(
        store.offer(key).booking_code)
    again = client.post("/api/v1/registration/offer", json={"answer": "decline"}, headers=bearer)
    assert again.status_code == 409 and again.get_json()["detail"]
    assert client.post("/api/v1/registration/offer", json={"answer": "confirm"}).status_code == 401  # no token

