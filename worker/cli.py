"""`qs`: the one command line that the Procfile, the Makefile and operators call.

    qs dev               web + worker + clock (the Procfile), each restarted if it stops, with demo data
    qs worker            an RQ worker (waits for Redis; stops cleanly on SIGTERM)
    qs clock             the schedule process (waits for Redis)
    qs load-reference    prefectures and procedures
    qs load-demo         demo sites and AGDREF numbers for Ain (01)
    qs import-agdref     a prefecture's known AGDREF numbers, from a file
    qs migrate-identity  every registration's person key recomputed with today's rules
    qs create-admin      the first national admin
    qs check-config      print the settings in force and check Redis
    qs send-test-mail    check the mail settings
    qs send-test-sms     check the SMS settings
    qs generate-signing-key  a new key for signing proofs of registration
    qs simulate          first come, first served against the lottery on one scenario (docs/simulator.md)
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import os
import random
import secrets
import signal
import smtplib
import sys
import threading
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import click
import redis
from redis.exceptions import RedisClusterException

from queue_service import reference, simulator
from queue_service.connection import connect, connect_queues, embedded_url, stop_embedded
from queue_service.draws.schedules import DrawSchedule
from queue_service.errors import QueueServiceError, SettingsError, SmsNotSent
from queue_service.files import private_folder, write_private
from queue_service.notifications import mail, sms
from queue_service.registration import IdentityMigration, migrate_identity_keys
from queue_service.registration.agdref import BadAgdrefLines, UploadedRecords
from queue_service.registration.identity import InvalidField, clean_phone
from queue_service.settings import PROJECT_ROOT, Settings, load_settings
from queue_service.staff import accounts
from queue_service.store import Store

log = logging.getLogger("qs")


def _settings() -> Settings:
    try:
        return load_settings()
    except SettingsError as error:
        raise click.ClickException(f"bad setting: {error}") from None


def _configure_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)s %(processName)s[%(process)d] %(name)s: %(message)s",
    )


def _connect(settings: Settings) -> redis.Redis:
    try:
        connection = connect(settings)
        connection.ping()
    except (redis.RedisError, RedisClusterException) as error:
        raise click.ClickException(f"cannot reach Redis ({error}); check QS_REDIS_URL") from None
    return connection


def _connect_waiting(
    settings: Settings, process: str, queues: bool = False, data: redis.Redis | None = None
) -> redis.Redis:
    """A client for the data's Redis (the queues' with `queues`: `data` unless QS_QUEUE_REDIS_URL
    is set), waiting for Redis to answer if it does not yet (started at the same time, or
    restarting), with one line saying so; SIGTERM or Ctrl-C while waiting exits."""
    from worker.outage import UNREACHABLE, Outage, wait_for_redis

    setting = "QS_QUEUE_REDIS_URL" if queues and settings.queue_redis_url else "QS_REDIS_URL"
    outage = Outage(process, log)
    while True:
        try:
            connection = connect_queues(settings, data) if queues else connect(settings)
            break
        except (*UNREACHABLE, RedisClusterException) as error:  # a cluster client asks its nodes for the slots when made
            outage.failed(error)
            time.sleep(1)
        except redis.RedisError as error:
            raise click.ClickException(f"cannot use Redis ({error}); check {setting}") from None
    try:
        connection.ping()
        return connection
    except UNREACHABLE as error:
        outage.failed(error)
    except redis.RedisError as error:  # a wrong password, say: waiting would not help
        raise click.ClickException(f"cannot use Redis ({error}); check {setting}") from None
    stop = threading.Event()
    previous = {signum: signal.signal(signum, lambda *_: stop.set()) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        if not wait_for_redis(connection, stop, outage):
            log.warning("%s: stopped while waiting for Redis", process)
            sys.exit(0)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return connection


@click.group()
def main() -> None:
    """The fair-allocation queue service."""


@main.command("load-reference")
def load_reference_command() -> None:
    """Load every prefecture and procedure (safe to run again)."""
    store = Store(_connect(_settings()))
    _load_reference(store)
    click.echo(f"Loaded {len(reference.PREFECTURES)} prefectures and {len(reference.PROCEDURES)} procedures.")


@main.command("load-demo")
def load_demo_command() -> None:
    """Add the demo sites, AGDREF numbers and weekly schedules of Ain (01), keeping any already stored."""
    settings = _settings()
    added = _load_demo(Store(_connect(settings)), settings)
    click.echo(f"Demo data: {added} site(s) added, {len(reference.DEMO_SITES) - added} already there.")


def _load_reference(store: Store) -> None:
    store.load_reference(reference.PREFECTURES, reference.PROCEDURES)


def _load_demo(store: Store, settings: Settings) -> int:
    """Demo sites, AGDREF numbers and weekly draw schedules for Ain; keeps what is there already."""
    added = store.add_missing_sites(reference.DEMO_SITES)
    if store.agdref_count("01") == 0:
        UploadedRecords(store, settings.identity_key.encode()).replace("01", reference.DEMO_AGDREF_NUMBERS)
    now = datetime.datetime.now(datetime.timezone.utc)
    for procedure in reference.PROCEDURES:
        if store.schedule(f"01:{procedure.code}") is None:
            store.save_schedule(
                DrawSchedule(prefecture="01", procedure=procedure.code, timezone="Europe/Paris",
                             cron=DEMO_CRON, created_at=now)
            )
    _demo_pool(store, settings, now)
    return added


DEMO_POOL = "01:first_request"
DEMO_APPLICANTS = 40


def _demo_pool(store: Store, settings: Settings, now: datetime.datetime) -> None:
    """A demo waiting list (Ain, first request) with slots in the next draw's horizon, so that a
    draw run from the staff pages gives offers at once; added only to an empty pool."""
    from queue_service import inventory
    from queue_service import registration as registrations
    from queue_service.inventory import slots as slot_rules

    if store.waiting_count(DEMO_POOL) or store.slots(DEMO_POOL, now, now + datetime.timedelta(days=60)):
        return
    zone = ZoneInfo("Europe/Paris")
    first_day = (now.astimezone(zone) + datetime.timedelta(days=8)).date()
    days = [first_day + datetime.timedelta(days=n) for n in range(19)]
    candidates = [
        slot_rules.Slot(id=f"demo-{day:%Y%m%d}-{hour:02d}{minute:02d}", prefecture="01", site="bourg",
                        procedure="first_request", duration_minutes=30, counter=1,
                        starts_at=datetime.datetime.combine(day, datetime.time(hour, minute), tzinfo=zone))
        for day in days if day.weekday() < 5 for hour in (9, 10, 11) for minute in (0, 30)
    ]
    inventory.publish(store, "01", candidates)
    procedure = reference.procedure_by_code("first_request")
    rng = random.Random(1)
    limits = registrations.Limits(settings.contacts_per_pool, datetime.timedelta(hours=settings.confirmation_link_hours))
    records = UploadedRecords(store, settings.identity_key.encode())
    for number in range(1, DEMO_APPLICANTS + 1):
        letters = chr(65 + (number - 1) % 26) + chr(65 + (number - 1) // 26)
        form = {"family_name": f"Demo {letters}", "given_names": "Applicant",
                "birth_date": "1990-01-01", "nationality": "MA", "email": f"demo{number:02d}@example.org",
                "phone": f"+33612{number:06d}", "consent": "yes", "language": "en" if number % 3 == 0 else "fr"}
        applicant = registrations.parse_applicant(form, procedure, [site.id for site in reference.DEMO_SITES], now.date())
        # Registered a day ago: entries close an hour before a draw, and a demo draw may be run at once.
        registrations.register(store, "01", "first_request", applicant, now=now - datetime.timedelta(days=1), rng=rng,
                               identity_secret=settings.identity_key.encode(), limits=limits, records=records,
                               channel=registrations.Channel.ASSISTED, agent="demo")
    store.discard_outbox(DEMO_POOL)  # their welcome emails would have gone out a day ago, not now


# The demo pools of Ain draw every Tuesday at 10:00, Paris time.
DEMO_CRON = "0 10 * * TUE"


@main.command("create-admin")
@click.option("--email", prompt=True)
@click.option("--name", prompt=True)
@click.password_option(help="At least 12 characters (asked twice when not given).")
def create_admin(email: str, name: str, password: str) -> None:
    """Create a national admin (the first account; it then creates the others on the staff pages)."""
    settings = _settings()
    store = Store(_connect(settings))
    try:
        account = accounts.create_account(
            store, None, email=email, name=name, role=accounts.Role.NATIONAL_ADMIN, prefecture=None,
            password=password, now=datetime.datetime.now(datetime.timezone.utc),
        )
    except QueueServiceError as error:
        details = "; ".join(getattr(error, "errors", {}).values()) or error.message
        raise click.ClickException(details) from None
    click.echo(f"National admin {account.email} created. Sign in at {settings.base_url}/staff/login")


def _demo_accounts(store: Store, settings: Settings) -> list[tuple[str, str, str]]:
    """The demo admin and agent of Ain (development only): (role, email, password).

    Their passwords are generated once and kept in data_dir, so that every
    `make run` can print them.
    """
    path = settings.data_dir / "demo-accounts.toml"
    if path.exists():
        import tomllib

        stored = tomllib.loads(path.read_text())
        return [(role, values["email"], values["password"]) for role, values in stored.items()]
    now = datetime.datetime.now(datetime.timezone.utc)
    created, lines = [], ["# Demo staff accounts of `make run` (development only).\n"]
    for role, email, name in (
        (accounts.Role.PREFECTURE_ADMIN, "admin@ain.example.org", "Admin Ain (demo)"),
        (accounts.Role.AGENT, "agent@ain.example.org", "Agent Ain (demo)"),
    ):
        password = secrets.token_urlsafe(12)
        try:
            accounts.create_account(
                store, None,
                email=email, name=name, role=role, prefecture="01", password=password, now=now,
            )
        except QueueServiceError:
            continue  # exists from an earlier data folder: keep it as it is
        created.append((role.value, email, password))
        lines.append(f'[{role.value}]\nemail = "{email}"\npassword = "{password}"\n')
    private_folder(path.parent)
    write_private(path, "".join(lines).encode())
    return created


@main.command("import-agdref")
@click.argument("prefecture")
@click.argument("numbers_file", type=click.File("r", encoding="utf-8"))
def import_agdref(prefecture: str, numbers_file) -> None:
    """Replace PREFECTURE's known AGDREF numbers with those of NUMBERS_FILE (one a line)."""
    settings = _settings()
    store = Store(_connect(settings))
    try:
        store.prefecture(prefecture)
        count = UploadedRecords(store, settings.identity_key.encode()).replace(prefecture, numbers_file)
    except BadAgdrefLines as error:
        raise click.ClickException(f"not an AGDREF number on line(s) {error.shown()}; nothing was changed") from None
    except QueueServiceError as error:
        raise click.ClickException(error.message) from None
    click.echo(f"{count} AGDREF number(s) now known for prefecture {prefecture} (stored as keyed hashes).")


