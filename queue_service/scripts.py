"""Lua scripts of the store: each change that spans keys runs as one script, all or nothing.

Scripts receive every key they touch in KEYS (all of one pool's hash tag, so
they run on Redis Cluster too) and never build key names themselves.
"""

# Counters (queue_service/metrics/__init__.py names the events; the store's "Counters"
# section documents the keys). Put in front of every script that counts, so a
# counter changes in the same atomic step as the state it counts:
#   count_event(event, amount, key, ...)  HINCRBY `event` by `amount` in each
#       hash given: the pool's totals and its day (Store.stats_keys), and for
#       what concerns one draw's offers, the draw's (Store.stats_keys(draw_id=)).
#   count_wait(key, days)  one more wait of `days` whole days in the pool's
#       wait histogram (Store.waits_key).
# The keys come from KEYS, never built here. An amount of 0 writes nothing.
STATS_LUA = """
local function count_event(event, amount, ...)
  amount = tonumber(amount)
  if amount == 0 then return end
  for _, key in ipairs({...}) do redis.call('HINCRBY', key, event, amount) end
end
local function count_wait(key, days)
  redis.call('HINCRBY', key, tostring(math.floor(tonumber(days))), 1)
end
"""

# KEYS: registration, history, identity, email contacts, phone contacts, refs,
#       unconfirmed, waiting, stats totals, stats day
# ARGV: id, ref, contacts cap, status, now (epoch), confirm-by (epoch), history
#       event, has email ("1"/"0"), channel, then field/value pairs of the registration
# Counts registered (and registered_assisted), or the refusal: duplicate_refused,
# contact_cap_refused. A reference already taken is retried by the caller: not counted.
CREATE_SCRIPT = STATS_LUA + """
local stats = {KEYS[9], KEYS[10]}
if redis.call('EXISTS', KEYS[3]) == 1 then
  count_event('duplicate_refused', 1, unpack(stats))
  return 'duplicate'
end
local cap = tonumber(ARGV[3])
if (ARGV[8] == '1' and redis.call('SCARD', KEYS[4]) >= cap) or redis.call('SCARD', KEYS[5]) >= cap then
  count_event('contact_cap_refused', 1, unpack(stats))
  return 'contact_cap'
end
if redis.call('HSETNX', KEYS[6], ARGV[2], ARGV[1]) == 0 then return 'ref_taken' end
redis.call('SET', KEYS[3], ARGV[1])
if ARGV[8] == '1' then redis.call('SADD', KEYS[4], ARGV[1]) end
redis.call('SADD', KEYS[5], ARGV[1])
redis.call('HSET', KEYS[1], unpack(ARGV, 10))
redis.call('RPUSH', KEYS[2], ARGV[7])
if ARGV[4] == 'pending_email' then
  redis.call('ZADD', KEYS[7], ARGV[6], ARGV[1])
else
  redis.call('ZADD', KEYS[8], ARGV[5], ARGV[1])
end
count_event('registered', 1, unpack(stats))
if ARGV[9] == 'assisted' then count_event('registered_assisted', 1, unpack(stats)) end
return 'ok'
"""

# KEYS: registration, history, unconfirmed, waiting, stats totals, stats day
# ARGV: id, now (ISO), now (epoch), history event
# Counts email_confirmed (once: a second opening of the link changes nothing).
CONFIRM_SCRIPT = STATS_LUA + """
if redis.call('HGET', KEYS[1], 'status') ~= 'pending_email' then return 0 end
redis.call('HSET', KEYS[1], 'status', 'waiting', 'email_confirmed_at', ARGV[2], 'status_changed_at', ARGV[2],
  'waiting_since', ARGV[3])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZADD', KEYS[4], ARGV[3], ARGV[1])
redis.call('RPUSH', KEYS[2], ARGV[4])
count_event('email_confirmed', 1, KEYS[5], KEYS[6])
return 1
"""

