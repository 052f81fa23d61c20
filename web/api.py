"""The JSON API, version 1. Errors are RFC 9457 problem documents (see errors.py)."""

from __future__ import annotations

from flask import Blueprint, jsonify, url_for

from queue_service.reference import Prefecture, Procedure, Site
from web import services
from web.extensions import csrf

blueprint = Blueprint("api", __name__, url_prefix="/api/v1")
# The API authenticates with tokens, never with cookies: no CSRF token to send.
csrf.exempt(blueprint)


@blueprint.get("/")
def index():
    return jsonify(
        prefectures=url_for("api.prefectures"),
        procedures=url_for("api.procedures"),
    )


@blueprint.get("/prefectures")
def prefectures():
    return jsonify(items=[_prefecture(p) for p in services().store.prefectures()])


@blueprint.get("/prefectures/<code>")
def prefecture(code: str):
    store = services().store
    return jsonify(_prefecture(store.prefecture(code)) | {"sites": [_site(s) for s in store.sites(code)]})


@blueprint.get("/procedures")
def procedures():
    return jsonify(items=[_procedure(p) for p in services().store.procedures()])


def _prefecture(prefecture: Prefecture) -> dict:
    return {"code": prefecture.code, "name": prefecture.name, "timezone": prefecture.timezone}


def _procedure(procedure: Procedure) -> dict:
    return {
        "code": procedure.code,
        "label": {"fr": procedure.label_fr, "en": procedure.label_en},
        "description": {"fr": procedure.description_fr, "en": procedure.description_en},
        "required_fields": [field.value for field in procedure.required_fields],
    }


def _site(site: Site) -> dict:
    return {
        "id": site.id,
        "name": site.name,
        "kind": site.kind,
        "address": {"street": site.address, "postcode": site.postcode, "city": site.city},
        "opening_hours": [
            {"weekday": h.weekday, "opens": h.opens.isoformat("minutes"), "closes": h.closes.isoformat("minutes")}
            for h in site.opening_hours
        ],
    }
