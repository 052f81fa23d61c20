-- Store.open_slot_counts: how many of a pool's slots are open in each time range.
--
-- KEYS: slot times, slot states. ARGV: pairs of (start, end) epochs.
-- How many slots are open in each [start, end), counted in Redis: the pages
-- that project chances need counts, not the slots themselves.

local found = {}
for pair = 1, #ARGV, 2 do
  local open = 0
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[pair], '(' .. ARGV[pair + 1])) do
    if redis.call('HGET', KEYS[2], id) == 'open' then open = open + 1 end
  end
  found[#found + 1] = open
end
return found