# KEYS: registration, history, identity, email contacts, phone contacts, refs,
#       unconfirmed, waiting, closed, stats totals, stats day
# ARGV: id, new status, now (ISO), now (epoch), history event, expected email
#       fingerprint, expected phone fingerprint, event to count ("" for none),
#       then the statuses allowed before
# Returns 1 when closed, 0 when not allowed, -1 when the contacts changed meanwhile.
CLOSE_SCRIPT = STATS_LUA + """
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return 0 end
local allowed = false
for i = 9, #ARGV do
  if ARGV[i] == status then allowed = true end
end
if not allowed then return 0 end
local prints = redis.call('HMGET', KEYS[1], 'email_fp', 'phone_fp')
if (prints[1] or '') ~= ARGV[6] or (prints[2] or '') ~= ARGV[7] then return -1 end
redis.call('HSET', KEYS[1], 'status', ARGV[2], 'status_changed_at', ARGV[3])
if redis.call('GET', KEYS[3]) == ARGV[1] then redis.call('DEL', KEYS[3]) end
redis.call('SREM', KEYS[4], ARGV[1])
redis.call('SREM', KEYS[5], ARGV[1])
redis.call('ZREM', KEYS[7], ARGV[1])
redis.call('ZREM', KEYS[8], ARGV[1])
redis.call('ZADD', KEYS[9], ARGV[4], ARGV[1])
redis.call('RPUSH', KEYS[2], ARGV[5])
if ARGV[8] ~= '' then count_event(ARGV[8], 1, KEYS[10], KEYS[11]) end
return 1
"""

# KEYS: registration, history, old contact set, new contact set
# ARGV: id, fingerprint field, expected old fingerprint, new fingerprint,
#       contacts cap, history event, then field/value pairs to set
# Only a registration still pending or waiting may change (it may have been
# withdrawn since the caller read it).
# Returns "ok", "contact_cap", "missing", "state", or "retry" (the contact changed meanwhile).
MOVE_CONTACT_SCRIPT = """
local current = redis.call('HGET', KEYS[1], ARGV[2])
if not current then return 'missing' end
local status = redis.call('HGET', KEYS[1], 'status')
if status ~= 'pending_email' and status ~= 'waiting' then return 'state' end
if current ~= ARGV[3] then return 'retry' end
if ARGV[3] ~= ARGV[4] then
  if redis.call('SCARD', KEYS[4]) >= tonumber(ARGV[5]) then return 'contact_cap' end
  redis.call('SREM', KEYS[3], ARGV[1])
  redis.call('SADD', KEYS[4], ARGV[1])
end
redis.call('HSET', KEYS[1], ARGV[2], ARGV[4], unpack(ARGV, 7))
redis.call('RPUSH', KEYS[2], ARGV[6])
return 'ok'
"""

# KEYS: registration, history, identity, email contacts, phone contacts, refs,
#       unconfirmed, waiting, closed, stats totals, stats day, offers
# ARGV: id, ref, "unconfirmed" or "closed", deadline (epoch)
# Deletes the registration only if it is still unconfirmed past the deadline,
# or closed before it; returns 1 if deleted. Counts purged_unconfirmed (closed
# registrations were counted when they closed).
PURGE_SCRIPT = STATS_LUA + """
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return 0 end
if ARGV[3] == 'unconfirmed' then
  local score = redis.call('ZSCORE', KEYS[7], ARGV[1])
  if status ~= 'pending_email' or not score or tonumber(score) > tonumber(ARGV[4]) then return 0 end
else
  local score = redis.call('ZSCORE', KEYS[9], ARGV[1])
  if not score or tonumber(score) > tonumber(ARGV[4]) then return 0 end
end
redis.call('DEL', KEYS[1], KEYS[2])
if redis.call('GET', KEYS[3]) == ARGV[1] then redis.call('DEL', KEYS[3]) end
redis.call('SREM', KEYS[4], ARGV[1])
redis.call('SREM', KEYS[5], ARGV[1])
if redis.call('HGET', KEYS[6], ARGV[2]) == ARGV[1] then redis.call('HDEL', KEYS[6], ARGV[2]) end
redis.call('ZREM', KEYS[7], ARGV[1])
redis.call('ZREM', KEYS[8], ARGV[1])
redis.call('ZREM', KEYS[9], ARGV[1])
redis.call('HDEL', KEYS[12], ARGV[1])
if ARGV[3] == 'unconfirmed' then count_event('purged_unconfirmed', 1, KEYS[10], KEYS[11]) end
return 1
"""


