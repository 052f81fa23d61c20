"""Registration through the pages and the JSON API, with mail through the loopback SMTP server."""

import datetime
import json
import logging
import re
from urllib.parse import parse_qs, urlsplit

import pytest
from helpers import ENGLISH, PERSON, all_keys, api_person, csrf_token, plain_text
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from queue_service import registration as registrations
from queue_service.reference import DEMO_AGDREF_NUMBERS
from queue_service.store.keys import PoolKeys
from worker.queues import NOTIFICATIONS, queue

IDENTITY_SECRETS = ("El Amrani", "1988-11-02", "0100000001", "Fatima")


def submit_registration(client, procedure="renewal", **changes):
    path = f"/p/01/{procedure}/register"
    data = PERSON | {"csrf_token": csrf_token(client, path)} | changes
    return client.post(path, data=data, headers=ENGLISH)


def link_in(message, path: str) -> str:
    text = message.get_body(("plain",)).get_content() if hasattr(message, "get_body") else str(message)
    found = re.search(r"http://\S+" + re.escape(path) + r"\?t=\S+", text)
    assert found, text
    return found.group(0)


def local(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def token_link(text: str, path: str) -> str:
    found = re.search(r"https?://[^\s/]+(" + re.escape(path) + r"\?t=[\w.\-]+)", text)
    assert found, text
    return found.group(1)


@pytest.fixture
def registered(client, mailbox, deliver_messages):
    """Register Fatima through the page and return the text of her confirmation email."""
    response = submit_registration(client)
    assert response.status_code == 302, response.get_data(as_text=True)
    deliver_messages()
    assert len(mailbox.messages) == 1
    return response, plain_text(mailbox.messages[0])


def test_register_confirm_and_see_the_status(client, registered, mailbox, deliver_messages, store):
    response, confirmation = registered
    ref = parse_qs(urlsplit(response.headers["Location"]).query)["ref"][0]
    page = client.get(response.headers["Location"], headers=ENGLISH).get_data(as_text=True)
    assert ref in page and "confirm your email" in page
    message = mailbox.messages[0]
    assert mailbox.recipients == [["fatima@example.org"]]
    assert ref in message["Subject"] and "Confirm" in message["Subject"]
    for secret in IDENTITY_SECRETS:  # no identity data in the message
        assert secret not in message.as_string()

    confirm_path = token_link(confirmation, "/confirm")
    landing = client.get(confirm_path, headers=ENGLISH)
    assert landing.status_code == 200 and "Confirm my registration" in landing.get_data(as_text=True)
    assert store.waiting_count("01:renewal") == 0  # opening the link alone confirms nothing
    token = parse_qs(urlsplit(confirm_path).query)["t"][0]
    confirmed = client.post("/confirm", data={"t": token, "csrf_token": csrf_token(client, confirm_path)})
    assert confirmed.status_code == 302 and confirmed.headers["Location"].startswith("/status?t=")
    assert store.waiting_count("01:renewal") == 1

    deliver_messages()
    welcome = plain_text(mailbox.messages[1])
    status_path = token_link(welcome, "/status")
    assert status_path == confirmed.headers["Location"]
    status = client.get(status_path, headers=ENGLISH).get_data(as_text=True)
    assert "In the waiting list" in status and ref in status


def test_the_mobile_is_optional_on_the_form_and_in_the_api(client, store, mailbox, deliver_messages):
    page = client.get("/p/01/renewal/register", headers=ENGLISH).get_data(as_text=True)
    assert "Mobile phone (optional)" in page
    response = submit_registration(client, phone="")
    assert response.status_code == 302, response.get_data(as_text=True)
    created = client.post("/api/v1/registrations", json=api_person(
        family_name="Okafor", given_names="Chidi", agdref=DEMO_AGDREF_NUMBERS[1], email="chidi@example.org") | {
        "phone": None})
    assert created.status_code == 201
    key = store.registration_key_by_ref("01:renewal", created.get_json()["ref"])
    assert store.registration(key).applicant.phone is None
    without = {key: value for key, value in api_person(
        family_name="Haddad", given_names="Rami", agdref=DEMO_AGDREF_NUMBERS[2], email="rami@example.org").items()
        if key != "phone"}
    assert client.post("/api/v1/registrations", json=without).status_code == 201
    deliver_messages()
    assert len(mailbox.messages) == 3  # each is told by email


def test_the_email_is_in_the_applicants_language(client, mailbox, deliver_messages):
    submit_registration(client, language="fr")
    deliver_messages()
    assert "Confirmez" in mailbox.messages[0]["Subject"]


def test_private_pages_speak_the_applicants_language_until_they_switch(client, store, mailbox, deliver_messages):
    created = client.post("/api/v1/registrations", json=api_person(language="en"))
    deliver_messages()
    confirm_path = token_link(plain_text(mailbox.messages[0]), "/confirm")
    french_browser = {"Accept-Language": "fr-FR,fr;q=0.9"}
    client.set_cookie("lang", "fr")  # chosen earlier on a public page
    assert '<html lang="en" dir="ltr">' in client.get(confirm_path, headers=french_browser).get_data(as_text=True)
    token = confirm_path.split("t=")[1]
    status_token = client.post("/api/v1/registrations/confirm", json={"token": token}).get_json()["status_token"]
    for path in (f"/status?t={status_token}", f"/offer?t={status_token}", f"/status/proof?t={status_token}",
                 f"/status/withdraw?t={status_token}"):
        page = client.get(path, headers=french_browser)
        assert page.status_code in (200, 404) and '<html lang="en" dir="ltr">' in page.get_data(as_text=True), path
    # The public pages keep the reader's own choice.
    assert '<html lang="fr" dir="ltr">' in client.get("/", headers=french_browser).get_data(as_text=True)

    # Switching on a private page is remembered on the registration: pages and messages follow.
    switched = client.get(f"/lang/fr?next=/status?t={status_token}")
    assert switched.status_code == 302 and switched.headers["Location"] == f"/status?t={status_token}"
    client.delete_cookie("lang")
    page = client.get(f"/status?t={status_token}", headers=ENGLISH).get_data(as_text=True)
    assert '<html lang="fr" dir="ltr">' in page and "Sur la liste d’attente" in page
    key = store.registration_key_by_ref("01:renewal", created.get_json()["ref"])
    assert store.registration(key).applicant.language == "fr"
    client.delete("/api/v1/registration", headers={"Authorization": f"Bearer {status_token}"})
    deliver_messages()
    assert "liste d’attente" in plain_text(mailbox.messages[-1])  # the withdrawal notice, in French now


def test_form_errors_are_shown_next_to_their_fields_and_nothing_is_stored(client, store):
    response = submit_registration(client, phone="01 23 45 67 89", agdref="12", consent="")
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    for field in ("phone", "agdref", "consent"):
        assert f'id="{field}-error"' in page
    assert 'value="El Amrani"' in page  # what was typed is kept
    assert store.pools() == [] and len(queue(NOTIFICATIONS, store.redis)) == 0


def test_unknown_agdref_is_refused_on_the_form(client, store):
    response = submit_registration(client, agdref="9999999999")
    assert response.status_code == 422 and 'id="agdref-error"' in response.get_data(as_text=True)


def test_unticking_every_site_is_an_error_not_all_sites(client):
    response = submit_registration(client, sites_shown="1", half_days_shown="1", half_days=["mon-am"])
    assert response.status_code == 422 and 'id="sites-error"' in response.get_data(as_text=True)


def test_a_second_registration_is_refused_without_revealing_anything(client, registered):
    _, confirmation = registered
    client.post("/api/v1/registrations/confirm", json={"token": token_link(confirmation, "/confirm").split("t=")[1]})
    again = submit_registration(client, email="someone.else@example.org", family_name="EL AMRANI")
    assert again.status_code == 409
    page = again.get_data(as_text=True)
    assert "already registered" in page and "fatima@example.org" not in page


def test_a_form_without_its_csrf_token_is_refused(client, store):
    response = client.post("/p/01/renewal/register", data=PERSON, headers=ENGLISH)
    assert response.status_code == 400 and "expired" in response.get_data(as_text=True)
    assert store.pools() == []


def test_withdraw_with_a_confirmation_step(client, registered, store, deliver_messages, mailbox):
    _, confirmation = registered
    confirm_path = token_link(confirmation, "/confirm")
    token = parse_qs(urlsplit(confirm_path).query)["t"][0]
    status_path = client.post("/confirm", data={"t": token, "csrf_token": csrf_token(client, confirm_path)}).headers[
        "Location"
    ]
    withdraw_path = status_path.replace("/status?", "/status/withdraw?")
    question = client.get(withdraw_path, headers=ENGLISH).get_data(as_text=True)
    assert "Leave the waiting list?" in question
    assert store.waiting_count("01:renewal") == 1
    assert 'id="next-draw"' in client.get(status_path).get_data(as_text=True)
    done = client.post(withdraw_path, data={"csrf_token": csrf_token(client, withdraw_path)}, headers=ENGLISH)
    assert done.status_code == 200 and "Withdrawn" in done.get_data(as_text=True)
    assert 'id="next-draw"' not in done.get_data(as_text=True)  # no next draw for someone who left
    assert store.waiting_count("01:renewal") == 0
    deliver_messages()
    assert "left the waiting list" in mailbox.messages[-1]["Subject"]


def test_preferences_and_email_change_from_the_status_page(client, registered, store, deliver_messages, mailbox):
    _, confirmation = registered
    status_path = token_link(confirmation, "/confirm").replace("/confirm?", "/status?")
    # The confirmation token is not a status token: the status page refuses it.
    assert client.get(status_path).status_code == 404

    api_confirm = client.post("/api/v1/registrations/confirm", json={"token": token_link(confirmation, "/confirm").split("t=")[1]})
    status_token = api_confirm.get_json()["status_token"]
    status_path = f"/status?t={status_token}"
    saved = client.post(
        f"/status/preferences?t={status_token}",
        data={"csrf_token": csrf_token(client, status_path), "phone": "07 98 76 54 32", "sites_shown": "1",
              "sites": ["gex"], "half_days_shown": "1", "half_days": ["fri-am", "fri-pm"]},
        headers=ENGLISH,
    )
    assert saved.status_code == 200 and "Your preferences are saved." in saved.get_data(as_text=True)
    me = client.get("/api/v1/registration", headers={"Authorization": f"Bearer {status_token}"}).get_json()
    assert me["phone"] == "+33798765432" and me["sites"] == ["gex"] and me["half_days"] == ["fri-am", "fri-pm"]

    client.post(f"/status/email?t={status_token}", data={"csrf_token": csrf_token(client, status_path),
                                                         "email": "fz.new@example.org"})
    deliver_messages()
    change = mailbox.messages[-1]
    assert mailbox.recipients[-1] == ["fz.new@example.org"]
    change_path = token_link(plain_text(change), "/email/confirm")
    token = parse_qs(urlsplit(change_path).query)["t"][0]
    changed = client.post("/email/confirm", data={"t": token, "csrf_token": csrf_token(client, change_path)})
    new_status = changed.headers["Location"]
    me = client.get("/api/v1/registration", headers={"Authorization": f"Bearer {new_status.split('t=')[1]}"})
    assert me.get_json()["email"] == "fz.new@example.org" and me.get_json()["pending_email"] is None

    # The change replaced the private link: the old one dies with a page that says why, the new one
    # comes to the new address (and is where the confirmation led).
    old_link = client.get(status_path, headers=ENGLISH)
    assert old_link.status_code == 410 and "email address of this registration was changed" in old_link.get_data(
        as_text=True)
    assert client.get(f"/offer?t={status_token}").status_code == 410
    old_bearer = client.get("/api/v1/registration", headers={"Authorization": f"Bearer {status_token}"})
    assert old_bearer.status_code == 401 and old_bearer.mimetype == "application/problem+json"
    deliver_messages()
    assert mailbox.recipients[-1] == ["fz.new@example.org"] and "new private link" in mailbox.messages[-1]["Subject"]
    emailed = token_link(plain_text(mailbox.messages[-1]), "/status")
    assert emailed == new_status and emailed != status_path
    assert client.get(emailed, headers=ENGLISH).status_code == 200
    # Opening the confirmation again changes nothing more.
    again = client.post("/email/confirm", data={"t": token, "csrf_token": csrf_token(client, change_path)})
    assert again.headers["Location"] == new_status


def test_the_status_link_dies_with_the_purge(client, registered, store):
    _, confirmation = registered
    token = token_link(confirmation, "/confirm").split("t=")[1]
    status_token = client.post("/api/v1/registrations/confirm", json={"token": token}).get_json()["status_token"]
    assert client.get(f"/status?t={status_token}").status_code == 200
    assert client.delete("/api/v1/registration", headers={"Authorization": f"Bearer {status_token}"}).status_code == 200
    registrations.purge(store, datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=400),
                        datetime.timedelta(days=365))
    gone = client.get(f"/status?t={status_token}", headers=ENGLISH)
    assert gone.status_code == 404 and "deleted after the retention period" in gone.get_data(as_text=True)


