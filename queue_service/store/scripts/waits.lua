-- The waits prelude: the loader (store/lua.py) puts this file in front of every
-- script that calls end_wait or begin_wait.
--
-- A registration's wait in the waiting set is on its hash: `waiting_entered_at`
-- (when it began, epoch), `waiting_since` (its score in the waiting set: draws lost
-- are counted from there), `draws_lost` (settled before it) and, once it ended,
-- `waiting_left_at`. An ended wait is kept in the pool's ended waits
-- (keys.WAITS_ENDED_KEY) as "<id>|<entered>|<joined>|<draws lost>", scored by when
-- it ended, so that a draw frozen later knows who was waiting at its cutoff:
--   end_wait(registration, ended_waits, id, at)  the wait ends at `at` (epoch text):
--       recorded, and `waiting_left_at` set.
--   begin_wait(registration, ended_waits, id, at)  a new wait begins at `at`; the
--       previous one, if it ended (a draw's commit ends its winners' waits without
--       recording them, to stay short), is recorded first. Call it before changing
--       `waiting_since` or `draws_lost`.
-- Recording one wait twice changes nothing (same member, same score). Waits begun
-- before `waiting_entered_at` was kept began when they joined (`waiting_since`).
-- The keys come from KEYS, never built here.

local function record_wait(registration, ended_waits, id, at)
  local wait = redis.call('HMGET', registration, 'waiting_entered_at', 'waiting_since', 'draws_lost')
  local entered = wait[1] or wait[2]
  if entered and entered ~= '' then
    redis.call('ZADD', ended_waits, at, id .. '|' .. entered .. '|' .. (wait[2] or '') .. '|' .. (wait[3] or '0'))
  end
end
local function end_wait(registration, ended_waits, id, at)
  record_wait(registration, ended_waits, id, at)
  redis.call('HSET', registration, 'waiting_left_at', at)
end
local function begin_wait(registration, ended_waits, id, at)
  local left = redis.call('HGET', registration, 'waiting_left_at')
  if left and left ~= '' then record_wait(registration, ended_waits, id, left) end
  redis.call('HSET', registration, 'waiting_entered_at', at, 'waiting_left_at', '')
end
