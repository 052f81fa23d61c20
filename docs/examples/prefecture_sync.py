"""A prefecture's script: publish next month's slots from a CSV file, set a weekly draw
schedule, wait for the draw, and save the outcomes of its offers.

Standard library only (Python 3.9 or newer). The token comes from the environment:

    export QS_API_TOKEN=qst_…   # scopes: read, slots:write, schedules:write (and draws:run for --run-now)
    python prefecture_sync.py --base https://rdv.example.gouv.fr --prefecture 01 \\
        --procedure renewal --slots january.csv --outcomes outcomes.csv

Every request that changes something carries an Idempotency-Key, so the script can be run
again after a failure without publishing or starting anything twice: the slot import's key is
the file's digest, the others are derived from the arguments. A 429 or 503 is retried after
the time the service asks for. docs/api.md walks through it.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import sys
import time
import urllib.error
import urllib.request

RETRIES = 5


class ApiError(Exception):
    """The service refused a request: its problem document (RFC 9457)."""

    def __init__(self, status: int, problem: dict):
        super().__init__(f"{status} {problem.get('title', '')} {problem.get('detail', '')}".strip())
        self.status, self.problem = status, problem


def call(base: str, token: str, method: str, path: str, body=None, *, content_type="application/json",
         key: str | None = None):
    """Send one request to the staff API; its JSON answer. Retries 429 and 503 (same key)."""
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json", "Accept-Language": "en"}
    if data is not None:
        headers["Content-Type"] = content_type
    if key is not None:
        headers["Idempotency-Key"] = key
    for attempt in range(RETRIES):
        request = urllib.request.Request(base + "/api/v1/staff" + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return json.load(response)
        except urllib.error.HTTPError as error:
            problem = json.loads(error.read() or b"{}")
            if error.code in (409, 429, 503) and attempt + 1 < RETRIES and error.headers.get("Retry-After"):
                time.sleep(int(error.headers["Retry-After"]))
                continue
            raise ApiError(error.code, problem) from None
    raise AssertionError("unreachable")


def publish_slots(base: str, token: str, prefecture: str, csv_path: str) -> int:
    """Import the slots of a CSV file (columns site, procedure, date, start, duration_minutes,
    counter); how many were published."""
    with open(csv_path, "rb") as file:
        content = file.read()
    key = "slots-" + hashlib.sha256(content).hexdigest()[:32]
    answer = call(base, token, "POST", f"/prefectures/{prefecture}/slots/import", content,
                  content_type="text/csv; charset=utf-8", key=key)
    return answer["published"]


def set_weekly_schedule(base: str, token: str, prefecture: str, procedure: str, cron: str) -> dict:
    """Give the pool a weekly draw: its schedule with `cron` (its other settings and extra dates
    kept), or a new schedule with the defaults."""
    try:
        current = call(base, token, "GET", f"/prefectures/{prefecture}/schedules/{procedure}")
    except ApiError as error:
        if error.status != 404:  # 404: no schedule yet
            raise
        current = {}
    wanted = current | {"cron": cron}  # the read-only members (next_draws…) are ignored by PUT
    key = "schedule-" + hashlib.sha256(json.dumps(wanted, sort_keys=True).encode()).hexdigest()[:32]
    return call(base, token, "PUT", f"/prefectures/{prefecture}/schedules/{procedure}", wanted, key=key)


def run_draw_now(base: str, token: str, prefecture: str, procedure: str) -> str:
    """Start a draw now; its id."""
    key = f"run-{prefecture}-{procedure}-{time.strftime('%Y%m%dT%H%M')}"
    return call(base, token, "POST", f"/prefectures/{prefecture}/schedules/{procedure}/run", {}, key=key)["draw_id"]


def wait_for_draw(base: str, token: str, prefecture: str, procedure: str, draw_id: str | None,
                  since: str, poll_seconds: float, timeout_seconds: float) -> dict:
    """The draw once it is published (or held for review): `draw_id`, or the first draw of the
    pool scheduled at or after `since` (ISO 8601)."""
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        listed = call(base, token, "GET", f"/prefectures/{prefecture}/draws?procedure={procedure}")["items"]
        for draw in sorted(listed, key=lambda found: found["scheduled_at"]):
            if (draw["draw_id"] == draw_id or draw_id is None and draw["scheduled_at"] >= since) \
                    and draw["state"] in ("published", "held"):
                return draw
        time.sleep(poll_seconds)
    raise TimeoutError("no draw was published in time")


def save_outcomes(base: str, token: str, prefecture: str, draw_id: str, path: str) -> dict:
    """Write the draw's offers (reference, state, slot) to a CSV file; the counts by state."""
    outcomes = call(base, token, "GET", f"/prefectures/{prefecture}/draws/{draw_id}/offers")
    with open(path, "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["ref", "status", "site", "starts_at", "deadline"])
        for item in outcomes["items"]:
            writer.writerow([item["ref"], item["status"], item["slot"]["site"], item["slot"]["starts_at"],
                             item["deadline"]])
    return outcomes["counts"]


def main(arguments: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="the service's address, e.g. https://rdv.example.gouv.fr")
    parser.add_argument("--prefecture", required=True)
    parser.add_argument("--procedure", required=True)
    parser.add_argument("--slots", required=True, help="the CSV file of slots to publish")
    parser.add_argument("--outcomes", required=True, help="where to write the offers' outcomes (CSV)")
    parser.add_argument("--cron", default="0 10 * * MON", help="the weekly draw (default: Mondays at 10:00)")
    parser.add_argument("--run-now", action="store_true", help="run a draw now rather than wait for the schedule")
    parser.add_argument("--poll-seconds", type=float, default=30)
    parser.add_argument("--timeout-hours", type=float, default=24 * 8)
    options = parser.parse_args(arguments)
    token = os.environ.get("QS_API_TOKEN")
    if not token:
        print("Set QS_API_TOKEN to a staff API token (qst_…).", file=sys.stderr)
        return 2
    base = options.base.rstrip("/")
    try:
        since = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
        print(f"published {publish_slots(base, token, options.prefecture, options.slots)} slots")
        schedule = set_weekly_schedule(base, token, options.prefecture, options.procedure, options.cron)
        print(f"schedule: {schedule['cron']} ({schedule['timezone']})")
        draw_id = run_draw_now(base, token, options.prefecture, options.procedure) if options.run_now else None
        draw = wait_for_draw(base, token, options.prefecture, options.procedure, draw_id, since,
                             options.poll_seconds, options.timeout_hours * 3600)
        print(f"draw {draw['draw_id']}: {draw['state']}")
        if draw["state"] == "held":
            print("The draw is held for review: release it on the staff pages or with POST …/release.")
            return 1
        counts = save_outcomes(base, token, options.prefecture, draw["draw_id"], options.outcomes)
        print("offers: " + ", ".join(f"{state} {count}" for state, count in counts.items() if count))
    except ApiError as error:
        print(f"refused: {error}", file=sys.stderr)
        for field in error.problem.get("errors", []):
            print(f"  {field.get('field')}: {field.get('message')}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
