"""End to end: the app served for real, opened in Chromium as a person would."""

import json
from pathlib import Path

import pytest
from helpers import (REGISTRATION_TEXTS, SCREENSHOTS, collect_console_errors, email_link, fill_registration,
                     staff_sign_in)

pytestmark = pytest.mark.browser

def test_home_page_in_french_then_english_on_a_phone(live_server, phone_page):
    page = phone_page
    errors = collect_console_errors(page)
    page.goto(live_server + "/")
    assert page.locator("html").get_attribute("lang") == "fr"
    assert page.locator("h1").inner_text() == "Un rendez-vous en préfecture, sans course contre la montre"

    page.get_by_role("link", name="English").click()
    page.wait_for_url(live_server + "/")
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.locator("h1").inner_text() == "An appointment at the prefecture, without racing for it"

    page.get_by_label("Your prefecture (département)").select_option("01")
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(live_server + "/p/01")
    assert "Prefecture: Ain (01)" in page.locator("h1").inner_text()
    assert page.get_by_text("45 avenue Alsace-Lorraine").is_visible()

    page.get_by_role("link", name="Français").click()
    page.wait_for_url(live_server + "/p/01")
    assert "Préfecture : Ain (01)" in page.locator("h1").inner_text()
    assert errors == []  # no script error, no resource blocked by the security policy


def test_readyz_reports_redis_ok_in_the_browser(live_server, phone_page):
    response = phone_page.goto(live_server + "/readyz")
    report = json.loads(phone_page.locator("body").inner_text())
    assert report["checks"]["redis"] == {"ok": True}
    # No worker or clock runs in this test: the service is not ready, and says so.
    assert response.status == 503 and report["ready"] is False


def test_a_phone_set_to_english_gets_english_and_can_switch(live_server, open_phone_page):
    page = open_phone_page("en-US")
    page.goto(live_server + "/p/01")
    assert page.locator("h2").first.inner_text() == "Procedures"
    page.get_by_role("link", name="Français").click()
    assert page.locator("h2").first.inner_text() == "Démarches"
    page.screenshot(path=str(SCREENSHOTS / "prefecture-fr-phone.png"), full_page=True)


@pytest.mark.parametrize("texts", REGISTRATION_TEXTS, ids=["french", "english"])
def test_register_confirm_prove_and_withdraw_on_a_phone(live_server, open_phone_page, mailbox, deliver_messages,
                                                         texts):
    page = open_phone_page(texts["locale"])
    errors = collect_console_errors(page)
    page.goto(live_server + "/p/01/renewal/register")
    fill_registration(page, texts)
    page.wait_for_url("**/registered?ref=*")
    reference = page.locator(".qs-ref").inner_text()
    assert reference.startswith("01R-")

    deliver_messages()
    (message,) = mailbox.messages
    assert reference in message["Subject"]
    page.goto(live_server + email_link(message, "/confirm"))
    page.get_by_role("button", name=texts["confirm"]).click()
    page.wait_for_url("**/status?t=*")
    assert page.locator("#status").inner_text() == texts["waiting"]
    page.screenshot(path=str(SCREENSHOTS / f"status-{texts['locale']}.png"), full_page=True)

    page.get_by_role("link", name=texts["proof"]).click()
    with page.expect_download() as download:
        page.get_by_role("link", name=texts["download"]).click()
    proof = json.loads(Path(download.value.path()).read_text())
    assert proof["statement"]["reference"] == reference and proof["signature"]

    page.go_back()
    page.get_by_role("link", name=texts["withdraw_link"]).click()
    page.get_by_role("button", name=texts["withdraw_button"]).click()
    assert page.locator("#status").inner_text() == texts["withdrawn"]
    assert errors == []


RECOVERY_TEXTS = {
    "fr-FR": {"find": "Retrouver mon inscription", "send": "M’envoyer mes liens", "sent": "nous venons d’envoyer"},
    "en-GB": {"find": "Find my registration", "send": "Send me my links", "sent": "we have just sent its link"},
}


