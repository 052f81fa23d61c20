-- Store.commit_draw: the drawn result becomes offers, held slots, one outbox entry and counters.
--
-- KEYS: draw record, draw fence, offers, outbox, waiting, slot states, committed draws,
--       stats totals, stats day, the draw's stats, slot holders, draw deadlines,
--       the draw's result, offer deadlines, standby slots, then the registration key of every
--       registration the result names, in its order (KEYS[15 + index]; the caller reads the result)
-- ARGV: fence, how many registration keys follow the standby slots, now (ISO), offer deadline (ISO),
--       draw id, the draw's cutoff (epoch), offer deadline (epoch), now (epoch), then triples for
--       the slots whose offer has a deadline of its own (draws.offer_deadline: the slot starts
--       too soon for the shared one): slot id, its deadline (ISO), its deadline (epoch), both ""
--       when the slot leaves too little time to answer and is not to be offered
-- Applies the drawn result (read here from the result key: columns "registrations",
-- "refs", "slots", "by_wait"; a result saved before results were columns is a list of
-- {registration, ref, slot}) at once: winners still waiting whose slot is still
-- open (and leaves time to answer) get their offer (the slot offered and held by
-- them); the others are listed in the record's "not_applied", and their slot, if
-- still open, goes to standby: offers.fill_standby offers it to the next entrant
-- of this draw's order (a slot cancelled or taken stays as it is). What is the
-- same for every offer is written once, not a hundred thousand times: their
-- deadline (the record's "offers_deadline", and the draw in the draw deadlines
-- for the expiry round), and one outbox message ({"kind": "draw_offers"}) that
-- the dispatcher turns into one per offer (draws.offer_messages). Only an offer
-- whose slot starts too soon has its own deadline, in its JSON and in the offer
-- deadlines (as standby offers have). Losers are not written one by one either:
-- the draw joins the pool's committed draws, from which every registration's
-- draws entered and lost are counted (those committed during its wait). Nor
-- are the winners' waits recorded as ended: the record keeps when the commit
-- ended them ("committed_epoch"), and move_offer records such a wait if its
-- winner waits again (store/scripts/waits.lua).
-- Every key is in KEYS, all under the pool's hash tag (one cluster slot); a result that
-- does not match the keys given (it cannot change once drawn) answers "keys".
-- Counts draw_committed and slots_offered (the latter in the draw's stats too),
-- once: a second run finds the draw committed.
-- Returns "ok", "stale" (a newer worker holds the draw), "state" (not drawn) or "keys".
-- A million entrants and a hundred thousand winners take about a second here:
-- tables are filled with explicit counters (Lua 5.1's # is a search) and written
-- in batches of 6,000 arguments.

if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 'stale' end
if redis.call('HGET', KEYS[1], 'state') ~= 'drawn' then return 'state' end
local key_count, now, deadline, draw_id, deadline_score, now_epoch = tonumber(ARGV[2]), ARGV[3], ARGV[4], ARGV[5],
  ARGV[7], ARGV[8]
local own_deadline = {}  -- slot id -> {ISO, epoch}, both "" for a slot not to be offered
for index = 9, #ARGV, 3 do own_deadline[ARGV[index]] = {ARGV[index + 1], ARGV[index + 2]} end
local result = cjson.decode(redis.call('GET', KEYS[13]))
local ids, refs, slot_ids = result.registrations, result.refs, result.slots
if ids == nil then
  ids, refs, slot_ids = {}, {}, {}
  for index, row in ipairs(result) do
    ids[index], refs[index], slot_ids[index] = row.registration, row.ref, row.slot
  end
end
if key_count ~= #ids then return 'keys' end
local function flush(command, key, items, count)
  for first = 1, count, 6000 do
    redis.call(command, key, unpack(items, first, math.min(first + 5999, count)))
  end
end
-- Who is still waiting, and which slots are still open, read in batches: being
-- in the waiting set is being `waiting` (every script keeps the two together).
local still_waiting, still_open = {}, {}
for first = 1, #ids, 6000 do
  local last = math.min(first + 5999, #ids)
  local scores = redis.call('ZMSCORE', KEYS[5], unpack(ids, first, last))
  local slot_states = redis.call('HMGET', KEYS[6], unpack(slot_ids, first, last))
  for index = first, last do
    still_waiting[index] = scores[index - first + 1]
    still_open[index] = slot_states[index - first + 1] == 'open'
  end
end
local offers, states, holders, leaving, skipped = {}, {}, {}, {}, {}
local applied, pairs_written, skipped_count = 0, 0, 0
local own_entries, own_written, freed_states, freed_draws, freed_written = {}, 0, {}, {}, 0
-- Winners in the order they joined the waiting list, as the result lists them ("by_wait",
-- positions from 0): neighbours in the waiting set's skip list, and registrations written
-- about the same time, so that removing and changing them touches memory in order
-- (twice as fast at a million entrants as in the draw's order).
local by_wait = result.by_wait
for position = 1, #ids do
  local index = by_wait and by_wait[position] + 1 or position
  local id, ref, slot_id = ids[index], refs[index], slot_ids[index]
  local own = own_deadline[slot_id]
  if not still_waiting[index] or not still_open[index] or (own and own[1] == '') then
    -- Left the waiting list since the freeze, or the slot was cancelled or taken by another
    -- draw, or (a late commit) it starts too soon to leave time to answer.
    skipped_count = skipped_count + 1
    skipped[skipped_count] = ref
    if still_open[index] then
      local first, second = freed_written + 1, freed_written + 2
      freed_written = second
      freed_states[first], freed_states[second] = slot_id, 'standby'
      freed_draws[first], freed_draws[second] = slot_id, draw_id
    end
  else
    short_fields(KEYS[15 + index])
    redis.call('HSET', KEYS[15 + index], FIELD.status, 'offered', FIELD.status_changed_at, now)
    applied = applied + 1
    leaving[applied] = id
    local first, second = pairs_written + 1, pairs_written + 2
    pairs_written = second
    offers[first], offers[second] = id, '{"draw_id":"' .. draw_id .. '","ref":"' .. ref .. '","slot":"' .. slot_id ..
      '","deadline":"' .. (own and own[1] or deadline) .. '","offered_at":"' .. now .. '","status":"pending"}'
    states[first], states[second] = slot_id, 'offered'
    holders[first], holders[second] = slot_id, id
    if own then
      own_entries[own_written + 1], own_entries[own_written + 2] = own[2], id
      own_written = own_written + 2
    end
  end
end
flush('ZREM', KEYS[5], leaving, applied)
flush('HSET', KEYS[3], offers, pairs_written)
flush('HSET', KEYS[6], states, pairs_written)
flush('HSET', KEYS[11], holders, pairs_written)
flush('ZADD', KEYS[14], own_entries, own_written)
flush('HSET', KEYS[6], freed_states, freed_written)
flush('HSET', KEYS[15], freed_draws, freed_written)
if applied > 0 then
  redis.call('ZADD', KEYS[12], deadline_score, draw_id)
  redis.call('RPUSH', KEYS[4], cjson.encode({id = 'offers:' .. draw_id, kind = 'draw_offers', draw_id = draw_id}))
end
redis.call('ZADD', KEYS[7], ARGV[6], draw_id)
redis.call('HSET', KEYS[1], 'state', 'committed', 'committed_at', now, 'committed_epoch', now_epoch, 'offered', applied,
  'offers_deadline', deadline_score,
  'not_applied', skipped_count == 0 and '[]' or cjson.encode(skipped))
count_event('draw_committed', 1, KEYS[8], KEYS[9])
count_event('slots_offered', applied, KEYS[8], KEYS[9], KEYS[10])
return 'ok'
