"""Tests of the public verifier (queue_service.verify).

The verifier is run as people will run it, ``python -m queue_service.verify``
in a subprocess, on records written by ``lottery.py``: a true record passes,
and each kind of tampering makes it fail with a line that says what is wrong.
It is also run alone, copied out of the project with site-packages disabled,
to prove it needs nothing but the standard library; and it must agree with
``lottery.py`` on random draws.
"""

from __future__ import annotations

import ast
import copy
import hashlib
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from queue_service import verify
from queue_service.draws import lottery
from queue_service.draws.lottery import Entrant, Phase, Slot

REPO = Path(__file__).resolve().parent.parent
SEED = hashlib.sha256(b"verify tests").digest()
DRAW_ID = "01-renewal-20270104T1000"
SITES = ("bourg-am", "bourg-pm", "gex-am", "gex-pm")


def sample_draw(entrant_count: int = 120, slot_count: int = 30, beacon: bytes | None = None) -> dict:
    """A constrained draw with an urgent phase, as a record (JSON round-tripped)."""
    entrants = []
    for number in range(entrant_count):
        accepts = None if number % 3 else (SITES[number % 4], SITES[(number // 4) % 4])
        group = "urgent" if number % 10 == 0 else None
        entrants.append(Entrant(f"01R-{number:05d}", str(1 + number % 5), group=group, accepts=accepts))
    slots = [Slot(f"s-{number:04d}", SITES[number % 4]) for number in range(slot_count)]
    phases = [Phase("urgent", 5)]
    result = lottery.run_draw(SEED, DRAW_ID, entrants, slots, phases, beacon=beacon)
    record = lottery.public_record(DRAW_ID, SEED, entrants, slots, phases, result, beacon=beacon)
    return json.loads(json.dumps(record))


def run_verifier(tmp_path: Path, record, *extra: str) -> subprocess.CompletedProcess:
    path = tmp_path / "record.json"
    if isinstance(record, (bytes, str)):
        path.write_bytes(record.encode() if isinstance(record, str) else record)
    else:
        path.write_text(json.dumps(record, ensure_ascii=False), encoding="utf-8")
    return subprocess.run(
        [sys.executable, "-m", "queue_service.verify", str(path), *extra],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


def mismatch_lines(completed: subprocess.CompletedProcess) -> list[str]:
    return [line for line in completed.stdout.splitlines() if line.startswith("MISMATCH")]


def test_a_true_record_passes(tmp_path):
    completed = run_verifier(tmp_path, sample_draw())
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert completed.stdout.startswith("OK 01-renewal-20270104T1000")
    assert mismatch_lines(completed) == []


def test_a_record_with_a_beacon_passes(tmp_path):
    record = sample_draw(beacon=bytes.fromhex("5e" * 32))
    assert record["beacon"] == "5e" * 32
    assert run_verifier(tmp_path, record).returncode == 0
    record["beacon"] = "5f" * 32  # another beacon, another draw
    completed = run_verifier(tmp_path, record)
    assert completed.returncode == 1
    assert any("winner" in line for line in mismatch_lines(completed))


def timed(record: dict, announced: str, cutoff: str, **more) -> dict:
    """The record with the service's times (optional fields of fairdraw/v1)."""
    return record | {"announced_at": announced, "cutoff_at": cutoff} | more


def test_the_records_times_are_shown_and_must_say_the_commitment_came_first(tmp_path):
    first = timed(sample_draw(), "2027-01-03T09:00:00+00:00", "2027-01-03T09:01:00+00:00", announced_late=False)
    completed = run_verifier(tmp_path, first)
    assert completed.returncode == 0, completed.stdout
    assert "the commitment came first" in completed.stdout
    # Entries closed at the announcement itself (no delay, or caught up after downtime): still first.
    moved = timed(sample_draw(), "2027-01-04T11:00:00+00:00", "2027-01-04T11:00:00+00:00",
                  scheduled_cutoff_at="2027-01-04T09:00:00+00:00")
    completed = run_verifier(tmp_path, moved)
    assert completed.returncode == 0 and "its schedule closed the entries at 2027-01-04T09:00:00+00:00" in completed.stdout
    # A record that says the commitment came after the entries closed, and not that it was late.
    contradicted = timed(sample_draw(), "2027-01-04T09:00:05+00:00", "2027-01-04T08:00:00+00:00", announced_late=False)
    completed = run_verifier(tmp_path, contradicted)
    assert completed.returncode == 1
    assert any(line.startswith("MISMATCH timing:") for line in mismatch_lines(completed))


def test_an_old_record_announced_late_still_verifies_with_a_note(tmp_path):
    late = timed(sample_draw(), "2027-01-04T09:00:05+00:00", "2027-01-04T08:00:00+00:00", announced_late=True)
    completed = run_verifier(tmp_path, late)
    assert completed.returncode == 0, completed.stdout
    assert "note: announced late" in completed.stdout and mismatch_lines(completed) == []


def test_changing_one_entrant_fails(tmp_path):
    record = sample_draw()
    record["entrants"][7]["ref"] = "01R-99999"
    completed = run_verifier(tmp_path, record)
    assert completed.returncode == 1
    assert any(line.startswith("MISMATCH entrants_digest") for line in mismatch_lines(completed))


def test_changing_one_weight_fails(tmp_path):
    record = sample_draw()
    record["entrants"][3]["weight"] = "6"
    completed = run_verifier(tmp_path, record)
    assert completed.returncode == 1
    assert any(line.startswith("MISMATCH entrants_digest") for line in mismatch_lines(completed))


def test_changing_a_weight_and_the_digest_along_still_fails_on_the_winners(tmp_path):
    # An operator who edits a weight and recomputes the digest changes the
    # order: the published winners then no longer follow from the record.
    record = sample_draw()
    winners = {winner["ref"] for winner in record["winners"]}
    loser = next(
        entrant for entrant in record["entrants"] if entrant["ref"] not in winners and entrant["accepts"] is None
    )
    loser["weight"] = "1e9"
    record["entrants_digest"] = hashlib.sha256(verify.canonical_entrants_json(record["entrants"])).hexdigest()
    completed = run_verifier(tmp_path, record)
    assert completed.returncode == 1
    assert any(f"missing winner: {loser['ref']}" in line for line in mismatch_lines(completed))


def test_changing_one_winner_fails(tmp_path):
    record = sample_draw()
    winners = {winner["ref"] for winner in record["winners"]}
    outsider = next(entrant["ref"] for entrant in record["entrants"] if entrant["ref"] not in winners)
    replaced = record["winners"][4]["ref"]
    record["winners"][4]["ref"] = outsider
    lines = mismatch_lines(completed := run_verifier(tmp_path, record))
    assert completed.returncode == 1
    assert any(line.startswith(f"MISMATCH winners: missing winner: {replaced}") for line in lines)
    assert any(line.startswith(f"MISMATCH winners: unexpected winner: {outsider}") for line in lines)


def test_swapping_two_winners_slots_fails(tmp_path):
    record = sample_draw()
    first, second = record["winners"][0], record["winners"][1]
    first["slot"], second["slot"] = second["slot"], first["slot"]
    completed = run_verifier(tmp_path, record)
    assert completed.returncode == 1
    assert any(line.startswith(f"MISMATCH slots: slot of {first['ref']}") for line in mismatch_lines(completed))


def test_reordering_the_winners_fails(tmp_path):
    record = sample_draw()
    record["winners"][0], record["winners"][1] = record["winners"][1], record["winners"][0]
    completed = run_verifier(tmp_path, record)
    assert completed.returncode == 1
    assert any("selection order" in line for line in mismatch_lines(completed))


def test_changing_one_byte_of_the_seed_fails(tmp_path):
    record = sample_draw()
    seed = bytearray.fromhex(record["seed"])
    seed[17] ^= 0x01
    record["seed"] = seed.hex()
    completed = run_verifier(tmp_path, record)
    assert completed.returncode == 1
    lines = mismatch_lines(completed)
    assert any(line.startswith("MISMATCH commitment") for line in lines)
    assert any(line.startswith("MISMATCH winners") for line in lines)
    assert len(lines) <= 4 * (verify.LINES_PER_KIND + 1)  # long lists are cut short


def test_unrevealed_seed_cannot_pass(tmp_path):
    record = sample_draw()
    record["seed"] = None
    completed = run_verifier(tmp_path, record)
    assert completed.returncode == 1
    assert any("seed is null" in line for line in mismatch_lines(completed))


def test_invalid_inputs_are_reported(tmp_path):
    record = sample_draw()
    record["entrants"][1]["ref"] = record["entrants"][0]["ref"]
    record["entrants"][2]["weight"] = "0"
    record["slots"][1]["id"] = record["slots"][0]["id"]
    lines = mismatch_lines(run_verifier(tmp_path, record))
    assert any("duplicate entrant ref" in line for line in lines)
    assert any("weight '0' is not a positive finite decimal number" in line for line in lines)
    assert any("duplicate slot id" in line for line in lines)


@pytest.mark.parametrize(
    "content",
    [
        "not json at all",
        "[]",
        json.dumps({"spec": "fairdraw/v0"}),
        json.dumps({"spec": "fairdraw/v1", "draw_id": "x"}),
    ],
)
def test_unreadable_input_exits_with_2(tmp_path, content):
    completed = run_verifier(tmp_path, content)
    assert completed.returncode == 2
    assert completed.stderr.startswith("UNREADABLE")


def test_a_record_without_winners_field_is_unreadable(tmp_path):
    record = sample_draw()
    del record["winners"]
    assert run_verifier(tmp_path, record).returncode == 2


def test_near_ties_in_the_decisive_ranks_are_noted():
    keys = [0.5, 0.25, math.nextafter(0.25, 1.0), 0.75]
    refs = ["d", "a", "b", "c"]
    order = sorted(range(4), key=lambda index: (keys[index], refs[index]))
    report = verify.Report()
    report.rank = {refs[index]: rank for rank, index in enumerate(order, start=1)}
    verify.note_near_ties(order, keys, refs, winners=[order[0]], report=report)
    assert len(report.notes) == 1 and "a and b (ranks 1, 2)" in report.notes[0]
    report.notes.clear()
    keys[2] = 0.3
    verify.note_near_ties(order, keys, refs, winners=[order[0]], report=report)
    assert report.notes == []


def test_missing_file_exits_with_2(tmp_path):
    completed = subprocess.run(
        [sys.executable, "-m", "queue_service.verify", str(tmp_path / "nowhere.json")],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )
    assert completed.returncode == 2


def test_ref_option_prints_key_and_rank(tmp_path):
    record = sample_draw()
    entrants = lottery.entrants_from_rows(record["entrants"])
    order = lottery.order_prefix(SEED, DRAW_ID, entrants, len(entrants))
    ref, key = order[9]
    completed = run_verifier(tmp_path, record, "--ref", ref)
    assert completed.returncode == 0
    line = completed.stdout.splitlines()[-1]
    assert line.startswith(f"ref {ref}: key {key!r}, rank 10 of {len(entrants)}")
    assert lottery.entrant_key(SEED, DRAW_ID, ref, next(e.weight for e in entrants if e.ref == ref)) == key
    unknown = run_verifier(tmp_path, record, "--ref", "nobody")
    assert unknown.returncode == 1


def test_verifier_imports_only_the_standard_library():
    tree = ast.parse((REPO / "queue_service" / "verify.py").read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "no relative imports"
            imported.add(node.module.split(".")[0])
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}


def test_verifier_runs_alone_without_site_packages(tmp_path):
    alone = tmp_path / "verify.py"
    shutil.copy(REPO / "queue_service" / "verify.py", alone)
    record_path = tmp_path / "record.json"
    record_path.write_text(json.dumps(sample_draw()), encoding="utf-8")
    # -I: ignore the environment and the current directory; -S: no site-packages.
    completed = subprocess.run(
        [sys.executable, "-I", "-S", str(alone), str(record_path)],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr


@st.composite
def random_draws(draw):
    classes = SITES[: draw(st.integers(1, 4))]
    entrant_count = draw(st.integers(0, 40))
    entrants = [
        Entrant(
            f"r{number:03d}",
            draw(st.sampled_from(["1", "2", "0.5", "3.25"])),
            group=draw(st.sampled_from([None, None, "urgent"])),
            accepts=draw(st.one_of(st.none(), st.lists(st.sampled_from(classes), min_size=1, max_size=3).map(tuple))),
        )
        for number in range(entrant_count)
    ]
    slots = [Slot(f"s{number:03d}", draw(st.sampled_from(classes))) for number in range(draw(st.integers(0, 25)))]
    phases = [Phase("urgent", draw(st.integers(0, 6)))] if draw(st.booleans()) else []
    seed = draw(st.binary(min_size=32, max_size=32))
    beacon = draw(st.one_of(st.none(), st.binary(min_size=1, max_size=32)))
    return seed, entrants, slots, phases, beacon


def published(record: dict) -> dict:
    """The record as a reader gets it: through JSON text."""
    return json.loads(json.dumps(record, ensure_ascii=False))


@settings(max_examples=200, deadline=None)
@given(random_draws())
def test_verifier_agrees_with_lottery_on_random_records(case):
    seed, entrants, slots, phases, beacon = case
    result = lottery.run_draw(seed, DRAW_ID, entrants, slots, phases, beacon=beacon)
    record = published(lottery.public_record(DRAW_ID, seed, entrants, slots, phases, result, beacon=beacon))
    verify.check_shape(record)
    report = verify.check_record(record)
    assert report.problems == []
    assert report.expected_winners == list(zip(result.winner_refs, result.slot_ids))


@settings(max_examples=50, deadline=None)
@given(random_draws(), st.data())
def test_verifier_rejects_any_other_winner_list(case, data):
    seed, entrants, slots, phases, beacon = case
    result = lottery.run_draw(seed, DRAW_ID, entrants, slots, phases, beacon=beacon)
    record = published(lottery.public_record(DRAW_ID, seed, entrants, slots, phases, result, beacon=beacon))
    tampered = copy.deepcopy(record)
    if tampered["winners"]:
        dropped = data.draw(st.integers(0, len(tampered["winners"]) - 1))
        del tampered["winners"][dropped]
    else:
        tampered["winners"].append({"ref": "someone", "slot": "anything"})
    assert not verify.check_record(tampered).ok


@pytest.mark.slow
def test_a_100k_entrant_record_verifies(tmp_path):
    completed = subprocess.run(
        [sys.executable, str(REPO / "bench" / "draw.py"), "--entrants", "100000", "--slots", "10000",
         "--constrained", "--repeat", "1", "--record-out", str(tmp_path / "big.json")],
        cwd=REPO, capture_output=True, text=True, timeout=280,
    )
    assert completed.returncode == 0, completed.stderr
    verified = subprocess.run(
        [sys.executable, "-m", "queue_service.verify", str(tmp_path / "big.json")],
        cwd=REPO, capture_output=True, text=True, timeout=280,
    )
    assert verified.returncode == 0, verified.stdout
