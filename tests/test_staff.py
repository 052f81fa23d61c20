"""Staff pages: access control for every route, sign-in and sessions, sites, slots,
schedules, draws now, accounts, tokens and assisted registration."""

import datetime
import re
import time

import pytest
from helpers import ENGLISH, PASSWORD, csrf_token, register_people, sign_in

from queue_service.draws import DrawState, Trigger
from queue_service.reference import DEMO_AGDREF_NUMBERS
from queue_service.staff import accounts
from queue_service.staff.accounts import Role
from queue_service.store.keys import staff_session_key
from worker import clock
from worker.queues import DRAWS, queue

NOW = datetime.datetime.now(datetime.timezone.utc)
NEXT_MONDAY = (NOW + datetime.timedelta(days=7 - NOW.weekday() + 7)).date()


@pytest.fixture
def as_staff(app, staff):
    return lambda who: sign_in(app, who)


# Access control ------------------------------------------------------------------------

VIEW_ROUTES = [
    "/staff/p/{p}/",
    "/staff/p/{p}/sites",
    "/staff/p/{p}/slots",
    "/staff/p/{p}/schedules/renewal",
    "/staff/p/{p}/register/renewal",
    "/staff/p/{p}/dashboard",
    "/staff/p/{p}/dashboard/renewal/daily.csv",
]
ADMIN_ROUTES = [
    "/staff/p/{p}/accounts",
    "/staff/p/{p}/schedules/renewal/run",
]
MANAGE_POSTS = [
    "/staff/p/{p}/sites",
    "/staff/p/{p}/slots",
    "/staff/p/{p}/schedules/renewal",
    "/staff/p/{p}/sites/bourg/delete",
]
# (who, prefecture) -> may view, may use admin pages, may change things
EXPECTED = {
    ("national", "01"): (True, True, True),
    ("national", "69"): (True, True, True),
    ("admin01", "01"): (True, True, True),
    ("admin01", "69"): (False, False, False),
    ("agent01", "01"): (True, False, False),
    ("agent01", "69"): (False, False, False),
}


@pytest.mark.parametrize(("who", "prefecture"), list(EXPECTED))
def test_every_staff_route_checks_role_and_prefecture(as_staff, store, who, prefecture):
    store.save_schedule(schedule_for("01"))
    store.save_schedule(schedule_for("69"))
    client = as_staff(who)
    may_view, may_administer, may_change = EXPECTED[(who, prefecture)]
    for route in VIEW_ROUTES:
        assert client.get(route.format(p=prefecture)).status_code == (200 if may_view else 403), route
    for route in ADMIN_ROUTES:
        assert client.get(route.format(p=prefecture)).status_code == (200 if may_administer else 403), route
    token = csrf_token(client, "/staff/")
    for route in MANAGE_POSTS:
        status = client.post(route.format(p=prefecture), data={"csrf_token": token}).status_code
        if may_change:
            assert status not in (401, 403) and status < 500, (route, status)
        else:
            assert status == 403, (route, status)


def test_the_denied_page_changes_nothing(as_staff, store):
    client = as_staff("admin01")
    token = csrf_token(client, "/staff/")
    before = store.sites("69")
    response = client.post("/staff/p/69/sites", data={"csrf_token": token, "id": "lyon", "name": "Lyon",
                                                      "address": "1 rue X", "postcode": "69000", "city": "Lyon"})
    assert response.status_code == 403
    assert store.sites("69") == before


def test_signed_out_visitors_are_sent_to_the_sign_in_page(client):
    for route in ["/staff/", "/staff/p/01/sites", "/staff/tokens"]:
        response = client.get(route)
        assert response.status_code == 302 and response.headers["Location"].startswith("/staff/login")