# KEYS: a string holding a number. ARGV: a number.
# Sets the string to the number if it is greater (clocks may race: never go back).
ADVANCE_SCRIPT = """
local current = tonumber(redis.call('GET', KEYS[1]) or '-1')
if tonumber(ARGV[1]) > current then redis.call('SET', KEYS[1], ARGV[1]) end
return 1
"""


# KEYS: draw record, draw fence, offers, outbox, waiting, slot states, committed draws,
#       stats totals, stats day, the draw's stats, slot holders, draw deadlines,
#       the draw's result
# ARGV: fence, registration key prefix ("qs:{pool}:reg:"), now (ISO), offer deadline (ISO),
#       draw id, the draw's cutoff (epoch), offer deadline (epoch)
# Applies the drawn result (read here from the result key: columns "registrations",
# "refs", "slots", "by_wait"; a result saved before results were columns is a list of
# {registration, ref, slot}) at once: winners still waiting whose slot is still
# open get their offer (the slot offered and held by them); the others are
# listed in the record's "not_applied" (their slot stays open). What is the
# same for every offer is written once, not a hundred thousand times: their
# deadline (the record's "offers_deadline", and the draw in the draw deadlines
# for the expiry round), and one outbox message ({"kind": "draw_offers"}) that
# the dispatcher turns into one per offer (draws.offer_messages). Losers are
# not written one by one either: the draw joins the pool's committed draws,
# from which every registration's draws entered and lost are counted (those
# committed during its wait).
# Registration keys are built here from the prefix: they share the pool's
# hash tag, hence its cluster slot.
# Counts draw_committed and slots_offered (the latter in the draw's stats too),
# once: a second run finds the draw committed.
# Returns "ok", "stale" (a newer worker holds the draw) or "state" (not drawn).
# A million entrants and a hundred thousand winners take about a second here:
# tables are filled with explicit counters (Lua 5.1's # is a search) and written
# in batches of 6,000 arguments.
COMMIT_SCRIPT = STATS_LUA + """
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 'stale' end
if redis.call('HGET', KEYS[1], 'state') ~= 'drawn' then return 'state' end
local prefix, now, deadline, draw_id, deadline_score = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[7]
local result = cjson.decode(redis.call('GET', KEYS[13]))
local ids, refs, slot_ids = result.registrations, result.refs, result.slots
if ids == nil then
  ids, refs, slot_ids = {}, {}, {}
  for index, row in ipairs(result) do
    ids[index], refs[index], slot_ids[index] = row.registration, row.ref, row.slot
  end
end
local function flush(command, key, items, count)
  for first = 1, count, 6000 do
    redis.call(command, key, unpack(items, first, math.min(first + 5999, count)))
  end
end
-- Who is still waiting, and which slots are still open, read in batches: being
-- in the waiting set is being `waiting` (every script keeps the two together).
local still_waiting, still_open = {}, {}
for first = 1, #ids, 6000 do
  local last = math.min(first + 5999, #ids)
  local scores = redis.call('ZMSCORE', KEYS[5], unpack(ids, first, last))
  local slot_states = redis.call('HMGET', KEYS[6], unpack(slot_ids, first, last))
  for index = first, last do
    still_waiting[index] = scores[index - first + 1]
    still_open[index] = slot_states[index - first + 1] == 'open'
  end
end
local offers, states, holders, leaving, skipped = {}, {}, {}, {}, {}
local applied, pairs_written, skipped_count = 0, 0, 0
-- Winners in the order they joined the waiting list, as the result lists them ("by_wait",
-- positions from 0): neighbours in the waiting set's skip list, and registrations written
-- about the same time, so that removing and changing them touches memory in order
-- (twice as fast at a million entrants as in the draw's order).
local by_wait = result.by_wait
for position = 1, #ids do
  local index = by_wait and by_wait[position] + 1 or position
  local id, ref, slot_id = ids[index], refs[index], slot_ids[index]
  if not still_waiting[index] or not still_open[index] then
    -- Left the waiting list since the freeze, or the slot was cancelled or taken by another draw.
    skipped_count = skipped_count + 1
    skipped[skipped_count] = ref
  else
    redis.call('HSET', prefix .. id, 'status', 'offered', 'status_changed_at', now)
    applied = applied + 1
    leaving[applied] = id
    local first, second = pairs_written + 1, pairs_written + 2
    pairs_written = second
    offers[first], offers[second] = id, '{"draw_id":"' .. draw_id .. '","ref":"' .. ref .. '","slot":"' .. slot_id ..
      '","deadline":"' .. deadline .. '","offered_at":"' .. now .. '","status":"pending"}'
    states[first], states[second] = slot_id, 'offered'
    holders[first], holders[second] = slot_id, id
  end
end
flush('ZREM', KEYS[5], leaving, applied)
flush('HSET', KEYS[3], offers, pairs_written)
flush('HSET', KEYS[6], states, pairs_written)
flush('HSET', KEYS[11], holders, pairs_written)
if applied > 0 then
  redis.call('ZADD', KEYS[12], deadline_score, draw_id)
  redis.call('RPUSH', KEYS[4], cjson.encode({id = 'offers:' .. draw_id, kind = 'draw_offers', draw_id = draw_id}))
end
redis.call('ZADD', KEYS[7], ARGV[6], draw_id)
redis.call('HSET', KEYS[1], 'state', 'committed', 'committed_at', now, 'offered', applied, 'offers_deadline', deadline_score,
  'not_applied', skipped_count == 0 and '[]' or cjson.encode(skipped))
count_event('draw_committed', 1, KEYS[8], KEYS[9])
count_event('slots_offered', applied, KEYS[8], KEYS[9], KEYS[10])
return 'ok'
"""

