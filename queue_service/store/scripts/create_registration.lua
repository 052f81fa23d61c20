-- Store.create_registration: a new registration, with its person, contacts and reference, all or nothing.
--
-- KEYS: registration, history, identity, email contacts, phone contacts, refs,
--       unconfirmed, waiting, stats totals, stats day, outbox
-- ARGV: id, ref, contacts cap, status, now (epoch), confirm-by (epoch), history
--       event, has email ("1"/"0"), has mobile ("1"/"0"), channel, the outbox
--       message (JSON; "" for none), then field/value pairs of the registration
-- Counts registered (and registered_assisted), or the refusal: duplicate_refused,
-- contact_cap_refused. A reference already taken is retried by the caller: not counted.
-- The message (the confirmation link, or the status link) is pushed only with the registration.

local stats = {KEYS[9], KEYS[10]}
if redis.call('EXISTS', KEYS[3]) == 1 then
  count_event('duplicate_refused', 1, unpack(stats))
  return 'duplicate'
end
local cap = tonumber(ARGV[3])
local over_cap = function(has, contacts) return has == '1' and redis.call('SCARD', contacts) >= cap end
if over_cap(ARGV[8], KEYS[4]) or over_cap(ARGV[9], KEYS[5]) then
  count_event('contact_cap_refused', 1, unpack(stats))
  return 'contact_cap'
end
if redis.call('HSETNX', KEYS[6], ARGV[2], ARGV[1]) == 0 then return 'ref_taken' end
redis.call('SET', KEYS[3], ARGV[1])
if ARGV[8] == '1' then redis.call('SADD', KEYS[4], ARGV[1]) end
if ARGV[9] == '1' then redis.call('SADD', KEYS[5], ARGV[1]) end
redis.call('HSET', KEYS[1], unpack(ARGV, 12))
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
