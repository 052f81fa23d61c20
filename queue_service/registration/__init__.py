"""Registrations: one person waiting in one pool, from sign-up to withdrawal.

The rules live here; the store applies each change atomically. Time (`now`),
randomness (`rng`) and keys are passed in, so the same code serves the web
form, the API, an agent at the counter and the tests.
"""

from __future__ import annotations

import base64
import datetime
import random
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import Enum

from queue_service.errors import (
    ContactCapReached,
    DuplicateRegistration,
    InvalidTransition,
    RegistrationNotFound,
    ReplacedLink,
    ValidationFailed,
)
from queue_service.reference import HALF_DAYS, LOCALES, IdentityField, Procedure
from queue_service.registration import identity
from queue_service.registration.agdref import AgdrefRecords
from queue_service.registration.tokens import RegistrationKey, status_token


class RegistrationStatus(str, Enum):
    PENDING_EMAIL = "pending_email"
    WAITING = "waiting"
    OFFERED = "offered"
    CONFIRMED = "confirmed"
    ATTENDED = "attended"
    NO_SHOW = "no_show"
    DECLINED = "declined"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    WITHDRAWN = "withdrawn"


# A person holds at most one registration in one of these per pool.
ACTIVE_STATUSES = frozenset(
    {
        RegistrationStatus.PENDING_EMAIL,
        RegistrationStatus.WAITING,
        RegistrationStatus.OFFERED,
        RegistrationStatus.CONFIRMED,
    }
)
# An applicant may withdraw, or change their preferences, only while waiting
# for a draw. Offers and bookings have their own cancellation rules.
WITHDRAWABLE = (RegistrationStatus.PENDING_EMAIL, RegistrationStatus.WAITING)
EDITABLE = (RegistrationStatus.PENDING_EMAIL, RegistrationStatus.WAITING)


class Channel(str, Enum):
    ONLINE = "online"
    ASSISTED = "assisted"


class RegistrationMessage(str, Enum):
    """The messages about a registration itself (queue_service.notifications.messages composes them).

    Each is written to the pool's outbox by the store in the same atomic step as
    the change it announces; the functions below decide which one is due.
    """

    CONFIRM = "confirm"  # the link that confirms the email (online registrations)
    REGISTERED = "registered"  # the private status link, once in the pool
    EMAIL_CHANGE = "email_change"  # the link that confirms a new address, sent to it
    EMAIL_CHANGED = "email_changed"  # the new status link, to the new address once confirmed
    STATUS_LINK = "status_link"  # the status link again, asked for by its owner (recover)
    WITHDRAWN = "withdrawn"  # the notice that the applicant left the pool


# Public references: the prefecture's code, a letter for the procedure, and
# six characters of Crockford's alphabet (no I, L, O, U: easy to read aloud).
REFERENCE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
REFERENCE_LENGTH = 6
UNKNOWN_AGDREF = identity.N_(
    "This AGDREF number is not in the prefecture's records. Check the 10 digits on your residence permit or receipt."
)
PROCEDURE_LETTERS = {"first_request": "F", "renewal": "R", "permit_pickup": "P", "student": "S"}


@dataclass(frozen=True)
class Applicant:
    """What a person told us, validated and normalised."""

    family_name: str
    given_names: str
    birth_date: datetime.date
    nationality: str
    email: str | None
    phone: str | None  # E.164; None when not given (it is optional)
    agdref: str | None
    permit_expiry: datetime.date | None
    sites: tuple[str, ...]
    half_days: tuple[str, ...]
    language: str


@dataclass(frozen=True)
class Event:
    """One line of a registration's history, shown on the proof of registration."""

    at: datetime.datetime
    kind: str
    detail: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Registration:
    key: RegistrationKey
    ref: str
    status: RegistrationStatus
    channel: Channel
    agent: str | None
    created_at: datetime.datetime
    confirm_by: datetime.datetime
    applicant: Applicant
    draws_entered: int = 0
    draws_lost: int = 0
    email_confirmed_at: datetime.datetime | None = None
    pending_email: str | None = None
    link_version: int = 0  # of the private status link: grows when the email changes (tokens.status_token)


@dataclass(frozen=True)
class Fingerprints:
    """Keyed hashes standing for the person and their contacts in Redis key names.

    `identity` is the person's key, held by their registration; a new one is
    refused if any of `identity_lookups` (its own key and those of every order
    of its words, identity.identity_lookups) is held.
    """

    identity: str
    email: str | None
    phone: str | None
    identity_lookups: tuple[str, ...] = ()


