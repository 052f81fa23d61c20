"""Write the charts and the CSV of a simulator scenario into this folder (docs/simulator.md shows them).

    python docs/simulator/make_charts.py                      # ain-2019, seed 1
    python docs/simulator/make_charts.py --scenario default --seed 2

The charts are those of the staff page (web/charts.py), as standalone SVG files.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

from queue_service import simulator  # noqa: E402
from web import charts  # noqa: E402

RULE_NAMES = {"first_come": "First come, first served", "lottery": "Uniform lottery",
              "policy": "The service's policy"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="ain-2019", choices=sorted(simulator.SCENARIOS))
    parser.add_argument("--seed", type=int, default=1)
    arguments = parser.parse_args()
    result = simulator.simulate(simulator.SCENARIOS[arguments.scenario], arguments.seed)
    name = arguments.scenario
    for rule, series in result.weekly.items():
        labels = [f"W{week + 1}" for week in range(len(series["waiting"]))]
        given = [served + resold for served, resold in zip(series["served"], series["resold"])]
        drawn = charts.chart(labels, bars=given, line=series["waiting"])
        title = f"{name}: {RULE_NAMES[rule]}"
        (HERE / f"{name}-{rule}.svg").write_text(
            charts.standalone_svg(drawn, title, "appointments given a week", "people waiting"), encoding="utf-8")
    resold = result.weekly["first_come"]["resold"]
    drawn = charts.chart([f"W{week + 1}" for week in range(len(resold))], bars=resold)
    (HERE / f"{name}-resold.svg").write_text(
        charts.standalone_svg(drawn, f"{name}: first come, first served", "appointments resold a week"),
        encoding="utf-8")
    (HERE / f"{name}.csv").write_text(simulator.to_csv(result), encoding="utf-8")
    for row in simulator.table(result):
        print("  ".join(cell.rjust(12) if index else cell.ljust(26) for index, cell in enumerate(row)))


if __name__ == "__main__":
    main()
