-- Store.update_preferences, Store.change_email: a registration's phone or email changes contact set.
--
-- KEYS: registration, history, old contact set, new contact set
-- ARGV: id, fingerprint field, expected old fingerprint, new fingerprint ("" for
--       none: the mobile is optional), contacts cap, history event, then
--       field/value pairs to set
-- Only a registration still pending or waiting may change (it may have been
-- withdrawn since the caller read it).
-- Returns "ok", "contact_cap", "missing", "state", or "retry" (the contact changed meanwhile).

local current = redis.call('HGET', KEYS[1], ARGV[2])
if not current then return 'missing' end
local status = redis.call('HGET', KEYS[1], 'status')
if status ~= 'pending_email' and status ~= 'waiting' then return 'state' end
if current ~= ARGV[3] then return 'retry' end
if ARGV[3] ~= ARGV[4] then
  if ARGV[4] ~= '' and redis.call('SCARD', KEYS[4]) >= tonumber(ARGV[5]) then return 'contact_cap' end
  if ARGV[3] ~= '' then redis.call('SREM', KEYS[3], ARGV[1]) end
  if ARGV[4] ~= '' then redis.call('SADD', KEYS[4], ARGV[1]) end
end
redis.call('HSET', KEYS[1], ARGV[2], ARGV[4], unpack(ARGV, 7))
redis.call('RPUSH', KEYS[2], ARGV[6])
return 'ok'
