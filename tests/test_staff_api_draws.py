"""The staff API's schedules and draws: each route with its scope and only in its prefecture,
bad input refused with nothing changed, one explicit draw added to a cron schedule, a draw run
now and released, and the same results as the pages."""

import dataclasses
import datetime
from zoneinfo import ZoneInfo

import pytest
from helpers import (
    CREATED,
    DRAW_ID,
    ENGLISH,
    POOL,
    csrf_token,
    publish_slots,
    register_people,
    run_the_draw,
    sign_in,
)
from helpers import schedule as held_pool_schedule

from queue_service.draws import DrawState, Trigger
from queue_service.draws.schedules import DrawSchedule, draw_id, next_draw_times
from queue_service.staff import accounts
from queue_service.staff.accounts import Scope
from worker import clock
from worker.queues import DRAWS, queue

PARIS = ZoneInfo("Europe/Paris")
RENEWAL = "01:renewal"
BASE = "/api/v1/staff/prefectures"
SCHEDULE_BODY = {"cron": "0 10 * * MON", "cutoff_minutes": 30, "horizon_from_days": 2, "horizon_to_days": 21,
                 "confirmation_hours": 24, "aging": 0.5, "urgency_window_days": 45, "urgency_share": "0.2",
                 "constraints_apply": False, "declined_returns_to_pool": True, "expired_returns_to_pool": None}


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def local_in(days: int, time: str = "14:07") -> str:
    """A local wall time `days` from now, at a minute no weekly cron of these tests gives."""
    return f"{(now() + datetime.timedelta(days=days)).astimezone(PARIS):%Y-%m-%d} {time}"


# The cron of `weekly()`: 10:00 on the weekday three days from today in Paris, so that none of its
# draws is due, nor closes its entries, while a test runs (a Monday's did, for a suite run on a
# Monday morning).
WEEKLY_CRON = f"0 10 * * {(now() + datetime.timedelta(days=3)).astimezone(PARIS):%a}".upper()


def weekly(prefecture: str = "01", procedure: str = "renewal") -> DrawSchedule:
    return DrawSchedule(prefecture=prefecture, procedure=procedure, timezone="Europe/Paris", cron=WEEKLY_CRON,
                        created_at=now() - datetime.timedelta(days=1))


def token(store, staff, who: str = "admin01", scopes=None) -> dict:
    text, _ = accounts.new_api_token(store, staff[who], "script", now(),
                                     scopes=None if scopes is None else [scope.value for scope in scopes])
    return {"Authorization": f"Bearer {text}"} | ENGLISH


@pytest.fixture
def held_draw(store, reference_data):
    """Ain's first-request draw of helpers.DRAW_ID, held by the bias check (as tests/test_held_draws.py)."""
    store.save_schedule(held_pool_schedule())
    publish_slots(store, 4)
    register_people(store, 6, CREATED + datetime.timedelta(days=1))
    run_the_draw(store)
    store.update_draw_state(POOL, DRAW_ID, None, DrawState.PUBLISHED, {"state": "held"})
    return DRAW_ID


def routes() -> list[tuple[str, str, dict | None, Scope]]:
    return [
        ("GET", f"{BASE}/01/schedules/renewal", None, Scope.READ),
        ("PUT", f"{BASE}/01/schedules/renewal", SCHEDULE_BODY, Scope.SCHEDULES_WRITE),
        ("POST", f"{BASE}/01/schedules/renewal/draws", {"at": local_in(10)}, Scope.SCHEDULES_WRITE),
        ("POST", f"{BASE}/01/schedules/renewal/run", None, Scope.DRAWS_RUN),
        ("GET", f"{BASE}/01/draws?procedure=first_request", None, Scope.READ),
        ("GET", f"{BASE}/01/draws/{DRAW_ID}", None, Scope.READ),
        ("POST", f"{BASE}/01/draws/{DRAW_ID}/release", None, Scope.DRAWS_RUN),
    ]


def send(client, method: str, path: str, body, headers: dict):
    return client.open(path, method=method, json=body, headers=headers)


