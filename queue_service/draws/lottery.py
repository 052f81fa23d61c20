"""The draw: fairdraw specification v1, as pure functions over plain values.

Why this module exists
----------------------
A draw decides who gets an appointment, so anyone must be able to redo it
from its public record, in any language, and get the same answer to the last
bit. This module is the service's implementation of that specification
(docs/lottery.md); ``queue_service/verify.py`` is a second, independent one
that uses the standard library only. Nothing here touches Redis, Flask or RQ:
the seed, the entrants and the slots come in as arguments, the result goes
out as values, so a draw replayed in a test, a job or a court gives the same
winners.

The steps, each a public function so that the benchmark can time them:

1. ``compute_keys``: one SHA-256 per entrant gives a uniform ``u`` in (0, 1],
   and ``key = -ln(u) / weight`` (the exponential race of Efraimidis and
   Spirakis). numpy does the arithmetic for a million entrants at once.
2. ``DrawOrder``: the entrants sorted by (key, ref), materialised lazily and
   only as far as the walk needs. numpy's ``log`` may differ from the C
   library's ``log`` (which the stdlib verifier uses) in the last bit, so
   numpy only pre-selects candidates and their keys are recomputed with
   ``math.log`` before they are sorted.
3. ``select_winners``: walk the order (phase by phase) and keep an entrant if
   every winner so far plus this one can still each hold a slot of a class
   they accept.
4. ``assign_slots``: in the order they were selected, each winner takes the
   lowest slot id still free that they accept and that still leaves every
   later winner a slot they accept.

``run_draw`` chains them; ``public_record`` writes the document that
``verify.py`` checks.

Entrants and slots come either as lists of ``Entrant`` and ``Slot`` (clear,
for people and tests) or as ``EntrantColumns`` and ``SlotColumns`` (what the
service keeps for a draw of a million: no object per entrant). Every function
takes both and gives the same result.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import json
import math
import operator
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Iterable, Iterator, NamedTuple, Sequence

import numpy as np

__all__ = [
    "SPEC",
    "SEED_BYTES",
    "Entrant",
    "EntrantColumns",
    "SlotColumns",
    "as_columns",
    "as_slot_columns",
    "Slot",
    "Phase",
    "Award",
    "DrawResult",
    "KeyTable",
    "DrawOrder",
    "Selection",
    "canonical_weight",
    "commitment",
    "effective_seed",
    "entrants_digest",
    "entrant_key",
    "compute_keys",
    "select_winners",
    "assign_slots",
    "run_draw",
    "order_prefix",
    "public_record",
    "entrants_from_rows",
]

#: The value of the record's ``spec`` field for this version of the rules.
SPEC = "fairdraw/v1"

#: Length of a draw's secret seed, in bytes.
SEED_BYTES = 32

#: Relative margin by which numpy's keys are widened when pre-selecting the
#: candidates whose exact keys are recomputed with ``math.log``. numpy's and
#: libm's logarithms differ by at most an ulp or two (relative 1e-15); 1e-9
#: leaves six orders of magnitude to spare and costs a few extra candidates.
EXACT_KEY_MARGIN = 1e-9

#: Extra entrants materialised beyond what the caller asked for, so that one
#: round of pre-selection usually suffices even when a few keys computed by
#: numpy land just below the cutoff while their exact value lands above it.
_CHUNK_SLACK = 64

#: A weight is written as a plain decimal number: digits, an optional
#: fraction, an optional exponent. No sign, no "inf", no "nan", no spaces.
_DECIMAL_WEIGHT = re.compile(r"[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?\Z")


# --------------------------------------------------------------------------
# Inputs and outputs
# --------------------------------------------------------------------------


def _require_text(value: object, what: str) -> str:
    """A non-empty string that encodes to UTF-8 (no lone surrogates)."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"{what} must be a non-empty string, got {value!r}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        raise ValueError(f"{what} is not valid Unicode text: {value!r}") from error
    return value


def canonical_weight(value: str | int | float | Decimal) -> str:
    """The decimal string written in the record for a weight.

    A string is kept as written (so the record shows what the policy said);
    an int is written in decimal; a float is written with the shortest
    decimal that reads back as the same binary64 ("2.5", "3" for 3.0).
    The weight must be finite and greater than zero.
    """
    if isinstance(value, bool):
        raise ValueError(f"weight must be a number, got {value!r}")
    if isinstance(value, str):
        text = value
    elif isinstance(value, int):
        text = str(value)
    elif isinstance(value, float):
        text = repr(value)
        text = text[:-2] if text.endswith(".0") else text
    elif isinstance(value, Decimal):
        text = str(value)
    else:
        raise ValueError(f"weight must be a decimal string or a number, got {value!r}")
    if not _DECIMAL_WEIGHT.match(text):
        raise ValueError(
            f"weight must be a positive decimal number such as '1' or '2.5', got {text!r}"
        )
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"weight must be finite, got {text!r}")
    if number <= 0:
        raise ValueError(f"weight must be greater than zero, got {text!r}")
    return text


