"""Check the public record of a draw, with nothing but the Python standard library.

Why this module exists
----------------------
Anyone, not only the operator, must be able to confirm that a draw followed
the published rules (fairdraw/v1, docs/lottery.md). This verifier is a second
implementation of those rules, written separately from ``lottery.py`` and
importing nothing from the project nor from outside the standard library, so
that it can be copied alone onto any machine with Python 3.11 and read in one
sitting::

    python -m queue_service.verify RECORD.json
    python -m queue_service.verify RECORD.json --ref 01R-7K3Q9X

It recomputes the commitment, the entrants digest, every key, the order, the
winner set and the slot of each winner, prints one line per thing that does
not match, and exits with 0 (all matches), 1 (something does not match) or
2 (the record cannot be read). ``--ref`` also prints one entrant's key and rank.

When the record carries the service's times (``announced_at``: the commitment
published; ``cutoff_at``: the entries closed), it prints them and checks that
they say the commitment came first. These are the operator's own statements:
compare them with when you saw the commitment on the draw's public page. A
record written before the service always announced first may say
``announced_late``: that is noted, not counted as a mismatch.
"""

from __future__ import annotations

import argparse
import bisect
import datetime
import hashlib
import json
import math
import re
import sys
from collections import deque

SPEC = "fairdraw/v1"
EXIT_MATCH = 0
EXIT_MISMATCH = 1
EXIT_UNREADABLE = 2

#: At most this many lines are printed per kind of problem; then a count.
LINES_PER_KIND = 20

#: Two keys closer than this (relative) could be ordered differently by a
#: C library whose ln differs in the last bit: the verifier says so.
NEAR_TIE = 4 * 2.0**-52

_DECIMAL_WEIGHT = re.compile(r"[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?\Z")
_HEX = re.compile(r"(?:[0-9a-fA-F]{2})+\Z")


class UnreadableRecord(Exception):
    """The file is not a fairdraw/v1 record this verifier can read."""


# --------------------------------------------------------------------------
# Reading the record
# --------------------------------------------------------------------------


def _field(container: dict, name: str, kinds: tuple, where: str):
    if name not in container:
        raise UnreadableRecord(f"{where}: field {name!r} is missing")
    value = container[name]
    if not isinstance(value, kinds) or isinstance(value, bool):
        raise UnreadableRecord(f"{where}: field {name!r} has the wrong type ({type(value).__name__})")
    return value


def _list_of_objects(record: dict, name: str) -> list[dict]:
    items = _field(record, name, (list,), "record")
    for position, item in enumerate(items):
        if not isinstance(item, dict):
            raise UnreadableRecord(f"{name}[{position}] is not an object")
    return items


def read_record(path: str) -> dict:
    """Load and shape-check a record; raises UnreadableRecord with the reason."""
    try:
        with open(path, encoding="utf-8") as source:
            record = json.load(source)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UnreadableRecord(f"cannot read {path}: {error}") from error
    check_shape(record)
    return record


def check_shape(record) -> None:
    """Every field the verifier needs is present with the right JSON type."""
    if not isinstance(record, dict):
        raise UnreadableRecord("the record is not a JSON object")
    spec = record.get("spec")
    if spec != SPEC:
        raise UnreadableRecord(f"spec is {spec!r}; this verifier checks {SPEC!r} only")
    _field(record, "draw_id", (str,), "record")
    _field(record, "commitment", (str,), "record")
    _field(record, "entrants_digest", (str,), "record")
    for name in ("seed", "beacon"):
        _field(record, name, (str, type(None)), "record")
    for position, entrant in enumerate(_list_of_objects(record, "entrants")):
        where = f"entrants[{position}]"
        _field(entrant, "ref", (str,), where)
        _field(entrant, "weight", (str,), where)
        _field(entrant, "group", (str, type(None)), where)
        accepts = _field(entrant, "accepts", (list, type(None)), where)
        if accepts is not None and not all(isinstance(name, str) for name in accepts):
            raise UnreadableRecord(f"{where}: accepts must be a list of strings")
    for position, slot in enumerate(_list_of_objects(record, "slots")):
        _field(slot, "id", (str,), f"slots[{position}]")
        _field(slot, "class", (str,), f"slots[{position}]")
    for position, phase in enumerate(_list_of_objects(record, "phases")):
        _field(phase, "group", (str,), f"phases[{position}]")
        _field(phase, "max_winners", (int,), f"phases[{position}]")
    if _field(record, "winners", (list, type(None)), "record") is not None:
        for position, winner in enumerate(_list_of_objects(record, "winners")):
            _field(winner, "ref", (str,), f"winners[{position}]")
            _field(winner, "slot", (str,), f"winners[{position}]")


