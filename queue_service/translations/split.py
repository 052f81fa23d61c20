"""Keep a message in one catalogue domain only: remove from the staff template what the
applicant template holds.

`make translations-update` extracts the staff template (messages.pot) from every
source and the applicant template (applicant.pot) from the applicant's sources; a
message found in both (a page title shared by a staff and a public page, an error
of queue_service/errors.py) is then translated once, in the applicant catalogue,
which the web app reads last.

    python -m queue_service.translations.split messages.pot applicant.pot
"""

from __future__ import annotations

import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po, write_po


def without(staff: Catalog, applicant: Catalog) -> Catalog:
    """`staff` less every message whose id is in `applicant`."""
    for message in list(staff):
        if message.id and message.id in applicant:
            staff.delete(message.id, context=message.context)
    return staff


def main(arguments: list[str]) -> None:
    staff_path, applicant_path = (Path(argument) for argument in arguments)
    with applicant_path.open("rb") as handle:
        applicant = read_po(handle)
    with staff_path.open("rb") as handle:
        staff = read_po(handle)
    with staff_path.open("wb") as handle:
        write_po(handle, without(staff, applicant), omit_header=False, width=76)


if __name__ == "__main__":
    main(sys.argv[1:])
