"""The staff API's sites and slots: the same rules and the same domain calls as the staff pages,
each route refused without its scope, bad input a 422 that changes nothing, publishing
idempotent, and the page and the API publishing the same slots for the same template."""

import datetime
import json
from zoneinfo import ZoneInfo

import pytest
from helpers import (
    ENGLISH,
    POOL,
    all_keys,
    csrf_token,
    first_offer,
    publish_slots,
    sign_in,
)

from queue_service.staff import accounts

NOW = datetime.datetime.now(datetime.timezone.utc)
NEXT_MONDAY = (NOW + datetime.timedelta(days=7 - NOW.weekday() + 7)).date()
FRENCH = {"Accept-Language": "fr"}
API = "/api/v1/staff/prefectures"

OYONNAX = {
    "id": "oyonnax",
    "name": "Antenne d'Oyonnax",
    "kind": "sub_prefecture",
    "address": {"street": "1 place de la Mairie", "postcode": "01100", "city": "Oyonnax"},
    "opening_hours": [{"weekday": 1, "opens": "09:00", "closes": "12:00"},
                      {"weekday": 1, "opens": "13:30", "closes": "16:00"},
                      {"weekday": 4, "opens": "08:30", "closes": "11:45"}],
    "closed": False,
}
WEEK = {"site": "bourg", "procedure": "renewal", "first_day": NEXT_MONDAY.isoformat(),
        "last_day": (NEXT_MONDAY + datetime.timedelta(days=4)).isoformat(), "weekdays": [0, 1, 2, 3, 4],
        "opens": "09:00", "closes": "12:00", "appointment_minutes": 30, "counters": 2}


def bearer(store, who: str, *scopes: str) -> dict:
    """Headers with a token of `who` (staff fixture) for `scopes` (all its role's when none)."""
    account = store.staff_account_by_email(f"{who}@example.gouv.fr")
    text, _ = accounts.new_api_token(store, account, "script", NOW, scopes=list(scopes) or None)
    return {"Authorization": f"Bearer {text}"} | ENGLISH


@pytest.fixture
def sites_token(store, staff):
    return bearer(store, "admin01", "read", "sites:write")


@pytest.fixture
def slots_token(store, staff):
    return bearer(store, "admin01", "read", "slots:write")


def send(client, method: str, path: str, headers: dict, body=None, **extra):
    data = None if body is None else json.dumps(body)
    return client.open(path, method=method, data=data, content_type="application/json" if body is not None else None,
                       headers=headers | extra)


def week_slots(store, monday=NEXT_MONDAY) -> list:
    start = datetime.datetime.combine(monday, datetime.time(), datetime.timezone.utc)
    return store.prefecture_slots("01", start, start + datetime.timedelta(days=7))


def field_errors(response) -> dict:
    return {error["field"]: error["message"] for error in response.get_json()["errors"]}


# Scopes ---------------------------------------------------------------------------------------

CSV = "site;procedure;date;start;duration_minutes;counter\ngex;renewal;{day};09:00;20;1\n"
CHANGES = [
    ("POST", "/01/sites", OYONNAX, "sites:write"),
    ("PUT", "/01/sites/bourg", OYONNAX, "sites:write"),
    ("POST", "/01/sites/bourg/close", None, "sites:write"),
    ("DELETE", "/01/sites/nantua", None, "sites:write"),
    ("POST", "/01/slots/publish", WEEK, "slots:write"),
    ("POST", "/01/slots/import", CSV, "slots:write"),
    ("POST", "/01/slots/first_request/{slot}/cancel", None, "slots:write"),
]


