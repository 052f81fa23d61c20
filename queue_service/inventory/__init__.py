"""The prefecture's appointment inventory: its sites, its slots, and publishing them.

The staff pages and the staff API both change the inventory through the
functions here (create, edit, close and delete a site; publish slots from an
opening template or a CSV file; list them), so that a rule lives once.

A counter holds one appointment at a time, whatever the procedure: new slots
are checked against each other and against every published slot of the
prefecture, and refused all together if any overlaps. Cancelling a slot is an
offers matter (queue_service.offers.cancel_slot): its holder is told and goes
back to the waiting list.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Mapping
from zoneinfo import ZoneInfo

from queue_service.errors import N_, UnknownSite, ValidationFailed
from queue_service.inventory import sites as site_rules
from queue_service.inventory import slots as slot_rules
from queue_service.inventory.slots import RowError, Slot
from queue_service.reference import Site


class SlotsOverlap(ValidationFailed):
    """Some new slots overlap others on the same counter; nothing was published."""

    def __init__(self, conflicts: list[tuple[Slot, Slot]]) -> None:
        super().__init__({"slots": N_("Some slots overlap others on the same counter: nothing was published.")})
        self.conflicts = conflicts


class SlotRowsWrong(ValidationFailed):
    """Some rows of a slot CSV file are wrong; nothing was published."""

    def __init__(self, rows: list[RowError]) -> None:
        super().__init__({"file": N_("Some rows of the file are wrong: nothing was published.")})
        self.rows = rows


# Sites ------------------------------------------------------------------------------------


def existing_site(store, prefecture: str, site_id: str) -> Site:
    site = store.site(prefecture, site_id)
    if site is None:
        raise UnknownSite()
    return site


def create_site(store, prefecture: str, values: Mapping[str, object]) -> Site:
    """A new site from the admin's values (site_rules.parse_site), its id not taken yet."""
    taken = {site.id for site in store.sites(prefecture)}
    site = site_rules.parse_site(values, prefecture, taken_ids=taken)
    store.save_site(site)
    return site


def edit_site(store, prefecture: str, site_id: str, values: Mapping[str, object]) -> Site:
    """The site replaced by the admin's values (all of them: a site absent from `values` is
    open again)."""
    existing_site(store, prefecture, site_id)
    site = site_rules.parse_site(values, prefecture, site_id=site_id)
    store.save_site(site)
    return site


def close_site(store, prefecture: str, site_id: str) -> Site:
    """The site closed (no new slots, not offered to new applicants); its slots and history stay."""
    site = dataclasses.replace(existing_site(store, prefecture, site_id), closed=True)
    store.save_site(site)
    return site


def delete_site(store, prefecture: str, site_id: str, now: datetime.datetime) -> None:
    """The site deleted, if no future slot is left at it (SiteInUse otherwise)."""
    existing_site(store, prefecture, site_id)
    site_rules.check_deletable(store.future_slot_count(prefecture, site_id, now))
    store.delete_site(prefecture, site_id)


# Slots ------------------------------------------------------------------------------------


def publish_from_template(store, prefecture: str, values: Mapping[str, object], now: datetime.datetime) -> list[Slot]:
    """The slots of an opening template (slot_rules.parse_template's values), published at the
    prefecture's open sites if none overlaps; returns them. Days before today on the
    prefecture's clock are refused."""
    found = store.prefecture(prefecture)
    template = slot_rules.parse_template(values, _open_site_ids(store, prefecture),
                                         [procedure.code for procedure in store.procedures()],
                                         slot_rules.local_today(now, found.timezone))
    candidates = slot_rules.slots_from_template(template, prefecture, found.timezone)
    publish(store, prefecture, candidates)
    return candidates


def publish_from_csv(
    store, prefecture: str, text: str, now: datetime.datetime, *, keep_good_rows: bool
) -> tuple[list[Slot], list[RowError]]:
    """The slots of a CSV file (slot_rules.parse_slots_csv), published if none overlaps, and its
    wrong rows. With `keep_good_rows` (the page, which shows both) the good rows are published
    whatever the others; without, a wrong row publishes nothing (SlotRowsWrong)."""
    found = store.prefecture(prefecture)
    candidates, row_errors = slot_rules.parse_slots_csv(
        text, prefecture, found.timezone, _open_site_ids(store, prefecture),
        [procedure.code for procedure in store.procedures()], slot_rules.local_today(now, found.timezone),
    )
    if row_errors and not keep_good_rows:
        raise SlotRowsWrong(row_errors)
    publish(store, prefecture, candidates)
    return candidates, row_errors


def _open_site_ids(store, prefecture: str) -> list[str]:
    return [site.id for site in store.sites(prefecture) if not site.closed]


def listed_slots(
    store, prefecture: str, first_day: datetime.date, last_day: datetime.date, *,
    site: str | None = None, procedure: str | None = None,
) -> list[Slot]:
    """The prefecture's slots from `first_day` to `last_day` included, days on its own clock,
    soonest first; of one site, one procedure, when named."""
    zone = ZoneInfo(store.prefecture(prefecture).timezone)
    start = datetime.datetime.combine(first_day, datetime.time(), zone)
    end = datetime.datetime.combine(last_day + datetime.timedelta(days=1), datetime.time(), zone)
    return [
        slot for slot in store.prefecture_slots(prefecture, start, end)
        if site in (None, slot.site) and procedure in (None, slot.procedure)
    ]


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

