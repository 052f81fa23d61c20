"""Lua scripts of the store: each change that spans keys runs as one script, all or nothing.

Scripts receive every key they touch in KEYS (all of one pool's hash tag, so
they run on Redis Cluster too) and never build key names themselves.
"""

# Counters (queue_service/metrics.py names the events; the store's "Counters"
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
redis.call('HSET', KEYS[1], 'status', 'waiting', 'email_confirmed_at', ARGV[2], 'status_changed_at', ARGV[2])
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
#       unconfirmed, waiting, closed, stats totals, stats day
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
#       stats totals, stats day, the draw's stats
# ARGV: fence, registration key prefix ("qs:{pool}:reg:"), winners JSON
#       [[registration id, ref, slot id], ...], now (ISO), offer deadline (ISO),
#       draw id, the draw's cutoff (epoch)
# Applies a drawn result at once: winners still waiting whose slot is still
# open get their offer (the slot offered, an outbox message); the others are
# listed in the record's "not_applied" (their slot stays open for standby). Losers are not written one by one: the
# draw joins the pool's committed draws, from which every registration's
# draws entered and lost are counted (those committed during its wait).
# Registration keys are built here from the prefix: they share the pool's
# hash tag, hence its cluster slot.
# Counts draw_committed and slots_offered (the latter in the draw's stats too),
# once: a second run finds the draw committed.
# Returns "ok", "stale" (a newer worker holds the draw) or "state" (not drawn).
COMMIT_SCRIPT = STATS_LUA + """
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 'stale' end
if redis.call('HGET', KEYS[1], 'state') ~= 'drawn' then return 'state' end
local prefix, now, deadline, draw_id = ARGV[2], ARGV[4], ARGV[5], ARGV[6]
local offers, states, outbox, leaving, skipped = {}, {}, {}, {}, {}
local function flush(command, key, items)
  for first = 1, #items, 6000 do
    redis.call(command, key, unpack(items, first, math.min(first + 5999, #items)))
  end
end
for _, winner in ipairs(cjson.decode(ARGV[3])) do
  local id, ref, slot_id = winner[1], winner[2], winner[3]
  local key = prefix .. id
  if redis.call('HGET', key, 'status') ~= 'waiting' or redis.call('HGET', KEYS[6], slot_id) ~= 'open' then
    -- Left the waiting list since the freeze, or the slot was cancelled or taken by another draw.
    skipped[#skipped + 1] = ref
  else
    redis.call('HSET', key, 'status', 'offered', 'status_changed_at', now)
    leaving[#leaving + 1] = id
    offers[#offers + 1] = id
    offers[#offers + 1] = '{"draw_id":"' .. draw_id .. '","ref":"' .. ref .. '","slot":"' .. slot_id ..
      '","deadline":"' .. deadline .. '","status":"pending"}'
    states[#states + 1] = slot_id
    states[#states + 1] = 'offered'
    outbox[#outbox + 1] = '{"kind":"offer","registration_id":"' .. id .. '","draw_id":"' .. draw_id .. '"}'
  end
end
flush('ZREM', KEYS[5], leaving)
flush('HSET', KEYS[3], offers)
flush('HSET', KEYS[6], states)
flush('RPUSH', KEYS[4], outbox)
redis.call('ZADD', KEYS[7], ARGV[7], draw_id)
redis.call('HSET', KEYS[1], 'state', 'committed', 'committed_at', now, 'offered', #leaving,
  'not_applied', cjson.encode(skipped))
count_event('draw_committed', 1, KEYS[8], KEYS[9])
count_event('slots_offered', #leaving, KEYS[8], KEYS[9], KEYS[10])
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