# KEYS: slot times, slot states. ARGV: pairs of (start, end) epochs.
# How many slots are open in each [start, end), counted in Redis: the pages
# that project chances need counts, not the slots themselves.
OPEN_SLOTS_SCRIPT = """
local found = {}
for pair = 1, #ARGV, 2 do
  local open = 0
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[pair], '(' .. ARGV[pair + 1])) do
    if redis.call('HGET', KEYS[2], id) == 'open' then open = open + 1 end
  end
  found[#found + 1] = open
end
return found
"""

# KEYS: waiting, registration key prefix is ARGV[2]. ARGV: cutoff (epoch), prefix.
# What a draw needs of every registration waiting since before the cutoff, in
# one round trip: a flat list of id, joined (epoch), ref, draws_lost,
# permit_expiry, sites, half_days, channel, and so on for the next.
CANDIDATES_SCRIPT = """
local waiting = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES')
local rows = {}
for index = 1, #waiting, 2 do
  local id = waiting[index]
  local fields = redis.call('HMGET', ARGV[2] .. id, 'ref', 'draws_lost', 'permit_expiry', 'sites', 'half_days',
    'channel')
  if fields[1] then
    rows[#rows + 1] = id
    rows[#rows + 1] = waiting[index + 1]
    for field = 1, 6 do rows[#rows + 1] = fields[field] end
  end
end
return rows
"""