@dataclass(frozen=True, slots=True)
class Entrant:
    """One registration frozen into a draw.

    ``weight`` is the decimal string published in the record (ints, floats
    and Decimals are converted by ``canonical_weight``); ``weight_value`` is
    that string read as binary64, the number the key divides by.
    ``accepts`` is None (any slot) or the slot classes this entrant can
    attend, kept sorted and without repeats so that the record is canonical.
    """

    ref: str
    weight: str
    group: str | None = None
    accepts: tuple[str, ...] | None = None
    weight_value: float = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _require_text(self.ref, "entrant ref")
        # A pool has few distinct weights and constraint sets: checked once each
        # (a million entrants are rebuilt from the frozen record at each draw).
        if type(self.weight) is str:
            weight, value = _checked_weight_text(self.weight)
        else:
            weight = canonical_weight(self.weight)
            value = float(weight)
        object.__setattr__(self, "weight", weight)
        object.__setattr__(self, "weight_value", value)
        if self.group is not None:
            _require_text(self.group, f"group of entrant {self.ref!r}")
        if self.accepts is not None:
            object.__setattr__(self, "accepts", self._normalised_accepts())

    def _normalised_accepts(self) -> tuple[str, ...]:
        if isinstance(self.accepts, str):
            raise ValueError(
                f"accepts of entrant {self.ref!r} must be a list of slot classes, not a string"
            )
        accepts = tuple(self.accepts)
        try:
            return _normalised_classes(accepts)
        except ValueError as error:
            raise ValueError(f"accepts of entrant {self.ref!r}: {error}") from None


@functools.lru_cache(maxsize=4096)
def _checked_weight_text(text: str) -> tuple[str, float]:
    weight = canonical_weight(text)
    return weight, float(weight)


@functools.lru_cache(maxsize=65536)
def _normalised_classes(accepts: tuple) -> tuple[str, ...]:
    """Sorted, without repeats; every class a non-empty string."""
    classes = tuple(sorted(set(accepts)))
    if not classes:
        raise ValueError("it is empty: use None for 'any slot'")
    for slot_class in classes:
        _require_text(slot_class, "a slot class")
    return classes


@dataclass(frozen=True, slots=True)
class Slot:
    """One appointment to give away; ``slot_class`` is what entrants accept."""

    id: str
    slot_class: str

    def __post_init__(self) -> None:
        _require_text(self.id, "slot id")
        _require_text(self.slot_class, f"class of slot {self.id!r}")


@dataclass(frozen=True, slots=True)
class Phase:
    """A priority phase: entrants of ``group`` first, at most ``max_winners``."""

    group: str
    max_winners: int

    def __post_init__(self) -> None:
        _require_text(self.group, "phase group")
        if isinstance(self.max_winners, bool) or not isinstance(self.max_winners, int):
            raise ValueError(f"max_winners of phase {self.group!r} must be an integer")
        if self.max_winners < 0:
            raise ValueError(f"max_winners of phase {self.group!r} must be >= 0")


@dataclass(frozen=True, eq=False)
class EntrantColumns:
    """The entrants of a draw as columns: a million entrants without a million objects.

    Entrant ``i`` is ``refs[i]`` with weight ``weights[weight_codes[i]]``,
    group ``groups[group_codes[i]]`` and accepted classes
    ``accept_sets[accept_codes[i]]``: a pool has few distinct weights, groups
    and constraint sets, so each is written, checked and turned into a
    number or a bit mask once. Everything the lottery takes as a list of
    ``Entrant`` it also takes in this form (``as_columns`` converts), and
    gives the same result.
    """

    refs: list[str]
    weights: tuple[str, ...]
    weight_codes: np.ndarray
    groups: tuple[str | None, ...] = (None,)
    group_codes: np.ndarray | None = None
    accept_sets: tuple[tuple[str, ...] | None, ...] = (None,)
    accept_codes: np.ndarray | None = None

    def __post_init__(self) -> None:
        count = len(self.refs)
        _require_texts(self.refs, "entrant ref")
        for weight in self.weights:
            if type(weight) is not str or _checked_weight_text(weight)[0] != weight:
                raise ValueError(f"weight {weight!r} must be a canonical decimal string")
        for group in self.groups:
            if group is not None:
                _require_text(group, "a group")
        for accepts in self.accept_sets:
            if accepts is not None and (type(accepts) is not tuple or _normalised_classes(accepts) != accepts):
                raise ValueError(f"accepted classes {accepts!r} must be a sorted tuple without repeats")
        for name, codes, table in (
            ("weight_codes", self.weight_codes, self.weights),
            ("group_codes", self.group_codes, self.groups),
            ("accept_codes", self.accept_codes, self.accept_sets),
        ):
            codes = np.zeros(count, dtype=np.int32) if codes is None else np.asarray(codes)
            if codes.shape != (count,) or codes.dtype.kind not in "iu":
                raise ValueError(f"{name} must hold one integer per entrant")
            if count and (int(codes.min()) < 0 or int(codes.max()) >= len(table)):
                raise ValueError(f"{name} must index its table")
            object.__setattr__(self, name, codes)

    def __len__(self) -> int:
        return len(self.refs)

    @classmethod
    def from_entrants(cls, entrants: Sequence[Entrant]) -> EntrantColumns:
        weights: dict[str, int] = {}
        groups: dict[str | None, int] = {None: 0}
        accept_sets: dict[tuple[str, ...] | None, int] = {None: 0}

        def codes(values: Iterable, table: dict) -> np.ndarray:
            return np.fromiter(
                (table.setdefault(value, len(table)) for value in values), dtype=np.int32, count=len(entrants)
            )

        weight_codes = codes((entrant.weight for entrant in entrants), weights)
        group_codes = codes((entrant.group for entrant in entrants), groups)
        accept_codes = codes((entrant.accepts for entrant in entrants), accept_sets)
        return cls(
            refs=[entrant.ref for entrant in entrants],
            weights=tuple(weights),
            weight_codes=weight_codes,
            groups=tuple(groups),
            group_codes=group_codes,
            accept_sets=tuple(accept_sets),
            accept_codes=accept_codes,
        )

    def weight_values(self) -> np.ndarray:
        """Each entrant's weight as binary64, the number its key divides by."""
        values = np.array([float(weight) for weight in self.weights], dtype=np.float64)
        return values[self.weight_codes]

    def accepts(self, index: int) -> tuple[str, ...] | None:
        return self.accept_sets[self.accept_codes[index]]

    def entrant(self, index: int) -> Entrant:
        return Entrant(
            self.refs[index],
            self.weights[self.weight_codes[index]],
            self.groups[self.group_codes[index]],
            self.accepts(index),
        )

    def has_constraints(self) -> bool:
        """Does any entrant accept only some classes?"""
        used = np.bincount(self.accept_codes, minlength=len(self.accept_sets)) > 0
        return any(used[code] for code, accepts in enumerate(self.accept_sets) if accepts is not None)

    def members(self, group: str) -> np.ndarray:
        """The indices of the entrants of ``group``, in input order."""
        codes = [code for code, name in enumerate(self.groups) if name == group]
        return np.flatnonzero(np.isin(self.group_codes, codes)).astype(np.int64)

    def rows(self) -> list[dict]:
        """The record's rows, in input order."""
        weights, groups = self.weights, self.groups
        accepts = [None if classes is None else list(classes) for classes in self.accept_sets]
        return [
            {"ref": ref, "weight": weights[weight], "group": groups[group], "accepts": accepts[accept]}
            for ref, weight, group, accept in zip(
                self.refs, self.weight_codes.tolist(), self.group_codes.tolist(), self.accept_codes.tolist()
            )
        ]


