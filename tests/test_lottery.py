"""Tests of the draw (queue_service.draws.lottery) against the specification.

Expected values are computed here by other means: literal numbers worked out
once with hashlib/struct/math, pure-Python sorts, a brute-force bipartite
matching over individual slots, exact enumeration of small cases, and a
chi-square test over many draws.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from queue_service.draws import lottery
from queue_service.draws.lottery import Entrant, Phase, Slot

SEED = bytes(range(32))
DRAW_ID = "01-renewal-20270104T1000"


def python_order(seed: bytes, draw_id: str, entrants: list[Entrant]) -> list[str]:
    """The order by the book: every key in pure Python, sorted by (key, ref)."""
    keyed = [(lottery.entrant_key(seed, draw_id, e.ref, e.weight), e.ref) for e in entrants]
    return [ref for _, ref in sorted(keyed)]


def pool(size: int, weights=("1",), prefix: str = "01R-") -> list[Entrant]:
    return [Entrant(f"{prefix}{number:06d}", weights[number % len(weights)]) for number in range(size)]


def plain_slots(count: int, slot_class: str = "any") -> list[Slot]:
    return [Slot(f"s-{number:05d}", slot_class) for number in range(count)]


# --------------------------------------------------------------------------
# Keys, by hand
# --------------------------------------------------------------------------

# Worked out once with hashlib, struct and math (see test_literal_values_by_hand).
HAND_KEYS = [
    # ref, weight, first 8 bytes of the hash, u, key
    ("01R-7K3Q9X", "1", "e0f20444c4f980c7", 0.8786928813833352, 0.12931983781811124),
    ("01R-7K3Q9X", "2.5", "e0f20444c4f980c7", 0.8786928813833352, 0.051727935127244495),
    ("01R-AAAAAA", "3", "8578196c61c138ff", 0.5213638200382364, 0.2171023899735228),
    ("Ré-ünï", "1", "7cc49c3da80dd115", 0.48737503533634846, 0.7187213591759704),
]


@pytest.mark.parametrize("ref, weight, head, uniform, key", HAND_KEYS)
def test_literal_values_by_hand(ref, weight, head, uniform, key):
    digest = hashlib.sha256(SEED + DRAW_ID.encode("utf-8") + b"\x00" + ref.encode("utf-8")).digest()
    assert digest[:8].hex() == head
    (word,) = struct.unpack(">Q", digest[:8])
    assert ((word >> 11) + 0.5) / 2**53 == uniform
    assert -math.log(uniform) / float(weight) == key


@pytest.mark.parametrize("ref, weight, head, uniform, key", HAND_KEYS)
def test_entrant_key_matches_hand_value(ref, weight, head, uniform, key):
    assert lottery.entrant_key(SEED, DRAW_ID, ref, weight) == key


def test_compute_keys_matches_hand_values():
    entrants = [Entrant("01R-7K3Q9X", "2.5"), Entrant("01R-AAAAAA", "3"), Entrant("Ré-ünï", "1")]
    table = lottery.compute_keys(SEED, DRAW_ID, entrants)
    assert table.uniforms.tolist() == [0.8786928813833352, 0.5213638200382364, 0.48737503533634846]
    exact = table.exact_keys(np.arange(3)).tolist()
    assert exact == [0.051727935127244495, 0.2171023899735228, 0.7187213591759704]


def test_uniform_extremes_follow_binary64_rounding():
    words = np.array([0, 2**11 - 1, 2**64 - 1, 2**63], dtype=np.uint64)
    in_python = [((word >> 11) + 0.5) / 2**53 for word in [0, 2**11 - 1, 2**64 - 1, 2**63]]
    assert lottery._uniforms(words).tolist() == in_python
    assert in_python[0] == 2.0**-54  # smallest u: never 0, so ln is finite
    assert in_python[2] == 1.0  # (2**53 - 1) + 0.5 rounds to even: u = 1, key = -0.0


# --------------------------------------------------------------------------
# The order
# --------------------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(
    seed=st.binary(min_size=32, max_size=32),
    size=st.integers(0, 400),
    first_chunk=st.integers(1, 50),
)
def test_lazy_order_is_the_exact_order(seed, size, first_chunk):
    entrants = pool(size, weights=("1", "2", "3.5", "0.25"))
    table = lottery.compute_keys(seed, DRAW_ID, entrants)
    order = lottery.DrawOrder(table, None, first_chunk=first_chunk)
    assert [entrants[index].ref for index in order] == python_order(seed, DRAW_ID, entrants)


def test_order_restricted_to_members_keeps_their_relative_order():
    entrants = pool(300, weights=("1", "4"))
    table = lottery.compute_keys(SEED, DRAW_ID, entrants)
    members = np.arange(0, 300, 7)
    restricted = [entrants[index].ref for index in lottery.DrawOrder(table, members, first_chunk=3)]
    everyone = python_order(SEED, DRAW_ID, entrants)
    chosen = {entrants[index].ref for index in members.tolist()}
    assert restricted == [ref for ref in everyone if ref in chosen]


def test_order_uses_exact_keys_when_numpy_keys_are_one_ulp_off():
    # Two entrants whose exact keys are a few ulps apart; numpy's keys are
    # given swapped, as a SIMD log an ulp off could make them.
    larger_u = 0.7
    smaller_u = math.nextafter(math.nextafter(larger_u, 0.0), 0.0)
    uniforms = np.array([smaller_u, larger_u])
    exact = [-math.log(u) for u in uniforms.tolist()]
    assert exact[0] > exact[1]  # entrant 0 comes second in the exact order
    assert exact[0] - exact[1] < 1e-15
    table = lottery.KeyTable(
        refs=["a", "b"],
        weights=np.ones(2),
        uniforms=uniforms,
        approx_keys=np.array(sorted(exact)),  # numpy "says" entrant 0 is first
    )
    assert lottery.DrawOrder(table, None, first_chunk=1).prefix(1) == [1]
    assert list(lottery.DrawOrder(table, None, first_chunk=1)) == [1, 0]


def test_equal_keys_are_ordered_by_ref():
    table = lottery.KeyTable(
        refs=["b", "c", "a", "d"],
        weights=np.array([1.0, 1.0, 1.0, 2.0]),
        uniforms=np.array([0.5, 0.5, 0.5, 0.25]),  # d: -ln(.25)/2 == -ln(.5)
        approx_keys=np.array([math.log(2)] * 4),
    )
    assert [table.refs[index] for index in lottery.DrawOrder(table)] == ["a", "b", "c", "d"]


# --------------------------------------------------------------------------
# Winners without constraints
# --------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    seed=st.binary(min_size=32, max_size=32),
    size=st.integers(0, 120),
    slot_count=st.integers(0, 150),
)
def test_unconstrained_winners_are_the_first_k_of_the_order(seed, size, slot_count):
    entrants = pool(size, weights=("1", "2", "5"))
    slots = plain_slots(slot_count)
    result = lottery.run_draw(seed, DRAW_ID, entrants, slots)
    expected = python_order(seed, DRAW_ID, entrants)[:slot_count]
    assert list(result.winner_refs) == expected
    # The n-th winner gets the n-th lowest slot id.
    assert list(result.slot_ids) == sorted(slot.id for slot in slots)[: len(expected)]


def test_order_prefix_gives_refs_and_keys():
    entrants = pool(50, weights=("1", "3"))
    prefix = lottery.order_prefix(SEED, DRAW_ID, entrants, 5)
    assert [ref for ref, _ in prefix] == python_order(SEED, DRAW_ID, entrants)[:5]
    weight_of = {entrant.ref: entrant.weight for entrant in entrants}
    for ref, key in prefix:
        assert key == lottery.entrant_key(SEED, DRAW_ID, ref, weight_of[ref])


# --------------------------------------------------------------------------
# Winners with constraints and phases, against brute force
# --------------------------------------------------------------------------


def max_matching(accept_sets: list[frozenset | None], slot_classes: list[str]) -> int:
    """Size of a maximum matching entrants x individual slots (Kuhn's algorithm)."""
    holder = [None] * len(slot_classes)

    def fits(entrant: int, visited: set[int]) -> bool:
        accepted = accept_sets[entrant]
        for slot, slot_class in enumerate(slot_classes):
            if slot in visited or (accepted is not None and slot_class not in accepted):
                continue
            visited.add(slot)
            if holder[slot] is None or fits(holder[slot], visited):
                holder[slot] = entrant
                return True
        return False

    return sum(fits(entrant, set()) for entrant in range(len(accept_sets)))


def accepts_set(entrant: Entrant) -> frozenset | None:
    return None if entrant.accepts is None else frozenset(entrant.accepts)


def brute_force_winners(order: list[Entrant], slots: list[Slot], phases: list[Phase]) -> list[str]:
    """Phase by phase, add an entrant if winners + entrant can all hold a slot."""
    classes = [slot.slot_class for slot in slots]
    winners: list[Entrant] = []
    stages = [(phase.group, phase.max_winners) for phase in phases] + [(None, None)]
    for group, cap in stages:
        added = 0
        for entrant in order:
            if len(winners) == len(slots) or (cap is not None and added >= cap):
                break
            if entrant in winners or (group is not None and entrant.group != group):
                continue
            trial = [accepts_set(e) for e in winners + [entrant]]
            if max_matching(trial, classes) == len(trial):
                winners.append(entrant)
                added += 1
    return [entrant.ref for entrant in winners]


def brute_force_slots(winners: list[Entrant], slots: list[Slot]) -> list[str]:
    """In order, each winner takes the lowest slot id that leaves the rest matchable."""
    free = sorted(slots, key=lambda slot: slot.id)
    chosen = []
    for position, winner in enumerate(winners):
        accepted = accepts_set(winner)
        later = [accepts_set(e) for e in winners[position + 1 :]]
        for slot in free:
            if accepted is not None and slot.slot_class not in accepted:
                continue
            rest = [s.slot_class for s in free if s is not slot]
            if max_matching(later, rest) == len(later):
                chosen.append(slot.id)
                free.remove(slot)
                break
        else:
            raise AssertionError("brute force found no slot")
    return chosen


CLASSES = ["bourg-am", "bourg-pm", "gex-am", "gex-pm"]


@st.composite
def small_draws(draw):
    class_count = draw(st.integers(1, 4))
    classes = CLASSES[:class_count]
    accepts = st.one_of(
        st.none(),
        st.lists(st.sampled_from(classes + ["unknown-class"]), min_size=1, max_size=3).map(tuple),
    )
    entrant_count = draw(st.integers(0, 9))
    entrants = [
        Entrant(
            f"r{number}",
            draw(st.sampled_from(["1", "2", "3.5"])),
            group=draw(st.sampled_from([None, "urgent", "other"])),
            accepts=draw(accepts),
        )
        for number in range(entrant_count)
    ]
    slot_count = draw(st.integers(0, 6))
    slots = [Slot(f"s{number}", draw(st.sampled_from(classes))) for number in range(slot_count)]
    phases = draw(
        st.sampled_from(["none", "urgent", "both"]).map(
            lambda kind: {
                "none": [],
                "urgent": [Phase("urgent", 2)],
                "both": [Phase("other", 1), Phase("urgent", 3)],
            }[kind]
        )
    )
    seed = draw(st.binary(min_size=32, max_size=32))
    return seed, entrants, slots, phases


@settings(max_examples=300, deadline=None)
@given(small_draws())
def test_constrained_winners_and_slots_match_brute_force(case):
    seed, entrants, slots, phases = case
    by_ref = {entrant.ref: entrant for entrant in entrants}
    order = [by_ref[ref] for ref in python_order(seed, DRAW_ID, entrants)]
    expected_winners = brute_force_winners(order, slots, phases)
    result = lottery.run_draw(seed, DRAW_ID, entrants, slots, phases)
    assert list(result.winner_refs) == expected_winners
    expected_slots = brute_force_slots([by_ref[ref] for ref in expected_winners], slots)
    assert list(result.slot_ids) == expected_slots


@settings(max_examples=150, deadline=None)
@given(small_draws())
def test_without_phases_an_entrant_wins_iff_it_grows_the_maximum_matching(case):
    seed, entrants, slots, _ = case
    by_ref = {entrant.ref: entrant for entrant in entrants}
    order = [by_ref[ref] for ref in python_order(seed, DRAW_ID, entrants)]
    classes = [slot.slot_class for slot in slots]
    sizes = [max_matching([accepts_set(e) for e in order[:length]], classes) for length in range(len(order) + 1)]
    expected = [order[i].ref for i in range(len(order)) if sizes[i + 1] > sizes[i]]
    assert list(lottery.run_draw(seed, DRAW_ID, entrants, slots).winner_refs) == expected


def test_urgent_phase_takes_its_quota_first():
    entrants = [Entrant(f"n{number:03d}", "1") for number in range(40)]
    entrants += [Entrant(f"u{number:03d}", "1", group="urgent") for number in range(10)]
    slots = plain_slots(12)
    result = lottery.run_draw(SEED, DRAW_ID, entrants, slots, [Phase("urgent", 4)])
    order = python_order(SEED, DRAW_ID, entrants)
    urgent_first = [ref for ref in order if ref.startswith("u")][:4]
    assert list(result.winner_refs[:4]) == urgent_first
    rest = [ref for ref in order if ref not in urgent_first][:8]
    assert list(result.winner_refs[4:]) == rest
    # Urgent winners were selected first, so they hold the lowest slot ids.
    assert list(result.slot_ids[:4]) == ["s-00000", "s-00001", "s-00002", "s-00003"]


def test_phase_cap_larger_than_group_and_empty_group():
    entrants = [Entrant(f"n{number}", "1") for number in range(5)] + [Entrant("u0", "1", group="urgent")]
    result = lottery.run_draw(SEED, DRAW_ID, entrants, plain_slots(3), [Phase("urgent", 10), Phase("nobody", 2)])
    assert result.winner_refs[0] == "u0"
    assert len(result.winner_refs) == 3


def test_slots_that_nobody_accepts_stay_empty_and_the_walk_ends():
    entrants = [Entrant(f"r{number}", "1", accepts=("gex-am",)) for number in range(6)]
    slots = [Slot("s1", "gex-am"), Slot("s2", "gex-am"), Slot("s3", "bourg-pm")]
    result = lottery.run_draw(SEED, DRAW_ID, entrants, slots)
    assert len(result.winner_refs) == 2
    assert sorted(result.slot_ids) == ["s1", "s2"]


def test_a_flexible_winner_is_moved_to_make_room():
    # "flex" wins first and could take the only gex slot; the rule moves it
    # (in the matching) so that "picky", who accepts only gex, also wins.
    slots = [Slot("a-1", "gex-am"), Slot("b-1", "bourg-am")]
    flex = Entrant("flex", "1")
    picky = Entrant("picky", "1", accepts=("gex-am",))
    order = python_order(SEED, DRAW_ID, [flex, picky])
    result = lottery.run_draw(SEED, DRAW_ID, [flex, picky], slots)
    assert set(result.winner_refs) == {"flex", "picky"}
    assigned = dict(zip(result.winner_refs, result.slot_ids))
    assert assigned["picky"] == "a-1"
    assert assigned["flex"] == "b-1"
    assert list(result.winner_refs) == order


# --------------------------------------------------------------------------
# Invariance and validation
# --------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(small_draws(), st.randoms(use_true_random=False))
def test_shuffling_inputs_never_changes_the_result(case, shuffler):
    seed, entrants, slots, phases = case
    before = lottery.run_draw(seed, DRAW_ID, entrants, slots, phases)
    entrants, slots = list(entrants), list(slots)
    shuffler.shuffle(entrants)
    shuffler.shuffle(slots)
    after = lottery.run_draw(seed, DRAW_ID, entrants, slots, phases)
    assert after == before


def test_adding_an_entrant_does_not_change_the_others_keys():
    entrants = pool(30, weights=("1", "2"))
    with_one_more = entrants + [Entrant("01R-FAKE", "6")]
    order = python_order(SEED, DRAW_ID, entrants)
    assert [ref for ref in python_order(SEED, DRAW_ID, with_one_more) if ref != "01R-FAKE"] == order


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: Entrant("r", "0"), "greater than zero"),
        (lambda: Entrant("r", "-1"), "positive decimal"),
        (lambda: Entrant("r", "inf"), "positive decimal"),
        (lambda: Entrant("r", "nan"), "positive decimal"),
        (lambda: Entrant("r", float("inf")), "positive decimal"),
        (lambda: Entrant("r", "1e999"), "finite"),
        (lambda: Entrant("r", " 1"), "positive decimal"),
        (lambda: Entrant("", "1"), "non-empty"),
        (lambda: Entrant("r", "1", accepts=()), "empty"),
        (lambda: Entrant("r", "1", accepts="gex-am"), "not a string"),
        (lambda: Slot("", "gex-am"), "slot id"),
        (lambda: Phase("urgent", -1), ">= 0"),
    ],
)
def test_bad_inputs_are_refused_with_a_clear_message(make, message):
    with pytest.raises(ValueError, match=message):
        make()


