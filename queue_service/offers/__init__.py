"""Offers and bookings: from a draw's winners to the person at the counter.

A draw's commit gives each winner an offer: one slot, to confirm before a
deadline. Then, each step one Lua script (store/scripts/move_offer.lua), applied once:

    pending    --confirm-->  confirmed (a booking, with its code)  --check-in-->  attended
               --decline-->  declined                                --no one came-->  no_show
               --deadline->  expired                                 --applicant cancels-->  cancelled
    pending or confirmed  --the prefecture cancels the slot-->  slot_cancelled

A declined, expired or cancelled offer frees its slot for *standby*: the slot
goes to the next entrant of the same draw's order who accepts its class,
still waits and had no offer from that draw; when that order is used up, the
slot opens for the next draw. A freed slot is never bookable first-come.

The booking code is short and easy to type (ten characters of Crockford's
alphabet), and signed: it is a keyed hash of the booking (the registration
and the slot), so it cannot be guessed or forged, and the agent who checks it
sees the name, birth date and AGDREF number it is bound to.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
from dataclasses import dataclass
from enum import Enum
from zoneinfo import ZoneInfo

from queue_service import draws
from queue_service.draws import lottery
from queue_service.draws.frozen import FrozenDraw
from queue_service.errors import (
    N_,
    CancellationTooLate,
    CheckInNeedsOverride,
    InvalidTransition,
    OfferDeadlinePassed,
    RegistrationNotFound,
    UnknownBooking,
    UnknownSlot,
)
from queue_service.inventory.slots import Slot, SlotStatus
from queue_service.pools import PoolId
from queue_service.registration import RegistrationStatus
from queue_service.registration.tokens import RegistrationKey

CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford: no I, L, O, U
# After a draw's deadline, its offers are checked for expiry this many at a time.
EXPIRY_BATCH = 1000
CODE_LENGTH = 10
# What people type instead: lower case, and letters mistaken for digits.
_CODE_LOOKALIKES = str.maketrans({"O": "0", "I": "1", "L": "1"})


class OfferStatus(str, Enum):
    """Where an offer stands (the diagram above); the offer scripts write these values."""

    PENDING = "pending"
    CONFIRMED = "confirmed"  # a booking
    DECLINED = "declined"
    EXPIRED = "expired"
    CANCELLED = "cancelled"  # by the applicant
    ATTENDED = "attended"
    NO_SHOW = "no_show"
    SLOT_CANCELLED = "slot_cancelled"  # by the prefecture


class OfferAction(str, Enum):
    """A transition of an offer, as Store.move_offer (store/scripts/move_offer.lua) applies it."""

    CONFIRM = "confirm"
    DECLINE = "decline"
    EXPIRE = "expire"
    CANCEL = "cancel"
    MARK_ATTENDED = "attended"
    MARK_NO_SHOW = "no_show"
    CANCEL_SLOT = "slot_cancelled"


class OfferOutcome(str, Enum):
    """What Store.move_offer answers: the transition was applied, or why not."""

    APPLIED = "ok"
    NO_REGISTRATION = "missing"
    NO_OFFER = "no_offer"
    WRONG_STATE = "state"  # not pending or not booked as the action needs, or another draw's offer
    TOO_LATE = "late"
    TOO_EARLY = "early"


class StandbyOutcome(str, Enum):
    """What Store.offer_standby answers."""

    OFFERED = "ok"
    SLOT_GONE = "slot"  # the slot no longer waits for standby
    PERSON_UNAVAILABLE = "person"  # no longer waiting, or already offered a slot by this draw


@dataclass(frozen=True)
class Offer:
    """A registration's latest offer, as the store keeps it (store/offers.py reads it)."""

    registration_id: str
    draw_id: str  # the draw whose order gave it
    ref: str  # the registration's public reference
    slot_id: str
    status: OfferStatus
    deadline: datetime.datetime  # to answer a pending offer (aware)
    offered_at: datetime.datetime
    booking_code: str | None = None  # once confirmed
    standby: bool = False  # given after the draw, to the next entrant of its order
    changed_at: datetime.datetime | None = None  # its last transition


