-- Store.retry_delivery: staff send a message that could not be delivered once more.
--
-- KEYS: deliveries, delivery failures, outbox
-- ARGV: delivery field ("<message id>|<channel>"), staff account, now (ISO)
-- Only a delivery that did not go out, and whose message was kept with its
-- record, is retried: its record says who asked and when (and is no longer
-- final, nor refused, so that the send job tries it), and its message goes back
-- to the pool's outbox, in one step. Returns 1 if so, 0 otherwise.

local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return 0 end
local record = cjson.decode(raw)
if record.status == 'sent' or type(record.message) ~= 'table' then return 0 end
record.status = 'retrying'
record.final = false
record.retried_by = ARGV[2]
record.retried_at = ARGV[3]
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(record))
redis.call('RPUSH', KEYS[3], cjson.encode(record.message))
return 1
