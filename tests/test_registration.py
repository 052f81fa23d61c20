"""Registrations against the real Redis: one person one place, caps, confirmation,
withdrawal, preferences, purges, and concurrent attempts."""

import datetime
import json
import random
import re
from concurrent.futures import ThreadPoolExecutor

import pytest

from queue_service import registration as reg
from queue_service.errors import (
    ContactCapReached,
    DuplicateRegistration,
    InvalidTransition,
    RegistrationNotFound,
    ValidationFailed,
)
from queue_service.reference import HALF_DAYS, procedure_by_code
from queue_service.registration import Channel, RegistrationStatus
from queue_service.registration.agdref import UploadedRecords
from queue_service.registration.tokens import RegistrationKey
from queue_service.store.fields import long_name, short_name
from queue_service.store.keys import ALL_PATTERN, PoolKeys, pool_pattern

# Each test runs on the single Redis and again on a Redis Cluster (tests/conftest.py).
pytestmark = pytest.mark.topologies

UTC = datetime.timezone.utc
NOW = datetime.datetime(2027, 1, 4, 9, 30, tzinfo=UTC)
SECRET = b"identity-secret-for-tests"
LIMITS = reg.Limits(contacts_per_pool=4, confirmation_window=datetime.timedelta(hours=24))
SITES = ["bourg", "belley", "gex", "nantua"]
KNOWN_AGDREF = "0123456789"


def form(**changes):
    values = {
        "family_name": "Nguyễn",
        "given_names": "Văn An",
        "birth_date": "1990-05-17",
        "nationality": "VN",
        "email": "an.nguyen@example.org",
        "phone": "06 12 34 56 78",
        "agdref": "01 2345 6789",
        "permit_expiry": "2027-03-01",
        "sites": ["bourg", "gex"],
        "half_days": ["mon-am", "tue-pm"],
        "language": "fr",
        "consent": "yes",
    }
    values.update(changes)
    return values


@pytest.fixture
def records(store):
    uploaded = UploadedRecords(store, SECRET)
    uploaded.replace("01", [KNOWN_AGDREF, "9876543210", "1111111111"])
    return uploaded


@pytest.fixture
def sign_up(store, records):
    """Register a person from a form in the renewal pool of Ain."""
    rng = random.Random(7)

    def submit(procedure="renewal", now=NOW, channel=Channel.ONLINE, **changes):
        applicant = reg.parse_applicant(
            form(**changes), procedure_by_code(procedure), SITES, now.date(), email_required=channel is Channel.ONLINE
        )
        return reg.register(
            store,
            "01",
            procedure,
            applicant,
            now=now,
            rng=rng,
            identity_secret=SECRET,
            limits=LIMITS,
            records=records,
            channel=channel,
        )

    return submit


def test_parse_collects_every_wrong_field_at_once():
    with pytest.raises(ValidationFailed) as failure:
        reg.parse_applicant(
            form(family_name="", phone="123", agdref="12", consent="", sites=["mars"]),
            procedure_by_code("renewal"),
            SITES,
            NOW.date(),
        )
    assert set(failure.value.errors) == {"family_name", "phone", "agdref", "consent", "sites"}


def test_first_request_ignores_agdref_and_absent_choices_mean_all():
    applicant = reg.parse_applicant(
        form(agdref="", permit_expiry="", sites=None, half_days=None), procedure_by_code("first_request"), SITES, NOW.date()
    )
    assert applicant.agdref is None and applicant.permit_expiry is None
    assert applicant.sites == tuple(SITES) and applicant.half_days == HALF_DAYS


def test_registration_waits_for_its_email_then_enters_the_pool(store, sign_up):
    created = sign_up()
    assert created.status is RegistrationStatus.PENDING_EMAIL
    assert created.ref.startswith("01R-") and len(created.ref) == 10
    stored = store.registration(created.key)
    assert stored == created
    assert store.waiting_count("01:renewal") == 0

    confirmed = reg.confirm_email(store, created.key, "an.nguyen@example.org", NOW + datetime.timedelta(hours=1))
    assert confirmed.status is RegistrationStatus.WAITING
    assert store.waiting_count("01:renewal") == 1
    again = reg.confirm_email(store, created.key, "an.nguyen@example.org", NOW + datetime.timedelta(hours=2))
    assert again.email_confirmed_at == confirmed.email_confirmed_at  # opening the link twice changes nothing
    assert [event["kind"] for event in store.history(created.key)] == ["registered", "email_confirmed"]
    assert store.registration_key_by_ref("01:renewal", created.ref) == created.key