def test_staff_api_checks_tokens_role_and_prefecture(client, store, staff):
    admin_token, _ = accounts.new_api_token(store, staff["admin01"], "script", NOW)
    agent_token, _ = accounts.new_api_token(store, staff["agent01"], "script", NOW)
    for path, token, expected in [
        ("/api/v1/staff/prefectures/01/sites", admin_token, 200),
        ("/api/v1/staff/prefectures/69/sites", admin_token, 403),
        ("/api/v1/staff/prefectures/01/slots", agent_token, 200),
        ("/api/v1/staff/prefectures/69/slots", agent_token, 403),
        ("/api/v1/staff/prefectures/01/schedules", admin_token, 200),
        ("/api/v1/staff/prefectures/69/schedules", admin_token, 403),
        ("/api/v1/staff/prefectures/01/registrations", agent_token, 200),
        ("/api/v1/staff/prefectures/69/registrations", agent_token, 403),
        ("/api/v1/staff/prefectures/01/sites", "qst_forged", 401),
        ("/api/v1/staff/prefectures/01/sites", None, 401),
    ]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = client.get(path, headers=headers)
        assert response.status_code == expected, (path, response.get_data(as_text=True))
        if expected >= 400:
            assert response.content_type == "application/problem+json"


# Sign-in and sessions --------------------------------------------------------------------


def test_sign_in_rotates_the_session_and_sign_out_ends_it(app, staff, store):
    client = app.test_client()
    token = csrf_token(client, "/staff/login")
    client.post("/staff/login", data={"email": "admin01@example.gouv.fr", "password": PASSWORD, "csrf_token": token})
    cookie = client.get_cookie("session")
    assert cookie.http_only and cookie.same_site == "Lax"
    sessions_before = set(store.redis.scan_iter(staff_session_key("*")))
    token = csrf_token(client, "/staff/")
    client.post("/staff/login", data={"email": "admin01@example.gouv.fr", "password": PASSWORD, "csrf_token": token})
    sessions_after = set(store.redis.scan_iter(staff_session_key("*")))
    assert len(sessions_after) == 1 and sessions_after != sessions_before  # the old one ended
    stolen = client.get_cookie("session").value
    client.post("/staff/logout", data={"csrf_token": csrf_token(client, "/staff/")})
    assert list(store.redis.scan_iter(staff_session_key("*"))) == []
    replay = app.test_client()
    replay.set_cookie("session", stolen)
    assert replay.get("/staff/").status_code == 302  # the copied cookie is worth nothing after sign-out


