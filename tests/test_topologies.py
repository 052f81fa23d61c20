"""The service on Redis's distributed modes, started for real (tests/topologies.py): a master
whose sentinels fail it over while applicants register, and a full draw on a Redis Cluster.

(The store, registration, draw and offer tests run on the cluster too: their modules are
marked `topologies`, tests/conftest.py.)
"""

from __future__ import annotations

import threading
import traceback
import time

import pytest
from helpers import UNLIMITED, api_person
from topologies import Replicated

from queue_service import reference

POOL = "01:first_request"
CLIENTS = 8


def _person(client_number: int, attempt: int) -> dict:
    """A distinct person (names, email) for each client and attempt, needing no AGDREF number."""
    letters = "".join(chr(ord("a") + int(digit)) for digit in f"{client_number}{attempt:05d}")
    person = api_person(procedure="first_request", family_name=f"Diallo {letters.title()}",
                        email=f"p{client_number}-{attempt}@example.org") | {"phone": None}
    person.pop("agdref")
    return person


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
        time.sleep(3)
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
    finally:
        replicated.stop()