@pytest.mark.parametrize(("method", "path", "body", "scope"), CHANGES)
def test_each_change_needs_its_scope_and_an_account_allowed_to_manage(client, store, staff, method, path, body,
                                                                      scope):
    slot = publish_slots(store, 1)[0]
    path = API + path.format(slot=slot.id)
    other = "slots:write" if scope == "sites:write" else "sites:write"
    without_scope, agent, other_prefecture, allowed = (bearer(store, "admin01", "read", other), bearer(store, "agent01"),
                                                       bearer(store, "admin69", scope), bearer(store, "admin01", scope))
    before = all_keys(store), store.sites("01"), store.prefecture_slots("01", NOW, NOW + datetime.timedelta(days=400))

    def attempt(headers):
        if isinstance(body, str):
            return client.post(path, data=body.format(day=NEXT_MONDAY), content_type="text/csv", headers=headers)
        return send(client, method, path, headers, body)

    refused = attempt(without_scope)
    assert refused.status_code == 403 and refused.content_type == "application/problem+json"
    assert refused.get_json()["required_scope"] == scope
    refused = attempt(agent)  # every scope an agent may have: none to manage
    assert refused.status_code == 403 and refused.get_json()["required_scope"] == scope
    refused = attempt(other_prefecture)
    assert refused.status_code == 403 and "required_scope" not in refused.get_json()
    assert attempt(ENGLISH).status_code == 401
    after = all_keys(store), store.sites("01"), store.prefecture_slots("01", NOW, NOW + datetime.timedelta(days=400))
    assert after == before
    done = attempt(allowed)
    assert done.status_code < 300, done.get_data(as_text=True)
    assert (store.sites("01"), store.prefecture_slots("01", NOW, NOW + datetime.timedelta(days=400))) != before[1:]


def test_the_openapi_document_states_each_routes_scope(client):
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    for method, path, _, scope in CHANGES:
        operation = paths["/staff/prefectures/{code}" + path[3:].replace("first_request/{slot}", "{procedure}/{slot_id}")
                          .replace("bourg", "{site_id}").replace("nantua", "{site_id}")][method.lower()]
        assert operation["security"] == [{"apiToken": [scope]}] and scope in operation["description"]
        assert any(parameter["name"] == "Idempotency-Key" for parameter in operation["parameters"])


# Sites ----------------------------------------------------------------------------------------


def test_a_site_is_created_read_edited_closed_reopened_and_deleted(client, store, sites_token):
    response = send(client, "POST", f"{API}/01/sites", sites_token, OYONNAX)
    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.headers["Location"] == f"{API}/01/sites/oyonnax"
    assert response.get_json() == OYONNAX
    site = store.site("01", "oyonnax")
    assert [(h.weekday, h.opens.isoformat("minutes")) for h in site.opening_hours] == [
        (1, "09:00"), (1, "13:30"), (4, "08:30")]
    shown = client.get(response.headers["Location"], headers=sites_token).get_json()
    assert shown == OYONNAX
    assert shown in client.get(f"{API}/01/sites", headers=sites_token).get_json()["items"]
    # What GET shows, PUT takes back unchanged: a round trip.
    assert send(client, "PUT", f"{API}/01/sites/oyonnax", sites_token, shown).get_json() == OYONNAX
    assert store.site("01", "oyonnax") == site
    edited = dict(OYONNAX, name="Maison France Services", opening_hours=[
        {"weekday": 2, "opens": "14:00", "closes": "17:00"}, {"weekday": 2, "opens": "08:00", "closes": "12:00"}])
    del edited["id"]
    response = send(client, "PUT", f"{API}/01/sites/oyonnax", sites_token, edited)
    assert response.status_code == 200
    assert response.get_json()["opening_hours"] == [{"weekday": 2, "opens": "08:00", "closes": "12:00"},
                                                    {"weekday": 2, "opens": "14:00", "closes": "17:00"}]
    assert store.site("01", "oyonnax").name == "Maison France Services"
    closed = client.post(f"{API}/01/sites/oyonnax/close", headers=sites_token)
    assert closed.status_code == 200 and closed.get_json()["closed"] is True and store.site("01", "oyonnax").closed
    assert "sites-oyonnax" not in client.get("/p/01/renewal/register").get_data(as_text=True)
    reopened = send(client, "PUT", f"{API}/01/sites/oyonnax", sites_token, closed.get_json() | {"closed": False})
    assert reopened.status_code == 200 and not store.site("01", "oyonnax").closed
    assert client.delete(f"{API}/01/sites/oyonnax", headers=sites_token).status_code == 204
    assert store.site("01", "oyonnax") is None
    assert client.delete(f"{API}/01/sites/oyonnax", headers=sites_token).status_code == 404
    assert client.get(f"{API}/01/sites/oyonnax", headers=sites_token).status_code == 404
    assert client.post(f"{API}/01/sites/oyonnax/close", headers=sites_token).status_code == 404
    assert send(client, "PUT", f"{API}/01/sites/oyonnax", sites_token, edited).status_code == 404
    assert store.site("01", "oyonnax") is None