@pytest.mark.parametrize(
    "variant",
    [
        {},
        {"agdref": "0123456789", "family_name": "NGUYEN", "given_names": "van-an"},
        {"email": "other@example.org", "phone": "+44 7911 123456"},
    ],
)
def test_the_same_person_cannot_hold_two_places(store, sign_up, variant):
    first = sign_up()
    reg.confirm_email(store, first.key, "an.nguyen@example.org", NOW)
    with pytest.raises(DuplicateRegistration) as refused:
        sign_up(**variant)
    assert "already registered" in refused.value.message
    assert "Nguy" not in refused.value.message  # reveals nothing about the other registration


def test_a_registration_still_unconfirmed_is_replaced_by_the_same_person_again(store, sign_up):
    # Sow Fatou typed gmial.com: no email ever came. She registers again with the right address.
    typo = sign_up(email="fatou.sow@gmial.com")
    again = sign_up(email="fatou.sow@gmail.com", phone="07 98 76 54 32")
    assert again.key != typo.key and again.ref != typo.ref
    assert store.registration(typo.key) is None  # its link is dead: the registration is gone
    with pytest.raises(RegistrationNotFound):
        reg.confirm_email(store, typo.key, "fatou.sow@gmial.com", NOW)
    pool_keys = PoolKeys("01:renewal")
    assert store.redis.zrange(pool_keys.unconfirmed, 0, -1) == [again.key.registration_id.encode()]
    assert [store.registration_key_by_ref("01:renewal", ref.decode()) for ref in store.redis.hkeys(pool_keys.refs)] \
        == [again.key]
    # The typo's contacts are free again (the cap counts the live registration only).
    assert store.contact_holders("01:renewal", reg.email_print(SECRET, "01:renewal", "fatou.sow@gmial.com")) == []
    # Only the new registration's link goes out: the old one's message finds nothing to send.
    assert [message["registration_id"] for message in store.outbox("01:renewal")] == [
        typo.key.registration_id, again.key.registration_id]
    assert reg.confirm_email(store, again.key, "fatou.sow@gmail.com", NOW).status is RegistrationStatus.WAITING
    assert store.waiting_count("01:renewal") == 1


def test_without_agdref_the_name_birth_date_and_nationality_identify_the_person(store, sign_up):
    first = sign_up(procedure="first_request", agdref="")
    reg.confirm_email(store, first.key, "an.nguyen@example.org", NOW)
    with pytest.raises(DuplicateRegistration):
        sign_up(procedure="first_request", agdref="", family_name="nguyen", given_names="VAN AN", email="x@example.org")
    other = sign_up(procedure="first_request", agdref="", birth_date="1991-05-17", email="y@example.org")
    assert other.status is RegistrationStatus.PENDING_EMAIL


def test_look_alike_letters_give_one_place(store, sign_up):
    # Issue 14: family names Martin, Mаrtin (Cyrillic а), Martіn (Cyrillic і), Mаrtіn.
    families = ["Martin", "M\u0430rtin", "Mart\u0456n", "M\u0430rt\u0456n"]
    outcomes = []
    for number, family in enumerate(families):
        try:
            created = sign_up(procedure="first_request", agdref="", family_name=family, given_names="Jean",
                              email=f"martin{number}@example.org", phone=f"06 12 34 56 {number:02d}")
            reg.confirm_email(store, created.key, f"martin{number}@example.org", NOW)  # the place is held
            outcomes.append("created")
        except DuplicateRegistration:
            outcomes.append("duplicate")
    assert outcomes == ["created", "duplicate", "duplicate", "duplicate"]
    assert store.waiting_count("01:first_request") == 1


