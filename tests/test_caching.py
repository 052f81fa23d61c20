"""No cache keeps an answer that holds personal data or a token; public pages stay cacheable."""

import datetime

from helpers import DRAW_ID, csrf_token, first_offer, sign_in

from queue_service import offers
from queue_service.registration import email_print
from queue_service.registration.tokens import confirmation_token, status_token
from queue_service.staff import accounts


def test_every_private_page_and_api_answer_is_no_store(drawn, app, staff, settings):
    store, _, people = drawn
    key, _ = first_offer(store)
    now = datetime.datetime.now(datetime.timezone.utc)
    offers.confirm(store, key, settings.identity_key.encode(), now)
    t = status_token(settings.secret_key, key)
    waiting = next(person.key for person in people if store.registration(person.key).status.value == "waiting")
    w = status_token(settings.secret_key, waiting)
    address = email_print(settings.identity_key.encode(), waiting.pool, store.registration(waiting).applicant.email)
    confirm = confirmation_token(settings.secret_key, waiting, address, now)
    bearer = {"Authorization": f"Bearer {t}"}
    staff_token, _ = accounts.new_api_token(store, staff["admin01"], "reports", now)
    staff_bearer = {"Authorization": f"Bearer {staff_token}"}
    client = app.test_client()
    answers = {
        f"/status?t={t}": client.get(f"/status?t={t}"),
        f"/offer?t={t}": client.get(f"/offer?t={t}"),
        f"/offer/decline?t={t}": client.get(f"/offer/decline?t={t}"),
        f"/status/proof?t={t}": client.get(f"/status/proof?t={t}"),
        f"/status/proof.json?t={t}": client.get(f"/status/proof.json?t={t}"),
        f"/status/withdraw?t={t}": client.get(f"/status/withdraw?t={t}"),
        f"/booking/cancel?t={t}": client.get(f"/booking/cancel?t={t}"),
        f"/booking/appointment.ics?t={t}": client.get(f"/booking/appointment.ics?t={t}"),
        f"/booking/qr.svg?t={t}": client.get(f"/booking/qr.svg?t={t}"),
        f"/confirm?t={confirm}": client.get(f"/confirm?t={confirm}"),
        f"/email/confirm?t={confirm}": client.get(f"/email/confirm?t={confirm}"),
        "/status?t=forged": client.get("/status?t=forged"),
        "POST /status/preferences": client.post(f"/status/preferences?t={w}", data={
            "csrf_token": csrf_token(client, f"/status?t={w}"), "phone": "+33612345678"}),
        "/p/01/renewal/register (its form carries a CSRF token)": client.get("/p/01/renewal/register"),
        "/p/01/first_request/registered": client.get("/p/01/first_request/registered?ref=01F-AAAAAA"),
        "/verify (its form carries a CSRF token)": client.get("/verify"),
        "GET /api/v1/registration": client.get("/api/v1/registration", headers=bearer),
        "GET /api/v1/registration/proof": client.get("/api/v1/registration/proof", headers=bearer),
        "POST /api/v1/registrations/confirm": client.post("/api/v1/registrations/confirm", json={"token": confirm}),
        "POST /api/v1/registrations": client.post("/api/v1/registrations", json={}),
        "GET /api/v1/staff/prefectures/01/sites": client.get("/api/v1/staff/prefectures/01/sites",
                                                             headers=staff_bearer),
        "/staff/login": client.get("/staff/login"),
        "/readyz": client.get("/readyz"),
        "/metrics": client.get("/metrics"),
    }
    admin = sign_in(app, "admin01")
    for path in ["/staff/", "/staff/p/01/", "/staff/p/01/dashboard", "/staff/p/01/dashboard/renewal/daily.csv",
                 "/staff/tokens", "/staff/p/01/check-in"]:
        answers[path] = admin.get(path)
    real_pages = [path for path, answer in answers.items() if answer.status_code == 200]
    assert len(real_pages) >= 25, real_pages  # the pages themselves, not only their errors
    cached = {path: answer.headers.get("Cache-Control") for path, answer in answers.items()
              if answer.headers.get("Cache-Control") != "no-store"}
    assert cached == {}


def test_public_pages_stay_cacheable(drawn, client):
    for path in ["/", "/p/01", "/p/01/statistics", f"/draws/{DRAW_ID}", f"/draws/{DRAW_ID}?ref=01F-AAAAAA",
                 f"/api/v1/draws/{DRAW_ID}/record", "/api/v1/prefectures", "/api/v1/prefectures/01/statistics",
                 "/api/v1/openapi.json", "/privacy", "/static/css/app.css"]:
        response = client.get(path)
        assert response.status_code == 200, path
        assert "no-store" not in response.headers.get("Cache-Control", ""), path
        # A cache keeps one copy per language and per cookie (the language chosen is a cookie).
        assert {name.strip() for name in response.headers["Vary"].split(",")} >= {"Cookie", "Accept-Language"}, path


def test_every_answer_varies_on_the_language_and_the_cookie_once(client):
    """Pages whose session is read already vary on the cookie (Flask): the names are added once."""
    for path in ["/", "/p/01/first_request/register", "/api/v1/prefectures", "/nowhere"]:
        response = client.get(path)
        assert response.status_code == (404 if path == "/nowhere" else 200), path
        names = [name.strip() for name in response.headers["Vary"].split(",")]
        assert sorted(names) == ["Accept-Language", "Cookie"], (path, names)
