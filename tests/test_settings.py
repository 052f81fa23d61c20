"""Settings: defaults, file, environment, and loud failures naming the setting."""

import os
import stat

import pytest

from queue_service.errors import SettingsError
from queue_service.offers import OfferTiming
from queue_service.registration.proof import generate_signing_key
from queue_service.settings import load_settings

SECRET = "s" * 40
SIGNING_KEY = generate_signing_key()
TWILIO = {
    "QS_SMS_BACKEND": "twilio",
    "QS_TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
    "QS_TWILIO_AUTH_TOKEN": "twilio-token",
    "QS_TWILIO_FROM": "+33700000001",
}


def test_defaults_are_development_with_embedded_redis(tmp_path):
    settings = load_settings(environ={"QS_DATA_DIR": str(tmp_path)})
    assert settings.env == "development"
    assert settings.redis_url == ""
    assert settings.embedded_redis_path == tmp_path / "redis" / "qs.db"
    assert settings.default_locale == "fr"


@pytest.mark.parametrize(("bind", "expected"), [
    (None, "http://127.0.0.1:5000"),
    ("127.0.0.1:8123", "http://127.0.0.1:8123"),
    ("0.0.0.0:8080", "http://127.0.0.1:8080"),
    ("[::]:8080", "http://[::1]:8080"),
    ("[::1]:9000", "http://[::1]:9000"),
])
def test_in_development_links_follow_the_address_the_web_is_bound_to(tmp_path, bind, expected):
    environ = {"QS_DATA_DIR": str(tmp_path)} | ({"QS_BIND": bind} if bind else {})
    assert load_settings(environ=environ).base_url == expected
    # Set explicitly, it wins.
    assert load_settings(environ=environ | {"QS_BASE_URL": "http://rdv.test/"}).base_url == "http://rdv.test"


def test_a_draws_minimum_answer_window_is_a_setting_the_offers_timing_carries(tmp_path):
    assert load_settings(environ={"QS_DATA_DIR": str(tmp_path)}).draw_min_answer_hours == 12
    settings = load_settings(environ={"QS_DATA_DIR": str(tmp_path), "QS_DRAW_MIN_ANSWER_HOURS": "6"})
    assert OfferTiming.from_settings(settings).draw_min_answer.total_seconds() == 6 * 3600


def test_a_draw_run_now_waits_a_short_setting_for_its_entries_to_close(tmp_path):
    settings = load_settings(environ={"QS_DATA_DIR": str(tmp_path)})
    assert settings.run_now_entry_delay_seconds == 60 and settings.run_now_entry_delay.total_seconds() == 60
    assert load_settings(environ={"QS_DATA_DIR": str(tmp_path), "QS_RUN_NOW_ENTRY_DELAY_SECONDS": "0"}
                         ).run_now_entry_delay.total_seconds() == 0


def test_environment_overrides_file_which_overrides_defaults(tmp_path):
    config_file = tmp_path / "site.toml"
    config_file.write_text('log_level = "WARNING"\nsmtp_port = 2525\n')
    settings = load_settings(
        environ={"QS_DATA_DIR": str(tmp_path), "QS_CONFIG_FILE": str(config_file), "QS_SMTP_PORT": "587"}
    )
    assert settings.log_level == "WARNING"
    assert settings.smtp_port == 587


