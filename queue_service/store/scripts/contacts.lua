-- The contacts prelude: the loader (store/lua.py) puts this file in front of every
-- script that calls one of the contact_ functions.
--
-- The registrations of a pool using one email address or phone number (at most the
-- cap) are, since 2026-11-29, a field of the pool's contacts hash (keys.CONTACTS_KEY),
-- named by the first 16 bytes of the contact's fingerprint (print_field), its value
-- their ids joined by commas: about 80 bytes less a contact than a key of its own.
-- Before, a key of its own (keys.CONTACT_KEY, "former" here): a set, or a hash of
-- id -> "" (2026-11-29, earlier in the day); the first script that touches it moves
-- its members into the field and deletes it. The keys come from KEYS, never built
-- here; `print` is the fingerprint's text ('' for no contact: nothing is read or
-- written then).
--   contact_add(contacts, former, print, id), contact_remove(contacts, former, print, id)
--   contact_count(contacts, former, print)     how many registrations use the contact
--   contact_has(contacts, former, print, id)   whether registration `id` uses it

-- The ids using the contact, as a list, the former key's moved into the field.
local function contact_ids(contacts, former, print)
  local field, ids = print_field(print), {}
  local value = redis.call('HGET', contacts, field)
  if value then
    for id in string.gmatch(value, '[^,]+') do ids[#ids + 1] = id end
  end
  local kind = redis.call('TYPE', former).ok
  if kind ~= 'none' then
    local members = kind == 'set' and redis.call('SMEMBERS', former) or redis.call('HKEYS', former)
    for _, member in ipairs(members) do
      local known = false
      for _, id in ipairs(ids) do known = known or id == member end
      if not known then ids[#ids + 1] = member end
    end
    redis.call('DEL', former)
    if #ids > 0 then redis.call('HSET', contacts, field, table.concat(ids, ',')) end
  end
  return ids, field
end

local function contact_add(contacts, former, print, id)
  if print == '' then return end
  local ids, field = contact_ids(contacts, former, print)
  for _, known in ipairs(ids) do
    if known == id then return end
  end
  ids[#ids + 1] = id
  redis.call('HSET', contacts, field, table.concat(ids, ','))
end

local function contact_remove(contacts, former, print, id)
  if print == '' then return end
  local ids, field = contact_ids(contacts, former, print)
  local kept = {}
  for _, known in ipairs(ids) do
    if known ~= id then kept[#kept + 1] = known end
  end
  if #kept == 0 then
    redis.call('HDEL', contacts, field)
  elseif #kept < #ids then
    redis.call('HSET', contacts, field, table.concat(kept, ','))
  end
end

local function contact_count(contacts, former, print)
  if print == '' then return 0 end
  return #contact_ids(contacts, former, print)
end

local function contact_has(contacts, former, print, id)
  if print == '' then return false end
  for _, known in ipairs(contact_ids(contacts, former, print)) do
    if known == id then return true end
  end
  return false
end
