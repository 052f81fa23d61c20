"""Text that is not valid Unicode, anywhere in a request: a 400 that says so, never a 500.

JSON may carry lone surrogates ("\\ud800", which no UTF-8 can encode) and
both JSON and forms may carry non-characters (U+FFFF, U+FDD0...): the request
is refused where its body is parsed, once for every route.
"""

import datetime
import json

import pytest
from helpers import ENGLISH, UNLIMITED, all_keys, api_person, csrf_token
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from queue_service import registration as reg
from queue_service.reference import DEMO_AGDREF_NUMBERS, procedure_by_code
from queue_service.registration.agdref import UploadedRecords
from queue_service.registration.tokens import status_token
from web.decoding import NOT_TEXT
from web.openapi import openapi_document

# Lone surrogates, halves of a pair in the wrong order, non-characters, NUL.
BAD_TEXTS = ["\ud800", "\udfff", "a\ud83d", "\ude00\ud83d", "\uffff", "\ufffe", "x\ufdd0", "\U0010ffff", "\x00"]
PERSON = api_person()  # as the API takes it


def post_json(client, path: str, body, method: str = "POST", **headers):
    """Send `body` as JSON in ASCII, surrogates written as \\u escapes, as a client in any language may."""
    return client.open(path, method=method, data=json.dumps(body, ensure_ascii=True),
                       content_type="application/json", headers=ENGLISH | headers)


@pytest.mark.parametrize("bad", BAD_TEXTS[:-1])
def test_bad_unicode_in_json_is_a_400_problem_naming_the_field(client, store, bad):
    before = all_keys(store)
    for path, body, field in [
        ("/api/v1/registrations", PERSON | {"family_name": bad}, "family_name"),
        ("/api/v1/registrations", PERSON | {"sites": ["bourg", bad]}, "sites"),
        ("/api/v1/registrations", PERSON | {bad: "x"}, NOT_TEXT.sub("\ufffd", bad)),
        ("/api/v1/registrations/confirm", {"token": bad}, "token"),
        ("/api/v1/proofs/verify", {"statement": {"name": bad}}, "statement"),
    ]:
        response = post_json(client, path, body)
        assert response.status_code == 400, (path, body, response.get_data(as_text=True))
        assert response.content_type == "application/problem+json"
        problem = response.get_json()
        assert problem["code"] == "invalid-text" and "not valid Unicode" in problem["title"]
        assert [error["field"] for error in problem["errors"]] == [field]
    assert all_keys(store) == before


def test_bad_unicode_in_a_form_is_a_400_page_that_says_why(client, store):
    before = all_keys(store)
    path = "/p/01/renewal/register"
    data = {name: value for name, value in PERSON.items() if name not in ("prefecture", "procedure", "consent")}
    response = client.post(path, data=data | {"consent": "yes", "family_name": "El\uffffAmrani",
                                              "csrf_token": csrf_token(client, path)}, headers=ENGLISH)
    assert response.status_code == 400
    assert "not valid Unicode" in response.get_data(as_text=True)
    french = client.post(path, data=data | {"family_name": "\ufdd0", "csrf_token": csrf_token(client, path)})
    assert french.status_code == 400 and "Unicode" in french.get_data(as_text=True)
    assert all_keys(store) == before


def test_bad_unicode_in_a_query_string_is_a_400(client):
    assert client.get("/status?t=%EF%BF%BF").status_code == 400
    assert client.get("/p?code=01%EF%BF%BE").status_code == 400
    assert client.get("/p?code=01%ED%A0%80").status_code == 404  # bytes that are not UTF-8 stay %-encoded: no such code


# Every field of every JSON body the OpenAPI document describes --------------------------


def json_operations() -> list[tuple[str, str, list[str], bool]]:
    """(method, path, field names, needs a status token) of every API operation with a JSON body."""
    document = openapi_document()
    schemas = document["components"]["schemas"]
    found = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            content = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if content is None:
                continue
            schema = content["schema"]
            if "$ref" in schema:
                schema = schemas[schema["$ref"].rsplit("/", 1)[1]]
            bearer = any("statusToken" in scheme for scheme in operation.get("security", []))
            found.append((method.upper(), "/api/v1" + path, sorted(schema.get("properties", {})), bearer))
    return found


OPERATIONS = json_operations()


def test_the_property_below_covers_every_json_body_route():
    assert {(method, path) for method, path, _, _ in OPERATIONS} == {
        ("POST", "/api/v1/registrations"),
        ("POST", "/api/v1/registrations/confirm"),
        ("POST", "/api/v1/registrations/recover"),
        ("POST", "/api/v1/staff/prefectures/{code}/bookings/{booking_code}/check-in"),
        ("POST", "/api/v1/staff/prefectures/{code}/sites"),
        ("PUT", "/api/v1/staff/prefectures/{code}/sites/{site_id}"),
        ("POST", "/api/v1/staff/prefectures/{code}/slots/publish"),
        ("PUT", "/api/v1/staff/prefectures/{code}/schedules/{procedure}"),
        ("POST", "/api/v1/staff/prefectures/{code}/schedules/{procedure}/draws"),
        ("POST", "/api/v1/staff/prefectures/{code}/schedules/{procedure}/run"),
        ("POST", "/api/v1/staff/prefectures/{code}/registrations"),
        ("POST", "/api/v1/staff/tokens"),
        ("PATCH", "/api/v1/registration"),
        ("POST", "/api/v1/registration/offer"),
        ("POST", "/api/v1/proofs/verify"),
    }


