"""Offers and bookings in Redis: each transition, standby, deadlines, reminders.

Every change of an offer is one script (move_offer, offer_standby,
release_standby_slot, queue_reminder) that moves the offer, its registration,
its slot, the outbox and the counters together. move_offer takes 23 KEYS: they
are built by `move_offer_keys` only, in the script's order.

An offer is one JSON object in the pool's offers hash, by registration id,
written by the scripts and read here as an `Offer` (`offer_from_json`).
"""

from __future__ import annotations

import datetime
import json

import redis

from queue_service.offers import (
    Offer,
    OfferAction,
    OfferOutcome,
    OfferStatus,
    StandbyOutcome,
)
from queue_service.store.fields import both_names, first_found
from queue_service.store.keys import PoolKeys
from queue_service.store.lua import Scripts
from queue_service.store.times import moment_from_text, utc_text


class OfferStore:
    """Offers, bookings and standby (one part of Store).

    Reads a registration's fingerprints (RegistrationStore) and counts through
    `stats_keys` (StatisticsStore).
    """

    redis: redis.Redis  # both set by Store.__init__ (store/__init__.py)
    scripts: Scripts

    # Offers -------------------------------------------------------------------

    def offers(self, pool: str) -> dict[str, Offer]:
        """Pending and past offers of the pool, by registration id."""
        found = self.redis.hgetall(PoolKeys(pool).offers)
        return {key.decode(): offer_from_json(key.decode(), value) for key, value in found.items()}

    def offer(self, key) -> Offer | None:
        """The registration's latest offer, or None."""
        raw = self.redis.hget(PoolKeys(key.pool).offers, key.registration_id)
        return offer_from_json(key.registration_id, raw) if raw else None

    def move_offer(self, key, action: OfferAction, now: datetime.datetime, *extra, wait_days: int = 0,
                   expires_first: bool = False) -> OfferOutcome:
        """Apply one offer transition (scripts/move_offer.lua); returns APPLIED or why not.

        `wait_days` and `expires_first` are counted when the offer is confirmed (the waits
        histogram, renewals whose permit expires before the appointment).
        """
        prints = self._fingerprints(key)
        offer = self.offer(key)
        if prints is None:
            return OfferOutcome.NO_REGISTRATION
        if offer is None:
            return OfferOutcome.NO_OFFER
        draw_id = offer.draw_id
        keys = move_offer_keys(key, prints, draw_id, self.stats_keys(key.pool, now, draw_id=draw_id))
        arguments = [action.value, key.registration_id, utc_text(now), now.timestamp(), self._waiting_since(key),
                     draw_id, wait_days, "1" if expires_first else "0", *extra]
        return OfferOutcome(self.scripts.move_offer(keys=keys, args=arguments).decode())

    def _waiting_since(self, key) -> str:
        """When the registration's current wait began (epoch), "" if unknown."""
        names = ["waiting_since", "email_confirmed_at"]
        since, confirmed = first_found(
            self.redis.hmget(PoolKeys(key.pool).registration(key.registration_id), both_names(names)), len(names)
        )
        if since:
            return since.decode()
        return str(moment_from_text(confirmed.decode()).timestamp()) if confirmed else ""

    def pending_offers_of(self, pool: str, draw_id: str, registration_ids: list[str]) -> list[str]:
        """Those of the registrations whose offer is still the draw's, and pending."""
        if not registration_ids:
            return []
        raw = self.redis.hmget(PoolKeys(pool).offers, registration_ids)
        offers = [offer_from_json(registration_id, text)
                  for registration_id, text in zip(registration_ids, raw) if text]
        return [offer.registration_id for offer in offers
                if offer.draw_id == draw_id and offer.status is OfferStatus.PENDING]

    # Deadlines ----------------------------------------------------------------

    def expired_offers(self, pool: str, now: datetime.datetime) -> list[str]:
        """Registration ids whose pending offer's own deadline has passed: standby offers, a draw's
        offers whose slot starts too soon for the shared deadline, and offers committed before
        draws kept one deadline for all their offers."""
        found = self.redis.zrangebyscore(PoolKeys(pool).offer_deadlines, "-inf", f"({now.timestamp()}")
        return [registration_id.decode() for registration_id in found]

    def draws_past_deadline(self, pool: str, now: datetime.datetime) -> list[str]:
        """Draws whose offers' deadline has passed and whose late offers are not all expired yet."""
        found = self.redis.zrangebyscore(PoolKeys(pool).draw_deadlines, "-inf", f"({now.timestamp()}")
        return [draw_id.decode() for draw_id in found]

    def draw_deadline_passed(self, pool: str, draw_id: str) -> None:
        """Every offer of the draw still pending after its deadline has been expired."""
        self.redis.zrem(PoolKeys(pool).draw_deadlines, draw_id)

    # Standby ------------------------------------------------------------------

    def standby_slots(self, pool: str) -> dict[str, str]:
        """Freed slots awaiting a standby offer: slot id -> the draw whose order they follow."""
        raw = self.redis.hgetall(PoolKeys(pool).standby)
        return {slot.decode(): draw_id.decode() for slot, draw_id in raw.items()}

    def offered_refs(self, pool: str, draw_id: str, refs: list[str]) -> list[bool]:
        """For each reference, whether the draw already offered it a slot."""
        if not refs:
            return []
        return [bool(found) for found in self.redis.smismember(PoolKeys(pool).draw_offered(draw_id), refs)]

    def offer_standby(self, key, ref: str, slot_id: str, draw_id: str, deadline: datetime.datetime,
                      now: datetime.datetime) -> StandbyOutcome:
        """Offer a freed slot to this entrant of the draw's order (see the script)."""
        pool_keys = PoolKeys(key.pool)
        keys = [
            pool_keys.registration(key.registration_id),
            pool_keys.history(key.registration_id),
            pool_keys.offers,
            pool_keys.offer_deadlines,
            pool_keys.slot_states,
            pool_keys.slot_holders,
            pool_keys.outbox,
            pool_keys.waiting,
            pool_keys.standby,
            pool_keys.draw_offered(draw_id),
            *self.stats_keys(key.pool, now, draw_id=draw_id),
            pool_keys.waits_ended,
        ]
        arguments = [key.registration_id, ref, slot_id, draw_id, utc_text(now), utc_text(deadline),
                     deadline.timestamp(), now.timestamp()]
        return StandbyOutcome(self.scripts.offer_standby(keys=keys, args=arguments).decode())

    def release_standby_slot(self, pool: str, slot_id: str, draw_id: str, now: datetime.datetime) -> bool:
        """No one left in the draw's order for this slot: it is open for the next draw."""
        pool_keys = PoolKeys(pool)
        keys = [pool_keys.slot_states, pool_keys.standby, *self.stats_keys(pool, now, draw_id=draw_id)]
        return bool(self.scripts.release_standby_slot(keys=keys, args=[slot_id, draw_id]))

    # Bookings and reminders ---------------------------------------------------

    def bookings_starting(self, pool: str, start: datetime.datetime, end: datetime.datetime) -> list[tuple[str, float]]:
        """Bookings not yet attended or marked, whose slot starts in [start, end]: (registration id, start epoch)."""
        found = self.redis.zrangebyscore(PoolKeys(pool).bookings, start.timestamp(), end.timestamp(),
                                         withscores=True)
        return [(registration_id.decode(), score) for registration_id, score in found]

    def booking_holder(self, pool: str, code: str) -> str | None:
        holder = self.redis.hget(PoolKeys(pool).booking_codes, code)
        return holder.decode() if holder else None

    def queue_reminder(self, pool: str, registration_id: str, hours: list[int], now: datetime.datetime) -> bool:
        """Queue one reminder of the registration's booking for the lead times in `hours` not yet
        reminded; True if queued (False too when it holds no booking any more)."""
        pool_keys = PoolKeys(pool)
        keys = [pool_keys.offers, pool_keys.reminders, pool_keys.outbox]
        arguments = [registration_id, now.timestamp(), *sorted(hours, reverse=True)]
        return bool(self.scripts.queue_reminder(keys=keys, args=arguments))


