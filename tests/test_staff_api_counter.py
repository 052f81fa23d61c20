"""The staff API's counter, messages, assisted registrations and tokens, side by side with the
pages that do the same (web/staff.py): the same domain calls, the same permissions."""

import datetime
import re
from urllib.parse import urlsplit

import pytest
from helpers import (
    DRAW_AT,
    ENGLISH,
    PARIS,
    POOL,
    TIMING,
    api_person,
    csrf_token,
    fail_every_delivery,
    key_of,
    register_people,
    sign_in,
)

from queue_service import draws, offers
from queue_service.draws.schedules import DrawPolicy, DrawSchedule
from queue_service.errors import InvalidTransition
from queue_service.inventory.slots import Slot
from queue_service.offers import OfferStatus
from queue_service.reference import DEMO_AGDREF_NUMBERS
from queue_service.staff import accounts
from queue_service.staff.accounts import Scope
from worker import jobs

BASE = "/api/v1/staff"


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def token_of(store, account, scopes=None, **options) -> dict:
    """The Authorization header of a new token of `account` with `scopes` (None: all its role's)."""
    text, _ = accounts.new_api_token(store, account, "test", now(), scopes=scopes, **options)
    return {"Authorization": f"Bearer {text}"} | ENGLISH


def refused_for_scope(response, scope: Scope) -> bool:
    return response.status_code == 403 and response.get_json()["required_scope"] == scope.value


# The counter: a no-show ----------------------------------------------------------------------


@pytest.fixture
def bookings(store, reference_data, settings):
    """Two bookings of Ain's first-request pool on the real clock, from a draw ten days ago: one whose
    slot started ten minutes ago (the person has not come), one in three days. Returns
    {"started": (key, code), "coming": (key, code)}."""
    moment = now()
    # Midnight in Paris ten days ago: the people registered a minute later enter that day's draw
    # at 10:00 whatever the hour the test runs (from 09:00, its entries would have closed).
    created = datetime.datetime.combine((moment - datetime.timedelta(days=10)).astimezone(PARIS).date(),
                                        datetime.time(0), PARIS).astimezone(datetime.timezone.utc)
    schedule = DrawSchedule(prefecture="01", procedure="first_request", timezone="Europe/Paris", cron="0 10 * * *",
                            horizon_from_days=1, horizon_to_days=20, created_at=created,
                            policy=DrawPolicy(constraints_apply=False))  # a slot on any day, weekends too
    store.save_schedule(schedule)
    starts = {"started": moment - datetime.timedelta(minutes=10), "coming": moment + datetime.timedelta(days=3)}
    store.add_slots([Slot(id=f"gex-first_request-{name}", prefecture="01", site="gex", procedure="first_request",
                          starts_at=start.replace(microsecond=0), duration_minutes=30, counter=1)
                     for name, start in starts.items()])
    register_people(store, 4, created + datetime.timedelta(minutes=1))
    due = draws.due_draws(schedule, None, created + datetime.timedelta(days=1))[0]
    draws.announce(store, schedule, due, due.scheduled_at - datetime.timedelta(hours=20))
    assert draws.run(store, POOL, due.draw_id, due.scheduled_at, TIMING) is draws.DrawState.PUBLISHED
    found = {}
    for registration_id, offer in store.offers(POOL).items():
        booked = offers.confirm(store, key_of(registration_id), settings.identity_key.encode(),
                                due.scheduled_at + datetime.timedelta(hours=1))
        found[offer.slot_id.rsplit("-", 1)[1]] = (key_of(registration_id), offers.display_code(booked.booking_code))
    assert set(found) == {"started", "coming"}
    return found


