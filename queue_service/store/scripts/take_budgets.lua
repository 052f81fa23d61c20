-- BudgetCounters.take: one request taken from each of a request's budget counters, all
-- or none, in one call (a registration counts against up to three budgets, each with
-- its limits): none if any counter has reached its limit.
--
-- KEYS[i]: a budget counter (keys.budget_key), a string holding an integer.
-- ARGV[2i - 1]: that counter's limit (requests per window); ARGV[2i]: the seconds of its
-- window: the counter expires that long after the request that created it (a fixed
-- window from the first request, as Flask-Limiter's).
-- KEYS[#ARGV / 2 + 1], if given: a string key read in the same call, whatever the
-- budgets say (the reference version: BudgetCounters.take's `read`).
-- Returns {0} when the request is taken from every counter; otherwise {the milliseconds
-- until the last of the full counters' windows ends (at least 1)}, and nothing is taken;
-- followed by the value of the key read, if any and set.

local counters = #ARGV / 2
local read = false
if #KEYS > counters then read = redis.call('GET', KEYS[counters + 1]) end
local wait = 0
for index = 1, counters do
  local key = KEYS[index]
  local count = tonumber(redis.call('GET', key) or '0')
  if count >= tonumber(ARGV[2 * index - 1]) then
    local left = redis.call('PTTL', key)
    if left < 1 then left = tonumber(ARGV[2 * index]) * 1000 end
    if left > wait then wait = left end
  end
end
if wait > 0 then return {wait, read} end
for index = 1, counters do
  if redis.call('INCRBY', KEYS[index], 1) == 1 then redis.call('EXPIRE', KEYS[index], ARGV[2 * index]) end
end
return {0, read}