@dataclass(frozen=True)
class Limits:
    contacts_per_pool: int
    confirmation_window: datetime.timedelta


# Parsing ----------------------------------------------------------------------


def parse_applicant(
    form: Mapping[str, object],
    procedure: Procedure,
    site_ids: list[str],
    today: datetime.date,
    *,
    email_required: bool = True,
) -> Applicant:
    """Validate a registration form (web form or JSON); raises ValidationFailed with every wrong field."""
    errors: dict[str, str] = {}

    def take(name: str, parse, *arguments):
        try:
            return parse(*arguments)
        except identity.InvalidField as error:
            errors[error.field] = error.message
            return None

    required = set(procedure.required_fields)
    family_name = take("family_name", identity.clean_name, "family_name", _text(form, "family_name"))
    given_names = take("given_names", identity.clean_name, "given_names", _text(form, "given_names"))
    birth_date = take("birth_date", identity.parse_birth_date, _text(form, "birth_date"), today)
    nationality = take("nationality", identity.clean_nationality, _text(form, "nationality"))
    email = None
    if email_required or _text(form, "email"):
        email = take("email", identity.clean_email, _text(form, "email"))
    # The mobile is only for text messages: optional. At the counter, where the
    # email is optional too, one of them is needed to tell the applicant anything.
    phone = None
    if _text(form, "phone"):
        phone = take("phone", identity.clean_phone, _text(form, "phone"))
    elif not email_required and not _text(form, "email"):
        errors["email"] = errors["phone"] = identity.N_(
            "Give an email address or a mobile phone number: we need one to tell the applicant when they are drawn."
        )
    agdref = None
    if IdentityField.AGDREF in required:
        agdref = take("agdref", identity.clean_agdref, _text(form, "agdref"))
    permit_expiry = None
    if IdentityField.PERMIT_EXPIRY in required:
        permit_expiry = take("permit_expiry", identity.parse_permit_expiry, _text(form, "permit_expiry"), today)
    sites = _choices(form, "sites", site_ids, errors, identity.N_("Choose at least one place you can go to."))
    half_days = _choices(
        form, "half_days", list(HALF_DAYS), errors, identity.N_("Choose at least one half-day when you are free.")
    )
    language = _text(form, "language") or "fr"
    if language not in LOCALES:
        errors["language"] = identity.N_("Choose a language for our messages.")
    if _text(form, "consent") not in ("yes", "true", "on", "1"):
        errors["consent"] = identity.N_("Please read the privacy notice and accept it to register.")
    if errors:
        raise ValidationFailed(errors)
    return Applicant(
        family_name=family_name,
        given_names=given_names,
        birth_date=birth_date,
        nationality=nationality,
        email=email,
        phone=phone,
        agdref=agdref,
        permit_expiry=permit_expiry,
        sites=sites,
        half_days=half_days,
        language=language,
    )


def _text(form: Mapping[str, object], name: str) -> str:
    value = form.get(name)
    if isinstance(value, bool):
        return "yes" if value else ""
    return value.strip() if isinstance(value, str) else ""


def _choices(form, name: str, allowed: list[str], errors: dict[str, str], empty_message: str) -> tuple[str, ...]:
    """Selected values of a multiple choice, in the order of `allowed`. Absent means all."""
    value = form.get(name)
    if value is None or value == "":
        return tuple(allowed)
    chosen = [value] if isinstance(value, str) else value
    if not isinstance(chosen, list) or not all(isinstance(item, str) for item in chosen):
        errors[name] = empty_message
        return ()
    unknown = set(chosen) - set(allowed)
    if unknown or not chosen:
        errors[name] = empty_message
        return ()
    return tuple(item for item in allowed if item in chosen)


# Rules ---------------------------------------------------------------------------


def new_registration_id(rng: random.Random) -> str:
    """A new registration's id: 16 characters of the URL-safe base64 alphabet (96 random bits).

    The id is in every key and index entry of the registration (its hash's name, the waiting
    set, the references, the person's key): 16 characters, not the 32 hexadecimal ones of
    before 2026-11-29, save about 60 bytes of Redis a registration (docs/operations.md,
    Memory). Ids are opaque: those made before stay valid. It takes 128 bits of `rng`, as
    before, so that what a seeded `rng` gives next is unchanged.
    """
    return base64.urlsafe_b64encode((rng.getrandbits(128) >> 32).to_bytes(12, "big")).decode()