Entrants = Sequence[Entrant] | EntrantColumns


def _require_texts(values: list[str], what: str) -> None:
    """``_require_text`` on each value, in a few C loops (a million refs in a few ms)."""
    if not values:
        return
    try:
        if min(map(len, values)) and "".join(values).encode("utf-8"):  # join refuses anything but str
            return
    except (TypeError, UnicodeEncodeError):
        pass
    for value in values:  # find the first bad one to name it
        _require_text(value, what)


@dataclass(frozen=True, eq=False)
class SlotColumns:
    """The slots as two columns: slot ``ids[i]`` is of class ``classes[i]``.

    Like ``EntrantColumns``: what the lottery takes as a list of ``Slot``
    it also takes in this form, for a hundred thousand slots without a
    hundred thousand objects.
    """

    ids: list[str]
    classes: list[str]

    def __post_init__(self) -> None:
        if len(self.ids) != len(self.classes):
            raise ValueError("each slot needs one id and one class")
        _require_texts(self.ids, "slot id")
        _require_texts(self.classes, "slot class")

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def from_slots(cls, slots: Sequence[Slot]) -> SlotColumns:
        return cls([slot.id for slot in slots], [slot.slot_class for slot in slots])

    def rows(self) -> list[dict]:
        """The record's rows, sorted by id."""
        return [{"id": slot_id, "class": slot_class} for slot_id, slot_class in sorted(zip(self.ids, self.classes))]


Slots = Sequence[Slot] | SlotColumns


def as_slot_columns(slots: Slots) -> SlotColumns:
    """The slots as columns (returned as is when they already are)."""
    return slots if isinstance(slots, SlotColumns) else SlotColumns.from_slots(slots)


def as_columns(entrants: Entrants) -> EntrantColumns:
    """The entrants as columns (returned as is when they already are)."""
    return entrants if isinstance(entrants, EntrantColumns) else EntrantColumns.from_entrants(entrants)


class Award(NamedTuple):
    """A winner and the slot they are offered."""

    ref: str
    slot_id: str


@dataclass(frozen=True)
class DrawResult:
    """The outcome of a draw: ``slot_ids[i]`` is offered to ``winner_refs[i]``.

    Winners are in selection order. Two tuples of strings rather than one
    object per winner: creating 100,000 small objects wakes the garbage
    collector, which then scans the million entrants (a quarter of a second).
    """

    draw_id: str
    winner_refs: tuple[str, ...]
    slot_ids: tuple[str, ...]
    #: Each winner's position in the entrants given to the draw (not part of the record).
    winner_indices: tuple[int, ...] = field(default=(), compare=False)

    def awards(self) -> list[Award]:
        return [Award(ref, slot_id) for ref, slot_id in zip(self.winner_refs, self.slot_ids)]


def _check_draw_id(draw_id: str) -> None:
    _require_text(draw_id, "draw_id")
    if "\x00" in draw_id:
        raise ValueError("draw_id must not contain the NUL character (it separates draw_id from ref)")


def _check_seed(seed: bytes) -> None:
    if not isinstance(seed, (bytes, bytearray)) or len(seed) != SEED_BYTES:
        raise ValueError(f"seed must be {SEED_BYTES} bytes")


def _require_unique(values: Iterable[str], message: str) -> None:
    """Raise ValueError(message with the first repeated value) if a value repeats."""
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise ValueError(message.format(value=value))
        seen.add(value)


def _check_unique_refs(entrants: Sequence[Entrant]) -> None:
    _require_unique((entrant.ref for entrant in entrants), "duplicate entrant ref {value!r}")


def _check_slots(slots: SlotColumns) -> None:
    _require_unique(slots.ids, "duplicate slot id {value!r}")


def _check_phases(phases: Sequence[Phase]) -> None:
    _require_unique((phase.group for phase in phases), "group {value!r} names two phases")