def state_of(store) -> tuple:
    return store.schedule(RENEWAL), store.draws(RENEWAL), store.draw(POOL, DRAW_ID)


def test_each_route_needs_its_scope_in_its_own_prefecture_and_then_answers(client, store, staff, held_draw):
    store.save_schedule(weekly())
    every_scope = set(Scope)
    for method, path, body, scope in routes():
        before = state_of(store)
        without = send(client, method, path, body, token(store, staff, scopes=every_scope - {scope}))
        assert without.status_code == 403, (method, path)
        assert without.content_type == "application/problem+json"
        assert without.get_json()["required_scope"] == scope.value
        elsewhere = send(client, method, path, body, token(store, staff, "admin69", scopes=[scope]))
        assert elsewhere.status_code == 403 and "required_scope" not in elsewhere.get_json(), (method, path)
        assert state_of(store) == before, (method, path)
        allowed = send(client, method, path, body, token(store, staff, scopes=[scope]))
        assert allowed.status_code in (200, 201, 202), (method, path, allowed.get_data(as_text=True))


def test_an_agent_token_reads_schedules_and_draws_but_cannot_change_them(client, store, staff, held_draw):
    store.save_schedule(weekly())
    agent = token(store, staff, "agent01")  # every scope an agent's role may hold
    assert client.get(f"{BASE}/01/schedules/renewal", headers=agent).status_code == 200
    assert client.get(f"{BASE}/01/draws/{DRAW_ID}", headers=agent).status_code == 200
    refused = client.post(f"{BASE}/01/draws/{DRAW_ID}/release", headers=agent)
    assert refused.status_code == 403 and store.draw(POOL, DRAW_ID).state is DrawState.HELD


# Schedules -------------------------------------------------------------------------------


def test_a_schedule_put_then_read_round_trips_and_matches_what_the_page_saves(app, client, store, staff):
    headers = token(store, staff, scopes=[Scope.READ, Scope.SCHEDULES_WRITE])
    body = SCHEDULE_BODY | {"dates": [local_in(9)]}
    saved = client.put(f"{BASE}/01/schedules/renewal", json=body, headers=headers)
    assert saved.status_code == 200, saved.get_data(as_text=True)
    read = client.get(f"{BASE}/01/schedules/renewal", headers=headers).get_json()
    assert read == saved.get_json()
    assert read["cron"] == "0 10 * * MON" and read["dates"] == [local_in(9)] and read["urgency_share"] == 0.2
    assert read["expired_returns_to_pool"] is True and read["constraints_apply"] is False
    assert local_in(9).replace(" ", "T").replace("-", "").replace(":", "")[:13] in {
        draw["draw_id"][-13:] for draw in read["next_draws"]}
    first = store.schedule(RENEWAL)

    again = client.put(f"{BASE}/01/schedules/renewal", json=read, headers=headers)  # GET's answer, sent back
    assert again.status_code == 200
    assert dataclasses.replace(store.schedule(RENEWAL), created_at=first.created_at) == first

    page = sign_in(app, "admin01")
    form = {name: ("on" if value else "") if isinstance(value, bool) or value is None and name.endswith("pool")
            else "\n".join(value) if isinstance(value, list) else value
            for name, value in body.items()} | {"expired_returns_to_pool": "on"}
    form["csrf_token"] = csrf_token(page, "/staff/p/01/schedules/first_request")
    assert page.post("/staff/p/01/schedules/first_request", data=form).status_code == 302
    by_page = store.schedule("01:first_request")
    assert dataclasses.replace(by_page, procedure="renewal", created_at=first.created_at) == first


