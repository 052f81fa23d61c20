"""The policy simulator's staff page: who may open it, its form's errors, the run as an RQ job with
its progress, the result's tables, charts and CSV; and a scenario from a pool's figures."""

from __future__ import annotations

import csv
import datetime
import io
import re

from helpers import ENGLISH, csrf_token, schedule, sign_in
from rq.job import Job

from queue_service import simulator
from queue_service.simulator.from_pool import scenario_from_figures, scenario_from_pool

PAGE = "/staff/p/01/simulator"
SMALL_RUN = {"start": "scenario:ain-2019", "seed": "5", "weeks": "6", "arrivals_per_week": "200",
             "slots_per_week": "180", "draw_every_weeks": "", "aging": "", "urgency_share": "", "vary": "",
             "vary_value": ""}


def post(client, data: dict, headers=ENGLISH):
    return client.post(PAGE, data={**data, "csrf_token": csrf_token(client, PAGE)}, headers=headers)


def test_the_prefecture_admins_and_the_national_admin_open_it_and_no_one_else(app, staff):
    for who, status in (("admin01", 200), ("national", 200), ("agent01", 403), ("admin69", 403)):
        page = sign_in(app, who).get(PAGE, headers=ENGLISH)
        assert page.status_code == status, who
    html = sign_in(app, "admin01").get(PAGE, headers=ENGLISH).get_data(as_text=True)
    assert 'id="simulator-form"' in html and "ASSUMPTIONS" in html
    french = sign_in(app, "admin01").get(PAGE, headers={"Accept-Language": "fr"}).get_data(as_text=True)
    assert "HYPOTHÈSES, et non mesures" in french and "ASSUMPTIONS" not in french
    assert re.search(r'value="pool:first_request">Today&#39;s figures of the waiting list “[^<_]+”</option>', html)
    assert "Scenario “Ain, 2019 (calibrated on the Senate&#39;s figure)”" in html
    assert "Policy simulator" in sign_in(app, "admin01").get("/staff/p/01/", headers=ENGLISH).get_data(as_text=True)
    assert "Policy simulator" not in sign_in(app, "agent01").get("/staff/p/01/",
                                                                  headers=ENGLISH).get_data(as_text=True)
    assert sign_in(app, "agent01").post(PAGE, data=SMALL_RUN).status_code in (400, 403)


def test_a_run_without_the_form_s_csrf_token_is_refused(app, staff, redis):
    client = sign_in(app, "admin01")
    assert client.post(PAGE, data=SMALL_RUN, headers=ENGLISH).status_code == 400
    assert redis.keys("rq:job:*") == []


def test_bad_input_is_a_form_error_and_queues_nothing(app, staff, redis):
    client = sign_in(app, "admin01")
    answer = post(client, {**SMALL_RUN, "start": "scenario:atlantis", "seed": "abc", "slots_per_week": "-3",
                           "aging": "lots", "vary": "aging", "vary_value": "11"})
    assert answer.status_code == 422
    html = answer.get_data(as_text=True)
    for name in ("start", "seed", "slots_per_week", "aging", "vary_value"):
        assert f'id="{name}-error"' in html, name
    assert "Give a whole number from 0 to 100000." in html
    answer = post(client, {**SMALL_RUN, "vary": "weeks", "vary_value": "3"})
    assert answer.status_code == 422 and 'id="vary-error"' in answer.get_data(as_text=True)
    french = post(client, {**SMALL_RUN, "seed": "-1"}, headers={"Accept-Language": "fr"})
    assert french.status_code == 422 and "Donnez un nombre entier" in french.get_data(as_text=True)
    assert redis.keys("rq:job:*") == []


