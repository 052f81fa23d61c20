"""The store's Lua scripts: read from store/scripts/*.lua, registered once per Store.

Each change that spans keys runs as one script, all or nothing. Scripts receive
every key they touch in KEYS, all under one hash tag (a pool's, or one global
key), so they run on Redis Cluster too, and never build key names themselves:
the freeze reads registrations by batches of keys (candidate_fields), and a
draw's commit receives the key of every registration its result names (the
caller reads the result first). A key known only once a script has read something (the registration
holding a person's place) is read by the caller first and passed in KEYS; the
script checks it still is the one and otherwise answers "retry"
(create_registration). Bookkeeping across pools (the lists of pools) is written
outside the scripts, first and idempotently. Each
file begins with a comment block documenting its KEYS and ARGV and naming the
Store method that calls it. The counting prelude (stats.lua) goes in front of
every script that counts, so a counter changes in the same atomic step as the
state it counts; the waits prelude (waits.lua), in front of every script that
records a registration's wait in the waiting set as ended; the fingerprints,
contacts and history preludes (prints.lua, contacts.lua, history.lua), in front
of every script that reads a registration's fingerprints, changes a contact key
or adds to a history: each reads the form written before it too; the fields
prelude (fields.lua, behind the table of store/fields.py), in front of every
script that names a registration's field; the person prelude (person.lua), in front
of every script that reads, takes or releases a person's place (with the ids
prelude, ids.lua, for the ids it keeps as bytes).

Files are read when the first Store is made, not at import.
"""

from __future__ import annotations

import functools
from importlib import resources

import redis
from redis.commands.core import Script

from queue_service.store import fields

PRELUDE = "stats"
# Each prelude (a file of scripts/) and the functions it defines: it goes in front of
# every script that calls one of them.
# The fields prelude comes first: the others may name fields too (waits.lua does).
PRELUDES = {"fields": ("FIELD.", "short_fields("), PRELUDE: ("count_event(", "count_wait("),
            "waits": ("end_wait(",), "prints": ("print_text(", "print_value(", "print_field("),
            "ids": ("id_value(", "id_text("),
            "contacts": ("contact_add(", "contact_remove(", "contact_count(", "contact_has("),
            "history": ("add_event(", "event_text("),
            "person": ("person_holder(", "person_hold(", "person_release(")}


def _read(name: str) -> str:
    text = (resources.files(__package__) / "scripts" / f"{name}.lua").read_text(encoding="utf-8")
    return fields.lua_table() + text if name == "fields" else text


@functools.cache
def source(name: str) -> str:
    """The text of script `name` as sent to Redis: its file, behind the preludes it calls.

    `source(PRELUDE)` is the counting prelude alone, to put in front of a script of one's own.
    """
    text = _read(name)
    if name in PRELUDES:
        return text
    # The preludes the script calls, and those they call (person.lua calls print_value), in PRELUDES' order.
    needed = text
    used: list[str] = []
    while True:
        found = [prelude for prelude, calls in PRELUDES.items() if any(call in needed for call in calls)]
        if found == used:
            return "".join(_read(prelude) for prelude in used) + text
        used = found
        needed = text + "".join(_read(prelude) for prelude in used)


class Scripts:
    """Every script of the store, registered on one client (redis-py sends EVALSHA, and
    the text only when Redis has not seen it yet); named after the Store method that calls it."""

    def __init__(self, client: redis.Redis) -> None:
        def load(name: str) -> Script:
            return client.register_script(source(name))

        # Registrations (store/registrations.py).
        self.create_registration = load("create_registration")
        self.confirm_email = load("confirm_email")
        self.close_registration = load("close_registration")
        self.request_email_change = load("request_email_change")
        self.move_contact = load("move_contact")
        self.change_language = load("change_language")
        self.resend_link = load("resend_link")
        self.purge_registration = load("purge_registration")
        self.move_identity = load("move_identity")
        # Slots and schedules (store/slots.py).
        self.open_slot_counts = load("open_slot_counts")
        self.advance_reconciled = load("advance_reconciled")
        # Draws (store/draws.py).
        self.create_draw = load("create_draw")
        self.waiting_scan = load("waiting_scan")
        self.candidate_fields = load("candidate_fields")
        self.update_draw_state = load("update_draw_state")
        self.commit_draw = load("commit_draw")
        # Offers (store/offers.py).
        self.move_offer = load("move_offer")
        self.offer_standby = load("offer_standby")
        self.release_standby_slot = load("release_standby_slot")
        self.queue_reminder = load("queue_reminder")
        # Deliveries (store/outbox.py).
        self.retry_delivery = load("retry_delivery")
        # Staff sign-in (store/accounts.py).
        self.take_login_attempt = load("take_login_attempt")


# How long (milliseconds) a write that must be replicated waits for a replica's
# acknowledgement before the request fails (503) instead of being acknowledged.
REPLICA_WAIT_MILLISECONDS = 2000


class NotReplicated(redis.ConnectionError):
    """No replica acknowledged a write in time (WAIT): it is not acknowledged to anyone. A
    ConnectionError, so that a page answers 503 with Retry-After and a job is put back, as
    for Redis away; the write may still be on the master: the change is made so that doing
    it again is harmless (the same person registering again, a draw's commit run again)."""


def run_replicated(client: redis.Redis, script: Script, replicas: int, keys: list, args: list, first: tuple = ()):
    """Run `script`, then, when `replicas` > 0, WAIT on the same connection (a pipeline: WAIT
    counts the writes of its own connection) until that many replicas have the change.

    `first`: commands (tuples of words) sent before the script in the same round trip, whose
    replies are dropped (idempotent bookkeeping, such as listing a pool). The script goes as a
    bare EVALSHA there: redis-py would ask SCRIPT EXISTS first, a round trip of its own, for
    a Script in a pipeline; a server that has not seen it yet answers NOSCRIPT, and all is
    sent again once it is loaded."""
    if not first:
        if not replicas:
            return script(keys=keys, args=args)
        with client.pipeline(transaction=False) as pipe:
            script(keys=keys, args=args, client=pipe)
            pipe.execute_command("WAIT", replicas, REPLICA_WAIT_MILLISECONDS)
            replies = pipe.execute()
        return _replicated(replies, replicas)
    for attempt in (1, 2):
        with client.pipeline(transaction=False) as pipe:
            for command in first:
                pipe.execute_command(*command)
            pipe.evalsha(script.sha, len(keys), *keys, *args)
            if replicas:
                pipe.execute_command("WAIT", replicas, REPLICA_WAIT_MILLISECONDS)
            replies = pipe.execute(raise_on_error=False)[len(first):]
        if attempt == 1 and isinstance(replies[0], redis.exceptions.NoScriptError):
            script.sha = client.script_load(script.script)
            continue
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        break
    return _replicated(replies, replicas) if replicas else replies[0]


def _replicated(replies: list, replicas: int):
    """The script's result from the replies [result, WAIT's count], or NotReplicated."""
    result, acknowledged = replies
    if int(acknowledged) < replicas:
        raise NotReplicated(f"{acknowledged} of {replicas} replica(s) acknowledged the write within "
                            f"{REPLICA_WAIT_MILLISECONDS} ms")
    return result
