"""What is shown of an offer, on the pages and in the messages alike (offers.display)."""

import dataclasses
import datetime

from helpers import TIMING

from queue_service import offers
from queue_service.inventory.slots import Slot

UTC = datetime.timezone.utc
SLOT = Slot(id="s1", prefecture="974", site="saint-denis", procedure="renewal",
            starts_at=datetime.datetime(2027, 1, 8, 6, 0, tzinfo=UTC), duration_minutes=30, counter=1)
CODE = "ABCDE12345"


def booking(**changes) -> offers.Offer:
    return dataclasses.replace(offers.Offer(
        registration_id="r1", draw_id="974-renewal-20270104T1000", ref="974R-7K3Q9X", slot_id="s1",
        status=offers.OfferStatus.CONFIRMED, deadline=datetime.datetime(2027, 1, 6, 10, tzinfo=UTC),
        offered_at=datetime.datetime(2027, 1, 4, 10, tzinfo=UTC), booking_code=CODE,
    ), **changes)


def test_times_are_on_the_prefectures_clock():
    shown = offers.display(booking(), SLOT, TIMING, "Indian/Reunion", SLOT.starts_at - datetime.timedelta(days=3))
    assert (shown.starts_at.hour, shown.ends_at.hour, shown.ends_at.minute) == (10, 10, 30)
    assert shown.deadline == datetime.datetime(2027, 1, 6, 10, tzinfo=UTC) and shown.deadline.hour == 14
    assert shown.cancel_by == SLOT.starts_at - TIMING.cancel_notice and str(shown.cancel_by.tzinfo) == "Indian/Reunion"


def test_a_booking_can_be_cancelled_until_its_notice_and_shows_its_code():
    cancel_by = SLOT.starts_at - TIMING.cancel_notice
    assert offers.display(booking(), SLOT, TIMING, "Europe/Paris", cancel_by).can_cancel
    late = offers.display(booking(), SLOT, TIMING, "Europe/Paris", cancel_by + datetime.timedelta(seconds=1))
    assert not late.can_cancel and late.code == "ABCDE-12345"
    pending = offers.display(booking(status=offers.OfferStatus.PENDING, booking_code=None), SLOT, TIMING, "Europe/Paris", cancel_by)
    assert not pending.can_cancel and pending.code is None


def test_a_message_about_an_earlier_slot_shows_no_code_and_a_gone_offer_no_deadline():
    moved = offers.display(booking(slot_id="s2"), SLOT, TIMING, "Europe/Paris", SLOT.starts_at)
    assert moved.code is None and moved.deadline is not None
    gone = offers.display(None, SLOT, TIMING, "Europe/Paris", SLOT.starts_at)
    assert gone.code is None and gone.deadline is None and not gone.can_cancel
