-- Store.draw_candidates: some fields of a batch of registrations, in one flat reply.
--
-- KEYS: registrations (a batch of a few thousand: the script holds Redis a few milliseconds)
-- ARGV: the names of the fields to read of each
-- Returns, for each registration in the order of KEYS, its fields in the order of ARGV:
-- "" for a field it lacks (every field, for a registration gone). One reply for the
-- batch, not one per registration: a freeze reads a million of them.

local rows, count, width = {}, 0, #ARGV
for index = 1, #KEYS do
  local values = redis.call('HMGET', KEYS[index], unpack(ARGV))
  for field = 1, width do
    rows[count + field] = values[field] or ''  -- (a nil would end the reply there)
  end
  count = count + width
end
return rows
