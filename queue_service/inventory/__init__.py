"""The prefecture's appointment inventory: its sites, its slots, and publishing them.

A counter holds one appointment at a time, whatever the procedure: new slots
are checked against each other and against every published slot of the
prefecture, and refused all together if any overlaps. Cancelling a slot is an
offers matter (queue_service.offers.cancel_slot): its holder is told and goes
back to the waiting list.
"""

from __future__ import annotations

import datetime

from queue_service.errors import N_, ValidationFailed
from queue_service.inventory import slots as slot_rules
from queue_service.inventory.slots import Slot


class SlotsOverlap(ValidationFailed):
    """Some new slots overlap others on the same counter; nothing was published."""

    def __init__(self, conflicts: list[tuple[Slot, Slot]]) -> None:
        super().__init__({"slots": N_("Some slots overlap others on the same counter: nothing was published.")})
        self.conflicts = conflicts


def publish(store, prefecture: str, candidates: list[Slot]) -> int:
    """Store `candidates` if none overlaps; returns how many were published."""
    if not candidates:
        return 0
    closed = {site.id for site in store.sites(prefecture) if site.closed}
    if any(slot.site in closed for slot in candidates):
        raise ValidationFailed({"site": N_("This site is closed: it takes no new slots.")})
    start = min(slot.starts_at for slot in candidates) - datetime.timedelta(days=1)
    end = max(slot.ends_at for slot in candidates)
    conflicts = slot_rules.overlaps(candidates, store.prefecture_slots(prefecture, start, end))
    if conflicts:
        raise SlotsOverlap(conflicts)
    return store.add_slots(candidates)