def test_a_run_is_a_job_whose_progress_then_result_the_page_shows(app, staff, redis, run_jobs):
    client = sign_in(app, "admin01")
    answer = post(client, {**SMALL_RUN, "vary": "slots_per_week", "vary_value": "260"})
    assert answer.status_code == 303
    result_page = answer.headers["Location"]
    job_id = re.search(r"/simulator/([0-9a-f-]{36})$", result_page).group(1)
    waiting = client.get(result_page, headers=ENGLISH).get_data(as_text=True)
    assert 'id="simulation-progress"' in waiting and 'http-equiv="refresh"' not in waiting  # axe: meta-refresh
    assert f'data-progress-url="{PAGE}/{job_id}/progress"' in waiting and "js/simulation-progress.js" in waiting
    assert client.get(f"{PAGE}/{job_id}/progress").get_json() == {"progress": 0.0, "done": False, "failed": False}
    run_jobs()
    job = Job.fetch(job_id, connection=redis)
    assert job.meta["progress"] == 1.0
    assert client.get(f"{PAGE}/{job_id}/progress").get_json() == {"progress": 1.0, "done": True, "failed": False}
    html = client.get(result_page, headers=ENGLISH).get_data(as_text=True)
    assert 'id="simulation-progress"' not in html
    assert 'id="run-base"' in html and 'id="run-varied"' in html
    assert "First come, first served" in html and "The service&#39;s policy" in html
    assert html.count("<svg") == 8  # three rules and the resales, for each run
    assert "Online booking attempts that fail" in html
    assert re.search(r"<td>\d+\.\d%</td>", html) and re.search(r"<td>\d+ days</td>", html)
    french = client.get(result_page, headers={"Accept-Language": "fr"}).get_data(as_text=True)
    assert re.search(r"<td>\d+,\d\xa0%</td>", french) and re.search(r"<td>\d+\u202fj</td>", french)
    assert re.search(r"<td>\d{1,2} [a-zéû]+ \d{4}</td>", french)  # the date shown for 50 %, in words
    base = client.get(f"{PAGE}/{job_id}/base.csv")
    assert base.status_code == 200 and base.mimetype == "text/csv" and base.mimetype_params["charset"] == "utf-8"
    assert base.headers["Content-Disposition"] == f'attachment; filename="simulation-01-{job_id}-base.csv"'
    assert "no-store" in base.headers["Cache-Control"]
    rows = {row[0]: row[1:] for row in csv.reader(io.StringIO(base.get_data(as_text=True)))}
    assert rows["metric"] == list(simulator.RULES) and rows["param:slots_per_week"] == ["180"] * 3
    varied = {row[0]: row[1:] for row in csv.reader(io.StringIO(
        client.get(f"{PAGE}/{job_id}/varied.csv").get_data(as_text=True)))}
    assert varied["param:slots_per_week"] == ["260"] * 3 and varied["people"] == rows["people"]
    # Another prefecture's admin never sees it; an unknown or malformed id is not found.
    assert sign_in(app, "admin69").get(result_page).status_code == 403
    assert sign_in(app, "admin69").get(f"{result_page}/progress").status_code == 403
    assert sign_in(app, "agent01").get(f"{result_page}/base.csv").status_code == 403
    assert sign_in(app, "national").get(f"/staff/p/69/simulator/{job_id}").status_code == 404
    assert client.get(f"{PAGE}/00000000-0000-4000-8000-000000000000").status_code == 404
    assert client.get(f"{PAGE}/not-a-job").status_code == 404
    assert client.get(f"{PAGE}/{job_id}/other.csv").status_code == 404


def test_a_run_can_start_from_a_pool_s_figures(app, staff, store, run_jobs):
    store.save_schedule(schedule(aging=2.0, urgency_share=0.25))
    client = sign_in(app, "admin01")
    answer = post(client, {**SMALL_RUN, "start": "pool:first_request"})
    assert answer.status_code == 303
    run_jobs()
    rows = {row[0]: row[1:] for row in csv.reader(io.StringIO(
        client.get(answer.headers["Location"] + "/base.csv").get_data(as_text=True)))}
    assert rows["param:aging"] == ["2.0"] * 3 and rows["param:urgency_share"] == ["0.25"] * 3
    assert rows["scenario"] == ["pool 01:first_request"] * 3
    html = client.get(answer.headers["Location"], headers=ENGLISH).get_data(as_text=True)
    assert "Today&#39;s figures of the waiting list" in html and "pool 01:first_request" not in html


