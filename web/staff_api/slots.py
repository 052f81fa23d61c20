"""The prefecture's slots."""

from __future__ import annotations

import datetime
import re

from flask import jsonify, request

from queue_service.staff.accounts import Scope
from web import services
from web.registration import now
from web.staff_api import answer, route


def slot_json(slot) -> dict:
    return {
        "id": slot.id,
        "site": slot.site,
        "procedure": slot.procedure,
        "starts_at": slot.starts_at.isoformat(),
        "duration_minutes": slot.duration_minutes,
        "counter": slot.counter,
        "status": slot.status.value,
    }


@route("/prefectures/<code>/slots", "GET", Scope.READ, summary="Its slots of the next days",
       parameters=({"name": "days", "in": "query", "required": False, "schema": {"type": "string"},
                    "description": "How many days from now (1 to 366; 30 when absent or not a number)"},),
       responses={"200": answer("Its slots, soonest first")})
def slots(principal, code: str):
    start = now()
    days = request.args.get("days", "30")
    end = start + datetime.timedelta(days=min(int(days), 366) if re.fullmatch(r"[0-9]{1,4}", days) else 30)
    return jsonify(items=[slot_json(slot) for slot in services().store.prefecture_slots(code, start, end)])