def client_at(app, address: str):
    """A test client whose requests come from `address` (the socket's address, as REMOTE_ADDR)."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def try_password(client, password: str, **headers):
    token = csrf_token(client, "/staff/login")
    return client.post("/staff/login", data={"email": "admin01@example.gouv.fr", "password": password,
                                             "csrf_token": token}, headers=ENGLISH | headers)


def well_inside_a_wait(client) -> None:
    """Leave `client` with a few seconds of its wait still to run, so that the requests that
    follow fall inside it even on a slow machine (a wait about to end would let them through)."""
    while True:
        answer = try_password(client, "not the password")
        if answer.status_code == 429 and int(answer.headers["Retry-After"]) >= 3:
            return
        if answer.status_code == 429:
            time.sleep(int(answer.headers["Retry-After"]))  # the next try is counted: a longer wait


def test_wrong_passwords_from_one_address_slow_that_address_and_never_lock_staff_out(app, staff):
    attacker = client_at(app, "203.0.113.9")
    codes = [try_password(attacker, "not the password").status_code for _ in range(100)]
    assert codes[:accounts.FREE_LOGIN_FAILURES] == [401] * accounts.FREE_LOGIN_FAILURES
    assert set(codes[accounts.FREE_LOGIN_FAILURES:]) <= {401, 429} and 429 in codes
    well_inside_a_wait(attacker)
    # The real admin, elsewhere, signs in at once.
    assert try_password(client_at(app, "198.51.100.4"), PASSWORD).status_code == 302
    # The address that failed waits, even with the right password, and is told how long.
    slowed = try_password(attacker, PASSWORD)
    assert slowed.status_code == 429
    wait = int(slowed.headers["Retry-After"])
    assert 1 <= wait <= accounts.MAX_LOGIN_WAIT.total_seconds()
    assert f"Wait {wait} s, then try again" in slowed.get_data(as_text=True)
    # X-Forwarded-For is not trusted unless proxies are configured: it changes nothing.
    assert try_password(attacker, PASSWORD, **{"X-Forwarded-For": "198.51.100.4"}).status_code == 429
    # The French page says it too.
    french = attacker.post("/staff/login", data={"email": "admin01@example.gouv.fr", "password": PASSWORD,
                                                 "csrf_token": csrf_token(attacker, "/staff/login")},
                           headers={"Accept-Language": "fr"})
    assert "puis réessayez" in french.get_data(as_text=True)


def test_a_slowed_address_signs_in_once_its_wait_is_over(app, staff):
    client = client_at(app, "2001:db8:5:6::1")
    codes = [try_password(client, "not the password").status_code for _ in range(accounts.FREE_LOGIN_FAILURES + 1)]
    while codes[-1] != 429 and len(codes) < 10:  # a slow machine may let a wait pass between tries
        codes.append(try_password(client, "not the password").status_code)
    assert codes[-1] == 429
    # Another address of the same /64 network is the same subscriber: slowed too.
    assert try_password(client_at(app, "2001:db8:5:6::99"), PASSWORD).status_code == 429
    time.sleep(int(try_password(client, PASSWORD).headers["Retry-After"]))
    assert try_password(client, PASSWORD).status_code == 302


def test_secure_session_cookie_in_production_settings(make_app, reference_data):
    app = make_app()
    assert app.config["SESSION_COOKIE_HTTPONLY"] and app.config["SESSION_COOKIE_SAMESITE"] == "Lax"


# Sites --------------------------------------------------------------------------------------


def test_admin_creates_edits_and_closes_a_site(as_staff, store):
    client = as_staff("admin01")
    token = csrf_token(client, "/staff/p/01/sites")
    form = {"csrf_token": token, "id": "oyonnax", "name": "Antenne d'Oyonnax", "kind": "sub_prefecture",
            "address": "1 place de la Mairie", "postcode": "01100", "city": "Oyonnax", "hours_1": "09:00-12:00"}
    assert client.post("/staff/p/01/sites", data=form).status_code == 302
    site = next(s for s in store.sites("01") if s.id == "oyonnax")
    assert site.opening_hours[0].weekday == 1
    duplicate = client.post("/staff/p/01/sites", data=form, headers=ENGLISH)
    assert duplicate.status_code == 422 and "already has this identifier" in duplicate.get_data(as_text=True)
    edit = dict(form, closed="on", hours_1="08:30-12:00, 13:30-16:00")
    del edit["id"]
    assert client.post("/staff/p/01/sites/oyonnax", data=edit).status_code == 302
    site = next(s for s in store.sites("01") if s.id == "oyonnax")
    assert site.closed and len(site.opening_hours) == 2
    # A closed site is not offered to applicants.
    page = client.get("/p/01/renewal/register").get_data(as_text=True)
    assert "sites-oyonnax" not in page


def test_a_site_with_future_slots_cannot_be_deleted(as_staff, store):
    client = as_staff("admin01")
    publish_week(client)
    token = csrf_token(client, "/staff/p/01/sites")
    refused = client.post("/staff/p/01/sites/bourg/delete", data={"csrf_token": token}, headers=ENGLISH)
    assert refused.status_code == 409 and "future slots" in refused.get_data(as_text=True)
    assert any(site.id == "bourg" for site in store.sites("01"))
    assert client.post("/staff/p/01/sites/nantua/delete", data={"csrf_token": token}).status_code == 302
    assert not any(site.id == "nantua" for site in store.sites("01"))


# Slots --------------------------------------------------------------------------------------


def publish_week(client, **changes):
    token = csrf_token(client, "/staff/p/01/slots")
    form = {"csrf_token": token, "source": "template", "site": "bourg", "procedure": "renewal",
            "first_day": NEXT_MONDAY.isoformat(), "last_day": (NEXT_MONDAY + datetime.timedelta(days=4)).isoformat(),
            "weekdays": ["0", "1", "2", "3", "4"], "opens": "09:00", "closes": "12:00",
            "appointment_minutes": "30", "counters": "2"}
    form.update(changes)
    return client.post("/staff/p/01/slots", data=form, headers=ENGLISH)


def test_publish_a_week_from_a_template_then_refuse_overlaps(as_staff, store):
    client = as_staff("admin01")
    response = publish_week(client)
    assert response.status_code == 200 and "60 slots published." in response.get_data(as_text=True)
    start = datetime.datetime.combine(NEXT_MONDAY, datetime.time(), datetime.timezone.utc)
    assert len(store.slots("01:renewal", start, start + datetime.timedelta(days=7))) == 60
    again = publish_week(client, procedure="first_request", opens="11:15")  # same counters, another procedure
    assert again.status_code == 422 and "overlap" in again.get_data(as_text=True)
    assert len(store.prefecture_slots("01", start, start + datetime.timedelta(days=7))) == 60


def test_the_slots_page_reads_today_on_the_prefectures_clock(as_staff, store, monkeypatch):
    """At 00:20 on Sunday in Paris it is still Saturday in UTC: the page took the UTC date for
    today, so it published slots for the day just ended and listed the slots from that day."""
    sunday_just_after_midnight_in_paris = datetime.datetime(2026, 11, 28, 23, 20, tzinfo=datetime.timezone.utc)
    monkeypatch.setattr("web.staff.now", lambda: sunday_just_after_midnight_in_paris)
    client = as_staff("admin01")
    ended = publish_week(client, first_day="2026-11-28", last_day="2026-12-04")
    assert ended.status_code == 422 and "cannot be in the past" in ended.get_data(as_text=True)
    assert 'id="from" name="from" value="2026-11-29"' in ended.get_data(as_text=True)
    assert "60 slots published." in publish_week(client, first_day="2026-11-29", last_day="2026-12-04").get_data(
        as_text=True)


def test_csv_import_keeps_good_rows_and_reports_bad_ones(as_staff, store):
    client = as_staff("admin01")
    day = NEXT_MONDAY.isoformat()
    csv = (
        "site;procedure;date;start;duration_minutes;counter\n"
        f"gex;renewal;{day};09:00;20;1\n"
        f"gex;renewal;{day};09:20;20;1\n"
        f"mars;renewal;{day};09:00;20;1\n"
        f"gex;renewal;not-a-date;09:00;20;1\n"
    )
    from io import BytesIO

    token = csrf_token(client, "/staff/p/01/slots")
    response = client.post(
        "/staff/p/01/slots",
        data={"csrf_token": token, "source": "csv", "file": (BytesIO(csv.encode()), "slots.csv")},
        content_type="multipart/form-data",
        headers=ENGLISH,
    )
    page = response.get_data(as_text=True)
    assert "2 slots published." in page
    assert "line 4" in page and "line 5" in page


def test_cancel_an_open_slot(as_staff, store):
    client = as_staff("admin01")
    publish_week(client)
    start = datetime.datetime.combine(NEXT_MONDAY, datetime.time(), datetime.timezone.utc)
    slot = store.slots("01:renewal", start, start + datetime.timedelta(days=7))[0]
    token = csrf_token(client, "/staff/p/01/slots")
    assert client.post(f"/staff/p/01/slots/renewal/{slot.id}/cancel", data={"csrf_token": token}).status_code == 302
    assert store.slots("01:renewal", start, start + datetime.timedelta(days=7))[0].status.value == "cancelled"
    twice = client.post(f"/staff/p/01/slots/renewal/{slot.id}/cancel", data={"csrf_token": token})
    assert twice.status_code == 409


# Schedules and draws ---------------------------------------------------------------------------


def schedule_for(prefecture: str):
    from queue_service.draws.schedules import DrawSchedule

    return DrawSchedule(prefecture=prefecture, procedure="renewal", timezone="Europe/Paris", cron="0 10 * * MON",
                        created_at=NOW)


def test_admin_sets_a_weekly_schedule_and_sees_the_next_five_draws(as_staff, store):
    client = as_staff("admin01")
    publish_week(client)
    token = csrf_token(client, "/staff/p/01/schedules/renewal")
    form = {"csrf_token": token, "cron": "0 10 * * MON", "cutoff_minutes": "60", "horizon_from_days": "0",
            "horizon_to_days": "28", "confirmation_hours": "48", "aging": "0.5", "urgency_window_days": "60",
            "urgency_share": "0.1", "constraints_apply": "on"}
    assert client.post("/staff/p/01/schedules/renewal", data=form).status_code == 302
    page = client.get("/staff/p/01/schedules/renewal", headers=ENGLISH).get_data(as_text=True)
    upcoming = re.findall(r"<tr><td>(\d{4}-\d\d-\d\d 10:00)</td><td>(\d+)</td></tr>", page)
    assert len(upcoming) == 5
    assert any(int(count) == 60 for _, count in upcoming)  # the week of slots falls in some draw's horizon
    assert store.schedule("01:renewal").policy.aging == 0.5
    bad = client.post("/staff/p/01/schedules/renewal", data=dict(form, cron="* * * * *", aging="-1"), headers=ENGLISH)
    assert bad.status_code == 422 and store.schedule("01:renewal").cron == "0 10 * * MON"


def test_run_a_draw_now_goes_through_the_same_path_once(as_staff, store, redis, run_jobs):
    client = as_staff("admin01")
    store.save_schedule(schedule_for("01"))
    question = client.get("/staff/p/01/schedules/renewal/run", headers=ENGLISH)
    assert "cannot be undone" in question.get_data(as_text=True)
    token = csrf_token(client, "/staff/p/01/schedules/renewal/run")
    first = client.post("/staff/p/01/schedules/renewal/run", data={"csrf_token": token}, headers=ENGLISH,
                        follow_redirects=True)
    assert "is announced: its commitment is public" in first.get_data(as_text=True)
    second = client.post("/staff/p/01/schedules/renewal/run", data={"csrf_token": token}, headers=ENGLISH,
                         follow_redirects=True)
    assert "already exists" in second.get_data(as_text=True) or "is announced" in second.get_data(as_text=True)
    later = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=2)  # their entries closed
    clock.reconcile_draws(redis, store, later)
    run_jobs()
    draws = [draw for draw in store.draws("01:renewal") if draw.trigger is Trigger.ADMIN]
    assert draws and all(draw.state is DrawState.PUBLISHED for draw in draws)


def test_run_now_names_the_draw_says_who_enters_and_when_and_never_starts_twice(as_staff, store, redis, run_jobs):
    """Seen: "among the 47 people waiting" when 40 entered; the button named T1401 and T1402 was
    created; the result was the POST's own page, and reloading it started a second draw. Then
    (issue 18): the commitment came with the result, and the record said `announced_late`."""
    from queue_service.draws.schedules import DrawSchedule

    client = as_staff("admin01")
    store.save_schedule(DrawSchedule(prefecture="01", procedure="first_request", timezone="Europe/Paris",
                                     cron="0 10 * * MON", created_at=NOW))
    register_people(store, 3, NOW - datetime.timedelta(hours=2))
    register_people(store, 2, NOW - datetime.timedelta(minutes=5), first=3)  # within the pool's cutoff: in too
    path = "/staff/p/01/schedules/first_request/run"
    question = client.get(path, headers=ENGLISH).get_data(as_text=True)
    assert "5 people are waiting now." in question
    assert "Entries close 60 seconds after you confirm" in question and "including anyone who joins meanwhile" in question
    assert "before entries close" in question
    draw_id = re.search(r"Yes, run draw (\S+)</button>", question).group(1)
    at = re.search(r'name="at" value="([^"]+)"', question).group(1)  # the draw's minute, fixed by the page
    form = {"csrf_token": csrf_token(client, path), "at": at}

    clicked = datetime.datetime.now(datetime.timezone.utc)
    first = client.post(path, data=form, headers=ENGLISH)
    assert first.status_code == 302 and f"draw={draw_id}" in first.location
    result = client.get(first.location, headers=ENGLISH).get_data(as_text=True)
    assert f"Draw {draw_id} is announced: its commitment is public." in result and "Its entries close at" in result
    client.get(first.location, headers=ENGLISH)  # a reload shows the result again, and posts nothing
    twice = client.post(path, data=form, headers=ENGLISH)  # a double click, or the form sent again
    assert "already exists" in client.get(twice.location, headers=ENGLISH).get_data(as_text=True)

    # Announced at once: its commitment public, its entries closing a minute after the click.
    (record,) = store.draws("01:first_request")
    assert record.draw_id == draw_id and record.state is DrawState.SCHEDULED and not record.announced_late
    assert clicked <= record.announced_at <= record.cutoff_at == record.scheduled_at
    assert record.cutoff_at - record.announced_at == datetime.timedelta(seconds=60)
    public = client.get(f"/api/v1/draws/{draw_id}/record").get_json()
    assert public["commitment"] == record.commitment and public["seed"] is None
    # Someone registering between the click and the cutoff enters; the draw waits for the cutoff.
    register_people(store, 1, record.announced_at + datetime.timedelta(seconds=30), first=5)
    run_jobs()
    assert store.draw("01:first_request", draw_id).state is DrawState.SCHEDULED
    assert clock.reconcile_draws(redis, store, record.cutoff_at) == [draw_id]
    run_jobs()
    draw = store.draw("01:first_request", draw_id)
    assert draw.state is DrawState.PUBLISHED and draw.entrants == 6 and draw.commitment == record.commitment

    stale = client.post(path, data=form | {"at": "2020-01-06T09:00:00+00:00"}, headers=ENGLISH)
    assert stale.status_code == 409 and "open the page again" in stale.get_data(as_text=True)
    assert [draw.draw_id for draw in store.draws("01:first_request") if draw.trigger is Trigger.ADMIN] == [draw_id]


def test_menus_show_only_what_each_person_may_open(as_staff, store):
    """Seen: an agent's menu linked to "Staff accounts" (403); the schedule page was not in the menu."""
    store.save_schedule(schedule_for("01"))
    for who in ("agent01", "admin01"):
        client = as_staff(who)
        for page in ("/staff/p/01/", "/staff/p/01/dashboard", "/staff/p/01/check-in"):
            html = client.get(page, headers=ENGLISH).get_data(as_text=True)
            links = set(re.findall(r'href="(/staff/p/01[^"#?]*)', html))
            assert links, page
            for link in links:
                assert client.get(link, headers=ENGLISH).status_code == 200, (who, page, link)
        menu = client.get("/staff/p/01/", headers=ENGLISH).get_data(as_text=True)
        assert ("/staff/p/01/schedules/renewal" in menu) is (who == "admin01")
        assert ("/staff/p/01/accounts" in menu) is (who == "admin01")


