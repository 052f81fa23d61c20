"""Person keys of the first version (names folded by normalise_name, family then given)
moved to today's rules by `migrate_identity_keys` (`qs migrate-identity`), on the embedded Redis."""

import datetime
import hashlib
import hmac
import random

import pytest
from click.testing import CliRunner

from queue_service import registration as reg
from queue_service.errors import DuplicateRegistration
from queue_service.reference import procedure_by_code
from queue_service.registration import Channel, RegistrationStatus, identity
from queue_service.registration.agdref import UploadedRecords
from queue_service.registration.tokens import RegistrationKey
from queue_service.store.fields import short_name
from queue_service.store.keys import PoolKeys
from worker.cli import main

UTC = datetime.timezone.utc
NOW = datetime.datetime(2027, 1, 4, 9, 30, tzinfo=UTC)
SECRET = b"identity-secret-for-tests"
LIMITS = reg.Limits(contacts_per_pool=4, confirmation_window=datetime.timedelta(hours=24))
POOL = "01:first_request"
SITES = ["bourg", "gex"]


def form(number: int, **changes):
    return {"family_name": "Martin", "given_names": "Jean", "birth_date": "1990-05-17", "nationality": "SN",
            "email": f"person{number}@example.org", "phone": f"+3361234{number:04d}", "consent": "yes",
            "agdref": "0123456789", "permit_expiry": "2027-03-01"} | changes


def version_1_print(applicant: reg.Applicant, pool: str, secret: bytes = SECRET) -> str:
    """The person key as the first version computed it (its documented canonical text)."""
    if applicant.agdref:
        text = f"agdref\x00{pool}\x00{applicant.agdref}"
    else:
        text = "\x00".join(["person", pool, identity.normalise_name(applicant.family_name),
                            identity.normalise_name(applicant.given_names), applicant.birth_date.isoformat(),
                            applicant.nationality])
    return hmac.new(secret, text.encode(), hashlib.sha256).hexdigest()


@pytest.fixture
def records(store):
    uploaded = UploadedRecords(store, SECRET)
    uploaded.replace("01", ["0123456789"])
    return uploaded


@pytest.fixture
def register_as_version_1(store):
    """A registration written as the first version wrote it: the store's script, with the key
    of the first version."""
    rng = random.Random(3)

    def register(number: int, procedure: str = "first_request", now=NOW, secret=SECRET, **changes):
        applicant = reg.parse_applicant(form(number, **changes), procedure_by_code(procedure), SITES, now.date())
        key = RegistrationKey("01", procedure, "%032x" % rng.getrandbits(128))
        registration = reg.Registration(
            key=key, ref=reg.new_reference("01", procedure, rng), status=RegistrationStatus.WAITING,
            channel=Channel.ASSISTED, agent="agent", created_at=now, confirm_by=now + LIMITS.confirmation_window,
            applicant=applicant, email_confirmed_at=now,
        )
        prints = reg.Fingerprints(
            identity=version_1_print(applicant, key.pool, secret),
            email=reg.email_print(secret, key.pool, applicant.email),
            phone=identity.contact_fingerprint(secret, key.pool, "phone", applicant.phone),
        )
        assert store.create_registration(registration, prints, LIMITS.contacts_per_pool, now) == "ok"
        return registration

    return register


@pytest.fixture
def sign_up(store, records):
    rng = random.Random(7)

    def submit(number: int, procedure: str = "first_request", now=NOW, **changes) -> reg.Registration:
        applicant = reg.parse_applicant(form(number, **changes), procedure_by_code(procedure), SITES, now.date())
        return reg.register(store, "01", procedure, applicant, now=now, rng=rng, identity_secret=SECRET,
                            limits=LIMITS, records=records)

    return submit


def holder(store, registration: reg.Registration) -> str | None:
    prints = reg.fingerprints(SECRET, registration.key.pool, registration.applicant)
    return store.person_holder(registration.key.pool, prints.identity)