# KEYS: draw record, draw fence. ARGV: fence ("" = any), expected state, then field/value pairs.
# Changes the record only if the fence is the latest and the state is as expected.
DRAW_STEP_SCRIPT = """
if ARGV[1] ~= '' and redis.call('GET', KEYS[2]) ~= ARGV[1] then return 'stale' end
if redis.call('HGET', KEYS[1], 'state') ~= ARGV[2] then return 'state' end
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
return 'ok'
"""

# KEYS: draw record, draws index. ARGV: scheduled time (epoch), draw id, then field/value pairs.
CREATE_DRAW_SCRIPT = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
redis.call('ZADD', KEYS[2], ARGV[1], ARGV[2])
return 1
"""


# KEYS: registration, history, offers, offer deadlines, slot states, slot holders,
#       bookings, booking codes, outbox, waiting, committed draws, identity,
#       email contacts, phone contacts, closed, standby slots, stats totals,
#       stats day, the offer's draw's stats, waits histogram, the offer's draw's
#       set of references not to offer again (joined on going back to the pool),
#       the offer's draw's record (its field offers_deadline)
# ARGV: action, id, now (ISO), now (epoch), waiting since (epoch, "" if unknown),
#       the offer's draw id (as the caller read it: the stats keys are that draw's),
#       days from registration to the slot, "1" if a renewal's permit expires
#       before the slot, then per action: confirm: booking code, slot start (epoch);
#       decline / expire: "1" to return to the pool, "0" to leave it;
#       cancel: latest cancellation (epoch); no_show: earliest marking (epoch);
#       slot_cancelled: the slot id.
# Moves one offer (and its registration, slot, messages and counters) on, all or nothing.
# Returns "ok", or why not: "missing", "no_offer", "state", "late", "early".
OFFER_SCRIPT = STATS_LUA + """
local action, id, now, now_epoch = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return 'missing' end
local raw = redis.call('HGET', KEYS[3], id)
if not raw then return 'no_offer' end
local offer = cjson.decode(raw)
if offer.draw_id ~= ARGV[6] then return 'state' end
local function counted(event) count_event(event, 1, KEYS[17], KEYS[18], KEYS[19]) end
local pending = status == 'offered' and offer.status == 'pending'
local booked = status == 'confirmed' and offer.status == 'confirmed'

local function save(outcome)
  offer.status = outcome
  offer.changed_at = now
  redis.call('HSET', KEYS[3], id, cjson.encode(offer))
end
local function event(kind)
  redis.call('RPUSH', KEYS[2], cjson.encode({at = now, kind = kind, detail = {draw_id = offer.draw_id, slot = offer.slot}}))
end
local function message(kind)
  redis.call('RPUSH', KEYS[9], cjson.encode({id = kind .. ':' .. offer.draw_id .. ':' .. id .. ':' .. ARGV[4],
    kind = kind, registration_id = id, draw_id = offer.draw_id, slot = offer.slot}))
end
local function free_slot()
  -- The slot waits for the next entrant of the same draw's order (standby), never for the first comer.
  redis.call('HDEL', KEYS[6], offer.slot)
  if redis.call('HGET', KEYS[5], offer.slot) ~= 'cancelled' then
    redis.call('HSET', KEYS[5], offer.slot, 'standby')
    redis.call('HSET', KEYS[16], offer.slot, offer.draw_id)
  end
end
local function back_to_pool()
  -- Never offered a slot by this draw again (its standby skips the references in that set).
  redis.call('SADD', KEYS[21], offer.ref)
  -- Settle the wait the won draw ended (draws lost before it), then wait again from its cutoff.
  local since = tonumber(ARGV[5])
  local won = tonumber(redis.call('ZSCORE', KEYS[11], offer.draw_id))
  if since and won then
    local lost = redis.call('ZCOUNT', KEYS[11], '(' .. ARGV[5], '(' .. won)
    redis.call('HINCRBY', KEYS[1], 'draws_lost', lost)
    redis.call('HINCRBY', KEYS[1], 'draws_entered', lost + 1)
  end
  local rejoin = won or now_epoch
  redis.call('HSET', KEYS[1], 'status', 'waiting', 'status_changed_at', now, 'waiting_since', rejoin)
  redis.call('ZADD', KEYS[10], rejoin, id)
