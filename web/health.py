"""Health checks for load balancers and operators, as JSON."""

from __future__ import annotations

import datetime

from flask import Blueprint, jsonify

from queue_service.errors import StoreUnavailable
from queue_service.health import readiness
from web import services

blueprint = Blueprint("health", __name__)


@blueprint.get("/healthz")
def healthz():
    """The process is alive; says nothing about Redis."""
    return jsonify(status="ok")


@blueprint.get("/readyz")
def readyz():
    """200 when Redis answers and the worker and the clock were seen lately, else 503."""
    settings = services().settings
    now = datetime.datetime.now(datetime.timezone.utc)
    report = readiness(services().store, now, settings.heartbeat_max_age_seconds)
    if report["ready"]:
        return jsonify(report), 200
    return jsonify(report), 503, {"Retry-After": str(StoreUnavailable.retry_after)}