BAD_SITES = [
    ({"id": "Bourg!"}, "id"),
    ({"id": "bourg"}, "id"),  # taken
    ({"name": "  "}, "name"),
    ({"kind": "town_hall"}, "kind"),
    ({"kind": 3}, "kind"),
    ({"address": "1 place de la Mairie, 01100 Oyonnax"}, "address"),
    ({"address": {"street": "1 place de la Mairie", "postcode": "1100", "city": "Oyonnax"}}, "address.postcode"),
    ({"address": {"street": "", "postcode": "01100", "city": "Oyonnax"}}, "address.street"),
    ({"address": {"street": "1 place de la Mairie", "postcode": "01100"}}, "address.city"),
    ({"opening_hours": [{"weekday": 1, "opens": "09:00", "closes": "12:00"},
                        {"weekday": 1, "opens": "11:00", "closes": "16:00"}]}, "opening_hours"),
    ({"opening_hours": [{"weekday": 7, "opens": "09:00", "closes": "12:00"}]}, "opening_hours"),
    ({"opening_hours": [{"weekday": 1, "opens": "12:00", "closes": "09:00"}]}, "opening_hours"),
    ({"opening_hours": [{"weekday": True, "opens": "09:00", "closes": "12:00"}]}, "opening_hours"),
    ({"opening_hours": [{"weekday": 1, "opens": "9h", "closes": "12:00"}]}, "opening_hours"),
    ({"opening_hours": [{"weekday": 1, "opens": "09:00,10:00", "closes": "12:00"}]}, "opening_hours"),
    ({"opening_hours": {"mon": "09:00-12:00"}}, "opening_hours"),
    ({"closed": "yes"}, "closed"),
]


@pytest.mark.parametrize(("change", "field"), BAD_SITES)
def test_a_wrong_site_is_a_422_problem_naming_the_field_and_changes_nothing(client, store, sites_token, change,
                                                                            field):
    before = all_keys(store), store.sites("01")
    created = send(client, "POST", f"{API}/01/sites", sites_token, OYONNAX | change)
    assert created.status_code == 422 and created.content_type == "application/problem+json"
    assert field in field_errors(created), created.get_json()
    if field != "id":
        edit = {name: value for name, value in (OYONNAX | change).items() if name != "id"}
        edited = send(client, "PUT", f"{API}/01/sites/gex", sites_token, edit)
        assert edited.status_code == 422 and field in field_errors(edited)
    assert store.sites("01") == before[1]
    assert all_keys(store) == before[0]


def test_site_errors_are_in_the_readers_language(client, store, sites_token):
    french = send(client, "POST", f"{API}/01/sites", sites_token, OYONNAX | {"id": "bourg", "name": ""}, **FRENCH)
    errors = field_errors(french)
    assert french.status_code == 422 and "identifiant" in errors["id"] and "nom" in errors["name"]
    assert "corrig" in french.get_json()["title"]
    english = send(client, "POST", f"{API}/01/sites", sites_token, OYONNAX | {"id": "bourg"})
    assert "already has this identifier" in field_errors(english)["id"]


def test_a_json_body_that_is_not_an_object_is_refused(client, store, sites_token):
    before = store.sites("01")
    assert send(client, "PUT", f"{API}/01/sites/gex", sites_token, ["name"]).status_code == 422
    assert client.put(f"{API}/01/sites/gex", data="name=Gex", headers=sites_token).status_code == 400
    assert store.sites("01") == before


def test_a_site_with_future_slots_is_not_deleted_as_on_the_page(app, client, store, sites_token, slots_token):
    assert send(client, "POST", f"{API}/01/slots/publish", slots_token, WEEK).status_code == 201
    refused = client.delete(f"{API}/01/sites/bourg", headers=sites_token)
    assert refused.status_code == 409 and refused.get_json()["code"] == "site-in-use"
    assert "future slots" in refused.get_json()["title"]
    page = sign_in(app, "admin01")
    token = csrf_token(page, "/staff/p/01/sites")
    assert page.post("/staff/p/01/sites/bourg/delete", data={"csrf_token": token}).status_code == 409
    assert store.site("01", "bourg") is not None
    # Closing keeps the site, its slots and their history; it takes no new slots.
    assert client.post(f"{API}/01/sites/bourg/close", headers=sites_token).status_code == 200
    assert len(week_slots(store)) == 60
    again = send(client, "POST", f"{API}/01/slots/publish", slots_token,
                 WEEK | {"first_day": (NEXT_MONDAY + datetime.timedelta(days=7)).isoformat(),
                         "last_day": (NEXT_MONDAY + datetime.timedelta(days=11)).isoformat()})
    assert again.status_code == 422 and "site" in field_errors(again)


