"""How a registration is stored: a hash small enough for Redis's compact listpack encoding,
and hashes written by earlier versions (every field by name, JSON, ISO times) still read.

bench/memory.py measures what this saves; store/registrations.py describes the fields.
"""

import datetime
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from queue_service.reference import HALF_DAYS
from queue_service.registration import Applicant, Channel, Fingerprints, Registration, RegistrationStatus
from queue_service.registration.tokens import RegistrationKey
from queue_service.store.fields import FIELDS, long_name, short_name
from queue_service.store.keys import PoolKeys
from queue_service.store.registrations import _cut

UTC = datetime.timezone.utc
POOL = "01:renewal"
# Redis 7 calls the compact encoding listpack; the embedded 6.2 of the tests, ziplist.
COMPACT = (b"listpack", b"ziplist")
JOINED = datetime.datetime(2027, 1, 4, 9, 0, 12, 345678, tzinfo=UTC)


def person(registration_id: str, **changes) -> Registration:
    applicant = Applicant(
        # Long names in several scripts: the packed part spans several fields of 64 bytes at most.
        family_name=changes.pop("family_name", "Nguyễn-Ţărănescu de la Fontaine-Lévêque " * 2 + "Ωμέγα"),
        given_names="Thị Lan Anh Marie-Éloïse 玛丽",
        birth_date=datetime.date(1988, 2, 29),
        nationality="VN",
        email="thi.lan.anh.nguyen-taranescu@univ-lyon2.example.fr",  # (an address over 64 bytes would not fit)
        phone="+33612345678",
        agdref="0123456789",
        permit_expiry=datetime.date(2027, 2, 1),
        sites=("bourg", "belley", "gex", "nantua"),
        half_days=HALF_DAYS,
        language="vi",
    )
    values = dict(
        key=RegistrationKey("01", "renewal", registration_id), ref="01R-7K3Q9X", status=RegistrationStatus.WAITING,
        channel=Channel.ASSISTED, agent="agent-42", created_at=JOINED, confirm_by=JOINED + datetime.timedelta(days=2),
        applicant=applicant, email_confirmed_at=JOINED, draws_lost=3,
    )
    return Registration(**(values | changes))


PRINTS = Fingerprints(identity="a" * 64, email="b" * 64, phone="c" * 64)


def test_a_registration_is_a_compact_hash_and_reads_back_whole(store, redis):
    written = person("0123456789abcdef01234567")
    store.import_waiting_registrations([written], [PRINTS], JOINED)
    key = PoolKeys(POOL).registration(written.key.registration_id)
    assert redis.object("encoding", key) in COMPACT
    assert max(len(value) for value in redis.hvals(key)) <= 64
    # The long names went into more than one packed field, and read back exactly.
    assert redis.hexists(key, short_name("person2"))
    assert store.registration(written.key) == written

    pending = person("fedcba9876543210fedcba98", status=RegistrationStatus.PENDING_EMAIL, email_confirmed_at=None,
                     draws_lost=0, family_name="Ba", agent=None, ref="01R-AAAA22")
    prints = Fingerprints(identity="d" * 64, email="e" * 64, phone=None)
    assert store.create_registration(pending, prints, contacts_cap=3, now=JOINED) == "ok"
    assert redis.object("encoding", PoolKeys(POOL).registration(pending.key.registration_id)) in COMPACT
    assert store.registration(pending.key) == pending


def test_a_registration_written_by_the_former_encoding_still_reads_and_enters_draws(store, redis):
    registration_id = "00000000000000000000abcd"
    keys = PoolKeys(POOL)
    since = str(JOINED.timestamp())
    former = {
        "id": registration_id, "ref": "01R-OLD111", "prefecture": "01", "procedure": "renewal", "status": "waiting",
        "channel": "online", "agent": "", "created_at": JOINED.isoformat(),
        "confirm_by": (JOINED + datetime.timedelta(days=2)).isoformat(), "email_confirmed_at": JOINED.isoformat(),
        "status_changed_at": JOINED.isoformat(), "waiting_since": since, "waiting_entered_at": since,
        "family_name": "Diallo", "given_names": "Aminata", "birth_date": "1990-05-17", "nationality": "SN",
        "email": "aminata@example.org", "phone": "", "agdref": "", "permit_expiry": "",
        "sites": '["gex", "nantua"]', "half_days": '["mon-am", "fri-pm"]', "language": "fr",
        "identity_fp": "f" * 64, "email_fp": "9" * 64, "phone_fp": "", "draws_entered": "2", "draws_lost": "2",
        "pending_email": "",
    }
    redis.hset(keys.registration(registration_id), mapping=former)
    redis.hset(keys.refs, "01R-OLD111", registration_id)
    redis.zadd(keys.waiting, {registration_id: JOINED.timestamp()})

    found = store.registration(RegistrationKey("01", "renewal", registration_id))
    assert (found.ref, found.status, found.agent, found.created_at) == ("01R-OLD111", RegistrationStatus.WAITING, None,
                                                                         JOINED)
    assert found.applicant.sites == ("gex", "nantua") and found.applicant.half_days == ("mon-am", "fri-pm")
    assert (found.applicant.family_name, found.applicant.birth_date, found.applicant.phone) == \
        ("Diallo", datetime.date(1990, 5, 17), None)
    assert (found.draws_lost, found.email_confirmed_at) == (2, JOINED)

    identities = store.registration_identities(POOL)
    assert identities == [{"id": registration_id, "identity_fp": "f" * 64, "ref": "01R-OLD111",
                           "created_at": JOINED.isoformat(), "family_name": "Diallo", "given_names": "Aminata",
                           "birth_date": "1990-05-17", "nationality": "SN", "agdref": ""}]

    # Beside one written now, both enter a draw with their choices.
    store.import_waiting_registrations([person("0123456789abcdef01234567")], [PRINTS], JOINED)
    cutoff = JOINED + datetime.timedelta(days=1)
    candidates = {row["ref"]: row for row in store.draw_candidates(POOL, cutoff, {}, 0)}
    assert (candidates["01R-OLD111"]["sites"], candidates["01R-OLD111"]["half_days"]) == (
        ("gex", "nantua"), ("mon-am", "fri-pm"))
    assert candidates["01R-OLD111"]["draws_lost"] == 2
    assert (candidates["01R-7K3Q9X"]["sites"], candidates["01R-7K3Q9X"]["half_days"]) == (
        ("bourg", "belley", "gex", "nantua"), HALF_DAYS)
    assert candidates["01R-7K3Q9X"]["draws_lost"] == 3
    assert candidates["01R-7K3Q9X"]["entered_at"] == JOINED.timestamp()


