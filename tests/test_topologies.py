"""The service on Redis's distributed modes, started for real (tests/topologies.py): a master
whose sentinels fail it over while applicants register, and a full draw on a Redis Cluster.

(The store, registration, draw and offer tests run on the cluster too: their modules are
marked `topologies`, tests/conftest.py.)
"""

from __future__ import annotations

import dataclasses
import datetime
import http.client
import json
import os
import random
import secrets
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path

import pytest
import redis as redis_py
from helpers import UNLIMITED, api_person, free_port, stop_processes
from topologies import Replicated

from queue_service import draws, reference
from queue_service.registration.proof import generate_signing_key
from queue_service.store import Store
from queue_service.store.keys import PoolKeys

POOL = "01:first_request"
CLIENTS = 8


def _person(client_number: int, attempt: int) -> dict:
    """A distinct person (names, email) for each client and attempt, needing no AGDREF number."""
    letters = "".join(chr(ord("a") + int(digit)) for digit in f"{client_number}{attempt:05d}")
    person = api_person(procedure="first_request", family_name=f"Diallo {letters.title()}",
                        email=f"p{client_number}-{attempt}@example.org") | {"phone": None}
    person.pop("agdref")
    return person


def _a_draw_to_run(store):
    """A pool of 20,000 waiting people and 500 slots with a draw announced; returns the pool, the
    draw's id and a function running it as its job would: again after each Redis failure."""
    sys.path.insert(0, str(ROOT))
    from bench import pool as bench_pool

    draw_at = datetime.datetime(2027, 1, 4, 9, 0, tzinfo=datetime.timezone.utc)
    schedule = bench_pool.schedule("01", "renewal", draw_at - datetime.timedelta(days=3), constrained=False)
    store.save_schedule(schedule)
    bench_pool.waiting_list(store, "01", "renewal", 20_000, draw_at=draw_at, rng=random.Random(16), constrained=False)
    bench_pool.week_of_slots(store, "01", "renewal", 500, first_day=draw_at + datetime.timedelta(days=1, hours=-1))
    (due,) = draws.due_draws(schedule, draw_at - datetime.timedelta(seconds=1), draw_at + datetime.timedelta(seconds=1))
    draws.announce(store, schedule, due, draw_at - datetime.timedelta(days=2))
    timing = bench_pool.offer_timing()

    def run_draw() -> None:
        for _ in range(60):
            try:
                if draws.run(store, "01:renewal", due.draw_id, draw_at, timing) is draws.DrawState.PUBLISHED:
                    return
            except (redis_py.ConnectionError, redis_py.TimeoutError):  # Redis away, or no replica yet: RQ retries
                time.sleep(1)

    return "01:renewal", due.draw_id, run_draw