def new_reference(prefecture: str, procedure: str, rng: random.Random) -> str:
    """A public reference such as 01R-7K3Q9X: short, unguessable enough, no personal data."""
    letter = PROCEDURE_LETTERS.get(procedure, "X")
    code = "".join(rng.choice(REFERENCE_ALPHABET) for _ in range(REFERENCE_LENGTH))
    return f"{prefecture}{letter}-{code}"


def fingerprints(secret: bytes, pool: str, applicant: Applicant) -> Fingerprints:
    lookups = identity.identity_lookups(secret, pool, **_identity_fields(applicant))
    return Fingerprints(
        identity=lookups[0],
        email=email_print(secret, pool, applicant.email) if applicant.email else None,
        phone=identity.contact_fingerprint(secret, pool, "phone", applicant.phone) if applicant.phone else None,
        identity_lookups=lookups,
    )


def _identity_fields(applicant: Applicant) -> dict:
    return dict(
        agdref=applicant.agdref,
        family_name=applicant.family_name,
        given_names=applicant.given_names,
        birth_date=applicant.birth_date,
        nationality=applicant.nationality,
    )


def register(
    store,
    prefecture: str,
    procedure: str,
    applicant: Applicant,
    *,
    now: datetime.datetime,
    rng: random.Random,
    identity_secret: bytes,
    limits: Limits,
    records: AgdrefRecords,
    channel: Channel = Channel.ONLINE,
    agent: str | None = None,
) -> Registration:
    """Create a registration, or raise DuplicateRegistration / ContactCapReached.

    An AGDREF number must be known to the prefecture's records. Online
    registrations wait for their email to be confirmed; one made by an agent
    (who has seen the person) enters the pool at once. Its first message
    (welcome_message) is written with it, or not at all.
    """
    if applicant.agdref is not None and not records.is_known(prefecture, applicant.agdref):
        raise ValidationFailed({"agdref": UNKNOWN_AGDREF})
    key = RegistrationKey(prefecture, procedure, new_registration_id(rng))
    needs_email = channel is Channel.ONLINE
    registration = Registration(
        key=key,
        ref=new_reference(prefecture, procedure, rng),
        status=RegistrationStatus.PENDING_EMAIL if needs_email else RegistrationStatus.WAITING,
        channel=channel,
        agent=agent,
        created_at=now,
        confirm_by=now + limits.confirmation_window,
        applicant=applicant,
        email_confirmed_at=None if needs_email else now,
    )
    prints = fingerprints(identity_secret, key.pool, applicant)
    message = welcome_message(registration)
    for _ in range(5):  # a reference already taken in this pool: draw another
        outcome = store.create_registration(registration, prints, limits.contacts_per_pool, now, message)
        if outcome == "ok":
            return registration
        if outcome == "duplicate":
            raise DuplicateRegistration()
        if outcome == "contact_cap":
            raise ContactCapReached()
        registration = replace(registration, ref=new_reference(prefecture, procedure, rng))
    raise RuntimeError("could not find a free public reference")


def welcome_message(registration: Registration) -> RegistrationMessage | None:
    """The message a new registration sends: its confirmation link while the email is
    unconfirmed, else its status link, if the applicant gave an email (an agent's
    registration may have none)."""
    if registration.status is RegistrationStatus.PENDING_EMAIL:
        return RegistrationMessage.CONFIRM
    return RegistrationMessage.REGISTERED if registration.applicant.email else None


def message_due(registration: Registration, message: Mapping[str, str], secret: bytes) -> bool:
    """Whether an outbox message about `registration` is still to be sent when its turn comes.

    An email change's link is due only while the address it names (by its keyed
    hash) is still the pending one: a later request supersedes it, and a
    confirmed change needs no link. Every other message stays due.
    """
    if message["kind"] != RegistrationMessage.EMAIL_CHANGE.value:
        return True
    pending = registration.pending_email
    return bool(pending) and email_print(secret, registration.key.pool, pending) == message.get("address_print")


def load(store, key: RegistrationKey) -> Registration:
    registration = store.registration(key)
    if registration is None:
        raise RegistrationNotFound()
    return registration


def recover(store, email: str, *, identity_secret: bytes, now: datetime.datetime) -> int:
    """Send the links of the registrations using `email` to it again: the confirmation link of
    one not confirmed yet, the private status link of the others. Returns how many were sent;
    the person asking is never told (the answer is the same whether anything matched).

    Each message is written only if the registration still uses that address when
    it is written (store/scripts/resend_link.lua): a link never goes to an address
    the registration has left.
    """
    address = identity.clean_email(email)
    prints = {pool: email_print(identity_secret, pool, address) for pool in store.pools()}
    sent = 0
    for key, status in store.registrations_with_contact(prints):
        message = RegistrationMessage.CONFIRM if status is RegistrationStatus.PENDING_EMAIL else (
            RegistrationMessage.STATUS_LINK)
        sent += store.resend_link(key, prints[key.pool], message, now)
    return sent


