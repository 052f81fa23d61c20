"""The web shell: languages, error pages and problem documents, headers, limits, health."""

import datetime

import pytest

from web import security
from worker import clock

FRENCH_TITLE = "Un rendez-vous en préfecture, sans course contre la montre"
ENGLISH_TITLE = "An appointment at the prefecture, without racing for it"


def test_home_page_is_french_by_default_and_lists_every_prefecture(client):
    page = client.get("/").get_data(as_text=True)
    assert FRENCH_TITLE in page
    assert '<html lang="fr" dir="ltr">' in page
    assert page.count("<option value=\"") - page.count("<option value=\"\"") == 101
    assert ">2A – Corse-du-Sud<" in page


def test_browser_language_english_gets_english(client):
    page = client.get("/", headers={"Accept-Language": "en-GB,en;q=0.9"}).get_data(as_text=True)
    assert ENGLISH_TITLE in page and '<html lang="en" dir="ltr">' in page


def test_other_browser_languages_get_french(client):
    page = client.get("/", headers={"Accept-Language": "ko,ja;q=0.8"}).get_data(as_text=True)
    assert FRENCH_TITLE in page


def test_language_switch_sets_a_cookie_and_returns_to_the_page(client):
    response = client.get("/lang/en?next=/p/01", headers={"Accept-Language": "fr"})
    assert response.status_code == 302 and response.headers["Location"] == "/p/01"
    page = client.get("/p/01", headers={"Accept-Language": "fr"}).get_data(as_text=True)
    assert "Where appointments take place" in page
    assert "Monday" in page
    client.get("/lang/fr?next=/p/01")
    assert "Où se déroulent les rendez-vous" in client.get("/p/01").get_data(as_text=True)


@pytest.mark.parametrize(
    "target", ["//evil.example/x", "https://evil.example/", "/\\evil.example", "/%09/evil.example", "/%0a/x", None]
)
def test_language_switch_never_redirects_to_another_site(client, target):
    query = "" if target is None else f"?next={target}"
    response = client.get(f"/lang/en{query}")
    assert response.headers["Location"] == "/"


def test_unknown_language_changes_nothing(client):
    response = client.get("/lang/xx?next=/")
    assert "Set-Cookie" not in response.headers
    assert FRENCH_TITLE in client.get("/").get_data(as_text=True)


def test_every_page_offers_the_other_language(client):
    for path in ["/", "/p/01", "/no-such-page"]:
        page = client.get(path).get_data(as_text=True)
        assert 'hreflang="en"' in page, path


def test_prefecture_page_shows_sites_procedures_and_hours(client):
    page = client.get("/p/01").get_data(as_text=True)
    assert "Préfecture de l&#39;Ain" in page
    assert "45 avenue Alsace-Lorraine" in page
    assert "Renouvellement de titre de séjour" in page
    assert "Lundi" in page and "09:00" in page


def test_choosing_a_prefecture_from_the_form_redirects_to_its_page(client):
    response = client.get("/p?code=2a")
    assert response.status_code == 302 and response.headers["Location"] == "/p/2A"
    assert client.get("/p?code=").headers["Location"] == "/"


@pytest.mark.parametrize("path", ["/p/99", "/p?code=20", "/p/" + "9" * 500, "/nowhere"])
def test_unknown_pages_get_a_404_page_in_the_visitors_language(client, path):
    french = client.get(path)
    assert french.status_code == 404
    assert "text/html" in french.content_type
    english = client.get(path, headers={"Accept-Language": "en"})
    assert english.status_code == 404
    assert french.get_data(as_text=True) != english.get_data(as_text=True)


def test_api_errors_are_problem_documents(client):
    response = client.get("/api/v1/prefectures/99")
    assert response.status_code == 404
    assert response.content_type == "application/problem+json"
    body = response.get_json()
    assert body["status"] == 404 and body["code"] == "unknown-prefecture" and body["title"]
    missing = client.get("/api/v1/nothing-here")
    assert missing.content_type == "application/problem+json" and missing.get_json()["status"] == 404


