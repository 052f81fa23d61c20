"""Every Redis key name of the service: the only module that builds one.

The names are the stored data's addresses: existing data is found only if they
stay byte for byte what they are, so a template changes only with a migration.
Every key is a named template below with what it holds and its type; code reads
them through `PoolKeys(pool)` (the keys of one pool, as RQ's `Job.key`),
`PrefectureKeys(code)` and the staff key functions. Keys of one prefecture
carry its code as a hash tag (`{01}`), keys of one pool carry `{01:renewal}`,
so that each group lives on one Redis Cluster slot and multi-key scripts stay
legal there.
"""

from __future__ import annotations

# Hash: prefecture code -> JSON {code, name, timezone}. Written by `qs load-reference`.
PREFECTURES_KEY = "qs:ref:prefectures"
# Hash: procedure code -> JSON {code, labels, descriptions, required_fields}.
PROCEDURES_KEY = "qs:ref:procedures"
# Hash per prefecture: site id -> JSON of the site (address, opening hours).
SITES_KEY = "qs:{{{prefecture}}}:sites"
# String: a random token replaced after every write to the prefectures, procedures or
# sites (ReferenceStore), so that a process keeping them in memory reads one key per
# request to know they are still current (pool_reference); absent until the first write.
REFERENCE_VERSION_KEY = "qs:ref:version"
# String: ISO-8601 UTC time of the clock process's last tick.
CLOCK_TICK_KEY = "qs:health:clock"
# String: ISO-8601 UTC time the worker last ran the heartbeat job.
WORKER_HEARTBEAT_KEY = "qs:health:worker"
# String, with a TTL: set once when the clock enqueues periodic job `name` for
# time bucket `bucket`, so that several clocks enqueue it only once.
PERIODIC_RUN_KEY = "qs:clock:periodic:{name}:{bucket}"
# Prefix of the counters Flask-Limiter keeps (strings with a TTL, its own format).
RATE_LIMIT_PREFIX = "qs:ratelimit"
# String (an integer) with a TTL: the requests a holder (a client address, or "email:" and
# a keyed hash of an email address) spent of one budget (registration, registration-
# unproven, registration-email) in the fixed window that began at its first request,
# for one of the budget's limits (`limit`: "1000/1/hour"). Read and spent by
# store/budgets.py, on the queues' Redis, beside Flask-Limiter's counters.
BUDGET_KEY = RATE_LIMIT_PREFIX + ":budget:{budget}:{limit}:{holder}"
# String "1" with a TTL (until its challenge expires, plus a minute): a proof of work
# (queue_service/proof_of_work.py) spent, by its challenge's signature (hex HMAC), so
# that the same proof cannot earn a second request the generous limit.
SPENT_CHALLENGE_KEY = "qs:altcha:spent:{signature}"
# String (JSON {"path", "until"}) with a TTL, per SMS short link by its code (12 characters of
# Crockford's alphabet): the path and query it redirects to ("/offer?t=<status token>") and
# until when (epoch seconds) it does. It is kept SHORT_LINK_GONE_FOR longer (queue_service/
# notifications/short_links.py), to answer "expired" rather than "unknown". No hash tag: a
# code names no pool, and no script spans it.
SHORT_LINK_KEY = "qs:short-link:{code}"
# Set of pool names ("01:renewal") that have had registrations: what purges walk.
POOLS_KEY = "qs:pools"
# Set per prefecture: keyed hashes (HMAC) of the AGDREF numbers its records know.
AGDREF_KEY = "qs:{{{prefecture}}}:agdref"
# Set per prefecture, for a moment: the new AGDREF hashes, renamed over AGDREF_KEY
# in the transaction that writes them (so readers see the old set or the new one).
AGDREF_STAGING_KEY = "qs:{{{prefecture}}}:agdref:staging"

