-- Store.create_registration: a new registration, with its person, contacts and reference, all or nothing.
--
-- KEYS: registration, history, identity, email contacts, phone contacts, refs,
--       unconfirmed, waiting, stats totals, stats day, outbox
-- ARGV: id, ref, contacts cap, status, now (epoch), confirm-by (epoch), history
--       event, has email ("1"/"0"), has mobile ("1"/"0"), channel, the outbox
--       message (JSON; "" for none), registration key prefix
--       (PoolKeys.registration_prefix), contact key prefix (PoolKeys.contact_prefix),
--       then field/value pairs of the registration
-- The same person's registration still waiting for its email to be confirmed
-- does not hold the place: it is replaced, here, in the same step (deleted with
-- its indexes; its link then leads nowhere, and its message finds nothing to
-- send). Its keys are built here from the prefixes and what it holds, as
-- commit_draw.lua does: they share the pool's hash tag, hence its cluster slot,
-- and no caller can have seen a holder that a concurrent attempt replaced.
-- A confirmed registration (or one made at the counter) holds the place: 'duplicate'.
-- Returns 'ok', 'duplicate', 'contact_cap' or 'ref_taken' (the caller draws another reference).
-- Counts registered (and registered_assisted, and replaced_unconfirmed for a registration
-- replaced), or the refusal: duplicate_refused, contact_cap_refused. A reference already
-- taken is retried by the caller: not counted.
-- The message (the confirmation link, or the status link) is pushed only with the registration.

local stats = {KEYS[9], KEYS[10]}
local holder = redis.call('GET', KEYS[3])
local held = {}
if holder then
  local fields = redis.call('HMGET', ARGV[12] .. holder, 'status', 'email_fp', 'phone_fp', 'ref')
  if fields[1] ~= 'pending_email' then
    count_event('duplicate_refused', 1, unpack(stats))
    return 'duplicate'
  end
  held = {email = fields[2] or '', phone = fields[3] or '', ref = fields[4] or ''}
end
local cap = tonumber(ARGV[3])
local function over_cap(has, contacts)
  if has ~= '1' then return false end
  local count = redis.call('SCARD', contacts)
  if holder and redis.call('SISMEMBER', contacts, holder) == 1 then count = count - 1 end  -- leaving
  return count >= cap
end
if over_cap(ARGV[8], KEYS[4]) or over_cap(ARGV[9], KEYS[5]) then
  count_event('contact_cap_refused', 1, unpack(stats))
  return 'contact_cap'
end
if redis.call('HEXISTS', KEYS[6], ARGV[2]) == 1 then return 'ref_taken' end
if holder then
  redis.call('DEL', ARGV[12] .. holder, ARGV[12] .. holder .. ':history')
  for _, fingerprint in ipairs({held.email, held.phone}) do
    if fingerprint ~= '' then redis.call('SREM', ARGV[13] .. fingerprint, holder) end
  end
  if redis.call('HGET', KEYS[6], held.ref) == holder then redis.call('HDEL', KEYS[6], held.ref) end
  redis.call('ZREM', KEYS[7], holder)
  count_event('replaced_unconfirmed', 1, unpack(stats))
end
redis.call('HSET', KEYS[6], ARGV[2], ARGV[1])
redis.call('SET', KEYS[3], ARGV[1])
if ARGV[8] == '1' then redis.call('SADD', KEYS[4], ARGV[1]) end
if ARGV[9] == '1' then redis.call('SADD', KEYS[5], ARGV[1]) end
redis.call('HSET', KEYS[1], unpack(ARGV, 14))
redis.call('RPUSH', KEYS[2], ARGV[7])
if ARGV[4] == 'pending_email' then
  redis.call('ZADD', KEYS[7], ARGV[6], ARGV[1])
else
  redis.call('ZADD', KEYS[8], ARGV[5], ARGV[1])
end
if ARGV[11] ~= '' then redis.call('RPUSH', KEYS[11], ARGV[11]) end
count_event('registered', 1, unpack(stats))
if ARGV[10] == 'assisted' then count_event('registered_assisted', 1, unpack(stats)) end
return 'ok'
