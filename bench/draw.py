"""Benchmark of the draw on a synthetic pool, next to numpy's own weighted sampling.

Why this script exists
----------------------
The draw must stay fast enough to run a million entrants inside one job
(targets in docs/lottery.md), and the per-entrant hashing that makes it
verifiable has a price. This script measures each step of
``queue_service.draws.lottery`` on a reproducible synthetic pool and, in the same
run, numpy's ``Generator.choice(N, K, replace=False, p=w/w.sum())`` on the same
weights, so the price is stated as a ratio. With ``--record-out`` it also
writes the public record, to time ``python -m queue_service.verify``.

    python bench/draw.py --entrants 1000000 --slots 100000
    python bench/draw.py --entrants 1000000 --slots 100000 --constrained
    python bench/draw.py --entrants 100000 --slots 10000 --constrained --record-out /tmp/r.json

The constrained pool: 4 sites x 10 half-days = 40 slot classes; half the
entrants accept a random 1-4 sites x 2-10 half-days (every pair of the two
choices), 5 % are "urgent" with a phase capped at 10 % of the slots, weights
are whole numbers from 1 to 6. Slots go round-robin over the 40 classes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import statistics
import sys
import time
from pathlib import Path

# Run from a clone without installing: put the repository root on the path.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from queue_service.draws import lottery  # noqa: E402

SITES = ("bourg", "gex", "nantua", "belley")
HALF_DAYS = tuple(f"{day}-{half}" for day in ("mon", "tue", "wed", "thu", "fri") for half in ("am", "pm"))
SLOT_CLASSES = tuple(f"{site}-{half_day}" for site in SITES for half_day in HALF_DAYS)
URGENT_SHARE = 0.05
URGENT_QUOTA = 0.10
DEFAULT_SEED = hashlib.sha256(b"fairdraw benchmark").hexdigest()


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entrants", type=int, required=True, help="pool size N")
    parser.add_argument("--slots", type=int, required=True, help="slots K")
    parser.add_argument("--constrained", action="store_true", help="sites, half-days and an urgent phase")
    parser.add_argument("--record-out", type=Path, help="write the public record (JSON) here")
    parser.add_argument("--seed", default=DEFAULT_SEED, help="the draw seed, 64 hex digits")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure; the median is shown")
    return parser.parse_args(argv)


def random_accepts(chooser: random.Random) -> tuple[str, ...]:
    sites = chooser.sample(SITES, chooser.randint(1, 4))
    half_days = chooser.sample(HALF_DAYS, chooser.randint(2, 10))
    return tuple(f"{site}-{half_day}" for site in sites for half_day in half_days)


def build_pool(entrant_count: int, slot_count: int, constrained: bool, seed: bytes):
    """The pool as columns, the form in which the service keeps a frozen draw's inputs."""
    entrants, slots, phases = build_rows(entrant_count, slot_count, constrained, seed)
    return lottery.as_columns(entrants), lottery.as_slot_columns(slots), phases


def build_rows(entrant_count: int, slot_count: int, constrained: bool, seed: bytes):
    rng = np.random.default_rng(int.from_bytes(seed[:8], "big"))
    weights = rng.integers(1, 7, size=entrant_count).tolist()
    refs = [f"01R-{number:07X}" for number in rng.permutation(entrant_count).tolist()]
    if not constrained:
        entrants = [lottery.Entrant(ref, str(weight)) for ref, weight in zip(refs, weights)]
        slots = [lottery.Slot(f"s-{number:07d}", "any") for number in range(slot_count)]
        return entrants, slots, []
    chooser = random.Random(seed)
    constrained_flags = (rng.random(entrant_count) < 0.5).tolist()
    urgent_flags = (rng.random(entrant_count) < URGENT_SHARE).tolist()
    entrants = [
        lottery.Entrant(
            ref,
            str(weight),
            group="urgent" if urgent else None,
            accepts=random_accepts(chooser) if limited else None,
        )
        for ref, weight, limited, urgent in zip(refs, weights, constrained_flags, urgent_flags)
    ]
    slots = [
        lottery.Slot(f"s-{number:07d}", SLOT_CLASSES[number % len(SLOT_CLASSES)])
        for number in range(slot_count)
    ]
    phases = [lottery.Phase("urgent", int(slot_count * URGENT_QUOTA))]
    return entrants, slots, phases


