"""Staff forms as the plain values the domain's parsers read.

A browser sends only text: a ticked checkbox sends its value ("on") and an
unticked one nothing, boxes ticked under one name repeat it, and a text area
is one string. The parsers in queue_service/ take bools, lists, and numbers
or their text; these functions turn the one into the other, so that no
form's encoding reaches the domain.
"""

from __future__ import annotations

from collections.abc import Mapping

from werkzeug.datastructures import MultiDict

from queue_service.draws.schedules import SWITCHES

#: Words a checkbox sends when ticked, and when explicitly not ticked.
CHECKBOX_ON = frozenset({"on", "yes", "true", "1"})
CHECKBOX_OFF = frozenset({"", "off", "no", "false", "0"})


def checkbox(value: object) -> object:
    """True for a ticked box, False for an absent or unticked one.

    Any other value is passed on as it is, for the domain to refuse.
    """
    if value is None:
        return False
    if isinstance(value, str):
        word = value.strip().lower()
        if word in CHECKBOX_ON:
            return True
        if word in CHECKBOX_OFF:
            return False
    return value


def lines(value: object) -> object:
    """A text area as its lines that hold something (None: no line); any other value as it is."""
    if value is None:
        return []
    if isinstance(value, str):
        return [line for line in value.splitlines() if line.strip()]
    return value


def _first_values(form: Mapping[str, object]) -> dict[str, object]:
    return {name: form.get(name) for name in form}


def schedule_values(form: Mapping[str, object]) -> dict[str, object]:
    """A draw schedule form: its dates as a list, the policy's checkboxes as bools."""
    values = _first_values(form)
    values["dates"] = lines(form.get("dates"))
    values.update({name: checkbox(form.get(name)) for name in SWITCHES})
    return values


def template_values(form: MultiDict) -> dict[str, object]:
    """An opening-hours form: the weekdays ticked as a list."""
    return _first_values(form) | {"weekdays": form.getlist("weekdays")}


def site_values(form: Mapping[str, object]) -> dict[str, object]:
    """A site form: ``closed`` as a bool (only a ticked box closes the site)."""
    return _first_values(form) | {"closed": checkbox(form.get("closed")) is True}
