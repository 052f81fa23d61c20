"""End to end in Chromium: a winner opens the email, confirms, gets the QR code and the calendar
file; an agent checks the code in; another winner declines and the next in order gets the offer."""

import datetime
from pathlib import Path

import pytest
from helpers import POOL, SCREENSHOTS, TIMING, collect_console_errors, email_link, plain_text, staff_sign_in

from queue_service import offers
from worker import jobs

pytestmark = pytest.mark.browser


def inbox_of(mailbox, address: str) -> list:
    return [message for recipients, message in zip(mailbox.recipients, mailbox.messages) if address in recipients]


def test_a_winner_books_an_agent_checks_in_and_a_declined_slot_goes_to_the_next_in_order(
        live_server, open_phone_page, browser, drawn, ain_staff, mailbox, run_jobs, redis):  # noqa: F811
    store, _, people = drawn
    jobs.dispatch_pool(redis, store, POOL)
    run_jobs()
    winners = [p for p in people if store.registration(p.key).status.value == "offered"]
    first, second = winners[:2]

    # The first winner opens the email on a French phone and confirms.
    page = open_phone_page("fr-FR")
    errors = collect_console_errors(page)
    (offer_mail,) = inbox_of(mailbox, first.applicant.email)
    page.goto(live_server + email_link(offer_mail, "/offer"))
    assert "Vous avez été tiré au sort" in page.locator("h1").inner_text()
    page.get_by_role("button", name="Confirmer ce rendez-vous").click()
    page.wait_for_url("**/offer?*done=booked*")
    code = page.locator("#booking-code").inner_text()
    assert code == offers.display_code(store.offer(first.key).booking_code)
    assert page.locator("#booking-qr").evaluate("image => image.complete && image.naturalWidth > 0")
    # The DSFR's icons load (they were blue squares: their stylesheet was not on the page).
    icon = page.locator("#calendar").evaluate(
        "link => { const style = getComputedStyle(link, '::before'); return style.maskImage || style.webkitMaskImage; }")
    assert "calendar-line.svg" in icon, icon
    with page.expect_download() as download:
        page.get_by_role("link", name="Ajouter à mon agenda (fichier .ics)").click()
    calendar = Path(download.value.path()).read_text()
    assert "BEGIN:VEVENT" in calendar and code in calendar
    page.screenshot(path=str(SCREENSHOTS / "booking-fr-phone.png"), full_page=True)
    assert errors == []

    # At the counter, an agent types the code and checks the identity.
    context = browser.new_context(locale="en-GB", viewport={"width": 1280, "height": 900})
    counter = context.new_page()
    counter.goto(live_server + "/lang/en?next=/staff/login")
    staff_sign_in(counter, live_server, "agent@ain.example.org")
    counter.goto(live_server + "/staff/p/01/check-in")
    counter.get_by_label("Booking code").fill(code.lower())
    counter.get_by_role("button", name="Look up").click()
    assert counter.locator("#person-family-name").inner_text() == first.applicant.family_name
    assert counter.locator("#person-birth-date").inner_text() == "01/01/1990"
    # The booking is for a day in 2027: the counter says so, and the agent must confirm it.
    assert "It is not for today" in counter.locator("#counter-warning").inner_text()
    counter.get_by_role("button", name="Identity checked: mark as attended").click()
    assert "does not match this counter" in counter.locator("#check-in-error").inner_text()
    assert store.registration(first.key).status.value == "confirmed"
    counter.locator("label[for=override]").click(position={"x": 8, "y": 8})
    counter.get_by_role("button", name="Identity checked: mark as attended").click()
    assert "marked as attended" in counter.locator("#check-in-notice").inner_text()
    assert store.registration(first.key).status.value == "attended"
    context.close()

    # The second winner declines; the next entrant of the draw's order who can take the slot is offered it.
    slot_id = store.offer(second.key).slot_id
    # Their page speaks the language of their registration (French), not the browser's; they switch to
    # English on it, and the registration remembers.
    page = open_phone_page("en-US")
    (offer_mail,) = inbox_of(mailbox, second.applicant.email)
    page.goto(live_server + email_link(offer_mail, "/offer"))
    assert "Vous avez été tiré au sort" in page.locator("h1").inner_text()
    page.get_by_role("link", name="English").click()
    page.wait_for_url("**/offer?t=*")
    assert store.registration(second.key).applicant.language == "en"
    page.get_by_role("link", name="I cannot come: decline").click()
    page.get_by_role("button", name="Yes, decline").click()
    page.wait_for_url("**/status?t=*")
    assert page.locator("#status").inner_text() == "In the waiting list"

    now = datetime.datetime.now(datetime.timezone.utc)
    assert offers.fill_standby(store, POOL, store.schedule(POOL), TIMING, now) == 1
    jobs.dispatch_pool(redis, store, POOL)
    run_jobs()
    next_one = store.registration(store.registration_key_by_ref(POOL, store.offers(POOL)[store.slot_holder(POOL, slot_id)]
                                                                .ref))
    assert next_one.key != second.key and next_one.status.value == "offered"
    (standby_mail,) = inbox_of(mailbox, next_one.applicant.email)
    assert "/offer?t=" in plain_text(standby_mail)
