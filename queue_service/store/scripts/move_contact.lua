-- Store.update_preferences, Store.change_email: a registration's phone or email changes contact set.
--
-- KEYS: registration, history, old contact key, new contact key (both as written before
--       2026-11-29: contacts.lua), outbox, contacts
-- ARGV: id, fingerprint field, expected old fingerprint, new fingerprint ("" for
--       none: the mobile is optional), contacts cap, history event, "1" to
--       replace the status link (its version grows: older links stop working),
--       the outbox message (JSON; "" for none), then field/value pairs to set
-- Only a registration still pending or waiting may change (it may have been
-- withdrawn since the caller read it).
-- Returns "ok", "contact_cap", "missing", "state", or "retry" (the contact changed meanwhile).

short_fields(KEYS[1])
local current = redis.call('HGET', KEYS[1], ARGV[2])
if not current then return 'missing' end
local status = redis.call('HGET', KEYS[1], FIELD.status)
if status ~= 'pending_email' and status ~= 'waiting' then return 'state' end
if print_text(current) ~= ARGV[3] then return 'retry' end
if ARGV[3] ~= ARGV[4] then
  if ARGV[4] ~= '' and contact_count(KEYS[6], KEYS[4], ARGV[4]) >= tonumber(ARGV[5]) then return 'contact_cap' end
  contact_remove(KEYS[6], KEYS[3], ARGV[3], ARGV[1])
  contact_add(KEYS[6], KEYS[4], ARGV[4], ARGV[1])
end
redis.call('HSET', KEYS[1], ARGV[2], print_value(ARGV[4]), unpack(ARGV, 9))
if ARGV[7] == '1' then redis.call('HINCRBY', KEYS[1], FIELD.link_version, 1) end
add_event(KEYS[1], KEYS[2], ARGV[6])
if ARGV[8] ~= '' then redis.call('RPUSH', KEYS[5], ARGV[8]) end
return 'ok'
