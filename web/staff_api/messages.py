"""Messages to applicants that were not delivered: listed, and sent again (as the page
/staff/p/<code>/deliveries does, with notifications.undelivered and retry_delivery)."""

from __future__ import annotations

from flask import jsonify, request, url_for

from queue_service import notifications
from queue_service.errors import N_, ValidationFailed
from queue_service.pools import PoolId
from queue_service.staff.accounts import Scope
from web import services
from web.registration import now
from web.staff_api import answer, route

STATES = ("undelivered",)
STATE_QUERY = {"name": "state", "in": "query", "required": False,
               "schema": {"type": "string", "enum": list(STATES), "default": "undelivered"},
               "description": "Which messages: `undelivered` (the only list kept: delivered messages are not listed)"}
MESSAGE_EXAMPLE = {
    "procedure": "renewal",
    "message_id": "offer:01-renewal-20270104T1000:9f2c61d0:1798794000.0",
    "channel": "email",
    "kind": "offer",
    "ref": "01R-7KQ2M9XH4P",
    "status": "failed",
    "error": "ConnectionRefusedError",
    "attempts": 5,
    "at": "2027-01-04T09:21:13+00:00",
    "final": True,
    "can_retry": True,
    "retried_by": None,
    "retried_at": None,
    "retry": "/api/v1/staff/prefectures/01/messages/renewal/offer:01-renewal-20270104T1000:9f2c61d0:1798794000.0/"
             "email/retry",
}
MESSAGE_SCHEMA = {
    "type": "object",
    "properties": {
        "procedure": {"type": "string"}, "message_id": {"type": "string"},
        "channel": {"type": "string", "enum": list(notifications.CHANNELS)},
        "kind": {"type": "string"}, "ref": {"type": "string"},
        "status": {"type": "string", "enum": ["failed", "refused", "retrying"],
                   "description": "failed: tried again by the worker until final; refused: never sent again "
                                  "by the worker; retrying: sent again by staff, waiting for the worker"},
        "error": {"type": "string"}, "attempts": {"type": "integer"}, "at": {"type": "string", "format": "date-time"},
        "final": {"type": "boolean", "description": "No more automatic tries: it needs a person"},
        "can_retry": {"type": "boolean", "description": "The message was kept, so it can be sent again"},
        "retried_by": {"type": ["string", "null"], "description": "The staff account that last sent it again"},
        "retried_at": {"type": ["string", "null"], "format": "date-time"},
        "retry": {"type": "string", "description": "Where to POST to send it again"},
    },
}


def listed(code: str, failure: dict) -> dict:
    """What the API shows of an undelivered message (never its content: the applicant's data)."""
    return {
        "procedure": failure["procedure"],
        "message_id": failure["message_id"],
        "channel": failure["channel"],
        "kind": failure.get("kind"),
        "ref": failure.get("ref"),
        "status": failure.get("status"),
        "error": failure.get("error"),
        "attempts": failure.get("attempts"),
        "at": failure.get("at"),
        "final": bool(failure.get("final")) or failure.get("status") == "refused",
        "can_retry": "message" in failure,
        "retried_by": failure.get("retried_by"),
        "retried_at": failure.get("retried_at"),
        "retry": url_for("staff_api.retry_message", code=code, procedure=failure["procedure"],
                         message_id=failure["message_id"], channel=failure["channel"]),
    }


@route("/prefectures/<code>/messages", "GET", Scope.READ,
       summary="Messages to applicants not delivered (the page “Undelivered messages”)",
       description="Failed deliveries still retried by the worker, and those given up (`final`), newest first "
                   "in each pool; `retry` is where to send one again (scope `messages:retry`).",
       parameters=(STATE_QUERY,), problems=(422,),
       responses={"200": answer("The undelivered messages", {"type": "array", "items": MESSAGE_SCHEMA},
                                example=[MESSAGE_EXAMPLE])})
def undelivered_messages(principal, code: str):
    if request.args.get("state", "undelivered") not in STATES:
        raise ValidationFailed({"state": N_("Give state=undelivered: only undelivered messages are listed.")})
    return jsonify([listed(code, failure) for failure in notifications.undelivered(services().store, code)])


@route("/prefectures/<code>/messages/<procedure>/<message_id>/<channel>/retry", "POST", Scope.MESSAGES_RETRY,
       summary="Send an undelivered message again (the page's “Send again”)",
       description="The message goes back to its pool's outbox, its record saying which account asked; the worker "
                   "sends it with the next dispatch. A message delivered since, or not kept, answers 409; an "
                   "unknown one 404. No request body: the address (the `retry` link of the list) names the "
                   "message and its channel.",
       responses={"200": answer("The message's record, with who sent it again", MESSAGE_SCHEMA,
                                example=MESSAGE_EXAMPLE)})
def retry_message(principal, code: str, procedure: str, message_id: str, channel: str):
    store = services().store
    pool = PoolId.of(code, store.procedure(procedure).code)
    record = notifications.retry_delivery(store, pool, message_id, channel, principal.account_id, now())
    record = store.delivery(pool, message_id, channel) or record  # now with who sent it again
    return jsonify(listed(code, {"procedure": procedure, "message_id": message_id, "channel": channel, **record}))