@dataclass(frozen=True)
class OfferTiming:
    """The service-wide times around an appointment (settings, config/defaults.toml).

    The draws take it too (draws.offer_deadline): a draw's offer is answered
    no later than `cancel_notice` before its slot, and a slot that leaves
    less than `draw_min_answer` to answer is not offered by the draw.
    """

    cancel_notice: datetime.timedelta
    no_show_grace: datetime.timedelta
    standby_min_notice: datetime.timedelta
    reminder_hours: tuple[int, ...]
    draw_min_answer: datetime.timedelta

    @classmethod
    def from_settings(cls, settings) -> OfferTiming:
        return cls(
            cancel_notice=datetime.timedelta(hours=settings.booking_cancel_notice_hours),
            no_show_grace=datetime.timedelta(minutes=settings.no_show_grace_minutes),
            standby_min_notice=datetime.timedelta(hours=settings.standby_min_notice_hours),
            reminder_hours=settings.reminder_lead_hours,
            draw_min_answer=datetime.timedelta(hours=settings.draw_min_answer_hours),
        )


# Booking codes ---------------------------------------------------------------


def booking_code(secret: bytes, key: RegistrationKey, slot_id: str) -> str:
    """The booking's code: a keyed hash of the pool, the registration and the slot."""
    message = f"booking|{key.pool}|{key.registration_id}|{slot_id}".encode()
    number = int.from_bytes(hmac.digest(secret, message, hashlib.sha256)[:8], "big") >> (64 - 5 * CODE_LENGTH)
    return "".join(CODE_ALPHABET[(number >> (5 * (CODE_LENGTH - 1 - i))) & 31] for i in range(CODE_LENGTH))


def display_code(code: str) -> str:
    """The code as printed: two groups of five, easier to read aloud."""
    return f"{code[:5]}-{code[5:]}"


def normalise_code(text: str) -> str:
    """What an agent typed or scanned, as a code: spaces and dashes dropped, lookalikes read as digits."""
    return "".join(ch for ch in str(text).upper() if ch.isalnum()).translate(_CODE_LOOKALIKES)[:40]


def find_booking(store, prefecture: str, text: str, secret: bytes) -> tuple[RegistrationKey, Offer]:
    """The registration and offer a code names, in one of the prefecture's pools; UnknownBooking otherwise."""
    code = normalise_code(text)
    if len(code) != CODE_LENGTH or any(ch not in CODE_ALPHABET for ch in code):
        raise UnknownBooking()
    for procedure in store.procedures():
        pool = PoolId.of(prefecture, procedure.code)
        holder = store.booking_holder(pool, code)
        if holder is None:
            continue
        key = RegistrationKey(prefecture, procedure.code, holder)
        offer = store.offer(key)
        if offer and offer.booking_code == code and hmac.compare_digest(booking_code(secret, key, offer.slot_id), code):
            return key, offer
    raise UnknownBooking()


# Applicant actions -------------------------------------------------------------


def _current_offer(store, key: RegistrationKey) -> Offer:
    offer = store.offer(key)
    if offer is None:
        raise InvalidTransition(N_("You have no offer of an appointment."))
    return offer


def _raise_for(outcome: OfferOutcome) -> None:
    if outcome is OfferOutcome.APPLIED:
        return
    if outcome is OfferOutcome.NO_REGISTRATION:
        raise RegistrationNotFound()
    if outcome is OfferOutcome.TOO_LATE:
        raise OfferDeadlinePassed()
    raise InvalidTransition(N_("This offer has already been answered, or is no longer valid."))


def confirm(store, key: RegistrationKey, secret: bytes, now: datetime.datetime) -> Offer:
    """Confirm the pending offer before its deadline: it becomes a booking with its code."""
    offer = _current_offer(store, key)
    slot = store.slot(key.pool, offer.slot_id)
    if slot is None:
        raise InvalidTransition(N_("This offer has already been answered, or is no longer valid."))
    code = booking_code(secret, key, slot.id)
    wait_days, expires_first = booking_figures(store.registration(key), slot)
    _raise_for(store.move_offer(key, OfferAction.CONFIRM, now, code, slot.starts_at.timestamp(), wait_days=wait_days,
                                expires_first=expires_first))
    return store.offer(key)


