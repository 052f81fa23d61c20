-- The fields prelude: the loader (store/lua.py) puts this file, behind the table FIELD
-- built from store/fields.py, in front of every script that says `FIELD.`.
--
-- A registration's hash keeps its fields under short names since 2026-11-29
-- (FIELD.status is 's': store/fields.py says why and lists them). A hash written
-- before has the long names (FIELD_NAMES, and `person2`... for the packed parts):
-- the first script that touches it renames them, values unchanged. Call it on each
-- registration hash a script reads or changes, before the first read:
--   short_fields(registration)

local function short_fields(registration)
  if redis.call('HEXISTS', registration, 'status') == 0 then return end
  for _, long in ipairs(FIELD_NAMES) do
    local value = redis.call('HGET', registration, long)
    if value then
      redis.call('HSET', registration, FIELD[long], value)
      redis.call('HDEL', registration, long)
    end
  end
end