@main.command("migrate-identity")
def migrate_identity_command() -> None:
    """Recompute every registration's person key with today's rules (after an upgrade; safe to run again)."""
    settings = _settings()
    _report_identity_migration(_migrate_identity(Store(_connect(settings)), settings))


def _migrate_identity(store: Store, settings: Settings) -> IdentityMigration:
    return migrate_identity_keys(store, settings.identity_key.encode())


def _report_identity_migration(done: IdentityMigration) -> None:
    click.echo(f"Person keys: {done.moved} moved to today's rules, {done.renamed} of closed registrations renamed, "
               f"{done.current} already current.")
    for pool, ref, holder in done.same_person:
        click.echo(f"{pool}: {ref} is the same person as {holder} under today's rules; both keep their place "
                   f"(the earlier one holds the key). Review them.")
    for pool, ref in done.unreadable:
        click.echo(f"{pool}: the names of {ref} are not accepted any more; its key is left as it was.")


@main.command()
@click.option("--burst", is_flag=True, help="Run the jobs waiting now, then exit.")
def worker(burst: bool) -> None:
    """Run an RQ worker on every queue, with RQ's scheduler for delayed retries; it outlives Redis restarts."""
    from worker.outage import run_worker

    settings = _settings()
    _configure_logging(settings)
    data = _connect_waiting(settings, "worker")
    if settings.queue_redis_url:  # the queues on another Redis: the jobs reach the data through this one
        from worker.jobs import use_data_connection

        use_data_connection(data)
    run_worker(_connect_waiting(settings, "worker", queues=True, data=data), burst, settings.log_level)


