"""Draw schedules and policies, and the draws."""

from __future__ import annotations

from flask import jsonify

from queue_service.draws.schedules import schedule_to_dict
from queue_service.pools import PoolId
from queue_service.staff.accounts import Scope
from web import services
from web.staff_api import answer, route


@route("/prefectures/<code>/schedules", "GET", Scope.READ, summary="Its draw schedules and policies",
       responses={"200": answer("Each procedure's schedule, or null")})
def schedules(principal, code: str):
    store = services().store
    found = {}
    for procedure in store.procedures():
        schedule = store.schedule(PoolId.of(code, procedure.code))
        found[procedure.code] = schedule_to_dict(schedule) if schedule else None
    return jsonify(found)
