-- Store.create_draw: a draw's record, created once, and indexed by its scheduled time; a draw
-- run now is also listed among the draws to run when its entries close.
--
-- KEYS: draw record, draws index, draws to run. ARGV: scheduled time (epoch), draw id, when
-- it is to run (epoch; "" for a scheduled draw, which the clock finds in its schedule), then
-- field/value pairs.

if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 4))
redis.call('ZADD', KEYS[2], ARGV[1], ARGV[2])
if ARGV[3] ~= '' then redis.call('ZADD', KEYS[3], ARGV[3], ARGV[2]) end
return 1
