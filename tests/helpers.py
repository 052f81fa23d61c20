"""Plain functions and constants that several test files share; the fixtures built
on them are in conftest.py. Test files import them with `from helpers import ...`
(pytest puts tests/ on the path), never from another test file."""

from __future__ import annotations

import datetime
import random
import re
import signal
import socket
import subprocess
from pathlib import Path
from zoneinfo import ZoneInfo

import psutil

from queue_service import draws
from queue_service import registration as reg
from queue_service.draws.schedules import DrawPolicy, DrawSchedule, draw_id
from queue_service.inventory.slots import Slot
from queue_service.offers import Offer, OfferStatus, OfferTiming
from queue_service.reference import procedure_by_code
from queue_service.registration.agdref import UploadedRecords
from queue_service.registration.tokens import RegistrationKey
from queue_service.store.keys import ALL_PATTERN, RATE_LIMIT_PREFIX


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (for a server the test starts)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# Pages and staff --------------------------------------------------------------------

# Rate limits no test of many requests from one address and one email can reach.
UNLIMITED = {name: "100000 per minute" for name in (
    "rate_limit_default", "rate_limit_registration", "rate_limit_registration_unproven",
    "rate_limit_registration_email", "rate_limit_links", "rate_limit_recovery", "rate_limit_recovery_email")}

ENGLISH = {"Accept-Language": "en"}
# The password of every staff account the tests create.
PASSWORD = "correct horse battery"


def csrf_token(client, path: str) -> str:
    """The CSRF token of the form on the page at `path`, read as a browser would."""
    page = client.get(path, headers=ENGLISH).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def sign_in(app, who: str):
    """A test client signed in as `who`@example.gouv.fr (an account of the `staff` fixture)."""
    client = app.test_client()
    token = csrf_token(client, "/staff/login")
    response = client.post("/staff/login", data={"email": f"{who}@example.gouv.fr", "password": PASSWORD,
                                                  "csrf_token": token})
    assert response.status_code == 302, response.get_data(as_text=True)
    return client


# Ain's first-request pool, drawn on a Monday at 10:00 in Paris, five weeks ahead ------------

PARIS = ZoneInfo("Europe/Paris")
NOON = datetime.time(12)


def draw_monday(today: datetime.date) -> datetime.datetime:
    """The Monday at 10:00 in Paris (as UTC) of the draw the tests share: five to six weeks
    after `today`, then a week later at a time until Paris keeps one UTC offset from two weeks
    before it to four weeks after.

    Ahead of the real date, so that what the service does at the real time (an applicant
    answering an offer, a page listing the coming draws) still comes before the draw's
    deadlines, whenever the suite runs; a fixed date stopped working once it had passed.
    With one offset, the local times the tests read (10:00, a deadline two days later at
    10:00) are the same in every season."""
    day = today + datetime.timedelta(days=35)
    day += datetime.timedelta(days=-day.weekday() % 7)
    while len({PARIS.utcoffset(datetime.datetime.combine(day + datetime.timedelta(days=shift), NOON))
               for shift in range(-14, 29)}) > 1:
        day += datetime.timedelta(days=7)
    return datetime.datetime.combine(day, datetime.time(10), PARIS).astimezone(datetime.timezone.utc)


DRAW_AT = draw_monday(datetime.date.today())
CREATED = DRAW_AT - datetime.timedelta(days=3)  # one draw due: DRAW_AT
POOL = "01:first_request"


def draw_id_at(moment: datetime.datetime) -> str:
    """The id of the pool's draw at `moment` (its local time in Paris, to the minute)."""
    return draw_id("01", "first_request", moment, "Europe/Paris")


def english_day(moment: datetime.datetime) -> str:
    """The day of `moment` in Paris as the English pages and messages write it: "Monday 4 January 2027"."""
    local = moment.astimezone(PARIS)
    return f"{local:%A} {local.day} {local:%B %Y}"


DRAW_ID = draw_id_at(DRAW_AT)
SECRET = b"test-identity-secret"
# The offers' timing with the defaults of config/defaults.toml, and the answer deadline of
# the draw at DRAW_AT under the default 48-hour window.
TIMING = OfferTiming(
    cancel_notice=datetime.timedelta(hours=24),
    no_show_grace=datetime.timedelta(minutes=30),
    standby_min_notice=datetime.timedelta(hours=6),
    reminder_hours=(48, 24),
    draw_min_answer=datetime.timedelta(hours=12),
)
DEADLINE = DRAW_AT + datetime.timedelta(hours=48)


def schedule(**policy) -> DrawSchedule:
    return DrawSchedule(prefecture="01", procedure="first_request", timezone="Europe/Paris", cron="0 10 * * MON",
                        horizon_from_days=1, horizon_to_days=14, created_at=CREATED, policy=DrawPolicy(**policy))


