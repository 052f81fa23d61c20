"""How many registrations per second one running instance sustains, and at what latency.

Start the service with the registration limits raised (they would otherwise
stop the benchmark after a few requests from one address), then run this:

    QS_RATE_LIMIT_REGISTRATION="1000000 per hour" \\
    QS_RATE_LIMIT_REGISTRATION_UNPROVEN="1000000 per hour" \\
    QS_RATE_LIMIT_REGISTRATION_EMAIL="1000000 per hour" make run
    .venv/bin/python bench/register.py --url http://127.0.0.1:5000 --seconds 20 --clients 16

Each client thread posts distinct people (names, emails, phones) to
POST /api/v1/registrations over one keep-alive connection, for a bounded
time, on loopback only. It prints the throughput, latency percentiles and
the status codes seen. Standard library only.
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import statistics
import string
import sys
import threading
import time
import urllib.parse
from collections import Counter

LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


def person(rng: random.Random, number: int) -> dict:
    letters = "".join(rng.choice(string.ascii_lowercase) for _ in range(10))
    return {
        "prefecture": "01",
        "procedure": "first_request",
        "family_name": f"Bench {letters.capitalize()}",
        "given_names": "Test",
        "birth_date": f"19{rng.randint(50, 99)}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}",
        "nationality": rng.choice(["MA", "DZ", "TN", "SN", "UA", "VN", "CN", "BR"]),
        "email": f"bench-{letters}-{number}@example.org",
        "phone": f"+33612{rng.randint(100_000, 999_999)}",
        "consent": True,
    }


def client(url: urllib.parse.SplitResult, deadline: float, seed: int, latencies: list, statuses: Counter, lock):
    rng = random.Random(seed)
    connection = http.client.HTTPConnection(url.hostname, url.port or 80, timeout=30)
    number = 0
    own_latencies, own_statuses = [], Counter()
    while time.monotonic() < deadline:
        number += 1
        body = json.dumps(person(rng, seed * 1_000_000 + number))
        started = time.perf_counter()
        try:
            connection.request("POST", "/api/v1/registrations", body, {"Content-Type": "application/json"})
            response = connection.getresponse()
            response.read()
            status = response.status
        except (OSError, http.client.HTTPException):
            connection.close()
            connection = http.client.HTTPConnection(url.hostname, url.port or 80, timeout=30)
            status = "connection error"
        own_latencies.append(time.perf_counter() - started)
        own_statuses[status] += 1
    connection.close()
    with lock:
        latencies.extend(own_latencies)
        statuses.update(own_statuses)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:5000")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long to run (at most 300)")
    parser.add_argument("--clients", type=int, default=16, help="concurrent connections (at most 256)")
    arguments = parser.parse_args()
    url = urllib.parse.urlsplit(arguments.url)
    if url.hostname not in LOOPBACK_HOSTS:
        parser.error("this benchmark only drives a service on this machine (loopback)")
    seconds = min(max(arguments.seconds, 1.0), 300.0)
    clients = min(max(arguments.clients, 1), 256)
    try:
        probe = http.client.HTTPConnection(url.hostname, url.port or 80, timeout=5)
        probe.request("GET", "/healthz")
        probe.getresponse().read()
    except OSError as error:
        print(f"no service at {arguments.url} ({error}); start it first (see this file's docstring)", file=sys.stderr)
        return 2

    latencies: list[float] = []
    statuses: Counter = Counter()
    lock = threading.Lock()
    deadline = time.monotonic() + seconds
    started = time.monotonic()
    # Seeds differ from one run to the next, so a second run registers new people.
    first_seed = int(time.time()) % 100_000 * 1_000
    threads = [
        threading.Thread(target=client, args=(url, deadline, first_seed + seed, latencies, statuses, lock))
        for seed in range(1, clients + 1)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started

    created = statuses.get(201, 0)
    print(f"{clients} clients, {elapsed:.1f} s, {len(latencies)} requests")
    print(f"registrations created: {created} ({created / elapsed:.0f} per second)")
    print(f"requests per second: {len(latencies) / elapsed:.0f}")
    if latencies:
        print(
            "latency ms: p50 {:.1f}  p90 {:.1f}  p99 {:.1f}  max {:.1f}  mean {:.1f}".format(
                1000 * percentile(latencies, 0.50),
                1000 * percentile(latencies, 0.90),
                1000 * percentile(latencies, 0.99),
                1000 * max(latencies),
                1000 * statistics.fmean(latencies),
            )
        )
    print("status codes:", dict(sorted(statuses.items(), key=lambda item: str(item[0]))))
    if created == 0:
        print("no registration was created: are the registration rate limits raised?", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
