"""Registrations: how many wait."""

from __future__ import annotations

from flask import jsonify

from queue_service.pools import PoolId
from queue_service.staff.accounts import Scope
from web import services
from web.staff_api import answer, route


@route("/prefectures/<code>/registrations", "GET", Scope.READ,
       summary="How many wait in each pool (no personal data)",
       responses={"200": answer("Counts per procedure", example={"renewal": {"waiting": 1204}})})
def registrations(principal, code: str):
    store = services().store
    return jsonify(
        {procedure.code: {"waiting": store.waiting_count(PoolId.of(code, procedure.code))}
         for procedure in store.procedures()}
    )