def test_look_alike_letters_replace_a_registration_not_confirmed_yet(store, sign_up):
    first = sign_up(procedure="first_request", agdref="", family_name="Martin", given_names="Jean")
    again = sign_up(procedure="first_request", agdref="", family_name="M\u0430rt\u0456n", given_names="Jean",
                    email="jean.martin@example.org")
    assert store.registration(first.key) is None and store.registration(again.key) is not None


@pytest.mark.parametrize(
    ("family", "given"),
    [("Thi Lan", "Nguyen"), ("Lan Thi", "Nguyen"), ("Nguyen Thi", "Lan"), ("Nguyen", "Lan-Thi")],
)
def test_the_names_in_another_order_give_one_place(store, sign_up, family, given):
    first = sign_up(procedure="first_request", agdref="", family_name="Nguyen", given_names="Thi Lan")
    reg.confirm_email(store, first.key, "an.nguyen@example.org", NOW)
    with pytest.raises(DuplicateRegistration):
        sign_up(procedure="first_request", agdref="", family_name=family, given_names=given,
                email="other@example.org", phone="06 99 99 99 99")


def test_an_expired_attempt_found_in_another_order_is_purged_first(store, sign_up):
    # "Lan Thi / Nguyen" holds another key than "Nguyen / Thi Lan" but finds it among its
    # lookups: the unconfirmed registration past its deadline holding it is purged.
    expired = sign_up(procedure="first_request", agdref="", family_name="Nguyen", given_names="Thi Lan")
    later = sign_up(procedure="first_request", agdref="", family_name="Lan Thi", given_names="Nguyen",
                    now=NOW + datetime.timedelta(hours=30), email="new@example.org")
    assert later.status is RegistrationStatus.PENDING_EMAIL
    assert store.registration(expired.key) is None


def test_unknown_agdref_is_refused_with_a_field_message(sign_up, store):
    with pytest.raises(ValidationFailed) as refused:
        sign_up(agdref="5555555555")
    assert "agdref" in refused.value.errors
    assert store.pools() == []


def test_an_email_serves_at_most_the_cap_per_pool(sign_up):
    for number, name in enumerate(["Ana", "Bela", "Chen", "Dara"]):
        sign_up(procedure="first_request", agdref="", family_name=name, phone=f"06 12 34 56 7{number}")
    with pytest.raises(ContactCapReached):
        sign_up(procedure="first_request", agdref="", family_name="Eve", phone="06 12 34 56 79")
    # Another pool has its own count.
    assert sign_up(procedure="student", agdref="", family_name="Eve", phone="06 12 34 56 79")


def test_withdrawal_closes_the_registration_and_frees_the_person(store, sign_up):
    first = sign_up()
    reg.confirm_email(store, first.key, "an.nguyen@example.org", NOW)
    withdrawn = reg.withdraw(store, first.key, NOW + datetime.timedelta(days=1))
    assert withdrawn.status is RegistrationStatus.WITHDRAWN
    assert store.waiting_count("01:renewal") == 0
    with pytest.raises(InvalidTransition):
        reg.withdraw(store, first.key, NOW + datetime.timedelta(days=2))
    second = sign_up(now=NOW + datetime.timedelta(days=3))
    assert second.key != first.key and second.ref != first.ref


def test_unconfirmed_registrations_are_purged_after_their_deadline(store, sign_up):
    created = sign_up()
    assert reg.purge(store, NOW + datetime.timedelta(hours=23), datetime.timedelta(days=90)) == 0
    assert reg.purge(store, NOW + datetime.timedelta(hours=25), datetime.timedelta(days=90)) == 1
    with pytest.raises(RegistrationNotFound):
        reg.load(store, created.key)
    assert store.registration_key_by_ref("01:renewal", created.ref) is None
    assert sign_up(now=NOW + datetime.timedelta(hours=26)).status is RegistrationStatus.PENDING_EMAIL


def test_an_expired_unconfirmed_attempt_does_not_block_a_new_one(sign_up):
    sign_up()
    later = sign_up(now=NOW + datetime.timedelta(hours=30), email="new@example.org")
    assert later.status is RegistrationStatus.PENDING_EMAIL


def test_closed_registrations_are_purged_after_the_retention_period(store, sign_up):
    created = sign_up()
    reg.withdraw(store, created.key, NOW)
    assert reg.purge(store, NOW + datetime.timedelta(days=89), datetime.timedelta(days=90)) == 0
    assert reg.purge(store, NOW + datetime.timedelta(days=91), datetime.timedelta(days=90)) == 1
    assert store.registration(created.key) is None