def change_language(store, registration: Registration, language: str) -> None:
    """The applicant switched language on one of their pages: their pages and messages follow."""
    if language in LOCALES and language != registration.applicant.language:
        store.change_language(registration.key, language)


def status_link_token(secret: str, registration: Registration) -> str:
    """The token of the registration's current private status link."""
    return status_token(secret, registration.key, registration.link_version)


def load_from_link(store, key: RegistrationKey, link_version: int) -> Registration:
    """The registration a status link opens: only with its current link (the email
    change that replaced a link makes it useless), and never once purged."""
    registration = load(store, key)
    if link_version != registration.link_version:
        raise ReplacedLink()
    return registration


def email_print(secret: bytes, pool: str, email: str) -> str:
    """The keyed hash standing for an address in links and contact keys."""
    return identity.contact_fingerprint(secret, pool, "email", email)


def email_for_link(registration: Registration, link_print: str, secret: bytes) -> str:
    """The address (current, or pending change) a confirmation link was sent to.

    A link for an address the registration no longer has (changed since) is refused.
    """
    for email in (registration.applicant.email, registration.pending_email):
        if email and email_print(secret, registration.key.pool, email) == link_print:
            return email
    raise InvalidTransition()


def confirm_email(store, key: RegistrationKey, email: str, now: datetime.datetime) -> Registration:
    """The applicant opened the link sent to `email`: the registration enters the pool.

    Opening the link again changes nothing. A link for an address that is no
    longer the registration's (it was changed since) is refused. The status
    link is sent once, with the confirmation.
    """
    registration = load(store, key)
    if registration.applicant.email != email:
        raise InvalidTransition()
    if registration.status is RegistrationStatus.PENDING_EMAIL:
        store.confirm_email(key, now, RegistrationMessage.REGISTERED)
        registration = load(store, key)
    return registration


def withdraw(store, key: RegistrationKey, now: datetime.datetime) -> Registration:
    """The applicant leaves the pool; the person may register again later. They are
    told by email if they gave one."""
    registration = load(store, key)
    message = RegistrationMessage.WITHDRAWN if registration.applicant.email else None
    if not store.close_registration(key, RegistrationStatus.WITHDRAWN, WITHDRAWABLE, now, message):
        load(store, key)  # RegistrationNotFound if it is gone since
        raise InvalidTransition()
    return load(store, key)


def update_preferences(
    store,
    key: RegistrationKey,
    form: Mapping[str, object],
    site_ids: list[str],
    *,
    identity_secret: bytes,
    limits: Limits,
    now: datetime.datetime,
) -> Registration:
    """Change the phone number, sites and half-days (the email has its own confirmation)."""
    registration = load(store, key)
    if registration.status not in EDITABLE:
        raise InvalidTransition()
    errors: dict[str, str] = {}
    phone = None
    if _text(form, "phone"):
        try:
            phone = identity.clean_phone(_text(form, "phone"))
        except identity.InvalidField as error:
            errors[error.field] = error.message
    sites = _choices(form, "sites", site_ids, errors, identity.N_("Choose at least one place you can go to."))
    half_days = _choices(
        form, "half_days", list(HALF_DAYS), errors, identity.N_("Choose at least one half-day when you are free.")
    )
    if errors:
        raise ValidationFailed(errors)
    phone_print = identity.contact_fingerprint(identity_secret, key.pool, "phone", phone) if phone else None
    outcome = store.update_preferences(key, phone, phone_print, sites, half_days, limits.contacts_per_pool, now)
    if outcome == "contact_cap":
        raise ContactCapReached()
    if outcome == "state":
        raise InvalidTransition()
    return load(store, key)


def request_email_change(
    store, key: RegistrationKey, new_email: str, now: datetime.datetime, *, identity_secret: bytes
) -> tuple[Registration, str]:
    """Record the new address, unconfirmed, with the message that sends it a confirmation link.

    The message names the address by its keyed hash: a later request supersedes
    it (see message_due).
    """
    registration = load(store, key)
    if registration.status not in EDITABLE:
        raise InvalidTransition()
    try:
        email = identity.clean_email(new_email)
    except identity.InvalidField as error:
        raise ValidationFailed({error.field: error.message}) from None
    address_print = email_print(identity_secret, key.pool, email)
    if not store.request_email_change(key, email, address_print, EDITABLE, now, RegistrationMessage.EMAIL_CHANGE):
        load(store, key)  # RegistrationNotFound if it is gone since
        raise InvalidTransition()  # its status changed meanwhile
    return load(store, key), email


