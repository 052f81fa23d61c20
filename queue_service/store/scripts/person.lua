-- The person prelude: the loader (store/lua.py) puts this file in front of every
-- script that calls one of the person_ functions.
--
-- Which registration holds a person's place: since 2026-11-29 a field of the pool's
-- people hash (keys.PEOPLE_KEY), named by the first 16 bytes of the identity
-- fingerprint (print_field; 128 bits of a keyed hash are as good a name, in
-- jemalloc's 32-byte class, not the 48-byte one), its value the id as id_value keeps
-- it (ids.lua); before, a string key of its own (keys.IDENTITY_KEY, "former" here),
-- still read, and deleted when the place is taken again or released. The keys come
-- from KEYS, never built here; `print` is the fingerprint's text (hexadecimal) and
-- ids are text, as store/registrations.py (`_person_field`) has them.
--   person_holder(people, former, print)        the id holding the place, or false
--   person_hold(people, former, print, id)      registration `id` holds it (in the hash)
--   person_release(people, former, print, id)   the place is free, if `id` held it

local function person_holder(people, former, print)
  return id_text(redis.call('HGET', people, print_field(print))) or redis.call('GET', former)
end

local function person_hold(people, former, print, id)
  redis.call('HSET', people, print_field(print), id_value(id))
  redis.call('DEL', former)
end

local function person_release(people, former, print, id)
  local field = print_field(print)
  if id_text(redis.call('HGET', people, field)) == id then redis.call('HDEL', people, field) end
  if redis.call('GET', former) == id then redis.call('DEL', former) end
end
