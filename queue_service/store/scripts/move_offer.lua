-- Store.move_offer: one transition of an offer (confirm, decline, expire, cancel, attended,
-- no_show, slot_cancelled). Its 25 KEYS are built by move_offer_keys (store/offers.py) only.
--
-- KEYS: registration, history, offers, offer deadlines, slot states, slot holders,
--       bookings, booking codes, outbox, waiting, committed draws, identity (as before 2026-11-29),
--       email contacts, phone contacts, closed, standby slots, stats totals,
--       stats day, the offer's draw's stats, waits histogram, the offer's draw's
--       set of references not to offer again (joined on going back to the pool),
--       the offer's draw's record (its fields offers_deadline and committed_epoch), ended waits, people,
--       contacts (the identity and contact keys: as written before 2026-11-29)
-- ARGV: action, id, now (ISO), now (epoch), waiting since (epoch, "" if unknown),
--       the offer's draw id (as the caller read it: the stats keys are that draw's),
--       days from registration to the slot, "1" if a renewal's permit expires
--       before the slot, then per action: confirm: booking code, slot start (epoch);
--       decline / expire: "1" to return to the pool, "0" to leave it;
--       cancel: latest cancellation (epoch); no_show: earliest marking (epoch), and
--       the agent's account who marked it at the counter ("" or absent: the job);
--       slot_cancelled: the slot id; attended: the agent's account, and the
--       warnings the agent overrode ("not_today,other_site"; "" for none).
-- Moves one offer (and its registration, slot, messages and counters) on, all or nothing.
-- Returns "ok", or why not: "missing", "no_offer", "state", "late", "early".

local action, id, now, now_epoch = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
short_fields(KEYS[1])
local status = redis.call('HGET', KEYS[1], FIELD.status)
if not status then return 'missing' end
local raw = redis.call('HGET', KEYS[3], id)
if not raw then return 'no_offer' end
local offer = cjson.decode(raw)
if offer.draw_id ~= ARGV[6] then return 'state' end
local function counted(event) count_event(event, 1, KEYS[17], KEYS[18], KEYS[19]) end
local pending = status == 'offered' and offer.status == 'pending'
local booked = status == 'confirmed' and offer.status == 'confirmed'

local function save(outcome)
  offer.status = outcome
  offer.changed_at = now
  redis.call('HSET', KEYS[3], id, cjson.encode(offer))
end
local function event(kind, more)
  local detail = {draw_id = offer.draw_id, slot = offer.slot}
  for name, value in pairs(more or {}) do detail[name] = value end
  add_event(KEYS[1], KEYS[2], event_text(now, kind, detail))
end
local function message(kind)
  redis.call('RPUSH', KEYS[9], cjson.encode({id = kind .. ':' .. offer.draw_id .. ':' .. id .. ':' .. ARGV[4],
    kind = kind, registration_id = id, draw_id = offer.draw_id, slot = offer.slot}))
end
local function free_slot()
  -- The slot waits for the next entrant of the same draw's order (standby), never for the first comer.
  redis.call('HDEL', KEYS[6], offer.slot)
  if redis.call('HGET', KEYS[5], offer.slot) ~= 'cancelled' then
    redis.call('HSET', KEYS[5], offer.slot, 'standby')
    redis.call('HSET', KEYS[16], offer.slot, offer.draw_id)
  end
end
local function back_to_pool()
  -- The wait a draw's offer ended is recorded now (a standby offer recorded its own), then a new one begins.
  if not offer.standby then end_wait(KEYS[1], KEYS[23], id, redis.call('HGET', KEYS[22], 'committed_epoch')) end
  redis.call('HSET', KEYS[1], FIELD.waiting_entered_at, ARGV[4])
  -- Never offered a slot by this draw again (its standby skips the references in that set).
  redis.call('SADD', KEYS[21], offer.ref)
  -- Settle the wait the won draw ended (draws lost before it), then wait again from its cutoff.
  local since = tonumber(ARGV[5])
  local won = tonumber(redis.call('ZSCORE', KEYS[11], offer.draw_id))
  if since and won then
    local lost = redis.call('ZCOUNT', KEYS[11], '(' .. ARGV[5], '(' .. won)
    redis.call('HINCRBY', KEYS[1], FIELD.draws_lost, lost)
    redis.call('HINCRBY', KEYS[1], FIELD.draws_entered, lost + 1)
  end
  local rejoin = won or now_epoch
  redis.call('HSET', KEYS[1], FIELD.status, 'waiting', FIELD.status_changed_at, now, FIELD.waiting_since, rejoin)
  redis.call('ZADD', KEYS[10], rejoin, id)