def time_steps(seed: bytes, draw_id: str, entrants, slots, phases) -> dict[str, float]:
    """One draw, step by step, through the public functions run_draw chains."""
    figures = {}
    start = time.perf_counter()
    table = lottery.compute_keys(lottery.effective_seed(seed), draw_id, entrants)
    figures["keys"] = time.perf_counter() - start
    mark = time.perf_counter()
    lottery.DrawOrder(table, None, first_chunk=len(slots)).prefix(len(slots))
    figures["order (top-K, alone)"] = time.perf_counter() - mark
    mark = time.perf_counter()
    selection = lottery.select_winners(table, entrants, slots, phases)
    figures["winners (walk, incl. order)"] = time.perf_counter() - mark
    mark = time.perf_counter()
    lottery.assign_slots(selection, slots)
    figures["slot assignment"] = time.perf_counter() - mark
    figures["keys + winners + slots"] = (
        figures["keys"] + figures["winners (walk, incl. order)"] + figures["slot assignment"]
    )
    return figures


def time_run_draw(seed: bytes, draw_id: str, entrants, slots, phases):
    start = time.perf_counter()
    result = lottery.run_draw(seed, draw_id, entrants, slots, phases)
    return time.perf_counter() - start, result


def time_numpy_choice(entrants, slot_count: int) -> float:
    weights = entrants.weight_values()
    generator = np.random.default_rng(12345)
    start = time.perf_counter()
    generator.choice(len(weights), slot_count, replace=False, p=weights / weights.sum())
    return time.perf_counter() - start


def median_figures(runs: list[dict[str, float]]) -> dict[str, float]:
    return {name: statistics.median(run[name] for run in runs) for name in runs[0]}


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    seed = bytes.fromhex(arguments.seed)
    draw_id = "01-renewal-bench"
    mode = "constrained" if arguments.constrained else "unconstrained"
    print(f"pool: {arguments.entrants:,} entrants, {arguments.slots:,} slots, {mode}")

    start = time.perf_counter()
    entrants, slots, phases = build_pool(arguments.entrants, arguments.slots, arguments.constrained, seed)
    print(f"  pool built in {time.perf_counter() - start:.2f} s (not part of the draw)")

    runs = [time_steps(seed, draw_id, entrants, slots, phases) for _ in range(arguments.repeat)]
    for name, seconds in median_figures(runs).items():
        print(f"  {name:<30} {seconds:8.3f} s")

    draw_times = []
    for _ in range(arguments.repeat):
        seconds, result = time_run_draw(seed, draw_id, entrants, slots, phases)
        draw_times.append(seconds)
    draw_time = statistics.median(draw_times)
    print(f"  {'run_draw, end to end':<30} {draw_time:8.3f} s  (runs: {', '.join(f'{t:.3f}' for t in draw_times)})")
    print(f"  winners: {len(result.winner_refs):,} of {len(slots):,} slots")
    if phases:
        urgent = {entrants.refs[index] for index in entrants.members("urgent").tolist()}
        print(f"  urgent winners: {sum(ref in urgent for ref in result.winner_refs):,}")

    numpy_times = [time_numpy_choice(entrants, arguments.slots) for _ in range(arguments.repeat)]
    numpy_time = statistics.median(numpy_times)
    print(f"  numpy Generator.choice(p=w)     {numpy_time:8.3f} s")
    print(f"  ratio run_draw / numpy          {draw_time / numpy_time:8.1f}x")

    if arguments.record_out:
        start = time.perf_counter()
        record = lottery.public_record(draw_id, seed, entrants, slots, phases, result)
        with open(arguments.record_out, "w", encoding="utf-8") as output:
            json.dump(record, output, ensure_ascii=False)
        print(f"  record written to {arguments.record_out} in {time.perf_counter() - start:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