# Staff. Hash per account: its fields (email, name, role, prefecture, argon2 hash...).
STAFF_ACCOUNT_KEY = "qs:staff:account:{id}"
# Hash: SHA-256 of a staff email -> account id (unique emails, no address in key names).
STAFF_EMAILS_KEY = "qs:staff:emails"
# Set of all staff account ids.
STAFF_ACCOUNTS_KEY = "qs:staff:accounts"
# Hash with a TTL (staff.accounts.LOGIN_FAILURE_MEMORY, renewed at each failure):
# sign-in failures of one account (SHA-256 of its email) from one client (SHA-256
# of its address, or of its IPv6 /64 network): `failures` (count) and `last_at`
# (milliseconds since the epoch). A success deletes it. (It replaced the strings
# qs:staff:login-failures:{email_digest}, which expired 15 minutes after the change.)
LOGIN_FAILURES_KEY = "qs:staff:login-failures:{email_digest}:{client_digest}"
# Hash with a TTL (the idle timeout): one staff session by the SHA-256 of its id.
STAFF_SESSION_KEY = "qs:staff:session:{digest}"
# Hash: one API token by the SHA-256 of its text (account, role, scope, label).
API_TOKEN_KEY = "qs:staff:token:{digest}"
# Set per account: digests of its API tokens (to list and revoke them).
ACCOUNT_TOKENS_KEY = "qs:staff:account:{id}:tokens"

# String (JSON) per staff API request sent with an Idempotency-Key, by its account and the
# SHA-256 of the key: the request's fingerprint and, once answered, the answer (status,
# headers, body) to send again. While the first request runs, a short-lived "pending"
# record (web/idempotency.py gives the durations).
IDEMPOTENCY_KEY = "qs:staff:idempotency:{account}:{digest}"

# Set of pools ("01:renewal") that have a draw schedule: what the clock walks.
SCHEDULED_POOLS_KEY = "qs:schedules"