@main.command()
def clock() -> None:
    """Run the schedule process: enqueue what is due, every few seconds."""
    from worker import clock as clock_module

    settings = _settings()
    _configure_logging(settings)
    data = _connect_waiting(settings, "clock")
    connection = _connect_waiting(settings, "clock", queues=True, data=data)
    clock_module.run(connection, settings.clock_interval_seconds, settings.dispatch_interval_seconds,
                     data if connection is not data else None)


@main.command()
def dev() -> None:
    """Start the whole service (the Procfile) on the embedded Redis, with demo data.

    Without QS_REDIS_URL the embedded Redis is started here and shared with
    the three processes through its socket. A process that exits is started
    again; Ctrl-C or SIGTERM stops them all, then the embedded Redis, saving
    its data under var/.
    """
    # The web's address, given to every process: the links in messages and the lines below follow it.
    os.environ.setdefault("QS_BIND", f"127.0.0.1:{os.environ.get('PORT', '5000')}")
    settings = _settings()
    if settings.is_production:
        raise click.ClickException("`qs dev` is for development; production runs the Procfile's processes")
    _configure_logging(settings)
    # SIGTERM unwinds like Ctrl-C, so that the embedded Redis is stopped below whenever it comes.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    connection = _connect_waiting(settings, "dev")
    try:
        return_code = _run_dev(settings, connection)
    finally:
        if not settings.redis_url:
            click.echo(f"Stopping the embedded Redis (its data stays in {settings.embedded_redis_path.parent}).")
            stop_embedded(connection)
    sys.exit(return_code)


