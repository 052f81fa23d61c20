"""The service's settings: one typed object, read in one place.

Values come from config/defaults.toml, then from the TOML file named by
QS_CONFIG_FILE, then from QS_* environment variables. A value that does not
parse or is out of range raises SettingsError naming the setting, so a
misconfigured process stops at start-up instead of failing later.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import re
import secrets
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from queue_service.errors import SettingsError
from queue_service.files import private_folder
from queue_service.reference import STAFF_LOCALES
from queue_service.registration.proof import generate_signing_key, load_signing_key

ENV_PREFIX = "QS_"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULTS_FILE = PROJECT_ROOT / "config" / "defaults.toml"
SECRETS_FILE_NAME = "secrets.toml"
# Settings that production refuses to run without.
REQUIRED_SECRETS = ("secret_key", "identity_key", "proof_signing_key")

ENVIRONMENTS = ("development", "test", "production")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
MAIL_BACKENDS = ("file", "smtp")
SMTP_SECURITY = ("none", "starttls", "tls")
# "none" sends no SMS at all: messages then go by email only.
SMS_BACKENDS = ("file", "twilio", "none")
# Twilio's identifiers: two letters for the kind, then 32 hex digits.
TWILIO_ACCOUNT_SID = re.compile(r"AC[0-9a-fA-F]{32}")
TWILIO_MESSAGING_SERVICE_SID = re.compile(r"MG[0-9a-fA-F]{32}")
REDIS_URL_SCHEMES = ("redis://", "rediss://", "unix://")
# A Redis Cluster (several "host:port" to start from) and a Sentinel-managed master
# ("host:port" of the sentinels, then "/<service name>"): queue_service/connection.py.
CLUSTER_SCHEME = "redis+cluster://"
SENTINEL_SCHEME = "redis+sentinel://"
# A draw run now closes its entries at most this long (seconds) after it is announced: an hour.
MAX_RUN_NOW_ENTRY_DELAY_SECONDS = 3600


@dataclass(frozen=True)
class Settings:
    """Every setting of the service; config/defaults.toml documents each one."""

    env: str
    data_dir: Path
    redis_url: str
    queue_redis_url: str
    secret_key: str = dataclasses.field(repr=False)  # never logged
    identity_key: str = dataclasses.field(repr=False)  # never logged
    proof_signing_key: str = dataclasses.field(repr=False)  # never logged
    base_url: str
    default_locale: str
    legal_publisher: str
    legal_host: str
    trusted_proxies: int
    rate_limit_default: str
    rate_limit_registration: str
    rate_limit_registration_unproven: str
    rate_limit_registration_email: str
    rate_limit_links: str
    rate_limit_recovery: str
    rate_limit_recovery_email: str
    altcha_cost: int
    altcha_max_number: int
    altcha_expiry_seconds: int
    max_request_bytes: int
    contacts_per_pool: int
    confirmation_link_hours: int
    closed_retention_days: int
    booking_cancel_notice_hours: int
    reminder_hours: str
    no_show_grace_minutes: int
    standby_min_notice_hours: int
    draw_min_answer_hours: int
    run_now_entry_delay_seconds: int
    clock_interval_seconds: float
    dispatch_interval_seconds: int
    heartbeat_max_age_seconds: int
    log_level: str
    mail_backend: str
    mail_from: str
    smtp_host: str
    smtp_port: int
    smtp_security: str
    smtp_username: str
    smtp_password: str = dataclasses.field(repr=False)  # never logged
    smtp_timeout_seconds: float
    sms_backend: str
    sms_timeout_seconds: float
    twilio_base_url: str
    twilio_account_sid: str
    twilio_auth_token: str = dataclasses.field(repr=False)  # never logged
    twilio_from: str
    twilio_messaging_service_sid: str
    metrics_token: str = dataclasses.field(repr=False)  # never logged

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def embedded_redis_path(self) -> Path:
        """The database file of the embedded Redis, used when redis_url is empty."""
        return self.data_dir / "redis" / "qs.db"

    @property
    def mail_dir(self) -> Path:
        """Where the "file" mail backend writes messages."""
        return self.data_dir / "mail"

    @property
    def sms_dir(self) -> Path:
        """Where the "file" SMS backend writes messages."""
        return self.data_dir / "sms"

    @property
    def reminder_lead_hours(self) -> tuple[int, ...]:
        """How long before an appointment reminders go out, longest first (e.g. 48 and 24 hours)."""
        return _lead_hours(self.reminder_hours)

    @property
    def run_now_entry_delay(self) -> datetime.timedelta:
        """How long after a draw run now is announced its entries close (and it runs)."""
        return datetime.timedelta(seconds=self.run_now_entry_delay_seconds)

    def replace(self, **changes: Any) -> Settings:
        """A copy with some values changed, checked like loaded ones."""
        values = dataclasses.asdict(self) | changes
        return _checked(_coerce_all(values))


def load_settings(
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Read defaults, the optional config file, then the environment.

    `overrides` (already typed values, e.g. from a test) apply last. Secrets
    missing outside production are generated once into data_dir.
    """
    environ = os.environ if environ is None else environ
    values = _read_toml(DEFAULTS_FILE, "the defaults file")
    config_file = environ.get(ENV_PREFIX + "CONFIG_FILE")
    if config_file:
        values |= _known_only(_read_toml(Path(config_file), "QS_CONFIG_FILE"), config_file)
    values |= _from_environment(environ)
    values |= dict(overrides or {})
    if not values.get("base_url") and values.get("env") != "production":
        values["base_url"] = development_base_url(environ.get("QS_BIND", ""))
    settings = _checked(_coerce_all(values))
    return _with_secrets(settings)