# Keys of one pool share the hash tag {<prefecture>:<procedure>}.
# Hash: one registration's fields (personal data included; never in key names), kept small
# enough for Redis's compact listpack encoding: the fields and their encoding are listed
# above _registration_fields in store/registrations.py, their names in Redis (one or two
# characters since 2026-11-29; long ones before, renamed on first touch) in store/fields.py.
# The id is 16 URL-safe characters since 2026-11-29 (32 hexadecimal before; both valid).
REGISTRATION_KEY = "qs:{{{pool}}}:reg:{id}"
# List of JSON events {at, kind, detail}: the history of a registration written before
# 2026-11-29, for its proof. Since then the history is on the registration's hash (fields
# h, h1, h2...: store/scripts/history.lua), and the first event added to a registration
# moves its list there and deletes it; the scripts that add events, create or purge one are
# still handed this key for that.
HISTORY_KEY = REGISTRATION_KEY + ":history"
# Hash: the person's identity fingerprint (keyed hash of identity; the first 16 of its 32
# bytes) -> the registration id holding that person's place (its 12 bytes: scripts/ids.lua).
# One field a person, not one key (about 80 bytes less each: a key costs about 100 bytes
# before its value); since 2026-11-29 (scripts/person.lua, Store.person_holder).
PEOPLE_KEY = "qs:{{{pool}}}:people"
# String: registration id holding the place of one person, as written before 2026-11-29
# (PEOPLE_KEY since). Still read, and deleted when its registration's place moves into
# PEOPLE_KEY or is released (scripts/person.lua); scripts are still handed it for that.
IDENTITY_KEY = "qs:{{{pool}}}:identity:{fingerprint}"
# Hash: a contact's fingerprint (keyed hash of one email address or phone number; the
# first 16 of its 32 bytes) -> the ids of the registrations active with it, joined by
# commas (at most the cap). One field a contact, not one key (about 80 bytes less each);
# since 2026-11-29 (store/scripts/contacts.lua, Store.contact_holders).
CONTACTS_KEY = "qs:{{{pool}}}:contacts"
# The registrations active with one email or phone (keyed hash of it), as written before
# 2026-11-29 (CONTACTS_KEY since): a set, or, earlier that day, a hash of id -> "". Still
# read, and moved into CONTACTS_KEY by the first script that touches it (contacts.lua);
# scripts are still handed it for that. Without that contact, scripts are handed the
# "none" key, which they never write.
CONTACT_KEY = "qs:{{{pool}}}:contact:{fingerprint}"
# Hash: public reference -> registration id (a new id as its 12 bytes: scripts/ids.lua).
REFS_KEY = "qs:{{{pool}}}:refs"
# Sorted set: registrations waiting for a draw, scored by the time they joined (for
# one who went back to the pool, the cutoff of the draw that offered them a slot:
# draws lost are counted from there). When the wait really began is the registration's
# field `waiting_entered_at`.
WAITING_KEY = "qs:{{{pool}}}:waiting"
# Sorted set: the waits that ended, "<registration id>|<entered>|<joined>|<draws lost>"
# (epochs, and the losses settled before that wait), scored by when each ended. Written
# when a registration leaves the waiting set for a standby offer or by closing, and,
# for a wait a draw's commit ended (the commit writes none; the draw's record keeps
# when: "committed_epoch"), when the registration waits again (store/scripts/waits.lua). A draw's freeze reads those that ended after its cutoff: who was
# waiting at the cutoff (draws.waiting_at_cutoff). Kept as long as closed
# registrations (the purge job drops older ones).
WAITS_ENDED_KEY = "qs:{{{pool}}}:waits-ended"
# Sorted set: registrations awaiting email confirmation, scored by their deadline.
UNCONFIRMED_KEY = "qs:{{{pool}}}:unconfirmed"
# Sorted set: closed registrations (withdrawn...), scored by when they closed.
CLOSED_KEY = "qs:{{{pool}}}:closed"
# Hash: slot id -> JSON of the slot (site, start, length, counter).
SLOTS_KEY = "qs:{{{pool}}}:slots"
# Hash: slot id -> its status (open, offered, booked, cancelled).
SLOT_STATES_KEY = "qs:{{{pool}}}:slot-states"
# Sorted set: the pool's committed draws, scored by their entry cutoff. A
# waiting registration has lost every draw committed since it joined.
COMMITTED_DRAWS_KEY = "qs:{{{pool}}}:committed-draws"
# Sorted set: slot ids scored by their start time (epoch seconds).
SLOT_TIMES_KEY = "qs:{{{pool}}}:slot-times"
# String: JSON of the pool's draw schedule and policy.
SCHEDULE_KEY = "qs:{{{pool}}}:schedule"
# String: epoch seconds up to which the clock has enqueued the pool's draws.
RECONCILED_KEY = "qs:{{{pool}}}:reconciled-until"
# Hash: one draw's record (scheduled time, state, trigger, counts).
DRAW_KEY = "qs:{{{pool}}}:draw:{draw_id}"
# Sorted set: the pool's draw ids scored by their scheduled time.
DRAWS_KEY = "qs:{{{pool}}}:draws"
# Sorted set: draw ids of the draws run now (by an admin) whose run is not claimed yet,
# scored by when their entries close and they run (epoch). No schedule names them: the
# clock claims each here once its time has come, and the claim takes it out.
DRAWS_TO_RUN_KEY = "qs:{{{pool}}}:draws-to-run"
# String: the draw's fencing counter; each run takes the next value, and only
# the latest may change the draw.
DRAW_FENCE_KEY = "qs:{{{pool}}}:draw:{draw_id}:fence"
# Hash: the frozen entrants, slots and phases as columns (and, privately, which
# registration each reference is): the fields are described in frozen.py.
# (String: one JSON document, for draws frozen before that format.)
DRAW_FROZEN_KEY = "qs:{{{pool}}}:draw:{draw_id}:frozen"
# String: JSON of the winners in selection order, as columns {"refs": [...],
# "slots": [...], "registrations": [...], "entrants": [...], "by_wait": [...]}
# (entrants: each winner's position among the frozen entrants; by_wait: the
# winners' positions in the order they joined the waiting list). Results saved
# before that format are a list of {ref, slot, registration}.
DRAW_RESULT_KEY = "qs:{{{pool}}}:draw:{draw_id}:result"
# Hash: registration id -> JSON of its offer (draw, slot, deadline, status).
OFFERS_KEY = "qs:{{{pool}}}:offers"
# List: JSON messages to send, every message to applicants: {id, kind,
# registration_id} and, about an offer, draw_id and slot, about an email change,
# address_print. Written in the same script as the change they tell of; the
# dispatch job hands them to send jobs (worker/jobs.py).
OUTBOX_KEY = "qs:{{{pool}}}:outbox"
# String: a token while one dispatcher hands the outbox to send jobs.
OUTBOX_LOCK_KEY = "qs:{{{pool}}}:outbox:lock"
# Sorted set: registration id -> deadline (epoch) of its pending standby offer.
# (The offers a draw makes share one deadline: the draw record's field
# "offers_deadline", indexed in DRAW_DEADLINES_KEY; those whose slot starts too
# soon for it, and offers committed before draws shared one, have their own
# entry here.)
OFFER_DEADLINES_KEY = "qs:{{{pool}}}:offer-deadlines"
# Sorted set: draw id -> the deadline (epoch) of the offers it made, until the
# expiry round has expired those still pending after it.
DRAW_DEADLINES_KEY = "qs:{{{pool}}}:draw-deadlines"
# Hash: slot id -> registration id holding it (offered or booked).
SLOT_HOLDERS_KEY = "qs:{{{pool}}}:slot-holders"
# Sorted set: registration id -> start (epoch) of its booked slot, until attended or marked no-show.
BOOKINGS_KEY = "qs:{{{pool}}}:bookings"
# Hash: booking code -> registration id.
BOOKING_CODES_KEY = "qs:{{{pool}}}:booking-codes"
# Hash: slot id -> draw id, for a freed slot awaiting the next entrant of that draw's order
# (given back by its holder, or not applied at the draw's commit).
STANDBY_KEY = "qs:{{{pool}}}:standby"
# Set: references the draw's standby must skip: those it offered a freed slot, and
# its winners once back in the pool (after declining, or letting the deadline pass,
# or their slot cancelled). Winners still holding their offer are not waiting, so
# they need no entry: the commit does not write a hundred thousand.
DRAW_OFFERED_KEY = "qs:{{{pool}}}:draw:{draw_id}:offered"
# Hash: "<registration id>:<slot id>:<hours>" -> when that reminder was queued (epoch).
REMINDERS_KEY = "qs:{{{pool}}}:reminders"
# Hash: "<message id>|<channel>" -> JSON of its delivery {status, attempts, at, error, provider_id}.
DELIVERIES_KEY = "qs:{{{pool}}}:deliveries"
# Sorted set: "<message id>|<channel>" -> when its delivery last failed (epoch), while it fails.
DELIVERY_FAILURES_KEY = "qs:{{{pool}}}:delivery-failures"