def test_purged_registrations_leave_no_personal_data(store, sign_up):
    created = sign_up()
    reg.withdraw(store, created.key, NOW)
    reg.purge(store, NOW + datetime.timedelta(days=91), datetime.timedelta(days=90))
    leftover = {key.decode(): store.redis.type(key).decode() for key in store.redis.scan_iter(pool_pattern("01:renewal"))}
    assert all(store.redis.zcard(key) == 0 for key, kind in leftover.items() if kind == "zset")
    registrations = PoolKeys("01:renewal").registration_prefix  # the registrations' hashes and histories
    assert not any(kind in ("hash", "list", "string") and key.startswith(registrations) for key, kind in leftover.items())
    dump = b"".join(store.redis.dump(key) or b"" for key in store.redis.scan_iter(ALL_PATTERN))
    assert b"Nguy" not in dump and b"an.nguyen" not in dump and KNOWN_AGDREF.encode() not in dump


def test_preferences_change_and_the_phone_cap_holds(store, sign_up):
    created = sign_up()
    updated = reg.update_preferences(
        store,
        created.key,
        {"phone": "07 98 76 54 32", "sites": ["nantua"], "half_days": ["fri-pm"]},
        SITES,
        identity_secret=SECRET,
        limits=LIMITS,
        now=NOW,
    )
    assert updated.applicant.phone == "+33798765432"
    assert updated.applicant.sites == ("nantua",) and updated.applicant.half_days == ("fri-pm",)
    with pytest.raises(ValidationFailed) as refused:
        reg.update_preferences(
            store, created.key, {"phone": "0412", "sites": []}, SITES, identity_secret=SECRET, limits=LIMITS, now=NOW
        )
    assert set(refused.value.errors) == {"phone", "sites"}  # an explicit empty choice is an error


def test_email_change_needs_the_new_address_confirmed(store, sign_up):
    created = sign_up()
    pending, email = reg.request_email_change(store, created.key, "An.New@Example.org", NOW, identity_secret=SECRET)
    assert pending.applicant.email == "an.nguyen@example.org" and pending.pending_email == email
    changed = reg.confirm_email_change(store, created.key, email, identity_secret=SECRET, limits=LIMITS, now=NOW)
    assert changed.applicant.email == email and changed.pending_email is None
    with pytest.raises(InvalidTransition):  # the old address's confirmation link no longer works
        reg.confirm_email(store, created.key, "an.nguyen@example.org", NOW)


def test_assisted_registration_without_email_enters_the_pool_at_once(store, sign_up):
    created = sign_up(channel=Channel.ASSISTED, email="")
    assert created.status is RegistrationStatus.WAITING and created.applicant.email is None
    assert store.waiting_count("01:renewal") == 1


# A mobile number is optional online; at the counter an email or a mobile is enough ---------------


def test_online_registration_without_a_mobile_takes_no_phone_contact(store, sign_up):
    def first_request(name: str, **changes):
        return sign_up(procedure="first_request", agdref="", family_name=name, email=f"{name}@example.org", **changes)

    people = [first_request(name, phone="") for name in ("Ana", "Bela", "Chen", "Dara", "Eve")]  # more than the cap
    assert all(person.applicant.phone is None for person in people)
    assert store.registration(people[0].key).applicant.phone is None
    # Removing the mobile later is allowed too, and frees its place under the mobile's cap.
    created = first_request("Farid")
    updated = reg.update_preferences(store, created.key, {"phone": "", "sites": ["gex"]}, SITES,
                                     identity_secret=SECRET, limits=LIMITS, now=NOW)
    assert updated.applicant.phone is None and updated.applicant.sites == ("gex",)
    for name in ("Gus", "Hana", "Ines", "Jon"):
        first_request(name)  # the same mobile as Farid had: four is the cap
    # Given back, the mobile counts again.
    with pytest.raises(ContactCapReached):
        reg.update_preferences(store, created.key, {"phone": "06 12 34 56 78"}, SITES,
                               identity_secret=SECRET, limits=LIMITS, now=NOW)


