-- Store.offer_standby: a freed slot goes to the next entrant of its draw's order.
--
-- KEYS: registration, history, offers, offer deadlines, slot states, slot holders,
--       outbox, waiting, standby slots, the draw's offered refs, stats totals,
--       stats day, the draw's stats, ended waits
-- ARGV: id, ref, slot id, draw id, now (ISO), deadline (ISO), deadline (epoch), now (epoch)
-- Offers a freed slot to the next entrant of the same draw's order, if the slot
-- still waits for standby and the entrant still waits and had no offer from
-- this draw. Returns "ok", "slot" (the slot no longer waits) or "person".
-- The wait this ends is recorded in the ended waits (a later draw's freeze may
-- need to know it went on until now).
-- The entrant's wait is then counted as ended at that draw's cutoff: draws
-- committed between that cutoff and the standby offer are not added to their
-- losses if they later go back to the pool (rare: standby follows within days).

local id, ref, slot, draw_id, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if redis.call('HGET', KEYS[9], slot) ~= draw_id or redis.call('HGET', KEYS[5], slot) ~= 'standby' then return 'slot' end
short_fields(KEYS[1])
if redis.call('HGET', KEYS[1], FIELD.status) ~= 'waiting' or redis.call('SISMEMBER', KEYS[10], ref) == 1 then
  return 'person'
end
redis.call('ZREM', KEYS[8], id)
end_wait(KEYS[1], KEYS[14], id, ARGV[8])
redis.call('HSET', KEYS[1], FIELD.status, 'offered', FIELD.status_changed_at, now)
redis.call('HSET', KEYS[3], id, cjson.encode({draw_id = draw_id, ref = ref, slot = slot, deadline = ARGV[6],
  offered_at = now, status = 'pending', standby = true}))
redis.call('ZADD', KEYS[4], ARGV[7], id)
redis.call('HSET', KEYS[5], slot, 'offered')
redis.call('HSET', KEYS[6], slot, id)
redis.call('HDEL', KEYS[9], slot)
redis.call('SADD', KEYS[10], ref)
add_event(KEYS[1], KEYS[2], event_text(now, 'standby_offer', {draw_id = draw_id, slot = slot}))
redis.call('RPUSH', KEYS[7], cjson.encode({id = 'offer:' .. draw_id .. ':' .. id .. ':' .. ARGV[8], kind = 'offer',
  registration_id = id, draw_id = draw_id, slot = slot}))
count_event('offer_reoffered', 1, KEYS[11], KEYS[12], KEYS[13])
return 'ok'