# Counters -------------------------------------------------------------------
# The contract every script that changes a pool follows (the offers' scripts included):
#
#   qs:{pool}:stats                   hash: event -> count since the pool began
#   qs:{pool}:stats:day:{YYYY-MM-DD}  hash: event -> count on that day, in the
#                                     prefecture's time zone
#   qs:{pool}:stats:draw:{draw_id}    hash: event -> count, for what became of
#                                     one draw's offers (slots_offered,
#                                     offer_confirmed, offer_declined...)
#   qs:{pool}:stats:waits             hash: whole days from joining the pool to
#                                     the appointment's start -> how many
#                                     bookings (filled at confirmation)
#
# Fields are the event names of queue_service/metrics/__init__.py (EVENTS), nothing
# else. Counters change only inside the Lua script that makes the change they
# count, through the helpers of queue_service/store/scripts/stats.lua (the
# loader puts it in front of every script that counts):
# `count_event(event, amount, KEYS[i], KEYS[j] [, KEYS[k]])` and
# `count_wait(KEYS[w], days)`. The keys are passed in KEYS (built by
# `Store.stats_keys(pool, now, draw_id=None)` and `Store.waits_key(pool)`),
# so scripts stay on the pool's cluster slot. Events that no script makes
# (a rate limit hit) go through `Store.count_event`. Gauges ("waiting now",
# "pending email") are not counters: they are the ZCARD of the sets above.
# Counters are kept forever (a few hundred small hashes per pool and year):
# the public statistics go back to the pool's start.
STATS_KEY = "qs:{{{pool}}}:stats"
STATS_DAY_KEY = "qs:{{{pool}}}:stats:day:{day}"
STATS_DRAW_KEY = "qs:{{{pool}}}:stats:draw:{draw_id}"
STATS_WAITS_KEY = "qs:{{{pool}}}:stats:waits"
# Hash: job function name -> count, and "<name>:sum" -> total seconds, and
# "<name>:le:<bound>" -> count of runs at most `bound` seconds: the RQ jobs'
# durations, written by the worker (any host), read by /metrics.
JOB_DURATIONS_KEY = "qs:stats:jobs"