DEFAULT_BIND = "127.0.0.1:5000"


def development_base_url(bind: str) -> str:
    """The address of the web process bound to `bind` (gunicorn's host:port, QS_BIND), as a
    browser on the same machine reaches it: a wildcard host is read as the loopback."""
    host, _, port = (bind or DEFAULT_BIND).rpartition(":")
    host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "[::]": "[::1]"}.get(host, host)
    return f"http://{host}:{port}"


def _field_types() -> dict[str, str]:
    return {field.name: field.type for field in dataclasses.fields(Settings)}


def _read_toml(path: Path, label: str) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise SettingsError(f"{label}: file not found: {path}") from None
    except tomllib.TOMLDecodeError as error:
        raise SettingsError(f"{label}: {path} is not valid TOML: {error}") from None


def _known_only(values: dict[str, Any], source: str) -> dict[str, Any]:
    unknown = sorted(set(values) - set(_field_types()))
    if unknown:
        raise SettingsError(f"{source}: unknown setting(s): {', '.join(unknown)}")
    return values


def _from_environment(environ: Mapping[str, str]) -> dict[str, str]:
    values = {}
    for name in _field_types():
        key = ENV_PREFIX + name.upper()
        if key in environ:
            values[name] = environ[key]
    # The conventional name used by hosting platforms, when ours is unset.
    if "redis_url" not in values and environ.get("REDIS_URL"):
        values["redis_url"] = environ["REDIS_URL"]
    return values


def _coerce_all(values: dict[str, Any]) -> dict[str, Any]:
    types = _field_types()
    missing = sorted(set(types) - set(values))
    if missing:
        raise SettingsError(f"missing setting(s): {', '.join(missing)}")
    return {name: _coerce(name, types[name], values[name]) for name in types}


def _lead_hours(text: str) -> tuple[int, ...]:
    hours = sorted({int(part) for part in text.split(",") if part.strip()}, reverse=True)
    if any(hour < 1 for hour in hours):
        raise ValueError("lead times are at least one hour")
    return tuple(hours)


