"""End to end in Chromium: the staff dashboard after a draw, an applicant's chances, the public statistics."""

import json
import re
from pathlib import Path

import pytest
from helpers import PASSWORD, SCREENSHOTS
from helpers import collect_console_errors as console_errors

from queue_service.registration.tokens import status_token
from queue_service.staff import accounts

pytestmark = pytest.mark.browser

@pytest.fixture
def laptop_page(browser):
    context = browser.new_context(locale="en-GB", viewport={"width": 1366, "height": 768})
    yield context.new_page()
    context.close()


def test_admin_sees_the_dashboard_with_charts_after_a_draw(live_server, laptop_page, drawn_pool, store):
    accounts.create_account(store, None, email="admin@ain.example.org", name="admin", role=accounts.Role.PREFECTURE_ADMIN,
                            prefecture="01", password=PASSWORD, now=drawn_pool["now"])
    page = laptop_page
    errors = console_errors(page)
    page.goto(live_server + "/staff/login")
    page.get_by_label("Email address").fill("admin@ain.example.org")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(live_server + "/staff/")
    page.get_by_role("link", name="01 – Ain").click()
    page.get_by_role("link", name="Dashboard", exact=True).click()
    renewal = page.locator("#pool-renewal")
    assert renewal.locator(".qs-waiting").inner_text() == "12"
    charts = renewal.locator("figure.qs-chart svg")
    assert charts.count() == 2 and all(chart.is_visible() for chart in charts.all())
    assert renewal.locator("svg rect.qs-chart__bar").count() > 0
    box = charts.first.bounding_box()
    assert 300 < box["width"] <= 1366  # readable on a laptop, inside the page
    assert renewal.locator("table.qs-draws tbody tr").count() == 1
    assert "Not seen lately" in page.locator("#service-health").inner_text()  # no worker runs in this test
    page.screenshot(path=str(SCREENSHOTS / "staff-dashboard.png"), full_page=True)
    with page.expect_download() as download:
        renewal.get_by_role("link", name="Daily series of the last year (CSV)").click()
    assert Path(download.value.path()).read_text().startswith("day,registered,")
    page.emulate_media(media="print")
    assert not page.locator(".qs-staff-nav").is_visible()  # printed without the menus
    assert charts.first.is_visible()
    assert errors == []


def test_applicant_sees_a_chance_and_dates(live_server, open_phone_page, drawn_pool, store, settings):
    loser = next(p for p in drawn_pool["people"] if store.registration(p.key).status.value == "waiting")
    page = open_phone_page("fr-FR")
    errors = console_errors(page)
    page.goto(live_server + "/status?t=" + status_token(settings.secret_key, loser.key))
    assert re.search(r"\d+(,\d)?\s%", page.locator("#chance-next").inner_text())
    assert re.search(r"\d{4}$", page.locator("#date-50").inner_text().strip())
    assert re.search(r"\d{4}$", page.locator("#date-90").inner_text().strip())
    notice = page.locator("#algorithm-notice").inner_text()
    assert "L311-3-1" in notice and page.locator("#own-weight").inner_text() == "2"
    page.screenshot(path=str(SCREENSHOTS / "status-chances-fr.png"), full_page=True)
    assert errors == []


def test_public_statistics_list_the_draw_with_a_working_record_link(live_server, laptop_page, drawn_pool):
    page = laptop_page
    errors = console_errors(page)
    page.goto(live_server + "/p/01/statistics")
    row = page.locator("#pool-renewal table.qs-draws tbody tr")
    assert row.count() == 1
    href = row.locator("a.qs-record-link").get_attribute("href")
    response = page.request.get(live_server + href)  # what the link serves, as the browser fetches it
    assert response.status == 200
    record = json.loads(response.text())
    assert record["draw_id"] == drawn_pool["draw_id"] and record["spec"] == "fairdraw/v1"
    page.locator("#pool-renewal table.qs-draws tbody tr td a").first.click()
    page.wait_for_url("**/draws/*")
    assert page.locator("#draw-state").inner_text() == "Published"
    assert errors == []