def test_proof_downloads_signed_and_the_verify_page_checks_it(client, registered):
    _, confirmation = registered
    token = token_link(confirmation, "/confirm").split("t=")[1]
    status_token = client.post("/api/v1/registrations/confirm", json={"token": token}).get_json()["status_token"]
    printable = client.get(f"/status/proof?t={status_token}", headers=ENGLISH).get_data(as_text=True)
    assert "Proof of registration" in printable
    download = client.get(f"/status/proof.json?t={status_token}")
    assert "attachment" in download.headers["Content-Disposition"]
    document = download.get_json()
    assert document["statement"]["status"] == "waiting"
    assert [event["kind"] for event in document["statement"]["events"]] == ["registered", "email_confirmed"]
    for secret in IDENTITY_SECRETS:
        assert secret not in download.get_data(as_text=True)

    verify_path = "/verify"
    genuine = client.post(
        verify_path,
        data={"csrf_token": csrf_token(client, verify_path), "proof": json.dumps(document)},
        headers=ENGLISH,
    )
    assert genuine.status_code == 200 and "This proof is authentic." in genuine.get_data(as_text=True)
    document["statement"]["joined_at"] = "2020-01-01T00:00:00+00:00"  # pretend to have waited longer
    forged = client.post(
        verify_path,
        data={"csrf_token": csrf_token(client, verify_path), "proof": json.dumps(document)},
        headers=ENGLISH,
    )
    assert forged.status_code == 422 and "could not be verified" in forged.get_data(as_text=True)
    api_verdict = client.post("/api/v1/proofs/verify", json=document).get_json()
    assert api_verdict["valid"] is False
    # On a French page the reason is French too (it was English).
    french = client.post(verify_path, data={"csrf_token": csrf_token(client, verify_path),
                                            "proof": json.dumps(document | {"extra": 1})})
    reason = re.search(r'id="reason">(.*?)</p>', french.get_data(as_text=True)).group(1)
    assert "preuve" in reason or "attestation" in reason, reason


