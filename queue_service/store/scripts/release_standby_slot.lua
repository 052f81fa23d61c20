-- Store.release_standby_slot: a freed slot no entrant of its draw took opens for the next draw.
--
-- KEYS: slot states, standby slots, stats totals, stats day, the draw's stats. ARGV: slot id, draw id.
-- The draw's order has no one left for this slot: it goes to the next draw.

if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[2], ARGV[1])
if redis.call('HGET', KEYS[1], ARGV[1]) == 'standby' then
  redis.call('HSET', KEYS[1], ARGV[1], 'open')
  count_event('slot_returned_to_draw', 1, KEYS[3], KEYS[4], KEYS[5])
end
return 1
