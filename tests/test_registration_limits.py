"""Bots pay, people don't: the registration budget of an address, with and without a proof of work.

Every test client here is one address (127.0.0.1), as many people behind one
connection are: an association, a counter kiosk, a mobile carrier.
"""

import datetime
import math
import random
import re

import pytest
from helpers import ENGLISH, api_person, csrf_token, sign_in

from queue_service import proof_of_work
from queue_service import registration as reg
from queue_service.reference import procedure_by_code
from queue_service.registration.agdref import UploadedRecords
from queue_service.registration.tokens import status_token
from queue_service.store.keys import budget_key

# Challenges a test solves in milliseconds.
EASY = {"altcha_cost": 10, "altcha_max_number": 40}
FRENCH = {"Accept-Language": "fr"}
FORM = "/p/01/first_request/register"


def person(number: int, **changes) -> dict:
    """Someone else each time (names, email), registering in Ain's first-request pool by the API."""
    return api_person(procedure="first_request", family_name=f"Person {chr(65 + number % 26)}{chr(65 + number // 26)}",
                      email=f"p{number}@example.org", phone=None) | changes


def form_of(number: int, client, **changes) -> dict:
    """The form of `person(number)`, as the page takes it, with its CSRF token."""
    values = {name: value for name, value in person(number).items()
              if name not in ("prefecture", "procedure", "consent", "phone", "agdref", "permit_expiry")}
    return values | {"consent": "yes", "csrf_token": csrf_token(client, FORM)} | changes


def proof(client) -> str:
    """A proof of work, as the widget makes it: fetch a challenge, solve it."""
    return proof_of_work.solve(client.get("/api/v1/challenge").get_json())


def register(client, number: int, **changes) -> int:
    return client.post("/api/v1/registrations", json=person(number, **changes)).status_code