@pytest.mark.parametrize("path", ["/status?t=forged", "/status", "/confirm?t=x.y.z", "/status/proof.json?t=abc"])
def test_forged_or_missing_links_get_a_404_page(client, path):
    response = client.get(path, headers=ENGLISH)
    assert response.status_code == 404 and "link is not valid" in response.get_data(as_text=True)


# The JSON API ------------------------------------------------------------------------


def test_api_registration_flow(client, mailbox, deliver_messages, store):
    created = client.post("/api/v1/registrations", json=api_person())
    assert created.status_code == 201 and created.get_json()["status"] == "pending_email"
    deliver_messages()
    token = token_link(plain_text(mailbox.messages[0]), "/confirm").split("t=")[1]
    confirmed = client.post("/api/v1/registrations/confirm", json={"token": token}).get_json()
    assert confirmed["status"] == "waiting"
    bearer = {"Authorization": f"Bearer {confirmed['status_token']}"}
    assert client.get("/api/v1/registration", headers=bearer).get_json()["ref"] == created.get_json()["ref"]
    proof = client.get("/api/v1/registration/proof", headers=bearer).get_json()
    assert client.post("/api/v1/proofs/verify", json=proof).get_json()["valid"] is True
    withdrawn = client.delete("/api/v1/registration", headers=bearer)
    assert withdrawn.get_json()["status"] == "withdrawn"
    again = client.delete("/api/v1/registration", headers=bearer)
    assert again.status_code == 409 and again.content_type == "application/problem+json"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ("not json", 400),
        ("[1, 2]", 422),
        (json.dumps(api_person(prefecture="99")), 404),
        (json.dumps(api_person(procedure="visa")), 404),
        (json.dumps(api_person(prefecture=1)), 422),
        (json.dumps(api_person(birth_date="2999-01-01", email="nope")), 422),
        (json.dumps(api_person(agdref="0000000000")), 422),
        (json.dumps(api_person(sites="bourg,gex")), 422),
        (json.dumps(api_person(sites=["mars"])), 422),
        (json.dumps(api_person(consent=False)), 422),
        ('{"family_name": "' + "x" * 70_000 + '"}', 413),
    ],
)
def test_api_errors_are_problems_and_change_nothing(client, store, body, status):
    before = all_keys(store)
    response = client.post("/api/v1/registrations", data=body, content_type="application/json", headers=ENGLISH)
    assert response.status_code == status
    assert response.content_type == "application/problem+json"
    assert response.get_json()["status"] == status
    assert all_keys(store) == before


