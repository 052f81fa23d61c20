"""End to end: the app served for real, opened in Chromium as a person would."""

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(__file__).resolve().parent.parent / "var" / "screenshots"


def collect_console_errors(page) -> list[str]:
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    return errors


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