def test_the_counter_form_speaks_to_the_agent(as_staff):
    page = as_staff("agent01").get("/staff/p/01/register/renewal", headers=ENGLISH).get_data(as_text=True)
    assert "Register once" not in page
    assert "the applicant in front of you" in page


def test_without_a_schedule_a_draw_cannot_be_run(as_staff):
    client = as_staff("admin01")
    response = client.get("/staff/p/01/schedules/renewal/run", headers=ENGLISH)
    assert response.status_code == 409 and "schedule" in response.get_data(as_text=True)


def test_the_clock_enqueues_scheduled_draws_once_even_twice_ticked(redis, store, run_jobs):
    from queue_service.draws.schedules import DrawSchedule

    created = datetime.datetime(2027, 1, 1, tzinfo=datetime.timezone.utc)
    store.save_schedule(DrawSchedule(prefecture="01", procedure="renewal", timezone="Europe/Paris",
                                     cron="0 10 * * MON", created_at=created))
    later = datetime.datetime(2027, 1, 20, tzinfo=datetime.timezone.utc)
    first = clock.reconcile_draws(redis, store, later)
    assert first == ["01-renewal-20270104T1000", "01-renewal-20270111T1000", "01-renewal-20270118T1000"]
    assert clock.reconcile_draws(redis, store, later) == []
    assert clock.reconcile_draws(redis, store, later + datetime.timedelta(days=7)) == ["01-renewal-20270125T1000"]
    assert len(queue(DRAWS, redis)) == 4
    run_jobs()
    run_jobs()
    ran = [draw for draw in store.draws("01:renewal") if draw.run_claimed_at is not None]
    assert [draw.state for draw in ran] == [DrawState.PUBLISHED] * 4
    announced = [draw for draw in store.draws("01:renewal") if draw.run_claimed_at is None]
    assert [draw.draw_id for draw in announced] == ["01-renewal-20270201T1000"]  # the next one, committed ahead