def publish_slots(store, count: int) -> list[Slot]:
    """`count` slots of Ain's first-request pool, from three days after the draw: far enough for
    its offers to keep the 48-hour window (DEADLINE) before the 24-hour cancellation notice."""
    start = DRAW_AT + datetime.timedelta(days=3)
    slots = [
        Slot(id=f"bourg-first_request-s{number:04d}", prefecture="01", site=["bourg", "gex"][number % 2],
             procedure="first_request", starts_at=start + datetime.timedelta(minutes=30 * (number // 2)),
             duration_minutes=30, counter=1 + number % 2)
        for number in range(count)
    ]
    store.add_slots(slots)
    return slots


def register_people(store, count: int, joined: datetime.datetime, first: int = 0) -> list:
    """`count` people of Ain's first-request pool, registered and confirmed at `joined`
    (people number `first` onwards: call again with another `first` for other people).

    Their confirmation and status links were sent then: the pool's outbox is
    emptied (call it before a test writes anything there).
    """
    rng = random.Random(11 + first)
    records = UploadedRecords(store, SECRET)
    people = []
    for number in range(first, first + count):
        form = {"family_name": f"Person {chr(65 + number % 26)}{chr(65 + number // 26 % 26)}{chr(65 + number // 676)}",
                "given_names": "Test", "birth_date": "1990-01-01", "nationality": "MA",
                "email": f"p{number}@example.org", "phone": f"+336120{number:05d}", "consent": "yes",
                "sites": ["bourg", "gex"] if number % 3 else ["gex"]}
        applicant = reg.parse_applicant(form, procedure_by_code("first_request"), ["bourg", "gex"], joined.date())
        created = reg.register(store, "01", "first_request", applicant, now=joined, rng=rng, identity_secret=SECRET,
                               limits=reg.Limits(4, datetime.timedelta(hours=24)), records=records)
        reg.confirm_email(store, created.key, applicant.email, joined)
        people.append(created)
    store.discard_outbox(POOL)
    return people


def run_the_draw(store):
    due = draws.due_draws(schedule(), None, DRAW_AT + datetime.timedelta(seconds=1))[0]
    draws.announce(store, schedule(), due, DRAW_AT - datetime.timedelta(days=2))
    assert draws.run(store, POOL, DRAW_ID, DRAW_AT, TIMING) is draws.DrawState.PUBLISHED


def announce_freeze_and_draw(store) -> int:
    """The scheduled draw taken up to `drawn` by one run; returns that run's fencing token."""
    due = draws.due_draws(schedule(), None, DRAW_AT + datetime.timedelta(seconds=5))[0]
    draws.announce(store, schedule(), due, DRAW_AT)
    fence = store.take_draw_fence(POOL, DRAW_ID)
    draws.freeze(store, POOL, store.draw(POOL, DRAW_ID), schedule(), fence, DRAW_AT, TIMING)
    draws.draw(store, POOL, DRAW_ID, fence, DRAW_AT)
    return fence


def key_of(registration_id: str) -> RegistrationKey:
    return RegistrationKey("01", "first_request", registration_id)


def offered(store) -> dict[str, Offer]:
    return {rid: offer for rid, offer in store.offers(POOL).items() if offer.status is OfferStatus.PENDING}


def first_offer(store) -> tuple[RegistrationKey, Offer]:
    registration_id, offer = sorted(offered(store).items())[0]
    return key_of(registration_id), offer


# Mail -------------------------------------------------------------------------------


def plain_text(message) -> str:
    """The text/plain body of an email received by the loopback SMTP server."""
    parts = [part.get_payload(decode=True).decode() for part in message.walk()
             if part.get_content_type() == "text/plain"]
    assert parts, "no text part"
    return "".join(parts)


def email_link(message, path: str) -> str:
    """The path and query of the link to `path` in an email (its host is the configured base URL)."""
    text = next(part for part in message.walk() if part.get_content_type() == "text/plain")
    found = re.search(r"https?://[^\s/]+(" + re.escape(path) + r"\?t=[\w.\-]+)", text.get_payload(decode=True).decode())
    assert found
    return found.group(1)


# Browser ----------------------------------------------------------------------------

SCREENSHOTS = Path(__file__).resolve().parent.parent / "var" / "screenshots"


def collect_console_errors(page) -> list[str]:
    """The errors the page's scripts report, gathered as the page runs."""
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    return errors


# The renewal form's labels and buttons, and the pages after it, in French and in English.
REGISTRATION_TEXTS = [
    {
        "locale": "fr-FR",
        "family_name": "Nom de famille",
        "given_names": "Prénoms",
        "birth_date": "Date de naissance",
        "nationality": "Nationalité",
        "agdref": "Numéro AGDREF",
        "permit_expiry": "Date d’expiration",
        "email": "Adresse électronique",
        "phone": "Téléphone portable",
        "consent": "J’ai lu",
        "register": "S’inscrire",
        "confirm": "Confirmer mon inscription",
        "waiting": "Sur la liste d’attente",
        "proof": "Attestation d’inscription",
        "download": "Télécharger l’attestation signée (JSON)",
        "withdraw_link": "Retirer mon inscription",
        "withdraw_button": "Oui, retirer mon inscription",
        "withdrawn": "Inscription retirée",
    },
    {
        "locale": "en-GB",
        "family_name": "Family name",
        "given_names": "Given names",
        "birth_date": "Date of birth",
        "nationality": "Nationality",
        "agdref": "AGDREF number",
        "permit_expiry": "Expiry date",
        "email": "Email address",
        "phone": "Mobile phone",
        "consent": "I have read",
        "register": "Register",
        "confirm": "Confirm my registration",
        "waiting": "In the waiting list",
        "proof": "Proof of registration",
        "download": "Download the signed proof (JSON)",
        "withdraw_link": "Withdraw my registration",
        "withdraw_button": "Yes, withdraw my registration",
        "withdrawn": "Withdrawn",
    },
]


def fill_registration(page, texts, email="olena@example.org"):
    page.get_by_label(texts["family_name"]).fill("Petrenko")
    page.get_by_label(texts["given_names"]).fill("Олена")
    page.get_by_label(texts["birth_date"]).fill("1994-03-08")
    page.get_by_label(texts["nationality"]).select_option("UA")
    page.get_by_label(texts["agdref"]).fill("0100 0000 02")
    page.get_by_label(texts["permit_expiry"]).fill("2027-02-28")
    page.get_by_label(texts["email"]).fill(email)
    page.get_by_label(texts["phone"]).fill("+380 67 123 4567")
    # The DSFR draws the box on the label; tick it where a thumb would, away from the notice's link.
    page.locator("label[for=consent]").click(position={"x": 8, "y": 8})
    assert page.get_by_label(texts["consent"]).is_checked()
    page.get_by_role("button", name=texts["register"], exact=True).click()


def staff_sign_in(page, live_server, email):
    """Sign in on the staff login page (an account of the `ain_staff` fixture)."""
    page.goto(live_server + "/staff/login")
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(live_server + "/staff/")


# One applicant, as the registration form takes her (api_person: as the API does).
PERSON = {
    "family_name": "El Amrani",
    "given_names": "Fatima-Zahra",
    "birth_date": "1988-11-02",
    "nationality": "MA",
    "email": "fatima@example.org",
    "phone": "+212 612-345678",
    "agdref": "01 0000 0001",
    "permit_expiry": "2027-02-15",
    "language": "en",
    "consent": "yes",
}


def api_person(**changes):
    return PERSON | {"prefecture": "01", "procedure": "renewal", "consent": True} | changes


def all_keys(store) -> set[bytes]:
    return {key for key in store.redis.scan_iter(ALL_PATTERN) if RATE_LIMIT_PREFIX.encode() not in key}


def fail_every_delivery(store, redis, run_jobs, monkeypatch, settings) -> None:
    """Send what `POOL`'s outbox holds to a mail server that is away, until RQ gives up on every
    message (its failures final), then bring the server back: nothing retries by itself."""
    from rq import Queue

    from worker import jobs
    from worker.queues import NOTIFICATIONS

    monkeypatch.setenv("QS_SMTP_PORT", "1")  # nothing listens there: connection refused
    jobs.dispatch_pool(redis, store, POOL)
    run_jobs()
    queue = Queue(NOTIFICATIONS, connection=redis)
    for job_id in queue.scheduled_job_registry.get_job_ids():  # RQ gives up: the failures are final
        queue.scheduled_job_registry.remove(job_id)
    monkeypatch.setenv("QS_SMTP_PORT", str(settings.smtp_port))


def stop_processes(processes, marker_variable: str, marker: str) -> None:
    """SIGTERM to each process a test started and a wait for it; then SIGKILL to every process
    still running with `marker` in its environment variable `marker_variable` (gunicorn's
    workers, a job's process, RQ's scheduler, whatever their parent became)."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    leftovers = []
    for candidate in psutil.process_iter():
        try:
            if candidate.environ().get(marker_variable) == marker:
                candidate.kill()
                leftovers.append(candidate)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            pass
    psutil.wait_procs(leftovers, timeout=10)
