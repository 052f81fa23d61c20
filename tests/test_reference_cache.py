"""Reference data kept in a process's memory (Store.pool_reference), and how every process
learns at its next request that an admin changed it (a version token in Redis)."""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time

import pytest
from helpers import api_person

from queue_service import reference
from queue_service.errors import UnknownPrefecture, UnknownProcedure
from queue_service.store import Store

BOURG = next(site for site in reference.DEMO_SITES if site.id == "bourg")


def commands(redis, name: str) -> int:
    return redis.info("commandstats").get(f"cmdstat_{name}", {}).get("calls", 0)


def test_a_process_keeps_the_pool_reference_and_reads_one_key_while_nothing_changes(redis, reference_data):
    reader = Store(redis)
    first = reader.pool_reference("01", "renewal")
    reads = commands(redis, "hvals"), commands(redis, "hget")
    assert reader.pool_reference("01", "renewal") == first
    assert (commands(redis, "hvals"), commands(redis, "hget")) == reads
    prefecture, procedure, sites = first
    assert prefecture == reference.prefecture_by_code("01")
    assert procedure == reference.procedure_by_code("renewal")
    assert sites == reference_data.sites("01")


@pytest.mark.parametrize("change", ["save_site", "delete_site", "add_missing_sites", "load_reference"])
def test_every_change_of_the_reference_is_seen_by_other_processes_at_their_next_read(redis, reference_data,
                                                                                     change):
    reader, admin = Store(redis), Store(redis)  # two processes: the web worker and the staff's
    reader.pool_reference("01", "renewal")
    if change == "save_site":
        admin.save_site(dataclasses.replace(BOURG, name="Bourg (new address)"))
        assert "Bourg (new address)" in [site.name for site in reader.pool_reference("01", "renewal")[2]]
    elif change == "delete_site":
        admin.delete_site("01", "bourg")
        assert "bourg" not in [site.id for site in reader.pool_reference("01", "renewal")[2]]
    elif change == "add_missing_sites":
        admin.add_missing_sites([dataclasses.replace(BOURG, id="oyonnax-desk", name="Oyonnax desk")])
        assert "oyonnax-desk" in [site.id for site in reader.pool_reference("01", "renewal")[2]]
    else:
        renamed = [dataclasses.replace(p, label_en="Renewal (renamed)") if p.code == "renewal" else p
                   for p in reference.PROCEDURES]
        admin.load_reference(reference.PREFECTURES, renamed)
        assert reader.pool_reference("01", "renewal")[1].label_en == "Renewal (renamed)"


def test_unknown_codes_are_refused_as_before(redis, reference_data):
    reader = Store(redis)
    with pytest.raises(UnknownPrefecture):
        reader.pool_reference("00", "renewal")
    with pytest.raises(UnknownProcedure):
        reader.pool_reference("01", "no_such_procedure")


def test_the_api_sees_sites_closed_and_opened_by_another_process_at_once(make_app, reference_data, redis):
    client = make_app(rate_limit_registration="1000 per hour",
                      rate_limit_registration_email="1000 per hour").test_client()
    admin = Store(redis)
    assert client.post("/api/v1/registrations", json=api_person(email="a@example.org")).status_code == 201
    for site in reference_data.sites("01"):
        admin.delete_site("01", site.id)
    # A prefecture without sites takes no registrations: 404, as soon as the sites are gone.
    refused = client.post("/api/v1/registrations", json=api_person(email="b@example.org", family_name="Other"))
    assert refused.status_code == 404
    admin.save_site(dataclasses.replace(BOURG, id="new-desk"))
    accepted = client.post("/api/v1/registrations",
                           json=api_person(email="c@example.org", family_name="Third", sites=["new-desk"]))
    assert accepted.status_code == 201, accepted.get_json()


def test_a_new_persons_registration_is_two_calls_to_redis(make_app, reference_data, redis):
    """The budgets' script reads the reference version too (no GET of its own), and a person
    new to the pool is registered by the script at once (no read of the place's holders
    first; the pool listed in the same round trip): two round trips. The same person again
    costs the holders' read, as before, and still replaces the registration not confirmed yet."""
    client = make_app(rate_limit_registration="1000 per hour",
                      rate_limit_registration_email="1000 per hour").test_client()

    def first_request(email: str, family_name: str) -> dict:
        return api_person(procedure="first_request", email=email, family_name=family_name, agdref="",
                          permit_expiry="")

    assert client.post("/api/v1/registrations", json=first_request("a@example.org", "Diallo")).status_code == 201
    with watching(redis) as commands:
        new = client.post("/api/v1/registrations", json=first_request("b@example.org", "Traore"))
    assert new.status_code == 201, new.get_json()
    # The budgets' script; the pool listed (idempotent) and the registration script, pipelined.
    assert [command.split()[0] for command in commands] == ["EVALSHA", "SADD", "EVALSHA"], commands
    with watching(redis) as commands:
        again = client.post("/api/v1/registrations", json=first_request("c@example.org", "Traore"))
    assert again.status_code == 201, again.get_json()
    verbs = [command.split()[0] for command in commands]
    # The budgets, the script ("retry"), the holders read (the people hash, the keys written before
    # 2026-11-29 under each order of the names, the holder's contacts), the script again.
    assert verbs[:3] == ["EVALSHA", "SADD", "EVALSHA"] and verbs[-1] == "EVALSHA" and verbs.count("EVALSHA") == 3
    assert {"HMGET", "GET"} == set(verbs[3:-1]), verbs
    store = Store(redis)
    assert store.registration_key_by_ref("01:first_request", new.get_json()["ref"]) is None  # replaced
    assert store.registration_key_by_ref("01:first_request", again.get_json()["ref"]) is not None


def test_a_registration_after_the_scripts_were_flushed_loads_its_script_and_lists_its_pool(make_app,
                                                                                         reference_data, redis):
    """The registration script goes as a bare EVALSHA behind the pool's listing (store/lua.py
    run_replicated): a Redis that lost its scripts (a restart, a failover) answers NOSCRIPT,
    and the two are sent again once the script is loaded."""
    client = make_app().test_client()
    redis.script_flush()
    created = client.post("/api/v1/registrations", json=api_person())
    assert created.status_code == 201, created.get_json()
    store = Store(redis)
    assert "01:renewal" in [str(pool) for pool in store.pools()]
    assert store.registration_key_by_ref("01:renewal", created.get_json()["ref"]) is not None


@contextlib.contextmanager
def watching(redis):
    """The commands clients send to `redis` (MONITOR) while the block runs, those of scripts left out."""
    seen, ready = [], threading.Event()
    start, end = f"watching-starts-{threading.get_ident()}", f"watching-ends-{threading.get_ident()}"

    def watch() -> None:
        with redis.monitor() as monitor:
            ready.set()
            for command in monitor.listen():
                if end in command["command"]:
                    return
                if command.get("client_type") != "lua":
                    seen.append(command["command"])

    watcher = threading.Thread(target=watch)
    watcher.start()
    ready.wait(5)
    redis.get(start)  # MONITOR is on once a command of ours shows: wait for it
    deadline = time.monotonic() + 5
    while not any(start in command for command in seen) and time.monotonic() < deadline:
        time.sleep(0.01)
    seen.clear()
    try:
        yield seen
    finally:
        redis.get(end)
        watcher.join(5)