def test_api_validation_problem_lists_every_field(client):
    problem = client.post("/api/v1/registrations", json=api_person(phone="04 74", email="x"), headers=ENGLISH).get_json()
    assert problem["code"] == "validation-failed"
    assert {error["field"] for error in problem["errors"]} == {"phone", "email"}


def test_api_duplicate_is_a_409_problem(client, mailbox, deliver_messages):
    confirmed_by_api(client, mailbox, deliver_messages)
    duplicate = client.post("/api/v1/registrations", json=api_person(family_name="el-amrani", email="b@example.org"))
    assert duplicate.status_code == 409 and duplicate.get_json()["code"] == "duplicate-registration"


def test_api_refuses_look_alike_letters_and_names_swapped(client, store, mailbox, deliver_messages):
    """Issue 14: one person entered four times with look-alike letters, or with the family
    and given names swapped, through the JSON API. Unconfirmed, each attempt replaces the one
    before (one place, one live link); confirmed, the place is held."""
    def register(number, family, given):
        body = api_person(procedure="first_request", agdref="", family_name=family, given_names=given,
                          email=f"bot{number}@example.org", phone=f"+336120000{number:02d}")
        return client.post("/api/v1/registrations", json=body).status_code

    families = ["Martin", "M\u0430rtin", "Mart\u0456n", "M\u0430rt\u0456n"]
    assert [register(number, family, "Jean") for number, family in enumerate(families)] == [201] * 4
    assert store.redis.zcard(PoolKeys("01:first_request").unconfirmed) == 1
    deliver_messages()
    (link,) = [token_link(plain_text(message), "/confirm") for message in mailbox.messages]
    client.post("/api/v1/registrations/confirm", json={"token": link.split("t=")[1]})
    assert [register(20 + number, family, "Jean") for number, family in enumerate(families)] == [409] * 4
    assert register(10, "Nguyen", "Thi Lan") == 201
    deliver_messages()
    link = token_link(plain_text(mailbox.messages[-1]), "/confirm")
    client.post("/api/v1/registrations/confirm", json={"token": link.split("t=")[1]})
    assert register(11, "Thi Lan", "Nguyen") == 409
    assert store.waiting_count("01:first_request") == 2


