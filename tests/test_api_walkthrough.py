"""docs/api.md's walkthrough, run for real: the prefecture's script of docs/examples (standard
library only) publishes next month's slots from a CSV file, sets a weekly schedule, runs a draw
and saves the outcomes of its offers, against the app served on loopback, with a worker running
the draw's job. The independent client of issue 18: it knows only the API."""

from __future__ import annotations

import csv
import datetime
import importlib.util
import subprocess
import sys
import time
from pathlib import Path

from helpers import register_people
from rq import SimpleWorker

from queue_service.staff import accounts
from worker import clock
from worker.queues import all_queues

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "docs" / "examples" / "prefecture_sync.py"
POOL = "01:first_request"


def slots_file(path: Path, first_day: datetime.date) -> int:
    """Ten weekdays of morning slots at Bourg and Gex from `first_day`, as a prefecture exports
    them (French Excel: ';' and DD/MM/YYYY); how many."""
    rows, day = [], first_day
    while len({row[2] for row in rows}) < 10:
        if day.weekday() < 5:
            for site in ("bourg", "gex"):
                rows += [[site, "first_request", f"{day:%d/%m/%Y}", f"{9 + hour}:00", "30", "1"] for hour in range(2)]
        day += datetime.timedelta(days=1)
    with path.open("w", newline="", encoding="utf-8-sig") as file:
        writer = csv.writer(file, delimiter=";")
        writer.writerow(["site", "procedure", "date", "start", "duration_minutes", "counter"])
        writer.writerows(rows)
    return len(rows)


def script_module():
    spec = importlib.util.spec_from_file_location("prefecture_sync", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_prefectures_script_publishes_schedules_draws_and_reads_the_outcomes_through_the_api_alone(
        make_app, reference_data, store, staff, redis, tmp_path):
    from conftest import serve

    now = datetime.datetime.now(datetime.timezone.utc)
    people = register_people(store, 30, now - datetime.timedelta(days=2))
    published = slots_file(tmp_path / "january.csv", (now + datetime.timedelta(days=10)).date())
    token, _ = accounts.new_api_token(store, staff["admin01"], "agenda sync", now,
                                      scopes=["read", "slots:write", "schedules:write", "draws:run"])
    app = make_app(run_now_entry_delay_seconds=2)  # entries close two seconds after the commitment

    with serve(app) as base:
        script = subprocess.Popen(
            [sys.executable, str(SCRIPT), "--base", base, "--prefecture", "01", "--procedure", "first_request",
             "--slots", str(tmp_path / "january.csv"), "--outcomes", str(tmp_path / "outcomes.csv"),
             "--run-now", "--poll-seconds", "0.5", "--timeout-hours", "0.05"],
            env={"QS_API_TOKEN": token, "PATH": "/usr/bin:/bin"}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            while script.poll() is None:  # meanwhile, what `make run`'s clock and worker do
                clock.reconcile_draws(redis, store, datetime.datetime.now(datetime.timezone.utc))
                SimpleWorker(all_queues(redis), connection=redis).work(burst=True)
                time.sleep(0.5)
        finally:
            if script.poll() is None:
                script.kill()
        output = script.stdout.read()
        assert script.returncode == 0, output
        assert f"published {published} slots" in output
        assert "schedule: 0 10 * * MON (Europe/Paris)" in output

        # The outcomes file holds the draw's offers, as the store has them.
        (draw,) = [found for found in store.draws(POOL) if found.trigger.value == "admin"]  # not next Monday's
        assert draw.state.value == "published" and not draw.announced_late
        assert draw.announced_at < draw.cutoff_at  # the commitment came first
        offers = {offer.ref: offer for offer in store.offers(POOL).values() if offer.draw_id == draw.draw_id}
        with (tmp_path / "outcomes.csv").open(encoding="utf-8") as file:
            rows = list(csv.DictReader(file))
        assert len(rows) == len(offers) == min(published, len(people)) == draw.offered
        assert {row["ref"]: row["status"] for row in rows} == {ref: offer.status.value for ref, offer in offers.items()}
        assert store.schedule(POOL).cron == "0 10 * * MON"

        # Run again, the import changes nothing: the same file is the same Idempotency-Key.
        again = script_module().publish_slots(base, token, "01", str(tmp_path / "january.csv"))
        assert again == published
        assert len(store.prefecture_slots("01", now, now + datetime.timedelta(days=60))) == published