def offer_from_json(registration_id: str, raw: bytes | str) -> Offer:
    """An offer as the scripts write it (commit_draw, offer_standby, move_offer), read;
    fields it does not know (written by another version) are ignored."""
    fields = json.loads(raw)
    changed_at = fields.get("changed_at")
    return Offer(
        registration_id=registration_id,
        draw_id=fields["draw_id"],
        ref=fields["ref"],
        slot_id=fields["slot"],
        status=OfferStatus(fields["status"]),
        deadline=datetime.datetime.fromisoformat(fields["deadline"]),
        offered_at=datetime.datetime.fromisoformat(fields["offered_at"]),
        booking_code=fields.get("code"),
        standby=bool(fields.get("standby", False)),
        changed_at=datetime.datetime.fromisoformat(changed_at) if changed_at else None,
    )


def offer_to_json(offer: Offer) -> str:
    """The JSON object the scripts write for `offer` (the inverse of `offer_from_json`); fields
    the scripts leave out until they apply (code, standby, changed_at) are left out when empty."""
    fields = {
        "draw_id": offer.draw_id,
        "ref": offer.ref,
        "slot": offer.slot_id,
        "deadline": utc_text(offer.deadline),
        "offered_at": utc_text(offer.offered_at),
        "status": offer.status.value,
    }
    if offer.booking_code is not None:
        fields["code"] = offer.booking_code
    if offer.standby:
        fields["standby"] = True
    if offer.changed_at is not None:
        fields["changed_at"] = utc_text(offer.changed_at)
    return json.dumps(fields)


