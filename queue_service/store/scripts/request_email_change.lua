-- Store.request_email_change: a new address waits for confirmation, and the link to confirm it is queued.
--
-- KEYS: registration, outbox
-- ARGV: the new address, the outbox message (JSON, naming the address by its keyed
--       hash; "" for none), then the statuses allowed
-- Returns 1 when recorded with its message, 0 (nothing written) when the registration
-- is gone or in no allowed status. A later request replaces the pending address:
-- the earlier message is then superseded, and not sent.

short_fields(KEYS[1])
local status = redis.call('HGET', KEYS[1], FIELD.status)
if not status then return 0 end
local allowed = false
for i = 3, #ARGV do
  if ARGV[i] == status then allowed = true end
end
if not allowed then return 0 end
redis.call('HSET', KEYS[1], FIELD.pending_email, ARGV[1])
if ARGV[2] ~= '' then redis.call('RPUSH', KEYS[2], ARGV[2]) end
return 1
