"""/metrics: Prometheus text format, the same numbers as the counters, no personal data in labels."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from queue_service import metrics as events
from queue_service.store.keys import PoolKeys
from worker.queues import QUEUE_NAMES

ROOT = Path(__file__).resolve().parent.parent
PERSON = {
    "family_name": "Okonkwo",
    "given_names": "Chiamaka",
    "birth_date": "1991-02-03",
    "nationality": "NG",
    "email": "chiamaka@example.org",
    "phone": "06 11 22 33 44",
    "agdref": "0100000002",
    "permit_expiry": "2027-08-01",
    "consent": "yes",
}


def register(client, **changes):
    return client.post("/api/v1/registrations", json={"prefecture": "01", "procedure": "renewal", **PERSON, **changes})


def scrape(client, **headers) -> dict:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/plain"
    return {family.name: family for family in text_string_to_metric_families(response.get_data(as_text=True))}


def samples(family, **labels) -> list:
    return [sample for sample in family.samples if all(sample.labels.get(k) == v for k, v in labels.items())]


def test_metrics_parse_and_agree_with_the_counters(client, store, deliver_messages):
    assert register(client).status_code == 201
    # The same person again before confirming: the first registration is replaced, and that is counted.
    assert register(client).status_code == 201
    client.get("/p/01")
    deliver_messages()  # the confirmation email: a dispatch job, then a send job, both timed
    families = scrape(client)

    (waiting,) = samples(families["qs_pool_pending_email"], prefecture="01", procedure="renewal")
    assert waiting.value == 1
    totals = store.stats_totals(["01:renewal"])["01:renewal"]
    for event in ("registered", "replaced_unconfirmed", "slots_offered"):
        (sample,) = samples(families["qs_events"], prefecture="01", procedure="renewal", event=event)
        assert sample.name == "qs_events_total" and sample.value == totals[event]
    assert totals["registered"] == 2 and totals["replaced_unconfirmed"] == 1

    latency = families["qs_http_request_duration_seconds"]
    assert samples(latency, endpoint="applicant.prefecture", method="GET", status="200")
    assert samples(latency, endpoint="api.create_registration", status="201")
    # One dispatch; one send job for the pool's two messages (the replaced registration's finds it gone).
    for job, count in (("dispatch_notifications", 1), ("send_notifications", 1)):
        (runs,) = [s for s in samples(families["qs_job_duration_seconds"], job=job) if s.name.endswith("_count")]
        assert runs.value == count
    states = {(s.labels["queue"], s.labels["state"]) for s in families["qs_rq_jobs"].samples}
    assert {(name, "queued") for name in QUEUE_NAMES} <= states


def test_no_label_carries_personal_data(client, store, deliver_messages):
    register(client)
    register(client, family_name="Mbeki", email="mbeki@example.org", phone="06 55 44 33 22", agdref="0100000007")
    client.get("/status?t=not-a-token")
    deliver_messages()
    families = scrape(client)
    allowed = {
        "prefecture": {"01"},
        "procedure": {"first_request", "renewal", "permit_pickup", "student"},
        "event": set(events.EVENTS),
        "queue": set(QUEUE_NAMES),
        "state": {"queued", "started", "failed"},
        "method": {"GET", "POST", "PATCH", "DELETE", "HEAD"},
        "status": None,  # three digits, checked below
        "endpoint": None,  # a Flask endpoint name, checked below
        "job": {"send_notifications", "dispatch_notifications", "heartbeat", "purge_registrations", "run_draw",
                "freeze_draw"},
        "le": None,
    }
    personal = [value.lower() for value in PERSON.values()] + ["mbeki", "0100000007", "+33611223344"]
    refs = {row.decode() for row in store.redis.hkeys(PoolKeys("01:renewal").refs)}
    assert refs
    for family in families.values():
        for sample in family.samples:
            for name, value in sample.labels.items():
                assert name in allowed, (family.name, name)
                if allowed[name] is not None:
                    assert value in allowed[name], (family.name, name, value)
                elif name == "status":
                    assert re.fullmatch(r"[1-5][0-9][0-9]", value)
                elif name == "endpoint":
                    assert re.fullmatch(r"[a-z_]+\.[a-z_]+|static|none", value), value
                assert value not in refs and not any(part in value.lower() for part in personal if len(part) > 3)


def test_a_token_protects_metrics_when_set(make_app, reference_data):
    client = make_app(metrics_token="scrape-secret-1234").test_client()
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    scrape(client, Authorization="Bearer scrape-secret-1234")


def test_metrics_are_not_rate_limited(make_app, reference_data):
    client = make_app(rate_limit_default="2 per minute").test_client()
    assert [client.get("/metrics").status_code for _ in range(5)] == [200] * 5


def test_rate_limits_hit_are_counted_in_the_pool(make_app, store, reference_data):
    client = make_app(rate_limit_registration="1 per hour").test_client()
    register(client)
    assert register(client, family_name="Other").status_code == 429
    assert client.post("/api/v1/registrations", json={"prefecture": "99", "procedure": "nope"}).status_code == 429
    assert store.stats_totals(["01:renewal"])["01:renewal"]["rate_limited"] == 1
    assert store.pools() == ["01:renewal"]  # no key for a made-up pool


def test_job_durations_come_from_every_worker(store, reference_data):
    """Recorded in Redis by whichever worker ran the job, read at the scrape."""
    from web.metrics import QueueCollector
    from worker.queues import JOB_DURATION_BUCKETS

    store.record_job_duration("run_draw", 0.7, JOB_DURATION_BUCKETS)
    store.record_job_duration("run_draw", 42.0, JOB_DURATION_BUCKETS)
    (family,) = [f for f in QueueCollector(store, store.redis).collect() if f.name == "qs_job_duration_seconds"]
    values = {(s.name, s.labels.get("le")): s.value for s in family.samples}
    assert values[("qs_job_duration_seconds_bucket", "1.0")] == 1
    assert values[("qs_job_duration_seconds_bucket", "60.0")] == 2
    assert values[("qs_job_duration_seconds_count", None)] == 2
    assert values[("qs_job_duration_seconds_sum", None)] == pytest.approx(42.7)


MULTIPROCESS_SCRIPT = textwrap.dedent(
    """
    import os, sys
    from prometheus_client import multiprocess
    from web import create_app
    app = create_app()
    app.testing = True
    client = app.test_client()
    if sys.argv[1] == "serve":
        for _ in range(3):
            client.get("/healthz")
    else:
        sys.stdout.write(client.get("/metrics").get_data(as_text=True))
    """
)


def test_request_latency_adds_up_across_worker_processes(settings, tmp_path, reference_data):
    """As under gunicorn: two processes answer requests, a third one's scrape counts them all."""
    environment = {name: value for name, value in os.environ.items()} | {
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prometheus"),
    }
    (tmp_path / "prometheus").mkdir()
    for _ in range(2):
        subprocess.run([sys.executable, "-c", MULTIPROCESS_SCRIPT, "serve"], cwd=ROOT, env=environment, check=True)
    scraped = subprocess.run([sys.executable, "-c", MULTIPROCESS_SCRIPT, "scrape"], cwd=ROOT, env=environment,
                             check=True, capture_output=True, text=True).stdout
    families = {family.name: family for family in text_string_to_metric_families(scraped)}
    (count,) = [s for s in samples(families["qs_http_request_duration_seconds"], endpoint="health.healthz")
                if s.name.endswith("_count")]
    assert count.value == 6
    assert "qs_pool_waiting" in families or "qs_events" in families or "qs_rq_jobs" in families