def test_a_wrong_schedule_is_a_422_naming_each_field_in_the_readers_language_and_changes_nothing(
        client, store, staff):
    store.save_schedule(weekly())
    before = store.schedule(RENEWAL)
    headers = token(store, staff, scopes=[Scope.SCHEDULES_WRITE])
    for body in ({"cron": "* * * * *", "aging": -1}, {"cron": None, "dates": None}, {"dates": ["2020-01-01 10:00"]},
                 {"cron": 5}, {"cron": "0 10 * * MON", "constraints_apply": "yes"}):
        refused = client.put(f"{BASE}/01/schedules/renewal", json=body, headers=headers)
        assert refused.status_code == 422 and refused.content_type == "application/problem+json", body
        assert refused.get_json()["errors"]
    wrong = client.put(f"{BASE}/01/schedules/renewal", json={"cron": "* * * * *", "aging": -1}, headers=headers)
    assert [error["field"] for error in wrong.get_json()["errors"]] == ["cron", "aging"]
    french = client.put(f"{BASE}/01/schedules/renewal", json={"cron": "0 10 * * MON", "aging": -1},
                        headers=headers | {"Accept-Language": "fr"})
    assert french.get_json()["errors"][0]["message"] == "Indiquez un nombre entre 0 et 10."
    assert client.put(f"{BASE}/01/schedules/renewal", data="cron", headers=headers).status_code == 400
    assert store.schedule(RENEWAL) == before


def test_one_explicit_draw_added_to_a_cron_schedule_keeps_the_cron_draws(client, store, staff, redis):
    store.save_schedule(weekly())
    cron_only = store.schedule(RENEWAL)
    headers = token(store, staff, scopes=[Scope.READ, Scope.SCHEDULES_WRITE])
    added = client.post(f"{BASE}/01/schedules/renewal/draws", json={"at": local_in(10).replace(" ", "T")},
                        headers=headers)
    assert added.status_code == 201, added.get_data(as_text=True)
    assert added.headers["Location"] == f"{BASE}/01/schedules/renewal"
    moment = datetime.datetime.fromisoformat(added.get_json()["scheduled_at"])
    assert added.get_json()["draw_id"] == draw_id("01", "renewal", moment, "Europe/Paris")
    assert added.get_json()["at"] == local_in(10)

    edited = store.schedule(RENEWAL)
    assert edited.cron == WEEKLY_CRON and edited.dates == (moment,) and edited.created_at == cron_only.created_at
    coming = next_draw_times(edited, now(), 4)
    weekly_draws = next_draw_times(cron_only, now(), 3)
    assert moment in coming and set(weekly_draws) <= set(coming)
    read = client.get(f"{BASE}/01/schedules/renewal", headers=headers).get_json()
    assert added.get_json()["draw_id"] in {draw["draw_id"] for draw in read["next_draws"]}
    assert read["cron"] == WEEKLY_CRON and read["dates"] == [local_in(10)]

    for at in (local_in(-1), local_in(800), "next monday", "2027-02-30 10:00", 12, None):
        refused = client.post(f"{BASE}/01/schedules/renewal/draws", json={"at": at}, headers=headers)
        assert refused.status_code == 422 and refused.get_json()["errors"][0]["field"] == "at", at
    assert store.schedule(RENEWAL) == edited
    no_schedule = client.post(f"{BASE}/01/schedules/first_request/draws", json={"at": local_in(3)}, headers=headers)
    assert no_schedule.status_code == 404 and store.schedule("01:first_request") is None


def test_the_page_form_takes_a_cron_expression_and_dates_together(app, store, staff):
    page = sign_in(app, "admin01")
    path = "/staff/p/01/schedules/renewal"
    form = {"csrf_token": csrf_token(page, path), "cron": "0 10 * * MON", "dates": local_in(5),
            "cutoff_minutes": "60", "horizon_from_days": "0", "horizon_to_days": "28", "confirmation_hours": "48",
            "aging": "0", "urgency_window_days": "60", "urgency_share": "0.1", "constraints_apply": "on"}
    assert page.post(path, data=form).status_code == 302
    saved = store.schedule(RENEWAL)
    assert saved.cron == "0 10 * * MON" and len(saved.dates) == 1
    shown = page.get(path, headers=ENGLISH).get_data(as_text=True)
    assert local_in(5) in shown  # in the next draws and in the form's dates


# Draws -------------------------------------------------------------------------------------


def run_now_draws(store) -> list:
    """The pool's draws run now (a clock's tick also announces the next scheduled one)."""
    return [found for found in store.draws(RENEWAL) if found.trigger is Trigger.ADMIN]