def test_a_mobile_given_online_must_still_be_a_mobile(sign_up):
    with pytest.raises(ValidationFailed) as refused:
        sign_up(phone="04 74 32 30 00")  # a landline: no text messages
    assert set(refused.value.errors) == {"phone"}


def test_at_the_counter_an_email_or_a_mobile_is_needed(sign_up):
    with pytest.raises(ValidationFailed) as refused:
        sign_up(channel=Channel.ASSISTED, email="", phone="")
    assert set(refused.value.errors) == {"email", "phone"}
    assert sign_up(channel=Channel.ASSISTED, phone="").applicant.phone is None


def test_two_hundred_concurrent_attempts_of_one_person_give_one_registration(store, records):
    spellings = ["Nguyễn", "NGUYEN", "nguyen", "Nguyên", "NGUYỄN"]
    agdrefs = ["0123456789", "01 23 45 67 89", "0123 456 789", "01-2345-6789"]
    rng_lock_free = [random.Random(seed) for seed in range(400)]

    def attempt(number: int):
        applicant = reg.parse_applicant(
            form(
                family_name=spellings[number % len(spellings)],
                agdref=agdrefs[number % len(agdrefs)],
                email=f"person{number}@example.org",
                phone=f"+3361234{number:04d}",
            ),
            procedure_by_code("renewal"),
            SITES,
            NOW.date(),
        )
        try:
            reg.register(
                store, "01", "renewal", applicant, now=NOW, rng=rng_lock_free[number], identity_secret=SECRET,
                limits=LIMITS, records=records,
            )
            return "created"
        except DuplicateRegistration:
            return "duplicate"

    with ThreadPoolExecutor(max_workers=32) as pool:
        outcomes = list(pool.map(attempt, range(200)))
    # Each attempt replaced the unconfirmed one before it: one registration is left, and it alone.
    assert outcomes.count("created") == 200
    pool_keys = PoolKeys("01:renewal")
    (left,) = store.redis.zrange(pool_keys.unconfirmed, 0, -1)
    assert [store.registration_key_by_ref("01:renewal", ref.decode()).registration_id
            for ref in store.redis.hkeys(pool_keys.refs)] == [left.decode()]
    assert [key for key in store.redis.scan_iter(pool_keys.registration_prefix + "*")
            if not key.decode().endswith(":history")] == [pool_keys.registration(left.decode()).encode()]
    # Once confirmed, the place is held: every further attempt is a duplicate.
    email = store.redis.hget(pool_keys.registration(left.decode()), short_name("email")).decode()
    reg.confirm_email(store, RegistrationKey("01", "renewal", left.decode()), email, NOW)
    with ThreadPoolExecutor(max_workers=32) as pool:
        outcomes = list(pool.map(attempt, range(200, 400)))
    assert outcomes.count("duplicate") == 200
    assert store.waiting_count("01:renewal") == 1


def test_a_hundred_concurrent_registrations_sharing_an_email_stop_at_the_cap(store, records):
    def attempt(number: int):
        applicant = reg.parse_applicant(
            form(family_name=f"Family{chr(65 + number % 26)}{chr(65 + number // 26)}", agdref="", phone=f"+3361234{number:04d}"),
            procedure_by_code("first_request"),
            SITES,
            NOW.date(),
        )
        try:
            reg.register(
                store, "01", "first_request", applicant, now=NOW, rng=random.Random(number), identity_secret=SECRET,
                limits=LIMITS, records=records,
            )
            return "created"
        except ContactCapReached:
            return "capped"

    with ThreadPoolExecutor(max_workers=32) as pool:
        outcomes = list(pool.map(attempt, range(100)))
    assert outcomes.count("created") == LIMITS.contacts_per_pool
    assert outcomes.count("capped") == 100 - LIMITS.contacts_per_pool


# How a registration is kept (store/registrations.py; scripts/prints.lua, contacts.lua, history.lua) -------------

# Redis 7 calls the compact encoding listpack; the embedded 6.2, ziplist.
COMPACT = (b"listpack", b"ziplist")
EVENT_FIELD = re.compile(rb"h(?:[0-9]+(?:\.[0-9]+)?)?")