@pytest.fixture
def waiting_token(store, settings, reference_data) -> str:
    """The status token of someone waiting in Ain's renewal pool."""
    now = datetime.datetime.now(datetime.timezone.utc)
    secret = settings.identity_key.encode()
    form = {name: value for name, value in PERSON.items() if name not in ("prefecture", "procedure")}
    applicant = reg.parse_applicant(form | {"consent": "yes"}, procedure_by_code("renewal"),
                                    ["bourg", "belley", "gex", "nantua"], now.date())
    created = reg.register(store, "01", "renewal", applicant, now=now, rng=__import__("random").Random(5),
                           identity_secret=secret, limits=reg.Limits(4, datetime.timedelta(hours=24)),
                           records=UploadedRecords(store, secret))
    reg.confirm_email(store, created.key, applicant.email, now)
    return status_token(settings.secret_key, created.key)


def valid_bodies(client, bearer: dict) -> dict[str, dict]:
    """A body each route accepts, so that one changed field is what the route meets."""
    proof = client.get("/api/v1/registration/proof", headers=bearer).get_json()
    return {
        "/api/v1/registrations": PERSON | {"email": "someone@example.org", "agdref": DEMO_AGDREF_NUMBERS[1]},
        "/api/v1/registrations/confirm": {"token": "not-a-token"},
        "/api/v1/registrations/recover": {"email": "someone@example.org"},
        "/api/v1/staff/prefectures/{code}/bookings/{booking_code}/check-in": {"site": "bourg", "override": False},
        "/api/v1/staff/prefectures/{code}/sites": {"id": "oyonnax", "name": "Oyonnax", "address": {
            "street": "1 place de la Mairie", "postcode": "01100", "city": "Oyonnax"}},
        "/api/v1/staff/prefectures/{code}/sites/{site_id}": {"name": "Gex", "address": {
            "street": "26 rue Charles Harent", "postcode": "01170", "city": "Gex"}},
        "/api/v1/staff/prefectures/{code}/slots/publish": {
            "site": "bourg", "procedure": "renewal", "first_day": "2030-01-07", "last_day": "2030-01-11",
            "weekdays": [0, 1], "opens": "09:00", "closes": "12:00", "appointment_minutes": 30, "counters": 1},
        "/api/v1/staff/prefectures/{code}/schedules/{procedure}": {"cron": "0 10 * * MON", "aging": 0.5},
        "/api/v1/staff/prefectures/{code}/schedules/{procedure}/draws": {"at": "2027-01-11T10:00"},
        "/api/v1/staff/prefectures/{code}/schedules/{procedure}/run": {"at": None},
        "/api/v1/staff/prefectures/{code}/registrations": PERSON | {"procedure": "renewal"},
        "/api/v1/staff/tokens": {"label": "scanner", "scopes": ["read"]},
        "/api/v1/registration": {"phone": "+33612345678", "sites": ["gex"], "half_days": ["mon-am"],
                                 "email": "new@example.org"},
        "/api/v1/registration/offer": {"answer": "decline"},
        "/api/v1/proofs/verify": proof,
    }


# Text with at least one surrogate, non-character or NUL somewhere in it.
bad_text = st.builds(lambda before, bad, after: before + bad + after,
                     st.text(max_size=8), st.sampled_from(BAD_TEXTS), st.text(max_size=8))


def test_no_text_in_any_field_of_any_json_route_gives_a_server_error(make_app, waiting_token):
    client = make_app(**UNLIMITED).test_client()
    bearer = {"Authorization": f"Bearer {waiting_token}"}
    bodies = valid_bodies(client, bearer)

    @hypothesis_settings(max_examples=400, deadline=None, derandomize=True, database=None,
                         suppress_health_check=[HealthCheck.too_slow])
    @given(operation=st.sampled_from(OPERATIONS), data=st.data())
    def post_anything(operation, data):
        method, path, fields, needs_token = operation
        changes = data.draw(st.dictionaries(st.sampled_from(fields), st.text(), min_size=1, max_size=3))
        where = data.draw(st.sampled_from(["nowhere", "in a value", "in a name"]))
        if where == "in a value":
            changes[data.draw(st.sampled_from(fields))] = data.draw(bad_text)
        elif where == "in a name":
            changes[data.draw(bad_text)] = data.draw(st.text())
        response = post_json(client, path, bodies[path] | changes, method, **(bearer if needs_token else {}))
        assert response.status_code < 500, (method, path, changes, response.get_data(as_text=True))

    post_anything()


def test_a_rate_limited_request_with_bad_unicode_is_still_a_429(make_app, reference_data):
    client = make_app(rate_limit_registration="1 per minute").test_client()
    body = PERSON | {"family_name": "\ud800"}
    assert post_json(client, "/api/v1/registrations", body).status_code == 400  # refused: not counted
    assert post_json(client, "/api/v1/registrations", PERSON).status_code == 201  # the minute's registration
    limited = post_json(client, "/api/v1/registrations", body)
    assert limited.status_code == 429 and limited.content_type == "application/problem+json"
