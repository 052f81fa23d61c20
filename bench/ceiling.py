"""The ceiling of the web stack: the least a registration endpoint could do, on the same stack.

A minimal Flask app with Flask-Limiter counting in Redis (one fixed-window
limit per address, raised out of the way like the service's for the bench),
that validates the JSON body of a registration (the fields bench/register.lua
posts: every one present, text of a sane length, a date, an email, consent)
and writes one hash and one set member. bench/register.py runs it under
gunicorn beside the service, against the same Redis, and divides the service's
throughput by this one's: the ratio says how much the service adds to what
Flask, gunicorn, Flask-Limiter and redis-py cost anyway.

    CEILING_REDIS_URL=redis://127.0.0.1:6379/15 \\
        gunicorn -w 2 --chdir bench "ceiling:create_app()"
"""

from __future__ import annotations

import datetime
import os
import secrets

import redis
from flask import Flask, jsonify, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

TEXT_FIELDS = ("prefecture", "procedure", "family_name", "given_names", "nationality", "email", "phone")


def problems(body: object) -> dict[str, str]:
    """What is wrong with a registration body (empty if nothing)."""
    if not isinstance(body, dict):
        return {"body": "expected a JSON object"}
    found = {}
    for name in TEXT_FIELDS:
        value = body.get(name)
        if not isinstance(value, str) or not 0 < len(value) <= 200:
            found[name] = "expected text"
    try:
        datetime.date.fromisoformat(str(body.get("birth_date")))
    except ValueError:
        found["birth_date"] = "expected a date"
    if "@" not in str(body.get("email", "")):
        found["email"] = "expected an email address"
    if body.get("consent") is not True:
        found["consent"] = "expected true"
    return found


def create_app() -> Flask:
    url = os.environ.get("CEILING_REDIS_URL", "redis://127.0.0.1:6379/0")
    connection = redis.Redis.from_url(url)
    app = Flask(__name__)
    limiter = Limiter(
        key_func=get_remote_address,
        app=app,
        storage_uri="redis://",
        storage_options={"connection_pool": connection.connection_pool},
        key_prefix="ceiling",
        strategy="fixed-window",
        headers_enabled=False,
    )

    @app.post("/api/v1/registrations")
    @limiter.limit("1000000 per hour")
    def register():
        body = request.get_json(silent=True)
        found = problems(body)
        if found:
            return jsonify(errors=found), 400
        registration_id = secrets.token_hex(16)
        with connection.pipeline(transaction=True) as pipe:
            pipe.hset(f"ceiling:registration:{registration_id}", mapping={
                name: str(body[name]) for name in (*TEXT_FIELDS, "birth_date")})
            pipe.sadd("ceiling:registrations", registration_id)
            pipe.execute()
        return jsonify(ref=registration_id, status="pending_email"), 201

    @app.get("/healthz")
    @limiter.exempt
    def health():
        return jsonify(status="ok")

    return app
