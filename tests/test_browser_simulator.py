"""End to end in Chromium: an admin runs the policy simulator, watches its progress, reads the result."""

from pathlib import Path

import pytest
from helpers import collect_console_errors as console_errors
from helpers import staff_sign_in
from playwright.sync_api import expect
from rq.job import Job

pytestmark = pytest.mark.browser

AXE = Path(__file__).resolve().parent.parent / "node_modules" / "axe-core" / "axe.min.js"


@pytest.fixture
def laptop_page(browser):
    context = browser.new_context(locale="en-GB", viewport={"width": 1366, "height": 768}, accept_downloads=True)
    yield context.new_page()
    context.close()


@pytest.fixture
def axe_page(browser, live_server, ain_staff):
    """A page signed in as Ain's admin that axe-core can be injected into: the pages' security policy
    rightly forbids the test's own script, so this context bypasses it (the other one keeps it)."""
    if not AXE.exists():
        pytest.fail(f"axe-core is missing ({AXE}): run `make install-test` (it runs npm ci)")
    context = browser.new_context(locale="en-GB", viewport={"width": 320, "height": 720}, bypass_csp=True)
    page = context.new_page()
    staff_sign_in(page, live_server, "admin@ain.example.org")
    yield page
    context.close()


def axe_problems(page, url: str) -> list[str]:
    """axe-core's serious and critical WCAG 2.1 AA violations on the page at `url`."""
    page.goto(url)
    page.add_script_tag(content=AXE.read_text())
    found = page.evaluate("""async () => {
        const result = await axe.run(document, {runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21aa"]}});
        return result.violations.map(v => `${v.impact} ${v.id}: ${v.nodes[0] && v.nodes[0].target.join(" ")}`);
    }""")
    return [problem for problem in found if problem.startswith(("serious", "critical"))]


def test_an_admin_runs_a_simulation_and_reads_its_result(live_server, laptop_page, axe_page, redis, run_jobs):
    page = laptop_page
    errors = console_errors(page)  # a script the security policy blocked would be one of them
    staff_sign_in(page, live_server, "admin@ain.example.org")
    page.get_by_role("link", name="01 – Ain").click()
    page.get_by_role("link", name="Policy simulator").click()
    assert axe_problems(axe_page, page.url) == []
    page.get_by_label("Weeks simulated").fill("6")
    page.get_by_label("New applicants a week").fill("200")
    page.get_by_label("Slots a week").fill("180")
    page.get_by_label("Parameter").select_option("slots_per_week")
    page.get_by_label("Its other value").fill("260")
    page.get_by_role("button", name="Run the simulation").click()
    progress = page.get_by_role("progressbar", name="Simulation running")
    assert progress.is_visible()
    result_url = page.url
    assert axe_problems(axe_page, result_url) == []
    # The worker reports its progress in the job's meta; the page's script moves the bar without a reload.
    job = Job.fetch(result_url.rsplit("/", 1)[1], connection=redis)
    job.meta["progress"] = 0.4
    job.save_meta()
    expect(page.locator("#simulation-percent")).to_have_text("40 %", timeout=10_000)
    assert progress.evaluate("bar => bar.value") == pytest.approx(0.4)
    run_jobs()  # the worker's part, in this process
    figures = page.locator("#run-base table.simulation-figures")
    figures.wait_for(timeout=15_000)  # the script reloads the page once the job has ended
    assert "Online booking attempts that fail" in figures.inner_text()
    assert page.locator("#simulation-progress").count() == 0
    assert page.locator("#run-varied figure.qs-chart svg").count() == 4
    assert all(chart.is_visible() for chart in page.locator("#run-base figure.qs-chart svg").all())
    with page.expect_download() as download:
        page.locator("#run-varied").get_by_role("link", name="Download the figures (CSV)").click()
    assert "param:slots_per_week,260,260,260" in Path(download.value.path()).read_text()
    assert errors == []
    assert axe_problems(axe_page, result_url) == []
