"""Readiness: is Redis reachable, and have the worker and the clock been seen lately?"""

from __future__ import annotations

import datetime

import redis

from queue_service.store import Store


def readiness(store: Store, now: datetime.datetime, max_age_seconds: int) -> dict:
    """A report of each dependency: {"ready": bool, "checks": {name: {...}}}."""
    try:
        store.ping()
        clock = store.last_clock_tick()
        worker = store.last_worker_heartbeat()
    except redis.RedisError as error:
        failure = {"ok": False, "error": type(error).__name__}
        return {"ready": False, "checks": {"redis": failure, "worker": {"ok": False}, "clock": {"ok": False}}}
    checks = {
        "redis": {"ok": True},
        "worker": _seen_check(worker, now, max_age_seconds),
        "clock": _seen_check(clock, now, max_age_seconds),
    }
    return {"ready": all(check["ok"] for check in checks.values()), "checks": checks}


def _seen_check(last_seen: datetime.datetime | None, now: datetime.datetime, max_age_seconds: int) -> dict:
    if last_seen is None:
        return {"ok": False, "last_seen": None, "age_seconds": None}
    age = (now - last_seen).total_seconds()
    return {"ok": age <= max_age_seconds, "last_seen": last_seen.isoformat(), "age_seconds": round(age, 1)}