def test_api_patch_with_a_bad_email_changes_nothing(client, mailbox, deliver_messages):
    client.post("/api/v1/registrations", json=api_person())
    deliver_messages()
    token = token_link(plain_text(mailbox.messages[0]), "/confirm").split("t=")[1]
    bearer = {"Authorization": f"Bearer {client.post('/api/v1/registrations/confirm', json={'token': token}).get_json()['status_token']}"}
    response = client.patch("/api/v1/registration", json={"sites": ["gex"], "email": "not-an-email"}, headers=bearer)
    assert response.status_code == 422
    assert client.get("/api/v1/registration", headers=bearer).get_json()["sites"] == ["bourg", "belley", "gex", "nantua"]


BEARER_ROUTES = [
    ("GET", "/api/v1/registration"), ("PATCH", "/api/v1/registration"), ("DELETE", "/api/v1/registration"),
    ("POST", "/api/v1/registration/offer"), ("GET", "/api/v1/registration/proof"),
    ("GET", "/api/v1/staff/prefectures/01/sites"), ("GET", "/api/v1/staff/prefectures/01/slots"),
    ("GET", "/api/v1/staff/prefectures/01/schedules"), ("GET", "/api/v1/staff/prefectures/01/registrations"),
]


@pytest.mark.parametrize("method, path", BEARER_ROUTES)
def test_api_without_a_valid_bearer_token_is_a_401_with_a_bearer_challenge(client, method, path):
    for authorization in (None, "Bearer", "Bearer nonsense", "Bearer qst_nonsense", "Basic dXNlcjpwYXNz"):
        headers = {"Authorization": authorization} if authorization else {}
        response = client.open(path, method=method, headers=headers, json={"answer": "confirm"})
        assert response.status_code == 401, (authorization, response.get_data(as_text=True))
        assert response.mimetype == "application/problem+json"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert response.get_json()["status"] == 401


