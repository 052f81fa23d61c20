-- Store.create_registration: a new registration, with its person, contacts and reference, all or nothing.
--
-- KEYS: registration, history, identity, email contacts, phone contacts, refs,
--       unconfirmed, waiting, stats totals, stats day, outbox, then the other
--       identity keys of the person (every order of their names): none may be held
-- ARGV: id, ref, contacts cap, status, now (epoch), confirm-by (epoch), history
--       event, has email ("1"/"0"), channel, the outbox message (JSON; "" for none),
--       then field/value pairs of the registration
-- Counts registered (and registered_assisted), or the refusal: duplicate_refused,
-- contact_cap_refused. A reference already taken is retried by the caller: not counted.
-- The message (the confirmation link, or the status link) is pushed only with the registration.

local stats = {KEYS[9], KEYS[10]}
local function held(first, last)
  for i = first, last do
    if redis.call('EXISTS', KEYS[i]) == 1 then return true end
  end
  return false
end
if held(3, 3) or held(12, #KEYS) then
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
redis.call('HSET', KEYS[1], unpack(ARGV, 11))
redis.call('RPUSH', KEYS[2], ARGV[7])
if ARGV[4] == 'pending_email' then
  redis.call('ZADD', KEYS[7], ARGV[6], ARGV[1])
else
  redis.call('ZADD', KEYS[8], ARGV[5], ARGV[1])
end
if ARGV[10] ~= '' then redis.call('RPUSH', KEYS[11], ARGV[10]) end
count_event('registered', 1, unpack(stats))
if ARGV[9] == 'assisted' then count_event('registered_assisted', 1, unpack(stats)) end
return 'ok'
