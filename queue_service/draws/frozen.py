"""A frozen draw's inputs, stored as columns so that a million entrants load in a fraction of a second.

At the cutoff a draw fixes its entrants and slots (draws.freeze). The draw
itself may run hours later, and must then go from these stored inputs to
committed offers in seconds: a JSON document with a million objects takes
longer to parse than the whole lottery takes to run. So the inputs are kept
as columns, one Redis hash field each:

    format          "columns/1"
    header          JSON: the distinct weights, groups, constraint sets and
                    channels (each entrant refers to them by position), the
                    slots' ids and classes (two lists) and the phases
    refs            JSON list of the entrants' public references
    registrations   JSON list of the registration id behind each reference (private)
    weight_codes    int32 little-endian, one per entrant: position in header.weights
    group_codes     idem, in header.groups (null: no group)
    accept_codes    idem, in header.accept_sets (null: any slot)
    channel_codes   idem, in header.channels (private, for the bias check)
    joined_at       float64 little-endian, one per entrant: epoch seconds (private, idem)

Draws frozen before this format have one JSON document instead; they still load.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from queue_service.draws import lottery

FORMAT = "columns/1"
_CODE = np.dtype("<i4")
_TIME = np.dtype("<f8")


@dataclass(frozen=True, eq=False)
class FrozenDraw:
    """What a draw fixed at its cutoff: the lottery's inputs, and private facts about each entrant."""

    entrants: lottery.EntrantColumns
    slots: lottery.SlotColumns
    phases: list[lottery.Phase]
    registrations: list[str]  # the registration id of each entrant
    joined_at: np.ndarray  # when each entrant's wait began (epoch seconds)
    channels: tuple[str, ...]  # the distinct channels
    channel_codes: np.ndarray  # each entrant's channel, as a position in `channels`

    def __post_init__(self) -> None:
        count = len(self.entrants)
        if len(self.registrations) != count or self.joined_at.shape != (count,) or self.channel_codes.shape != (count,):
            raise ValueError("a frozen draw needs one registration, time and channel per entrant")

    def to_fields(self) -> dict[str, bytes | str]:
        entrants = self.entrants
        header = {
            "weights": list(entrants.weights),
            "groups": list(entrants.groups),
            "accept_sets": [None if classes is None else list(classes) for classes in entrants.accept_sets],
            "channels": list(self.channels),
            "slot_ids": self.slots.ids,
            "slot_classes": self.slots.classes,
            "phases": [[phase.group, phase.max_winners] for phase in self.phases],
        }
        return {
            "format": FORMAT,
            "header": json.dumps(header),
            "refs": json.dumps(entrants.refs),
            "registrations": json.dumps(self.registrations),
            "weight_codes": entrants.weight_codes.astype(_CODE).tobytes(),
            "group_codes": entrants.group_codes.astype(_CODE).tobytes(),
            "accept_codes": entrants.accept_codes.astype(_CODE).tobytes(),
            "channel_codes": self.channel_codes.astype(_CODE).tobytes(),
            "joined_at": self.joined_at.astype(_TIME).tobytes(),
        }

    @classmethod
    def from_fields(cls, fields: dict[str, bytes]) -> FrozenDraw:
        if "document" in fields:
            return cls.from_document(json.loads(fields["document"]))
        if fields.get("format") != FORMAT.encode():
            raise ValueError(f"unknown frozen draw format {fields.get('format')!r}")
        header = json.loads(fields["header"])
        entrants = lottery.EntrantColumns(
            refs=json.loads(fields["refs"]),
            weights=tuple(header["weights"]),
            weight_codes=np.frombuffer(fields["weight_codes"], dtype=_CODE),
            groups=tuple(header["groups"]),
            group_codes=np.frombuffer(fields["group_codes"], dtype=_CODE),
            accept_sets=tuple(None if classes is None else tuple(classes) for classes in header["accept_sets"]),
            accept_codes=np.frombuffer(fields["accept_codes"], dtype=_CODE),
        )
        return cls(
            entrants=entrants,
            slots=lottery.SlotColumns(header["slot_ids"], header["slot_classes"]),
            phases=[lottery.Phase(group, max_winners) for group, max_winners in header["phases"]],
            registrations=json.loads(fields["registrations"]),
            joined_at=np.frombuffer(fields["joined_at"], dtype=_TIME),
            channels=tuple(header["channels"]),
            channel_codes=np.frombuffer(fields["channel_codes"], dtype=_CODE),
        )

    @classmethod
    def from_document(cls, document: dict) -> FrozenDraw:
        """A draw frozen by an earlier version: one JSON object with a row per entrant."""
        entrants = lottery.as_columns(lottery.entrants_from_rows(document["entrants"]))
        channels: dict[str, int] = {}
        channel_codes = [channels.setdefault(document["channels"][ref], len(channels)) for ref in entrants.refs]
        return cls(
            entrants=entrants,
            slots=lottery.SlotColumns([row["id"] for row in document["slots"]], [row["class"] for row in document["slots"]]),
            phases=[lottery.Phase(row["group"], row["max_winners"]) for row in document["phases"]],
            registrations=[document["registrations"][ref] for ref in entrants.refs],
            joined_at=np.array([document["joined_at"][ref] for ref in entrants.refs], dtype=np.float64),
            channels=tuple(channels),
            channel_codes=np.array(channel_codes, dtype=np.int32),
        )

    def weight_values(self) -> np.ndarray:
        return self.entrants.weight_values()

    def channel_of_each(self) -> np.ndarray:
        """Each entrant's channel name (for the bias check)."""
        return np.array(self.channels, dtype=object)[self.channel_codes] if self.channels else np.array([], dtype=object)