def test_a_no_show_is_marked_once_the_slot_started_like_the_job_marks_it_with_the_agent(drawn, settings, staff):
    store, _, _ = drawn
    manual, automatic = sorted(store.offers(POOL))[:2]
    for registration_id in (manual, automatic):
        offers.confirm(store, key_of(registration_id), settings.identity_key.encode(), DRAW_AT + datetime.timedelta(hours=1))
    slot = store.slot(POOL, store.offer(key_of(manual)).slot_id)
    with pytest.raises(InvalidTransition, match="not started yet"):
        offers.mark_no_show(store, key_of(manual), slot.starts_at - datetime.timedelta(seconds=1), agent="x")
    assert store.registration(key_of(manual)).status.value == "confirmed"
    offers.mark_no_show(store, key_of(manual), slot.starts_at, agent=staff["agent01"].id)
    assert store.registration(key_of(manual)).status.value == "no_show"
    assert store.offer(key_of(manual)).status is OfferStatus.NO_SHOW
    with pytest.raises(InvalidTransition, match="not waiting for check-in"):
        offers.mark_no_show(store, key_of(manual), slot.starts_at, agent=staff["agent01"].id)
    # The job marks the other one: the same event (the agent's names who) and the same count.
    late = store.slot(POOL, store.offer(key_of(automatic)).slot_id).ends_at + datetime.timedelta(hours=1)
    assert offers.mark_no_shows(store, POOL, TIMING, late) == 1
    by_hand, by_job = ([event for event in store.history(key_of(rid)) if event["kind"] == "no_show"]
                       for rid in (manual, automatic))
    assert by_hand[0]["detail"]["by"] == staff["agent01"].id and "by" not in by_job[0]["detail"]
    assert store.stats_totals([POOL])[POOL]["no_show"] == 2


def test_an_agent_marks_a_no_show_on_the_counter_page_once_the_appointment_started(bookings, app, store, staff):
    agent = sign_in(app, "agent01")
    coming_key, coming = bookings["coming"]
    page = agent.get(f"/staff/p/01/check-in?code={coming}", headers=ENGLISH).get_data(as_text=True)
    assert "mark-attended" in page and "mark-no-show" not in page  # not before the appointment
    early = agent.post("/staff/p/01/check-in", data={"code": coming, "action": "no_show", "csrf_token": csrf_token(
        agent, "/staff/p/01/check-in")}, headers=ENGLISH)
    assert early.status_code == 409 and "not started yet" in early.get_data(as_text=True)
    assert store.registration(coming_key).status.value == "confirmed"

    started_key, started = bookings["started"]
    page = agent.get(f"/staff/p/01/check-in?code={started}", headers=ENGLISH).get_data(as_text=True)
    assert "mark-no-show" in page
    done = agent.post("/staff/p/01/check-in", data={"code": started, "action": "no_show", "csrf_token": csrf_token(
        agent, "/staff/p/01/check-in")}, headers=ENGLISH)
    assert done.status_code == 200 and "Marked as a no-show" in done.get_data(as_text=True)
    assert store.registration(started_key).status.value == "no_show"
    (event,) = [event for event in store.history(started_key) if event["kind"] == "no_show"]
    assert event["detail"]["by"] == staff["agent01"].id


def test_a_scanner_marks_a_no_show_through_the_api_with_the_same_rule(bookings, client, store, staff):
    scanner = token_of(store, staff["agent01"], ["counter:check-in"])
    coming_key, coming = bookings["coming"]
    early = client.post(f"{BASE}/prefectures/01/bookings/{coming}/no-show", headers=scanner)
    assert early.status_code == 409 and early.mimetype == "application/problem+json"
    assert "not started yet" in early.get_json()["detail"] and store.registration(coming_key).status.value == "confirmed"
    french = client.post(f"{BASE}/prefectures/01/bookings/{coming}/no-show", headers=scanner | {"Accept-Language": "fr"})
    assert french.status_code == 409 and "pas encore commencé" in french.get_json()["detail"]

    started_key, started = bookings["started"]
    reader = token_of(store, staff["agent01"], ["read"])
    assert refused_for_scope(client.post(f"{BASE}/prefectures/01/bookings/{started}/no-show", headers=reader),
                             Scope.COUNTER_CHECK_IN)
    other = token_of(store, staff["admin69"])
    assert client.post(f"{BASE}/prefectures/01/bookings/{started}/no-show", headers=other).status_code == 403
    assert store.registration(started_key).status.value == "confirmed"

    done = client.post(f"{BASE}/prefectures/01/bookings/{started}/no-show", headers=scanner)
    assert done.status_code == 200 and done.get_json()["status"] == "no_show"
    (event,) = [event for event in store.history(started_key) if event["kind"] == "no_show"]
    assert event["detail"]["by"] == staff["agent01"].id
    again = client.post(f"{BASE}/prefectures/01/bookings/{started}/no-show", headers=scanner)
    assert again.status_code == 409
    assert client.post(f"{BASE}/prefectures/01/bookings/ZZZZZ-ZZZZZ/no-show", headers=scanner).status_code == 404


# Messages not delivered ------------------------------------------------------------------------


