"""The policy simulator (queue_service/simulator): hand-computed first come, first served, the lottery
arms against the status page's estimator, the calibrated ain-2019 scenario, determinism, the CLI."""

from __future__ import annotations

import csv
import datetime
import io
import math

import numpy as np
import pytest
from click.testing import CliRunner

from queue_service import draws as draw_rules
from queue_service import simulator
from queue_service.draws import lottery
from queue_service.draws.schedules import DrawSchedule
from queue_service.simulator import arms
from queue_service.simulator.scenario import Population, Scenario, accept_choices, generate
from worker.cli import main as qs


def toy(scenario: Scenario, arrival, buyer=None, patience=None, accept_code=None, slot_half_day=(0, 1)):
    """Three people (or as many as `arrival`), two slots released together at hour 30."""
    size = len(arrival)
    return Population(
        arrival=np.array(arrival, dtype=np.float64),
        renewal=np.zeros(size, dtype=bool),
        expiry=np.full(size, np.inf),
        channel=np.zeros(size, dtype=np.int8),
        patience=np.array(patience if patience is not None else [np.inf] * size, dtype=np.float64),
        no_show=np.zeros(size, dtype=bool),
        buyer=np.array(buyer if buyer is not None else [False] * size),
        accept_code=np.array(accept_code if accept_code is not None else [0] * size, dtype=np.int32),
        accept_choices=accept_choices(scenario),
        slot_release=np.full(len(slot_half_day), 30.0),
        slot_site=np.zeros(len(slot_half_day), dtype=np.int32),
        slot_half_day=np.array(slot_half_day, dtype=np.int32),
    )


TOY = Scenario(weeks=1, slots_per_week=2, release_hours=(30.0,), sites=("a",), human_attempts_per_day=24.0,
               reseller_accounts=1, cap_per_email=1)


def test_first_come_by_hand_a_reseller_books_first_then_the_first_to_look():
    """Person 0 pays a reseller, whose bot books at the release (hour 30); the other slot goes to
    whichever of persons 1 and 2 looks first; the third tries until the end of the week (hour 168).
    At one attempt an hour: person 0 tried 30 times, the loser 168 - arrival times."""
    population = toy(TOY, arrival=[0.0, 10.0, 20.0], buyer=[True, False, False])
    outcome = arms.first_come(population, TOY, np.random.default_rng(3))
    assert outcome.served_at[0] == 30.0 and outcome.via_reseller.tolist() == [True, False, False]
    winner = 1 if not math.isnan(outcome.served_at[1]) else 2
    loser = 3 - winner
    assert math.isnan(outcome.served_at[loser]) and outcome.served_at[winner] > 30.0
    assert outcome.attempts[0] == pytest.approx(30.0)
    assert outcome.attempts[loser] == pytest.approx(168.0 - population.arrival[loser])
    assert outcome.attempts[winner] == pytest.approx(outcome.served_at[winner] - population.arrival[winner])
    assert outcome.slots_unfilled == 0
    found = simulator.figures(outcome, population, TOY)
    attempts = outcome.attempts.sum()
    assert found["failed_attempts_share"] == pytest.approx(1 - 1 / attempts)  # one booking by a person
    assert found["resold_slots_share"] == 0.5
    assert found["served_share"] == pytest.approx(2 / 3)
    assert found["still_waiting_share"] == pytest.approx(1 / 3)


def test_first_come_by_hand_the_cap_gives_up_and_constraints():
    """No reseller booking (cap 0). Person 2 gives up at hour 25, before the release; person 1 can
    attend only mornings (choice 2 of one site: 'a' and mornings), so the afternoon slot (half-day 1,
    mon-pm) goes to person 0 or stays free. With person 0 also morning-only, it stays free."""
    scenario = TOY.with_values(cap_per_email=0)
    mornings = len(accept_choices(scenario)) - 1
    population = toy(scenario, arrival=[0.0, 10.0, 20.0], buyer=[True, True, True],
                     patience=[np.inf, np.inf, 5.0], accept_code=[mornings, mornings, 0])
    outcome = arms.first_come(population, scenario, np.random.default_rng(5))
    assert not outcome.via_reseller.any()
    assert math.isnan(outcome.served_at[2]) and outcome.attempts[2] == pytest.approx(5.0)
    assert sum(not math.isnan(moment) for moment in outcome.served_at[:2]) == 1  # one morning slot
    assert outcome.slots_unfilled == 1
    found = simulator.figures(outcome, population, scenario)
    assert found["gave_up_share"] == pytest.approx(1 / 3)
    assert found["unfilled_slots_share"] == 0.5