def booking_figures(registration, slot: Slot) -> tuple[int, bool]:
    """Whole days from registering to the appointment, and whether a renewal's permit expires before it."""
    if registration is None:
        return 0, False
    days = max((slot.starts_at - registration.created_at).days, 0)
    expiry = registration.applicant.permit_expiry
    return days, expiry is not None and expiry < slot.starts_at.date()


def decline(store, key: RegistrationKey, schedule, now: datetime.datetime) -> Offer:
    """Decline the pending offer; the applicant stays in the pool with their weight unless the policy says not."""
    _current_offer(store, key)
    returns = schedule is None or schedule.policy.declined_returns_to_pool
    _raise_for(store.move_offer(key, OfferAction.DECLINE, now, "1" if returns else "0"))
    return store.offer(key)


# What to bring to an appointment, per procedure: the offer page and the booking email list
# the same, each in the reader's language.
_IDENTITY = N_("Your passport or identity document: the name must match this registration (the appointment is "
               "personal and cannot be given to someone else).")
_PERMIT = N_("Your current residence permit or receipt (récépissé).")
_TAX_STAMP = N_("The tax stamp (timbre fiscal) for the permit, if the prefecture asked for one.")
_ADDRESS_AND_PHOTOS = N_("Proof of address less than three months old, and three recent identity photos.")
_ENROLMENT = N_("Your certificate of enrolment for this academic year.")
DOCUMENTS_TO_BRING: dict[str, tuple[str, ...]] = {
    "first_request": (_IDENTITY, _ADDRESS_AND_PHOTOS),
    "renewal": (_IDENTITY, _PERMIT, _ADDRESS_AND_PHOTOS),
    "permit_pickup": (_IDENTITY, _PERMIT, _TAX_STAMP),
    "student": (_IDENTITY, _ADDRESS_AND_PHOTOS, _ENROLMENT),
}


def documents_to_bring(procedure: str) -> tuple[str, ...]:
    """The documents to bring to an appointment of `procedure` (msgids, to translate)."""
    return DOCUMENTS_TO_BRING.get(procedure, (_IDENTITY,))


def cancellation_deadline(slot: Slot, timing: OfferTiming) -> datetime.datetime:
    return slot.starts_at - timing.cancel_notice


@dataclass(frozen=True)
class OfferDisplay:
    """An offer as people are shown it, on the offer pages, at the counter and in messages.

    Times are on the wall clock of the prefecture (an appointment in Réunion
    reads in Réunion's time, wherever the reader is).
    """

    starts_at: datetime.datetime
    ends_at: datetime.datetime
    deadline: datetime.datetime | None  # to answer the offer; None without an offer
    cancel_by: datetime.datetime  # the last moment the applicant can cancel the booking
    can_cancel: bool  # a booking, not yet past cancel_by
    code: str | None  # the booking code as printed, if the offer is a booking of this slot


def display(offer: Offer | None, slot: Slot, timing: OfferTiming, timezone: str, now: datetime.datetime) -> OfferDisplay:
    """What is shown of `offer` (the registration's latest, or None) about `slot`, seen at `now`.

    A message may be about an earlier offer's slot: its code is shown only if
    the offer is still about that slot.
    """
    zone = ZoneInfo(timezone)
    cancel_by = cancellation_deadline(slot, timing)
    deadline = offer.deadline.astimezone(zone) if offer else None
    code = offer.booking_code if offer and offer.slot_id == slot.id else None
    return OfferDisplay(
        starts_at=slot.starts_at.astimezone(zone),
        ends_at=slot.ends_at.astimezone(zone),
        deadline=deadline,
        cancel_by=cancel_by.astimezone(zone),
        can_cancel=offer is not None and offer.status is OfferStatus.CONFIRMED and now <= cancel_by,
        code=display_code(code) if code else None,
    )


def cancel_booking(store, key: RegistrationKey, timing: OfferTiming, now: datetime.datetime) -> Offer:
    """Cancel a booking until `cancel_notice` before it; the slot goes to standby."""
    offer = _current_offer(store, key)
    slot = store.slot(key.pool, offer.slot_id)
    if slot is None:
        raise InvalidTransition(N_("This offer has already been answered, or is no longer valid."))
    outcome = store.move_offer(key, OfferAction.CANCEL, now, cancellation_deadline(slot, timing).timestamp())
    if outcome is OfferOutcome.TOO_LATE:
        raise CancellationTooLate()
    _raise_for(outcome)
    return store.offer(key)


