"""Reference data kept in a process's memory (Store.pool_reference), and how every process
learns at its next request that an admin changed it (a version token in Redis)."""

from __future__ import annotations

import dataclasses

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