@pytest.fixture
def waiting(store, settings, reference_data):
    """A status token of someone waiting in Ain's first-request pool (registered by the domain:
    no budget spent)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    secret = settings.identity_key.encode()
    form = {name: value for name, value in person(90).items() if name not in ("prefecture", "procedure")}
    applicant = reg.parse_applicant(form | {"consent": "yes"}, procedure_by_code("first_request"),
                                    ["bourg", "belley", "gex", "nantua"], now.date())
    created = reg.register(store, "01", "first_request", applicant, now=now, rng=random.Random(5),
                           identity_secret=secret, limits=reg.Limits(4, datetime.timedelta(hours=24)),
                           records=UploadedRecords(store, secret))
    reg.confirm_email(store, created.key, applicant.email, now)
    return status_token(settings.secret_key, created.key)


# The challenge ------------------------------------------------------------------------


def test_the_api_hands_out_fresh_signed_challenges_that_expire_in_minutes(make_app, reference_data, settings):
    client = make_app().test_client()
    first, second = (client.get("/api/v1/challenge") for _ in range(2))
    assert first.status_code == 200 and first.mimetype == "application/json"
    assert first.headers["Cache-Control"] == "no-store"  # each one is for one request
    assert first.get_json() != second.get_json()
    parameters = first.get_json()["parameters"]
    assert parameters["algorithm"] == "PBKDF2/SHA-256" and parameters["cost"] == settings.altcha_cost
    lifetime = parameters["expiresAt"] - datetime.datetime.now(datetime.timezone.utc).timestamp()
    assert settings.altcha_expiry_seconds - 5 <= lifetime <= settings.altcha_expiry_seconds
    assert client.get("/api/v1/").get_json()["challenge"] == "/api/v1/challenge"


# Proofs and the two budgets -------------------------------------------------------------


def test_the_generous_limit_applies_only_with_a_proof_and_each_proof_once(make_app, reference_data, settings):
    client = make_app(rate_limit_registration="6 per hour", rate_limit_registration_unproven="2 per hour",
                      **EASY).test_client()
    assert [register(client, number) for number in range(3)] == [201, 201, 429]  # the budget without proof
    spent = proof(client)
    assert register(client, 3, altcha=spent) == 201
    assert register(client, 4, altcha=spent) == 429  # replayed
    keys = proof_of_work.challenge_keys(settings.secret_key)
    old = proof_of_work.new_challenge(keys, proof_of_work.Difficulty(10, 40, datetime.timedelta(minutes=5)),
                                      datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=6),
                                      random.Random(1))
    assert register(client, 4, altcha=proof_of_work.solve(old)) == 429  # expired
    foreign = proof_of_work.new_challenge(proof_of_work.challenge_keys("someone else's secret"),
                                          proof_of_work.Difficulty(10, 40, datetime.timedelta(minutes=5)),
                                          datetime.datetime.now(datetime.timezone.utc), random.Random(1))
    assert register(client, 4, altcha=proof_of_work.solve(foreign)) == 429  # forged
    assert register(client, 4, altcha="bm90IGEgcHJvb2Y=") == 429  # not a proof at all
    assert [register(client, number, altcha=proof(client)) for number in (4, 5, 6, 7)] == [201, 201, 201, 429]


def test_a_proof_in_the_form_opens_the_generous_limit_too(make_app, reference_data):
    client = make_app(rate_limit_registration_unproven="1 per hour", **EASY).test_client()
    assert client.post(FORM, data=form_of(0, client)).status_code == 302
    assert client.post(FORM, data=form_of(1, client)).status_code == 429
    assert client.post(FORM, data=form_of(1, client, altcha=proof(client))).status_code == 302


def test_forms_with_mistakes_spend_nothing_and_a_refused_duplicate_does(make_app, reference_data, waiting):
    """The finding: failed form submissions were counted, so a person who made a few mistakes,
    or a few people at one kiosk, were locked out for an hour."""
    client = make_app(rate_limit_registration_unproven="3 per hour").test_client()
    for _ in range(6):
        assert client.post(FORM, data=form_of(0, client, birth_date="31/02/1990", email="nope")).status_code == 422
    assert client.post("/api/v1/registrations", json=person(1, consent=False)).status_code == 422
    assert client.post(FORM, data=form_of(0, client)).status_code == 302
    assert register(client, 90) == 409  # the person waiting: refused, and counted (bots probe that way)
    assert register(client, 1) == 201
    assert register(client, 2) == 429


def test_form_api_and_email_changes_share_one_budget(make_app, reference_data, waiting):
    client = make_app(rate_limit_registration_unproven="3 per hour").test_client()
    bearer = {"Authorization": f"Bearer {waiting}"}
    assert client.post(FORM, data=form_of(0, client)).status_code == 302
    assert register(client, 1) == 201
    assert client.patch("/api/v1/registration", json={"email": "new@example.org"}, headers=bearer).status_code == 200
    # The budget is spent, whichever way one asks.
    assert client.post(FORM, data=form_of(2, client)).status_code == 429
    assert register(client, 2) == 429
    assert client.patch("/api/v1/registration", json={"email": "other@example.org"}, headers=bearer).status_code == 429
    page = f"/status?t={waiting}"
    changed = client.post(f"/status/email?t={waiting}", data={"email": "third@example.org",
                                                               "csrf_token": csrf_token(client, page)})
    assert changed.status_code == 429
    # Preferences are no registration: not counted, not refused.
    assert client.patch("/api/v1/registration", json={"half_days": ["mon-am"]}, headers=bearer).status_code == 200


def test_the_email_change_on_the_status_page_spends_the_budget(make_app, reference_data, waiting):
    client = make_app(rate_limit_registration_unproven="1 per hour").test_client()
    page = f"/status?t={waiting}"
    changed = client.post(f"/status/email?t={waiting}", data={"email": "new@example.org",
                                                               "csrf_token": csrf_token(client, page)})
    assert changed.status_code == 200
    assert register(client, 1) == 429


def test_an_agent_registers_at_the_counter_whatever_the_address_has_spent(make_app, reference_data, staff):
    app = make_app(rate_limit_registration="1 per hour", rate_limit_registration_unproven="1 per hour")
    client = sign_in(app, "agent01")
    assert register(client, 0) == 201
    assert register(client, 1) == 429
    path = "/staff/p/01/register/first_request"
    for number in (1, 2, 3):
        values = form_of(number, client) | {"csrf_token": csrf_token(client, path), "phone": f"06 12 34 56 7{number}"}
        done = client.post(path, data=values, headers=ENGLISH)
        assert done.status_code == 200 and "The applicant is in the waiting list" in done.get_data(as_text=True)


# The answer when the budget is spent ---------------------------------------------------------


def spent_budget(make_app):
    client = make_app(rate_limit_registration_unproven="1 per hour").test_client()
    assert client.post(FORM, data=form_of(0, client)).status_code == 302
    return client


def minutes_said(text: str, pattern: str) -> int:
    found = re.search(pattern, text)
    assert found, text
    return int(found.group(1))


@pytest.mark.parametrize(("headers", "said"), [
    (FRENCH, r"Trop de demandes en peu de temps\. Réessayez dans (\d+) minutes?\."),
    (ENGLISH, r"Too many requests in a short time\. Try again in (\d+) minutes?\."),
])
def test_the_429_page_says_in_its_language_when_to_try_again(make_app, reference_data, headers, said):
    client = spent_budget(make_app)
    refused = client.post(FORM, data=form_of(1, client), headers=headers)
    assert refused.status_code == 429 and refused.mimetype == "text/html"
    page = refused.get_data(as_text=True)
    assert "per 1 hour" not in page and "1 per hour" not in page
    wait = int(refused.headers["Retry-After"])
    assert 0 < wait <= 3600
    assert minutes_said(page, said) == math.ceil(wait / 60)
    assert f'lang="{headers["Accept-Language"]}"' in page


@pytest.mark.parametrize(("headers", "said"), [
    (FRENCH, r"^Trop de demandes en peu de temps\. Réessayez dans (\d+) minutes?\.$"),
    (ENGLISH, r"^Too many requests in a short time\. Try again in (\d+) minutes?\.$"),
])
def test_the_429_problem_says_in_the_requests_language_when_to_try_again(make_app, reference_data, headers, said):
    client = spent_budget(make_app)
    refused = client.post("/api/v1/registrations", json=person(1), headers=headers)
    assert refused.status_code == 429 and refused.mimetype == "application/problem+json"
    problem = refused.get_json()
    assert minutes_said(problem["detail"], said) == math.ceil(int(refused.headers["Retry-After"]) / 60)
    assert "per" not in problem["title"] and problem["status"] == 429


def test_the_wait_is_said_in_seconds_minutes_or_hours_never_shorter_than_retry_after(app):
    from web.errors import try_again_in

    with app.test_request_context(headers=FRENCH):
        assert try_again_in(1) == "Réessayez dans 1 seconde."
        assert try_again_in(59) == "Réessayez dans 59 secondes."
        assert try_again_in(60) == "Réessayez dans 1 minute."
        assert try_again_in(61) == "Réessayez dans 2 minutes."
        assert try_again_in(3600) == "Réessayez dans 60 minutes."
        assert try_again_in(3 * 3600 + 1) == "Réessayez dans 4 heures."
    with app.test_request_context(headers=ENGLISH):
        assert try_again_in(720) == "Try again in 12 minutes."
        assert try_again_in(7200) == "Try again in 2 hours."


# The budgets in Redis: one call a registration, all or none ------------------------------


def evalsha_calls(redis_client) -> int:
    return redis_client.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0)


def test_a_registration_takes_its_three_budgets_in_one_call(make_app, reference_data, queue_redis, redis):
    """The finding (issue 19): Flask-Limiter read each of the three budgets before the view and
    counted each after it, six round trips of a registration's eight. Now one script takes
    the request from every budget; the other script is the registration's own."""
    client = make_app(rate_limit_registration_unproven="5 per hour").test_client()
    register(client, 0)  # scripts loaded, the reference cached
    before = evalsha_calls(queue_redis) + (evalsha_calls(redis) if redis is not queue_redis else 0)
    assert register(client, 1) == 201
    after = evalsha_calls(queue_redis) + (evalsha_calls(redis) if redis is not queue_redis else 0)
    assert after - before == 2
    counters = {key.decode(): int(queue_redis.get(key)) for key in queue_redis.scan_iter(budget_key("*", "*", "*"))}
    # One address, two email addresses: each counter holds what was taken from it.
    by_budget = sorted((name.split(":")[3], count) for name, count in counters.items())
    assert by_budget == [("registration", 2), ("registration-email", 1), ("registration-email", 1),
                         ("registration-unproven", 2)]
    assert 3590 < queue_redis.ttl(next(key for key in counters if ":5/1/hour:" in key)) <= 3600