def test_every_json_route_refuses_a_body_that_is_not_json(client, store, settings):
    from helpers import key_of, register_people

    from queue_service.registration.tokens import status_token

    person = register_people(store, 1, datetime.datetime.now(datetime.timezone.utc))[0]
    bearer = {"Authorization": f"Bearer {status_token(settings.secret_key, key_of(person.key.registration_id))}"}
    for method, path in [("POST", "/api/v1/registrations"), ("POST", "/api/v1/registrations/confirm"),
                         ("PATCH", "/api/v1/registration"), ("POST", "/api/v1/registration/offer"),
                         ("POST", "/api/v1/proofs/verify")]:
        for body, content_type in [("answer=confirm", "application/x-www-form-urlencoded"), ("{", "application/json"),
                                   ("{}", "text/plain")]:
            response = client.open(path, method=method, data=body, content_type=content_type, headers=bearer)
            assert response.status_code == 400, (method, path, body, response.get_data(as_text=True))
            assert response.mimetype == "application/problem+json"
        assert client.open(path, method=method, json=[1], headers=bearer).status_code == 422
    assert client.get("/api/v1/registration", headers=bearer).get_json()["status"] == "waiting"  # nothing changed


def test_the_registration_schema_refuses_what_the_service_refuses(make_app, reference_data):
    import jsonschema

    client = make_app(rate_limit_registration="1000 per hour", rate_limit_registration_email="1000 per hour").test_client()

    document = client.get("/api/v1/openapi.json").get_json()
    schema = document["components"]["schemas"]["RegistrationInput"]
    jsonschema.validate(api_person(), schema)
    for refused in [{"family_name": ""}, {"given_names": "  "}, {"email": ""}, {"phone": "x" * 41}, {"consent": False},
                    {"consent": None}, {"half_days": ["sunday_am"]}, {"half_days": []}, {"language": "de"},
                    {"procedure": "visa"}, {"birth_date": "yesterday"}, {"half_days": ""}, {"sites": None}]:
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(api_person(**refused), schema)
        assert client.post("/api/v1/registrations", json=api_person(**refused)).status_code in (404, 422), refused


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=15), children, max_size=5),
    max_leaves=20,
)
field_names = st.sampled_from(list(api_person()) + ["sites", "half_days", "extra"])


@hypothesis_settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(changes=st.dictionaries(field_names, json_values, max_size=6))
def test_no_registration_body_gives_a_server_error(client, changes):
    response = client.post("/api/v1/registrations", json=api_person() | changes)
    assert response.status_code < 500, response.get_data(as_text=True)
    if response.status_code == 400:  # text that is not valid Unicode (U+FFFE, a lone surrogate), in any member
        assert response.get_json()["code"] == "invalid-text", response.get_data(as_text=True)
    else:
        assert response.status_code in (201, 404, 409, 422, 429), response.get_data(as_text=True)


def test_openapi_document_validates_and_lists_every_api_route(app, client):
    from openapi_spec_validator import validate

    document = client.get("/api/v1/openapi.json").get_json()
    validate(document)
    described = {(path, method.upper()) for path, item in document["paths"].items() for method in item}
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1"):
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule.removeprefix("/api/v1")) or "/"
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert (path, method) in described, (path, method)


def test_registration_attempts_are_rate_limited_per_address(make_app, reference_data):
    client = make_app(rate_limit_registration="2 per hour").test_client()
    codes = [client.post("/api/v1/registrations", json=api_person(email=f"p{n}@example.org")).status_code for n in range(3)]
    assert codes[2] == 429


def test_registration_attempts_are_rate_limited_per_email(make_app, reference_data):
    client = make_app(rate_limit_registration_email="2 per hour").test_client()
    bodies = [api_person(family_name=name, agdref=number) for name, number in zip("ABC", DEMO_AGDREF_NUMBERS)]
    codes = [client.post("/api/v1/registrations", json=body).status_code for body in bodies]
    assert codes == [201, 201, 429]
    other = client.post("/api/v1/registrations", json=api_person(family_name="D", agdref=DEMO_AGDREF_NUMBERS[3], email="d@example.org"))
    assert other.status_code == 201


def test_registration_fails_closed_when_redis_is_down(make_app, reference_data):
    from conftest import free_port

    client = make_app(redis_url=f"redis://127.0.0.1:{free_port()}/0").test_client()
    response = client.post("/api/v1/registrations", json=api_person())
    assert response.status_code == 503 and response.content_type == "application/problem+json"