def to_former_encoding(store, key: RegistrationKey) -> None:
    """Rewrite a registration as the service wrote it before 2026-11-29: its fields by their long
    names, its fingerprints in hexadecimal, its times in ISO, its history in a list key of its own
    (JSON events), its contacts in sets, its person's place in a key of its own."""
    pool_keys = PoolKeys(key.pool)
    registration = pool_keys.registration(key.registration_id)
    events = store.history(key)
    fields = {long_name(name.decode()).encode(): value for name, value in store.redis.hgetall(registration).items()
              if not EVENT_FIELD.fullmatch(name)}
    prints = {name: value.hex() for name, value in fields.items() if name.endswith(b"_fp") and len(value) == 32}
    store.redis.delete(registration)
    store.redis.hset(registration, mapping=fields)
    identity_print = prints.get(b"identity_fp") or fields[b"identity_fp"].decode()  # the person's place: a key
    if store.person_holder(key.pool, identity_print) == key.registration_id:
        store.redis.hdel(pool_keys.people, bytes.fromhex(identity_print)[:16])  # its field (keys.PEOPLE_KEY)
        store.redis.set(pool_keys.identity(identity_print), key.registration_id)
    times = {name: datetime.datetime.fromtimestamp(float(value), UTC).isoformat() for name, value in fields.items()
             if name in (b"status_changed_at", b"email_confirmed_at") and b"T" not in value}
    if b"waiting_since" in fields:
        times[b"waiting_since"] = times[b"waiting_entered_at"] = str(float(fields[b"waiting_since"]))
    if prints or times:
        store.redis.hset(registration, mapping=prints | times)
    store.redis.rpush(pool_keys.history(key.registration_id), *[json.dumps(event) for event in events])
    for name in (b"email_fp", b"phone_fp"):  # its id leaves the contacts hash for a set of the contact's own
        if prints.get(name) and key.registration_id in store.contact_holders(key.pool, prints[name]):
            field = bytes.fromhex(prints[name])[:16]  # (keys.CONTACTS_KEY)
            others = [other for other in store.redis.hget(pool_keys.contacts, field).decode().split(",")
                      if other != key.registration_id]
            if others:
                store.redis.hset(pool_keys.contacts, field, ",".join(others))
            else:
                store.redis.hdel(pool_keys.contacts, field)
            store.redis.sadd(pool_keys.contact(prints[name]), key.registration_id)


def test_a_registration_keeps_prints_as_bytes_its_history_in_its_hash_and_contacts_in_the_pool_hash(store, sign_up):
    created = sign_up()
    reg.confirm_email(store, created.key, "an.nguyen@example.org", NOW + datetime.timedelta(hours=1))
    pool_keys = PoolKeys("01:renewal")
    registration = pool_keys.registration(created.key.registration_id)
    email_print = reg.email_print(SECRET, "01:renewal", "an.nguyen@example.org")
    assert store.redis.hget(registration, short_name("email_fp")) == bytes.fromhex(email_print)
    assert len(store.redis.hget(registration, short_name("identity_fp"))) == 32
    assert len(store.redis.hget(registration, short_name("phone_fp"))) == 32
    assert store.redis.object("encoding", registration) in COMPACT
    # Times in epoch seconds (Redis keeps them as integers); the first wait's entry is its start.
    assert store.redis.hmget(registration, [short_name(name) for name in (
        "status_changed_at", "email_confirmed_at", "waiting_since", "waiting_entered_at")]) == [
        b"1799058600", b"1799058600", b"1799058600", None]
    # The first event without its detail (the channel, read from the hash: `history` below gives it).
    assert store.redis.hget(registration, "h1") == b"1799055000 registered"
    assert not store.redis.exists(pool_keys.history(created.key.registration_id))
    # The contact is a field of the pool's contacts hash (16 bytes of its print -> ids), not a key of its own.
    assert not store.redis.exists(pool_keys.contact(email_print))
    assert store.redis.hget(pool_keys.contacts, bytes.fromhex(email_print)[:16]) == \
        created.key.registration_id.encode()
    # The history reads as the former list gave it.
    assert store.history(created.key) == [
        {"at": "2027-01-04T09:30:00+00:00", "kind": "registered", "detail": {"channel": "online"}},
        {"at": "2027-01-04T10:30:00+00:00", "kind": "email_confirmed", "detail": {}},
    ]
    assert store.registrations_with_contact({"01:renewal": email_print}) == [(created.key, RegistrationStatus.WAITING)]
    assert reg.recover(store, "an.nguyen@example.org", identity_secret=SECRET, now=NOW) == 1
    # Read back whole, and the applicant's changes find the prints as the scripts compare them.
    assert store.registration(created.key).applicant.email == "an.nguyen@example.org"
    changed = reg.update_preferences(store, created.key, {"phone": "07 98 76 54 32", "sites": ["gex"]}, SITES,
                                     identity_secret=SECRET, limits=LIMITS, now=NOW + datetime.timedelta(hours=2))
    assert changed.applicant.phone == "+33798765432"
    assert [event["kind"] for event in store.history(created.key)] == [
        "registered", "email_confirmed", "preferences_changed"]
    assert reg.withdraw(store, created.key, NOW + datetime.timedelta(hours=3)).status is RegistrationStatus.WITHDRAWN
    assert store.contact_holders("01:renewal", email_print) == []
    assert not store.redis.hexists(pool_keys.contacts, bytes.fromhex(email_print)[:16])