def test_after_the_migration_a_registration_of_version_1_blocks_its_disguises(store, register_as_version_1,
                                                                                sign_up):
    earlier = register_as_version_1(1)
    done = reg.migrate_identity_keys(store, SECRET)
    assert (done.moved, done.renamed, done.current, done.same_person) == (1, 0, 0, [])
    assert holder(store, earlier) == earlier.key.registration_id
    old_key = PoolKeys(POOL).identity(version_1_print(earlier.applicant, POOL))
    assert not store.redis.exists(old_key)
    for number, (family, given) in enumerate([("M\u0430rtin", "Jean"), ("Jean", "Martin"), ("MARTIN", "jean")], 2):
        with pytest.raises(DuplicateRegistration):
            sign_up(number, family_name=family, given_names=given)
    # Run again: nothing left to do.
    again = reg.migrate_identity_keys(store, SECRET)
    assert (again.moved, again.renamed, again.current) == (0, 0, 1)


def test_without_the_migration_the_key_of_version_1_is_not_found(store, register_as_version_1, sign_up):
    # Why the migration is run at upgrade: the same person, spelt as before, gets a second place.
    register_as_version_1(1)
    assert sign_up(2, given_names="JEAN").status is RegistrationStatus.PENDING_EMAIL


def test_two_registrations_of_one_person_are_reported_and_both_kept(store, register_as_version_1):
    earlier = register_as_version_1(1)
    later = register_as_version_1(2, now=NOW + datetime.timedelta(hours=1), family_name="M\u0430rt\u0456n")
    done = reg.migrate_identity_keys(store, SECRET)
    assert done.moved == 1 and done.same_person == [(POOL, later.ref, earlier.ref)]
    assert holder(store, earlier) == earlier.key.registration_id
    assert store.registration(later.key).status is RegistrationStatus.WAITING  # staff decide
    # The later one keeps its old key, so that closing it releases nothing of the earlier one's.
    stored = store.redis.hget(PoolKeys(POOL).registration(later.key.registration_id), short_name("identity_fp"))
    assert stored == bytes.fromhex(version_1_print(later.applicant, POOL))  # its 32 bytes
    assert reg.migrate_identity_keys(store, SECRET).same_person == done.same_person


def test_closed_registrations_are_renamed_and_their_purge_frees_nobody_else(store, register_as_version_1,
                                                                             sign_up):
    closed = register_as_version_1(1)
    reg.withdraw(store, closed.key, NOW)
    done = reg.migrate_identity_keys(store, SECRET)
    assert (done.moved, done.renamed) == (0, 1)
    again = sign_up(2, now=NOW + datetime.timedelta(days=1))
    reg.confirm_email(store, again.key, again.applicant.email, NOW + datetime.timedelta(days=1))
    assert reg.purge(store, NOW + datetime.timedelta(days=91), datetime.timedelta(days=90)) == 1
    assert store.registration(closed.key) is None
    assert holder(store, again) == again.key.registration_id


def test_agdref_keys_do_not_change(store, register_as_version_1, records):
    register_as_version_1(1, procedure="renewal")
    done = reg.migrate_identity_keys(store, SECRET)
    assert (done.moved, done.renamed, done.current) == (0, 0, 1)


def test_qs_migrate_identity_moves_the_keys_and_names_the_registrations_to_review(settings, store,
                                                                                   register_as_version_1):
    secret = settings.identity_key.encode()
    earlier = register_as_version_1(1, secret=secret)
    later = register_as_version_1(2, now=NOW + datetime.timedelta(hours=1), secret=secret, family_name="M\u0430rtin")
    result = CliRunner().invoke(main, ["migrate-identity"], catch_exceptions=False)
    assert result.exit_code == 0
    summary = "Person keys: 1 moved to today's rules, 0 of closed registrations renamed, 0 already current."
    assert summary in result.output
    assert f"{POOL}: {later.ref} is the same person as {earlier.ref}" in result.output
    assert "Martin" not in result.output and "Jean" not in result.output  # references only
    again = CliRunner().invoke(main, ["migrate-identity"], catch_exceptions=False)
    assert "0 moved to today's rules, 0 of closed registrations renamed, 1 already current." in again.output