def move_offer_keys(key, prints: dict[str, str], draw_id: str, stats_keys: list[str]) -> list[str]:
    """KEYS of scripts/move_offer.lua for the offer of registration `key` made by draw `draw_id`, in the
    script's order (the numbers below are its KEYS[i]).

    `prints` are the registration's fingerprints as stored (`Store._fingerprints`): a
    closing offer releases the person and contacts. `stats_keys` are the counters an
    event goes to now, the draw's included (`Store.stats_keys(pool, now, draw_id)`).
    """
    pool_keys, registration_id = PoolKeys(key.pool), key.registration_id
    return [
        pool_keys.registration(registration_id),  # 1
        pool_keys.history(registration_id),  # 2
        pool_keys.offers,  # 3
        pool_keys.offer_deadlines,  # 4: an offer's own deadline (standby, or its slot starts soon)
        pool_keys.slot_states,  # 5
        pool_keys.slot_holders,  # 6
        pool_keys.bookings,  # 7
        pool_keys.booking_codes,  # 8
        pool_keys.outbox,  # 9
        pool_keys.waiting,  # 10: back to the pool
        pool_keys.committed_draws,  # 11: the draws lost before the one won, settled on going back
        pool_keys.identity(prints["identity_fp"]),  # 12: released on closing (as before 2026-11-29)
        pool_keys.contact(prints["email_fp"]),  # 13: released on closing (as before 2026-11-29)
        pool_keys.contact(prints["phone_fp"]),  # 14: released on closing (as before 2026-11-29)
        pool_keys.closed,  # 15
        pool_keys.standby,  # 16: a freed slot awaits the draw's next entrant
        *stats_keys,  # 17, 18, 19: totals, day, the draw's
        pool_keys.stats_waits,  # 20: the waits histogram
        pool_keys.draw_offered(draw_id),  # 21: references the draw's standby skips
        pool_keys.draw(draw_id),  # 22: the draw's record (its offers_deadline)
        pool_keys.waits_ended,  # 23: the wait the offer ended, recorded on going back to the pool
        pool_keys.people,  # 24: released on closing
        pool_keys.contacts,  # 25: released on closing
    ]
