-- Store.close_registration: a registration closes (withdrawn...), releasing its person and contacts.
--
-- KEYS: registration, history, identity (as before 2026-11-29), email contacts, phone
--       contacts, refs, unconfirmed, waiting, closed, stats totals, stats day, outbox,
--       ended waits, people, contacts (the identity and contact keys are those written
--       before 2026-11-29: person.lua, contacts.lua)
-- ARGV: id, new status, now (ISO), now (epoch), history event, expected email
--       fingerprint, expected phone fingerprint, event to count ("" for none),
--       the outbox message (JSON; "" for none), then the statuses allowed before
-- Returns 1 when closed (and the message, e.g. the withdrawal notice, pushed), 0 when
-- not allowed, -1 when the contacts changed meanwhile (nothing written then).
-- Closing a waiting registration ends its wait, recorded in the ended waits.

short_fields(KEYS[1])
local status = redis.call('HGET', KEYS[1], FIELD.status)
if not status then return 0 end
local allowed = false
for i = 10, #ARGV do
  if ARGV[i] == status then allowed = true end
end
if not allowed then return 0 end
local prints = redis.call('HMGET', KEYS[1], FIELD.email_fp, FIELD.phone_fp)
if print_text(prints[1]) ~= ARGV[6] or print_text(prints[2]) ~= ARGV[7] then return -1 end
if status == 'waiting' then end_wait(KEYS[1], KEYS[13], ARGV[1], ARGV[4]) end
redis.call('HSET', KEYS[1], FIELD.status, ARGV[2], FIELD.status_changed_at, ARGV[3])
person_release(KEYS[14], KEYS[3], print_text(redis.call('HGET', KEYS[1], FIELD.identity_fp)), ARGV[1])
contact_remove(KEYS[15], KEYS[4], ARGV[6], ARGV[1])
contact_remove(KEYS[15], KEYS[5], ARGV[7], ARGV[1])
redis.call('ZREM', KEYS[7], ARGV[1])
redis.call('ZREM', KEYS[8], ARGV[1])
redis.call('ZADD', KEYS[9], ARGV[4], ARGV[1])
add_event(KEYS[1], KEYS[2], ARGV[5])
if ARGV[8] ~= '' then count_event(ARGV[8], 1, KEYS[10], KEYS[11]) end
if ARGV[9] ~= '' then redis.call('RPUSH', KEYS[12], ARGV[9]) end
return 1