def test_api_wrong_method_is_a_405_problem_with_allow(client):
    response = client.post("/api/v1/prefectures")
    assert response.status_code == 405
    assert response.content_type == "application/problem+json"
    assert "GET" in response.headers["Allow"]


def test_api_lists_reference_data(client):
    prefectures = client.get("/api/v1/prefectures").get_json()["items"]
    assert len(prefectures) == 101 and prefectures[0] == {"code": "01", "name": "Ain", "timezone": "Europe/Paris"}
    procedures = {p["code"]: p for p in client.get("/api/v1/procedures").get_json()["items"]}
    assert "agdref" in procedures["renewal"]["required_fields"]
    ain = client.get("/api/v1/prefectures/01").get_json()
    assert {site["id"] for site in ain["sites"]} == {"bourg", "belley", "gex", "nantua"}


@pytest.fixture
def app_with_a_failing_route(make_app, reference_data):
    app = make_app()

    def explode():
        raise RuntimeError("a bug")

    app.add_url_rule("/boom", "boom", explode)
    app.add_url_rule("/api/v1/boom", "api_boom", explode)
    app.testing = False  # let the error handler answer, as in production
    return app


def test_unexpected_errors_get_a_500_page_that_reveals_nothing(app_with_a_failing_route):
    client = app_with_a_failing_route.test_client()
    page = client.get("/boom")
    assert page.status_code == 500
    text = page.get_data(as_text=True)
    assert "Erreur interne" in text and "a bug" not in text and "Traceback" not in text
    english = client.get("/boom", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "Internal error" in english
    api = client.get("/api/v1/boom")
    assert api.status_code == 500 and api.content_type == "application/problem+json"
    assert "a bug" not in api.get_data(as_text=True)


def test_security_headers_on_every_response(client):
    for path in ["/", "/api/v1/prefectures", "/nowhere", "/healthz"]:
        headers = client.get(path).headers
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"], path
        assert "script-src 'self'" in headers["Content-Security-Policy"]
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "no-referrer"
        assert "Strict-Transport-Security" not in headers
        assert all(len(headers.getlist(name)) == 1 for name in security.HEADERS), path


def test_a_security_header_a_response_sets_itself_is_kept(make_app, reference_data):
    app = make_app()

    @app.get("/framed-by-a-test")
    def framed():
        return "", 204, {"X-Frame-Options": "SAMEORIGIN"}

    headers = app.test_client().get("/framed-by-a-test").headers
    assert headers.getlist("X-Frame-Options") == ["SAMEORIGIN"] and headers["X-Content-Type-Options"] == "nosniff"


def test_hsts_only_over_https(client):
    response = client.get("/", base_url="https://rdv.example.fr")
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")


def test_rate_limit_answers_429_with_retry_after_in_both_forms(make_app, reference_data):
    client = make_app(rate_limit_default="3 per minute").test_client()
    for _ in range(3):
        assert client.get("/").status_code == 200
    page = client.get("/")
    assert page.status_code == 429
    assert int(page.headers["Retry-After"]) > 0
    assert "Trop de demandes" in page.get_data(as_text=True)
    for _ in range(3):  # each route counts on its own
        assert client.get("/api/v1/prefectures").status_code == 200
    api = client.get("/api/v1/prefectures")
    assert api.status_code == 429 and api.content_type == "application/problem+json"
    assert int(api.headers["Retry-After"]) > 0
    assert client.get("/healthz").status_code == 200  # health checks are never limited


def test_forwarded_addresses_count_only_behind_trusted_proxies(make_app, reference_data):
    untrusted = make_app(rate_limit_default="2 per minute").test_client()
    codes = [untrusted.get("/", headers={"X-Forwarded-For": f"203.0.113.{n}"}).status_code for n in range(3)]
    assert codes == [200, 200, 429]  # a forged header does not escape the limit

    behind_proxy = make_app(rate_limit_default="2 per minute", trusted_proxies=1).test_client()
    codes = [behind_proxy.get("/", headers={"X-Forwarded-For": f"198.51.100.{n}"}).status_code for n in range(3)]
    assert codes == [200, 200, 200]  # one client each, as the proxy says


@pytest.fixture
def app_without_redis(make_app, reference_data):
    from conftest import free_port

    return make_app(redis_url=f"redis://127.0.0.1:{free_port()}/0")


def test_redis_down_gives_a_clear_503_never_an_unlimited_answer(app_without_redis):
    client = app_without_redis.test_client()
    page = client.get("/")
    assert page.status_code == 503
    assert "Rien n’a été enregistré" in page.get_data(as_text=True)
    api = client.get("/api/v1/prefectures")
    assert api.status_code == 503 and api.content_type == "application/problem+json"


def test_health_endpoints(client, redis, run_jobs):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    not_ready = client.get("/readyz")
    assert not_ready.status_code == 503
    assert not_ready.get_json()["checks"]["redis"] == {"ok": True}
    clock.tick(redis, datetime.datetime.now(datetime.timezone.utc))
    run_jobs()
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.get_json()["ready"] is True


def test_readyz_without_redis_is_503_naming_redis(app_without_redis):
    response = app_without_redis.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"]["redis"]["ok"] is False


def test_deeply_nested_json_is_a_bad_request_not_a_crash(client):
    for path in ["/api/v1/registrations", "/api/v1/registrations/confirm", "/api/v1/proofs/verify"]:
        response = client.post(path, data="[" * 5000, content_type="application/json")
        assert response.status_code == 400, path


def test_the_footer_leads_to_the_statutory_pages_and_each_answers(client):
    """Seen: no link to privacy, legal notice, accessibility statement, statistics or /verify."""
    for page in ("/", "/p/01", "/privacy", "/verify"):
        html = client.get(page, headers={"Accept-Language": "en"}).get_data(as_text=True)
        footer = html[html.index('<footer'):]
        for path in ("/privacy", "/legal", "/accessibility", "/statistics", "/verify"):
            assert f'href="{path}"' in footer, (page, path)
    legal = client.get("/legal", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "Legal notice" in legal and "Publisher" in legal and "Hosting" in legal
    statement = client.get("/accessibility", headers={"Accept-Language": "fr"}).get_data(as_text=True)
    assert "Déclaration d’accessibilité" in statement and "RGAA" in statement
    assert "État de conformité" in statement and "Voies de recours" in statement
    index = client.get("/statistics", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert 'href="/p/01/statistics"' in index and 'href="/p/974/statistics"' in index


def test_production_names_the_publisher_and_host_of_the_legal_notice(tmp_path):
    from queue_service.errors import SettingsError
    from queue_service.registration.proof import generate_signing_key
    from queue_service.settings import load_settings

    environ = {"QS_DATA_DIR": str(tmp_path), "QS_ENV": "production", "QS_SECRET_KEY": "s" * 40,
               "QS_IDENTITY_KEY": "s" * 40, "QS_PROOF_SIGNING_KEY": generate_signing_key(), "QS_MAIL_BACKEND": "smtp",
               "QS_REDIS_URL": "redis://db:6379/0", "QS_SMS_BACKEND": "none", "QS_BASE_URL": "https://rdv.example.fr"}
    with pytest.raises(SettingsError, match="QS_LEGAL_PUBLISHER"):
        load_settings(environ=environ)
    named = environ | {"QS_LEGAL_PUBLISHER": "Préfecture de l'Ain", "QS_LEGAL_HOST": "OVH, 2 rue Kellermann, Roubaix"}
    assert load_settings(environ=named).legal_publisher == "Préfecture de l'Ain"


def test_the_json_api_opens_no_cookie_session_and_the_pages_do(app, client):
    """The API authenticates with tokens: its requests get a null session (no cookie read or
    set), while a page's form still keeps its CSRF token in the signed cookie."""
    from flask import session

    with app.test_request_context("/api/v1/registrations", method="POST"):
        assert app.session_interface.is_null_session(session)
    with app.test_request_context("/p/01/renewal/register"):
        assert not app.session_interface.is_null_session(session)
    form = client.get("/p/01/renewal/register")
    assert form.status_code == 200 and "session=" in form.headers.get("Set-Cookie", "")
    answer = client.post("/api/v1/registrations", json={"prefecture": "01"})  # a 422, with the cookie sent
    assert answer.status_code == 422 and "Set-Cookie" not in answer.headers