def test_run_now_announces_a_draw_queues_its_job_once_entries_close_and_runs_once_per_idempotency_key(client, store, staff, redis):
    store.save_schedule(weekly())
    headers = token(store, staff, scopes=[Scope.READ, Scope.DRAWS_RUN]) | {"Idempotency-Key": "run-1"}
    first = client.post(f"{BASE}/01/schedules/renewal/run", headers=headers)
    assert first.status_code == 202, first.get_data(as_text=True)
    started = first.get_json()
    assert started["started"] is True and first.headers["Location"] == started["url"]
    (created,) = store.draws(RENEWAL)
    assert created.draw_id == started["draw_id"] and created.trigger is Trigger.ADMIN
    # The commitment first: announced at once, its entries closing later; the job waits for them.
    assert started["commitment"] == created.commitment and started["state"] == "scheduled"
    assert started["entries_close_at"] == created.cutoff_at.isoformat() and not created.announced_late
    assert created.cutoff_at - created.announced_at == datetime.timedelta(seconds=60)
    assert queue(DRAWS, redis).job_ids == []
    assert clock.reconcile_draws(redis, store, created.cutoff_at) == [created.draw_id]
    assert queue(DRAWS, redis).job_ids == [f"draw-{created.draw_id}"]

    replayed = client.post(f"{BASE}/01/schedules/renewal/run", headers=headers)
    assert replayed.status_code == 202 and replayed.headers["Idempotent-Replayed"] == "true"
    assert replayed.get_json() == started
    assert len(run_now_draws(store)) == 1 and len(queue(DRAWS, redis)) == 1

    read = client.get(first.headers["Location"], headers=headers).get_json()
    assert read["draw_id"] == created.draw_id and read["trigger"] == "admin" and read["bias"] is None


def test_run_now_names_its_draw_by_the_minute_so_the_same_minute_twice_runs_once(client, store, staff, redis):
    store.save_schedule(weekly())
    headers = token(store, staff, scopes=[Scope.DRAWS_RUN])
    minute = (now() - datetime.timedelta(minutes=2)).astimezone(PARIS).replace(second=0, microsecond=0)
    local = minute.replace(tzinfo=None).isoformat()  # without an offset: the prefecture's clock
    first = client.post(f"{BASE}/01/schedules/renewal/run", json={"at": local}, headers=headers)
    second = client.post(f"{BASE}/01/schedules/renewal/run", json={"at": minute.isoformat()}, headers=headers)
    assert first.status_code == second.status_code == 202
    assert first.get_json()["draw_id"] == second.get_json()["draw_id"] == draw_id("01", "renewal", minute,
                                                                                  "Europe/Paris")
    assert (first.get_json()["started"], second.get_json()["started"]) == (True, False)
    assert len(store.draws(RENEWAL)) == 1
    clock.reconcile_draws(redis, store, store.draws(RENEWAL)[0].cutoff_at)
    assert len(queue(DRAWS, redis)) == 1

    for at, status in (("2020-01-06T09:00:00+00:00", 409), ("soon", 422), (7, 422)):
        refused = client.post(f"{BASE}/01/schedules/renewal/run", json={"at": at}, headers=headers)
        assert refused.status_code == status and refused.content_type == "application/problem+json", at
    no_schedule = client.post(f"{BASE}/01/schedules/first_request/run", headers=headers)
    assert no_schedule.status_code == 409 and store.draws("01:first_request") == []
    assert len(run_now_draws(store)) == 1 and len(queue(DRAWS, redis)) == 1