@pytest.mark.sentinel
@pytest.mark.slow
def test_a_failover_under_registration_load_loses_no_acknowledged_registration(tmp_path, settings):
    from web import create_app

    replicated = Replicated(tmp_path / "replicated")
    replicated.start()
    try:
        app = create_app(settings.replace(redis_url=replicated.url, queue_redis_url="", **UNLIMITED))
        # Not in testing mode: an error goes through the handlers, as in production.
        store = app.extensions["queue_service"].store
        assert store.replicas_to_wait == 1  # behind sentinels, a registration waits for the replica
        store.load_reference(reference.PREFECTURES, reference.PROCEDURES)
        store.add_missing_sites(reference.DEMO_SITES)
        draw_pool, draw_id, run_draw = _a_draw_to_run(store)

        acknowledged: list[str] = []
        refused: list[tuple[float, int]] = []  # (when, status) of every answer but 201
        answered_after_kill: list[float] = []
        killed_at: list[float] = []
        unexpected: list[str] = []
        stop = threading.Event()

        def register(client_number: int) -> None:
            client = app.test_client()
            attempt = 0
            while not stop.is_set():
                attempt += 1
                try:
                    response = client.post("/api/v1/registrations", json=_person(client_number, attempt))
                except Exception:  # noqa: BLE001 - any exception is a failure to report
                    unexpected.append(traceback.format_exc()[-6000:])
                    continue
                if response.status_code == 201:
                    acknowledged.append(response.get_json()["ref"])
                    if killed_at:
                        answered_after_kill.append(time.monotonic())
                elif response.status_code == 503:
                    refused.append((time.monotonic(), 503))
                    time.sleep(0.1)
                else:
                    unexpected.append(f"{response.status_code} {response.get_data(as_text=True)[:200]}")

        threads = [threading.Thread(target=register, args=(number,)) for number in range(CLIENTS)]
        for thread in threads:
            thread.start()
        time.sleep(2)
        draw_thread = threading.Thread(target=run_draw)
        draw_thread.start()  # the draw starts before the kill, and is retried as its job would be
        time.sleep(1)
        before_kill = len(acknowledged)
        old_master = replicated.master_port()
        replicated.servers.kill(old_master)
        killed_at.append(time.monotonic())
        # Once the sentinels have promoted the replica, the dead machine's server is started again
        # (as its supervisor would, or an operator replacing the machine): the sentinels make it
        # the new master's replica, and writes, which wait for one replica, are acknowledged again.
        deadline = killed_at[0] + 30
        while replicated.master_port() == old_master and time.monotonic() < deadline:
            time.sleep(0.1)
        promoted_after = time.monotonic() - killed_at[0]
        replicated.servers.restart(old_master)
        while not answered_after_kill and time.monotonic() < deadline:
            time.sleep(0.05)
        recovered = answered_after_kill[0] if answered_after_kill else None
        time.sleep(2)  # load goes on on the new master
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        draw_thread.join(timeout=120)

        refused_during = sum(1 for moment, _ in refused if moment >= killed_at[0])
        failover_seconds = (recovered - killed_at[0]) if recovered else None
        print(f"\nfailover: {CLIENTS} clients; {before_kill} registrations acknowledged before the kill, "
              f"{len(acknowledged)} in all; replica promoted {promoted_after:.1f} s after SIGKILL of the master, "
              f"service acknowledging registrations again after {failover_seconds:.1f} s; "
              f"{refused_during} requests refused (503) meanwhile; "
              f"new master on port {replicated.master_port()} (was {old_master})"
              if failover_seconds is not None else "\nfailover: the service did not answer again within 30 s")
        assert failover_seconds is not None and failover_seconds < 30
        assert replicated.master_port() != old_master
        for failure in unexpected[:3]:
            print(failure)
        assert not unexpected, unexpected[:5]  # every answer was 201 or 503: no 500, no false acknowledgement
        lost = [ref for ref in acknowledged if store.registration_key_by_ref(POOL, ref) is None]
        print(f"acknowledged registrations lost: {len(lost)} of {len(acknowledged)}")
        assert before_kill > 0 and lost == []
        # The draw started before the kill is published, committed once: its offers counted once,
        # no slot offered twice.
        assert store.draw(draw_pool, draw_id).state is draws.DrawState.PUBLISHED
        assert int(store.redis.hget(PoolKeys(draw_pool).stats, "draw_committed")) == 1
        offers = store.offers(draw_pool)
        slots_offered = [offer.slot_id for offer in offers.values()]
        assert slots_offered and len(slots_offered) == len(set(slots_offered))
        assert int(store.redis.hget(PoolKeys(draw_pool).stats_draw(draw_id), "slots_offered")) == len(offers)
        print(f"the draw started before the kill: published once, {len(offers)} offers")
    finally:
        replicated.stop()


@pytest.mark.sentinel
def test_without_a_replica_to_acknowledge_it_a_registration_is_refused_not_acknowledged(tmp_path, settings):
    from web import create_app

    replicated = Replicated(tmp_path / "replicated")
    replicated.start()
    try:
        app = create_app(settings.replace(redis_url=replicated.url, queue_redis_url="", **UNLIMITED))
        store = app.extensions["queue_service"].store
        store.load_reference(reference.PREFECTURES, reference.PROCEDURES)
        store.add_missing_sites(reference.DEMO_SITES)
        client = app.test_client()
        assert client.post("/api/v1/registrations", json=_person(1, 1)).status_code == 201
        replicated.servers.kill(replicated.replica)
        started = time.monotonic()
        refused = client.post("/api/v1/registrations", json=_person(1, 2))
        assert refused.status_code == 503 and refused.headers["Retry-After"]
        assert time.monotonic() - started < 10  # WAIT's two seconds, not a hang
        replicated.servers.restart(replicated.replica)  # it syncs again from the master
        deadline = time.monotonic() + 30
        while client.post("/api/v1/registrations", json=_person(1, 2)).status_code != 201:
            assert time.monotonic() < deadline, "not acknowledged again once the replica was back"
            time.sleep(0.5)
    finally:
        replicated.stop()


