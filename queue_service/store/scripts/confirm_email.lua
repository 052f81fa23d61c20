-- Store.confirm_email: a pending registration's email is confirmed; it joins the waiting set.
--
-- KEYS: registration, history, unconfirmed, waiting, stats totals, stats day, outbox
-- ARGV: id, now (epoch text: the confirmation and status times), now (epoch: waiting since, and
--       the score), history event, the outbox message (JSON; "" for none)
-- Counts email_confirmed and pushes the message (the status link) once: a second
-- opening of the link changes nothing.

short_fields(KEYS[1])
if redis.call('HGET', KEYS[1], FIELD.status) ~= 'pending_email' then return 0 end
-- Its first wait begins as it joins: `waiting_entered_at` is left out, read as `waiting_since` (waits.lua).
redis.call('HSET', KEYS[1], FIELD.status, 'waiting', FIELD.email_confirmed_at, ARGV[2], FIELD.status_changed_at, ARGV[2],
  FIELD.waiting_since, ARGV[3])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZADD', KEYS[4], ARGV[3], ARGV[1])
add_event(KEYS[1], KEYS[2], ARGV[4])
if ARGV[5] ~= '' then redis.call('RPUSH', KEYS[7], ARGV[5]) end
count_event('email_confirmed', 1, KEYS[5], KEYS[6])
return 1