end
local function close(final)
  redis.call('HSET', KEYS[1], FIELD.status, final, FIELD.status_changed_at, now)
  person_release(KEYS[24], KEYS[12], print_text(redis.call('HGET', KEYS[1], FIELD.identity_fp)), id)
  local prints = redis.call('HMGET', KEYS[1], FIELD.email_fp, FIELD.phone_fp)
  contact_remove(KEYS[25], KEYS[13], print_text(prints[1]), id)
  contact_remove(KEYS[25], KEYS[14], print_text(prints[2]), id)
  redis.call('ZADD', KEYS[15], now_epoch, id)
end
local function deadline()
  -- The offer's own deadline (standby, or a draw's offer of a slot starting soon), else the draw's.
  return tonumber(redis.call('ZSCORE', KEYS[4], id) or redis.call('HGET', KEYS[22], 'offers_deadline'))
end

if action == 'confirm' then
  if not pending then return 'state' end
  local until_epoch = deadline()
  if not until_epoch or now_epoch > until_epoch then return 'late' end
  offer.code = ARGV[9]
  save('confirmed')
  redis.call('ZREM', KEYS[4], id)
  redis.call('HSET', KEYS[1], FIELD.status, 'confirmed', FIELD.status_changed_at, now)
  redis.call('HSET', KEYS[5], offer.slot, 'booked')
  redis.call('ZADD', KEYS[7], ARGV[10], id)
  redis.call('HSET', KEYS[8], ARGV[9], id)
  event('offer_confirmed')
  message('booked')
  counted('offer_confirmed')
  count_wait(KEYS[20], ARGV[7])
  if ARGV[8] == '1' then counted('renewal_expired_before_appointment') end
elseif action == 'decline' or action == 'expire' then
  if not pending then return 'state' end
  local until_epoch = deadline()
  if action == 'decline' and until_epoch and now_epoch > until_epoch then return 'late' end
  if action == 'expire' and until_epoch and now_epoch <= until_epoch then return 'early' end
  local outcome = action == 'decline' and 'declined' or 'expired'
  save(outcome)
  redis.call('ZREM', KEYS[4], id)
  free_slot()
  event('offer_' .. outcome)
  counted('offer_' .. outcome)
  if ARGV[9] == '1' then back_to_pool() else close(outcome) end
  if action == 'expire' then message('expired') end
elseif action == 'cancel' then
  if not booked then return 'state' end
  if now_epoch > tonumber(ARGV[9]) then return 'late' end
  save('cancelled')
  redis.call('ZREM', KEYS[7], id)
  redis.call('HDEL', KEYS[8], offer.code)
  free_slot()
  close('cancelled')
  event('booking_cancelled')
  message('booking_cancelled')
  counted('booking_cancelled')
elseif action == 'attended' then
  if not booked then return 'state' end
  offer.checked_in_by = ARGV[9]
  if (ARGV[10] or '') ~= '' then offer.override = ARGV[10] end
  save('attended')
  redis.call('ZREM', KEYS[7], id)
  close('attended')
  event('attended', {by = ARGV[9], override = ARGV[10] or ''})
  counted('attended')
elseif action == 'no_show' then
  if not booked then return 'state' end
  if now_epoch < tonumber(ARGV[9]) then return 'early' end
  local by = ARGV[10] or ''
  if by ~= '' then offer.marked_no_show_by = by end
  save('no_show')
  redis.call('ZREM', KEYS[7], id)
  close('no_show')
  event('no_show', by ~= '' and {by = by} or nil)
  counted('no_show')
elseif action == 'slot_cancelled' then
  if not (pending or booked) or offer.slot ~= ARGV[9] then return 'state' end
  save('slot_cancelled')
  redis.call('ZREM', KEYS[4], id)
  redis.call('ZREM', KEYS[7], id)
  if offer.code then redis.call('HDEL', KEYS[8], offer.code) end
  redis.call('HDEL', KEYS[6], offer.slot)
  redis.call('HSET', KEYS[5], offer.slot, 'cancelled')
  back_to_pool()
  event('slot_cancelled')
  message('slot_cancelled')
  counted('slot_cancelled_by_prefecture')
else
  return redis.error_reply('unknown offer action ' .. action)
end
return 'ok'