def test_first_come_by_hand_no_booking_after_giving_up():
    """Persons 0 and 1 wait for the release at hour 30 (two slots, no reseller: cap 0); person 1
    gives up a second after it (patience 30 h + 1 s), before any next look at one attempt an hour
    (the chance of a look within that second is 1 - e^(-1/3600), about 0.03 %). Person 0 books;
    person 1's slot stays free, and their attempts are the 30 hours they tried."""
    scenario = TOY.with_values(cap_per_email=0)
    population = toy(scenario, arrival=[0.0, 0.0], patience=[np.inf, 30.0 + 1 / 3600])
    outcome = arms.first_come(population, scenario, np.random.default_rng(7))
    assert not math.isnan(outcome.served_at[0]) and math.isnan(outcome.served_at[1])
    assert outcome.attempts[1] == pytest.approx(30.0 + 1 / 3600)
    assert outcome.slots_unfilled == 1


SMALL = simulator.SCENARIOS["ain-2019"].with_values(weeks=20, arrivals_per_week=400.0, slots_per_week=380)


def test_same_seed_same_result_and_another_seed_another():
    first = simulator.simulate(SMALL, 7)
    again = simulator.simulate(SMALL, 7)
    other = simulator.simulate(SMALL, 8)
    assert simulator.to_csv(first) == simulator.to_csv(again)
    assert first.figures != other.figures


def test_the_ain_2019_scenario_reproduces_three_quarters_of_failed_attempts():
    low, high = simulator.AIN_2019_TARGET
    assert (low, high) == (0.70, 0.80)
    for seed in (1, 2):
        result = simulator.simulate(simulator.SCENARIOS["ain-2019"], seed, rules=("first_come",))
        assert low <= result.figures["first_come"]["failed_attempts_share"] <= high
    assert simulator.SCENARIOS["ain-2019"].assumptions[0].startswith("ASSUMPTIONS")


def test_the_lottery_arms_win_as_often_as_the_status_page_estimates():
    """Per group of entrants of one weight (urgent or not), summed over every draw of a run: the
    winners the service's draw gave against the chances chances.project_chances gave them."""
    scenario = SMALL.with_values(constrained_share=0.0, weeks=30, aging=1.0, urgency_share=0.2,
                                 urgency_window_days=120)
    population = generate(scenario, np.random.default_rng(11))
    checked, urgent_checked = 0, 0
    for rule, policy in (("lottery", arms.uniform_policy()), ("policy", arms.service_policy(scenario))):
        outcome = arms.lottery_arm(rule, policy, population, scenario, np.random.default_rng(12))
        buckets: dict[tuple, list[float]] = {}
        for _, weight, urgent, count, winners, predicted in outcome.chance_rows:
            bucket = buckets.setdefault((weight, urgent), [0.0, 0.0, 0.0])
            bucket[0] += winners
            bucket[1] += count * predicted
            bucket[2] += count * predicted * (1 - predicted)
        for (weight, urgent), (observed, expected, variance) in buckets.items():
            if variance < 25:
                continue
            checked += 1
            urgent_checked += urgent
            assert abs(observed - expected) <= 4 * math.sqrt(variance) + 0.01 * expected, (rule, weight, urgent)
        assert any(urgent for _, urgent in buckets) == (rule == "policy")
    assert checked >= 8 and urgent_checked >= 3


