"""End to end in Chromium: an admin runs the policy simulator, watches its progress, reads the result."""

from pathlib import Path

import pytest
from helpers import collect_console_errors as console_errors
from helpers import staff_sign_in

pytestmark = pytest.mark.browser


@pytest.fixture
def laptop_page(browser):
    context = browser.new_context(locale="en-GB", viewport={"width": 1366, "height": 768}, accept_downloads=True)
    yield context.new_page()
    context.close()


def test_an_admin_runs_a_simulation_and_reads_its_result(live_server, laptop_page, ain_staff, run_jobs):
    page = laptop_page
    errors = console_errors(page)
    staff_sign_in(page, live_server, "admin@ain.example.org")
    page.get_by_role("link", name="01 – Ain").click()
    page.get_by_role("link", name="Policy simulator").click()
    page.get_by_label("Weeks simulated").fill("6")
    page.get_by_label("New applicants a week").fill("200")
    page.get_by_label("Slots a week").fill("180")
    page.get_by_label("Parameter").select_option("slots_per_week")
    page.get_by_label("Its other value").fill("260")
    page.get_by_role("button", name="Run the simulation").click()
    assert page.locator("#simulation-progress progress").is_visible()
    run_jobs()  # the worker's part, in this process
    figures = page.locator("#run-base table.simulation-figures")
    figures.wait_for(timeout=15_000)  # the page refreshes itself every 2 s
    assert "Online booking attempts that fail" in figures.inner_text()
    assert page.locator("#run-varied figure.qs-chart svg").count() == 4
    assert all(chart.is_visible() for chart in page.locator("#run-base figure.qs-chart svg").all())
    with page.expect_download() as download:
        page.locator("#run-varied").get_by_role("link", name="Download the figures (CSV)").click()
    assert "param:slots_per_week,260,260,260" in Path(download.value.path()).read_text()
    assert errors == []
