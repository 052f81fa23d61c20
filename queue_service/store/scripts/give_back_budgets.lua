-- BudgetCounters.give_back: the request taken by take_budgets.lua from each counter given
-- back (the request turned out not to count), on the counters whose window still runs.
--
-- KEYS[i]: a budget counter (keys.budget_key). No ARGV. Returns how many were given back.

local given = 0
for _, key in ipairs(KEYS) do
  if tonumber(redis.call('GET', key) or '0') > 0 then
    redis.call('DECRBY', key, 1)
    given = given + 1
  end
end
return given