def test_no_personal_data_in_logs_or_job_arguments(client, store, run_jobs, caplog):
    from worker import jobs as worker_jobs

    caplog.set_level(logging.DEBUG)
    client.post("/api/v1/registrations", json=api_person())
    assert worker_jobs.dispatch_pool(store.redis, store, "01:renewal") == 1
    jobs = queue(NOTIFICATIONS, store.redis).jobs
    assert len(jobs) == 1
    prefecture, procedure, (message,) = jobs[0].args  # the send job: the pool and its outbox messages, ids only
    assert (prefecture, procedure) == ("01", "renewal")
    assert set(json.loads(message)) == {"id", "kind", "registration_id"}
    assert not [secret for secret in IDENTITY_SECRETS + ("fatima@example.org", "612345678") if secret in message]
    run_jobs()
    # (The test SMTP server's own debug log, "mail.log", names recipients: it is not ours.)
    logged = "\n".join(record.getMessage() for record in caplog.records if not record.name.startswith("mail"))
    for secret in IDENTITY_SECRETS + ("fatima@example.org", "+212612345678"):
        assert secret not in logged
        assert all(secret.encode() not in key for key in store.redis.scan_iter("*"))


def test_an_expired_confirmation_link_is_a_410_that_says_what_to_do(client, settings, store):
    import datetime

    from queue_service.registration.tokens import confirmation_token

    created = client.post("/api/v1/registrations", json=api_person()).get_json()
    key = store.registration_key_by_ref("01:renewal", created["ref"])
    issued = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=25)
    from queue_service.registration import email_print

    link_print = email_print(settings.identity_key.encode(), key.pool, "fatima@example.org")
    token = confirmation_token(settings.secret_key, key, link_print, issued)
    page = client.get(f"/confirm?t={token}", headers=ENGLISH)
    assert page.status_code == 410 and "register again" in page.get_data(as_text=True)
    api = client.post("/api/v1/registrations/confirm", json={"token": token})
    assert api.status_code == 410 and api.content_type == "application/problem+json"
    assert store.waiting_count("01:renewal") == 0


def test_confirmation_links_carry_no_email_address(client, mailbox, deliver_messages):
    import base64
    import zlib

    client.post("/api/v1/registrations", json=api_person())
    deliver_messages()
    token = token_link(plain_text(mailbox.messages[0]), "/confirm").split("t=")[1]
    payload = token.split(".")[0]
    compressed = payload.startswith(".")
    raw = base64.urlsafe_b64decode(payload.lstrip(".") + "=" * (-len(payload.lstrip(".")) % 4))
    text = (zlib.decompress(raw) if compressed else raw).decode()
    assert "fatima" not in text and "@" not in text


def test_only_the_latest_email_change_is_mailed(client, mailbox, deliver_messages):
    client.post("/api/v1/registrations", json=api_person())
    deliver_messages()
    token = token_link(plain_text(mailbox.messages[0]), "/confirm").split("t=")[1]
    bearer = {"Authorization": f"Bearer {client.post('/api/v1/registrations/confirm', json={'token': token}).get_json()['status_token']}"}
    deliver_messages()
    before = len(mailbox.messages)
    client.patch("/api/v1/registration", json={"email": "first.try@example.org"}, headers=bearer)
    client.patch("/api/v1/registration", json={"email": "second.try@example.org"}, headers=bearer)
    deliver_messages()
    assert mailbox.recipients[before:] == [["second.try@example.org"]]


# Lost links: recovery, and registering again before confirming ------------------------------


def confirmed_by_api(client, mailbox, deliver_messages, **changes) -> str:
    """Register through the API and confirm; returns the status token."""
    assert client.post("/api/v1/registrations", json=api_person(**changes)).status_code == 201
    deliver_messages()
    token = token_link(plain_text(mailbox.messages[-1]), "/confirm").split("t=")[1]
    return client.post("/api/v1/registrations/confirm", json={"token": token}).get_json()["status_token"]


def test_a_lost_status_link_is_sent_again_and_the_answer_reveals_nothing(client, mailbox, deliver_messages):
    status_token = confirmed_by_api(client, mailbox, deliver_messages)
    deliver_messages()
    assert "/recover" in plain_text(mailbox.messages[-1])  # the status-link email says where to ask again
    sent = len(mailbox.messages)

    page = client.get("/recover", headers=ENGLISH)
    assert page.status_code == 200 and "Find my registration" in page.get_data(as_text=True)
    known = client.post("/recover", data={"email": "Fatima@Example.org", "csrf_token": csrf_token(client, "/recover")},
                        headers=ENGLISH)
    unknown = client.post("/recover", data={"email": "nobody@example.org",
                                            "csrf_token": csrf_token(client, "/recover")}, headers=ENGLISH)
    assert known.status_code == unknown.status_code == 200
    assert (known.get_data(as_text=True).replace("Fatima@Example.org", "X")
            == unknown.get_data(as_text=True).replace("nobody@example.org", "X"))
    deliver_messages()
    assert len(mailbox.messages) == sent + 1 and mailbox.recipients[-1] == ["fatima@example.org"]
    message = mailbox.messages[-1]
    assert "Your private link" in message["Subject"]
    assert token_link(plain_text(message), "/status") == f"/status?t={status_token}"

    bad = client.post("/recover", data={"email": "not an address", "csrf_token": csrf_token(client, "/recover")},
                      headers=ENGLISH)
    assert bad.status_code == 422 and "Enter your email address" in bad.get_data(as_text=True)