@pytest.fixture
def undelivered(drawn, redis, run_jobs, monkeypatch, settings):
    """The ten offers' emails of the `drawn` pool refused by a mail server away, their tries over."""
    store, _, _ = drawn
    fail_every_delivery(store, redis, run_jobs, monkeypatch, settings)
    return store


def test_undelivered_messages_are_listed_and_sent_again_through_the_api_as_on_the_page(
        undelivered, make_app, staff, redis, run_jobs, mailbox):
    store = undelivered
    client = make_app().test_client()
    reader = token_of(store, staff["agent01"], ["read"])
    listed = client.get(f"{BASE}/prefectures/01/messages?state=undelivered", headers=reader)
    assert listed.status_code == 200
    messages = [message for message in listed.get_json() if message["channel"] == "email"]
    assert len(messages) == 10 and all(message["can_retry"] and message["procedure"] == "first_request"
                                       for message in messages)
    assert "message" not in messages[0]  # the content (the applicant's data) is never shown
    bad_state = client.get(f"{BASE}/prefectures/01/messages?state=sent", headers=reader)
    assert bad_state.status_code == 422 and bad_state.get_json()["errors"][0]["field"] == "state"

    chosen = messages[0]
    assert refused_for_scope(client.post(chosen["retry"], headers=reader), Scope.MESSAGES_RETRY)
    assert client.post(chosen["retry"], headers=token_of(store, staff["admin69"])).status_code == 403
    admin = token_of(store, staff["admin01"], ["messages:retry"])
    unknown = client.post(f"{BASE}/prefectures/01/messages/first_request/nothing:here/email/retry", headers=admin)
    assert unknown.status_code == 404
    assert client.post(chosen["retry"].replace("/email/", "/fax/"), headers=admin).status_code == 404
    assert store.outbox_length(POOL) == 0  # nothing refused went anywhere

    done = client.post(chosen["retry"], headers=admin)
    assert done.status_code == 200 and done.get_json()["retried_by"] == staff["admin01"].id
    jobs.dispatch_pool(redis, store, POOL)
    run_jobs()
    assert len(mailbox.messages) == 1
    assert store.delivery(POOL, chosen["message_id"], "email")["status"] == "sent"
    assert client.post(chosen["retry"], headers=admin).status_code == 409  # delivered: not again
    # The page lists the same messages, one fewer now.
    page = sign_in(make_app(), "admin01").get("/staff/p/01/deliveries", headers=ENGLISH).get_data(as_text=True)
    remaining = client.get(f"{BASE}/prefectures/01/messages", headers=reader).get_json()
    assert page.count("Send again") == len(remaining) == 9


# Assisted registration -------------------------------------------------------------------------


def assisted_body(**changes) -> dict:
    """The public API's body without its prefecture (the address names it), with `changes`."""
    return {name: value for name, value in api_person().items() if name != "prefecture"} | changes


def test_an_agent_registers_a_person_through_the_api_once_per_idempotency_key(make_app, reference_data, store,
                                                                                 staff):
    # The public registration's limits are one a minute here: the counter's are not counted in them.
    client = make_app(rate_limit_registration="1 per minute", rate_limit_registration_email="1 per minute",
                      rate_limit_registration_unproven="1 per minute").test_client()
    agent = token_of(store, staff["agent01"], ["registrations:write"])
    key = {"Idempotency-Key": "counter-7-0001"}
    first = client.post(f"{BASE}/prefectures/01/registrations", json=assisted_body(), headers=agent | key)
    assert first.status_code == 201, first.get_data(as_text=True)
    answer = first.get_json()
    assert re.fullmatch(r"01R-\w+", answer["ref"]) and "/status?t=" in answer["status_link"]
    assert first.headers["Location"] == answer["status_link"]
    again = client.post(f"{BASE}/prefectures/01/registrations", json=assisted_body(), headers=agent | key)
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json() == answer
    waiting = client.get(f"{BASE}/prefectures/01/registrations", headers=token_of(store, staff["agent01"], ["read"]))
    assert waiting.get_json()["renewal"]["waiting"] == 1  # one registration, not two
    link = urlsplit(answer["status_link"])
    status = client.get(f"{link.path}?{link.query}", headers=ENGLISH)
    assert status.status_code == 200 and answer["ref"] in status.get_data(as_text=True)

    # Another person, without an email (optional at the counter), past the public limits.
    second = client.post(f"{BASE}/prefectures/01/registrations", headers=agent, json=assisted_body(
        family_name="Haddad", given_names="Karim", agdref=DEMO_AGDREF_NUMBERS[5], email=None, phone="+33612000002"))
    assert second.status_code == 201, second.get_data(as_text=True)