def _coerce(name: str, type_name: str, value: Any) -> Any:
    label = ENV_PREFIX + name.upper()
    try:
        if type_name == "int":
            if isinstance(value, bool):
                raise ValueError
            return int(value)
        if type_name == "float":
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if type_name == "Path":
            path = Path(value)
            return path if path.is_absolute() else PROJECT_ROOT / path
        return str(value)
    except (TypeError, ValueError):
        raise SettingsError(f"{label}: expected {_TYPE_WORDS[type_name]}, got {value!r}") from None


_TYPE_WORDS = {"int": "a whole number", "float": "a number", "Path": "a path", "str": "text"}


def _checked(values: dict[str, Any]) -> Settings:
    def choose(name: str, choices: tuple[str, ...]) -> None:
        if values[name] not in choices:
            raise SettingsError(
                f"{ENV_PREFIX}{name.upper()}: expected one of {', '.join(choices)}, got {values[name]!r}"
            )

    def at_least(name: str, minimum: float) -> None:
        if not values[name] >= minimum:
            raise SettingsError(f"{ENV_PREFIX}{name.upper()}: must be at least {minimum}, got {values[name]!r}")

    values["log_level"] = values["log_level"].upper()
    choose("env", ENVIRONMENTS)
    choose("default_locale", STAFF_LOCALES)  # staff pages speak it too
    choose("log_level", LOG_LEVELS)
    choose("mail_backend", MAIL_BACKENDS)
    choose("smtp_security", SMTP_SECURITY)
    choose("sms_backend", SMS_BACKENDS)
    at_least("trusted_proxies", 0)
    at_least("max_request_bytes", 1024)
    at_least("altcha_cost", 1)
    at_least("altcha_max_number", 2)
    at_least("altcha_expiry_seconds", 30)
    at_least("contacts_per_pool", 1)
    at_least("confirmation_link_hours", 1)
    at_least("closed_retention_days", 1)
    at_least("booking_cancel_notice_hours", 0)
    at_least("no_show_grace_minutes", 0)
    at_least("standby_min_notice_hours", 0)
    at_least("draw_min_answer_hours", 1)
    if not 0 <= values["run_now_entry_delay_seconds"] <= MAX_RUN_NOW_ENTRY_DELAY_SECONDS:
        raise SettingsError(
            f"QS_RUN_NOW_ENTRY_DELAY_SECONDS: expected whole seconds from 0 to {MAX_RUN_NOW_ENTRY_DELAY_SECONDS} "
            f"(a draw run now waits that long for its entries to close), got {values['run_now_entry_delay_seconds']}"
        )
    try:
        _lead_hours(values["reminder_hours"])
    except ValueError:
        raise SettingsError(
            f"QS_REMINDER_HOURS: expected whole numbers of hours separated by commas, such as \"48,24\" "
            f"(or nothing for no reminder), got {values['reminder_hours']!r}"
        ) from None
    at_least("clock_interval_seconds", 0.1)
    if not 1 <= values["dispatch_interval_seconds"] <= 60:
        raise SettingsError(
            "QS_DISPATCH_INTERVAL_SECONDS: expected whole seconds from 1 to 60 (applicants wait for their "
            f"confirmation email meanwhile), got {values['dispatch_interval_seconds']}"
        )
    at_least("heartbeat_max_age_seconds", 1)
    at_least("smtp_timeout_seconds", 0.1)
    at_least("sms_timeout_seconds", 0.1)
    if not 1 <= values["smtp_port"] <= 65535:
        raise SettingsError(f"QS_SMTP_PORT: expected a port from 1 to 65535, got {values['smtp_port']}")
    _check_redis_urls(values)
    if values["env"] == "production" and not values["base_url"]:
        raise SettingsError(
            "QS_BASE_URL: production needs the address applicants reach the service at (the links in every "
            "email use it), such as https://rdv.prefecture.gouv.fr"
        )
    if not values["base_url"].startswith(("http://", "https://")):
        raise SettingsError(f"QS_BASE_URL: expected an http:// or https:// URL, got {values['base_url']!r}")
    values["base_url"] = values["base_url"].rstrip("/")
    _check_twilio(values)
    if values["proof_signing_key"]:
        try:
            load_signing_key(values["proof_signing_key"])
        except ValueError as error:
            raise SettingsError(f"QS_PROOF_SIGNING_KEY: {error}") from None
    if values["env"] == "production":
        _check_production(values)
    return Settings(**values)