ROOT = Path(__file__).resolve().parent.parent
LARGE_POOL_ENTRANTS = 100_000
LARGE_DRAW_SLOTS = 2_000


@pytest.mark.cluster
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_draw_of_a_hundred_thousand_entrants_on_the_cluster_publishes_a_record_that_verifies(
        redis_cluster, tmp_path):
    sys.path.insert(0, str(ROOT))
    from bench import pool as bench_pool

    redis_cluster.flush()
    store = Store(redis_cluster.shared_client)
    store.load_reference(reference.PREFECTURES, reference.PROCEDURES)
    store.add_missing_sites(reference.DEMO_SITES)
    first_draw = datetime.datetime(2027, 1, 4, 9, 0, tzinfo=datetime.timezone.utc)  # a Monday, 10:00 in Paris
    schedule = bench_pool.schedule("01", "renewal", first_draw - datetime.timedelta(days=3), constrained=True)
    store.save_schedule(schedule)
    started = time.monotonic()
    bench_pool.waiting_list(store, "01", "renewal", LARGE_POOL_ENTRANTS, draw_at=first_draw,
                            rng=random.Random(2027), constrained=True)
    bench_pool.week_of_slots(store, "01", "renewal", LARGE_DRAW_SLOTS,
                             first_day=first_draw + datetime.timedelta(days=1, hours=-1))
    written = time.monotonic()
    (due,) = draws.due_draws(schedule, first_draw - datetime.timedelta(seconds=1),
                             first_draw + datetime.timedelta(seconds=1))
    draws.announce(store, schedule, due, first_draw - datetime.timedelta(days=2))
    state = draws.run(store, "01:renewal", due.draw_id, first_draw, bench_pool.offer_timing())
    drawn = time.monotonic()
    assert state is draws.DrawState.PUBLISHED

    record = draws.public_record(store, "01:renewal", due.draw_id)
    assert record["statistics"]["entrants"] == LARGE_POOL_ENTRANTS
    winners = record["statistics"]["winners"]
    assert 0 < winners <= record["statistics"]["slots"] <= LARGE_DRAW_SLOTS  # (those in the draw's horizon)
    offers = store.offers("01:renewal")
    assert len(offers) == winners and len({offer.slot_id for offer in offers.values()}) == winners
    path = tmp_path / "record.json"
    path.write_text(json.dumps(record))
    verified = subprocess.run([sys.executable, "-m", "queue_service.verify", str(path)], capture_output=True,
                              text=True, cwd=ROOT)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    print(f"\ncluster draw: {LARGE_POOL_ENTRANTS} entrants written in {written - started:.1f} s, "
          f"drawn and committed in {drawn - written:.1f} s ({winners} offers); the record verifies")


SCHEDULED_DRAWS = 12
PROCESS_MARKER = "QUEUE_SERVICE_TOPOLOGY_RUN"


def _service_environment(tmp_path, data_url: str, queue_url: str, smtp_port: int) -> dict[str, str]:
    secret = "topology-secret-" + "y" * 40
    return {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(ROOT),
        "TMPDIR": str(tmp_path),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prometheus"),
        "QS_ENV": "test",
        "QS_DATA_DIR": str(tmp_path / "var"),
        "QS_REDIS_URL": data_url,
        "QS_QUEUE_REDIS_URL": queue_url,
        "QS_SECRET_KEY": secret,
        "QS_IDENTITY_KEY": secret,
        "QS_PROOF_SIGNING_KEY": generate_signing_key(),
        "QS_MAIL_BACKEND": "smtp",
        "QS_SMTP_HOST": "127.0.0.1",
        "QS_SMTP_PORT": str(smtp_port),
        "QS_SMS_BACKEND": "none",
        "QS_WEB_WORKERS": "1",
        "QS_CLOCK_INTERVAL_SECONDS": "1",
        "QS_DISPATCH_INTERVAL_SECONDS": "1",
    }