def test_assisted_registration_through_the_api_checks_like_the_public_api_and_changes_nothing(
        client, store, staff):
    from helpers import all_keys

    agent = token_of(store, staff["agent01"], ["registrations:write"])
    reader, other = token_of(store, staff["agent01"], ["read"]), token_of(store, staff["admin69"])
    before = all_keys(store)
    wrong = client.post(f"{BASE}/prefectures/01/registrations", headers=agent,
                        json=assisted_body(birth_date="31/02/1990", nationality="FR"))
    assert wrong.status_code == 422 and wrong.mimetype == "application/problem+json"
    assert {error["field"] for error in wrong.get_json()["errors"]} >= {"birth_date", "nationality"}
    french = client.post(f"{BASE}/prefectures/01/registrations", json=assisted_body(consent=False),
                         headers=agent | {"Accept-Language": "fr"})
    assert french.status_code == 422 and "protection des données" in french.get_json()["errors"][0]["message"]
    for body in ({"procedure": 5}, assisted_body(prefecture="69"), assisted_body(sites="gex"), ["a list"]):
        assert client.post(f"{BASE}/prefectures/01/registrations", json=body, headers=agent).status_code == 422
    assert client.post(f"{BASE}/prefectures/01/registrations", json=assisted_body(procedure="nope"),
                       headers=agent).status_code == 404
    assert refused_for_scope(client.post(f"{BASE}/prefectures/01/registrations", json=assisted_body(),
                                         headers=reader), Scope.REGISTRATIONS_WRITE)
    assert client.post(f"{BASE}/prefectures/01/registrations", json=assisted_body(),
                       headers=other).status_code == 403
    assert all_keys(store) == before


# Tokens ----------------------------------------------------------------------------------------


def test_a_token_creates_narrower_tokens_lists_and_revokes_them_never_wider(client, store, staff):
    admin = token_of(store, staff["admin01"], ["tokens:write", "counter:check-in", "read"])
    made = client.post(f"{BASE}/tokens", json={"label": "scanner", "scopes": ["counter:check-in"]},
                       headers=admin | {"Idempotency-Key": "t-1"})
    assert made.status_code == 201
    scanner = made.get_json()
    assert scanner["scopes"] == ["counter:check-in"] and scanner["prefecture"] == "01"
    assert scanner["token"].startswith("qst_")
    replay = client.post(f"{BASE}/tokens", json={"label": "scanner", "scopes": ["counter:check-in"]},
                         headers=admin | {"Idempotency-Key": "t-1"})
    assert replay.status_code == 201 and replay.headers["Idempotent-Replayed"] == "true"
    assert replay.get_json() == scanner | {"token": None}  # the text is shown once, never kept
    assert scanner["token"] not in str([store.redis.dump(key) for key in store.redis.keys("*")])

    listed = client.get(f"{BASE}/tokens", headers=admin).get_json()
    assert len(listed) == 2 and all("token" not in token for token in listed)
    assert [token["id"] for token in listed if not token["current"]] == [scanner["id"]]

    # The scanner can check in, and nothing more: not read, not create tokens.
    bearer = {"Authorization": f"Bearer {scanner['token']}"} | ENGLISH
    assert refused_for_scope(client.get(f"{BASE}/prefectures/01/sites", headers=bearer), Scope.READ)
    assert refused_for_scope(client.post(f"{BASE}/tokens", json={"label": "x"}, headers=bearer), Scope.TOKENS_WRITE)
    # The admin's token cannot make one wider than itself, nor for another prefecture.
    wider = client.post(f"{BASE}/tokens", json={"label": "wider", "scopes": ["slots:write"]}, headers=admin)
    assert wider.status_code == 422 and wider.get_json()["errors"][0]["field"] == "scopes"
    assert client.post(f"{BASE}/tokens", json={"label": "lyon", "prefecture": "69"}, headers=admin).status_code == 403
    for body in ({"label": ""}, {"label": "x", "scopes": []}, {"label": "x", "scopes": ["everything"]},
                 {"label": "x", "scopes": "read"}, {"label": 5}, {"label": "x", "prefecture": "00"}):
        refused = client.post(f"{BASE}/tokens", json=body, headers=admin)
        assert refused.status_code == 422 and refused.mimetype == "application/problem+json", body
    assert len(client.get(f"{BASE}/tokens", headers=admin).get_json()) == 2  # nothing was created

    assert client.delete(f"{BASE}/tokens/{scanner['id']}", headers=admin).status_code == 204
    assert client.get(f"{BASE}/prefectures/01/bookings/ZZZZZ-ZZZZZ", headers=bearer).status_code == 401
    assert client.delete(f"{BASE}/tokens/{scanner['id']}", headers=admin).status_code == 404
    # Another account's token cannot be revoked (it is not among this account's).
    other_text, other = accounts.new_api_token(store, staff["admin69"], "lyon", now())
    assert client.delete(f"{BASE}/tokens/{other.id}", headers=admin).status_code == 404
    # Without the scope, or an agent (whose role cannot manage): refused.
    assert refused_for_scope(client.get(f"{BASE}/tokens", headers=token_of(store, staff["admin01"], ["read"])),
                             Scope.TOKENS_WRITE)
    assert client.get(f"{BASE}/tokens", headers=token_of(store, staff["agent01"])).status_code == 403


