-- Store.take_login_attempt: one sign-in attempt of one account from one client, if
-- the client's wait is over; counted as a failure until a success deletes the hash.
--
-- KEYS[1]: the hash of that account's failures from that client (failures, last_at).
-- ARGV[1]: now, in milliseconds since the epoch; ARGV[2]: seconds the hash is kept
-- after a failure; ARGV[3], ARGV[4], ...: the wait, in milliseconds, after 1, 2, ...
-- failures (the last one applies to any number beyond).
-- Returns {1, failures counted} when the attempt may go ahead, {0, retry_at} when the
-- client must wait until retry_at (milliseconds since the epoch); a refused attempt
-- changes nothing, so hammering does not add to the wait and costs no password check.

local failures = tonumber(redis.call('HGET', KEYS[1], 'failures') or '0')
if failures > 0 then
  local wait = tonumber(ARGV[2 + math.min(failures, #ARGV - 2)])
  local retry_at = tonumber(redis.call('HGET', KEYS[1], 'last_at')) + wait
  if tonumber(ARGV[1]) < retry_at then return {0, retry_at} end
end
redis.call('HSET', KEYS[1], 'failures', failures + 1, 'last_at', ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
return {1, failures + 1}