def test_the_people_and_refs_hashes_keep_new_ids_as_12_bytes_read_alike_by_python_and_the_scripts(store, redis):
    """keys.PEOPLE_KEY: the person's field is 16 bytes of the fingerprint, a new id is kept as
    its 12 bytes (scripts/ids.lua and registrations.py `_id_value` encode alike), any other id
    as it is; keys.REFS_KEY keeps ids so too."""
    people = PoolKeys(POOL).people
    new_id, former_id = "Zz09-_AbCdEfGhIj", "0123456789abcdef01234567"
    other = Fingerprints(identity="d" * 64, email="e" * 64, phone="f" * 64)
    store.import_waiting_registrations([person(new_id), person(former_id, ref="01R-8K3Q9X")], [PRINTS, other],
                                       JOINED)
    assert redis.hget(people, bytes.fromhex(PRINTS.identity)[:16]) == bytes.fromhex("673d3dfbf01b09d11f1a1223")
    assert redis.hget(people, bytes.fromhex(other.identity)[:16]) == former_id.encode()
    assert store.person_holder(POOL, PRINTS.identity) == new_id
    # The references hash likewise.
    assert redis.hget(PoolKeys(POOL).refs, "01R-7K3Q9X") == bytes.fromhex("673d3dfbf01b09d11f1a1223")
    assert redis.hget(PoolKeys(POOL).refs, "01R-8K3Q9X") == former_id.encode()
    assert [store.registration_key_by_ref(POOL, ref).registration_id for ref in ("01R-7K3Q9X", "01R-8K3Q9X")] == \
        [new_id, former_id]
    # A script reads the place Python wrote (the same person is refused), and releases it on closing.
    assert store.create_registration(person("Yy09-_AbCdEfGhIj", ref="01R-9K3Q9X"), PRINTS, 3, JOINED) == "duplicate"
    for registration_id in (new_id, former_id):
        assert store.close_registration(RegistrationKey("01", "renewal", registration_id), RegistrationStatus.WITHDRAWN,
                                        [RegistrationStatus.WAITING], JOINED)
    assert not redis.exists(people)
    # A place a script took reads the same in Python.
    assert store.create_registration(person("Yy09-_AbCdEfGhIj", ref="01R-9K3Q9X"), PRINTS, 3, JOINED) == "ok"
    assert len(redis.hget(people, bytes.fromhex(PRINTS.identity)[:16])) == 12
    assert store.registration_key_by_ref(POOL, "01R-9K3Q9X").registration_id == "Yy09-_AbCdEfGhIj"
    assert store.person_holder(POOL, PRINTS.identity) == "Yy09-_AbCdEfGhIj"


def test_no_two_fields_share_a_name_in_redis():
    """store/fields.py: each short name stands for one field, is no long name (a hash written
    before would read wrong) and no field of the history (h, h<n>, h<n>.<part>)."""
    shorts = list(FIELDS.values())
    assert len(set(shorts)) == len(shorts)
    assert not set(shorts) & set(FIELDS)
    assert not [name for name in shorts if re.fullmatch(r"h[0-9.]*", name)]
    assert all(long_name(short_name(name)) == name for name in FIELDS)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300) | st.text(alphabet=st.characters(max_codepoint=127), max_size=300))
def test_the_packed_parts_hold_the_text_in_parts_of_64_bytes_as_full_as_they_can_be(text):
    """The packed fields (store/registrations.py `_cut`): ASCII text is cut every 64 characters,
    other text weighed character by character; both give the same parts."""
    parts = _cut(text, 64)
    assert "".join(parts) == text and all(len(part.encode()) <= 64 for part in parts)
    assert all(part for part in parts) or parts == [""]
    # Full: the next part's first character would not have fitted in the one before.
    assert all(len((part + after[0]).encode()) > 64 for part, after in zip(parts, parts[1:]))