def test_a_request_refused_by_one_budget_takes_nothing_from_the_others(make_app, reference_data, queue_redis):
    client = make_app(rate_limit_registration_unproven="1 per hour").test_client()
    assert register(client, 0) == 201
    email_counters = lambda: sum(int(queue_redis.get(key)) for key in  # noqa: E731
                                 queue_redis.scan_iter(budget_key("registration-email", "*", "*")))
    counted = email_counters()
    assert register(client, 1) == 429
    assert email_counters() == counted  # nothing taken for the second email address


def test_concurrent_requests_never_count_past_a_budget(queue_redis):
    """Checked before and counted after (as Flask-Limiter's deductions are), requests arriving
    together all passed the check; taken in one script, exactly the limit goes through."""
    import threading

    from queue_service.store.budgets import BudgetCounters, Window

    counters = BudgetCounters(queue_redis)
    key = budget_key("registration", "5/1/hour", "192.0.2.7")
    passed, start = [], threading.Barrier(12)

    def request() -> None:
        start.wait()
        for _ in range(4):
            passed.append(counters.take({key: Window(5, 3600)}) == 0)

    threads = [threading.Thread(target=request) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert passed.count(True) == 5 and int(queue_redis.get(key)) == 5
    wait = counters.take({key: Window(5, 3600)})
    assert 3590 < wait <= 3600  # the window's end, in seconds
    counters.give_back([key])
    assert int(queue_redis.get(key)) == 4 and counters.take({key: Window(5, 3600)}) == 0


def test_the_wait_is_the_longest_of_the_spent_budgets(queue_redis):
    from queue_service.store.budgets import BudgetCounters, Window

    counters = BudgetCounters(queue_redis)
    hour, day = budget_key("registration", "1/1/hour", "x"), budget_key("registration", "1/1/day", "x")
    assert counters.take({hour: Window(1, 3600), day: Window(1, 86400)}) == 0
    assert 86390 < counters.take({hour: Window(1, 3600), day: Window(1, 86400)}) <= 86400
    queue_redis.delete(day)
    assert 3590 < counters.take({hour: Window(1, 3600), day: Window(1, 86400)}) <= 3600
    assert queue_redis.get(day) is None  # refused: nothing taken from the budget with room



def test_the_budgets_call_reads_a_key_too_whether_taken_or_refused(queue_redis):
    """A registration reads the reference version in its budgets' round trip (web/budgets.py,
    pool_or_404): the value comes back with the verdict, and reading takes nothing."""
    from queue_service.store.budgets import BudgetCounters, Window

    counters = BudgetCounters(queue_redis)
    key, other = budget_key("registration", "1/1/hour", "read"), budget_key("registration", "1/1/hour", "unread")
    read = budget_key("read-along", "0", "version")  # any string key; one the test made
    assert counters.take_reading({key: Window(1, 3600)}, read) == (0, None)  # not set: None
    queue_redis.set(read, "v1")
    wait, value = counters.take_reading({key: Window(1, 3600)}, read)
    assert 3590 < wait <= 3600 and value == b"v1"  # refused, and read all the same
    assert counters.take_reading({}, read) == (0, b"v1")
    assert int(queue_redis.get(key)) == 1 and queue_redis.get(other) is None
    assert counters.take_reading({other: Window(1, 3600)}, None) == (0, None)
    assert int(queue_redis.get(other)) == 1


def test_the_registration_page_keeps_the_default_limit_its_post_only_the_budgets(make_app, reference_data):
    """Flask-Limiter is not asked about a registration's POST (the budgets are its only limits),
    but still limits the form's GET, and the API's other routes."""
    client = make_app(rate_limit_default="2 per minute", rate_limit_registration="1000 per hour",
                      rate_limit_registration_unproven="1000 per hour",
                      rate_limit_registration_email="1000 per hour").test_client()
    for number in range(4):
        person = api_person(email=f"p{number}@example.org", agdref=f"01 0000 000{number + 1}")
        assert client.post("/api/v1/registrations", json=person).status_code in (201, 422)
    assert [client.get("/p/01/renewal/register").status_code for _ in range(3)] == [200, 200, 429]
    assert [client.get("/api/v1/prefectures").status_code for _ in range(3)] == [200, 200, 429]


def test_the_apis_private_link_route_keeps_its_limit_on_every_method(make_app, reference_data):
    """/api/v1/registration (GET, PATCH with an email change, DELETE) is opened by a private
    link's token: it has the links' limit per address, the PATCH the budgets too. Exempting its
    PATCH from the default limit (limiter.exempt) dropped the links' limit on every method."""
    client = make_app(rate_limit_links="3 per minute").test_client()
    guesses = {"Authorization": "Bearer not-a-real-token"}
    answers = [client.get("/api/v1/registration", headers=guesses).status_code for _ in range(2)]
    answers.append(client.patch("/api/v1/registration", headers=guesses, json={"email": "x@example.org"}).status_code)
    answers.append(client.delete("/api/v1/registration", headers=guesses).status_code)
    assert 429 not in answers[:3] and answers[3] == 429, answers
