-- Store.advance_reconciled: the clock's reconciled-until mark moves forward only.
--
-- KEYS: a string holding a number. ARGV: a number.
-- Sets the string to the number if it is greater (clocks may race: never go back).

local current = tonumber(redis.call('GET', KEYS[1]) or '-1')
if tonumber(ARGV[1]) > current then redis.call('SET', KEYS[1], ARGV[1]) end
return 1