def redis_nodes(url: str) -> list[tuple[str, int]]:
    """The "host:port" pairs of a redis+cluster:// or redis+sentinel:// URL; ValueError if one is not."""
    rest = url.split("://", 1)[1]
    hosts = rest.split("/", 1)[0].rpartition("@")[2]
    nodes = []
    for node in hosts.split(","):
        host, _, port = node.strip().rpartition(":")
        if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
            raise ValueError(f"{node!r} is not host:port")
        nodes.append((host.strip("[]"), int(port)))
    return nodes


def sentinel_service(url: str) -> str:
    """The service (master) name of a redis+sentinel:// URL: its path's first part."""
    return url.split("://", 1)[1].partition("/")[2].split("/")[0]


def _check_redis_url(name: str, url: str) -> None:
    label = ENV_PREFIX + name.upper()
    if not url:
        return
    if url.startswith(REDIS_URL_SCHEMES):
        return
    if url.startswith((CLUSTER_SCHEME, SENTINEL_SCHEME)):
        try:
            redis_nodes(url)
        except ValueError as error:
            raise SettingsError(f"{label}: {error} in {url!r} (expected host:port[,host:port...])") from None
        if url.startswith(SENTINEL_SCHEME) and not sentinel_service(url):
            raise SettingsError(
                f"{label}: a redis+sentinel:// URL ends with the service name the sentinels monitor, "
                f"as in redis+sentinel://10.0.0.1:26379,10.0.0.2:26379/qs, got {url!r}"
            )
        return
    raise SettingsError(
        f"{label}: expected a redis://, rediss://, unix://, redis+cluster:// or redis+sentinel:// URL, got {url!r}"
    )


def _check_redis_urls(values: dict[str, Any]) -> None:
    """The data Redis (any kind) and the queue Redis (RQ and the rate limiter: not a cluster)."""
    _check_redis_url("redis_url", values["redis_url"])
    _check_redis_url("queue_redis_url", values["queue_redis_url"])
    if values["queue_redis_url"].startswith(CLUSTER_SCHEME):
        raise SettingsError(
            "QS_QUEUE_REDIS_URL: RQ cannot keep its queues on a Redis Cluster: give a single Redis "
            "(redis://...) or a Sentinel-managed one (redis+sentinel://...)"
        )
    if values["redis_url"].startswith(CLUSTER_SCHEME) and not values["queue_redis_url"]:
        raise SettingsError(
            "QS_QUEUE_REDIS_URL: the data are on a Redis Cluster (QS_REDIS_URL), where RQ cannot keep its "
            "queues: give a single Redis (redis://...) or a Sentinel-managed one (redis+sentinel://...)"
        )
    if values["queue_redis_url"] and not values["redis_url"]:
        raise SettingsError("QS_QUEUE_REDIS_URL: set only with QS_REDIS_URL (the embedded Redis holds both)")


