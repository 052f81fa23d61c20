-- Store.draw_candidates: the waiting registrations a draw freezes.
--
-- KEYS: waiting. ARGV: cutoff (epoch), registration key prefix (PoolKeys.registration_prefix).
-- What a draw needs of every registration waiting since before the cutoff, in
-- one round trip: a flat list of id, joined (epoch), ref, draws_lost,
-- permit_expiry, sites, half_days, channel, and so on for the next.

local waiting = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES')
local rows = {}
for index = 1, #waiting, 2 do
  local id = waiting[index]
  local fields = redis.call('HMGET', ARGV[2] .. id, 'ref', 'draws_lost', 'permit_expiry', 'sites', 'half_days',
    'channel')
  if fields[1] then
    rows[#rows + 1] = id
    rows[#rows + 1] = waiting[index + 1]
    for field = 1, 6 do rows[#rows + 1] = fields[field] end
  end
end
return rows
