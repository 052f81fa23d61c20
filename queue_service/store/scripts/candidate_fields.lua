-- Store.draw_candidates: some fields of a batch of registrations, as one string.
--
-- KEYS: registrations (a batch of a few thousand: the script holds Redis a few milliseconds)
-- ARGV: the names of the fields to read of each, twice: short names, then the same fields'
--       long names (store/fields.py `both_names`: a hash written before 2026-11-29 has
--       those; this script only reads, and leaves it so)
-- Returns one string: for each registration in the order of KEYS, its fields in the order of
-- the names joined by U+001F ("" for a field it lacks: every field, for a registration gone), the
-- registrations joined by U+001E. One string, not a reply element per field: a freeze reads
-- a million registrations, and the client's time goes into parsing elements. (No field it
-- reads holds either separator: references, dates, site ids, digits, channel names, epochs.)

local rows, width = {}, #ARGV / 2
local values, line = nil, {}
for index = 1, #KEYS do
  values = redis.call('HMGET', KEYS[index], unpack(ARGV))
  for field = 1, width do line[field] = values[field] or values[width + field] or '' end
  rows[index] = table.concat(line, '\31', 1, width)
end
return table.concat(rows, '\30')