NOT_WAITING_FOR_CHECK_IN = N_("This appointment is not waiting for check-in (already checked in, cancelled or "
                              "marked as a no-show).")


class CounterWarning(str, Enum):
    """What does not match when a booking is checked in at a counter."""

    NOT_TODAY = "not_today"  # the appointment is another day (in the prefecture's time zone)
    OTHER_SITE = "other_site"  # the appointment is at another site than the agent's


def counter_warnings(slot: Slot, site: str | None, today: datetime.date, timezone: str = "Europe/Paris"
                     ) -> list[CounterWarning]:
    """What an agent must be told before checking in the booking of `slot` at `site` on `today`
    (the prefecture's calendar day); `site` None when the agent did not say where they are."""
    warnings = []
    if slot.starts_at.astimezone(ZoneInfo(timezone)).date() != today:
        warnings.append(CounterWarning.NOT_TODAY)
    if site is not None and site != slot.site:
        warnings.append(CounterWarning.OTHER_SITE)
    return warnings


def booking_warnings(store, key: RegistrationKey, site: str | None, now: datetime.datetime,
                     timezone: str = "Europe/Paris") -> list[CounterWarning]:
    """counter_warnings for the registration's booking at `site`, `now` (the day read on the
    prefecture's clock, `timezone`); none unless a booking waits for check-in."""
    offer = store.offer(key)
    if offer is None or offer.status is not OfferStatus.CONFIRMED:
        return []
    slot = store.slot(key.pool, offer.slot_id)
    if slot is None:
        return []
    return counter_warnings(slot, site, now.astimezone(ZoneInfo(timezone)).date(), timezone)


def check_in(store, key: RegistrationKey, now: datetime.datetime, *, agent: str = "", timezone: str = "Europe/Paris",
             site: str | None = None, override: bool = False) -> None:
    """The agent saw the person and their identity document: the booking is attended.

    A booking for another day or another site is refused unless the agent
    overrides the warning; the override is recorded with the agent, in the
    registration's history, in the same step.
    """
    warnings = booking_warnings(store, key, site, now, timezone)
    if warnings and not override:
        raise CheckInNeedsOverride(warnings)
    outcome = store.move_offer(key, OfferAction.MARK_ATTENDED, now, agent, ",".join(w.value for w in warnings))
    if outcome is OfferOutcome.WRONG_STATE:
        raise InvalidTransition(NOT_WAITING_FOR_CHECK_IN)
    _raise_for(outcome)


def mark_no_show(store, key: RegistrationKey, now: datetime.datetime, *, agent: str) -> None:
    """The agent at the counter records that the person did not come, once the appointment's
    time has come (the job marks the others after the slot's end and the grace,
    mark_no_shows): the same transition, event and count, recorded with the agent."""
    offer = store.offer(key)
    slot = store.slot(key.pool, offer.slot_id) if offer is not None else None
    if offer is None or slot is None or offer.status is not OfferStatus.CONFIRMED:
        raise InvalidTransition(NOT_WAITING_FOR_CHECK_IN)
    outcome = store.move_offer(key, OfferAction.MARK_NO_SHOW, now, slot.starts_at.timestamp(), agent)
    if outcome is OfferOutcome.TOO_EARLY:
        raise InvalidTransition(N_("This appointment has not started yet: it can be marked as a no-show once "
                                   "its time has come."))
    if outcome is OfferOutcome.WRONG_STATE:
        raise InvalidTransition(NOT_WAITING_FOR_CHECK_IN)
    _raise_for(outcome)


# Jobs' work ----------------------------------------------------------------------