def test_the_api_recovers_a_lost_confirmation_link_with_the_same_answer_for_anyone(client, mailbox,
                                                                                    deliver_messages):
    assert client.post("/api/v1/registrations", json=api_person()).status_code == 201
    deliver_messages()
    first = token_link(plain_text(mailbox.messages[0]), "/confirm")
    known = client.post("/api/v1/registrations/recover", json={"email": "fatima@example.org"})
    unknown = client.post("/api/v1/registrations/recover", json={"email": "nobody@example.org"})
    assert known.status_code == unknown.status_code == 202 and known.get_json() == unknown.get_json()
    deliver_messages()
    assert len(mailbox.messages) == 2  # the confirmation link again, nothing to the unknown address
    assert token_link(plain_text(mailbox.messages[1]), "/confirm") == first
    refused = client.post("/api/v1/registrations/recover", json={"email": "nope"})
    assert refused.status_code == 422 and refused.mimetype == "application/problem+json"


def test_recovery_is_limited_per_email_address(make_app, reference_data):
    client = make_app(rate_limit_recovery_email="2 per hour").test_client()
    answers = [client.post("/api/v1/registrations/recover", json={"email": "fatima@example.org"}).status_code
               for _ in range(3)]
    assert answers == [202, 202, 429]
    assert client.post("/api/v1/registrations/recover", json={"email": "other@example.org"}).status_code == 202


def test_every_page_that_can_turn_an_applicant_away_leads_to_recovery(client):
    submit_registration(client)
    reg_again = submit_registration(client)  # still unconfirmed: replaced, not refused
    assert reg_again.status_code == 302
    for path in ("/", "/status?t=forged", "/confirm?t=forged", "/offer?t=forged", "/p/99"):
        page = client.get(path, headers=ENGLISH).get_data(as_text=True)
        assert 'href="/recover"' in page, path


def test_a_confirmed_duplicate_is_refused_with_the_way_to_recovery(client, mailbox, deliver_messages):
    confirmed_by_api(client, mailbox, deliver_messages)
    refused = submit_registration(client)
    assert refused.status_code == 409 and 'href="/recover"' in refused.get_data(as_text=True)
    problem = client.post("/api/v1/registrations", json=api_person(), headers=ENGLISH).get_json()
    assert problem["status"] == 409 and "/recover" in problem["title"]


def test_registering_again_with_the_right_email_repairs_a_typo(client, store, mailbox, deliver_messages):
    typo = submit_registration(client, email="fatou.sow@gmial.com")
    fixed = submit_registration(client, email="fatou.sow@gmail.com")
    assert typo.status_code == fixed.status_code == 302
    deliver_messages()
    assert mailbox.recipients == [["fatou.sow@gmail.com"]]  # the typo's message finds its registration gone
    landing = client.get(token_link(plain_text(mailbox.messages[0]), "/confirm"), headers=ENGLISH)
    assert landing.status_code == 200
    assert store.redis.zcard(PoolKeys("01:renewal").unconfirmed) == 1


@pytest.mark.parametrize("proof", ["x" * 4097, 12, ["a"], {"challenge": "c"}])
def test_a_proof_of_work_that_cannot_be_one_is_refused_and_changes_nothing(client, store, proof):
    """Found by the contract test: a 5,000-character `altcha` was taken (and PATCH answered 200)."""
    before = all_keys(store)
    refused = client.post("/api/v1/registrations", json=api_person(altcha=proof), headers={"Accept-Language": "fr"})
    assert refused.status_code == 422 and refused.mimetype == "application/problem+json"
    assert [error["field"] for error in refused.get_json()["errors"]] == ["altcha"]
    assert "preuve" in refused.get_json()["errors"][0]["message"]
    assert all_keys(store) == before
