"""The prefecture's sites."""

from __future__ import annotations

from flask import jsonify

from queue_service.staff.accounts import Scope
from web import services
from web.api import site_json
from web.staff_api import answer, route


@route("/prefectures/<code>/sites", "GET", Scope.READ, summary="The prefecture's sites",
       responses={"200": answer("Its sites, closed ones included")})
def sites(principal, code: str):
    return jsonify(items=[site_json(site) | {"closed": site.closed} for site in services().store.sites(code)])
