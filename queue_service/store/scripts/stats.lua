-- The counting prelude: the loader (store/lua.py) puts this file in front of every
-- script that calls count_event or count_wait.
--
-- Counters (queue_service/metrics/__init__.py names the events; the "Counters"
-- section of queue_service/store/keys.py documents the keys). Put in front of every script that counts, so a
-- counter changes in the same atomic step as the state it counts:
--   count_event(event, amount, key, ...)  HINCRBY `event` by `amount` in each
--       hash given: the pool's totals and its day (Store.stats_keys), and for
--       what concerns one draw's offers, the draw's (Store.stats_keys(draw_id=)).
--   count_wait(key, days)  one more wait of `days` whole days in the pool's
--       wait histogram (Store.waits_key).
-- The keys come from KEYS, never built here. An amount of 0 writes nothing.

local function count_event(event, amount, ...)
  amount = tonumber(amount)
  if amount == 0 then return end
  for _, key in ipairs({...}) do redis.call('HINCRBY', key, event, amount) end
end
local function count_wait(key, days)
  redis.call('HINCRBY', key, tostring(math.floor(tonumber(days))), 1)
end
