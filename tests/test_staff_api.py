"""The staff API's common ground: scoped tokens, idempotency keys, the OpenAPI description of
every staff route. (Each domain's routes have their own test file.)"""

import concurrent.futures
import datetime

import requests
from helpers import first_offer

from queue_service import offers
from queue_service.staff import accounts
from queue_service.staff.accounts import Role, Scope
from web.openapi import openapi_document

NOW = datetime.datetime.now(datetime.timezone.utc)
FRENCH = {"Accept-Language": "fr"}


def bearer(text: str, **headers) -> dict:
    return {"Authorization": f"Bearer {text}", **headers}


def booked(store, settings) -> tuple[object, str]:
    """A confirmed booking of the test draw: its registration key and its code as printed."""
    key, _ = first_offer(store)
    booking = offers.confirm(store, key, settings.identity_key.encode(), NOW)
    return key, offers.display_code(booking.booking_code)


# Scopes -----------------------------------------------------------------------------------


def test_a_token_does_what_its_scopes_say_and_a_missing_scope_is_named(client, store, staff):
    reader, _ = accounts.new_api_token(store, staff["admin01"], "dashboard", NOW, scopes=["read"])
    assert client.get("/api/v1/staff/prefectures/01/sites", headers=bearer(reader)).status_code == 200
    refused = client.post("/api/v1/staff/prefectures/01/bookings/ABCDE-FGHIJ/check-in", json={},
                          headers=bearer(reader, **FRENCH))
    assert refused.status_code == 403 and refused.mimetype == "application/problem+json"
    problem = refused.get_json()
    assert problem["required_scope"] == "counter:check-in" and problem["code"] == "missing-scope"
    assert "jeton" in problem["title"]  # in the reader's language


def test_a_token_never_does_more_than_its_account(client, store, staff):
    agent = staff["agent01"]
    try:
        accounts.new_api_token(store, agent, "too wide", NOW, scopes=["slots:write"])
    except accounts.ValidationFailed as refusal:
        assert set(refusal.errors) == {"scopes"}
    else:
        raise AssertionError("an agent gave a token a scope the agent does not have")
    assert store.api_tokens(agent.id) == []

    # A token made from a narrower token is no wider than it.
    _, narrow = accounts.new_api_token(store, staff["admin01"], "counter", NOW, scopes=["counter:check-in"])
    narrow_principal = accounts.Principal(staff["admin01"].id, Role.PREFECTURE_ADMIN, "01",
                                          scopes=narrow.scopes, token_id=narrow.id)
    try:
        accounts.new_api_token(store, staff["admin01"], "copy", NOW, scopes=["read"], creator=narrow_principal)
    except accounts.ValidationFailed as refusal:
        assert set(refusal.errors) == {"scopes"}
    else:
        raise AssertionError("a token gave a new token a scope it does not have")
    _, copy = accounts.new_api_token(store, staff["admin01"], "copy", NOW, creator=narrow_principal)
    assert copy.scopes == {Scope.COUNTER_CHECK_IN}  # no scopes asked: the creating token's own, no more
    # A token stops working with its account.
    text, _ = accounts.new_api_token(store, staff["admin01"], "all", NOW)
    assert accounts.token_principal(store, text).scopes == accounts.role_scopes(Role.PREFECTURE_ADMIN)
    store.set_staff_account_active(staff["admin01"].id, False)
    assert client.get("/api/v1/staff/prefectures/01/sites", headers=bearer(text)).status_code == 401


def test_a_prefecture_token_cannot_act_for_another_prefecture(client, store, staff):
    try:
        accounts.new_api_token(store, staff["admin01"], "script", NOW, prefecture="69")
    except accounts.NotAllowed:
        assert store.api_tokens(staff["admin01"].id) == []
    else:
        raise AssertionError("Ain's admin made a token for Rhône")
    text, token = accounts.new_api_token(store, staff["admin01"], "script", NOW)
    assert token.prefecture == "01"
    assert client.get("/api/v1/staff/prefectures/69/sites", headers=bearer(text)).status_code == 403
    national, token = accounts.new_api_token(store, staff["national"], "lyon", NOW, prefecture="69")
    assert token.prefecture == "69"  # a national admin narrows its token to one prefecture
    assert client.get("/api/v1/staff/prefectures/69/sites", headers=bearer(national)).status_code == 200
    assert client.get("/api/v1/staff/prefectures/01/sites", headers=bearer(national)).status_code == 403


# Idempotency keys -------------------------------------------------------------------------


def test_twenty_identical_requests_at_once_with_one_key_act_once_and_get_one_answer(
        drawn, live_server, staff, settings):
    store, _, _ = drawn
    key, code = booked(store, settings)
    slot = store.slot(key.pool, store.offer(key).slot_id)
    text, _ = accounts.new_api_token(store, staff["agent01"], "scanner", NOW, scopes=["counter:check-in"])
    url = f"{live_server}/api/v1/staff/prefectures/01/bookings/{code}/check-in"
    body = {"site": slot.site, "override": True}  # the test's slot is not today
    headers = bearer(text, **{"Idempotency-Key": "check-in-1"})

    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(lambda _: requests.post(url, json=body, headers=headers, timeout=30), range(20)))

    assert [answer.status_code for answer in answers] == [200] * 20
    assert len({answer.text for answer in answers}) == 1
    assert sum(answer.headers.get("Idempotent-Replayed") == "true" for answer in answers) == 19
    assert [event["kind"] for event in store.history(key)].count("attended") == 1

    # The same key with another request is refused; another key is another request.
    other = requests.post(url, json={"site": slot.site, "override": False}, headers=headers, timeout=30)
    assert other.status_code == 422 and other.json()["code"] == "idempotency-key-reused"
    again = requests.post(url, json=body, headers=bearer(text, **{"Idempotency-Key": "check-in-2"}), timeout=30)
    assert again.status_code == 409  # checked in already: the second check-in is refused
    assert [event["kind"] for event in store.history(key)].count("attended") == 1