# --------------------------------------------------------------------------
# The rules, step by step
# --------------------------------------------------------------------------


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def canonical_entrants_json(entrants: list[dict]) -> bytes:
    """The bytes hashed into entrants_digest: the four fields, sorted by ref."""
    rows = [
        {"ref": e["ref"], "weight": e["weight"], "group": e["group"], "accepts": e["accepts"]}
        for e in entrants
    ]
    rows.sort(key=lambda row: row["ref"])
    text = json.dumps(rows, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8")


def seed_for_keys(seed: bytes, beacon_hex: str | None) -> bytes:
    """The seed itself, or SHA-256(seed ‖ beacon bytes) when a beacon is named."""
    if beacon_hex is None:
        return seed
    return hashlib.sha256(seed + bytes.fromhex(beacon_hex)).digest()


def key_of(seed: bytes, draw_id: str, ref: str, weight: float) -> float:
    """key = -ln(u) / weight, u from the first 8 bytes of SHA-256(seed ‖ draw_id ‖ 0x00 ‖ ref)."""
    digest = hashlib.sha256(seed + draw_id.encode("utf-8") + b"\x00" + ref.encode("utf-8")).digest()
    top53 = int.from_bytes(digest[:8], "big") >> 11
    uniform = (top53 + 0.5) / 2**53
    return -math.log(uniform) / weight


def all_keys(seed: bytes, draw_id: str, refs: list[str], weights: list[float]) -> list[float]:
    """key_of for every entrant; the common prefix is hashed once and copied."""
    prefix = hashlib.sha256(seed + draw_id.encode("utf-8") + b"\x00")
    keys = []
    for ref, weight in zip(refs, weights):
        entrant_hash = prefix.copy()
        entrant_hash.update(ref.encode("utf-8"))
        top53 = int.from_bytes(entrant_hash.digest()[:8], "big") >> 11
        keys.append(-math.log((top53 + 0.5) / 2**53) / weight)
    return keys


class ClassMatching:
    """Winners held in slot classes, each class holding at most its number of slots.

    An entrant fits if a class it accepts has room, or if winners can be
    moved, one class to another they also accept, until one class it accepts
    has room (a breadth-first search over classes). ``closed`` gathers classes
    found full with no winner able to leave them: no one can enter them ever
    after, so entrants who accept only those are refused without a search.

    To search over classes rather than over winners, each class keeps how
    many of its winners accept each other class (``reach``); winners who
    accept every class ("open") are counted apart, as one of them reaches all.
    """

    def __init__(self, capacity: dict[str, int], accepted: list[frozenset | None]):
        self.capacity = dict(capacity)
        self.all_classes = frozenset(capacity)
        self.accepted = accepted  # per entrant index; None means every class
        self.open: dict[str, dict[int, None]] = {name: {} for name in capacity}
        self.limited: dict[str, dict[int, None]] = {name: {} for name in capacity}
        self.reach: dict[str, dict[str, int]] = {name: {} for name in capacity}
        self.load = {name: 0 for name in capacity}
        self.home: dict[int, str] = {}
        self.filled = 0
        self.total = sum(capacity.values())
        self.closed: set[str] = set()

    def is_full(self) -> bool:
        return self.filled >= self.total

    def classes_of(self, entrant: int) -> frozenset:
        accepted = self.accepted[entrant]
        return self.all_classes if accepted is None else accepted

    def has_room(self, name: str) -> bool:
        return self.load[name] < self.capacity[name]

    def neighbours(self, name: str):
        """Classes that some winner now in ``name`` also accepts."""
        return self.all_classes if self.open[name] else self.reach[name].keys()

    def put(self, entrant: int, name: str) -> None:
        accepted = self.accepted[entrant]
        if accepted is None:
            self.open[name][entrant] = None
        else:
            self.limited[name][entrant] = None
            reach = self.reach[name]
            for other in accepted:
                reach[other] = reach.get(other, 0) + 1
        self.load[name] += 1
        self.home[entrant] = name
        self.filled += 1

    def take_out(self, entrant: int) -> str:
        name = self.home.pop(entrant)
        accepted = self.accepted[entrant]
        if accepted is None:
            del self.open[name][entrant]
        else:
            del self.limited[name][entrant]
            reach = self.reach[name]
            for other in accepted:
                reach[other] -= 1
                if not reach[other]:
                    del reach[other]
        self.load[name] -= 1
        self.filled -= 1
        return name

    def mover(self, here: str, there: str) -> int:
        """A winner now in ``here`` who accepts ``there``."""
        open_holders = self.open[here]
        if open_holders:
            # popitem + put back is O(1); next(iter()) would walk past the
            # places of every winner already taken out of this dict.
            mover, _ = open_holders.popitem()
            open_holders[mover] = None
            return mover
        # Newest first: winners taken out for good (the assignment fixes them in
        # selection order) leave dead places at the front of the dict.
        return next(m for m in reversed(self.limited[here]) if there in self.accepted[m])

    def try_add(self, entrant: int) -> bool:
        wanted = self.classes_of(entrant) - self.closed
        if not wanted:
            return False
        for name in sorted(wanted):
            if self.has_room(name):
                self.put(entrant, name)
                return True
        steps, reached = self.search(wanted, skip=self.closed)
        if steps is None:
            self.closed |= reached
            return False
        self.put(entrant, self.shift(steps))
        return True

    def search(self, start, skip):
        """Steps (here, there) that free room in a class of ``start``, or (None, classes reached)."""
        came_from: dict[str, str | None] = {name: None for name in start}
        seen = set(start) | set(skip)
        queue = deque(sorted(start))
        while queue:
            here = queue.popleft()
            new = self.neighbours(here) - seen
            for there in sorted(new):
                came_from[there] = here
                if self.has_room(there):
                    return self.trace(came_from, there), None
                queue.append(there)
            seen |= new
        return None, set(came_from)

    @staticmethod
    def trace(came_from: dict, end: str) -> list[tuple[str, str]]:
        """The steps from the class with room back to a start class."""
        steps = []
        while came_from[end] is not None:
            steps.append((came_from[end], end))
            end = came_from[end]
        return steps

    def shift(self, steps: list[tuple[str, str]]) -> str:
        """Move one winner per step, room end first; returns the start class, now with room."""
        for here, there in steps:
            mover = self.mover(here, there)
            self.take_out(mover)
            self.put(mover, there)
        return steps[-1][0]


def walk(order: list[int], groups: list, phases: list[dict], matching: ClassMatching) -> list[int]:
    """Winners in selection order: each phase over its group, then everyone left."""
    winners: list[int] = []
    won: set[int] = set()
    stages = [(phase["group"], phase["max_winners"]) for phase in phases] + [(None, None)]
    for group, cap in stages:
        added = 0
        for entrant in order:
            if matching.is_full() or (cap is not None and added >= cap):
                break
            if entrant in won or (group is not None and groups[entrant] != group):
                continue
            if matching.try_add(entrant):
                winners.append(entrant)
                won.add(entrant)
                added += 1
    return winners


def assign(winners: list[int], slot_ids: dict[str, list[str]], matching: ClassMatching) -> list[str]:
    """Slot of each winner: in selection order, the lowest id that keeps the rest placeable."""
    position = {name: 0 for name in slot_ids}
    # (lowest free slot id, class) for every class with a free slot, ascending.
    next_free = sorted((ids[0], name) for name, ids in slot_ids.items())
    closed_sets = [set(matching.closed)] if matching.closed else []
    result = []
    for winner in winners:
        left = matching.take_out(winner)
        accepted = matching.classes_of(winner)
        for place, (slot_id, name) in enumerate(next_free):
            if name not in accepted:
                continue
            if any(name in closed and left not in closed for closed in closed_sets):
                continue
            if matching.has_room(name):
                break
            steps, reached = matching.search({name}, skip=())
            if steps is not None:
                matching.shift(steps)
                break
            closed_sets.append(reached)
        else:
            raise AssertionError("no feasible slot for a winner")
        matching.capacity[name] -= 1
        result.append(slot_id)
        position[name] += 1
        del next_free[place]
        if position[name] < len(slot_ids[name]):
            bisect.insort(next_free, (slot_ids[name][position[name]], name))
    return result


# --------------------------------------------------------------------------
# Checking a record
# --------------------------------------------------------------------------


class Report:
    """What was found: problems by kind, notes, and the recomputed draw."""

    def __init__(self):
        self.problems: list[tuple[str, str]] = []
        self.notes: list[str] = []
        self.keys: dict[str, float] = {}
        self.rank: dict[str, int] = {}
        self.expected_winners: list[tuple[str, str]] | None = None

    def problem(self, kind: str, message: str) -> None:
        self.problems.append((kind, message))

    @property
    def ok(self) -> bool:
        return not self.problems


def check_inputs(record: dict, report: Report) -> list[float] | None:
    """Duplicate refs or slot ids, bad weights or caps; the weights if all are valid."""
    valid = True
    seen_refs: set[str] = set()
    weights = []
    for entrant in record["entrants"]:
        ref, text = entrant["ref"], entrant["weight"]
        if ref in seen_refs:
            report.problem("input", f"duplicate entrant ref {ref!r}")
            valid = False
        seen_refs.add(ref)
        weight = float(text) if _DECIMAL_WEIGHT.match(text) else math.nan
        if not (math.isfinite(weight) and weight > 0):
            report.problem("input", f"entrant {ref!r}: weight {text!r} is not a positive finite decimal number")
            valid = False
        weights.append(weight)
    seen_slots: set[str] = set()
    for slot in record["slots"]:
        if slot["id"] in seen_slots:
            report.problem("input", f"duplicate slot id {slot['id']!r}")
            valid = False
        seen_slots.add(slot["id"])
    for phase in record["phases"]:
        if phase["max_winners"] < 0:
            report.problem("input", f"phase {phase['group']!r}: max_winners is negative")
            valid = False
    return weights if valid else None


def check_seed(record: dict, report: Report) -> bytes | None:
    """The revealed seed, if it is well formed and matches the commitment."""
    seed_hex = record["seed"]
    if seed_hex is None:
        report.problem("seed", "seed is null: the draw cannot be checked before the seed is revealed")
        return None
    if not _HEX.match(seed_hex) or len(seed_hex) != 64:
        report.problem("seed", "seed is not 32 bytes written in hex")
        return None
    seed = bytes.fromhex(seed_hex)
    computed = sha256_hex(seed)
    if computed != record["commitment"].lower():
        report.problem("commitment", f"SHA-256(seed) is {computed}, the record's commitment is {record['commitment']}")
    beacon = record["beacon"]
    if beacon is not None and not _HEX.match(beacon):
        report.problem("seed", "beacon is not hex")
        return None
    return seed_for_keys(seed, beacon)


def check_digest(record: dict, report: Report) -> None:
    computed = sha256_hex(canonical_entrants_json(record["entrants"]))
    if computed != record["entrants_digest"].lower():
        report.problem(
            "entrants_digest",
            f"entrants digest is {computed}, the record says {record['entrants_digest']}",
        )


def recompute(record: dict, seed: bytes, weights: list[float], report: Report) -> list[tuple[str, str]]:
    """The draw from the record's inputs: (ref, slot) of each winner in selection order."""
    entrants = record["entrants"]
    refs = [entrant["ref"] for entrant in entrants]
    keys = all_keys(seed, record["draw_id"], refs, weights)
    order = sorted(range(len(refs)), key=lambda index: (keys[index], refs[index]))
    report.keys = dict(zip(refs, keys))
    report.rank = {refs[index]: rank for rank, index in enumerate(order, start=1)}

    slot_ids: dict[str, list[str]] = {}
    for slot in record["slots"]:
        slot_ids.setdefault(slot["class"], []).append(slot["id"])
    for ids in slot_ids.values():
        ids.sort()
    accepted = [
        None if entrant["accepts"] is None else frozenset(entrant["accepts"]).intersection(slot_ids)
        for entrant in entrants
    ]
    matching = ClassMatching({name: len(ids) for name, ids in slot_ids.items()}, accepted)
    groups = [entrant["group"] for entrant in entrants]
    winners = walk(order, groups, record["phases"], matching)
    slots = assign(winners, slot_ids, matching)
    note_near_ties(order, keys, refs, winners, report)
    return [(refs[winner], slot) for winner, slot in zip(winners, slots)]


def note_near_ties(order: list[int], keys: list[float], refs: list[str], winners: list[int], report: Report) -> None:
    """Adjacent keys within a few ulps, up to just past the last winner."""
    if not winners:
        return
    last = max(report.rank[refs[winner]] for winner in winners)
    for rank in range(1, min(last + 1, len(order))):
        first, second = keys[order[rank - 1]], keys[order[rank]]
        if second - first <= NEAR_TIE * abs(second):
            report.notes.append(
                f"note: {refs[order[rank - 1]]} and {refs[order[rank]]} (ranks {rank}, {rank + 1}) have "
                f"keys {first!r} and {second!r}, within a few ulps: a C library whose ln "
                "differs in the last bit could order them the other way"
            )


def compare_winners(expected: list[tuple[str, str]], record: dict, report: Report) -> None:
    listed = record["winners"]
    if listed is None:
        report.problem("winners", "winners is null: the record does not say who won")
        return
    problems_before = len(report.problems)
    listed_pairs = [(winner["ref"], winner["slot"]) for winner in listed]
    expected_slot = dict(expected)
    listed_slot: dict[str, str] = {}
    for ref, slot in listed_pairs:
        if ref in listed_slot:
            report.problem("winners", f"{ref} is listed twice among the winners")
        listed_slot[ref] = slot
    for ref, slot in expected:
        if ref not in listed_slot:
            report.problem("winners", f"missing winner: {ref} (rank {report.rank[ref]}) should have won slot {slot}")
    for ref, slot in listed_pairs:
        if ref not in expected_slot:
            rank = report.rank.get(ref)
            where = f"rank {rank}" if rank else "not an entrant"
            report.problem("winners", f"unexpected winner: {ref} ({where}) is listed with slot {slot} but did not win")
        elif expected_slot[ref] != slot:
            report.problem("slots", f"slot of {ref}: the rules give {expected_slot[ref]}, the record says {slot}")
    same_winners_and_slots = len(report.problems) == problems_before
    if same_winners_and_slots and listed_pairs != expected:
        first = next(i for i, (a, b) in enumerate(zip(listed_pairs, expected)) if a != b)
        report.problem(
            "winners",
            f"winners are not listed in selection order: position {first + 1} should be "
            f"{expected[first][0]}, the record has {listed_pairs[first][0]}",
        )


def _moment(record: dict, name: str) -> datetime.datetime | None:
    """The record's time `name` (ISO 8601 with an offset), or None if absent or unreadable."""
    text = record.get(name)
    try:
        moment = datetime.datetime.fromisoformat(text) if isinstance(text, str) else None
    except ValueError:
        return None
    return moment if moment is not None and moment.tzinfo is not None else None


def check_timing(record: dict, report: Report) -> None:
    """Whether the record's own times say the commitment was published before the entries closed."""
    announced, cutoff = _moment(record, "announced_at"), _moment(record, "cutoff_at")
    if announced is None or cutoff is None:
        return  # a record without the service's times (they are optional in fairdraw/v1)
    said = (f"the record says the commitment was published at {record['announced_at']} "
            f"and the entries closed at {record['cutoff_at']}")
    if record.get("announced_late") is True:
        report.notes.append(f"note: announced late: {said}; the commitment does not show that the seed was fixed "
                            "before the entrants were known")
    elif announced > cutoff:
        report.problem("timing", f"{said}: after them, yet it does not say it was announced late")
    else:
        report.notes.append(f"timing: {said}: the commitment came first (compare with when you saw it published)")
    if isinstance(record.get("scheduled_cutoff_at"), str):
        report.notes.append(f"timing: its schedule closed the entries at {record['scheduled_cutoff_at']}; announced "
                            "after that, the draw closed them at its announcement")


def check_record(record: dict) -> Report:
    """All checks on an already shape-checked record."""
    report = Report()
    check_timing(record, report)
    seed = check_seed(record, report)
    check_digest(record, report)
    weights = check_inputs(record, report)
    if seed is None or weights is None:
        return report
    report.expected_winners = recompute(record, seed, weights, report)
    compare_winners(report.expected_winners, record, report)
    return report


# --------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------


def print_report(report: Report, record: dict) -> None:
    shown: dict[str, int] = {}
    for kind, message in report.problems:
        shown[kind] = shown.get(kind, 0) + 1
        if shown[kind] <= LINES_PER_KIND:
            print(f"MISMATCH {kind}: {message}")
    for kind, count in shown.items():
        if count > LINES_PER_KIND:
            print(f"MISMATCH {kind}: ... and {count - LINES_PER_KIND} more")
    for note in report.notes[:LINES_PER_KIND]:
        print(note)
    if report.ok:
        print(
            f"OK {record['draw_id']}: commitment, entrants digest, {len(record['entrants'])} keys, "
            f"the order, {len(report.expected_winners)} winners and their slots all match"
        )
    else:
        print(f"FAILED {record['draw_id']}: {len(report.problems)} problem(s)")


def print_ref(report: Report, ref: str) -> bool:
    if ref not in report.keys:
        print(f"ref {ref}: not among the entrants of this record (or the draw could not be recomputed)")
        return False
    outcome = dict(report.expected_winners or [])
    result = f"won slot {outcome[ref]}" if ref in outcome else "did not win"
    print(f"ref {ref}: key {report.keys[ref]!r}, rank {report.rank[ref]} of {len(report.rank)}, {result}")
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m queue_service.verify", description="Check a fairdraw/v1 public record."
    )
    parser.add_argument("record", help="path of the record (JSON)")
    parser.add_argument("--ref", help="also print this entrant's key and rank")
    arguments = parser.parse_args(argv)
    try:
        record = read_record(arguments.record)
    except UnreadableRecord as error:
        print(f"UNREADABLE: {error}", file=sys.stderr)
        return EXIT_UNREADABLE
    report = check_record(record)
    print_report(report, record)
    found = print_ref(report, arguments.ref) if arguments.ref is not None else True
    return EXIT_MATCH if report.ok and found else EXIT_MISMATCH


if __name__ == "__main__":
    sys.exit(main())