def test_the_contact_cap_holds_on_contact_sets_written_before_which_move_into_the_contacts_hash(store, sign_up):
    email_print = reg.email_print(SECRET, "01:first_request", "an.nguyen@example.org")
    contact = PoolKeys("01:first_request").contact(email_print)
    created = [sign_up(procedure="first_request", agdref="", family_name=name, phone=f"06 12 34 56 7{number}")
               for number, name in enumerate(["Ana", "Bela", "Chen", "Dara"])]
    for registration in created:
        to_former_encoding(store, registration.key)
    assert store.redis.type(contact) == b"set"
    assert {key for key, _ in store.registrations_with_contact({"01:first_request": email_print})} == \
        {registration.key for registration in created}
    # Their links go again to the address their hexadecimal prints stand for.
    outbox = len(store.outbox("01:first_request"))
    assert reg.recover(store, "an.nguyen@example.org", identity_secret=SECRET, now=NOW) == 4
    assert len(store.outbox("01:first_request")) == outbox + 4
    with pytest.raises(ContactCapReached):
        sign_up(procedure="first_request", agdref="", family_name="Eve", phone="06 12 34 56 79")
    assert not store.redis.exists(contact)  # moved into the contacts hash on the first touch
    assert len(store.contact_holders("01:first_request", email_print)) == 4
    reg.confirm_email(store, created[0].key, "an.nguyen@example.org", NOW)
    reg.withdraw(store, created[0].key, NOW)  # its former prints (hexadecimal) still release its contacts
    assert store.contact_holders("01:first_request", email_print) == sorted(
        registration.key.registration_id for registration in created[1:])
    assert sign_up(procedure="first_request", agdref="", family_name="Eve", phone="06 12 34 56 79")
    with pytest.raises(ContactCapReached):
        sign_up(procedure="first_request", agdref="", family_name="Fay", phone="06 12 34 56 69")


