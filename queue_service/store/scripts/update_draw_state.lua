-- Store.update_draw_state: a fenced change of a draw's record.
--
-- KEYS: draw record, draw fence. ARGV: fence ("" = any), expected state, then field/value pairs.
-- Changes the record only if the fence is the latest and the state is as expected.

if ARGV[1] ~= '' and redis.call('GET', KEYS[2]) ~= ARGV[1] then return 'stale' end
if redis.call('HGET', KEYS[1], 'state') ~= ARGV[2] then return 'state' end
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
return 'ok'