# Accounts and tokens ------------------------------------------------------------------------


def test_admin_creates_an_agent_but_not_an_admin(as_staff, store):
    client = as_staff("admin01")
    token = csrf_token(client, "/staff/p/01/accounts")
    form = {"csrf_token": token, "name": "Dominique", "email": "dominique@ain.gouv.fr", "password": PASSWORD,
            "role": "agent"}
    assert client.post("/staff/p/01/accounts", data=form).status_code == 200
    assert store.staff_account_by_email("dominique@ain.gouv.fr").role is Role.AGENT
    refused = client.post("/staff/p/01/accounts", data=dict(form, email="boss@ain.gouv.fr", role="prefecture_admin"))
    assert refused.status_code == 403 and store.staff_account_by_email("boss@ain.gouv.fr") is None


def test_tokens_are_shown_once_and_revocable(as_staff, store, staff):
    client = as_staff("agent01")
    token = csrf_token(client, "/staff/tokens")
    page = client.post("/staff/tokens", data={"csrf_token": token, "label": "counter tablet"}).get_data(as_text=True)
    shown = re.search(r'<code id="new-token">(qst_[\w-]+)</code>', page).group(1)
    assert shown not in client.get("/staff/tokens").get_data(as_text=True)
    principal = accounts.token_principal(store, shown)
    assert (principal.account_id, principal.role, principal.prefecture) == (staff["agent01"].id, Role.AGENT, "01")
    assert principal.scopes == accounts.role_scopes(Role.AGENT)  # a token of the page: all its account may do
    (_, listed), = store.api_tokens(staff["agent01"].id)
    client.post(f"/staff/tokens/{listed.id}/revoke", data={"csrf_token": token})
    assert store.api_tokens(staff["agent01"].id) == []