# SCAN pattern of every key the service writes (Flask-Limiter's included).
ALL_PATTERN = "qs:*"


class PoolKeys:
    """The keys of one pool ("01:renewal"), all under its hash tag: `PoolKeys(pool).waiting`.

    Made per call (it holds only the pool id): a property or method per key
    template above, named after it.
    """

    __slots__ = ("pool",)

    def __init__(self, pool: str) -> None:
        self.pool = pool

    def __repr__(self) -> str:
        return f"PoolKeys({self.pool!r})"

    @property
    def pattern(self) -> str:
        """SCAN pattern of every key of the pool."""
        return pool_pattern(self.pool)

    # Registrations.

    def registration(self, registration_id: str) -> str:
        return REGISTRATION_KEY.format(pool=self.pool, id=registration_id)

    @property
    def registration_prefix(self) -> str:
        """What a script that walks many registrations puts before an id to make `registration(id)`."""
        return REGISTRATION_KEY.format(pool=self.pool, id="")

    def history(self, registration_id: str) -> str:
        return HISTORY_KEY.format(pool=self.pool, id=registration_id)

    def identity(self, fingerprint: str) -> str:
        return IDENTITY_KEY.format(pool=self.pool, fingerprint=fingerprint)

    @property
    def people(self) -> str:
        return PEOPLE_KEY.format(pool=self.pool)

    @property
    def contacts(self) -> str:
        return CONTACTS_KEY.format(pool=self.pool)

    def contact(self, fingerprint: str | None) -> str:
        return CONTACT_KEY.format(pool=self.pool, fingerprint=fingerprint or "none")

    @property
    def refs(self) -> str:
        return REFS_KEY.format(pool=self.pool)

    @property
    def waiting(self) -> str:
        return WAITING_KEY.format(pool=self.pool)

    @property
    def waits_ended(self) -> str:
        return WAITS_ENDED_KEY.format(pool=self.pool)

    @property
    def unconfirmed(self) -> str:
        return UNCONFIRMED_KEY.format(pool=self.pool)

    @property
    def closed(self) -> str:
        return CLOSED_KEY.format(pool=self.pool)

    # Slots and the schedule.

    @property
    def slots(self) -> str:
        return SLOTS_KEY.format(pool=self.pool)

    @property
    def slot_states(self) -> str:
        return SLOT_STATES_KEY.format(pool=self.pool)

    @property
    def slot_times(self) -> str:
        return SLOT_TIMES_KEY.format(pool=self.pool)

    @property
    def slot_holders(self) -> str:
        return SLOT_HOLDERS_KEY.format(pool=self.pool)

    @property
    def schedule(self) -> str:
        return SCHEDULE_KEY.format(pool=self.pool)

    @property
    def reconciled(self) -> str:
        return RECONCILED_KEY.format(pool=self.pool)

    # Draws.

    def draw(self, draw_id: str) -> str:
        return DRAW_KEY.format(pool=self.pool, draw_id=draw_id)

    @property
    def draws(self) -> str:
        return DRAWS_KEY.format(pool=self.pool)

    @property
    def draws_to_run(self) -> str:
        return DRAWS_TO_RUN_KEY.format(pool=self.pool)

    def draw_fence(self, draw_id: str) -> str:
        return DRAW_FENCE_KEY.format(pool=self.pool, draw_id=draw_id)

    def draw_frozen(self, draw_id: str) -> str:
        return DRAW_FROZEN_KEY.format(pool=self.pool, draw_id=draw_id)

    def draw_result(self, draw_id: str) -> str:
        return DRAW_RESULT_KEY.format(pool=self.pool, draw_id=draw_id)

    def draw_offered(self, draw_id: str) -> str:
        return DRAW_OFFERED_KEY.format(pool=self.pool, draw_id=draw_id)

    @property
    def committed_draws(self) -> str:
        return COMMITTED_DRAWS_KEY.format(pool=self.pool)

    @property
    def draw_deadlines(self) -> str:
        return DRAW_DEADLINES_KEY.format(pool=self.pool)

    # Offers and bookings.

    @property
    def offers(self) -> str:
        return OFFERS_KEY.format(pool=self.pool)

    @property
    def offer_deadlines(self) -> str:
        return OFFER_DEADLINES_KEY.format(pool=self.pool)

    @property
    def bookings(self) -> str:
        return BOOKINGS_KEY.format(pool=self.pool)

    @property
    def booking_codes(self) -> str:
        return BOOKING_CODES_KEY.format(pool=self.pool)

    @property
    def standby(self) -> str:
        return STANDBY_KEY.format(pool=self.pool)

    @property
    def reminders(self) -> str:
        return REMINDERS_KEY.format(pool=self.pool)

    # The outbox and deliveries.

    @property
    def outbox(self) -> str:
        return OUTBOX_KEY.format(pool=self.pool)

    @property
    def outbox_lock(self) -> str:
        return OUTBOX_LOCK_KEY.format(pool=self.pool)

    @property
    def deliveries(self) -> str:
        return DELIVERIES_KEY.format(pool=self.pool)

    @property
    def delivery_failures(self) -> str:
        return DELIVERY_FAILURES_KEY.format(pool=self.pool)

    # Counters (the contract is above STATS_KEY).

    @property
    def stats(self) -> str:
        return STATS_KEY.format(pool=self.pool)

    def stats_day(self, day: str) -> str:
        """`day` is "YYYY-MM-DD" in the prefecture's time zone."""
        return STATS_DAY_KEY.format(pool=self.pool, day=day)

    def stats_draw(self, draw_id: str) -> str:
        return STATS_DRAW_KEY.format(pool=self.pool, draw_id=draw_id)

    @property
    def stats_waits(self) -> str:
        return STATS_WAITS_KEY.format(pool=self.pool)


