-- The contacts prelude: the loader (store/lua.py) puts this file in front of every
-- script that calls one of the contact_ functions.
--
-- A contact key (keys.CONTACT_KEY: the registrations of a pool using one email
-- address or phone number) is a hash of registration id -> "" since 2026-11-29: Redis
-- keeps a hash this small as one compact listpack (ziplist on 6.2), a set of strings
-- as a hash table before Redis 7.2 (about 100 bytes more a key). One written before
-- is a set: the first script that touches it turns it into a hash, members unchanged.
-- The key comes from KEYS, never built here.
--   contact_add(key, id), contact_remove(key, id)
--   contact_count(key)     how many registrations use the contact
--   contact_has(key, id)   whether registration `id` uses it

local function contact_hash(key)
  if redis.call('TYPE', key).ok == 'set' then
    local members = redis.call('SMEMBERS', key)
    redis.call('DEL', key)
    for _, member in ipairs(members) do redis.call('HSET', key, member, '') end
  end
end

local function contact_add(key, id)
  contact_hash(key)
  redis.call('HSET', key, id, '')
end

local function contact_remove(key, id)
  contact_hash(key)
  redis.call('HDEL', key, id)
end

local function contact_count(key)
  contact_hash(key)
  return redis.call('HLEN', key)
end

local function contact_has(key, id)
  contact_hash(key)
  return redis.call('HEXISTS', key, id) == 1
end