# Assisted registration ------------------------------------------------------------------------


def test_an_agent_registers_an_applicant_without_email(as_staff, store, staff):
    client = as_staff("agent01")
    token = csrf_token(client, "/staff/p/01/register/renewal")
    form = {"csrf_token": token, "family_name": "Diallo", "given_names": "Aminata", "birth_date": "1979-09-30",
            "nationality": "SN", "phone": "06 98 76 54 32", "agdref": DEMO_AGDREF_NUMBERS[5],
            "permit_expiry": (NOW + datetime.timedelta(days=40)).date().isoformat(), "language": "fr",
            "consent": "yes"}
    response = client.post("/staff/p/01/register/renewal", data=form, headers=ENGLISH)
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "The applicant is in the waiting list" in page
    assert store.waiting_count("01:renewal") == 1
    ref = re.search(r'class="qs-ref">([0-9A-Z-]+)<', page).group(1)
    registered = store.registration(store.registration_key_by_ref("01:renewal", ref))
    assert registered.channel.value == "assisted" and registered.agent == staff["agent01"].id
    status_link = re.search(r'href="(/status\?t=[^"]+)"', page).group(1)
    assert "Sur la liste" in client.get(status_link).get_data(as_text=True)


def test_at_the_counter_an_email_or_a_mobile_is_asked_for(as_staff, store):
    client = as_staff("agent01")
    token = csrf_token(client, "/staff/p/01/register/renewal")
    form = {"csrf_token": token, "family_name": "Diallo", "given_names": "Aminata", "birth_date": "1979-09-30",
            "nationality": "SN", "agdref": DEMO_AGDREF_NUMBERS[5], "language": "fr", "consent": "yes",
            "permit_expiry": (NOW + datetime.timedelta(days=40)).date().isoformat()}
    response = client.post("/staff/p/01/register/renewal", data=form, headers=ENGLISH)
    assert response.status_code == 422
    assert "Give an email address or a mobile phone number" in response.get_data(as_text=True)
    assert store.waiting_count("01:renewal") == 0
    response = client.post("/staff/p/01/register/renewal", data=form | {"email": "aminata@example.org"},
                           headers=ENGLISH)
    assert response.status_code == 200 and store.waiting_count("01:renewal") == 1