def expire_offers(store, pool: str, schedule, now: datetime.datetime) -> int:
    """Expire the pending offers whose deadline passed; returns how many."""
    returns = "1" if schedule is None or schedule.policy.expired_returns_to_pool else "0"
    prefecture, procedure = PoolId(pool).parts

    def expire(registration_id: str) -> bool:
        key = RegistrationKey(prefecture, procedure, registration_id)
        return store.move_offer(key, OfferAction.EXPIRE, now, returns) is OfferOutcome.APPLIED

    expired = sum(map(expire, store.expired_offers(pool, now)))
    # A draw's offers share one deadline: once it passes, those still pending expire, then the draw is done.
    for draw_id in store.draws_past_deadline(pool, now):
        offered = [registration_id for registration_id, _ in draws.applied_offers(store, pool, draw_id)]
        for first in range(0, len(offered), EXPIRY_BATCH):
            expired += sum(map(expire, store.pending_offers_of(pool, draw_id, offered[first:first + EXPIRY_BATCH])))
        store.draw_deadline_passed(pool, draw_id)
    return expired


def mark_no_shows(store, pool: str, timing: OfferTiming, now: datetime.datetime) -> int:
    """Mark the bookings not checked in by their slot's end plus the grace period; returns how many."""
    prefecture, procedure = PoolId(pool).parts
    marked = 0
    for registration_id, _ in store.bookings_starting(pool, datetime.datetime.min.replace(tzinfo=datetime.timezone.utc),
                                                      now - timing.no_show_grace):
        key = RegistrationKey(prefecture, procedure, registration_id)
        offer = store.offer(key)
        slot = store.slot(pool, offer.slot_id) if offer else None
        if slot is None:
            continue
        earliest = (slot.ends_at + timing.no_show_grace).timestamp()
        marked += store.move_offer(key, OfferAction.MARK_NO_SHOW, now, earliest) is OfferOutcome.APPLIED
    return marked


def queue_reminders(store, pool: str, timing: OfferTiming, now: datetime.datetime) -> int:
    """Queue the reminders now due (one message per booking and lead time); returns how many were queued."""
    if not timing.reminder_hours:
        return 0
    horizon = now + datetime.timedelta(hours=max(timing.reminder_hours))
    queued = 0
    # The script reads the booking itself: one call per booking in the window, no read before it.
    for registration_id, start in store.bookings_starting(pool, now, horizon):
        left = start - now.timestamp()
        due = [hours for hours in timing.reminder_hours if left <= hours * 3600]
        queued += store.queue_reminder(pool, registration_id, due, now)
    return queued


def cancel_slot(store, pool: str, slot_id: str, now: datetime.datetime) -> SlotStatus:
    """The prefecture withdraws a slot: an open one is simply cancelled; an offered or booked
    one's holder is told and goes back to the pool with their weight. Returns the slot's former state."""
    slot = store.slot(pool, slot_id)
    if slot is None:
        raise UnknownSlot()
    if slot.status in (SlotStatus.OPEN, SlotStatus.STANDBY):
        if store.cancel_slot(pool, slot_id):
            return slot.status
    holder = store.slot_holder(pool, slot_id)
    if holder is not None:
        key = RegistrationKey(*PoolId(pool).parts, holder)
        if store.move_offer(key, OfferAction.CANCEL_SLOT, now, slot_id) is OfferOutcome.APPLIED:
            return slot.status
    raise InvalidTransition(N_("This slot is already cancelled or its appointment is over."))


def fill_standby(store, pool: str, schedule, timing: OfferTiming, now: datetime.datetime) -> int:
    """Offer each freed slot to the next entrant of its draw's order; returns how many offers were made.

    A slot that starts too soon for anyone to come, or for which the order
    has no one left, opens for the next draw.
    """
    offered = 0
    orders: dict[str, _StandbyOrder] = {}
    for slot_id, draw_id in sorted(store.standby_slots(pool).items()):
        slot = store.slot(pool, slot_id)
        if slot is None or slot.starts_at - now < timing.standby_min_notice or schedule is None:
            store.release_standby_slot(pool, slot_id, draw_id, now)
            continue
        if draw_id not in orders:
            orders[draw_id] = _StandbyOrder.load(store, pool, draw_id)
        deadline = min(now + datetime.timedelta(hours=schedule.confirmation_hours), slot.starts_at - timing.cancel_notice)
        if deadline <= now:
            deadline = slot.starts_at - timing.standby_min_notice / 2
        if orders[draw_id].offer(store, slot, draw_id, schedule.timezone, deadline, now):
            offered += 1
        else:
            store.release_standby_slot(pool, slot_id, draw_id, now)
    return offered