def test_the_simulated_draw_takes_the_same_inputs_as_the_service_freeze():
    """draw_inputs (columns, each rule once per distinct value) against frozen_draw (the service's
    freeze, a dict a person): the same weights, groups, constraints, phases and winners."""
    scenario = SMALL.with_values(constrained_share=0.5)
    population = generate(scenario, np.random.default_rng(2))
    people = np.arange(300)
    draws_lost = np.random.default_rng(3).integers(0, 6, population.size)
    slots = np.arange(40)
    policy = arms.service_policy(scenario)
    scheduled_at = datetime.datetime(2019, 3, 4, 9, 0, tzinfo=datetime.timezone.utc)
    refs = [f"R{index:07d}" for index in range(population.size)]
    population.expiry[:300] = np.where(np.arange(300) % 3 == 0, 24.0 * (60 + np.arange(300) % 40), np.inf)
    inputs = arms.draw_inputs(population, scenario, policy, people, draws_lost, slots, scheduled_at, refs)
    rows = []
    for person in people.tolist():
        expiry = population.expiry[person]
        sites, half_days = population.accept_choices[population.accept_code[person]]
        rows.append({"id": refs[person], "ref": refs[person], "draws_lost": int(draws_lost[person]),
                     "permit_expiry": (scenario.start + datetime.timedelta(days=int(expiry // 24))).isoformat()
                     if np.isfinite(expiry) else None,
                     "sites": sites, "half_days": half_days, "channel": "online", "joined_at": 0.0})
    schedule = DrawSchedule("sim", "sim", arms.TIMEZONE, "0 10 * * 1", policy=policy, created_at=scheduled_at)
    frozen = draw_rules.frozen_draw(rows, schedule, scheduled_at, inputs.slots)
    simulated = [inputs.entrants.entrant(index) for index in range(len(people))]
    served = [frozen.entrants.entrant(index) for index in range(len(people))]
    assert simulated == served
    assert any(entrant.group == draw_rules.URGENT_GROUP for entrant in served)
    assert any(entrant.accepts for entrant in served)
    assert inputs.phases == frozen.phases != []
    seed = bytes(32)
    assert (lottery.run_draw(seed, "sim-sim-20190304T1000", inputs.entrants, inputs.slots, inputs.phases)
            == lottery.run_draw(seed, "sim-sim-20190304T1000", frozen.entrants, frozen.slots, frozen.phases))


def test_every_metric_is_reported_for_every_rule_and_the_csv_says_how_it_was_made():
    result = simulator.simulate(SMALL, 3)
    rows = list(csv.reader(io.StringIO(simulator.to_csv(result))))
    assert rows[0] == ["metric", *simulator.RULES]
    by_metric = {row[0]: row[1:] for row in rows[1:]}
    assert set(simulator.METRICS) <= set(by_metric)
    assert by_metric["failed_attempts_share"][1:] == ["", ""]  # no attempt to fail in a lottery
    assert float(by_metric["resold_slots_share"][0]) > 0 and by_metric["resold_slots_share"][1:] == ["0", "0"]
    assert by_metric["seed"] == ["3"] * 3 and by_metric["scenario"] == ["ain-2019"] * 3
    assert float(by_metric["next_draw_chance"][2]) > 0
    datetime.date.fromisoformat(by_metric["date_50_percent"][2])


def test_apply_values_reads_text_and_names_what_is_wrong():
    base = simulator.SCENARIOS["ain-2019"]
    changed, problems = simulator.apply_values(base, {"slots_per_week": "1200", "aging": "0,25"})
    assert problems == {} and changed.slots_per_week == 1200 and changed.aging == 0.25
    changed, problems = simulator.apply_values(base, {"slots_per_week": "12.5", "aging": "lots", "x": "1",
                                                      "urgency_share": "2"})
    assert changed is None
    assert set(problems) == {"slots_per_week", "aging", "x", "urgency_share"}
    with pytest.raises(ValueError, match="draw_every_weeks"):
        base.with_values(draw_every_weeks=0)


def test_progress_is_reported_from_zero_to_one():
    seen = []
    simulator.simulate(SMALL.with_values(weeks=6), 1, progress=lambda fraction, rule: seen.append((fraction, rule)))
    fractions = [fraction for fraction, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert {rule for _, rule in seen} == set(simulator.RULES)


def test_qs_simulate_prints_the_rules_side_by_side_and_writes_the_csv(tmp_path):
    path = tmp_path / "figures.csv"
    answer = CliRunner().invoke(qs, ["simulate", "--scenario", "ain-2019", "--weeks", "10", "--seed", "4",
                                     "--set", "arrivals_per_week=300", "--set", "slots_per_week=280",
                                     "--csv", str(path), "--assumptions"])
    assert answer.exit_code == 0, answer.output
    lines = answer.output.splitlines()
    assert "ASSUMPTIONS" in lines[0]
    header = next(line for line in lines if line.startswith("metric"))
    assert header.split() == ["metric", *simulator.RULES]
    failed = next(line for line in lines if line.startswith("failed_attempts_share")).split()
    assert failed[1:3] != ["—", "—"] and failed[2] == "%" and failed[3:] == ["—", "—"]
    rows = list(csv.reader(path.open(encoding="utf-8")))
    assert rows[0] == ["metric", *simulator.RULES]
    assert ["param:weeks", "10", "10", "10"] in rows


def test_qs_simulate_refuses_a_bad_value_with_its_name():
    answer = CliRunner().invoke(qs, ["simulate", "--set", "slots_per_week=many", "--set", "nothing"])
    assert answer.exit_code == 2
    assert "nothing" in answer.output
    answer = CliRunner().invoke(qs, ["simulate", "--scenario", "nowhere"])
    assert answer.exit_code == 2 and "unknown scenario" in answer.output
    answer = CliRunner().invoke(qs, ["simulate", "--set", "aging=11"])
    assert answer.exit_code == 2 and "aging must be from 0 to 10" in answer.output


def test_a_scenario_too_large_to_run_is_refused_with_its_parameter():
    base = simulator.SCENARIOS["default"]
    changed, problems = simulator.apply_values(base, {"weeks": "260", "arrivals_per_week": "50000"})
    assert changed is None and "arrivals_per_week" in problems
    answer = CliRunner().invoke(qs, ["simulate", "--weeks", "260", "--set", "slots_per_week=90000"])
    assert answer.exit_code == 2 and "slots_per_week gives more than 2,000,000 slots" in answer.output


def test_slots_trickled_out_every_working_hour():
    scenario = SMALL.with_values(release="trickle", weeks=4)
    population = generate(scenario, np.random.default_rng(1))
    assert len(population.slot_release) == 4 * scenario.slots_per_week
    assert len(np.unique(population.slot_release)) == 4 * 50  # Monday to Friday, 8:00 to 18:00
    result = simulator.simulate(scenario, 1)
    assert result.figures["first_come"]["failed_attempts_share"] > 0