end
local function close(final)
  redis.call('HSET', KEYS[1], 'status', final, 'status_changed_at', now)
  if redis.call('GET', KEYS[12]) == id then redis.call('DEL', KEYS[12]) end
  redis.call('SREM', KEYS[13], id)
  redis.call('SREM', KEYS[14], id)
  redis.call('ZADD', KEYS[15], now_epoch, id)
end
local function deadline()
  -- A standby offer's own deadline, else the one all the draw's offers share.
  return tonumber(redis.call('ZSCORE', KEYS[4], id) or redis.call('HGET', KEYS[22], 'offers_deadline'))
end

if action == 'confirm' then
  if not pending then return 'state' end
  local until_epoch = deadline()
  if not until_epoch or now_epoch > until_epoch then return 'late' end
  offer.code = ARGV[9]
  save('confirmed')
  redis.call('ZREM', KEYS[4], id)
  redis.call('HSET', KEYS[1], 'status', 'confirmed', 'status_changed_at', now)
  redis.call('HSET', KEYS[5], offer.slot, 'booked')
  redis.call('ZADD', KEYS[7], ARGV[10], id)
  redis.call('HSET', KEYS[8], ARGV[9], id)
  event('offer_confirmed')
  message('booked')
  counted('offer_confirmed')
  count_wait(KEYS[20], ARGV[7])
  if ARGV[8] == '1' then counted('renewal_expired_before_appointment') end
elseif action == 'decline' or action == 'expire' then
  if not pending then return 'state' end
  local until_epoch = deadline()
  if action == 'decline' and until_epoch and now_epoch > until_epoch then return 'late' end
  if action == 'expire' and until_epoch and now_epoch <= until_epoch then return 'early' end
  local outcome = action == 'decline' and 'declined' or 'expired'
  save(outcome)
  redis.call('ZREM', KEYS[4], id)
  free_slot()
  event('offer_' .. outcome)
  counted('offer_' .. outcome)
  if ARGV[9] == '1' then back_to_pool() else close(outcome) end
  if action == 'expire' then message('expired') end
elseif action == 'cancel' then
  if not booked then return 'state' end
  if now_epoch > tonumber(ARGV[9]) then return 'late' end
  save('cancelled')
  redis.call('ZREM', KEYS[7], id)
  redis.call('HDEL', KEYS[8], offer.code)
  free_slot()
  close('cancelled')
  event('booking_cancelled')
  message('booking_cancelled')
  counted('booking_cancelled')
elseif action == 'attended' then
  if not booked then return 'state' end
  save('attended')
  redis.call('ZREM', KEYS[7], id)
  close('attended')
  event('attended')
  counted('attended')
elseif action == 'no_show' then
  if not booked then return 'state' end
  if now_epoch < tonumber(ARGV[9]) then return 'early' end
  save('no_show')
  redis.call('ZREM', KEYS[7], id)
  close('no_show')
  event('no_show')
  counted('no_show')
elseif action == 'slot_cancelled' then
  if not (pending or booked) or offer.slot ~= ARGV[9] then return 'state' end
  save('slot_cancelled')
  redis.call('ZREM', KEYS[4], id)
  redis.call('ZREM', KEYS[7], id)
  if offer.code then redis.call('HDEL', KEYS[8], offer.code) end
  redis.call('HDEL', KEYS[6], offer.slot)
  redis.call('HSET', KEYS[5], offer.slot, 'cancelled')
  back_to_pool()
  event('slot_cancelled')
  message('slot_cancelled')
  counted('slot_cancelled_by_prefecture')
