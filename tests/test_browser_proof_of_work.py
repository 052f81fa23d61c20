"""The proof of work on a phone: the widget solves it when the form is sent, from our own files
under the pages' strict security policy; the same form without JavaScript still registers."""

import base64
import json
import os
from pathlib import Path
from urllib.parse import parse_qs

import pytest
from helpers import REGISTRATION_TEXTS, SCREENSHOTS, api_person, collect_console_errors, fill_registration

pytestmark = pytest.mark.browser

FRENCH = REGISTRATION_TEXTS[0]
WIDGET = Path(__file__).resolve().parent.parent / "web" / "static" / "altcha" / "altcha.min.js"


@pytest.fixture
def app(make_app, reference_data):
    """Ain's pools, with room for one registration without proof an hour from one address."""
    return make_app(rate_limit_registration_unproven="1 per hour")


@pytest.fixture
def budget_without_proof_spent(app):
    """Someone else registered from this address (the loopback, as the browser) without a proof."""
    client = app.test_client()
    assert client.post("/api/v1/registrations", json=api_person(family_name="Diallo", email="a@example.org",
                                                                agdref="0100000009")).status_code == 201


@pytest.fixture
def widget_installed():
    if not WIDGET.is_file():
        reason = "the ALTCHA widget is not in web/static/altcha (make install copies it from npm)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)


def test_the_widget_proves_the_work_and_the_registration_goes_through_on_a_phone(
        live_server, open_phone_page, budget_without_proof_spent, widget_installed):
    page = open_phone_page("fr-FR")
    errors = collect_console_errors(page)  # a resource refused by the security policy is an error
    sent = []
    page.on("request", lambda request: sent.append(request.post_data) if request.method == "POST" else None)
    response = page.goto(live_server + "/p/01/renewal/register")
    policy = response.headers["content-security-policy"]
    assert "worker-src 'self'" in policy and "unsafe" not in policy and "blob:" not in policy
    widget = page.locator("altcha-widget")
    assert "Je ne suis pas un robot" in widget.inner_text()  # the widget speaks the page's language
    fill_registration(page, FRENCH)
    page.wait_for_url("**/registered?ref=*")
    assert page.locator(".qs-ref").inner_text().startswith("01R-")
    (form,) = sent
    proof = json.loads(base64.b64decode(parse_qs(form)["altcha"][0]))
    assert proof["solution"]["counter"] >= 0 and proof["challenge"]["signature"]
    print(f"widget: number {proof['solution']['counter']} found in {proof['solution']['time']:.0f} ms")
    page.screenshot(path=str(SCREENSHOTS / "registered-with-proof-fr-phone.png"), full_page=True)
    assert errors == []


def test_without_javascript_the_form_still_registers_under_the_tighter_limit(live_server, browser):
    context = browser.new_context(java_script_enabled=False, locale="fr-FR", viewport={"width": 390, "height": 844})
    page = context.new_page()
    page.goto(live_server + "/p/01/renewal/register")
    fill_registration(page, FRENCH)
    page.wait_for_url("**/registered?ref=*")
    assert page.locator(".qs-ref").inner_text().startswith("01R-")

    # The tighter limit: the next registration without a proof, from this address, waits.
    page.goto(live_server + "/p/01/renewal/register")
    fill_registration(page, FRENCH, email="other@example.org")
    assert page.locator("h1").inner_text() == "Trop de demandes"
    assert "Réessayez dans" in page.locator("main").inner_text()
    context.close()