def _exit_on_signal(signum, frame) -> None:
    raise SystemExit(128 + signum)


def _run_dev(settings: Settings, connection: redis.Redis) -> int:
    """Load the reference and demo data, then supervise the Procfile's processes until Ctrl-C or SIGTERM."""
    from honcho.environ import parse as parse_dotenv

    from worker.supervisor import Supervisor, programs_of

    store = Store(connection)
    _load_reference(store)
    # Registrations kept in var/ from an earlier version: their person keys first.
    _report_identity_migration(_migrate_identity(store, settings))
    _load_demo(store, settings)
    port = int(os.environ.get("PORT", "5000"))
    for role, email, password in _demo_accounts(store, settings):
        click.echo(f"Demo {role}: {email} / {password}  (sign in at {settings.base_url}/staff/login)")
    click.echo(f"Demo AGDREF numbers for Ain: {reference.DEMO_AGDREF_NUMBERS[0]} to {reference.DEMO_AGDREF_NUMBERS[-1]}")
    click.echo(f"Demo waiting list: Ain, first request ({store.waiting_count(DEMO_POOL)} waiting). Run a draw from "
               "/staff/p/01/schedules/first_request/run, then read the messages sent at "
               f"{settings.base_url}/dev/outbox")

    environment = dict(os.environ)
    if not settings.redis_url:
        environment["QS_REDIS_URL"] = embedded_url(connection)
        click.echo(f"Embedded Redis: {environment['QS_REDIS_URL']} (data in {settings.embedded_redis_path.parent})")
    bin_dir = Path(sys.executable).parent
    environment["PATH"] = f"{bin_dir}{os.pathsep}{environment.get('PATH', '')}"
    dotenv = PROJECT_ROOT / ".env"  # read by honcho before: kept for whoever relies on it
    if dotenv.exists():
        environment |= parse_dotenv(dotenv.read_text())
    click.echo(f"Starting web ({settings.base_url}), worker and clock; a process that stops is started again. "
               "Ctrl-C stops them all.")
    return Supervisor(programs_of(PROJECT_ROOT / "Procfile", environment, port), cwd=PROJECT_ROOT).run()


@main.command("check-config")
def check_config() -> None:
    """Print the settings in force (secrets hidden) and check that Redis answers."""
    settings = _settings()
    hidden = {field.name for field in dataclasses.fields(Settings) if not field.repr}  # the secrets
    for name, value in dataclasses.asdict(settings).items():
        shown = "(set)" if name in hidden and value else value
        click.echo(f"{name} = {shown}")
    _connect(settings)
    click.echo("Redis: ok")