def test_a_refused_request_keeps_no_answer_so_its_key_can_be_sent_again(drawn, client, staff, settings):
    store, _, _ = drawn
    key, code = booked(store, settings)
    slot = store.slot(key.pool, store.offer(key).slot_id)
    text, _ = accounts.new_api_token(store, staff["agent01"], "scanner", NOW, scopes=["counter:check-in"])
    url = f"/api/v1/staff/prefectures/01/bookings/{code}/check-in"
    headers = bearer(text, **{"Idempotency-Key": "k"})
    assert client.post(url, json={"site": slot.site}, headers=headers).status_code == 409  # not today
    assert client.post(url, json={"site": slot.site}, headers=headers).status_code == 409  # tried again, not replayed
    done = client.post(url, json={"site": slot.site, "override": True}, headers=headers)
    assert done.status_code == 200 and "Idempotent-Replayed" not in done.headers


def test_keys_that_are_not_printable_ascii_or_too_long_are_refused(client, store, staff):
    text, _ = accounts.new_api_token(store, staff["agent01"], "scanner", NOW)
    url = "/api/v1/staff/prefectures/01/bookings/ABCDE-FGHIJ/check-in"
    for key in ("x" * 256, "tab\there"):
        refused = client.post(url, json={}, headers=bearer(text, **{"Idempotency-Key": key, **FRENCH}))
        assert refused.status_code == 400 and refused.mimetype == "application/problem+json"
        assert "Idempotency-Key" in refused.get_json()["detail"]


def test_keys_belong_to_their_account(drawn, client, staff, settings):
    """Another account's request with the same key is its own request, not a replay."""
    store, _, _ = drawn
    key, code = booked(store, settings)
    slot = store.slot(key.pool, store.offer(key).slot_id)
    url = f"/api/v1/staff/prefectures/01/bookings/{code}/check-in"
    body = {"site": slot.site, "override": True}
    agent, _ = accounts.new_api_token(store, staff["agent01"], "scanner", NOW)
    admin, _ = accounts.new_api_token(store, staff["admin01"], "scanner", NOW)
    assert client.post(url, json=body, headers=bearer(agent, **{"Idempotency-Key": "same"})).status_code == 200
    assert client.post(url, json=body, headers=bearer(admin, **{"Idempotency-Key": "same"})).status_code == 409


# The OpenAPI description -------------------------------------------------------------------


def test_every_staff_route_names_its_one_scope_and_every_change_takes_an_idempotency_key(app):
    document = openapi_document()
    staff_rules = {(rule.rule, method) for rule in app.url_map.iter_rules() if rule.rule.startswith("/api/v1/staff")
                   for method in rule.methods - {"HEAD", "OPTIONS"}}
    described = set()
    for path, item in document["paths"].items():
        if not path.startswith("/staff"):
            continue
        for method, operation in item.items():
            described.add((method.upper(), path))
            (requirement,) = operation["security"]
            (scopes,) = requirement.values()
            assert len(scopes) == 1 and Scope(scopes[0]), (method, path)
            assert f"`{scopes[0]}`" in operation["description"]
            keyed = any(parameter["name"] == "Idempotency-Key" for parameter in operation["parameters"])
            assert keyed == (method != "get"), (method, path)
            assert {"401", "403"} <= set(operation["responses"]), (method, path)
    assert len(described) == len(staff_rules)


# A draw's outcomes ---------------------------------------------------------------------------


def test_a_draws_offers_are_listed_with_their_outcomes_and_no_personal_data(drawn, client, staff, settings):
    store, _, _ = drawn
    key, _ = booked(store, settings)
    offer = store.offer(key)
    text, _ = accounts.new_api_token(store, staff["agent01"], "reports", NOW, scopes=["read"])
    pool_offers = [found for found in store.offers(key.pool).values() if found.draw_id == offer.draw_id]
    prefecture = key.pool.split(":")[0]

    listed = client.get(f"/api/v1/staff/prefectures/{prefecture}/draws/{offer.draw_id}/offers", headers=bearer(text))
    assert listed.status_code == 200
    outcomes = listed.get_json()
    assert len(outcomes["items"]) == len(pool_offers) == sum(outcomes["counts"].values())
    assert outcomes["counts"]["confirmed"] == 1 and outcomes["counts"]["pending"] == len(pool_offers) - 1
    (mine,) = [item for item in outcomes["items"] if item["ref"] == offer.ref]
    assert mine["status"] == "confirmed" and mine["slot"]["id"] == offer.slot_id and mine["slot"]["site"]
    applicant = store.registration(key).applicant
    assert applicant.email not in listed.text and applicant.family_name not in listed.text

    for unknown in ("01-renewal-20990101T1000", "not-a-draw", offer.draw_id.replace(prefecture, "69", 1)):
        assert client.get(f"/api/v1/staff/prefectures/{prefecture}/draws/{unknown}/offers",
                          headers=bearer(text)).status_code == 404