# Slots: publishing ------------------------------------------------------------------------------


def test_a_template_publishes_its_slots_then_overlaps_are_refused_with_the_conflicts(client, store, slots_token):
    response = send(client, "POST", f"{API}/01/slots/publish", slots_token, WEEK)
    assert response.status_code == 201, response.get_data(as_text=True)
    body = response.get_json()
    assert body["published"] == 60 and len(body["items"]) == 60
    assert {item["id"] for item in body["items"]} == {slot.id for slot in week_slots(store)}
    first = body["items"][0]
    assert first["site"] == "bourg" and first["counter"] == 1 and first["status"] == "open"
    assert datetime.datetime.fromisoformat(first["starts_at"]).astimezone(ZoneInfo("Europe/Paris")).time() == \
        datetime.time(9, 0)
    listed = client.get(response.headers["Location"], headers=slots_token).get_json()["items"]
    assert listed == body["items"]
    before = all_keys(store), week_slots(store)
    overlap = send(client, "POST", f"{API}/01/slots/publish", slots_token,
                   WEEK | {"procedure": "first_request", "opens": "11:15"})
    assert overlap.status_code == 422 and overlap.get_json()["code"] == "slots-overlap"
    problem = overlap.get_json()
    assert problem["conflict_count"] == 20 and len(problem["conflicts"]) == 20  # 11:15 against 11:00 and 11:30
    conflict = problem["conflicts"][0]
    assert conflict["slot"]["procedure"] == "first_request" and conflict["overlaps"]["procedure"] == "renewal"
    assert conflict["slot"]["counter"] == conflict["overlaps"]["counter"]
    assert "slots" in field_errors(overlap)
    assert (all_keys(store), week_slots(store)) == before


BAD_TEMPLATES = [
    ({"site": "mars"}, "site"),
    ({"procedure": "visa"}, "procedure"),
    ({"first_day": "2020-01-06"}, "first_day"),
    ({"first_day": "next monday"}, "first_day"),
    ({"first_day": "9999-12-31", "last_day": "9999-12-31", "opens": "22:00", "closes": "23:59"}, "first_day"),
    ({"last_day": (NEXT_MONDAY + datetime.timedelta(days=100)).isoformat()}, "last_day"),
    ({"weekdays": []}, "weekdays"),
    ({"weekdays": ["monday"]}, "weekdays"),
    ({"weekdays": 8}, "weekdays"),
    ({"opens": "25:00"}, "opens"),
    ({"closes": "08:00"}, "closes"),
    ({"appointment_minutes": 2}, "appointment_minutes"),
    ({"appointment_minutes": 30.5}, "appointment_minutes"),
    ({"counters": 51}, "counters"),
    ({"counters": None}, "counters"),
    ({"site": ["bourg"]}, "site"),
]


@pytest.mark.parametrize(("change", "field"), BAD_TEMPLATES)
def test_a_wrong_template_is_a_422_naming_the_field_and_publishes_nothing(client, store, slots_token, change, field):
    before = all_keys(store)
    response = send(client, "POST", f"{API}/01/slots/publish", slots_token, WEEK | change)
    assert response.status_code == 422 and field in field_errors(response), response.get_json()
    assert all_keys(store) == before


def test_template_errors_are_in_the_readers_language(client, slots_token):
    response = send(client, "POST", f"{API}/01/slots/publish", slots_token, WEEK | {"counters": 0}, **FRENCH)
    assert "guichets" in field_errors(response)["counters"]