# --------------------------------------------------------------------------
# Commitment, beacon, digest, one key by hand
# --------------------------------------------------------------------------


def commitment(seed: bytes) -> str:
    """SHA-256 of the seed, in hex: published before the entry cutoff."""
    _check_seed(seed)
    return hashlib.sha256(seed).hexdigest()


def effective_seed(seed: bytes, beacon: bytes | None = None) -> bytes:
    """The bytes the keys are hashed from: the seed, or SHA-256(seed ‖ beacon).

    The beacon is raw bytes; the record writes it in hex (a drand round's
    ``randomness`` field is already that hex string).
    """
    _check_seed(seed)
    if beacon is None:
        return bytes(seed)
    if not isinstance(beacon, (bytes, bytearray)) or not beacon:
        raise ValueError("beacon must be non-empty bytes or None")
    return hashlib.sha256(bytes(seed) + bytes(beacon)).digest()


def _sorted_rows(entrants: Entrants) -> list[dict]:
    """The record's entrant rows, sorted by ref (a ref given twice is an error)."""
    if isinstance(entrants, EntrantColumns):
        _require_unique(entrants.refs, "duplicate entrant ref {value!r}")
        rows = entrants.rows()
    else:
        _check_unique_refs(entrants)
        rows = [_entrant_row(entrant) for entrant in entrants]
    return sorted(rows, key=operator.itemgetter("ref"))


def _entrant_row(entrant: Entrant) -> dict:
    return {
        "ref": entrant.ref,
        "weight": entrant.weight,
        "group": entrant.group,
        "accepts": None if entrant.accepts is None else list(entrant.accepts),
    }