def test_a_registration_written_before_goes_through_confirmation_draw_offer_withdrawal_and_purge(store,
                                                                                                  reference_data):
    """Registrations as the service wrote them before 2026-11-29 (hexadecimal prints, history
    lists, contact sets) are read and changed by every step, and their purge leaves nothing."""
    from helpers import CREATED, DRAW_AT, DRAW_ID, first_offer, publish_slots, run_the_draw, schedule
    from helpers import POOL as DRAWN_POOL
    from helpers import SECRET as DRAWN_SECRET
    from queue_service import offers

    store.save_schedule(schedule())
    publish_slots(store, 2)
    joined = CREATED + datetime.timedelta(days=1)
    rng, people = random.Random(3), []
    for number in range(6):
        applicant = reg.parse_applicant(
            {"family_name": f"Former {chr(65 + number)}", "given_names": "Test", "birth_date": "1990-01-01",
             "nationality": "MA", "email": f"former{number}@example.org", "phone": f"+3361200{number:04d}",
             "consent": "yes", "sites": ["bourg", "gex"]},
            procedure_by_code("first_request"), ["bourg", "gex"], joined.date())
        created = reg.register(store, "01", "first_request", applicant, now=joined, rng=rng,
                               identity_secret=DRAWN_SECRET, limits=LIMITS, records=UploadedRecords(store, DRAWN_SECRET))
        shown = store.history(created.key)
        to_former_encoding(store, created.key)
        assert store.history(created.key) == shown  # the list reads as the hash did
        reg.confirm_email(store, created.key, applicant.email, joined)
        to_former_encoding(store, created.key)  # and waiting as before
        people.append(created)
    pool_keys = PoolKeys(DRAWN_POOL)
    assert all(store.redis.type(pool_keys.history(person.key.registration_id)) == b"list" for person in people)
    # Their persons' places are keys of their own, and still hold them.
    former_keys = {person.key: pool_keys.identity(reg.fingerprints(DRAWN_SECRET, DRAWN_POOL, person.applicant).identity)
                   for person in people}
    assert not store.redis.exists(pool_keys.people)
    assert [store.redis.get(former_keys[person.key]).decode() for person in people] == \
        [person.key.registration_id for person in people]
    with pytest.raises(DuplicateRegistration):
        reg.register(store, "01", "first_request", people[0].applicant, now=joined, rng=rng,
                     identity_secret=DRAWN_SECRET, limits=LIMITS, records=UploadedRecords(store, DRAWN_SECRET))

    run_the_draw(store)
    key, offer = first_offer(store)
    before = store.history(key)
    assert [event["kind"] for event in before] == ["registered", "email_confirmed"]
    offers.decline(store, key, schedule(), DRAW_AT + datetime.timedelta(hours=1))
    after = store.history(key)
    assert after[:2] == before and after[2]["detail"] == {"draw_id": DRAW_ID, "slot": offer.slot_id}
    assert not store.redis.exists(pool_keys.history(key.registration_id))  # moved into the hash on the first event
    registration = pool_keys.registration(key.registration_id)
    assert store.redis.object("encoding", registration) in COMPACT  # the long event is cut into 64-byte parts
    # Its fields took their short names on that first touch (scripts/fields.lua), values unchanged.
    names = {name.decode() for name in store.redis.hkeys(registration)}
    assert {"status", "email_fp", "person"}.isdisjoint(names)
    assert {short_name("status"), short_name("email_fp"), short_name("person")} <= names
    assert store.registration(key).status is RegistrationStatus.WAITING

    untouched = next(person.key for person in people if store.registration(person.key).status.value == "waiting"
                     and person.key != key)
    for leaving in (key, untouched):
        assert reg.withdraw(store, leaving, DRAW_AT + datetime.timedelta(hours=2)).status is \
            RegistrationStatus.WITHDRAWN
    for person in people:
        if person.key in (key, untouched):
            email_print = reg.email_print(DRAWN_SECRET, DRAWN_POOL, person.applicant.email)
            assert not store.redis.exists(pool_keys.contact(email_print))
            assert store.contact_holders(DRAWN_POOL, email_print) == []
            assert not store.redis.exists(former_keys[person.key])  # the place released
    assert reg.purge(store, DRAW_AT + datetime.timedelta(days=100), datetime.timedelta(days=90)) == 2
    for gone in (key, untouched):
        assert not store.redis.exists(pool_keys.registration(gone.registration_id),
                                      pool_keys.history(gone.registration_id))
    assert store.waiting_count(DRAWN_POOL) == 3  # the other offer's holder is offered, not waiting
    # The one who withdrew may register again; the place is then in the people hash.
    again = next(person for person in people if person.key == untouched)
    registered = reg.register(store, "01", "first_request", again.applicant, now=DRAW_AT, rng=rng,
                              identity_secret=DRAWN_SECRET, limits=LIMITS,
                              records=UploadedRecords(store, DRAWN_SECRET))
    identity_print = reg.fingerprints(DRAWN_SECRET, DRAWN_POOL, again.applicant).identity
    assert store.redis.hlen(pool_keys.people) == 1
    assert store.person_holder(DRAWN_POOL, identity_print) == registered.key.registration_id
    assert not store.redis.exists(former_keys[untouched])