class PrefectureKeys:
    """The keys of one prefecture ("01"), under its hash tag: `PrefectureKeys(code).sites`."""

    __slots__ = ("prefecture",)

    def __init__(self, prefecture: str) -> None:
        self.prefecture = prefecture

    def __repr__(self) -> str:
        return f"PrefectureKeys({self.prefecture!r})"

    @property
    def sites(self) -> str:
        return SITES_KEY.format(prefecture=self.prefecture)

    @property
    def agdref(self) -> str:
        return AGDREF_KEY.format(prefecture=self.prefecture)

    @property
    def agdref_staging(self) -> str:
        return AGDREF_STAGING_KEY.format(prefecture=self.prefecture)


def pool_pattern(pool: str) -> str:
    """SCAN pattern of every key of one pool."""
    return f"qs:{{{pool}}}:*"


def periodic_run_key(name: str, bucket: int) -> str:
    return PERIODIC_RUN_KEY.format(name=name, bucket=bucket)


def spent_challenge_key(signature: str) -> str:
    return SPENT_CHALLENGE_KEY.format(signature=signature)


def short_link_key(code: str) -> str:
    return SHORT_LINK_KEY.format(code=code)


# Staff keys (no hash tag: staff are not a pool's, and no script spans them).


def staff_account_key(account_id: str) -> str:
    return STAFF_ACCOUNT_KEY.format(id=account_id)


def account_tokens_key(account_id: str) -> str:
    return ACCOUNT_TOKENS_KEY.format(id=account_id)


def login_failures_key(email_digest: str, client_digest: str) -> str:
    return LOGIN_FAILURES_KEY.format(email_digest=email_digest, client_digest=client_digest)


def staff_session_key(session_digest: str) -> str:
    return STAFF_SESSION_KEY.format(digest=session_digest)


def api_token_key(token_digest: str) -> str:
    return API_TOKEN_KEY.format(digest=token_digest)


def idempotency_key(account_id: str, key_digest: str) -> str:
    return IDEMPOTENCY_KEY.format(account=account_id, digest=key_digest)


def budget_key(budget: str, limit: str, holder: str) -> str:
    return BUDGET_KEY.format(budget=budget, limit=limit, holder=holder)
