"""Prometheus `/metrics`: the queue's counters and gauges, request latency, job durations.

Two sources, each where it is correct under several gunicorn workers:

- What the service *is* (pool sizes, event counters, RQ queues, last clock
  tick, job durations) lives in Redis. A custom collector reads it at scrape
  time, so every worker answers the same numbers, and a restart loses none.
- How long *this* web process takes to answer (request latency) is measured
  in the process. Under gunicorn, config/gunicorn.conf.py sets
  PROMETHEUS_MULTIPROC_DIR, so each worker writes its histogram to a file
  there and any worker's scrape adds them all up (prometheus-client's
  multiprocess mode). Without it (development server, tests) the histogram
  lives in the app's own registry.

Labels carry codes only: prefecture and procedure codes, event names, queue
and job names, the Flask endpoint (never the path: status links hold tokens)
and the HTTP status. No reference, no name, no address.
"""

from __future__ import annotations

import datetime
import hmac
import os
import time

import redis
from flask import Blueprint, Flask, Response, abort, current_app, g, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from queue_service import metrics as events
from queue_service.pools import PoolId
from web import services

blueprint = Blueprint("metrics", __name__)

MULTIPROCESS_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
# Seconds; most pages answer in a few milliseconds, the dashboard in tens.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5, 5.0)


class QueueCollector:
    """Reads the service's state from Redis at each scrape (a few pipelined round trips)."""

    def __init__(self, store, redis_connection) -> None:
        self.store = store
        self.redis = redis_connection

    def collect(self):
        from worker.queues import JOB_DURATION_BUCKETS, queue_sizes

        pools = sorted(set(self.store.pools()) | set(self.store.scheduled_pools()))
        gauges = self.store.pool_gauges(pools)
        totals = self.store.stats_totals(pools)
        labels = ["prefecture", "procedure"]
        waiting = GaugeMetricFamily("qs_pool_waiting", "Registrations waiting for a draw.", labels=labels)
        pending = GaugeMetricFamily("qs_pool_pending_email", "Registrations waiting for their email confirmation.",
                                    labels=labels)
        counted = CounterMetricFamily("qs_events", "Events counted per pool (queue_service/metrics/__init__.py).",
                                      labels=[*labels, "event"])
        last_draw = GaugeMetricFamily("qs_pool_last_draw_cutoff_timestamp_seconds",
                                      "Entry cutoff of the pool's last committed draw.", labels=labels)
        for pool in pools:
            prefecture, procedure = PoolId(pool).parts
            waiting.add_metric([prefecture, procedure], gauges[pool]["waiting"])
            pending.add_metric([prefecture, procedure], gauges[pool]["pending_email"])
            for event, count in totals[pool].items():
                counted.add_metric([prefecture, procedure, event], count)
            cutoffs = self.store.committed_draw_cutoffs(pool)[-1:]
            if cutoffs:
                last_draw.add_metric([prefecture, procedure], cutoffs[0])
        yield from (waiting, pending, counted, last_draw)

        queued = GaugeMetricFamily("qs_rq_jobs", "RQ jobs by queue and state.", labels=["queue", "state"])
        for name, sizes in queue_sizes(self.redis).items():
            for state, count in sizes.items():
                queued.add_metric([name, state], count)
        yield queued

        for name, moment, text in (
            ("qs_clock_last_tick_timestamp_seconds", self.store.last_clock_tick(), "Last tick of the clock process."),
            ("qs_worker_last_heartbeat_timestamp_seconds", self.store.last_worker_heartbeat(),
             "Last heartbeat job run by a worker."),
        ):
            if moment is not None:
                yield GaugeMetricFamily(name, text, value=moment.timestamp())

        yield self._job_durations(JOB_DURATION_BUCKETS)

    def _job_durations(self, bounds) -> HistogramMetricFamily:
        family = HistogramMetricFamily("qs_job_duration_seconds", "How long RQ jobs ran.", labels=["job"])
        recorded = self.store.job_durations()
        names = sorted(name for name in recorded if ":" not in name)
        for name in names:
            buckets = [(str(bound), float(recorded.get(f"{name}:le:{bound}", 0))) for bound in bounds]
            buckets.append(("+Inf", float(recorded[name])))
            family.add_metric([name], buckets, sum_value=float(recorded.get(f"{name}:sum", 0)))
        return family


def multiprocess_directory() -> str | None:
    return os.environ.get(MULTIPROCESS_VARIABLE) or None


def init_app(app: Flask) -> None:
    """Measure every request's latency; register /metrics (exempt from the rate limits)."""
    registry = CollectorRegistry()
    latency = Histogram(
        "qs_http_request_duration_seconds",
        "Time to answer a request, by Flask endpoint and status.",
        labelnames=["method", "endpoint", "status"],
        buckets=LATENCY_BUCKETS,
        registry=registry,
    )
    app.extensions["queue_service_metrics"] = registry

    @app.before_request
    def start_timer():
        g.request_started = time.perf_counter()

    @app.after_request
    def observe(response):
        started = g.pop("request_started", None)
        if started is not None and request.endpoint != "metrics.metrics":
            endpoint = request.url_rule.endpoint if request.url_rule else "none"
            latency.labels(request.method, endpoint, str(response.status_code)).observe(time.perf_counter() - started)
        return response

    app.register_blueprint(blueprint)
    app.extensions["queue_service_limiter"].exempt(blueprint)


@blueprint.get("/metrics")
def metrics():
    token = services().settings.metrics_token
    if token:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
            abort(401)
    registry = CollectorRegistry()
    registry.register(QueueCollector(services().store, services().redis))
    directory = multiprocess_directory()
    if directory:
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry, path=directory)
        body = generate_latest(registry)
    else:
        body = generate_latest(registry) + generate_latest(current_app.extensions["queue_service_metrics"])
    return Response(body, mimetype=CONTENT_TYPE_LATEST.split(";")[0])


def note_rate_limited() -> None:
    """Count a 429 in the pool the request was about (the register page, the API, a status link).

    Only pools that exist are counted: a made-up address must not create keys.
    """
    from queue_service.errors import QueueServiceError
    from queue_service.registration.tokens import read_status_token

    store = services().store
    pool = None
    arguments = request.view_args or {}
    if "code" in arguments and "procedure_code" in arguments:
        pool = (arguments["code"], arguments["procedure_code"])
    elif request.endpoint == "api.create_registration":
        try:
            body = request.get_json(silent=True)
        except QueueServiceError:  # text that is not valid Unicode (web/decoding.py): no pool to count
            body = None
        if isinstance(body, dict) and isinstance(body.get("prefecture"), str) and isinstance(body.get("procedure"), str):
            pool = (body["prefecture"], body["procedure"])
    elif request.values.get("t"):
        try:
            key, _ = read_status_token(services().settings.secret_key, request.values["t"])
            pool = (key.prefecture, key.procedure)
        except QueueServiceError:
            pool = None
    if pool is None:
        return
    try:
        store.prefecture(pool[0])
        store.procedure(pool[1])
        store.count_event(f"{pool[0]}:{pool[1]}", events.Event.RATE_LIMITED.value,
                          datetime.datetime.now(datetime.timezone.utc))
    except (QueueServiceError, redis.RedisError):
        return  # an unknown pool, or Redis unreachable: the 429 is answered all the same