def confirm_email_change(
    store, key: RegistrationKey, email: str, *, identity_secret: bytes, limits: Limits, now: datetime.datetime
) -> Registration:
    registration = load(store, key)
    if registration.applicant.email == email:
        return registration  # already done: opening the link twice changes nothing
    if registration.pending_email != email or registration.status not in EDITABLE:
        raise InvalidTransition()
    new_print = email_print(identity_secret, key.pool, email)
    outcome = store.change_email(key, email, new_print, limits.contacts_per_pool, now,
                                 RegistrationMessage.EMAIL_CHANGED)
    if outcome == "contact_cap":
        raise ContactCapReached()
    if outcome == "state":
        raise InvalidTransition()
    return load(store, key)


def purge(store, now: datetime.datetime, closed_retention: datetime.timedelta) -> int:
    """Delete the personal data of unconfirmed registrations past their deadline,
    and of closed ones past the retention period. Returns how many were deleted."""
    deleted = 0
    for pool in store.pools():
        deleted += store.purge_unconfirmed(pool, now)
        deleted += store.purge_closed(pool, now - closed_retention)
        # The waits that ended as long ago are too old for any draw's cutoff, and name registrations.
        store.drop_ended_waits(pool, now - closed_retention)
    return deleted


@dataclass
class IdentityMigration:
    """What `migrate_identity_keys` did (`qs migrate-identity` prints it)."""

    moved: int = 0  # active registrations whose person key moved to today's fingerprint
    renamed: int = 0  # closed registrations (holding no key) now naming today's fingerprint
    current: int = 0  # already under today's fingerprint (AGDREF keys never change)
    # (pool, ref, holder's ref): active registrations that today's rules find to be
    # the same person as an earlier one; both keep their place and their key.
    same_person: list[tuple[str, str, str]] = field(default_factory=list)
    # (pool, ref): stored names that today's rules refuse; left as they are.
    unreadable: list[tuple[str, str]] = field(default_factory=list)


def migrate_identity_keys(store, secret: bytes) -> IdentityMigration:
    """Recompute every registration's person key with today's rules, the earliest first.

    Run once after an upgrade that changes the key (docs/operations.md): until
    then, a registration holds the key of the previous rules, which a disguise
    of that person (or the person again) under today's rules does not find.
    Running it again changes nothing. A later registration that today's rules
    take for an earlier one's person keeps its place (staff decide, with the
    references listed); the earlier one holds the key.
    """
    done = IdentityMigration()
    for pool in store.pools():
        rows = sorted(store.registration_identities(pool), key=lambda row: (row["created_at"], row["id"]))
        refs = {row["id"]: row["ref"] for row in rows}
        for row in rows:
            try:
                new_print = identity.identity_fingerprint(
                    secret, pool, agdref=row["agdref"] or None, family_name=row["family_name"],
                    given_names=row["given_names"], birth_date=datetime.date.fromisoformat(row["birth_date"]),
                    nationality=row["nationality"],
                )
            except (identity.InvalidField, ValueError):
                done.unreadable.append((pool, row["ref"]))
                continue
            outcome, _, holder = store.move_identity(pool, row["id"], row["identity_fp"], new_print).partition(" ")
            if outcome == "taken":
                done.same_person.append((pool, row["ref"], refs.get(holder, holder)))
            elif outcome in ("moved", "renamed", "current"):
                setattr(done, outcome, getattr(done, outcome) + 1)
            # "gone": purged meanwhile; "changed": moved by another run meanwhile.
    return done


def proof_statement(
    registration: Registration, history: list[dict], draws: list[dict], prefecture_name: str, now: datetime.datetime
) -> dict:
    """What a proof of registration states. No identity data: the reference ties
    it to the person, who shows it with their identity document."""
    key = registration.key
    return {
        "reference": registration.ref,
        "prefecture": {"code": key.prefecture, "name": prefecture_name},
        "procedure": key.procedure,
        "channel": registration.channel.value,
        "joined_at": registration.created_at.isoformat(),
        "email_confirmed_at": registration.email_confirmed_at.isoformat() if registration.email_confirmed_at else None,
        "status": registration.status.value,
        "draws": draws,
        "events": [{"at": event["at"], "kind": event["kind"]} for event in history],
        "issued_at": now.isoformat(),
    }
