-- Store.create_draw: a draw's record, created once, and indexed by its scheduled time.
--
-- KEYS: draw record, draws index. ARGV: scheduled time (epoch), draw id, then field/value pairs.

if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
redis.call('ZADD', KEYS[2], ARGV[1], ARGV[2])
return 1