@settings(max_examples=150, deadline=None)
@given(small_draws())
def test_columns_give_the_same_draw_record_and_digest_as_objects(case):
    """The service keeps frozen entrants and slots as columns: the draw must not see the difference."""
    seed, entrants, slots, phases = case
    entrant_columns, slot_columns = lottery.as_columns(entrants), lottery.as_slot_columns(slots)
    by_objects = lottery.run_draw(seed, DRAW_ID, entrants, slots, phases)
    by_columns = lottery.run_draw(seed, DRAW_ID, entrant_columns, slot_columns, phases)
    assert by_columns == by_objects
    assert [entrants[index].ref for index in by_columns.winner_indices] == list(by_columns.winner_refs)
    assert lottery.entrants_digest(entrant_columns) == lottery.entrants_digest(entrants)
    assert lottery.public_record(DRAW_ID, seed, entrant_columns, slot_columns, phases, by_columns) == (
        lottery.public_record(DRAW_ID, seed, entrants, slots, phases, by_objects)
    )
    assert [entrant_columns.entrant(index) for index in range(len(entrants))] == entrants


def columns(**changes) -> lottery.EntrantColumns:
    fields = dict(
        refs=["r1", "r2"], weights=("1", "2.5"), weight_codes=np.array([0, 1]), groups=(None, "urgent"),
        group_codes=np.array([0, 1]), accept_sets=(None, ("a", "b")), accept_codes=np.array([1, 0]),
    )
    return lottery.EntrantColumns(**{**fields, **changes})


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: columns(refs=["r1", ""]), "entrant ref must be a non-empty string"),
        (lambda: columns(refs=["r1", 2]), "entrant ref must be a non-empty string"),
        (lambda: columns(refs=["r1", "\udc80"]), "not valid Unicode"),
        (lambda: columns(weights=("1", "02.50x")), "positive decimal"),
        (lambda: columns(weights=("1", 2.5)), "canonical decimal string"),
        (lambda: columns(weight_codes=np.array([0, 2])), "weight_codes must index its table"),
        (lambda: columns(weight_codes=np.array([0])), "one integer per entrant"),
        (lambda: columns(group_codes=np.array([0.0, 1.0])), "one integer per entrant"),
        (lambda: columns(accept_codes=np.array([-1, 0])), "accept_codes must index its table"),
        (lambda: columns(accept_sets=(None, ("b", "a"))), "sorted tuple without repeats"),
        (lambda: columns(groups=(None, "")), "non-empty"),
        (lambda: lottery.SlotColumns(["s1"], []), "one id and one class"),
        (lambda: lottery.SlotColumns(["s1", ""], ["a", "a"]), "slot id must be a non-empty string"),
    ],
)
def test_bad_columns_are_refused_with_a_clear_message(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_duplicates_in_columns_are_refused():
    with pytest.raises(ValueError, match="duplicate entrant ref 'r1'"):
        lottery.run_draw(SEED, DRAW_ID, columns(refs=["r1", "r1"]), plain_slots(1))
    with pytest.raises(ValueError, match="duplicate slot id 's'"):
        lottery.run_draw(SEED, DRAW_ID, columns(), lottery.SlotColumns(["s", "s"], ["a", "b"]))
    with pytest.raises(ValueError, match="duplicate entrant ref 'r1'"):
        lottery.entrants_digest(columns(refs=["r1", "r1"]))


def test_weights_are_written_canonically():
    assert Entrant("r", 2).weight == "2"
    assert Entrant("r", 2.0).weight == "2"
    assert Entrant("r", 2.5).weight == "2.5"
    assert Entrant("r", "2.50").weight == "2.50"  # strings are kept as written
    assert Entrant("r", "2.50").weight_value == 2.5
    assert Entrant("r", "1", accepts=["b", "a", "b"]).accepts == ("a", "b")


def test_duplicates_and_bad_draw_inputs_are_refused():
    with pytest.raises(ValueError, match="duplicate entrant ref 'r1'"):
        lottery.run_draw(SEED, DRAW_ID, [Entrant("r1", "1"), Entrant("r2", "1"), Entrant("r1", "2")], plain_slots(1))
    with pytest.raises(ValueError, match="duplicate slot id 's'"):
        lottery.run_draw(SEED, DRAW_ID, [Entrant("r1", "1")], [Slot("s", "a"), Slot("s", "b")])
    with pytest.raises(ValueError, match="seed must be 32 bytes"):
        lottery.run_draw(b"short", DRAW_ID, [Entrant("r1", "1")], plain_slots(1))
    with pytest.raises(ValueError, match="NUL"):
        lottery.run_draw(SEED, "bad\x00id", [Entrant("r1", "1")], plain_slots(1))
    with pytest.raises(ValueError, match="two phases"):
        lottery.run_draw(SEED, DRAW_ID, [Entrant("r1", "1")], plain_slots(1), [Phase("u", 1), Phase("u", 2)])
    with pytest.raises(ValueError, match="duplicate entrant ref"):
        lottery.entrants_digest([Entrant("r1", "1"), Entrant("r1", "1")])


# --------------------------------------------------------------------------
# Commitment, beacon, digest, record
# --------------------------------------------------------------------------


def test_commitment_and_beacon():
    assert lottery.commitment(SEED) == hashlib.sha256(SEED).hexdigest()
    assert lottery.effective_seed(SEED) == SEED
    beacon = bytes.fromhex("ab" * 32)
    assert lottery.effective_seed(SEED, beacon) == hashlib.sha256(SEED + beacon).digest()
    entrants = pool(20)
    plain = lottery.run_draw(SEED, DRAW_ID, entrants, plain_slots(5))
    mixed = lottery.run_draw(SEED, DRAW_ID, entrants, plain_slots(5), beacon=beacon)
    assert list(mixed.winner_refs) == python_order(hashlib.sha256(SEED + beacon).digest(), DRAW_ID, entrants)[:5]
    assert plain.winner_refs != mixed.winner_refs


def test_entrants_digest_is_the_hash_of_the_canonical_json():
    entrants = [
        Entrant("b-2", "2", group="urgent", accepts=("gex-am", "bourg-pm")),
        Entrant("a-é", "1"),
    ]
    canonical = (
        '[{"accepts":null,"group":null,"ref":"a-é","weight":"1"},'
        '{"accepts":["bourg-pm","gex-am"],"group":"urgent","ref":"b-2","weight":"2"}]'
    )
    assert lottery.entrants_digest(entrants) == hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    assert lottery.entrants_digest(list(reversed(entrants))) == lottery.entrants_digest(entrants)


def test_public_record_has_the_documented_fields():
    entrants = [Entrant("01R-B", "2", group="urgent", accepts=("gex-am",)), Entrant("01R-A", "1")]
    slots = [Slot("s-2", "gex-am"), Slot("s-1", "bourg-am")]
    phases = [Phase("urgent", 1)]
    result = lottery.run_draw(SEED, DRAW_ID, entrants, slots, phases)
    record = lottery.public_record(DRAW_ID, SEED, entrants, slots, phases, result)
    assert list(record) == [
        "spec", "draw_id", "commitment", "seed", "beacon", "entrants_digest",
        "entrants", "slots", "phases", "winners",
    ]
    assert record["spec"] == "fairdraw/v1"
    assert record["seed"] == SEED.hex()
    assert record["commitment"] == hashlib.sha256(SEED).hexdigest()
    assert record["beacon"] is None
    assert record["entrants"][0] == {"ref": "01R-A", "weight": "1", "group": None, "accepts": None}
    assert record["slots"] == [{"id": "s-1", "class": "bourg-am"}, {"id": "s-2", "class": "gex-am"}]
    assert record["phases"] == [{"group": "urgent", "max_winners": 1}]
    assert record["winners"][0] == {"ref": "01R-B", "slot": "s-2"}
    json.dumps(record)  # JSON-ready as it is
    sealed = lottery.public_record(DRAW_ID, SEED, entrants, slots, phases, None, reveal_seed=False)
    assert sealed["seed"] is None and sealed["winners"] is None


def test_rerunning_a_draw_gives_the_same_result():
    entrants = pool(200, weights=("1", "2", "3"))
    slots = plain_slots(20, "gex-am") + [Slot("z-1", "bourg-am")]
    assert lottery.run_draw(SEED, DRAW_ID, entrants, slots) == lottery.run_draw(SEED, DRAW_ID, entrants, slots)


# --------------------------------------------------------------------------
# Fairness
# --------------------------------------------------------------------------


def chi_square_upper_tail(statistic: float, degrees: int) -> float:
    """P(X >= statistic) for X ~ chi-square(degrees), Wilson-Hilferty approximation."""
    scale = 2.0 / (9.0 * degrees)
    z = ((statistic / degrees) ** (1.0 / 3.0) - (1.0 - scale)) / math.sqrt(scale)
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def test_chi_square_tail_approximation_is_sane():
    assert chi_square_upper_tail(999, 999) == pytest.approx(0.5, abs=0.01)
    # 99.9th percentile of chi-square(999) is about 1143.9.
    assert chi_square_upper_tail(1143.9, 999) == pytest.approx(0.001, rel=0.1)


@pytest.mark.slow
def test_equal_weights_every_entrant_wins_equally_often():
    entrant_count, slot_count, draws = 1000, 100, 10_000
    entrants = pool(entrant_count)
    index_of = {entrant.ref: index for index, entrant in enumerate(entrants)}
    slots = plain_slots(slot_count)
    wins = np.zeros(entrant_count)
    for draw in range(draws):
        seed = hashlib.sha256(b"fairness %d" % draw).digest()
        result = lottery.run_draw(seed, f"fair-{draw}", entrants, slots)
        wins[[index_of[ref] for ref in result.winner_refs]] += 1
    share = slot_count / entrant_count
    # Each draw picks exactly k without replacement: the counts have variance
    # draws*p*(1-p) and covariance -draws*p*(1-p)/(N-1), a scaled projection of
    # rank N-1. Dividing by draws*p*(1-p)*N/(N-1) gives a chi-square with N-1
    # degrees of freedom.
    expected = draws * share
    statistic = float(np.sum((wins - expected) ** 2)) / (
        draws * share * (1 - share) * entrant_count / (entrant_count - 1)
    )
    assert chi_square_upper_tail(statistic, entrant_count - 1) >= 0.001
    assert wins.sum() == draws * slot_count


def exact_inclusion(weights: list[float], slot_count: int) -> list[float]:
    """Inclusion probabilities of successive sampling, by enumerating ordered draws."""
    chances = [0.0] * len(weights)
    for sequence in itertools.permutations(range(len(weights)), slot_count):
        probability, left = 1.0, sum(weights)
        for index in sequence:
            probability *= weights[index] / left
            left -= weights[index]
        for index in sequence:
            chances[index] += probability
    return chances


def test_unequal_weights_match_exact_inclusion_probabilities():
    weights = ["1", "2", "3", "4", "5"]
    entrants = [Entrant(f"r{index}", weight) for index, weight in enumerate(weights)]
    slots = plain_slots(2)
    draws = 20_000
    wins = dict.fromkeys((entrant.ref for entrant in entrants), 0)
    for draw in range(draws):
        for ref in lottery.run_draw(hashlib.sha256(b"weights %d" % draw).digest(), "w", entrants, slots).winner_refs:
            wins[ref] += 1
    exact = exact_inclusion([float(weight) for weight in weights], 2)
    assert sum(exact) == pytest.approx(2.0)
    for entrant, probability in zip(entrants, exact):
        frequency = wins[entrant.ref] / draws
        spread = math.sqrt(probability * (1 - probability) / draws)
        assert abs(frequency - probability) < 4.5 * spread, (entrant.ref, frequency, probability)


def test_numpy_and_libm_logs_may_differ_but_draws_do_not():
    # On machines with SIMD logs numpy is sometimes one ulp off math.log; the
    # draw must agree with the pure-Python order regardless.
    uniforms = np.random.default_rng(7).random(200_000) * 0.999 + 0.0005
    numpy_logs = np.log(uniforms)
    libm_logs = np.array([math.log(u) for u in uniforms.tolist()])
    assert np.all(np.abs(numpy_logs - libm_logs) <= np.spacing(np.abs(libm_logs)) * 2)
    entrants = pool(5000, weights=("1", "1.5", "2"))
    chosen = lottery.run_draw(SEED, DRAW_ID, entrants, plain_slots(400)).winner_refs
    assert list(chosen) == python_order(SEED, DRAW_ID, entrants)[:400]