else
  return redis.error_reply('unknown offer action ' .. action)
end
return 'ok'
"""

# KEYS: registration, history, offers, offer deadlines, slot states, slot holders,
#       outbox, waiting, standby slots, the draw's offered refs, stats totals,
#       stats day, the draw's stats
# ARGV: id, ref, slot id, draw id, now (ISO), deadline (ISO), deadline (epoch), now (epoch)
# Offers a freed slot to the next entrant of the same draw's order, if the slot
# still waits for standby and the entrant still waits and had no offer from
# this draw. Returns "ok", "slot" (the slot no longer waits) or "person".
# The entrant's wait is then counted as ended at that draw's cutoff: draws
# committed between that cutoff and the standby offer are not added to their
# losses if they later go back to the pool (rare: standby follows within days).
STANDBY_SCRIPT = STATS_LUA + """
local id, ref, slot, draw_id, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if redis.call('HGET', KEYS[9], slot) ~= draw_id or redis.call('HGET', KEYS[5], slot) ~= 'standby' then return 'slot' end
if redis.call('HGET', KEYS[1], 'status') ~= 'waiting' or redis.call('SISMEMBER', KEYS[10], ref) == 1 then
  return 'person'
end
redis.call('ZREM', KEYS[8], id)
redis.call('HSET', KEYS[1], 'status', 'offered', 'status_changed_at', now)
redis.call('HSET', KEYS[3], id, cjson.encode({draw_id = draw_id, ref = ref, slot = slot, deadline = ARGV[6],
  offered_at = now, status = 'pending', standby = true}))
redis.call('ZADD', KEYS[4], ARGV[7], id)
redis.call('HSET', KEYS[5], slot, 'offered')
redis.call('HSET', KEYS[6], slot, id)
redis.call('HDEL', KEYS[9], slot)
redis.call('SADD', KEYS[10], ref)
redis.call('RPUSH', KEYS[2], cjson.encode({at = now, kind = 'standby_offer', detail = {draw_id = draw_id, slot = slot}}))
redis.call('RPUSH', KEYS[7], cjson.encode({id = 'offer:' .. draw_id .. ':' .. id .. ':' .. ARGV[8], kind = 'offer',
  registration_id = id, draw_id = draw_id, slot = slot}))
count_event('offer_reoffered', 1, KEYS[11], KEYS[12], KEYS[13])
return 'ok'
"""

# KEYS: slot states, standby slots, stats totals, stats day, the draw's stats. ARGV: slot id, draw id.
# The draw's order has no one left for this slot: it goes to the next draw.
RELEASE_SLOT_SCRIPT = STATS_LUA + """
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[2], ARGV[1])
if redis.call('HGET', KEYS[1], ARGV[1]) == 'standby' then
  redis.call('HSET', KEYS[1], ARGV[1], 'open')
  count_event('slot_returned_to_draw', 1, KEYS[3], KEYS[4], KEYS[5])
end
return 1
"""

# KEYS: offers, reminders sent, outbox. ARGV: id, now (epoch), then the reminder
# lead times (hours) now due. Queues one reminder, about the slot of the booking,
# for those not yet sent (a booking made the day before gets one message, not two).
REMINDER_SCRIPT = """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return 0 end
local offer = cjson.decode(raw)
if offer.status ~= 'confirmed' then return 0 end
local fresh = 0
for index = 3, #ARGV do
  fresh = fresh + redis.call('HSETNX', KEYS[2], ARGV[1] .. ':' .. offer.slot .. ':' .. ARGV[index], ARGV[2])
end
if fresh == 0 then return 0 end
redis.call('RPUSH', KEYS[3], cjson.encode({id = 'reminder:' .. offer.draw_id .. ':' .. ARGV[1] .. ':' .. ARGV[#ARGV],
  kind = 'reminder', registration_id = ARGV[1], draw_id = offer.draw_id, slot = offer.slot}))
return 1
"""