class _StandbyOrder:
    """A committed draw's order, walked lazily, for standby offers (the same order its record lets anyone check)."""

    def __init__(self, pool: str, frozen: FrozenDraw | None = None, table=None) -> None:
        self.pool = pool
        self.frozen = frozen
        self.walked: list[int] = []  # entrants (positions among the frozen ones) in draw order, as far as walked
        self.rest = iter(lottery.DrawOrder(table)) if table is not None else iter(())

    @classmethod
    def load(cls, store, pool: str, draw_id: str) -> _StandbyOrder:
        record = store.draw(pool, draw_id)
        fields = store.draw_frozen(pool, draw_id)
        if record is None or fields is None:
            return cls(pool)
        frozen = FrozenDraw.from_fields(fields)
        seed = lottery.effective_seed(bytes.fromhex(record.seed))
        return cls(pool, frozen, lottery.compute_keys(seed, draw_id, frozen.entrants))

    def _in_order(self, batch: int):
        """Batches of entrants in draw order, first those already walked, then further on."""
        position = 0
        while True:
            while len(self.walked) < position + batch:
                index = next(self.rest, None)
                if index is None:
                    break
                self.walked.append(index)
            chunk = self.walked[position:position + batch]
            if not chunk:
                return
            yield chunk
            position += len(chunk)

    def offer(self, store, slot: Slot, draw_id: str, timezone: str, deadline, now) -> bool:
        """Offer the slot to the first entrant in order who can take it; False when none is left."""
        if self.frozen is None:  # the draw's inputs are gone: nobody to offer it to
            return False
        slot_class = slot.slot_class(timezone)
        prefecture, procedure = PoolId(self.pool).parts
        entrants = self.frozen.entrants
        for chunk in self._in_order(256):
            candidates = [i for i in chunk if entrants.accepts(i) is None or slot_class in entrants.accepts(i)]
            if not candidates:
                continue
            refs = [entrants.refs[i] for i in candidates]
            already = store.offered_refs(self.pool, draw_id, refs)
            ids = [self.frozen.registrations[i] for i in candidates]
            statuses = store.registration_statuses(self.pool, ids)
            for ref, registration_id, was_offered, status in zip(refs, ids, already, statuses):
                if was_offered or status != RegistrationStatus.WAITING:
                    continue
                key = RegistrationKey(prefecture, procedure, registration_id)
                outcome = store.offer_standby(key, ref, slot.id, draw_id, deadline, now)
                if outcome is StandbyOutcome.OFFERED:
                    return True
                if outcome is StandbyOutcome.SLOT_GONE:
                    return False
        return False


# The calendar file -----------------------------------------------------------------


def calendar_file(*, uid: str, starts_at: datetime.datetime, ends_at: datetime.datetime, summary: str,
                  location: str, description: str, stamp: datetime.datetime) -> str:
    """One appointment as an iCalendar file (RFC 5545), times in UTC, lines folded at 75 octets."""

    def text(value: str) -> str:
        return (value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
                .replace("\r\n", "\\n").replace("\n", "\\n"))

    def utc(moment: datetime.datetime) -> str:
        return moment.astimezone(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")

    lines = [
        "BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//queue-service//appointments//EN", "METHOD:PUBLISH",
        "BEGIN:VEVENT", f"UID:{text(uid)}", f"DTSTAMP:{utc(stamp)}", f"DTSTART:{utc(starts_at)}",
        f"DTEND:{utc(ends_at)}", f"SUMMARY:{text(summary)}", f"LOCATION:{text(location)}",
        f"DESCRIPTION:{text(description)}",
        "BEGIN:VALARM", "ACTION:DISPLAY", "TRIGGER:-PT24H", f"DESCRIPTION:{text(summary)}", "END:VALARM",
        "END:VEVENT", "END:VCALENDAR",
    ]
    return "".join(_fold(line) + "\r\n" for line in lines)


def _fold(line: str) -> str:
    """Split a content line into chunks of at most 75 octets, continued with a space (RFC 5545, 3.1)."""
    parts, current = [], b""
    for char in line:
        encoded = char.encode()
        if len(current) + len(encoded) > (75 if not parts else 74):
            parts.append(current.decode())
            current = b""
        current += encoded
    parts.append(current.decode())
    return "\r\n ".join(parts)