def entrants_digest(entrants: Entrants) -> str:
    """SHA-256 (hex) of the canonical JSON of the entrants, sorted by ref."""
    rows = _sorted_rows(entrants)
    text = json.dumps(rows, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def entrant_key(seed_effective: bytes, draw_id: str, ref: str, weight: str | float) -> float:
    """One entrant's key, computed the slow and obvious way (for people and tests)."""
    message = seed_effective + draw_id.encode("utf-8") + b"\x00" + ref.encode("utf-8")
    top64 = int.from_bytes(hashlib.sha256(message).digest()[:8], "big")
    uniform = ((top64 >> 11) + 0.5) / 2**53
    return -math.log(uniform) / float(weight)


# --------------------------------------------------------------------------
# Keys for everyone
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyTable:
    """Per-entrant numbers of a draw, indexed like the entrants sequence.

    ``approx_keys`` come from numpy's log and may be one ulp off the exact
    keys; they only narrow down which exact keys to compute (``exact_keys``).
    """

    refs: list[str]
    weights: np.ndarray
    uniforms: np.ndarray
    approx_keys: np.ndarray

    def exact_keys(self, indices: np.ndarray) -> np.ndarray:
        """The keys of these entrants with the C library's log, as the verifier has them."""
        uniforms = self.uniforms[indices].tolist()
        logs = np.fromiter(map(math.log, uniforms), dtype=np.float64, count=len(uniforms))
        # Negation is exact and IEEE division is correctly rounded in numpy
        # as in Python, so only the log needed the C library.
        return np.negative(logs) / self.weights[indices]


def _leading_words(seed_effective: bytes, draw_id: str, refs: list[str]) -> np.ndarray:
    """First 8 bytes of SHA-256(seed ‖ draw_id ‖ 0x00 ‖ ref) per ref, as uint64."""
    prefix = hashlib.sha256(seed_effective + draw_id.encode("utf-8") + b"\x00")
    fresh_copy = prefix.copy
    digests = bytearray()
    for ref in refs:
        entrant_hash = fresh_copy()
        entrant_hash.update(ref.encode("utf-8"))
        digests += entrant_hash.digest()
    # Each digest is 32 bytes: the first big-endian 64-bit word of each is
    # every fourth word of the buffer.
    return np.frombuffer(digests, dtype=">u8")[::4].astype(np.uint64)


def _uniforms(words: np.ndarray) -> np.ndarray:
    """u = ((word >> 11) + 0.5) / 2**53 in binary64, exactly as in Python."""
    top53 = (words >> np.uint64(11)).astype(np.float64)  # exact: below 2**53
    return (top53 + 0.5) / float(2**53)


def _check_unique_words(words: np.ndarray, refs: list[str]) -> None:
    """Duplicate refs have equal hashes: look for those, then confirm on the refs.

    Sorting a million 64-bit words takes a few ms where a set of a million
    strings takes a fifth of a second; two different refs sharing 64 bits of
    SHA-256 is not an error, so equal words are confirmed on the refs.
    """
    sorted_words = np.sort(words)
    repeated = np.unique(sorted_words[1:][sorted_words[1:] == sorted_words[:-1]])
    if repeated.size == 0:
        return
    sharing = np.flatnonzero(np.isin(words, repeated)).tolist()
    seen: set[str] = set()
    for index in sharing:
        if refs[index] in seen:
            raise ValueError(f"duplicate entrant ref {refs[index]!r}")
        seen.add(refs[index])


def compute_keys(seed_effective: bytes, draw_id: str, entrants: Entrants) -> KeyTable:
    """Hash every entrant once and compute every key with numpy."""
    _check_draw_id(draw_id)
    columns = as_columns(entrants)
    refs = columns.refs
    weights = columns.weight_values()
    words = _leading_words(seed_effective, draw_id, refs)
    _check_unique_words(words, refs)
    uniforms = _uniforms(words)
    approx_keys = np.negative(np.log(uniforms)) / weights
    return KeyTable(refs=refs, weights=weights, uniforms=uniforms, approx_keys=approx_keys)


# --------------------------------------------------------------------------
# The order, lazily
# --------------------------------------------------------------------------


class DrawOrder:
    """Entrants sorted by (exact key, ref), materialised only as far as needed.

    Iterating yields entrant indices in draw order. Internally, each round
    picks a cutoff among numpy's keys (a partition, not a sort), recomputes
    with ``math.log`` the exact keys of everyone whose numpy key is within a
    relative ``EXACT_KEY_MARGIN`` of it or below, and appends those whose exact
    key is at most the cutoff, sorted. Every entrant with an exact key at or
    below the cutoff is then out, so what was appended is a true prefix of the
    exact order. ``members`` restricts the order to some entrants (a phase).
    """

    def __init__(self, table: KeyTable, members: np.ndarray | None = None, first_chunk: int = 1024):
        self._table = table
        if members is None:  # everyone: skip copying a million keys
            self._members = None
            self._member_keys = table.approx_keys
        else:
            self._members = np.asarray(members, dtype=np.int64)
            self._member_keys = table.approx_keys[self._members]
        self._emitted: list[int] = []
        self._bound = -math.inf  # every member with exact key <= bound is emitted
        self._exhausted = len(self._member_keys) == 0
        self._next_chunk = max(int(first_chunk), 1) + _CHUNK_SLACK

    def __iter__(self) -> Iterator[int]:
        position = 0
        while True:
            while position < len(self._emitted):
                yield self._emitted[position]
                position += 1
            if self._exhausted:
                return
            self._extend()

    def prefix(self, count: int) -> list[int]:
        """The first ``count`` entrant indices of the order (fewer if there are fewer)."""
        while len(self._emitted) < count and not self._exhausted:
            self._next_chunk = max(self._next_chunk, count - len(self._emitted) + _CHUNK_SLACK)
            self._extend()
        return self._emitted[:count]

    def _extend(self) -> None:
        target_rank = len(self._emitted) + self._next_chunk
        self._next_chunk *= 2
        if target_rank >= len(self._member_keys):
            cutoff = math.inf
        else:
            cutoff = float(np.partition(self._member_keys, target_rank - 1)[target_rank - 1])
        candidates = self._candidates(cutoff)
        exact = self._table.exact_keys(candidates)
        keep = (exact > self._bound) & (exact <= cutoff)
        self._emitted.extend(self._sorted(candidates[keep], exact[keep]))
        self._bound = cutoff
        if cutoff == math.inf:
            self._exhausted = True

    def _candidates(self, cutoff: float) -> np.ndarray:
        """Members whose exact key may lie in (bound, cutoff], judged by numpy's key."""
        keys = self._member_keys
        selected = keys <= cutoff * (1 + EXACT_KEY_MARGIN)
        if self._bound > -math.inf:
            selected &= keys > self._bound * (1 - EXACT_KEY_MARGIN)
        positions = np.flatnonzero(selected)
        return positions if self._members is None else self._members[positions]

    def _sorted(self, indices: np.ndarray, exact: np.ndarray) -> list[int]:
        """Indices sorted by exact key, equal keys by ref (code point order)."""
        by_key = np.argsort(exact, kind="stable")
        ordered = indices[by_key].tolist()
        keys = exact[by_key]
        tied = np.flatnonzero(keys[1:] == keys[:-1]).tolist()
        refs = self._table.refs
        for start, end in _runs(tied):
            ordered[start : end + 1] = sorted(ordered[start : end + 1], key=refs.__getitem__)
        return ordered


def _runs(tied_positions: list[int]) -> Iterator[tuple[int, int]]:
    """Spans [start, end] of equal keys from the positions p where key[p] == key[p+1]."""
    index = 0
    while index < len(tied_positions):
        start = tied_positions[index]
        while index + 1 < len(tied_positions) and tied_positions[index + 1] == tied_positions[index] + 1:
            index += 1
        yield start, tied_positions[index] + 1
        index += 1


# --------------------------------------------------------------------------
# Matching winners to slot classes
# --------------------------------------------------------------------------


def _lowest_bit(mask: int) -> int:
    return (mask & -mask).bit_length() - 1


def _bits(mask: int) -> Iterator[int]:
    while mask:
        low = mask & -mask
        yield low.bit_length() - 1
        mask ^= low


class _CountMatching:
    """The matching when every entrant accepts every slot: a counter."""

    def __init__(self, slot_count: int):
        self.total = slot_count
        self.filled = 0

    def is_full(self) -> bool:
        return self.filled >= self.total

    def try_add(self, entrant: int) -> bool:
        if self.filled >= self.total:
            return False
        self.filled += 1
        return True


class _ClassMatching:
    """Winners matched to slot classes (class c holds at most capacity[c] winners).

    Classes are bits of an int mask; an entrant's mask is the classes it
    accepts. A winner can move from class c to class d if it accepts d, so the
    classes form a graph; a new entrant fits if some class it accepts has room,
    or a chain of moves (an augmenting path) makes room. ``saturated`` is the
    union of the class sets found closed and full: full, and no winner in them
    accepts a class outside. Such a set stays closed and full as winners are
    added, so an entrant whose classes all lie in it is refused without a search.

    After the walk, ``assign`` fixes winners one by one to the lowest slot id
    they can take (see ``assign_slots``).
    """

    def __init__(self, capacities: list[int], accepted_masks: Sequence[int | None]):
        class_count = len(capacities)
        self.all_classes = (1 << class_count) - 1
        self.capacity = list(capacities)
        self.load = [0] * class_count
        self.total = sum(capacities)
        self.filled = 0
        self.slack = sum(1 << c for c in range(class_count) if capacities[c] > 0)
        self.saturated = 0
        self._accepted_masks = accepted_masks  # per entrant; None means all classes
        self._home: dict[int, int] = {}
        self._mask: dict[int, int] = {}
        self._flexible: list[set[int]] = [set() for _ in range(class_count)]
        self._movable: list[dict[int, set[int]]] = [{} for _ in range(class_count)]
        self._exits = [0] * class_count
        self._class_lists: dict[int, tuple[int, ...]] = {}

    # ---- the walk ------------------------------------------------------

    def is_full(self) -> bool:
        return self.filled >= self.total

    def try_add(self, entrant: int) -> bool:
        mask = self._mask_of(entrant)
        open_classes = mask & ~self.saturated
        if not open_classes:
            return False
        free = mask & self.slack
        if free:
            self._place(entrant, mask, _lowest_bit(free))
            return True
        path, reached = self._search(open_classes, self.saturated)
        if path is None:
            self.saturated |= reached
            return False
        self._shift_along(path)
        self._place(entrant, mask, path[0])
        return True

    def _mask_of(self, entrant: int) -> int:
        mask = self._accepted_masks[entrant]
        return self.all_classes if mask is None else mask

    # ---- the slot assignment -------------------------------------------

    def assign(self, winners: list[int], slot_ids_by_class: list[list[str]]) -> list[str]:
        """Slot ids for the winners, in their order: each the lowest id still feasible."""
        queue = _SlotQueue(slot_ids_by_class)
        closed_sets = {self.saturated} if self.saturated else set()
        slots = []
        for winner in winners:
            vacated = self._remove(winner)
            chosen = self._lowest_feasible_class(self._mask[winner], vacated, queue, closed_sets)
            self.capacity[chosen] -= 1
            self._refresh_slack(chosen)
            slots.append(queue.take(chosen))
        return slots

    def _lowest_feasible_class(
        self, mask: int, vacated: int, queue: _SlotQueue, closed_sets: set[int]
    ) -> int:
        """The accepted class with the lowest next slot id that leaves the rest matchable.

        The winner was just taken out of class ``vacated``, which has room now.
        A class is feasible if it has room or a chain of moves of the other,
        not yet fixed, winners frees one there. A closed and full set of
        classes that does not contain ``vacated`` can never free room, and stays
        closed as winners are fixed, so it is remembered and skipped: ``blocked``
        is the union of those sets, worked out once per winner.
        """
        blocked = 0
        for closed in closed_sets:
            if not (closed >> vacated) & 1:
                blocked |= closed
        for slot_class in queue.classes():
            if not (mask >> slot_class) & 1 or (blocked >> slot_class) & 1:
                continue
            if (self.slack >> slot_class) & 1:
                return slot_class
            path, reached = self._search(1 << slot_class, 0)
            if path is not None:
                self._shift_along(path)
                return slot_class
            closed_sets.add(reached)
            if not (reached >> vacated) & 1:
                blocked |= reached
        raise AssertionError("no feasible slot for a winner: the matching was invalid")

    # ---- shared machinery ----------------------------------------------

    def _classes(self, mask: int) -> tuple[int, ...]:
        classes = self._class_lists.get(mask)
        if classes is None:
            classes = self._class_lists[mask] = tuple(_bits(mask))
        return classes

    def _neighbours(self, slot_class: int) -> int:
        """Classes that some winner of this class could move to."""
        return self.all_classes if self._flexible[slot_class] else self._exits[slot_class]

    def _search(self, start: int, excluded: int) -> tuple[list[int] | None, int]:
        """Breadth-first search from the classes in ``start`` to a class with room.

        Returns the path of classes (start class first) or None and the mask of
        classes reached, which is then closed and full.
        """
        parent: dict[int, int | None] = {slot_class: None for slot_class in _bits(start)}
        visited = start | excluded
        frontier = list(parent)
        while frontier:
            following = []
            for slot_class in frontier:
                fresh = self._neighbours(slot_class) & ~visited
                if not fresh:
                    continue
                with_room = fresh & self.slack
                if with_room:
                    target = _lowest_bit(with_room)
                    parent[target] = slot_class
                    return self._path_to(target, parent), 0
                visited |= fresh
                for reached in _bits(fresh):
                    parent[reached] = slot_class
                    following.append(reached)
            frontier = following
        return None, visited & ~excluded

    @staticmethod
    def _path_to(target: int, parent: dict[int, int | None]) -> list[int]:
        path = [target]
        while parent[path[-1]] is not None:
            path.append(parent[path[-1]])
        path.reverse()
        return path

    def _shift_along(self, path: list[int]) -> None:
        """Move one winner along each edge of the path, from the end, freeing room at path[0]."""
        for step in range(len(path) - 2, -1, -1):
            source, target = path[step], path[step + 1]
            self._move(self._pick_mover(source, target), target)

    def _pick_mover(self, source: int, target: int) -> int:
        # pop() then re-add keeps picking O(1); which winner moves does not
        # change the result, which is defined by the winner set and the rule.
        pool = self._flexible[source] or self._movable[source][target]
        mover = pool.pop()
        pool.add(mover)
        return mover

    def _place(self, entrant: int, mask: int, slot_class: int) -> None:
        self._home[entrant] = slot_class
        self._mask[entrant] = mask
        self.load[slot_class] += 1
        self.filled += 1
        self._refresh_slack(slot_class)
        self._link(entrant, mask, slot_class)

    def _remove(self, entrant: int) -> int:
        slot_class = self._home.pop(entrant)
        self._unlink(entrant, self._mask[entrant], slot_class)
        self.load[slot_class] -= 1
        self.filled -= 1
        self._refresh_slack(slot_class)
        return slot_class

    def _move(self, entrant: int, target: int) -> None:
        source = self._home[entrant]
        mask = self._mask[entrant]
        self._unlink(entrant, mask, source)
        self._link(entrant, mask, target)
        self._home[entrant] = target
        self.load[source] -= 1
        self.load[target] += 1
        self._refresh_slack(source)
        self._refresh_slack(target)

    def _refresh_slack(self, slot_class: int) -> None:
        if self.load[slot_class] < self.capacity[slot_class]:
            self.slack |= 1 << slot_class
        else:
            self.slack &= ~(1 << slot_class)

    def _link(self, entrant: int, mask: int, slot_class: int) -> None:
        if mask == self.all_classes:
            self._flexible[slot_class].add(entrant)
            return
        movable = self._movable[slot_class]
        for other in self._classes(mask):
            if other == slot_class:
                continue
            holders = movable.get(other)
            if holders is None:
                holders = movable[other] = set()
                self._exits[slot_class] |= 1 << other
            holders.add(entrant)

    def _unlink(self, entrant: int, mask: int, slot_class: int) -> None:
        if mask == self.all_classes:
            self._flexible[slot_class].discard(entrant)
            return
        movable = self._movable[slot_class]
        for other in self._classes(mask):
            if other == slot_class:
                continue
            holders = movable[other]
            holders.discard(entrant)
            if not holders:
                del movable[other]
                self._exits[slot_class] &= ~(1 << other)


class _SlotQueue:
    """Each class's free slot ids in ascending order, classes ordered by their lowest free id."""

    def __init__(self, slot_ids_by_class: list[list[str]]):
        self._ids = slot_ids_by_class
        self._next = [0] * len(slot_ids_by_class)
        present = [c for c, ids in enumerate(slot_ids_by_class) if ids]
        present.sort(key=lambda c: slot_ids_by_class[c][0])
        self._order = present
        self._heads = [slot_ids_by_class[c][0] for c in present]

    def classes(self) -> list[int]:
        return self._order

    def take(self, slot_class: int) -> str:
        slot_id = self._ids[slot_class][self._next[slot_class]]
        position = bisect.bisect_left(self._heads, slot_id)
        del self._order[position], self._heads[position]
        self._next[slot_class] += 1
        if self._next[slot_class] < len(self._ids[slot_class]):
            head = self._ids[slot_class][self._next[slot_class]]
            position = bisect.bisect_left(self._heads, head)
            self._order.insert(position, slot_class)
            self._heads.insert(position, head)
        return slot_id


# --------------------------------------------------------------------------
# Winners and slots
# --------------------------------------------------------------------------


@dataclass
class Selection:
    """The winners (entrant indices, in selection order) and the matching that holds them."""

    winners: list[int]
    matching: _CountMatching | _ClassMatching  # the walk's matching, reused by assign_slots


def _slot_classes(slots: SlotColumns) -> list[str]:
    return sorted(set(slots.classes))


def _new_matching(entrants: EntrantColumns, slots: SlotColumns) -> _CountMatching | _ClassMatching:
    if not entrants.has_constraints():
        return _CountMatching(len(slots))
    class_names = _slot_classes(slots)
    index_of = {name: index for index, name in enumerate(class_names)}
    capacities = [0] * len(class_names)
    for slot_class in slots.classes:
        capacities[index_of[slot_class]] += 1
    return _ClassMatching(capacities, _AcceptedMasks(entrants, class_names))


class _AcceptedMasks:
    """Each entrant's accepted classes as a bit mask (None: every class).

    One mask per distinct constraint set; classes that no slot has are
    dropped (an entrant accepting only those never wins).
    """

    def __init__(self, entrants: EntrantColumns, class_names: list[str]):
        bit_of = {name: 1 << index for index, name in enumerate(class_names)}
        self._masks = [
            None if accepts is None else sum(bit_of.get(name, 0) for name in accepts)
            for accepts in entrants.accept_sets
        ]
        self._codes = entrants.accept_codes

    def __getitem__(self, index: int) -> int | None:
        return self._masks[self._codes[index]]


Matching = _CountMatching | _ClassMatching


def _walk(order: DrawOrder, matching: Matching, winners: list[int], won: set[int], cap: int | None) -> None:
    """Add winners from ``order`` until the cap is reached, slots run out or the order ends."""
    if matching.is_full() or cap == 0:
        return
    if isinstance(matching, _CountMatching):
        _take_first(order, matching, winners, won, cap)
        return
    added = 0
    for entrant in order:
        if entrant in won or not matching.try_add(entrant):
            continue
        winners.append(entrant)
        won.add(entrant)
        added += 1
        if matching.is_full() or (cap is not None and added >= cap):
            return


def _take_first(
    order: DrawOrder, matching: _CountMatching, winners: list[int], won: set[int], cap: int | None
) -> None:
    """The same walk when everyone fits anywhere: the first entrants not yet winners."""
    count = matching.total - matching.filled
    if cap is not None:
        count = min(count, cap)
    # At most len(won) of the first count + len(won) entrants already won.
    prefix = order.prefix(count + len(won))
    fresh = [entrant for entrant in prefix if entrant not in won][:count]
    winners.extend(fresh)
    won.update(fresh)
    matching.filled += len(fresh)


def select_winners(
    table: KeyTable,
    entrants: Entrants,
    slots: Slots,
    phases: Sequence[Phase] = (),
) -> Selection:
    """Walk the order phase by phase, then everyone left, keeping who still fits."""
    entrants = as_columns(entrants)
    slots = as_slot_columns(slots)
    matching = _new_matching(entrants, slots)
    winners: list[int] = []
    won: set[int] = set()
    for phase in phases:
        expected = min(phase.max_winners, len(slots) - len(winners))
        order = DrawOrder(table, entrants.members(phase.group), first_chunk=expected)
        _walk(order, matching, winners, won, phase.max_winners)
    order = DrawOrder(table, None, first_chunk=len(slots) - len(winners))
    _walk(order, matching, winners, won, None)
    return Selection(winners=winners, matching=matching)


def assign_slots(selection: Selection, slots: Slots) -> list[str]:
    """The slot id of each winner, in selection order.

    Rule: taking the winners in selection order, each gets the lowest slot id
    (in Unicode code point order) among the slots still free of the classes
    it accepts, such that every later winner can still get a slot it accepts.
    When no one has constraints this is simply "the n-th winner gets the n-th
    lowest slot id".
    """
    slots = as_slot_columns(slots)
    if isinstance(selection.matching, _CountMatching):
        return sorted(slots.ids)[: len(selection.winners)]
    class_names = _slot_classes(slots)
    index_of = {name: index for index, name in enumerate(class_names)}
    ids_by_class: list[list[str]] = [[] for _ in class_names]
    for slot_id, slot_class in zip(slots.ids, slots.classes):
        ids_by_class[index_of[slot_class]].append(slot_id)
    for ids in ids_by_class:
        ids.sort()
    return selection.matching.assign(selection.winners, ids_by_class)


def _validate(seed: bytes, draw_id: str, slots: SlotColumns, phases: Sequence[Phase]) -> None:
    _check_seed(seed)
    _check_draw_id(draw_id)
    _check_slots(slots)
    _check_phases(phases)


def run_draw(
    seed: bytes,
    draw_id: str,
    entrants: Entrants,
    slots: Slots,
    phases: Sequence[Phase] = (),
    beacon: bytes | None = None,
) -> DrawResult:
    """The whole draw: keys, order, winners, slots. Same inputs, same result."""
    slots = as_slot_columns(slots)
    _validate(seed, draw_id, slots, phases)
    entrants = as_columns(entrants)
    table = compute_keys(effective_seed(seed, beacon), draw_id, entrants)
    selection = select_winners(table, entrants, slots, phases)
    slot_ids = assign_slots(selection, slots)
    winner_refs = tuple([table.refs[winner] for winner in selection.winners])
    return DrawResult(
        draw_id=draw_id, winner_refs=winner_refs, slot_ids=tuple(slot_ids), winner_indices=tuple(selection.winners)
    )


def order_prefix(
    seed: bytes,
    draw_id: str,
    entrants: Entrants,
    count: int,
    beacon: bytes | None = None,
) -> list[tuple[str, float]]:
    """The first ``count`` (ref, key) pairs of the draw order (e.g. for standby offers)."""
    _check_seed(seed)
    table = compute_keys(effective_seed(seed, beacon), draw_id, entrants)
    indices = DrawOrder(table, None, first_chunk=count).prefix(count)
    keys = table.exact_keys(np.array(indices, dtype=np.int64)).tolist()
    return [(table.refs[index], key) for index, key in zip(indices, keys)]


# --------------------------------------------------------------------------
# The public record
# --------------------------------------------------------------------------


def public_record(
    draw_id: str,
    seed: bytes,
    entrants: Entrants,
    slots: Slots,
    phases: Sequence[Phase] = (),
    result: DrawResult | None = None,
    *,
    beacon: bytes | None = None,
    reveal_seed: bool = True,
) -> dict:
    """The public record of a draw, as a JSON-ready dict (see docs/lottery.md).

    Before the draw, pass ``result=None`` and ``reveal_seed=False``: the record
    then carries the commitment and the entrants but ``seed`` and ``winners``
    are null.
    """
    slots = as_slot_columns(slots)
    _validate(seed, draw_id, slots, phases)
    return {
        "spec": SPEC,
        "draw_id": draw_id,
        "commitment": commitment(seed),
        "seed": bytes(seed).hex() if reveal_seed else None,
        "beacon": None if beacon is None else bytes(beacon).hex(),
        "entrants_digest": entrants_digest(entrants),
        "entrants": _sorted_rows(entrants),
        "slots": slots.rows(),
        "phases": [{"group": phase.group, "max_winners": phase.max_winners} for phase in phases],
        "winners": None
        if result is None
        else [{"ref": ref, "slot": slot_id} for ref, slot_id in zip(result.winner_refs, result.slot_ids)],
    }


def entrants_from_rows(rows: Iterable[dict]) -> list[Entrant]:
    """Entrants back from the record's rows (for replaying a published draw)."""
    return [
        Entrant(
            ref=row["ref"],
            weight=row["weight"],
            group=row["group"],
            accepts=None if row["accepts"] is None else tuple(row["accepts"]),
        )
        for row in rows
    ]