@main.command("generate-signing-key")
def generate_signing_key_command() -> None:
    """Print a new key for signing proofs of registration (set it as QS_PROOF_SIGNING_KEY)."""
    from queue_service.registration.proof import generate_signing_key

    click.echo(generate_signing_key())


@main.command("send-test-mail")
@click.argument("address")
def send_test_mail(address: str) -> None:
    """Send a test message to ADDRESS with the configured mail settings."""
    settings = _settings()
    message = mail.new_message(
        settings,
        to=address,
        subject="Test message / Message de test",
        text="The mail settings work.\n\nLes réglages du courrier fonctionnent.\n",
    )
    try:
        mail.send(settings, message)
    except (OSError, smtplib.SMTPException) as error:
        raise click.ClickException(f"could not send: {error}") from None
    click.echo(f"Sent to {address} via {settings.mail_backend}.")


@main.command("send-test-sms")
@click.argument("number")
def send_test_sms(number: str) -> None:
    """Send a test text message to NUMBER (e.g. +33612345678) with the configured SMS settings."""
    settings = _settings()
    try:
        to = clean_phone(number)
    except InvalidField as error:
        raise click.ClickException(error.message) from None
    if settings.sms_backend == "none":
        click.echo('SMS are disabled (sms_backend = "none"): nothing was sent.')
        return
    try:
        message_id = sms.send(settings, to, "The SMS settings work. / Les réglages SMS fonctionnent.")
    except SmsNotSent as error:
        raise click.ClickException(f"could not send: {error}") from None
    click.echo(f"Sent to {to} via {settings.sms_backend} (message id {message_id}).")


@main.command("simulate")
@click.option("--scenario", "scenario_name", default="ain-2019", show_default=True,
              help="A named scenario: " + ", ".join(sorted(simulator.SCENARIOS)) + ".")
@click.option("--seed", type=int, default=1, show_default=True, help="The same seed gives the same result.")
@click.option("--weeks", type=click.IntRange(1, 260), default=None, help="Weeks simulated (default: the scenario's).")
@click.option("--set", "overrides", multiple=True, metavar="NAME=VALUE",
              help="Change one parameter, e.g. --set slots_per_week=1200 (repeatable): "
                   + ", ".join(simulator.TUNABLE) + ".")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Also write the figures as CSV to this file.")
@click.option("--assumptions", is_flag=True, help="Print the scenario's assumptions first.")
def simulate_command(scenario_name: str, seed: int, weeks: int | None, overrides: tuple[str, ...],
                     csv_path: str | None, assumptions: bool) -> None:
    """Run one scenario under first come, first served, the uniform lottery and the service's policy,
    on the same arrivals and slots, and print the figures side by side."""
    if scenario_name not in simulator.SCENARIOS:
        raise click.BadParameter(f"unknown scenario; choose among {', '.join(sorted(simulator.SCENARIOS))}",
                                 param_hint="--scenario")
    values: dict[str, str] = {}
    for override in overrides:
        name, equals, value = override.partition("=")
        if not equals:
            raise click.BadParameter(f"{override!r} is not NAME=VALUE", param_hint="--set")
        values[name.strip()] = value
    if weeks is not None:
        values["weeks"] = str(weeks)
    scenario, problems = simulator.apply_values(simulator.SCENARIOS[scenario_name], values)
    if scenario is None:
        raise click.BadParameter("; ".join(f"{name} {text}" for name, text in problems.items()), param_hint="--set")
    if assumptions:
        for line in scenario.assumptions:
            click.echo(f"- {line}")
        click.echo("")
    result = simulator.simulate(scenario, seed)
    rows = simulator.table(result)
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(cell.ljust(width) if column == 0 else cell.rjust(width)
                             for column, (cell, width) in enumerate(zip(row, widths))))
    click.echo(f"\n{result.people:,} people, {result.slots:,} slots, {scenario.weeks} weeks, "
               f"scenario {scenario.name}, seed {seed}")
    if csv_path:
        Path(csv_path).write_text(simulator.to_csv(result), encoding="utf-8")
        click.echo(f"CSV written to {csv_path}")


if __name__ == "__main__":
    main()