def test_a_held_draw_read_with_its_bias_check_then_released_once(client, store, staff, held_draw):
    headers = token(store, staff, scopes=[Scope.READ, Scope.DRAWS_RUN])
    read = client.get(f"{BASE}/01/draws/{DRAW_ID}", headers=headers).get_json()
    assert read["state"] == "held" and read["state_label"] == "Held for review"
    assert read["held_reason"].startswith(f"Draw {DRAW_ID} is held")
    assert read["bias"] == [dict(test) for test in store.draw(POOL, DRAW_ID).bias_check] and read["bias"]
    assert read["entrants"] == 6 and read["slots"] == 4 and read["commitment"] and "seed" not in read
    french = client.get(f"{BASE}/01/draws/{DRAW_ID}", headers=headers | {"Accept-Language": "fr"}).get_json()
    assert french["state_label"] != "Held for review" and DRAW_ID in french["held_reason"]

    released = client.post(f"{BASE}/01/draws/{DRAW_ID}/release", headers=headers)
    assert released.status_code == 200 and released.get_json()["state"] == "published"
    assert released.get_json()["held_reason"] is None
    assert store.draw(POOL, DRAW_ID).released_by == staff["admin01"].id
    again = client.post(f"{BASE}/01/draws/{DRAW_ID}/release", headers=headers)
    assert again.status_code == 409 and again.content_type == "application/problem+json"


def test_a_draw_is_found_only_in_its_own_prefecture(client, store, staff, held_draw):
    national = token(store, staff, "national")
    assert client.get(f"{BASE}/01/draws/{DRAW_ID}", headers=national).status_code == 200
    for path in (f"{BASE}/69/draws/{DRAW_ID}", f"{BASE}/01/draws/not-a-draw", f"{BASE}/01/draws/01-renewal-20270104T1000"):
        assert client.get(path, headers=national).status_code == 404, path
    assert client.post(f"{BASE}/69/draws/{DRAW_ID}/release", headers=national).status_code == 404
    assert store.draw(POOL, DRAW_ID).state is DrawState.HELD


def test_draws_are_listed_by_procedure_and_state(client, store, staff, held_draw):
    store.save_schedule(weekly())
    headers = token(store, staff, scopes=[Scope.READ, Scope.DRAWS_RUN])
    run = client.post(f"{BASE}/01/schedules/renewal/run", headers=headers).get_json()
    everything = client.get(f"{BASE}/01/draws", headers=headers).get_json()["items"]
    assert {item["draw_id"] for item in everything} == {DRAW_ID, run["draw_id"]}
    held = client.get(f"{BASE}/01/draws?state=held", headers=headers).get_json()["items"]
    assert [(item["draw_id"], item["state"]) for item in held] == [(DRAW_ID, "held")]
    renewal = client.get(f"{BASE}/01/draws?procedure=renewal", headers=headers).get_json()["items"]
    assert [item["draw_id"] for item in renewal] == [run["draw_id"]]
    assert client.get(f"{BASE}/01/draws?state=lost", headers=headers).status_code == 422
    assert client.get(f"{BASE}/01/draws?procedure=nope", headers=headers).status_code == 404


def test_the_page_and_the_api_release_and_run_alike(app, client, store, staff, held_draw, redis):
    """The same actions through the page and the API leave the same records."""
    page = sign_in(app, "admin01")
    path = "/staff/p/01/schedules/first_request"
    answer = page.post(f"{path}/draws/{DRAW_ID}/release", data={"csrf_token": csrf_token(page, path)})
    assert answer.status_code == 302
    by_page = store.draw(POOL, DRAW_ID)
    api = client.get(f"{BASE}/01/draws/{DRAW_ID}", headers=token(store, staff, scopes=[Scope.READ])).get_json()
    assert api["state"] == by_page.state.value == "published" and api["released_by"] == staff["admin01"].id

    store.save_schedule(weekly())
    run_path = "/staff/p/01/schedules/renewal/run"
    at = (now() - datetime.timedelta(minutes=3)).replace(second=0, microsecond=0)
    assert page.post(run_path, data={"csrf_token": csrf_token(page, run_path), "at": at.isoformat()}).status_code == 302
    headers = token(store, staff, scopes=[Scope.DRAWS_RUN])
    by_api = client.post(f"{BASE}/01/schedules/renewal/run", json={"at": at.isoformat()}, headers=headers).get_json()
    assert by_api["started"] is False  # the page's draw of that minute: the same draw, run once
    (created,) = store.draws(RENEWAL)
    clock.reconcile_draws(redis, store, created.cutoff_at)
    assert created.draw_id == by_api["draw_id"] and queue(DRAWS, redis).job_ids == [f"draw-{created.draw_id}"]