def staff_routes(app):
    """Every staff route of one prefecture, with its parameters filled in."""
    values = {"code": "01", "site_id": "bourg", "procedure_code": "renewal", "slot_id": "x", "account_id": "x"}
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/staff/p/"):
            path = rule.rule
            for name, value in values.items():
                path = path.replace(f"<{name}>", value)
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                yield method, path


def test_an_admin_of_another_prefecture_is_refused_on_every_route(app, as_staff, store):
    store.save_schedule(schedule_for("01"))
    client = as_staff("admin69")
    token = csrf_token(client, "/staff/")
    routes = list(staff_routes(app))
    assert len(routes) >= 15
    for method, path in routes:
        response = client.open(path, method=method, data={"csrf_token": token} if method == "POST" else None)
        assert response.status_code == 403, (method, path, response.status_code)


def test_signed_out_visitors_reach_no_staff_route(app, client):
    for method, path in staff_routes(app):
        if method == "GET":
            assert client.get(path).status_code == 302, path
        else:  # no session, hence no CSRF token either: refused before anything runs
            assert client.open(path, method=method).status_code in (302, 400), path


def test_create_admin_command(settings, store):
    from click.testing import CliRunner

    from worker.cli import main

    result = CliRunner().invoke(
        main, ["create-admin", "--email", "Chief@Interieur.gouv.fr", "--name", "Chief", "--password", PASSWORD]
    )
    assert result.exit_code == 0, result.output
    assert store.staff_account_by_email("chief@interieur.gouv.fr").role is Role.NATIONAL_ADMIN
    short = CliRunner().invoke(main, ["create-admin", "--email", "x@y.fr", "--name", "X", "--password", "short"])
    assert short.exit_code == 1 and "12 characters" in short.output