def test_conventional_redis_url_is_read_when_ours_is_unset(tmp_path):
    environ = {"QS_DATA_DIR": str(tmp_path), "REDIS_URL": "redis://cache:6379/2"}
    assert load_settings(environ=environ).redis_url == "redis://cache:6379/2"
    environ["QS_REDIS_URL"] = "redis://ours:6379/0"
    assert load_settings(environ=environ).redis_url == "redis://ours:6379/0"


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("QS_SMTP_PORT", "twenty-five", "QS_SMTP_PORT"),
        ("QS_SMTP_PORT", "70000", "QS_SMTP_PORT"),
        ("QS_ENV", "prod", "QS_ENV"),
        ("QS_DEFAULT_LOCALE", "de", "QS_DEFAULT_LOCALE"),
        ("QS_REDIS_URL", "http://localhost:6379", "QS_REDIS_URL"),
        ("QS_CLOCK_INTERVAL_SECONDS", "0", "QS_CLOCK_INTERVAL_SECONDS"),
        ("QS_DISPATCH_INTERVAL_SECONDS", "0", "QS_DISPATCH_INTERVAL_SECONDS"),
        ("QS_DISPATCH_INTERVAL_SECONDS", "300", "QS_DISPATCH_INTERVAL_SECONDS"),
        ("QS_DISPATCH_INTERVAL_SECONDS", "2.5", "QS_DISPATCH_INTERVAL_SECONDS"),
        ("QS_TRUSTED_PROXIES", "-1", "QS_TRUSTED_PROXIES"),
        ("QS_BASE_URL", "rdv.example.fr", "QS_BASE_URL"),
        ("QS_DRAW_MIN_ANSWER_HOURS", "0", "QS_DRAW_MIN_ANSWER_HOURS"),
        ("QS_DRAW_MIN_ANSWER_HOURS", "half a day", "QS_DRAW_MIN_ANSWER_HOURS"),
        ("QS_RUN_NOW_ENTRY_DELAY_SECONDS", "-1", "QS_RUN_NOW_ENTRY_DELAY_SECONDS"),
        ("QS_RUN_NOW_ENTRY_DELAY_SECONDS", "3601", "QS_RUN_NOW_ENTRY_DELAY_SECONDS"),
        ("QS_RUN_NOW_ENTRY_DELAY_SECONDS", "1.5", "QS_RUN_NOW_ENTRY_DELAY_SECONDS"),
    ],
)
def test_a_bad_value_stops_loading_and_names_the_setting(tmp_path, variable, value, named):
    with pytest.raises(SettingsError, match=named):
        load_settings(environ={"QS_DATA_DIR": str(tmp_path), variable: value})


def test_cluster_and_sentinel_urls_are_read_and_a_bad_one_names_its_setting(tmp_path):
    base = {"QS_DATA_DIR": str(tmp_path)}
    settings = load_settings(environ=base | {
        "QS_REDIS_URL": "redis+cluster://10.0.0.1:7000,10.0.0.2:7000",
        "QS_QUEUE_REDIS_URL": "redis+sentinel://10.0.0.5:26379,10.0.0.6:26379/qs"})
    assert settings.redis_url.startswith("redis+cluster://") and settings.queue_redis_url.endswith("/qs")
    assert load_settings(environ=base | {"QS_REDIS_URL": "redis://db:6379/0"}).queue_redis_url == ""
    refused = [
        ({"QS_REDIS_URL": "redis+cluster://10.0.0.1"}, "QS_REDIS_URL: '10.0.0.1' is not host:port"),
        ({"QS_REDIS_URL": "redis+sentinel://10.0.0.5:26379"}, r"QS_REDIS_URL: a redis\+sentinel:// URL ends with"),
        ({"QS_REDIS_URL": "redis://db", "QS_QUEUE_REDIS_URL": "amqp://queue"}, "QS_QUEUE_REDIS_URL: expected"),
        # RQ cannot keep its queues on a cluster: neither given one, nor left to the data's.
        ({"QS_REDIS_URL": "redis://db", "QS_QUEUE_REDIS_URL": "redis+cluster://a:1,b:2"}, "QS_QUEUE_REDIS_URL: RQ"),
        ({"QS_REDIS_URL": "redis+cluster://a:1,b:2"}, "QS_QUEUE_REDIS_URL: the data are on a Redis Cluster"),
        ({"QS_QUEUE_REDIS_URL": "redis://queue"}, "QS_QUEUE_REDIS_URL: set only with QS_REDIS_URL"),
    ]
    for environ, message in refused:
        with pytest.raises(SettingsError, match=message):
            load_settings(environ=base | environ)


def test_unknown_setting_in_a_config_file_is_refused(tmp_path):
    config_file = tmp_path / "site.toml"
    config_file.write_text("smtp_hots = 'typo'\n")
    with pytest.raises(SettingsError, match="smtp_hots"):
        load_settings(environ={"QS_DATA_DIR": str(tmp_path), "QS_CONFIG_FILE": str(config_file)})


def test_missing_config_file_is_reported(tmp_path):
    with pytest.raises(SettingsError, match="not found"):
        load_settings(environ={"QS_DATA_DIR": str(tmp_path), "QS_CONFIG_FILE": str(tmp_path / "nope.toml")})


def test_development_secrets_are_generated_once_and_kept_private(tmp_path):
    first = load_settings(environ={"QS_DATA_DIR": str(tmp_path)})
    second = load_settings(environ={"QS_DATA_DIR": str(tmp_path)})
    assert len(first.secret_key) >= 32 and first.secret_key != first.identity_key
    assert (second.secret_key, second.identity_key) == (first.secret_key, first.identity_key)
    mode = stat.S_IMODE(os.stat(tmp_path / "secrets.toml").st_mode)
    assert mode == 0o600


