-- Store.draw_candidates: the waits that may cover a draw's cutoff, with what the draw needs of them.
--
-- KEYS: waiting, ended waits, committed draws
-- ARGV: cutoff (epoch), registration key prefix (PoolKeys.registration_prefix), how many
--       committed draws the caller read, then pairs: registration id, when a draw committed
--       after the cutoff took it out of the waiting set (epoch)
-- Returns "retry" if a draw was committed since the caller read them (its winners would be
-- missed); else, in one round trip, a flat list of id, joined (epoch: the waiting set's score),
-- entered (epoch: when the wait began; "" when it began when it joined), left (epoch: when it
-- ended, "" while it goes on), draws_lost (settled before that wait), ref, permit_expiry,
-- sites, half_days, channel, and so on for the next. Three sources, read at one instant:
--   1. the registrations waiting now that joined the waiting set by the cutoff (someone who
--      went back to it after the cutoff keeps an earlier score, hence `entered`);
--   2. the waits recorded as ended after the cutoff (left for a standby offer, closed, or
--      ended by a draw's commit and recorded when the registration waited again);
--   3. the registrations given, while the wait the commit ended is still the last one on
--      their hash (they have not waited again).
-- draws.waiting_at_cutoff keeps the waits that cover the cutoff. Registrations purged
-- since are left out (their reference is gone). At a million entrants no table is made
-- per row (the garbage would slow the next script down).

if redis.call('ZCARD', KEYS[3]) ~= tonumber(ARGV[3]) then return 'retry' end
local cutoff, prefix = ARGV[1], ARGV[2]
local rows, count = {}, 0
local function add(id, joined, entered, left, draws_lost, fields)
  -- (A nil would end the reply there.)
  rows[count + 1], rows[count + 2], rows[count + 3], rows[count + 4] = id, joined or '', entered or '', left
  rows[count + 5] = draws_lost or ''
  for field = 1, 5 do rows[count + 5 + field] = fields[field] or '' end
  count = count + 10
end
local DETAILS = {'ref', 'permit_expiry', 'sites', 'half_days', 'channel'}

local waiting = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', cutoff, 'WITHSCORES')
for index = 1, #waiting, 2 do
  local id, joined = waiting[index], waiting[index + 1]
  local fields = redis.call('HMGET', prefix .. id, 'ref', 'permit_expiry', 'sites', 'half_days', 'channel',
    'draws_lost', 'waiting_entered_at')
  -- Most began their wait when they joined (and so did those from before waits were recorded).
  local entered = fields[7]
  if entered and tonumber(entered) == tonumber(joined) then entered = '' end
  if fields[1] then add(id, joined, entered, '', fields[6], fields) end
end

local ended = redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. cutoff, '+inf', 'WITHSCORES')
for index = 1, #ended, 2 do
  local id, entered, joined, draws_lost = string.match(ended[index], '^(.*)|([^|]*)|([^|]*)|([^|]*)$')
  local fields = redis.call('HMGET', prefix .. id, unpack(DETAILS))
  if fields[1] then add(id, joined, entered, ended[index + 1], draws_lost, fields) end
end

for index = 4, #ARGV, 2 do
  local id = ARGV[index]
  local fields = redis.call('HMGET', prefix .. id, 'ref', 'permit_expiry', 'sites', 'half_days', 'channel',
    'draws_lost', 'waiting_entered_at', 'waiting_since', 'status')
  if fields[1] and fields[9] ~= 'waiting' and fields[8] then
    add(id, fields[8], fields[7] or fields[8], ARGV[index + 1], fields[6], fields)
  end
end
return rows
