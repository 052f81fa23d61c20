-- Store.create_registration: a new registration, with its person, contacts and reference, all or nothing.
--
-- KEYS: registration, history, identity, email contacts, phone contacts, refs,
--       unconfirmed, waiting, stats totals, stats day, outbox, then the person's
--       other identity keys (their names in every other order), then for each
--       registration the caller found holding the person's place (ARGV[13], in the
--       order found): its registration, history, email contacts and phone contacts,
--       then the pool's contacts hash and people hash (the identity and contact keys
--       before them are those written before 2026-11-29: person.lua, contacts.lua)
-- ARGV: id, ref, contacts cap, status, now (epoch), confirm-by (epoch), history
--       event, email print ("" for none), phone print ("" for none), channel, the outbox
--       message (JSON; "" for none), how many other identity keys, the holders the
--       caller read (JSON list of [id, email print, phone print]), the person's
--       identity prints (JSON list: that of KEYS[3], then those of the other identity
--       keys, in their order), then field/value pairs of the registration (its
--       fingerprints as stored: prints.lua)
-- The person is looked up under each of their identity keys. A registration of
-- theirs still waiting for its email to be confirmed does not hold the place: it
-- is replaced, here, in the same step (deleted with its indexes and the keys it
-- held; its link then leads nowhere, and its message finds nothing to send). Its
-- keys come in KEYS, from the caller's read just before (Store.create_registration):
-- if the holders found here, or their contacts, are not those the caller read (a
-- concurrent attempt changed them), nothing is written and 'retry' asks the caller
-- to read again. A confirmed registration (or one made at the counter) holds the
-- place: 'duplicate'.
-- Returns 'ok', 'duplicate', 'contact_cap', 'ref_taken' (the caller draws another reference)
-- or 'retry'.
-- Counts registered (and registered_assisted, and replaced_unconfirmed for each registration
-- replaced), or the refusal: duplicate_refused, contact_cap_refused. A reference already
-- taken is retried by the caller: not counted.
-- The message (the confirmation link, or the status link) is pushed only with the registration.

local stats = {KEYS[9], KEYS[10]}
-- The registrations holding the person's place, in the order their keys are found.
local holders, keys_of = {}, {}
local people, contacts, lookups = KEYS[#KEYS], KEYS[#KEYS - 1], cjson.decode(ARGV[14])
local function look(index, print)
  local holder = person_holder(people, KEYS[index], print)
  if not holder then return end
  if not keys_of[holder] then
    keys_of[holder] = {}
    holders[#holders + 1] = holder
  end
  local held = keys_of[holder]
  held[#held + 1] = {KEYS[index], print}
end
look(3, lookups[1])
local holder_keys = 12 + tonumber(ARGV[12])  -- the first key of the first holder's
for index = 12, holder_keys - 1 do look(index, lookups[index - 10]) end
local expected = cjson.decode(ARGV[13])
if #expected ~= #holders then return 'retry' end
local replaced = {}
for number, holder in ipairs(holders) do
  local first = holder_keys + 4 * (number - 1)
  short_fields(KEYS[first])
  local fields = redis.call('HMGET', KEYS[first], FIELD.status, FIELD.email_fp, FIELD.phone_fp, FIELD.ref)
  local seen = expected[number]
  local prints = {print_text(fields[2]), print_text(fields[3])}
  if seen[1] ~= holder or seen[2] ~= prints[1] or seen[3] ~= prints[2] then return 'retry' end
  if fields[1] ~= 'pending_email' then
    count_event('duplicate_refused', 1, unpack(stats))
    return 'duplicate'
  end
  replaced[#replaced + 1] = {id = holder, ref = fields[4] or '', registration = KEYS[first],
                             history = KEYS[first + 1], contacts = {KEYS[first + 2], KEYS[first + 3]},
                             prints = prints}
end
local cap = tonumber(ARGV[3])
local function over_cap(print, former)
  if print == '' then return false end
  local count = contact_count(contacts, former, print)
  for _, old in ipairs(replaced) do  -- leaving
    if contact_has(contacts, former, print, old.id) then count = count - 1 end
  end
  return count >= cap
end
if over_cap(ARGV[8], KEYS[4]) or over_cap(ARGV[9], KEYS[5]) then
  count_event('contact_cap_refused', 1, unpack(stats))
  return 'contact_cap'
end
if redis.call('HEXISTS', KEYS[6], ARGV[2]) == 1 then return 'ref_taken' end
for _, old in ipairs(replaced) do
  redis.call('DEL', old.registration, old.history)
  for which = 1, 2 do
    contact_remove(contacts, old.contacts[which], old.prints[which], old.id)
  end
  if id_text(redis.call('HGET', KEYS[6], old.ref)) == old.id then redis.call('HDEL', KEYS[6], old.ref) end
  redis.call('ZREM', KEYS[7], old.id)
  for _, held in ipairs(keys_of[old.id]) do person_release(people, held[1], held[2], old.id) end  -- each found holding it
  count_event('replaced_unconfirmed', 1, unpack(stats))
end
redis.call('HSET', KEYS[6], ARGV[2], id_value(ARGV[1]))
person_hold(people, KEYS[3], lookups[1], ARGV[1])
contact_add(contacts, KEYS[4], ARGV[8], ARGV[1])
contact_add(contacts, KEYS[5], ARGV[9], ARGV[1])
redis.call('HSET', KEYS[1], unpack(ARGV, 15))
add_event(KEYS[1], KEYS[2], ARGV[7])
if ARGV[4] == 'pending_email' then
  redis.call('ZADD', KEYS[7], ARGV[6], ARGV[1])
else
  redis.call('ZADD', KEYS[8], ARGV[5], ARGV[1])
end
if ARGV[11] ~= '' then redis.call('RPUSH', KEYS[11], ARGV[11]) end
count_event('registered', 1, unpack(stats))
if ARGV[10] == 'assisted' then count_event('registered_assisted', 1, unpack(stats)) end
return 'ok'