@pytest.mark.cluster
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_three_webs_two_workers_and_two_clocks_on_the_cluster_commit_each_draw_once(
        redis_cluster, killable_redis, smtp_server, tmp_path):
    sys.path.insert(0, str(ROOT))
    from bench import pool as bench_pool

    controller, _ = smtp_server
    redis_cluster.flush()
    store = Store(redis_cluster.shared_client)
    store.load_reference(reference.PREFECTURES, reference.PROCEDURES)
    store.add_missing_sites(reference.DEMO_SITES)
    now = datetime.datetime.now(datetime.timezone.utc).replace(minute=0, second=0, microsecond=0)
    # Hourly draws, the schedule made eleven and a half hours before the last hour: the clocks catch
    # up the twelve draws due at their first tick, and the workers run them, over the same slots.
    made = now - datetime.timedelta(hours=SCHEDULED_DRAWS - 1, minutes=30)
    schedule = dataclasses.replace(
        bench_pool.schedule("01", "renewal", made, False),
        cron="0 * * * *")
    store.save_schedule(schedule)
    bench_pool.waiting_list(store, "01", "renewal", 400, draw_at=now, rng=random.Random(12), constrained=False)
    bench_pool.week_of_slots(store, "01", "renewal", 240, first_day=now + datetime.timedelta(days=3))
    store.discard_outbox("01:renewal")

    (tmp_path / "prometheus").mkdir()
    marker = secrets.token_hex(8)
    environment = _service_environment(tmp_path, redis_cluster.url, killable_redis.url, controller.port)
    environment[PROCESS_MARKER] = marker
    web_ports = [free_port() for _ in range(3)]
    commands = [[sys.executable, "-m", "worker.cli", "worker"]] * 2 + [[sys.executable, "-m", "worker.cli", "clock"]] * 2
    processes = []
    try:
        for number, port in enumerate(web_ports):
            with open(tmp_path / f"web{number}.log", "wb") as log:
                processes.append(subprocess.Popen(
                    [sys.executable, "-m", "gunicorn", "--config", "config/gunicorn.conf.py", "--control-socket",
                     str(tmp_path / f"gunicorn{number}.ctl"), "web:create_app()"],
                    cwd=ROOT, env=environment | {"QS_BIND": f"127.0.0.1:{port}",
                                                 # each host its own (gunicorn makes it at start)
                                                 "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / f"prometheus-web{number}")},
                    stdout=log, stderr=subprocess.STDOUT))
        for number, command in enumerate(commands):
            with open(tmp_path / f"{command[-1]}{number}.log", "wb") as log:
                processes.append(subprocess.Popen(command, cwd=ROOT, env=environment, stdout=log,
                                                  stderr=subprocess.STDOUT))

        def past_draws():
            return [draw for draw in store.draws("01:renewal", limit=100) if draw.scheduled_at <= now]

        started = time.monotonic()
        deadline = started + 400
        while time.monotonic() < deadline:
            done = [draw for draw in past_draws() if draw.state in (draws.DrawState.PUBLISHED, draws.DrawState.HELD)]
            if len(done) >= SCHEDULED_DRAWS:
                break
            assert all(process.poll() is None for process in processes), "a process of the service exited"
            time.sleep(1)
        elapsed = time.monotonic() - started
        past = past_draws()
        assert len(past) == SCHEDULED_DRAWS and all(draw.state is draws.DrawState.PUBLISHED for draw in past), [
            (draw.draw_id, draw.state) for draw in past]

        offers = store.offers("01:renewal")
        slots_offered = [offer.slot_id for offer in offers.values()]
        assert slots_offered and len(slots_offered) == len(set(slots_offered))  # no slot offered twice
        totals = store.redis.hgetall(PoolKeys("01:renewal").stats)
        published = [draw for draw in store.draws("01:renewal", limit=100) if draw.state is draws.DrawState.PUBLISHED]
        # Each draw committed once (a test crossing the hour would see one draw more, committed once too).
        assert int(totals[b"draw_committed"]) == len(published) >= SCHEDULED_DRAWS
        for draw in past:
            counted = int(store.redis.hget(PoolKeys("01:renewal").stats_draw(draw.draw_id), "slots_offered") or 0)
            made = sum(1 for offer in offers.values() if offer.draw_id == draw.draw_id)  # (none declined yet)
            assert counted == made, (draw.draw_id, counted, made)
        # Every web process reads the records from the cluster.
        for port, draw in zip(web_ports * SCHEDULED_DRAWS, past):
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            connection.request("GET", f"/api/v1/draws/{draw.draw_id}/record")
            response = connection.getresponse()
            assert response.status == 200 and json.loads(response.read())["state"] == "published"
            connection.close()
        print(f"\n3 webs, 2 workers, 2 clocks on the cluster: {SCHEDULED_DRAWS} draws published in {elapsed:.0f} s, "
              f"{len(slots_offered)} slots offered, none twice, each draw committed once")
    finally:
        stop_processes(processes, PROCESS_MARKER, marker)