def _check_production(values: dict[str, Any]) -> None:
    for name in ("secret_key", "identity_key"):
        if len(values[name]) < 32:
            raise SettingsError(
                f"{ENV_PREFIX}{name.upper()}: production needs a secret of at least 32 characters "
                f"(generate one with: python -c 'import secrets; print(secrets.token_urlsafe(48))')"
            )
    if not values["proof_signing_key"]:
        raise SettingsError(
            "QS_PROOF_SIGNING_KEY: production needs a signing key (generate one with: qs generate-signing-key)"
        )
    for name in ("legal_publisher", "legal_host"):
        if not values[name].strip():
            raise SettingsError(
                f"{ENV_PREFIX}{name.upper()}: production needs it for the legal notice (/legal): who publishes "
                "the service and who hosts it, with their addresses"
            )
    if values["mail_backend"] != "smtp":
        raise SettingsError("QS_MAIL_BACKEND: production must send mail through \"smtp\"")
    if not values["redis_url"]:
        raise SettingsError("QS_REDIS_URL: production needs a real Redis server (see config/redis.conf)")
    if values["sms_backend"] == "file":
        raise SettingsError(
            'QS_SMS_BACKEND: production must send SMS through "twilio", or set "none" to send email only'
        )
    if values["sms_backend"] == "twilio" and not values["twilio_base_url"].startswith("https://"):
        raise SettingsError("QS_TWILIO_BASE_URL: production must reach Twilio over https://")


def _check_twilio(values: dict[str, Any]) -> None:
    """The Twilio settings: a URL always; the account and a sender when SMS go through Twilio."""
    if not values["twilio_base_url"].startswith(("http://", "https://")):
        raise SettingsError(
            f"QS_TWILIO_BASE_URL: expected an http:// or https:// URL, got {values['twilio_base_url']!r}"
        )
    values["twilio_base_url"] = values["twilio_base_url"].rstrip("/")
    if values["sms_backend"] != "twilio":
        return
    if not TWILIO_ACCOUNT_SID.fullmatch(values["twilio_account_sid"]):
        raise SettingsError(
            "QS_TWILIO_ACCOUNT_SID: expected the account SID from the Twilio console "
            f"(AC followed by 32 hex digits), got {values['twilio_account_sid']!r}"
        )
    if not values["twilio_auth_token"]:
        raise SettingsError("QS_TWILIO_AUTH_TOKEN: the \"twilio\" SMS backend needs the account's auth token")
    service = values["twilio_messaging_service_sid"]
    if service and not TWILIO_MESSAGING_SERVICE_SID.fullmatch(service):
        raise SettingsError(
            f"QS_TWILIO_MESSAGING_SERVICE_SID: expected MG followed by 32 hex digits, got {service!r}"
        )
    if not service and not values["twilio_from"]:
        raise SettingsError(
            "QS_TWILIO_FROM: the \"twilio\" SMS backend needs a sender: a Twilio phone number "
            "(or set QS_TWILIO_MESSAGING_SERVICE_SID)"
        )


def _with_secrets(settings: Settings) -> Settings:
    """Fill secrets missing outside production from data_dir, generating them once."""
    missing = [name for name in REQUIRED_SECRETS if not getattr(settings, name)]
    if not missing:
        return settings
    path = private_folder(settings.data_dir) / SECRETS_FILE_NAME
    if not path.exists():
        _create_secrets_file(path)
    stored = _read_toml(path, "the generated secrets file")
    absent = [name for name in REQUIRED_SECRETS if not stored.get(name)]
    if absent:  # a file from an older version: add what it lacks
        with path.open("a", encoding="utf-8") as handle:
            handle.writelines(f'{name} = "{_new_secret(name)}"\n' for name in absent)
        stored = _read_toml(path, "the generated secrets file")
    return dataclasses.replace(settings, **{name: stored[name] for name in missing})


def _new_secret(name: str) -> str:
    return generate_signing_key() if name == "proof_signing_key" else secrets.token_urlsafe(48)


def _create_secrets_file(path: Path) -> None:
    """Write new secrets to `path` unless another process just did (first one wins)."""
    lines = ["# Generated once for development; production sets its own secrets.\n"]
    lines += [f'{name} = "{_new_secret(name)}"\n' for name in REQUIRED_SECRETS]
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.writelines(lines)
    try:
        os.link(temporary, path)  # fails if the file exists: never overwrite secrets
    except FileExistsError:
        pass
    finally:
        os.unlink(temporary)
