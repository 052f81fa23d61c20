"""What became of a draw's offers: who was offered which slot, and their answer."""

from __future__ import annotations

from collections import Counter

from flask import jsonify

from queue_service.errors import UnknownDraw
from queue_service.offers import OfferStatus
from queue_service.staff.accounts import Scope
from web import services
from web.api import draw_pool
from web.staff_api import answer, route

OUTCOMES_EXAMPLE = {
    "draw_id": "01-renewal-20270111T1000",
    "counts": {"pending": 3, "confirmed": 12, "declined": 2, "expired": 1, "cancelled": 0, "attended": 0,
               "no_show": 0, "slot_cancelled": 0},
    "items": [{"ref": "01R-7KQ2M9XH4P", "status": "confirmed", "standby": False,
               "slot": {"id": "bourg-renewal-000123", "site": "bourg", "starts_at": "2027-01-18T08:20:00+00:00"},
               "offered_at": "2027-01-11T09:00:04+00:00", "deadline": "2027-01-13T09:00:04+00:00",
               "changed_at": "2027-01-11T17:42:10+00:00"}],
}


@route("/prefectures/<code>/draws/<draw_id>/offers", "GET", Scope.READ,
       summary="The outcomes of a draw's offers",
       description="One item per offer the draw made (and per standby offer given after it from its order) "
                   "still on record: the registration's public reference, the slot, the state (pending, "
                   "confirmed, declined, expired, cancelled, attended, no_show, slot_cancelled) and its times; `counts` by "
                   "state. No personal data: look a booking up at the counter for that. A registration that "
                   "declined and later won another draw shows under its latest draw.",
       responses={"200": answer("The offers", example=OUTCOMES_EXAMPLE)})
def draw_offers(principal, code: str, draw_id: str):
    pool = draw_pool(draw_id)
    store = services().store
    if not pool.startswith(f"{code}:") or store.draw(pool, draw_id) is None:
        raise UnknownDraw()
    made = sorted((offer for offer in store.offers(pool).values() if offer.draw_id == draw_id),
                  key=lambda offer: (offer.offered_at, offer.ref))
    slots = {slot.id: slot for slot in store.slots_by_id(pool, [offer.slot_id for offer in made])}
    counts = Counter({status.value: 0 for status in OfferStatus})
    counts.update(offer.status.value for offer in made)
    return jsonify(
        draw_id=draw_id,
        counts=dict(counts),
        items=[
            {
                "ref": offer.ref,
                "status": offer.status.value,
                "standby": offer.standby,
                "slot": {"id": offer.slot_id, "site": slots[offer.slot_id].site if offer.slot_id in slots else None,
                         "starts_at": slots[offer.slot_id].starts_at.isoformat() if offer.slot_id in slots else None},
                "offered_at": offer.offered_at.isoformat(),
                "deadline": offer.deadline.isoformat(),
                "changed_at": offer.changed_at.isoformat() if offer.changed_at else None,
            }
            for offer in made
        ],
    )