def test_scenario_from_figures_takes_the_pool_s_pace_schedule_and_policy():
    now = datetime.datetime(2027, 1, 1, 12, 0, tzinfo=datetime.timezone.utc)
    weekly = schedule(aging=1.5, urgency_share=0.2)
    found = scenario_from_figures(simulator.SCENARIOS["default"], "pool 01:first_request", registered=800,
                                  slots_offered=400, weeks=8, schedule=weekly, now=now)
    assert (found.arrivals_per_week, found.slots_per_week, found.draw_every_weeks) == (100.0, 50, 1)
    assert (found.aging, found.urgency_share) == (1.5, 0.2)
    fortnightly = schedule().__class__(**{**weekly.__dict__, "cron": "0 10 1,15 * *"})
    assert scenario_from_figures(simulator.SCENARIOS["default"], "x", 0, 0, 8, fortnightly, now).draw_every_weeks == 2
    bare = scenario_from_figures(simulator.SCENARIOS["default"], "x", 0, 0, 8, None, now)
    assert bare.slots_per_week == simulator.SCENARIOS["default"].slots_per_week


def test_scenario_from_pool_reads_an_empty_pool_as_the_defaults(store, reference_data):
    now = datetime.datetime(2027, 1, 1, 12, 0, tzinfo=datetime.timezone.utc)
    found = scenario_from_pool(store, "01:renewal", "Europe/Paris", now)
    assert found.arrivals_per_week == simulator.SCENARIOS["default"].arrivals_per_week
    assert found.name == "pool 01:renewal"


def test_the_documentation_s_charts_are_the_page_s_drawing_as_standalone_svg():
    import xml.etree.ElementTree as ElementTree

    from web import charts

    drawn = charts.chart(["W1", "W2", "W3"], bars=[10, 0, 7], line=[100, 150, None])
    svg = charts.standalone_svg(drawn, "ain-2019 <first come>", "appointments", "waiting")
    root = ElementTree.fromstring(svg)
    namespace = "{http://www.w3.org/2000/svg}"
    assert root.find(f"{namespace}title").text == "ain-2019 <first come>"
    assert len(root.findall(f"{namespace}rect")) == 3 and len(root.findall(f"{namespace}polyline")) == 1
    assert ".qs-chart__bar{fill:#6a6af4}" in root.find(f"{namespace}style").text


def test_a_run_too_large_for_a_worker_is_a_form_error(app, staff, redis):
    client = sign_in(app, "admin01")
    answer = post(client, {**SMALL_RUN, "weeks": "260", "arrivals_per_week": "50000"})
    assert answer.status_code == 422
    html = answer.get_data(as_text=True)
    assert 'id="arrivals_per_week-error"' in html and "2,000,000" in html
    answer = post(client, {**SMALL_RUN, "weeks": "200", "slots_per_week": "9000", "vary": "slots_per_week",
                           "vary_value": "20000"})
    assert answer.status_code == 422 and 'id="vary_value-error"' in answer.get_data(as_text=True)
    assert redis.keys("rq:job:*") == []


def test_a_pool_too_busy_for_a_run_is_a_form_error(app, staff, store, redis):
    """40,000 registrations a week for eight weeks: a year of it is more than a run may hold."""
    now = datetime.datetime.now(datetime.timezone.utc)
    for days in range(0, 56, 7):
        store.count_event("01:first_request", "registered", now - datetime.timedelta(days=days), amount=40_000)
    answer = post(sign_in(app, "admin01"), {**SMALL_RUN, "start": "pool:first_request"})
    assert answer.status_code == 422
    assert 'id="start-error"' in answer.get_data(as_text=True) and "2,000,000" in answer.get_data(as_text=True)
    assert redis.keys("rq:job:*") == []
