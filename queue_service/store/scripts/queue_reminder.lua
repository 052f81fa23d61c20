-- Store.queue_reminder: one reminder of a booking into the outbox.
--
-- KEYS: offers, reminders sent, outbox. ARGV: id, now (epoch), then the reminder
-- lead times (hours) now due. Queues one reminder, about the slot of the booking,
-- for those not yet sent (a booking made the day before gets one message, not two).

local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return 0 end
local offer = cjson.decode(raw)
if offer.status ~= 'confirmed' then return 0 end
local fresh = 0
for index = 3, #ARGV do
  fresh = fresh + redis.call('HSETNX', KEYS[2], ARGV[1] .. ':' .. offer.slot .. ':' .. ARGV[index], ARGV[2])
end
if fresh == 0 then return 0 end
redis.call('RPUSH', KEYS[3], cjson.encode({id = 'reminder:' .. offer.draw_id .. ':' .. ARGV[1] .. ':' .. ARGV[#ARGV],
  kind = 'reminder', registration_id = ARGV[1], draw_id = offer.draw_id, slot = offer.slot}))
return 1