def test_publishing_again_with_the_same_idempotency_key_publishes_once(client, store, slots_token):
    key = {"Idempotency-Key": "publish-week-1"}
    first = send(client, "POST", f"{API}/01/slots/publish", slots_token | key, WEEK)
    again = send(client, "POST", f"{API}/01/slots/publish", slots_token | key, WEEK)
    assert first.status_code == again.status_code == 201
    assert again.get_json() == first.get_json() and again.headers["Location"] == first.headers["Location"]
    assert again.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first.headers
    assert len(week_slots(store)) == 60
    other = send(client, "POST", f"{API}/01/slots/publish", slots_token | key, WEEK | {"counters": 3})
    assert other.status_code == 422 and other.get_json()["code"] == "idempotency-key-reused"
    assert len(week_slots(store)) == 60
    # Without the key the same request is another one: refused, as overlapping the first.
    assert send(client, "POST", f"{API}/01/slots/publish", slots_token, WEEK).status_code == 422


def test_the_page_and_the_api_publish_the_same_slots_for_the_same_template(app, client, store, slots_token):
    """The page publishes the template one week, the API the same template the next week: the
    same slots, a week apart, on the prefecture's clock."""
    page = sign_in(app, "admin01")
    form = {name: str(value) for name, value in WEEK.items() if name != "weekdays"}
    form |= {"csrf_token": csrf_token(page, "/staff/p/01/slots"), "source": "template", "weekdays": ["0", "1", "2", "3", "4"]}
    assert page.post("/staff/p/01/slots", data=form, headers=ENGLISH).status_code == 200
    later = NEXT_MONDAY + datetime.timedelta(days=7)
    body = WEEK | {"first_day": later.isoformat(), "last_day": (later + datetime.timedelta(days=4)).isoformat(),
                   "weekdays": ["mon", "tue", "wed", "thu", "fri"]}
    assert send(client, "POST", f"{API}/01/slots/publish", slots_token, body).status_code == 201
    zone = ZoneInfo("Europe/Paris")

    def seen(slots, shift=datetime.timedelta()):
        return sorted((slot.site, slot.procedure, slot.starts_at.astimezone(zone).replace(tzinfo=None) - shift,
                       slot.duration_minutes, slot.counter, slot.status.value) for slot in slots)

    by_page, by_api = week_slots(store), week_slots(store, later)
    assert len(by_page) == 60 and seen(by_api, datetime.timedelta(days=7)) == seen(by_page)


# Slots: CSV ------------------------------------------------------------------------------------------


def test_a_csv_file_publishes_its_rows(client, store, slots_token):
    day = NEXT_MONDAY.isoformat()
    french_day = NEXT_MONDAY.strftime("%d/%m/%Y")
    text = ("\ufeffsite;procedure;date;start;duration_minutes;counter\n"
            f"gex;renewal;{day};09:00;20;1\n"
            f"GEX;first_request;{french_day};09:20;20;1\n")
    response = client.post(f"{API}/01/slots/import", data=text.encode(), content_type="text/csv; charset=utf-8",
                           headers=slots_token)
    assert response.status_code == 201, response.get_data(as_text=True)
    assert [item["id"] for item in response.get_json()["items"]] == [
        f"gex-renewal-{NEXT_MONDAY:%Y%m%d}T0900-c1", f"gex-first_request-{NEXT_MONDAY:%Y%m%d}T0920-c1"]
    assert len(week_slots(store)) == 2


def test_a_csv_file_with_a_wrong_row_publishes_nothing_and_lists_the_rows(client, store, slots_token):
    day = NEXT_MONDAY.isoformat()
    text = ("site;procedure;date;start;duration_minutes;counter\n"
            f"gex;renewal;{day};09:00;20;1\n"
            f"mars;renewal;{day};09:00;20;1\n"
            f"gex;renewal;not-a-date;09:00;20;1\n"
            "gex;renewal;9999-12-31;23:00;240;1\n")
    before = all_keys(store)
    response = client.post(f"{API}/01/slots/import", data=text, content_type="text/csv", headers=slots_token)
    assert response.status_code == 422 and response.get_json()["code"] == "slot-rows-wrong"
    assert [row["line"] for row in response.get_json()["rows"]] == [3, 4, 5]
    assert "site" in response.get_json()["rows"][0]["message"]
    assert "file" in field_errors(response)
    for wrong in ("", "not;a;header\n", "site,procedure\n"):
        refused = client.post(f"{API}/01/slots/import", data=wrong, content_type="text/csv", headers=slots_token)
        assert refused.status_code == 422 and refused.get_json()["rows"][0]["line"] == 1
    as_json = client.post(f"{API}/01/slots/import", json={"file": text}, headers=slots_token)
    assert as_json.status_code == 415 and as_json.content_type == "application/problem+json"
    not_text = client.post(f"{API}/01/slots/import", data=text.encode() + "\uffff".encode(), content_type="text/csv",
                           headers=slots_token)
    assert not_text.status_code == 400
    assert all_keys(store) == before
    # The page publishes the good rows and lists the others, as before.
    overlap = client.post(f"{API}/01/slots/import", data=text.splitlines()[0] + "\n" + text.splitlines()[1] + "\n"
                          + f"gex;renewal;{day};09:10;20;1\n", content_type="text/csv", headers=slots_token)
    assert overlap.status_code == 422 and overlap.get_json()["code"] == "slots-overlap"
    assert all_keys(store) == before