def test_secrets_never_appear_in_the_settings_repr(tmp_path):
    settings = load_settings(environ={
        "QS_DATA_DIR": str(tmp_path), "QS_SMTP_PASSWORD": "hunter2-password", "QS_TWILIO_AUTH_TOKEN": "twilio-token",
    })
    text = repr(settings)
    assert settings.secret_key not in text and "hunter2-password" not in text and "twilio-token" not in text


def production_environ(tmp_path, **changes):
    environ = {
        "QS_DATA_DIR": str(tmp_path),
        "QS_ENV": "production",
        "QS_SECRET_KEY": SECRET,
        "QS_IDENTITY_KEY": SECRET,
        "QS_PROOF_SIGNING_KEY": SIGNING_KEY,
        "QS_MAIL_BACKEND": "smtp",
        "QS_REDIS_URL": "redis://db:6379/0",
        "QS_SMS_BACKEND": "none",
        "QS_BASE_URL": "https://rdv.prefecture.example.gouv.fr",
        "QS_LEGAL_PUBLISHER": "Préfecture de l'Ain",
        "QS_LEGAL_HOST": "An host, its address",
    }
    environ.update(changes)
    return {name: value for name, value in environ.items() if value is not None}


def test_production_starts_with_its_secrets_and_generates_none(tmp_path):
    settings = load_settings(environ=production_environ(tmp_path))
    assert settings.is_production
    assert not (tmp_path / "secrets.toml").exists()


def test_production_sends_sms_through_twilio_or_none(tmp_path):
    assert load_settings(environ=production_environ(tmp_path)).sms_backend == "none"
    assert load_settings(environ=production_environ(tmp_path, **TWILIO)).sms_backend == "twilio"


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"QS_BASE_URL": None}, "QS_BASE_URL"),
        ({"QS_LEGAL_HOST": " "}, "QS_LEGAL_HOST"),
        ({"QS_SECRET_KEY": None}, "QS_SECRET_KEY"),
        ({"QS_IDENTITY_KEY": "short"}, "QS_IDENTITY_KEY"),
        ({"QS_MAIL_BACKEND": "file"}, "QS_MAIL_BACKEND"),
        ({"QS_REDIS_URL": None}, "QS_REDIS_URL"),
        ({"QS_PROOF_SIGNING_KEY": None}, "QS_PROOF_SIGNING_KEY"),
        ({"QS_PROOF_SIGNING_KEY": "not-a-key"}, "QS_PROOF_SIGNING_KEY"),
        ({"QS_SMS_BACKEND": "file"}, "QS_SMS_BACKEND"),
        ({"QS_SMS_BACKEND": "twilio"}, "QS_TWILIO_ACCOUNT_SID"),
        (TWILIO | {"QS_TWILIO_BASE_URL": "http://api.twilio.com"}, "QS_TWILIO_BASE_URL"),
    ],
)
def test_production_refuses_to_start_without_what_it_needs(tmp_path, change, named):
    with pytest.raises(SettingsError, match=named):
        load_settings(environ=production_environ(tmp_path, **change))
    assert not (tmp_path / "secrets.toml").exists()


def test_the_production_example_file_is_valid(tmp_path):
    from queue_service.settings import PROJECT_ROOT

    environ = {
        "QS_CONFIG_FILE": str(PROJECT_ROOT / "config" / "production.example.toml"),
        "QS_DATA_DIR": str(tmp_path),
        "QS_SECRET_KEY": SECRET,
        "QS_IDENTITY_KEY": SECRET,
        "QS_PROOF_SIGNING_KEY": SIGNING_KEY,
        "QS_TWILIO_AUTH_TOKEN": "twilio-token",
    }
    settings = load_settings(environ=environ)
    assert settings.is_production and settings.smtp_security == "starttls"
    assert settings.sms_backend == "twilio" and settings.twilio_base_url == "https://api.twilio.com"


def test_an_older_secrets_file_gets_the_secrets_it_lacks(tmp_path):
    (tmp_path / "secrets.toml").write_text('secret_key = "kept-secret"\nidentity_key = "kept-identity"\n')
    settings = load_settings(environ={"QS_DATA_DIR": str(tmp_path)})
    assert (settings.secret_key, settings.identity_key) == ("kept-secret", "kept-identity")
    assert len(settings.proof_signing_key) == 43
    assert load_settings(environ={"QS_DATA_DIR": str(tmp_path)}).proof_signing_key == settings.proof_signing_key