def test_a_national_admin_token_makes_a_token_for_one_prefecture(client, store, staff):
    national = token_of(store, staff["national"])
    made = client.post(f"{BASE}/tokens", json={"label": "Ain", "scopes": ["read"], "prefecture": "01"},
                       headers=national)
    assert made.status_code == 201 and made.get_json()["prefecture"] == "01"
    bearer = {"Authorization": f"Bearer {made.get_json()['token']}"}
    assert client.get(f"{BASE}/prefectures/01/sites", headers=bearer).status_code == 200
    assert client.get(f"{BASE}/prefectures/69/sites", headers=bearer).status_code == 403


def test_the_token_page_gives_the_scopes_ticked_and_a_national_admin_a_prefecture(app, store, staff):
    agent = sign_in(app, "agent01")
    page = agent.get("/staff/tokens", headers=ENGLISH).get_data(as_text=True)
    offered = re.findall(r'name="scopes" value="([^"]+)" checked', page)
    assert offered == ["read", "counter:check-in", "registrations:write"]  # the agent's role's, all ticked
    assert "Counter: look up a booking code" in page and 'name="prefecture"' not in page
    french = agent.get("/staff/tokens", headers={"Accept-Language": "fr"}).get_data(as_text=True)
    assert "Guichet" in french
    token = csrf_token(agent, "/staff/tokens")
    made = agent.post("/staff/tokens", data={"csrf_token": token, "label": "scanner", "scopes_shown": "1",
                                             "scopes": ["counter:check-in"]}, headers=ENGLISH)
    assert made.status_code == 200
    (made_token,) = [token for _, token in store.api_tokens(staff["agent01"].id)]
    assert made_token.scopes == {Scope.COUNTER_CHECK_IN} and made_token.prefecture == "01"
    # An agent cannot give a token slots:write; none ticked is refused too: nothing created.
    for scopes in (["slots:write"], []):
        refused = agent.post("/staff/tokens", data={"csrf_token": token, "label": "more", "scopes_shown": "1",
                                                    "scopes": scopes}, headers=ENGLISH)
        assert refused.status_code == 422 and 'id="error-summary"' in refused.get_data(as_text=True)
    assert len(store.api_tokens(staff["agent01"].id)) == 1

    national = sign_in(app, "national")
    page = national.get("/staff/tokens", headers=ENGLISH).get_data(as_text=True)
    assert 'name="prefecture"' in page and len(re.findall(r'name="scopes" value="[^"]+" checked', page)) == len(Scope)
    token = csrf_token(national, "/staff/tokens")
    made = national.post("/staff/tokens", data={"csrf_token": token, "label": "Ain", "scopes_shown": "1",
                                                "scopes": ["read"], "prefecture": "01"}, headers=ENGLISH)
    assert made.status_code == 200
    (made_token,) = [token for _, token in store.api_tokens(staff["national"].id)]
    assert made_token.prefecture == "01" and made_token.scopes == {Scope.READ}
    unknown = national.post("/staff/tokens", data={"csrf_token": token, "label": "x", "prefecture": "00"},
                            headers=ENGLISH)
    assert unknown.status_code == 422
