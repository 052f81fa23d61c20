"""Redis goes away and comes back: the web answers 503 with Retry-After meanwhile, never 500.

The app runs against a redis-server of the test's own, which the test kills
(SIGKILL, as an operator's probe did) and starts again on the same port.
"""

from __future__ import annotations

import datetime
import itertools
import random

import pytest
from helpers import PASSWORD, csrf_token

from queue_service import reference
from queue_service import registration as registrations
from queue_service.registration.agdref import UploadedRecords
from queue_service.registration.tokens import status_token
from queue_service.staff import accounts
from queue_service.store import Store

ENGLISH = {"Accept-Language": "en"}
# A small run of the policy simulator (queued, never run here), and a job id that names no job.
SIMULATION = {"start": "scenario:ain-2019", "seed": "1", "weeks": "2", "arrivals_per_week": "10", "slots_per_week": "10"}
NO_JOB = "00000000-0000-4000-8000-000000000000"


@pytest.fixture
def outage_app(make_app, killable_redis, settings):
    """The app on the killable Redis, with Ain's reference data, a staff account and one registration."""
    import redis as redis_py

    store = Store(redis_py.Redis.from_url(killable_redis.url))
    store.load_reference(reference.PREFECTURES, reference.PROCEDURES)
    store.add_missing_sites(reference.DEMO_SITES)
    UploadedRecords(store, settings.identity_key.encode()).replace("01", reference.DEMO_AGDREF_NUMBERS)
    now = datetime.datetime.now(datetime.timezone.utc)
    accounts.create_account(store, None, email="admin01@example.gouv.fr", name="admin01",
                            role=accounts.Role.PREFECTURE_ADMIN, prefecture="01", password=PASSWORD, now=now)
    form = {"family_name": "Outage", "given_names": "Test", "birth_date": "1990-01-01", "nationality": "MA",
            "email": "outage@example.org", "phone": "+33612000001", "consent": "yes", "sites": ["bourg"]}
    applicant = registrations.parse_applicant(form, reference.procedure_by_code("first_request"), ["bourg"],
                                              now.date())
    created = registrations.register(
        store, "01", "first_request", applicant, now=now, rng=random.Random(1),
        identity_secret=settings.identity_key.encode(), limits=registrations.Limits(4, datetime.timedelta(hours=24)),
        records=UploadedRecords(store, settings.identity_key.encode()),
    )
    app = make_app(redis_url=killable_redis.url)
    app.testing = False  # the error handlers answer, as in production
    app.config["WTF_CSRF_ENABLED"] = False  # the form POST must reach the view while Redis is down
    return app, status_token(settings.secret_key, created.key)


def requests_of_every_kind(app, token: str):
    """(label, send) for one route of each kind: pages, forms, a link's page, the API, staff, health."""
    applicant = app.test_client()
    staff = app.test_client()
    page = csrf_token(staff, "/staff/login")
    signed_in = staff.post("/staff/login", data={"email": "admin01@example.gouv.fr", "password": PASSWORD,
                                                  "csrf_token": page})
    assert signed_in.status_code == 302
    people = itertools.count()

    def registration_form():  # another person each time: the same one again would be a duplicate (409)
        return {"family_name": f"Later {next(people)}", "given_names": "Test", "birth_date": "1990-01-01",
                "nationality": "MA", "email": "later@example.org", "consent": "yes", "sites": "bourg"}

    return [
        ("home", lambda: applicant.get("/", headers=ENGLISH)),
        ("pool page", lambda: applicant.get("/p/01", headers=ENGLISH)),
        ("register form", lambda: applicant.get("/p/01/first_request/register", headers=ENGLISH)),
        ("register POST", lambda: applicant.post("/p/01/first_request/register", data=registration_form(),
                                                 headers=ENGLISH)),
        ("status page", lambda: applicant.get(f"/status?t={token}", headers=ENGLISH)),
        ("API GET", lambda: applicant.get("/api/v1/prefectures")),
        ("API POST", lambda: applicant.post("/api/v1/registrations", json={"prefecture": "01"})),
        ("staff page", lambda: staff.get("/staff/p/01/", headers=ENGLISH)),
        ("simulator POST", lambda: staff.post("/staff/p/01/simulator", data=SIMULATION, headers=ENGLISH)),
        ("simulation's progress", lambda: staff.get(f"/staff/p/01/simulator/{NO_JOB}/progress", headers=ENGLISH)),
        ("readyz", lambda: applicant.get("/readyz")),
        ("healthz", lambda: applicant.get("/healthz")),
    ]


def test_every_kind_of_route_answers_503_with_retry_after_while_redis_is_down(outage_app, killable_redis):
    app, token = outage_app
    routes = requests_of_every_kind(app, token)
    before = {label: send().status_code for label, send in routes}
    assert 500 not in before.values(), before

    killable_redis.kill()
    for label, send in routes:
        response = send()
        if label == "healthz":
            assert response.status_code == 200, "healthz reads no Redis"
            continue
        assert response.status_code == 503, (label, response.status_code, response.get_data(as_text=True)[:300])
        assert response.headers.get("Retry-After", "").isdigit(), (label, dict(response.headers))
        if label.startswith("API"):
            assert response.content_type == "application/problem+json", label
        elif label != "readyz":
            assert "temporarily unavailable" in response.get_data(as_text=True), label

    killable_redis.start()
    after = {label: send().status_code for label, send in routes}
    assert after == before, (before, after)