# Slots: cancelling and listing --------------------------------------------------------------------------


def test_cancelling_an_open_slot_then_again(client, store, slots_token):
    send(client, "POST", f"{API}/01/slots/publish", slots_token, WEEK)
    slot = week_slots(store)[0]
    response = client.post(f"{API}/01/slots/renewal/{slot.id}/cancel", headers=slots_token)
    assert response.status_code == 200
    assert response.get_json()["slot"]["status"] == "cancelled" and response.get_json()["previous_status"] == "open"
    assert store.slot("01:renewal", slot.id).status.value == "cancelled"
    assert client.post(f"{API}/01/slots/renewal/{slot.id}/cancel", headers=slots_token).status_code == 409
    assert client.post(f"{API}/01/slots/renewal/no-such-slot/cancel", headers=slots_token).status_code == 404
    assert client.post(f"{API}/01/slots/visa/{slot.id}/cancel", headers=slots_token).status_code == 404
    assert client.post(f"{API}/01/slots/a:b/{slot.id}/cancel", headers=slots_token).status_code == 404


def test_cancelling_an_offered_slot_tells_its_holder_and_puts_them_back(client, store, staff, drawn):
    key, offer = first_offer(store)
    token = bearer(store, "admin01", "slots:write")
    response = client.post(f"{API}/01/slots/first_request/{offer.slot_id}/cancel", headers=token)
    assert response.status_code == 200 and response.get_json()["previous_status"] == "offered"
    assert store.registration(key).status.value == "waiting"
    assert store.outbox(POOL)[-1]["kind"] == "slot_cancelled"


def test_slots_are_listed_by_days_site_and_procedure_as_on_the_page(client, store, slots_token):
    send(client, "POST", f"{API}/01/slots/publish", slots_token, WEEK)
    send(client, "POST", f"{API}/01/slots/publish", slots_token,
         WEEK | {"site": "gex", "procedure": "first_request", "counters": 1})

    def listed(query):
        response = client.get(f"{API}/01/slots?{query}", headers=slots_token)
        assert response.status_code == 200, (query, response.get_data(as_text=True))
        return response.get_json()["items"]

    tuesday = (NEXT_MONDAY + datetime.timedelta(days=1)).isoformat()
    assert len(listed(f"from={tuesday}&to={tuesday}")) == 18
    assert {item["site"] for item in listed(f"from={tuesday}&to={tuesday}&site=gex")} == {"gex"}
    assert len(listed(f"from={NEXT_MONDAY}&procedure=renewal")) == 60
    assert len(listed(f"from={NEXT_MONDAY}&site=bourg&procedure=first_request")) == 0
    assert len(listed("days=60")) == 90 and len(listed("days=60&site=gex")) == 30
    assert listed("days=1") == []
    for query, field in [("from=tomorrow", "from"), ("to=2027-02-30", "to"), ("from=", "from"), ("to=9999-12-31", "to"), ("site=mars", "site"),
                         ("procedure=visa", "procedure"), (f"from={tuesday}&to={NEXT_MONDAY}", "to"),
                         ("from=2027-01-01&to=2029-01-01", "to")]:
        refused = client.get(f"{API}/01/slots?{query}", headers=slots_token)
        assert refused.status_code == 422 and field in field_errors(refused), query