@pytest.mark.parametrize("texts", REGISTRATION_TEXTS, ids=["french", "english"])
def test_a_typo_is_repaired_by_registering_again_and_a_lost_link_is_found(live_server, browser, open_phone_page,
                                                                          mailbox, deliver_messages, texts):
    page = open_phone_page(texts["locale"])
    errors = collect_console_errors(page)
    # A typo in the address: no email will ever come. Registering again with the right one is accepted.
    for email in ("olena@exmaple.org", "olena@example.org"):
        page.goto(live_server + "/p/01/renewal/register")
        fill_registration(page, texts, email=email)
        page.wait_for_url("**/registered?ref=*")
    deliver_messages()
    (message,) = mailbox.messages
    assert mailbox.recipients == [["olena@example.org"]]
    page.goto(live_server + email_link(message, "/confirm"))
    page.get_by_role("button", name=texts["confirm"]).click()
    page.wait_for_url("**/status?t=*")
    deliver_messages()

    # Later, on another phone, the link is lost: the home page leads to recovery.
    lost = browser.new_context(locale=texts["locale"], viewport={"width": 390, "height": 844}).new_page()
    recovery = RECOVERY_TEXTS[texts["locale"]]
    lost.goto(live_server + "/")
    lost.get_by_role("link", name=recovery["find"]).click()
    lost.get_by_label(texts["email"]).fill("olena@example.org")
    lost.get_by_role("button", name=recovery["send"]).click()
    assert recovery["sent"] in lost.locator("#recover-sent").inner_text()
    deliver_messages()
    lost.goto(live_server + email_link(mailbox.messages[-1], "/status"))
    assert lost.locator("#status").inner_text() == texts["waiting"]
    lost.context.close()
    assert errors == []


def test_admin_publishes_a_week_of_slots_and_sets_a_weekly_schedule(live_server, browser, ain_staff, store):
    import datetime

    context = browser.new_context(locale="en-GB", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors = collect_console_errors(page)
    staff_sign_in(page, live_server, "admin@ain.example.org")
    page.get_by_role("link", name="01 – Ain").click()
    page.get_by_role("link", name="Slots", exact=True).click()

    today = datetime.date.today()
    monday = today + datetime.timedelta(days=7 - today.weekday() + 7)
    form = page.locator("#template-form")
    form.get_by_label("Site").select_option("bourg")
    form.get_by_label("Procedure").select_option("renewal")
    form.get_by_label("First day").fill(monday.isoformat())
    form.get_by_label("Last day").fill((monday + datetime.timedelta(days=4)).isoformat())
    form.get_by_label("Opens at").fill("09:00")
    form.get_by_label("Closes at").fill("12:00")
    form.get_by_label("Appointment length (minutes)").fill("20")
    form.get_by_label("Counters").fill("3")
    form.get_by_role("button", name="Publish").click()
    assert page.locator("#published").inner_text() == "135 slots published."

    page.goto(live_server + "/staff/p/01/schedules/renewal")
    schedule = page.locator("#schedule-form")
    schedule.get_by_label("Repeating schedule (cron, local time)").fill("0 10 * * TUE")
    schedule.get_by_label("Offer slots from this many days after the draw").fill("0")
    schedule.get_by_role("button", name="Save the schedule").click()
    rows = page.locator("#upcoming tbody tr")
    assert rows.count() == 5
    assert all(row.endswith("10:00") for row in rows.locator("td:first-child").all_inner_texts())
    assert page.get_by_label("Offer slots from this many days after the draw").input_value() == "0"
    assert "135" in rows.locator("td:last-child").all_inner_texts()
    page.screenshot(path=str(SCREENSHOTS / "staff-schedule.png"), full_page=True)
    assert errors == []
    context.close()


def test_an_agent_registers_an_applicant_at_the_counter(live_server, browser, ain_staff, store):
    context = browser.new_context(locale="fr-FR", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(live_server + "/lang/en?next=/staff/login")
    staff_sign_in(page, live_server, "agent@ain.example.org")
    page.goto(live_server + "/staff/p/01/")
    page.locator("tr", has_text="Residence permit renewal").get_by_role("link", name="Register").click()
    fill_registration_at_counter(page)
    assert "The applicant is in the waiting list" in page.locator("h1").inner_text()
    assert store.waiting_count("01:renewal") == 1
    with context.expect_page() as status_tab:
        page.get_by_role("link", name="Status page (to print)").click()
    # The page to print speaks the applicant's language (French, chosen on the form), not the agent's.
    assert status_tab.value.locator("#status").inner_text() == "Sur la liste d’attente"
    context.close()


def fill_registration_at_counter(page):
    page.get_by_label("Family name").fill("Diallo")
    page.get_by_label("Given names").fill("Aminata")
    page.get_by_label("Date of birth").fill("1979-09-30")
    page.get_by_label("Nationality").select_option("SN")
    page.get_by_label("AGDREF number").fill("0100000007")
    page.get_by_label("Expiry date").fill("2027-03-31")
    page.get_by_label("Mobile phone").fill("06 98 76 54 32")
    page.locator("label[for=consent]").click(position={"x": 8, "y": 8})
    page.get_by_role("button", name="Register", exact=True).click()
