-- Store.purge_unconfirmed, Store.purge_closed: one registration is deleted, with its indexes.
--
-- KEYS: registration, history, identity (as before 2026-11-29), email contacts, phone
--       contacts, refs, unconfirmed, waiting, closed, stats totals, stats day, offers, people,
--       contacts (the identity and contact keys: as written before 2026-11-29)
-- ARGV: id, ref, "unconfirmed" or "closed", deadline (epoch)
-- Deletes the registration only if it is still unconfirmed past the deadline,
-- or closed before it; returns 1 if deleted. Counts purged_unconfirmed (closed
-- registrations were counted when they closed).

short_fields(KEYS[1])
local status = redis.call('HGET', KEYS[1], FIELD.status)
if not status then return 0 end
if ARGV[3] == 'unconfirmed' then
  local score = redis.call('ZSCORE', KEYS[7], ARGV[1])
  if status ~= 'pending_email' or not score or tonumber(score) > tonumber(ARGV[4]) then return 0 end
else
  local score = redis.call('ZSCORE', KEYS[9], ARGV[1])
  if not score or tonumber(score) > tonumber(ARGV[4]) then return 0 end
end
local identity = print_text(redis.call('HGET', KEYS[1], FIELD.identity_fp))
local prints = redis.call('HMGET', KEYS[1], FIELD.email_fp, FIELD.phone_fp)
redis.call('DEL', KEYS[1], KEYS[2])
person_release(KEYS[13], KEYS[3], identity, ARGV[1])
contact_remove(KEYS[14], KEYS[4], print_text(prints[1]), ARGV[1])
contact_remove(KEYS[14], KEYS[5], print_text(prints[2]), ARGV[1])
if id_text(redis.call('HGET', KEYS[6], ARGV[2])) == ARGV[1] then redis.call('HDEL', KEYS[6], ARGV[2]) end
redis.call('ZREM', KEYS[7], ARGV[1])
redis.call('ZREM', KEYS[8], ARGV[1])
redis.call('ZREM', KEYS[9], ARGV[1])
redis.call('HDEL', KEYS[12], ARGV[1])
if ARGV[3] == 'unconfirmed' then count_event('purged_unconfirmed', 1, KEYS[10], KEYS[11]) end
return 1