def test_the_status_page_shows_the_next_draw(as_staff, client, store, mailbox, deliver_messages):
    from test_registration_web import api_person, plain_text, token_link

    store.save_schedule(schedule_for("01"))
    client.post("/api/v1/registrations", json=api_person())
    deliver_messages()
    token = token_link(plain_text(mailbox.messages[0]), "/confirm").split("t=")[1]
    status_token = client.post("/api/v1/registrations/confirm", json={"token": token}).get_json()["status_token"]
    page = client.get(f"/status?t={status_token}", headers=ENGLISH).get_data(as_text=True)
    next_draw = re.sub(r"<[^>]+>", "", re.search(r'<dd id="next-draw">(.*?)</dd>', page).group(1))  # the date is in a <bdi>
    assert "Monday" in next_draw and "10:00" in next_draw and "0 appointments" in next_draw


def test_odd_query_strings_do_not_break_staff_pages(as_staff, store):
    client = as_staff("admin01")
    publish_week(client)
    start = datetime.datetime.combine(NEXT_MONDAY, datetime.time(), datetime.timezone.utc)
    slot = store.slots("01:renewal", start, start + datetime.timedelta(days=7))[0]
    token = csrf_token(client, "/staff/p/01/slots")
    cancelled = client.post(f"/staff/p/01/slots/renewal/{slot.id}/cancel?code=69&site=bourg", data={"csrf_token": token})
    assert cancelled.status_code == 302 and cancelled.headers["Location"].startswith("/staff/p/01/slots")
    for query in ("to=9999-12-31", "from=9999-12-30", "from=0001-01-01", "from=not-a-date"):
        assert client.get(f"/staff/p/01/slots?{query}").status_code == 200, query
    admin_token, _ = accounts.new_api_token(store, store.staff_account_by_email("admin01@example.gouv.fr"), "t", NOW)
    for days in ("²", "3000000", "-1", "abc"):
        response = client.get(f"/api/v1/staff/prefectures/01/slots?days={days}",
                              headers={"Authorization": f"Bearer {admin_token}"})
        assert response.status_code == 200, days


def test_an_admin_uploads_the_agdref_numbers(as_staff, store, settings):
    from io import BytesIO

    from queue_service.registration.agdref import UploadedRecords

    client = as_staff("admin01")
    token = csrf_token(client, "/staff/p/01/agdref")
    good = client.post("/staff/p/01/agdref", data={"csrf_token": token, "file": (BytesIO(b"0123456789\n01 2345 6780\n"), "n.txt")},
                       content_type="multipart/form-data", headers=ENGLISH)
    assert good.status_code == 200 and "now holds 2 numbers" in good.get_data(as_text=True)
    assert UploadedRecords(store, settings.identity_key.encode()).is_known("01", "0123456780")
    bad = client.post("/staff/p/01/agdref", data={"csrf_token": token, "file": (BytesIO(b"0123456789\nnope\n"), "n.txt")},
                      content_type="multipart/form-data", headers=ENGLISH)
    assert bad.status_code == 422 and "Lines: 2" in bad.get_data(as_text=True)
    assert store.agdref_count("01") == 2
    agent = as_staff("agent01")
    assert agent.get("/staff/p/01/agdref").status_code == 403
