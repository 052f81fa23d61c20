-- The waits prelude: the loader (store/lua.py) puts this file in front of every
-- script that calls end_wait.
--
-- A registration's current (or last) wait in the waiting set is on its hash:
-- `waiting_entered_at` (when it began, epoch), `waiting_since` (its score in the
-- waiting set: draws lost are counted from there) and `draws_lost` (settled before
-- it). A wait that ended is kept in the pool's ended waits (keys.WAITS_ENDED_KEY) as
-- "<id>|<entered>|<joined>|<draws lost>", scored by when it ended, so that a draw
-- frozen later knows who was waiting at its cutoff:
--   end_wait(registration, ended_waits, id, ended)  records the hash's wait as ended
--       at `ended` (epoch text). Call it when the wait ends (a standby offer, closing),
--       or, for a wait a draw's commit ended (the commit records none, to stay
--       short), when the registration waits again, before `waiting_since` or
--       `draws_lost` change. Recording one wait twice changes nothing.
-- Waits begun before `waiting_entered_at` was kept began when they joined
-- (`waiting_since`). The keys come from KEYS, never built here.

local function end_wait(registration, ended_waits, id, ended)
  local wait = redis.call('HMGET', registration, FIELD.waiting_entered_at, FIELD.waiting_since, FIELD.draws_lost)
  local entered = wait[1] or wait[2]
  if entered and entered ~= '' and ended then
    redis.call('ZADD', ended_waits, ended, id .. '|' .. entered .. '|' .. (wait[2] or '') .. '|' .. (wait[3] or '0'))
  end
end
